"""The one prediction loop: batches in, every head's outputs (or the pooled vectors) out, in input order.

Used by ``toolkit.inference`` (texts), the saved-model evaluation of labelled files (``toolkit.studies.weibo``) and
the rating pictures (rows of a Trainer's eval set, tokens or cached features).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..precision import autocast, resolve_precision


@dataclass
class Throughput:
    """Texts, real (unpadded) tokens and seconds of a prediction run, accumulated over its batches."""

    texts: int = 0
    tokens: int = 0
    seconds: float = 0.0
    precision: str = "fp32"

    def line(self) -> str:
        seconds = max(self.seconds, 1e-9)
        return (f"{self.texts} texts, {self.tokens} tokens in {self.seconds:.2f} s of model time: "
                f"{self.texts / seconds:,.1f} texts/s, {self.tokens / seconds:,.0f} tokens/s ({self.precision})")


def text_batches(tokenizer, texts: Sequence[str], batch_size: int = 32,
                 max_length: int | None = None) -> Iterator[tuple[list[int], dict]]:
    """``(row indices, encoded batch)`` over texts sorted by token count (after truncation), so little compute goes
    to padding. Texts are tokenised once; each batch is padded to its longest row."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    columns = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in encoded]
    order = sorted(range(len(texts)), key=lambda i: len(encoded["input_ids"][i]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = tokenizer.pad({c: [encoded[c][i] for i in idx] for c in columns}, padding=True, return_tensors="pt")
        yield idx, dict(batch)


@torch.no_grad()
def iterate_outputs(model, batches: Iterable[tuple[list[int], dict]], pooled: bool = False,
                    progress: bool = False, total: int | None = None, precision: str = "auto",
                    throughput: Throughput | None = None) -> Iterator[tuple[list[int], object]]:
    """``(row indices, output)`` per batch, without gradients, under ``precision`` (auto: bf16 where the device
    has it, see ``toolkit.precision``): the model's ``TaskModelOutput``, or with ``pooled`` its ``PoolerOutput``.
    Batches may hold ``input_ids``/``attention_mask`` or cached ``features``. ``throughput`` accumulates counts
    and the time spent on the model (device synchronised)."""
    model.eval()
    device = next(model.parameters()).device
    precision = resolve_precision(precision, device)
    if throughput is not None:
        throughput.precision = precision
    inputs = ("input_ids", "attention_mask", "token_type_ids", "features")
    for idx, batch in tqdm(batches, desc="predict", unit="batch", total=total, disable=not progress):
        start = time.perf_counter()
        batch = {k: v.to(device) for k, v in batch.items() if k in inputs}
        with autocast(precision, device):
            output = model.pool(**batch) if pooled else model(**batch)
        if throughput is not None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            throughput.seconds += time.perf_counter() - start
            throughput.texts += len(idx)
            if "attention_mask" in batch:
                throughput.tokens += int(batch["attention_mask"].sum())
        yield idx, output


def predict_logits(model, tokenizer, texts: Sequence[str], batch_size: int = 32, max_length: int | None = None,
                   progress: bool = False, precision: str = "auto",
                   throughput: Throughput | None = None) -> dict[str, np.ndarray]:
    """Every head's outputs for ``texts`` (as given: the tokenizer applies any saved cleaning), in input order,
    computed in length-sorted batches under ``precision``; ``throughput`` (optional) accumulates the speed."""
    texts = list(texts)
    out = {t.name: None for t in model.tasks}
    if not texts:
        return {}
    batches = text_batches(tokenizer, texts, batch_size, max_length)
    for idx, output in iterate_outputs(model, batches, progress=progress, total=-(-len(texts) // batch_size),
                                       precision=precision, throughput=throughput):
        for name, logits in output.task_logits.items():
            values = logits.float().cpu().numpy()
            if out[name] is None:
                out[name] = np.zeros((len(texts), values.shape[-1]), dtype=np.float64)
            out[name][idx] = values
    return {name: values for name, values in out.items() if values is not None}
