"""Frozen mode with and without the feature cache, on the same IMDB subset and seed.

    python bench/bench_frozen_cache.py                      # CPU: 1,000 train / 1,000 test, max_length 256
    python bench/bench_frozen_cache.py --train 25000 --test 25000 --max_length 512   # full data (GPU)

Three runs of the IMDB recipe (3 epochs, MiniLM, mean pooling): recomputing the encoder for every
batch of every epoch; the cache on a cold start (features computed once, then the head trains on
them); the cache warm (a second run with the same encoder, data and settings, as in a sweep over
head hyperparameters). Accuracy must agree; wall time is the whole recipe.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from benchlib import hardware, load_recipe

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="Encoder (default the embedded MiniLM).")
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--max_length", type=int, default=256)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    common = ["--model_name_or_path", args.model, "--mode", "frozen", "--pooling", "mean",
              "--max_train_samples", str(args.train), "--max_eval_samples", str(args.test),
              "--max_length", str(args.max_length), "--num_train_epochs", str(args.epochs),
              "--learning_rate", str(args.learning_rate), "--report_to", "none", "--save_strategy", "no",
              "--feature_cache_dir", str(work / "features")]
    rows = []
    for name, extra in (("recompute encoder every epoch", ["--feature_cache", "false"]),
                        ("feature cache, cold", []), ("feature cache, warm", [])):
        start = time.perf_counter()
        results = load_recipe("imdb").main([*common, *extra, "--output_dir", str(work / name.replace(" ", "_"))])
        rows.append((name, results["final"]["accuracy"], time.perf_counter() - start))
    shutil.rmtree(work, ignore_errors=True)

    model = "MiniLM" if args.model == "minilm" else args.model
    print(f"\nIMDB frozen {model} (mean pooling), {args.train} train / {args.test} test, "
          f"max_length {args.max_length}, {args.epochs:g} epochs, per-epoch evaluation; {hardware()}; "
          f"torch {torch.__version__}\n")
    print("| run | accuracy | wall s | speed-up |")
    print("|---|---|---|---|")
    for name, accuracy, wall in rows:
        print(f"| {name} | {accuracy:.4f} | {wall:.1f} | {rows[0][2] / wall:.1f}x |")


if __name__ == "__main__":
    main()
