"""Read raw rows from local files (or the hub when reachable): tables, aclImdb folders and tarballs, JSON.

Readers return ``datasets.Dataset`` rows as the source has them; ``toolkit.data.splits`` turns them into a run's
splits (text column, label columns per task). Problems in the input are raised as ``DataError`` naming the file,
the record and what to do.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..hub import REPO_ROOT, resolve_path

if TYPE_CHECKING:  # imported where used, so label spaces and the model load without the datasets package
    import datasets

logger = logging.getLogger(__name__)

TABLE_SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}
IMDB_LABELS = ["neg", "pos"]
# Class names of named datasets whose label column holds ids.
KNOWN_CLASS_NAMES = {"imdb": IMDB_LABELS, "stanfordnlp/imdb": IMDB_LABELS}


class DataError(ValueError):
    """Bad or missing input data; the message says which file or record and what to do."""


@dataclass
class LoadReport:
    """What happened while reading one source, written into the run's results."""

    source: str
    format: str = "table"
    rows_read: int = 0
    empty_texts_dropped: int = 0
    duplicates_dropped: int = 0
    duplicates_with_other_label: int = 0
    rows_kept: int = 0


def data_search_paths(data_dir: str | os.PathLike | None = None) -> list[Path]:
    paths = [Path(p) for p in (data_dir, os.environ.get("TOOLKIT_DATA")) if p]
    # Where a checkout finds the shared data folder: <repo>/../shared/data, or $TOOLKIT_DATA.
    paths += [REPO_ROOT.parent / "shared" / "data", Path.cwd() / "data", Path.cwd().parent / "shared" / "data"]
    return paths


def find_named_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """A local copy of a named dataset (``imdb``) in the search paths, or None."""
    for root in data_search_paths(data_dir):
        candidate = root / name
        if candidate.is_dir():
            return candidate
    return None


def check_utf8(path: Path, chunk_size: int = 1 << 20) -> None:
    """Raise a DataError naming the byte offset of the first invalid UTF-8 sequence."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{path}: not valid UTF-8 at byte {offset + err.start} ({err.reason}). "
                    "Re-encode the file as UTF-8 (for example `iconv -f GB18030 -t UTF-8`)."
                ) from None
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: truncated UTF-8 sequence at the end of the file ({err.reason}).") from None


def _json_error(err: json.JSONDecodeError) -> str:
    """What is wrong and where on its line, without json's own ``line N column M (char K)``."""
    return f"{err.msg} at column {err.colno}"


def read_json(path: str | os.PathLike, expected: str) -> Any:
    """A whole JSON file, checked for UTF-8; ``expected`` describes the layout for the error message."""
    path = Path(path)
    check_utf8(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: not valid JSON ({_json_error(err)}); expected {expected}.") from None


def find_invalid_json(path: Path) -> str | None:
    """``<file>:<line>: not valid JSON (...)`` for the first malformed line of a JSON Lines file (or the error of a
    whole-document .json file), or None when the file parses. Slow; only run after the fast reader failed."""
    if path.suffix.lower() == ".json":
        text = path.read_text(encoding="utf-8-sig")
        try:
            json.loads(text)
            return None
        except json.JSONDecodeError as err:
            first = next((line for line in text.split("\n") if line.strip()), "")
            try:  # a first line that parses alone: JSON Lines in a .json file, checked line by line below
                json.loads(first)
            except json.JSONDecodeError:
                return f"{path}:{err.lineno}: not valid JSON ({_json_error(err)})"
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.decode("utf-8").rstrip("\r\n")
            if number == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            try:
                json.loads(line)
            except json.JSONDecodeError as err:
                return f"{path}:{number}: not valid JSON ({_json_error(err)})"
    return None


def _read_table(path: Path, cache_dir: str | None = None) -> datasets.Dataset:
    fmt = TABLE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unknown file type '{path.suffix}'; use one of {sorted(TABLE_SUFFIXES)}.")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty.")
    if fmt != "parquet":
        check_utf8(path)
    kwargs: dict[str, Any] = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
    import datasets

    try:
        ds = datasets.load_dataset(fmt, data_files=str(path), split="train", cache_dir=cache_dir, **kwargs)
    except Exception as err:
        bad_json = find_invalid_json(path) if fmt == "json" else None
        if bad_json is not None:
            raise DataError(bad_json) from None
        cause = err.__cause__ or err  # datasets wraps the reader's own error in a DatasetGenerationError
        detail = " ".join(str(cause).split())
        raise DataError(f"{path}: could not be read as {fmt} ({type(cause).__name__}: {detail}).") from None
    if len(ds) == 0:
        raise DataError(f"{path}: no records.")
    return ds


_ACL_NAME = re.compile(r"(\d+)_(\d+)\.txt$")


def _acl_record(name: str, raw: bytes, label: int, where: str) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{where}: not valid UTF-8 at byte {err.start}.") from None
    match = _ACL_NAME.search(name)
    return {
        "id": int(match.group(1)) if match else -1,
        "text": text,
        "label": label,
        "rating": int(match.group(2)) if match else -1,
    }


def _read_aclimdb_dir(root: Path, split: str) -> datasets.Dataset:
    rows = []
    for label, sentiment in enumerate(IMDB_LABELS):
        for file in sorted((root / split / sentiment).glob("*.txt")):
            rows.append(_acl_record(file.name, file.read_bytes(), label, str(file)))
    if not rows:
        raise DataError(f"{root}: no reviews under {split}/neg or {split}/pos.")
    import datasets

    return datasets.Dataset.from_list(rows)


def _read_aclimdb_tar(path: Path, split: str) -> datasets.Dataset:
    pattern = re.compile(rf"(^|/){split}/(neg|pos)/[^/]+\.txt$")
    rows = []
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                match = pattern.search(member.name)
                if member.isfile() and match:
                    raw = tar.extractfile(member).read()
                    label = IMDB_LABELS.index(match.group(2))
                    rows.append(_acl_record(member.name, raw, label, f"{path}:{member.name}"))
    except tarfile.TarError as err:
        raise DataError(f"{path}: not a readable tar archive ({err}).") from None
    if not rows:
        raise DataError(f"{path}: no aclImdb reviews for split '{split}' (expected aclImdb/{split}/pos/*.txt).")
    import datasets

    return datasets.Dataset.from_list(rows)


def _split_file(folder: Path, split: str) -> Path | None:
    for suffix in TABLE_SUFFIXES:
        candidate = folder / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_split(source: str, split: str, data_dir: str | None = None, cache_dir: str | None = None) -> datasets.Dataset:
    """Read one split from a file, a folder (aclImdb layout or ``<split>.<ext>`` files), a tarball,
    or a dataset name found locally (``imdb`` → ``../shared/data/imdb``) or on the hub. Relative paths
    that do not exist from here are tried from the repository root."""
    path = resolve_path(source)
    if not path.exists() and "/" not in source and not path.suffix:
        local = find_named_dataset(source, data_dir)
        if local is not None:
            path = local
        else:
            return _read_hub(source, split, cache_dir)
    if not path.exists():
        raise DataError(f"Data path '{source}' does not exist.")
    if path.is_file():
        if path.name.endswith((".tar.gz", ".tgz", ".tar")):
            return _read_aclimdb_tar(path, split)
        return _read_table(path, cache_dir)
    for root in (path, path / "aclImdb"):
        if (root / split / "pos").is_dir():
            return _read_aclimdb_dir(root, split)
    file = _split_file(path, split)
    if file is None:
        raise DataError(
            f"{path}: found no '{split}' data (looked for the aclImdb layout {split}/pos, {split}/neg and for "
            f"{split}.parquet/.csv/.json/.jsonl)."
        )
    return _read_table(file, cache_dir)


def _read_hub(name: str, split: str, cache_dir: str | None) -> datasets.Dataset:
    import datasets

    try:
        return datasets.load_dataset(name, split=split, cache_dir=cache_dir)
    except Exception as err:
        searched = ", ".join(str(p) for p in data_search_paths())
        raise DataError(
            f"Dataset '{name}' is not in any local data folder ({searched}) and could not be loaded from the hub "
            f"({type(err).__name__}). Pass a local path instead: an aclImdb folder or tarball, or "
            "parquet/CSV/JSON(L) files with text and label columns."
        ) from None


def subsample(ds: datasets.Dataset, max_samples: int | None, seed: int) -> datasets.Dataset:
    """A seeded random subset (files are often sorted by label, so never the first N)."""
    if max_samples is None or max_samples >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(max_samples))
