"""IMDB with the embedded MiniLM in both modes on a stated subset: accuracy and wall time per mode.

    python bench/bench_imdb.py                                  # CPU: 2,000 train / 2,000 test reviews
    python bench/bench_imdb.py --train 25000 --test 25000 --finetune_max_length 512 --bf16   # full data, GPU

Frozen mode encodes every review once (feature cache) and trains the head for 3 epochs; fine-tuning
trains every weight for 3 epochs. Wall time covers tokenising, encoding/training and evaluating.
"""

import argparse
import json
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
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--frozen_max_length", type=int, default=512)
    parser.add_argument("--finetune_max_length", type=int, default=256)
    parser.add_argument("--frozen_lr", type=float, default=1e-3)
    parser.add_argument("--finetune_lr", type=float, default=5e-5)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--modes", default="frozen,finetune")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-imdb-"))
    common = ["--model_name_or_path", args.model, "--max_train_samples", str(args.train),
              "--max_eval_samples", str(args.test), "--report_to", "none", "--num_train_epochs", str(args.epochs),
              "--save_strategy", "no", "--feature_cache_dir", str(work / "features"), "--bf16", str(args.bf16).lower()]
    settings = {
        "frozen": ["--mode", "frozen", "--pooling", "mean", "--max_length", str(args.frozen_max_length),
                   "--learning_rate", str(args.frozen_lr)],
        "finetune": ["--mode", "finetune", "--pooling", "mean", "--max_length", str(args.finetune_max_length),
                     "--learning_rate", str(args.finetune_lr)],
    }
    rows = []
    for mode in args.modes.split(","):
        start = time.perf_counter()
        results = load_recipe("imdb").main(["--output_dir", str(work / mode), *common, *settings[mode]])
        wall = time.perf_counter() - start
        rows.append((mode, settings[mode][5], settings[mode][7], results["final"]["accuracy"],
                     results["final"]["macro_f1"], results["train_seconds"], wall))
        print(json.dumps({"mode": mode, "accuracy": results["final"]["accuracy"], "wall_s": round(wall, 1)}))
    shutil.rmtree(work, ignore_errors=True)

    model = "MiniLM (all-MiniLM-L6-v2)" if args.model == "minilm" else args.model
    print(f"\nIMDB, {model}, mean pooling, {args.train} train / {args.test} test reviews "
          f"(seeded random subsets), {args.epochs:g} epochs, batch 32, on {hardware()}, torch {torch.__version__}\n")
    print("| mode | max_length | lr | accuracy | macro-F1 | train s | wall s |")
    print("|---|---|---|---|---|---|---|")
    for mode, max_length, lr, acc, f1, train_s, wall in rows:
        print(f"| {mode} | {max_length} | {lr} | {acc:.4f} | {f1:.4f} | {train_s:.0f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
