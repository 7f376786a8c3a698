"""Predict with a saved toolkit model: ``predict()`` for code, ``toolkit-predict`` / ``python -m toolkit.inference``
for the shell.

    python -m toolkit.inference --model runs/imdb-frozen --input "A moving, beautifully shot film." --device cpu
    python -m toolkit.inference --model runs/imdb-frozen --file reviews.txt --output predictions.jsonl

If the model was trained on cleaned text (its config holds ``cleaning`` options), the same cleaning
is applied to every input first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import torch
from transformers import AutoTokenizer


def load_model(model_dir: str | Path, device: str = "cpu"):
    """Load a saved toolkit model (any of its classes) and its tokenizer, in eval mode."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"'{model_dir}' is not a saved model directory (no config.json).")
    model_type = json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("model_type", "")
    model_cls = model_class_for(model_type)  # imports (and so registers) the class's config type first
    model = model_cls.from_pretrained(model_dir).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return model, tokenizer


def model_class_for(model_type: str):
    """The toolkit model class that reads configs of ``model_type``."""
    from . import modeling

    classes = {modeling.ClassifierConfig.model_type: modeling.EncoderClassifier}
    try:
        from . import multitask

        classes[multitask.MultiTaskConfig.model_type] = multitask.MultiTaskModel
    except ImportError:
        pass
    if model_type not in classes:
        raise ValueError(f"Model type '{model_type}' is not a toolkit model (known: {sorted(classes)}).")
    return classes[model_type]


def cleaner_for(config):
    """The text cleaner the model was trained with, or None."""
    if not getattr(config, "cleaning", None):
        return None
    from .cleaning import Cleaner

    return Cleaner.from_dict(config.cleaning)


def batched_outputs(model, tokenizer, texts: Sequence[str], batch_size: int = 32, max_length: int = 512):
    """``(start, output)`` for consecutive batches of ``texts`` as given (no cleaning), in order, without grads."""
    device = next(model.parameters()).device
    texts = list(texts)
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt").to(device)
        with torch.no_grad():
            output = model(**batch)
        yield start, output


def predict(
    model,
    tokenizer,
    texts: Sequence[str],
    batch_size: int = 32,
    max_length: int = 512,
) -> list[dict]:
    """Label and probabilities of every text; for regression the predicted value (and, for a rating head, the
    nearest rating on its scale)."""
    max_length = model.fit_max_length(max_length)
    cleaner = cleaner_for(model.config)
    inputs = cleaner.clean_batch(list(texts)) if cleaner else list(texts)
    results = []
    for start, output in batched_outputs(model, tokenizer, inputs, batch_size, max_length):
        results.extend(_describe(model.config, output, start, texts))
    return results


def _describe(config, output, start: int, texts: Sequence[str]) -> list[dict]:
    heads = getattr(output, "task_logits", None) or {None: output.logits}
    rows = [{"text": texts[start + i]} for i in range(next(iter(heads.values())).shape[0])]
    for task, logits in heads.items():
        task_config = config.task(task) if task is not None else config
        for row, values in zip(rows, logits.float().cpu()):
            row.update(_head_prediction(task_config, values, prefix=f"{task}." if task else ""))
    return rows


def _head_prediction(config, logits: torch.Tensor, prefix: str = "") -> dict:
    if getattr(config, "problem_type", None) == "regression":
        value = float(logits.squeeze(-1))
        row = {f"{prefix}value": round(value, 4)}
        if getattr(config, "rating_values", None):  # a rating head: also the nearest rating on its scale
            from .rating import RatingScale

            scale = RatingScale(tuple(config.rating_values))
            row[f"{prefix}rating"] = scale.values[int(scale.nearest_ids([value])[0])]
        return row
    id2label = {int(k): v for k, v in config.id2label.items()}
    probs = torch.softmax(logits, dim=-1)
    return {
        f"{prefix}label": id2label[int(probs.argmax())],
        f"{prefix}probabilities": {id2label[i]: round(float(p), 4) for i, p in enumerate(probs)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Predict labels with a saved toolkit model.")
    parser.add_argument("--model", required=True, help="Saved model directory (a recipe's output_dir).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", action="append", help="A text to classify (repeatable).")
    source.add_argument("--file", help="A UTF-8 file with one text per line.")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N.")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--output", help="Write JSON lines here instead of printing them.")
    args = parser.parse_args(argv)

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device is available here; use --device cpu.")
    if args.file:
        try:
            texts = [line.rstrip("\n") for line in Path(args.file).read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as err:
            parser.error(f"--file {args.file}: {err}")
        texts = [t for t in texts if t.strip()]
        if not texts:
            parser.error(f"--file {args.file}: no non-empty lines.")
    else:
        texts = args.input
    try:
        model, tokenizer = load_model(args.model, args.device)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    rows = predict(model, tokenizer, texts, args.batch_size, args.max_length)
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"Wrote {len(rows)} predictions to {args.output}")
    else:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
