"""The GPU suite (bench/gpu_suite.sh): three measurements on one GPU from the files bench/prepare_gpu_suite.py
writes (.gpu_suite/), printed against the issue's targets. It imports neither ``datasets`` nor ``evaluate`` (the
GPU machine has neither), only toolkit modules that load without them.

    python bench/prepare_gpu_suite.py          # here, once: .gpu_suite/ (MiniLM fp16 + IMDB token ids, < 64 MiB)
    bash bench/gpu_suite.sh                    # on the GPU (about 5 minutes on one H100/H200)
    bash bench/gpu_suite.sh --smoke            # any machine: a few hundred rows, one step, 64 tokens

1. speed: bench/bench_speed.py on the base shape (12 layers, hidden 768, random init), plain Trainer against the
   toolkit's settings, on 8,192 pre-tokenised train reviews; targets >= 1,500 samples/s, >= 1.7x plain,
   >= 30% MFU (bf16).
2. finetune: MiniLM (TaskModel, mean pooling, the study's head) fine-tuned on all 25,000 train reviews for 3
   epochs under ToolkitTrainer (bf16, length-grouped batches of 32 padded to x8, fused AdamW, lr 5e-5 with 6%
   warm-up), accuracy on all 25,000 test reviews; target >= 93.0%.
3. frozen: MiniLM's features (mean pooling over each of the last four layers, concatenated: 1,536 values) under
   bf16 autocast, a logistic-regression probe (scikit-learn, C=1, standardised features) trained on the 25,000
   train reviews and scored on the 25,000 test reviews; target >= 89.0%. The issue names mpnet here, but mpnet in
   fp16 is ~210 MB and cannot travel in the 64 MiB the GPU machine takes, so this is MiniLM (on CPU, the same
   probe on fp32 features gave 0.8721: expect the target to be missed by the features, not the probe).
Reviews are truncated to 512 tokens (their head), as prepared.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.suite_tokens import TokenRows, padded_batches  # noqa: E402
from toolkit.data.labels import TaskConfig  # noqa: E402
from toolkit.modeling.model import TaskModel  # noqa: E402
from toolkit.precision import autocast, resolve_precision  # noqa: E402

TASK = TaskConfig(name="label", num_labels=2, id2label={0: "neg", 1: "pos"})
TARGETS = {"speed samples/s": 1500.0, "speed vs plain": 1.7, "speed MFU": 0.30, "finetune accuracy": 0.930,
           "frozen accuracy": 0.890}


def accuracy(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    logits = logits[0] if isinstance(logits, tuple) else logits
    return {"accuracy": float((np.asarray(logits).argmax(-1) == np.asarray(labels)).mean())}


def run_speed(args) -> dict:
    from bench import bench_speed

    argv = ["--tokens", str(args.suite / "imdb_train.npz"), "--model_dir", str(args.suite / "minilm")]
    if args.smoke:
        argv += ["--shape", "tiny", "--samples", "32", "--max_length", "64", "--batch", "8", "--toolkit_batch", "8",
                 "--steps", "1", "--warmup", "1"]
    else:
        argv += ["--shape", "base", "--samples", "8192", "--batch", "32", "--toolkit_batch", "64", "--steps", "60",
                 "--workers", "4"]
    return bench_speed.main(argv)


def run_finetune(args, device: str) -> dict:
    from transformers import AutoTokenizer, DataCollatorWithPadding, TrainingArguments

    from toolkit.training.trainer import ToolkitTrainer

    tokenizer = AutoTokenizer.from_pretrained(args.suite / "minilm")
    limit_train, limit_test = (256, 128) if args.smoke else (None, None)
    max_length = 64 if args.smoke else None
    train = TokenRows(args.suite / "imdb_train.npz", TASK.label_column, limit_train, max_length=max_length)
    test = TokenRows(args.suite / "imdb_test.npz", TASK.label_column, limit_test, max_length=max_length)
    model = TaskModel.from_encoder(str(args.suite / "minilm"), tasks=[asdict(TASK)], mode="finetune",
                                   pooling="mean")
    precision = resolve_precision("auto", device, training=True)
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out, report_to="none", save_strategy="no", eval_strategy="no", logging_steps=100,
            learning_rate=args.learning_rate, warmup_steps=0.06, weight_decay=0.01, num_train_epochs=3,
            max_steps=1 if args.smoke else -1, per_device_train_batch_size=8 if args.smoke else 32,
            per_device_eval_batch_size=8 if args.smoke else 256, bf16=precision == "bf16", optim="adamw_torch_fused",
            train_sampling_strategy="group_by_length", dataloader_num_workers=0 if args.smoke else 4,
            use_cpu=device == "cpu", seed=0, disable_tqdm=True)
        trainer = ToolkitTrainer(model=model, args=training_args, train_dataset=train,
                                 data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8),
                                 compute_metrics=accuracy)
        start = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - start
        metrics = trainer.evaluate(test)
    return {"accuracy": metrics["eval_accuracy"], "train_s": train_s, "precision": precision,
            "rows": (len(train), len(test)), "padding_efficiency": trainer.token_counts()["padding_efficiency"]}


@torch.no_grad()
def encode(model, rows: TokenRows, device: str, precision: str, batch_size: int) -> np.ndarray:
    out = np.zeros((len(rows), model.pooler.output_size), dtype=np.float32)
    for idx, input_ids, mask in padded_batches(rows, batch_size):
        with autocast(precision, device):
            features = model.encode_features(input_ids.to(device), mask.to(device))
            out[idx] = model.pooler.from_features(features).float().cpu().numpy()
    return out


def run_frozen(args, device: str) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    limit_train, limit_test = (256, 128) if args.smoke else (None, None)
    max_length = 64 if args.smoke else None
    train = TokenRows(args.suite / "imdb_train.npz", limit=limit_train, max_length=max_length)
    test = TokenRows(args.suite / "imdb_test.npz", limit=limit_test, max_length=max_length)
    model = TaskModel.from_encoder(str(args.suite / "minilm"), tasks=[asdict(TASK)], mode="frozen", pooling="mean",
                                   layers="last4_concat").to(device).eval()
    precision = resolve_precision("auto", device)
    start = time.perf_counter()
    x_train, x_test = (encode(model, rows, device, precision, 8 if args.smoke else 256) for rows in (train, test))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    encode_s = time.perf_counter() - start
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    probe.fit(x_train, train.label_array())
    acc = float((probe.predict(x_test) == test.label_array()).mean())
    tokens = sum(train.lengths) + sum(test.lengths)
    return {"accuracy": acc, "encode_s": encode_s, "texts_per_s": (len(train) + len(test)) / encode_s,
            "tokens_per_s": tokens / encode_s, "precision": precision, "rows": (len(train), len(test))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=ROOT / ".gpu_suite", help="bench/prepare_gpu_suite.py's folder.")
    parser.add_argument("--smoke", action="store_true", help="Tiny settings that run anywhere (a check, no result).")
    parser.add_argument("--only", choices=("speed", "finetune", "frozen"), action="append",
                        help="Run only these parts (repeatable; default all three).")
    parser.add_argument("--learning_rate", type=float, default=5e-5, help="Fine-tuning learning rate.")
    args = parser.parse_args(argv)
    for name in ("minilm/model.safetensors", "imdb_train.npz", "imdb_test.npz"):
        if not (args.suite / name).is_file():
            raise SystemExit(f"gpu_suite.py: error: --suite {args.suite} has no {name}; run "
                             "python bench/prepare_gpu_suite.py first (and carry .gpu_suite to the GPU machine).")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    parts = args.only or ["speed", "finetune", "frozen"]
    started = time.perf_counter()
    results: dict[str, dict] = {}
    for part in parts:
        t0 = time.perf_counter()
        results[part] = {"speed": lambda: run_speed(args), "finetune": lambda: run_finetune(args, device),
                         "frozen": lambda: run_frozen(args, device)}[part]()
        results[part]["part_s"] = time.perf_counter() - t0
        print(f"\n[{part}] {json.dumps(results[part], default=str)}", flush=True)

    measured = {}
    if "speed" in results:
        measured.update({"speed samples/s": results["speed"]["samples_per_s"],
                         "speed vs plain": results["speed"]["speedup"], "speed MFU": results["speed"]["mfu"]})
    for part in ("finetune", "frozen"):
        if part in results:
            measured[f"{part} accuracy"] = results[part]["accuracy"]
    device_name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    print(f"\nGPU suite{' (smoke: tiny settings, the figures mean nothing)' if args.smoke else ''}: {device_name}, "
          f"torch {torch.__version__}, {time.perf_counter() - started:.0f} s in all\n")
    print("| check | measured | target | met |\n|---|---|---|---|")
    for name, value in measured.items():
        shown = f"{value:.1%}" if "accuracy" in name or "MFU" in name else f"{value:,.2f}"
        target = TARGETS[name]
        target_shown = f"{target:.1%}" if "accuracy" in name or "MFU" in name else f"{target:,.1f}"
        print(f"| {name} | {shown} | >= {target_shown} | {'yes' if value >= target else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
