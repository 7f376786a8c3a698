"""Predict with a saved toolkit model: ``predict()`` for code, ``toolkit-predict`` / ``python -m toolkit.inference``
for the shell.

    python -m toolkit.inference --model runs/imdb-frozen --input "A moving, beautifully shot film." --device cpu
    python -m toolkit.inference --model runs/imdb-frozen --file reviews.txt --output predictions.jsonl

The saved tokenizer re-applies the model's cleaning and its training max_length. Files are read one row per line
('\\n' only) for text, or by ``--text_column`` for JSONL/CSV; the output has one row per input row, in order, and
an input that is empty (after cleaning) gets ``"label": null`` instead of a prediction. Texts run in batches sorted
by token count, in bf16 where the device computes it natively (``--precision auto``, see ``toolkit.precision``);
the throughput (texts/s, tokens/s) goes to stderr, so printed JSON lines stay alone on stdout.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .cli import run_cli
from .evaluation.inputs import read_texts, write_jsonl_atomic

PROG = "toolkit-predict"


def load_model(model_dir: str | Path, device: str = "cpu"):
    """Load a saved toolkit model and its tokenizer, in eval mode."""
    from transformers import AutoTokenizer

    from .modeling.model import TaskModel

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"'{model_dir}' is not a saved model directory (no config.json).")
    model_type = json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("model_type", "")
    if model_type != "toolkit":
        raise ValueError(f"{model_dir}: model type '{model_type}' is not a toolkit model ('toolkit'); retrain it "
                         "with this version of the toolkit.")
    model = TaskModel.from_pretrained(model_dir).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return model, tokenizer


def clean_texts(tokenizer, config, texts: Sequence[str]) -> list[str]:
    """The texts as the model saw them in training: the saved tokenizer's cleaning, or the config's."""
    if hasattr(tokenizer, "clean"):
        return list(tokenizer.clean(list(texts)))
    if getattr(config, "cleaning", None):
        from .cleaning import Cleaner

        return Cleaner.from_dict(config.cleaning).clean_batch(list(texts))
    return list(texts)


def predict(model, tokenizer, texts: Sequence[str], batch_size: int = 32, max_length: int | None = None,
            progress: bool = False, precision: str = "auto", throughput=None) -> list[dict]:
    """Per text: label and probabilities of every head (prefixed ``<task>.`` with several), for regression the
    value (and on a rating scale the nearest rating). An empty text (after cleaning) gets ``label: null``.
    ``precision``: auto, fp32 or bf16 (``toolkit.precision``); ``throughput``: a ``Throughput`` to fill."""
    from .evaluation.metrics import task_predictions
    from .evaluation.predict import predict_logits

    texts = list(texts)
    max_length = model.fit_max_length(max_length or model.config.max_length or 512)
    cleaned = clean_texts(tokenizer, model.config, texts)
    rows = [{"text": t} for t in texts]
    keep = [i for i, t in enumerate(cleaned) if t.strip()]
    empty = [i for i, t in enumerate(cleaned) if not t.strip()]
    logits = predict_logits(model, tokenizer, [cleaned[i] for i in keep], batch_size, max_length, progress,
                            precision, throughput)
    single = len(model.tasks) == 1
    for task in model.tasks:
        prefix = "" if single else f"{task.name}."
        for i in empty:
            rows[i].update({f"{prefix}value" if task.is_regression else f"{prefix}label": None, "empty": True})
        if not keep:
            continue
        pred = task_predictions(task, logits[task.name])
        for j, i in enumerate(keep):
            rows[i].update(_describe(task, pred, j, prefix))
    return rows


def _describe(task, pred: dict[str, np.ndarray], j: int, prefix: str) -> dict:
    if task.is_regression:
        row = {f"{prefix}value": round(float(pred["values"][j]), 4)}
        if task.values is not None:
            value = task.values[int(pred["ids"][j])]
            row[f"{prefix}rating"] = int(value) if float(value).is_integer() else value
        return row
    probs = pred["probabilities"][j]
    return {f"{prefix}label": task.id2label[int(pred["ids"][j])],
            f"{prefix}probabilities": {task.id2label[i]: round(float(p), 4) for i, p in enumerate(probs)}}


DEVICES = "cpu, cuda, cuda:N (N = 0, 1, ...) or mps"
_DEVICE = re.compile(r"cpu|mps|cuda(:\d+)?")


def int_at_least(minimum: int):
    """An argparse ``type``: an integer >= ``minimum``."""
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value!r}")
        return number

    return parse


positive_int = int_at_least(1)


def device_arg(value: str) -> str:
    """An argparse ``type``: cpu, cuda, cuda:N or mps."""
    device = value.strip().lower()
    if not _DEVICE.fullmatch(device):
        raise argparse.ArgumentTypeError(f"{value!r} is not a device; use {DEVICES}")
    return device


def device_or_auto_arg(value: str) -> str:
    """An argparse ``type``: auto (cuda when available, else cpu), cpu, cuda, cuda:N or mps."""
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return device_arg(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a device; use auto, {DEVICES}") from None


def check_device(device: str) -> None:
    """Raise ValueError when ``device`` (as ``device_arg`` returns it) is not usable on this machine."""
    import torch

    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {device}: no CUDA device is available here; use --device cpu.")
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            raise ValueError(f"--device {device}: this machine has {count} CUDA device(s), cuda:0 to "
                             f"cuda:{count - 1}.")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps: no Apple MPS device is available here; use --device cpu.")


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI; a bad file or model raises (``run_cli`` turns it into one line), bad flags exit 2 via argparse."""
    parser = argparse.ArgumentParser(prog=PROG, description="Predict labels with a saved toolkit model.")
    parser.add_argument("--model", required=True, help="Saved model directory (a recipe's output_dir).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", action="append", help="A text to classify (repeatable).")
    source.add_argument("--file", help="UTF-8 text (one row per '\\n' line), JSONL or CSV/TSV (--text_column).")
    parser.add_argument("--text_column", help="JSONL/CSV: the column holding the text (default text).")
    parser.add_argument("--device", type=device_arg, default="cpu", help=f"{DEVICES} (default cpu).")
    parser.add_argument("--batch_size", type=positive_int, default=32)
    parser.add_argument("--max_length", type=int_at_least(8), help="Default: the model's training max_length.")
    parser.add_argument("--output", help="Write JSON lines here (atomically) instead of printing them.")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="auto (bf16 where the device computes it natively: a GPU with bf16, a CPU with AMX or "
                        "AVX512-BF16; else fp32), fp32 or bf16 (default auto).")
    args = parser.parse_args(argv)

    check_device(args.device)
    texts = read_texts(args.file, args.text_column) if args.file else args.input
    model, tokenizer = load_model(args.model, args.device)
    from .evaluation.predict import Throughput

    throughput = Throughput()
    start = time.perf_counter()
    rows = predict(model, tokenizer, texts, args.batch_size, args.max_length,
                   progress=args.file is not None or len(texts) > args.batch_size, precision=args.precision,
                   throughput=throughput)
    speed = f"{throughput.line()}; {time.perf_counter() - start:.2f} s end to end"
    if args.output:
        count = write_jsonl_atomic(args.output, rows, refuse_same_as=args.file)
        print(f"Wrote {count} predictions to {args.output}; {speed}")
    else:
        print("\n".join(json.dumps(row, ensure_ascii=False) for row in rows))
        print(speed, file=sys.stderr)
    return 0


def cli() -> None:
    """The ``toolkit-predict`` console script: ``main`` under ``run_cli`` (one-line errors, exit 2)."""
    run_cli(main, prog=PROG)


if __name__ == "__main__":
    run_cli(main, prog=PROG)
