"""Does multi-task learning help when each task has little data? Single-task vs multi-task on the same data.

    python bench/bench_multitask.py                         # 2-core CPU: sizes 250, 1000, 2000; about an hour
    python bench/bench_multitask.py --sizes 1000 --seeds 42 43 44 --eval 1000

Every run is recipes/multitask.py's main(): the model the recipe ships (toolkit.modeling.model.TaskModel, one
shared encoder with one MLP head per task), trained and scored by the common run; the bench reads each run's
results (results.json in its folder under --output_dir). The conditions differ only in --tasks: sentiment alone
(sentiment:label, 2 classes), the star rating alone (rating:rating, 8 classes: 1-4, 7-10), or both heads at once
with loss = CE(sentiment) + CE(rating) (--loss_weights 1 1).

Data: IMDB reviews, each with its sentiment and its star rating, so the two tasks share every text (the study's
situation 1). Seeded nested train subsets of the train split (the 250 reviews are inside the 1,000, ...) and one
fixed seeded subset of the test split for evaluation, both drawn with seed 0 and written as parquet folders under
--output_dir/data, so --seeds vary the training only (head initialisation, batch order, dropout).

What is shared: in the "encoder fine-tuned" regime the whole encoder (CLS pooling, max_length 128) trains under
every head at once, so a second task can shape the features the first one reads. Same examples, epochs, batch
size and steps for every condition, so the budget is equal. A control with the encoder frozen ("frozen
(control)", the recipe's --mode frozen, features cached once) must show no difference beyond seed noise: with
nothing shared and trainable, two heads on fixed features are two independent problems. On the CPU nearly all
the time goes to the fine-tuned runs (every condition fine-tunes all of MiniLM: ~0.1 s per review per epoch at
128 tokens on 2 idle cores); --model takes any local encoder folder for a quick look.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from benchlib import hardware, load_recipe

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.data.labels import TaskConfig  # noqa: E402
from toolkit.data.readers import read_split  # noqa: E402
from toolkit.evaluation.evaluate_metrics import compute, load_metric  # noqa: E402
from toolkit.evaluation.reports import markdown_table  # noqa: E402

RATINGS = [1, 2, 3, 4, 7, 8, 9, 10]
TASKS = {  # recipes/multitask.py --tasks specs
    "sentiment": "sentiment:label:classification:neg,pos",
    "rating": "rating:rating:classification:" + ",".join(map(str, RATINGS)),  # the 8 present ratings, in order
}
CONDITIONS = [("sentiment only", ["sentiment"]), ("rating only", ["rating"]),
              ("both (multi-task)", ["sentiment", "rating"])]


def write_subsets(sizes: list[int], n_eval: int, root: Path) -> dict[int, Path]:
    """One folder per train size (train.parquet: the first n of a seeded permutation of IMDB train, so the subsets
    are nested; test.parquet: the same seeded eval reviews in every folder), as the recipe reads a dataset folder."""
    rng = np.random.default_rng(0)
    train_raw, test_raw = read_split("imdb", "train"), read_split("imdb", "test")
    train_idx = rng.permutation(len(train_raw))[: max(sizes)].tolist()
    eval_idx = rng.permutation(len(test_raw))[:n_eval].tolist()
    eval_rows = test_raw.select(eval_idx)
    folders = {}
    for n in sizes:
        folder = folders[n] = root / f"train{n}-eval{n_eval}"
        folder.mkdir(parents=True, exist_ok=True)
        train_raw.select(train_idx[:n]).to_parquet(str(folder / "train.parquet"))
        eval_rows.to_parquet(str(folder / "test.parquet"))
    return folders


def rating_mae(results: dict) -> float:
    """MAE in stars of the rating head's predicted class: the "rating" evaluate module on the (true, predicted)
    pairs of the run's confusion matrix (results.json per_class)."""
    task = TaskConfig(**next(t for t in results["tasks"] if t["name"] == "rating"))
    counts = np.asarray(results["per_class"]["rating"]["confusion_matrix"])  # rows: true id, columns: predicted id
    k = len(counts)
    true_ids = np.repeat(np.repeat(np.arange(k), k), counts.ravel())
    pred_ids = np.repeat(np.tile(np.arange(k), k), counts.ravel())
    values = [float(name) for name in task.label_names]
    return compute(load_metric("rating"), pred_ids.tolist(), true_ids.tolist(), values=values)["mae"]


def run_one(folder: Path, n: int, tasks: list[str], mode: str, learning_rate: float, args, seed: int,
            out_dir: Path) -> dict:
    """One recipes/multitask.py run; its headline metrics per task."""
    argv = ["--model_name_or_path", args.model, "--dataset", str(folder), "--tasks", *[TASKS[t] for t in tasks],
            "--loss_weights", *["1"] * len(tasks), "--mode", mode, "--pooling", "cls",
            "--max_length", str(args.max_length), "--max_train_samples", str(n), "--max_eval_samples", str(args.eval),
            "--num_train_epochs", str(args.epochs), "--per_device_train_batch_size", str(args.batch_size),
            "--learning_rate", str(learning_rate), "--seed", str(seed), "--eval_strategy", "no",
            "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true", "--log_level", "error",
            "--dataloader_pin_memory", "false", "--feature_cache_dir", str(Path(args.output_dir) / "features"),
            "--output_dir", str(out_dir)]
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "console.log", "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        results = load_recipe("multitask").main(argv)
    if not args.keep_models:
        (out_dir / "model.safetensors").unlink(missing_ok=True)  # results.json and the reports stay
    assert results["train_examples"] == n and results["eval_examples"] == args.eval, results["data"]
    scores = {"train_s": results["train_seconds"]}
    for task in tasks:
        metrics = results["per_task"][task]
        scores[f"{task}_acc"] = metrics["accuracy"]
        scores[f"{task}_f1"] = metrics["macro_f1"]
    if "rating" in tasks:
        scores["rating_mae"] = rating_mae(results)
    return scores


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 2000], help="Train subset sizes.")
    parser.add_argument("--eval", type=int, default=1000, help="Test reviews evaluated (fixed seeded subset).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="Training seeds (data subsets: seed 0).")
    parser.add_argument("--model", default="minilm", help="Encoder (default the embedded MiniLM).")
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=5e-5, help="AdamW lr of the fine-tuned runs.")
    parser.add_argument("--frozen_learning_rate", type=float, default=1e-3, help="AdamW lr of the frozen control.")
    parser.add_argument("--no_frozen_control", action="store_true", help="Skip the frozen-encoder control.")
    parser.add_argument("--keep_models", action="store_true", help="Keep every run's model.safetensors.")
    parser.add_argument("--output_dir", default="/tmp/bench_multitask")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets

    datasets.disable_progress_bars()
    t0 = time.perf_counter()
    out = Path(args.output_dir)
    shutil.rmtree(out / "data", ignore_errors=True)
    folders = write_subsets(args.sizes, args.eval, out / "data")
    data_s = time.perf_counter() - t0

    regimes = [("encoder fine-tuned", "finetune", args.learning_rate)]
    if not args.no_frozen_control:
        regimes.append(("frozen (control)", "frozen", args.frozen_learning_rate))
    rows = []
    for n in args.sizes:
        for regime, mode, lr in regimes:
            if mode == "frozen" and n != min(args.sizes):
                continue  # the control needs one size only
            for name, tasks in CONDITIONS:
                runs = [run_one(folders[n], n, tasks, mode, lr, args, seed,
                                out / f"n{n}-{mode}-{'+'.join(tasks)}-seed{seed}") for seed in args.seeds]
                row = {"train n": n, "regime": regime, "tasks": name}
                for key in ("sentiment_acc", "sentiment_f1", "rating_acc", "rating_f1", "rating_mae"):
                    values = [r[key] for r in runs if key in r]
                    row[key] = _fmt(values)
                row["train s/run"] = f"{np.mean([r['train_s'] for r in runs]):.0f}"
                rows.append(row)
                print(f"  done: n={n} {regime} {name} {row}", file=sys.stderr, flush=True)
    table = markdown_table(rows)
    model = "MiniLM (all-MiniLM-L6-v2)" if args.model == "minilm" else args.model
    header = (
        f"IMDB, {model}, max_length {args.max_length}, CLS pooling; recipes/multitask.py (TaskModel: shared encoder, "
        f"one MLP head per task) with --tasks per condition; train subsets {args.sizes} (nested, seeded) of the train "
        f"split, eval on {args.eval} seeded test reviews; {args.epochs:g} epochs, batch {args.batch_size}, AdamW lr "
        f"{args.learning_rate:g} (encoder fine-tuned) / {args.frozen_learning_rate:g} (frozen control), loss = "
        f"CE(sentiment) + CE(rating, 8 classes); seeds {args.seeds} (mean ± std when more than one). rating_mae is in "
        f"stars, from the predicted class. Data subsets took {data_s:.0f} s; total {time.perf_counter() - t0:.0f} s "
        f"on {hardware()}. Runs: {out.resolve()}/<run>/results.json\n"
    )
    print(header)
    print(table)
    return header + table


def _fmt(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


if __name__ == "__main__":
    main()
