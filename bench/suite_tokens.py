"""Pre-tokenised IMDB for the GPU suite: token ids as one flat uint16 array with row offsets, in a compressed npz
(no pickles), and a torch ``Dataset`` over them. Imports neither ``datasets`` nor toolkit modules that do, so the
suite runs on a machine without that package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset


def save_tokens(path: str | Path, input_ids: list[list[int]], labels: list[int], max_length: int) -> None:
    """Write rows of token ids (each already truncated to ``max_length``) and their labels."""
    if max(max(ids) for ids in input_ids) > np.iinfo(np.uint16).max:
        raise ValueError(f"{path}: a token id does not fit uint16; this format is for vocabularies under 65,536.")
    lengths = np.array([len(ids) for ids in input_ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.fromiter((t for ids in input_ids for t in ids), dtype=np.uint16, count=int(offsets[-1]))
    np.savez_compressed(path, ids=flat, offsets=offsets, labels=np.asarray(labels, dtype=np.int8),
                        max_length=np.int64(max_length))


class TokenRows(Dataset):
    """Rows of a ``save_tokens`` file as ``{"input_ids", "attention_mask", <label_key>}`` (unpadded; a collator
    pads per batch). ``limit`` keeps a seeded random subset of that many rows; ``max_length`` shortens longer rows
    (keeping their head and the closing [SEP])."""

    def __init__(self, path: str | Path, label_key: str = "labels", limit: int | None = None, seed: int = 0,
                 max_length: int | None = None):
        with np.load(path, allow_pickle=False) as data:
            self.ids, self.offsets, self.labels = data["ids"], data["offsets"], data["labels"].astype(np.int64)
            stored = int(data["max_length"])
        self.max_length = min(stored, max_length or stored)
        self.rows = np.arange(len(self.labels))
        if limit is not None and limit < len(self.rows):
            self.rows = np.sort(np.random.default_rng(seed).permutation(len(self.rows))[:limit])
        self.label_key = label_key

    def __len__(self) -> int:
        return len(self.rows)

    def length(self, i: int) -> int:
        row = self.rows[i]
        return min(int(self.offsets[row + 1] - self.offsets[row]), self.max_length)

    @property
    def lengths(self) -> list[int]:
        return [self.length(i) for i in range(len(self))]

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i]
        ids = self.ids[self.offsets[row]:self.offsets[row + 1]].astype(np.int64).tolist()
        if len(ids) > self.max_length:
            ids = ids[:self.max_length - 1] + ids[-1:]
        return {"input_ids": ids, "attention_mask": [1] * len(ids), self.label_key: int(self.labels[row])}

    def label_array(self) -> np.ndarray:
        return self.labels[self.rows]


def padded_batches(rows: TokenRows, batch_size: int, pad_id: int = 0):
    """``(row indices, input_ids, attention_mask)`` tensors over rows sorted by length, each batch padded to its
    longest row (for encoding without a Trainer)."""
    order = sorted(range(len(rows)), key=rows.length)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        items = [rows[i]["input_ids"] for i in idx]
        width = max(len(ids) for ids in items)
        input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for j, ids in enumerate(items):
            input_ids[j, :len(ids)] = torch.tensor(ids)
            mask[j, :len(ids)] = 1
        yield idx, input_ids, mask
