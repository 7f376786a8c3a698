"""Star-rating prediction: readers for Douban (short-comments CSV, DMR JSON) and rated tables such as IMDB, and the
rating task they feed to the common run.

The rating values that are labels form an ordered scale (Douban 1..5; IMDB 1,2,3,4,7,8,9,10: IMDB has no 5 or 6,
so its 8 present values are the 8 classes). Classification predicts a position on the scale; regression predicts
the rating itself (learned standardised, reported in stars), clipped to the scale and read as the nearest value for
the classification metrics. "Off-by-one" counts a prediction one step away on the scale as right (for IMDB, 4 and 7
are neighbours). The label space (``TaskConfig.values``) is saved in the model, so inference prints ratings too.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import datasets
import numpy as np

from ..data.labels import TaskSpec
from ..data.readers import DataError, LoadReport, check_utf8, find_named_dataset, read_json, read_split
from ..data.splits import Reader, split_fraction
from ..hub import resolve_path

logger = logging.getLogger(__name__)

HEADS = ("classification", "regression")
DOUBAN_CSV_COLUMNS = ("ID", "Movie_Name_EN", "Movie_Name_CN", "Crawl_Date", "Number", "Username", "Date", "Star",
                      "Comment", "Like")
DEFAULT_RANGES = {"douban_csv": (1, 5), "douban_dmr": (1, 5), "table": (1, 10)}


# ---- arguments ---------------------------------------------------------------------------------------------------
@dataclass
class RatingArguments:
    head: str = field(default="classification", metadata={"help": f"One of {HEADS}: rating classes or a regressor."})
    rating_column: str = field(default="rating", metadata={"help": "Column holding the rating (tables such as IMDB)."})
    rating_range: list[int] | None = field(
        default=None,
        metadata={"help": "Lowest and highest valid rating, e.g. `1 10`; anything else is an error. Default: Douban "
                  "1 5, other tables 1 10."},
    )
    rating_values: list[int] | None = field(
        default=None, metadata={"help": "The rating values that become labels, in order; default: those in train."}
    )
    deduplicate: bool = field(default=True, metadata={"help": "Douban sources: keep the first review of each text."})
    top_words: int = field(default=10, metadata={"help": "Top TF-IDF words (characters for Chinese) per rating."})
    tsne_points: int = field(default=2000, metadata={"help": "At most this many eval texts in the t-SNE map."})
    attention_examples: int = field(default=4, metadata={"help": "Texts drawn in the attention heat-map."})

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"--head {self.head!r} is not one of {HEADS}.")
        bad_range = self.rating_range is not None and (len(self.rating_range) != 2
                                                       or self.rating_range[0] >= self.rating_range[1])
        if bad_range:
            raise ValueError(f"--rating_range {self.rating_range} must be two numbers, low < high (e.g. 1 5).")
        if self.rating_values is not None and len(set(self.rating_values)) < 2:
            raise ValueError(f"--rating_values {self.rating_values} needs at least two distinct values.")
        if self.tsne_points < 10 or self.top_words < 1 or self.attention_examples < 0:
            raise ValueError("--tsne_points must be >= 10, --top_words >= 1 and --attention_examples >= 0.")


# ---- reading and validating ratings ------------------------------------------------------------------------------
def parse_rating(value: Any) -> int | None:
    """An integer rating from an int, an integral float (4.0) or a digit string ("4"); None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if math.isfinite(value) and float(value).is_integer() else None
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.0*)?\s*", value):
        return int(float(value))
    return None


def validate_ratings(raw: Sequence[Any], positions: Sequence[str], source: str, low: int, high: int) -> list[int]:
    """Whole-number ratings in [low, high], or a DataError naming every bad record's position (first ten)."""
    ratings, bad = [], []
    for value, where in zip(raw, positions):
        rating = parse_rating(value)
        if rating is None or not low <= rating <= high:
            shown = "missing" if value is None or (isinstance(value, str) and not value.strip()) else repr(value)
            bad.append(f"{where}: {shown}")
        ratings.append(rating)
    if bad:
        shown = "; ".join(bad[:10]) + ("; ..." if len(bad) > 10 else "")
        raise DataError(
            f"{source}: {len(bad)} record(s) have a bad rating ({shown}). "
            f"Ratings must be whole numbers from {low} to {high}: fix or remove those records, or set --rating_range."
        )
    return ratings


def _records_to_dataset(records: Iterable[tuple[str, Any, Any]], source: str, fmt: str, low: int, high: int,
                        deduplicate: bool) -> tuple[datasets.Dataset, LoadReport]:
    """(position, text, raw rating) records -> Dataset(text, rating, position): empty texts dropped, ratings
    validated, duplicate texts dropped (first kept) when asked."""
    report = LoadReport(source=source, format=fmt)
    kept: dict[str, tuple[str, Any]] = {}
    rows: list[tuple[str, str, Any]] = []
    for where, text, rating in records:
        report.rows_read += 1
        if not isinstance(text, str) or not text.strip():
            report.empty_texts_dropped += 1
            continue
        if deduplicate:
            key = text.strip()
            if key in kept:
                report.duplicates_dropped += 1
                report.duplicates_with_other_label += parse_rating(kept[key][1]) != parse_rating(rating)
                continue
            kept[key] = (where, rating)
        rows.append((where, text, rating))
    if not rows:
        raise DataError(f"{source}: no records with text ({report.rows_read} read).")
    ratings = validate_ratings([r[2] for r in rows], [r[0] for r in rows], source, low, high)
    report.rows_kept = len(rows)
    if report.duplicates_with_other_label:
        logger.warning("%s: %d duplicate texts carried another rating than their first copy (first kept).", source,
                       report.duplicates_with_other_label)
    ds = datasets.Dataset.from_dict({"text": [r[1] for r in rows], "rating": ratings,
                                     "position": [r[0] for r in rows]})
    return ds, report


def read_douban_csv(path: str | Path, low: int = 1, high: int = 5, deduplicate: bool = True):
    """The Douban Movie Short Comments CSV (ID,Movie_Name_EN,...,Star,Comment,Like): text = Comment, rating = Star."""
    path = Path(path)
    check_utf8(path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("Star", "Comment") if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: no {missing} column(s) (header: {reader.fieldnames}); expected the Douban short "
                            f"comments layout {','.join(DOUBAN_CSV_COLUMNS)}.")
        records = [(f"line {reader.line_num}", row["Comment"], row["Star"]) for row in reader]
    return _records_to_dataset(records, str(path), "douban_csv", low, high, deduplicate)


def _dmr_records(data: dict, path: Path) -> Iterable[tuple[str, Any, Any]]:
    for key, review in data.items():
        if not isinstance(review, dict):
            raise DataError(f"{path}: '{key}' is a {type(review).__name__}, expected a review object with text/stars.")
        yield key, review.get("text"), review.get("stars")
        nested = review.get("user_reviews") or {}
        items = nested.items() if isinstance(nested, dict) else enumerate(nested)
        for sub_key, sub in items:
            yield f"{key}.user_reviews.{sub_key}", sub.get("text"), sub.get("stars")


def read_douban_dmr(path: str | Path, low: int = 1, high: int = 5, deduplicate: bool = True):
    """The DMR JSON: reviews with ``stars`` and each user's earlier reviews nested under ``user_reviews``."""
    path = Path(path)
    data = read_json(path, "a JSON object of reviews")
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object of reviews (review0, review1, ...), "
                        f"got {type(data).__name__}.")
    return _records_to_dataset(_dmr_records(data, path), str(path), "douban_dmr", low, high, deduplicate)


def read_rating_table(source: str, split: str, text_column: str = "text", rating_column: str = "rating",
                      low: int = 1, high: int = 10, data_dir: str | None = None):
    """A rated table split (IMDB parquet with ``rating``, or any CSV/JSON/parquet read by ``toolkit.data``)."""
    raw = read_split(source, split, data_dir=data_dir)
    where = f"{source}[{split}]"
    for column in (text_column, rating_column):
        if column not in raw.column_names:
            raise DataError(f"{where}: no column '{column}' (columns: {raw.column_names}); set --text_column / "
                            "--rating_column.")
    records = ((f"record {i}", t, r) for i, (t, r) in enumerate(zip(raw[text_column], raw[rating_column])))
    return _records_to_dataset(records, where, "table", low, high, deduplicate=False)


def dataset_tag(source: str) -> str:
    """A short name for output folders: douban_dmr for .../douban_dmr/reviews.json, else the file or folder stem."""
    path = Path(source)
    return (path.parent.name if path.name == "reviews.json" else path.stem or path.name).lower() or "data"


def detect_format(source: str, data_dir: str | None = None) -> tuple[str, Path | None]:
    """('douban_dmr' | 'douban_csv', file) for Douban sources, ('table', None) for split-based sources."""
    path = resolve_path(source)
    if not path.exists() and "/" not in source and not path.suffix:
        path = find_named_dataset(source, data_dir) or path
    if path.is_dir() and (path / "reviews.json").is_file():
        path = path / "reviews.json"
    if path.is_file() and path.suffix.lower() == ".json":
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(1 << 16)
        if head.lstrip().startswith("{") and ('"stars"' in head or '"user_reviews"' in head):
            return "douban_dmr", path
    if path.is_file() and path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            header = next(csv.reader([fh.readline()]), [])
        if "Star" in header and "Comment" in header:
            return "douban_csv", path
    return "table", None


# ---- the rating task -------------------------------------------------------------------------------------------
def rating_task_spec(rating_args: RatingArguments) -> TaskSpec:
    """One head on the ``rating`` column: classes over the scale's values, or a regressor on the scale."""
    values = [float(v) for v in rating_args.rating_values] if rating_args.rating_values else None
    return TaskSpec("rating", "rating", rating_args.head, scale=True, values=values)


def rating_reader(rating_args: RatingArguments) -> Reader:
    """The ``toolkit.data.splits`` reader of a rating source: ratings validated against --rating_range; a Douban
    file (one source, deduplicated) is split by a seeded stratified --eval_fraction."""

    def read(source: str, data_args, seed: int) -> dict:
        fmt, path = detect_format(source, data_args.data_dir)
        low, high = rating_args.rating_range or DEFAULT_RANGES[fmt]
        if fmt == "table":
            return {role: read_rating_table(source, split, data_args.text_column, rating_args.rating_column, low,
                                            high, data_args.data_dir)
                    for role, split in (("train", data_args.train_split), ("eval", data_args.eval_split))}
        reader = read_douban_dmr if fmt == "douban_dmr" else read_douban_csv
        full, report = reader(path, low, high, rating_args.deduplicate)
        train, eval_ = split_fraction(full, data_args.eval_fraction, seed, TaskSpec("rating", "rating"))
        held_out = LoadReport(source=str(path), format=fmt, rows_read=len(eval_))
        return {"train": (train, report), "eval": (eval_, held_out)}

    return read


def pooled_outputs(trainer, indices: Sequence[int]) -> dict[str, list]:
    """Pooled vectors (and self-attention weights over real tokens, with their token ids) for the given eval rows,
    in that order; works on cached features too (then without attention)."""
    import torch

    from ..evaluation.predict import iterate_outputs

    ds = trainer.eval_dataset
    subset = ds.select(list(indices)) if isinstance(ds, datasets.Dataset) else torch.utils.data.Subset(ds, indices)
    batches = [(None, trainer._prepare_inputs(batch)) for batch in trainer.get_eval_dataloader(subset)]
    pooled, attention, token_ids = [], [], []
    for (_, batch), (_, out) in zip(batches, iterate_outputs(trainer.model, batches, pooled=True)):
        pooled.append(out.pooled.float().cpu().numpy())
        if out.attention is not None:
            mask = batch["attention_mask"].bool().cpu()
            for att, ids, m in zip(out.attention.float().cpu(), batch["input_ids"].cpu(), mask):
                attention.append(att[:, m].numpy())
                token_ids.append(ids[m].tolist())
    return {"pooled": np.concatenate(pooled) if pooled else np.zeros((0, 0)), "attention": attention,
            "token_ids": token_ids}
