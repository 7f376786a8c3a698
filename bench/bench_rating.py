"""Rating prediction side by side: IMDB stars with MiniLM (classification vs regression, frozen vs fine-tuned) and
DMR Douban stars with zh-mini-mlm (frozen; mean pooling and self-attentive pooling), as one markdown table.

    python bench/bench_rating.py                       # CPU, about 10-15 minutes on 2 cores
    python bench/bench_rating.py --skip_finetune       # frozen settings only (a few minutes)
    python bench/bench_rating.py --imdb_train 25000 --imdb_test 25000 --max_length 512 --bf16   # full IMDB, GPU

IMDB: seeded subsets (default 1,000 train / 500 test reviews, 128 tokens); its ratings are 1-4 and 7-10, so the
8 present values are the classes and 4/7 are neighbours for off-by-one. DMR: the 1,208 distinct reviews, a seeded
stratified 80/20 split. Frozen runs train the head for 10 epochs at lr 1e-3 on cached features; fine-tuning (CPU
budget: 500 of the 1,000 train reviews, same test set, no per-epoch evaluation) trains everything for 2 epochs at
lr 5e-5, batch 16. "majority" predicts the most frequent training rating. MAE, RMSE and Spearman use
the clipped raw output for regression and the predicted class's rating for classification. Every run is
recipes/rating.py's main(); its metrics are per_task["rating"] of the run's results.json (the toolkit's "rating"
evaluate module), and the majority rows go through the same module. Every run's pictures and results stay under
--output_dir. --imdb_model, --zh_model, --dmr_train/--dmr_test and --frozen_epochs shrink a run for a quick check.
"""

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

from benchlib import hardware, load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from toolkit.args import DataArguments  # noqa: E402
from toolkit.data.splits import load_splits  # noqa: E402
from toolkit.evaluation.evaluate_metrics import compute, load_metric  # noqa: E402
from toolkit.studies.rating import RatingArguments, rating_reader, rating_task_spec  # noqa: E402

DMR = str(ROOT.parent / "shared" / "data" / "douban_dmr" / "reviews.json")
ZH_MODEL = str(ROOT.parent / "shared" / "models" / "zh-mini-mlm")


def majority(data_args: DataArguments, seed: int) -> dict:
    """The "rating" evaluate module's metrics of always predicting the most frequent training rating, on the rows
    (and rating scale) a classification run of recipes/rating.py gets."""
    rating_args = RatingArguments(head="classification")
    data_args.task_specs = [rating_task_spec(rating_args)]
    splits = load_splits(data_args, seed, reader=rating_reader(rating_args))
    task = splits.tasks[0]
    train_ids, eval_ids = (np.asarray(ds[task.label_column]) for ds in (splits.train, splits.eval))
    top = int(np.bincount(train_ids).argmax())
    return compute(load_metric("rating"), [top] * len(eval_ids), eval_ids.tolist(), values=task.values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imdb_train", type=int, default=1000)
    parser.add_argument("--imdb_test", type=int, default=500)
    parser.add_argument("--finetune_train", type=int, default=500, help="IMDB train reviews for fine-tuning runs.")
    parser.add_argument("--finetune_epochs", type=float, default=2)
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--frozen_epochs", type=float, default=10, help="Epochs of the frozen runs.")
    parser.add_argument("--dmr_train", type=int, help="Seeded subset of DMR's 80%% train part (default all).")
    parser.add_argument("--dmr_test", type=int, help="Seeded subset of DMR's 20%% eval part (default all).")
    parser.add_argument("--imdb_model", default="minilm", help="IMDB encoder (default the embedded MiniLM).")
    parser.add_argument("--zh_model", default=ZH_MODEL, help="DMR encoder (default zh-mini-mlm).")
    parser.add_argument("--skip_finetune", action="store_true")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output_dir", default=str(ROOT / "runs" / "bench-rating"))
    args = parser.parse_args()

    common = ["--max_length", str(args.max_length), "--report_to", "none", "--save_strategy", "no",
              "--dataloader_pin_memory", "false", "--seed", str(args.seed), "--disable_tqdm", "true",
              "--log_level", "warning", *(["--bf16", "true"] if args.bf16 else [])]
    imdb = ["--dataset", "imdb", "--model_name_or_path", args.imdb_model, "--pooling", "mean",
            "--max_train_samples", str(args.imdb_train), "--max_eval_samples", str(args.imdb_test)]
    # DMR: one file, a stratified 80/20 split; the default config's 1,000/500 caps exceed both parts
    dmr_caps = (args.dmr_train or 1000, args.dmr_test or 500)
    dmr = ["--dataset", DMR, "--model_name_or_path", args.zh_model, "--eval_fraction", "0.2",
           "--max_train_samples", str(dmr_caps[0]), "--max_eval_samples", str(dmr_caps[1])]
    frozen = ["--mode", "frozen", "--learning_rate", "1e-3", "--num_train_epochs", str(args.frozen_epochs)]
    finetune = ["--mode", "finetune", "--learning_rate", "5e-5", "--num_train_epochs", str(args.finetune_epochs),
                "--per_device_train_batch_size", "16", "--eval_strategy", "no"]
    imdb_ft = [*imdb, "--max_train_samples", str(args.finetune_train)]  # later flags win
    en = "minilm" if args.imdb_model == "minilm" else Path(args.imdb_model).name
    zh = "zh-mini-mlm" if args.zh_model == ZH_MODEL else Path(args.zh_model).name
    settings = [
        ("IMDB", en, "classification", "mean", frozen + imdb),
        ("IMDB", en, "regression", "mean", frozen + imdb),
    ]
    if not args.skip_finetune:
        settings += [
            ("IMDB", en, "classification", "mean", finetune + imdb_ft),
            ("IMDB", en, "regression", "mean", finetune + imdb_ft),
        ]
    settings += [
        ("DMR Douban", zh, "classification", "mean", frozen + dmr + ["--pooling", "mean"]),
        ("DMR Douban", zh, "regression", "mean", frozen + dmr + ["--pooling", "mean"]),
        ("DMR Douban", zh, "classification", "attention",
         frozen + dmr + ["--pooling", "attention", "--attention_penalty", "0.1"]),
    ]

    rows = []
    for data, source, caps, fraction in (("IMDB", "imdb", (args.imdb_train, args.imdb_test), 0.1),
                                         ("DMR Douban", DMR, dmr_caps, 0.2)):
        data_args = DataArguments(dataset=source, max_train_samples=caps[0], max_eval_samples=caps[1],
                                  eval_fraction=fraction)
        m = majority(data_args, args.seed)
        rows.append((data, "-", "majority", "-", "-", m, None, None))
    run = load_recipe("rating").main
    for data, model, head, pooling, extra in settings:
        mode = extra[extra.index("--mode") + 1]
        out = Path(args.output_dir) / f"{data.split()[0].lower()}-{head}-{mode}-{pooling}"
        start = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "console.log", "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            results = run([*common, *extra, "--head", head, "--output_dir", str(out)])  # Trainer logs -> console.log
        sizes = f"{results['train_examples']}/{results['eval_examples']}"
        metrics = results["per_task"]["rating"]  # the "rating" evaluate module on the eval split
        rows.append((data, model, head, mode, pooling, metrics, time.perf_counter() - start, sizes))
        print(f"done: {out.name} in {rows[-1][-2]:.0f} s", file=sys.stderr, flush=True)

    print(f"\nRating prediction on {hardware()}; IMDB: {args.imdb_train} train / {args.imdb_test} test reviews, "
          f"max_length {args.max_length}; DMR Douban: stratified 80/20 split of its 1,208 distinct reviews"
          f"{'' if not (args.dmr_train or args.dmr_test) else f' (seeded subsets: {dmr_caps[0]} / {dmr_caps[1]})'}."
          "\n")
    print("| data | model | head | mode | pooling | train/eval | accuracy | off-by-one acc. | macro-F1 | MAE | RMSE "
          "| Spearman | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "-" if v is None or v != v else f"{v:.3f}"  # noqa: E731  (v != v: NaN, undefined Spearman)
    for data, model, head, mode, pooling, m, seconds, sizes in rows:
        print(f"| {data} | {model} | {head} | {mode} | {pooling} | {sizes or '-'} | {fmt(m['accuracy'])} | "
              f"{fmt(m['off_by_one_accuracy'])} | {fmt(m['macro_f1'])} | {fmt(m['mae'])} | {fmt(m['rmse'])} | "
              f"{fmt(m.get('spearman'))} | {'-' if seconds is None else f'{seconds:.0f}'} |")
    print(f"\nPictures and results per run: {Path(args.output_dir).resolve()}/<run>/")


if __name__ == "__main__":
    main()
