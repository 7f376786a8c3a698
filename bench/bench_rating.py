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
the clipped raw output for regression and the predicted class's rating for classification. Every run's pictures
and results stay under --output_dir.
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
from toolkit.rating import RatingArguments, label_ids_from_targets, load_rating_splits, rating_metrics  # noqa: E402

DMR = str(ROOT.parent / "shared" / "data" / "douban_dmr" / "reviews.json")
ZH_MODEL = str(ROOT.parent / "shared" / "models" / "zh-mini-mlm")


def majority(data_args: DataArguments, seed: int) -> dict:
    """Metrics of always predicting the most frequent training rating."""
    splits = load_rating_splits(data_args, RatingArguments(), seed)
    train_ids = label_ids_from_targets(splits.train["label"], splits.scale, "classification")
    eval_ids = label_ids_from_targets(splits.eval["label"], splits.scale, "classification")
    top = np.bincount(train_ids).argmax()
    return rating_metrics(eval_ids, np.full(len(eval_ids), top), splits.scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imdb_train", type=int, default=1000)
    parser.add_argument("--imdb_test", type=int, default=500)
    parser.add_argument("--finetune_train", type=int, default=500, help="IMDB train reviews for fine-tuning runs.")
    parser.add_argument("--finetune_epochs", type=float, default=2)
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--skip_finetune", action="store_true")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output_dir", default=str(ROOT / "runs" / "bench-rating"))
    args = parser.parse_args()

    common = ["--max_length", str(args.max_length), "--report_to", "none", "--save_strategy", "no",
              "--dataloader_pin_memory", "false", "--seed", str(args.seed), "--disable_tqdm", "true",
              "--log_level", "warning", *(["--bf16", "true"] if args.bf16 else [])]
    imdb = ["--dataset", "imdb", "--model_name_or_path", "minilm", "--pooling", "mean",
            "--max_train_samples", str(args.imdb_train), "--max_eval_samples", str(args.imdb_test)]
    dmr = ["--dataset", DMR, "--model_name_or_path", ZH_MODEL]  # the default config's 1,000/500 caps exceed DMR
    frozen = ["--mode", "frozen", "--learning_rate", "1e-3", "--num_train_epochs", "10"]
    finetune = ["--mode", "finetune", "--learning_rate", "5e-5", "--num_train_epochs", str(args.finetune_epochs),
                "--per_device_train_batch_size", "16", "--eval_strategy", "no"]
    imdb_ft = [*imdb, "--max_train_samples", str(args.finetune_train)]  # later flags win
    settings = [
        ("IMDB", "minilm", "classification", "mean", frozen + imdb),
        ("IMDB", "minilm", "regression", "mean", frozen + imdb),
    ]
    if not args.skip_finetune:
        settings += [
            ("IMDB", "minilm", "classification", "mean", finetune + imdb_ft),
            ("IMDB", "minilm", "regression", "mean", finetune + imdb_ft),
        ]
    settings += [
        ("DMR Douban", "zh-mini-mlm", "classification", "mean", frozen + dmr + ["--pooling", "mean"]),
        ("DMR Douban", "zh-mini-mlm", "regression", "mean", frozen + dmr + ["--pooling", "mean"]),
        ("DMR Douban", "zh-mini-mlm", "classification", "attention",
         frozen + dmr + ["--pooling", "attention", "--attention_penalty", "0.1"]),
    ]

    rows = []
    for data, dataset_args in (("IMDB", imdb), ("DMR Douban", dmr)):
        caps = (args.imdb_train, args.imdb_test) if data == "IMDB" else (None, None)
        data_args = DataArguments(dataset=dataset_args[1], max_train_samples=caps[0], max_eval_samples=caps[1])
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
        rows.append((data, model, head, mode, pooling, results["final"], time.perf_counter() - start, sizes))
        print(f"done: {out.name} in {rows[-1][-2]:.0f} s", file=sys.stderr, flush=True)

    print(f"\nRating prediction on {hardware()}; IMDB: {args.imdb_train} train / {args.imdb_test} test reviews, "
          f"max_length {args.max_length}; DMR Douban: stratified 80/20 split of its 1,208 distinct reviews.\n")
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
