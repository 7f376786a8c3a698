"""The one prediction loop: batches in, every head's outputs (or the pooled vectors) out, in input order.

Used by ``toolkit.inference`` (texts), the saved-model evaluation of labelled files (``toolkit.studies.weibo``) and
the rating pictures (rows of a Trainer's eval set, tokens or cached features).
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm


def text_batches(tokenizer, texts: Sequence[str], batch_size: int = 32,
                 max_length: int | None = None) -> Iterator[tuple[list[int], dict]]:
    """``(row indices, encoded batch)`` over length-sorted texts, so little compute goes to padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        encoded = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                            return_tensors="pt")
        yield idx, dict(encoded)


@torch.no_grad()
def iterate_outputs(model, batches: Iterable[tuple[list[int], dict]], pooled: bool = False,
                    progress: bool = False, total: int | None = None) -> Iterator[tuple[list[int], object]]:
    """``(row indices, output)`` per batch, without gradients: the model's ``TaskModelOutput``, or with ``pooled``
    its ``PoolerOutput``. Batches may hold ``input_ids``/``attention_mask`` or cached ``features``."""
    model.eval()
    device = next(model.parameters()).device
    inputs = ("input_ids", "attention_mask", "token_type_ids", "features")
    for idx, batch in tqdm(batches, desc="predict", unit="batch", total=total, disable=not progress):
        batch = {k: v.to(device) for k, v in batch.items() if k in inputs}
        yield idx, model.pool(**batch) if pooled else model(**batch)


def predict_logits(model, tokenizer, texts: Sequence[str], batch_size: int = 32, max_length: int | None = None,
                   progress: bool = False) -> dict[str, np.ndarray]:
    """Every head's outputs for ``texts`` (as given: the tokenizer applies any saved cleaning), in input order."""
    texts = list(texts)
    out = {t.name: None for t in model.tasks}
    batches = text_batches(tokenizer, texts, batch_size, max_length)
    for idx, output in iterate_outputs(model, batches, progress=progress, total=-(-len(texts) // batch_size)):
        for name, logits in output.task_logits.items():
            values = logits.float().cpu().numpy()
            if out[name] is None:
                out[name] = np.zeros((len(texts), values.shape[-1]), dtype=np.float64)
            out[name][idx] = values
    return {name: values for name, values in out.items() if values is not None}
