"""Write what bench/gpu_suite.sh needs beside the checkout into one git-ignored folder (default .gpu_suite/, at
most 64 MiB): MiniLM's weights in float16 safetensors with its config and tokenizer (~44 MiB), and full IMDB
train/test pre-tokenised with that tokenizer, truncated to --max_length (default 512, the study's length; the head
of each review is kept, as the toolkit's tokenize does), as uint16 ids in compressed npz files.

    python bench/prepare_gpu_suite.py                       # full IMDB (25,000 / 25,000), 512 tokens
    python bench/prepare_gpu_suite.py --limit 200 --out /tmp/suite   # a tiny subset (the tests)

The GPU machine has no ``datasets`` package and no network: the suite reads only these files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.suite_tokens import save_tokens  # noqa: E402
from toolkit.hub import REPO_ROOT, resolve_model_path  # noqa: E402

LIMIT_BYTES = 64 * 2**20
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def write_model(source: Path, out: Path) -> None:
    """The encoder's floating-point tensors as float16 safetensors (no pooler), with its config and tokenizer."""
    out.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(source / "model.safetensors"))
    # BERT's pooler is never used (the toolkit pools itself and loads the encoder without it)
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()
            if not k.startswith("pooler.")}
    save_file(half, str(out / "model.safetensors"), metadata={"format": "pt"})
    for name in MODEL_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)


def write_split(parquet: Path, tokenizer, max_length: int, out: Path, limit: int | None, seed: int) -> dict:
    table = pq.read_table(parquet, columns=["text", "label"])
    texts, labels = table.column("text").to_pylist(), table.column("label").to_pylist()
    if limit is not None and limit < len(texts):
        keep = np.sort(np.random.default_rng(seed).permutation(len(texts))[:limit])
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    ids: list[list[int]] = []
    for start in range(0, len(texts), 1000):
        ids += tokenizer(texts[start:start + 1000], truncation=True, max_length=max_length)["input_ids"]
    save_tokens(out, ids, labels, max_length)
    lengths = [len(x) for x in ids]
    return {"rows": len(ids), "tokens": int(sum(lengths)), "mean_tokens": round(float(np.mean(lengths)), 1),
            "truncated_rows": int(sum(n == max_length for n in lengths)), "labels": sorted(set(labels))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO_ROOT / ".gpu_suite"), help="Folder to write (default .gpu_suite/).")
    parser.add_argument("--model", default="minilm", help="Embedded alias or local model folder (default minilm).")
    parser.add_argument("--data_dir", default=str(REPO_ROOT.parent / "shared" / "data" / "imdb"),
                        help="Folder with IMDB's train.parquet and test.parquet.")
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--limit", type=int, help="Seeded random subset of this many rows per split (tests).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    out, data_dir = Path(args.out), Path(args.data_dir)
    for split in ("train", "test"):
        if not (data_dir / f"{split}.parquet").is_file():
            raise SystemExit(f"prepare_gpu_suite.py: error: --data_dir {data_dir} has no {split}.parquet; give the "
                             "folder holding IMDB's train.parquet and test.parquet.")
    out.mkdir(parents=True, exist_ok=True)
    source = Path(resolve_model_path(args.model))
    write_model(source, out / "minilm")
    tokenizer = AutoTokenizer.from_pretrained(source)
    manifest = {"model": str(args.model), "dtype": "float16", "max_length": args.max_length, "truncation": "head",
                "limit": args.limit, "seed": args.seed, "torch": torch.__version__}
    for split in ("train", "test"):
        manifest[split] = write_split(data_dir / f"{split}.parquet", tokenizer, args.max_length,
                                      out / f"imdb_{split}.npz", args.limit, args.seed)
    manifest["bytes"] = folder_bytes(out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    size = folder_bytes(out)
    print(json.dumps(manifest, indent=2))
    print(f"{out}: {size / 2**20:.1f} MiB in all (limit 64 MiB)")
    if size > LIMIT_BYTES:
        raise SystemExit(f"prepare_gpu_suite.py: error: {out} holds {size / 2**20:.1f} MiB, over the 64 MiB the "
                         "device machine takes; lower --max_length.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
