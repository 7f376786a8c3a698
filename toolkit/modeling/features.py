"""Frozen-feature cache: run the frozen encoder once per (encoder weights, pooling, layers, tokens)
and train the head on the stored features, instead of recomputing the encoder every epoch.

Features are stored as one safetensors file per fingerprint, written to a temporary name and
renamed into place, so an interrupted run never leaves a half-written cache entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..precision import autocast
from .pooling import LINEAR_POOLINGS, PER_LAYER, combine_layers

logger = logging.getLogger(__name__)


class FeatureDataset(Dataset):
    """Cached features with the rows' label columns (``labels_<task>``, ``task_ids``), for
    ``default_data_collator``."""

    def __init__(self, features: torch.Tensor, columns: dict[str, list] | None = None):
        self.features = features
        self.columns = {k: torch.as_tensor(v) for k, v in (columns or {}).items()}
        for name, values in self.columns.items():
            if len(values) != len(features):
                raise ValueError(f"{len(features)} feature rows but {len(values)} values in {name}.")

    @property
    def column_names(self) -> list[str]:
        return ["features", *self.columns]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return {"features": self.features[i], **{k: v[i] for k, v in self.columns.items()}}


def _digest_tensor(h: "hashlib._Hash", tensor: torch.Tensor) -> None:
    h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())


def content_digest(model, tokenized) -> bytes:
    """SHA-256 of the encoder weights and the token ids themselves: the costly part of a cache key, shared by
    every feature spec looked up for the same model and data."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.encoder.state_dict().items()):
        h.update(name.encode())
        _digest_tensor(h, tensor)
    if tokenized._indices is not None:  # a shuffled/selected view: hash the rows it shows
        tokenized = tokenized.flatten_indices()
    for column in ("input_ids", "attention_mask", "token_type_ids"):
        if column in tokenized.column_names:
            for chunk in tokenized.data.column(column).chunks:
                offsets = chunk.offsets.to_numpy()
                h.update((offsets - offsets[0]).tobytes())
                h.update(chunk.flatten().to_numpy().tobytes())
    return h.digest()


def fingerprint(model, tokenized, max_length: int, spec: dict[str, str] | None = None,
                content: bytes | None = None, precision: str = "fp32") -> str:
    """Hash of everything the features depend on: encoder config, the pooler's feature spec (``spec``, default
    the model's own), max length, the resolved ``precision`` the encoder ran in (fp32 and bf16 features never
    share an entry), and ``content`` (``content_digest``: encoder weights and token ids)."""
    settings = {"encoder": model.config.encoder, **(spec or model.pooler.feature_spec()), "max_length": max_length,
                "precision": precision}
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    h.update(content if content is not None else content_digest(model, tokenized))
    return h.hexdigest()[:32]


@torch.no_grad()
def compute_features(model, tokenized, collator, batch_size: int = 64, device: str | torch.device = "cpu",
                     precision: str = "fp32"):
    """Encoder features for every row, in row order, as float32 computed under ``precision`` (resolved: fp32, bf16
    or fp16 autocast). Batches are built from length-sorted rows so little compute goes to padding."""
    model.eval().to(device)
    lengths = [len(ids) for ids in tokenized["input_ids"]]
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    columns = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in tokenized.column_names]
    rows = tokenized.select_columns(columns)
    out: list[torch.Tensor | None] = [None] * len(order)
    for start in tqdm(range(0, len(order), batch_size), desc="encode features", unit="batch"):
        idx = order[start : start + batch_size]
        batch = collator([rows[i] for i in idx])
        batch = {k: v.to(device) for k, v in batch.items() if k in columns}
        with autocast(precision, device):
            feats = model.encode_features(**batch).float().cpu()
        for j, i in enumerate(idx):
            out[i] = feats[j]
    return torch.stack(out)


def cached_feature_dataset(model, tokenized, collator, cache_dir: str | os.PathLike, max_length: int,
                           batch_size: int = 64, device: str | torch.device = "cpu",
                           precision: str = "fp32") -> FeatureDataset:
    """Features for ``tokenized`` from the cache, computing (under the resolved ``precision``) and storing them on a
    miss."""
    if not model.pooler.cacheable:
        raise ValueError(
            f"pooling={model.config.pooling!r} with layers={model.config.layers!r} has learned weights over tokens; "
            "its features cannot be cached. Pass --feature_cache false."
        )
    labels = {c: tokenized[c] for c in tokenized.column_names if c.startswith("labels") or c == "task_ids"}
    content = content_digest(model, tokenized)
    key = fingerprint(model, tokenized, max_length, content=content, precision=precision)
    path = Path(cache_dir) / f"{key}.safetensors"
    if path.is_file():
        logger.info("Feature cache hit: %s", path)
        return FeatureDataset(load_file(path)["features"], labels)
    pooler = model.pooler
    if pooler.pooling in LINEAR_POOLINGS and pooler.layers == "last":  # the last row of a layer sweep's entry
        spec = {"pooling": pooler.pooling, "layers": PER_LAYER}
        shared = Path(cache_dir) / f"{fingerprint(model, tokenized, max_length, spec, content, precision)}.safetensors"
        if shared.is_file():
            logger.info("Feature cache hit (last layer of the per-layer entry): %s", shared)
            return FeatureDataset(combine_layers(load_file(shared)["features"], "last").contiguous(), labels)
    logger.info("Feature cache miss: encoding %d texts into %s", len(tokenized), path)
    features = compute_features(model, tokenized, collator, batch_size, device, precision)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file({"features": features.contiguous()}, str(tmp))
    os.replace(tmp, path)
    return FeatureDataset(features, labels)
