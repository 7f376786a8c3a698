"""Star-rating prediction: readers for Douban (short-comments CSV, DMR JSON) and rated tables such as IMDB,
the rating scale that maps ratings to labels, and the rating metrics (accuracy, off-by-one, MAE, ...).

A ``RatingScale`` holds the rating values that are labels, in order (Douban 1..5; IMDB 1,2,3,4,7,8,9,10:
IMDB has no 5 or 6, so its 8 present values are the 8 classes). Classification predicts the index of a
value; regression predicts the value itself (no normalisation), clipped to the scale and rounded to the
nearest value for the classification metrics. "Off-by-one" counts a prediction one step away on the scale
as correct (for IMDB, 4 and 7 are neighbours).
"""

from __future__ import annotations

import csv
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import datasets
import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import f1_score

from .data import DataError, check_utf8, find_named_dataset, read_json, read_split, subsample
from .hub import resolve_path

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
    eval_fraction: float = field(
        default=0.2, metadata={"help": "Single-file sources (Douban CSV/DMR): seeded stratified share held out."}
    )
    deduplicate: bool = field(default=True, metadata={"help": "Douban sources: keep the first review of each text."})
    clean: bool = field(default=False, metadata={"help": "Clean texts with toolkit.cleaning (Weibo/Douban noise)."})
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
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"--eval_fraction {self.eval_fraction} must lie strictly between 0 and 1.")
        if self.tsne_points < 10 or self.top_words < 1 or self.attention_examples < 0:
            raise ValueError("--tsne_points must be >= 10, --top_words >= 1 and --attention_examples >= 0.")


# ---- the scale ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RatingScale:
    """The rating values used as labels, ascending; label id = position in ``values``."""

    values: tuple[int, ...]

    def __post_init__(self):
        if len(self.values) < 2 or list(self.values) != sorted(set(self.values)):
            raise ValueError(f"rating values {self.values} must be at least two distinct values in ascending order.")

    @property
    def names(self) -> list[str]:
        return [str(v) for v in self.values]

    def to_ids(self, ratings: Sequence[int]) -> np.ndarray:
        index = {v: i for i, v in enumerate(self.values)}
        return np.array([index[int(r)] for r in ratings], dtype=np.int64)

    def to_values(self, ids: Sequence[int]) -> np.ndarray:
        return np.asarray(self.values, dtype=np.float64)[np.asarray(ids, dtype=np.int64)]

    def clip(self, predictions: Sequence[float]) -> np.ndarray:
        return np.clip(np.asarray(predictions, dtype=np.float64), self.values[0], self.values[-1])

    def nearest_ids(self, predictions: Sequence[float]) -> np.ndarray:
        """Label id of the scale value nearest to each (clipped) prediction; a tie goes to the lower value."""
        distance = np.abs(self.clip(predictions)[:, None] - np.asarray(self.values, dtype=np.float64)[None, :])
        return distance.argmin(axis=1)


def predictions_from_output(output: np.ndarray, scale: RatingScale, head: str) -> tuple[np.ndarray, np.ndarray]:
    """(label ids, point predictions in rating units): argmax for classification; for regression the clipped
    raw value (for MAE/RMSE/Spearman) and its nearest scale value (for accuracy and the matrices)."""
    output = np.asarray(output, dtype=np.float64)
    if head == "regression":
        raw = output.reshape(len(output), -1)[:, 0]
        return scale.nearest_ids(raw), scale.clip(raw)
    ids = output.argmax(axis=-1)
    return ids, scale.to_values(ids)


# ---- metrics -----------------------------------------------------------------------------------------------------
def rating_metrics(true_ids: Sequence[int], pred_ids: Sequence[int], scale: RatingScale,
                   point_predictions: Sequence[float] | None = None) -> dict[str, float]:
    """Accuracy, off-by-one accuracy (one step on the scale counts as right), macro-F1, and MAE/RMSE/Spearman in
    rating units. ``point_predictions`` (regression: clipped raw values) replace the predicted values for the
    last three when given; ``mae_rounded`` always uses the predicted scale values."""
    true_ids, pred_ids = np.asarray(true_ids, dtype=np.int64), np.asarray(pred_ids, dtype=np.int64)
    if true_ids.shape != pred_ids.shape or true_ids.size == 0:
        raise ValueError(f"need as many predictions as labels (>0), got {pred_ids.shape} and {true_ids.shape}.")
    true_values, pred_values = scale.to_values(true_ids), scale.to_values(pred_ids)
    points = pred_values if point_predictions is None else np.asarray(point_predictions, dtype=np.float64)
    errors = points - true_values
    if np.ptp(points) == 0 or np.ptp(true_values) == 0:
        spearman = float("nan")  # undefined for a constant ranking
    else:
        spearman = float(spearmanr(true_values, points).statistic)
    return {
        "accuracy": float(np.mean(true_ids == pred_ids)),
        "off_by_one_accuracy": float(np.mean(np.abs(true_ids - pred_ids) <= 1)),
        "macro_f1": float(f1_score(true_ids, pred_ids, average="macro", zero_division=0)),
        "mae": float(np.mean(np.abs(errors))),
        "rmse": float(math.sqrt(np.mean(errors**2))),
        "mae_rounded": float(np.mean(np.abs(pred_values - true_values))),
        "spearman": spearman,
    }


def label_ids_from_targets(targets: Sequence[float], scale: RatingScale, head: str) -> np.ndarray:
    """Label ids from the Trainer's labels: ids for classification, rating values for regression."""
    targets = np.asarray(targets)
    return scale.to_ids(np.rint(targets).astype(int)) if head == "regression" else targets.astype(np.int64)


def compute_rating_metrics(scale: RatingScale, head: str) -> Callable:
    """A ``compute_metrics`` for ``Trainer`` that reports ``rating_metrics``."""

    def compute(eval_pred) -> dict[str, float]:
        output = eval_pred.predictions
        output = output[0] if isinstance(output, (tuple, list)) else output
        pred_ids, points = predictions_from_output(output, scale, head)
        true_ids = label_ids_from_targets(eval_pred.label_ids, scale, head)
        return rating_metrics(true_ids, pred_ids, scale, points if head == "regression" else None)

    return compute


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


@dataclass
class RatingLoadReport:
    """What happened while reading one source, written into the run's results."""

    source: str
    format: str
    rows_read: int = 0
    empty_texts_dropped: int = 0
    duplicates_dropped: int = 0
    duplicates_with_other_rating: int = 0
    rows_kept: int = 0
    rating_counts: dict[str, int] = field(default_factory=dict)


def _records_to_dataset(records: Iterable[tuple[str, Any, Any]], source: str, fmt: str, low: int, high: int,
                        deduplicate: bool) -> tuple[datasets.Dataset, RatingLoadReport]:
    """(position, text, raw rating) records -> Dataset(text, rating, position): empty texts dropped, ratings
    validated, duplicate texts dropped (first kept) when asked."""
    report = RatingLoadReport(source=source, format=fmt)
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
                report.duplicates_with_other_rating += parse_rating(kept[key][1]) != parse_rating(rating)
                continue
            kept[key] = (where, rating)
        rows.append((where, text, rating))
    if not rows:
        raise DataError(f"{source}: no records with text ({report.rows_read} read).")
    ratings = validate_ratings([r[2] for r in rows], [r[0] for r in rows], source, low, high)
    report.rows_kept = len(rows)
    report.rating_counts = {str(v): ratings.count(v) for v in sorted(set(ratings))}
    if report.duplicates_with_other_rating:
        logger.warning("%s: %d duplicate texts carried another rating than their first copy (first kept).", source,
                       report.duplicates_with_other_rating)
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


# ---- splits ------------------------------------------------------------------------------------------------------
@dataclass
class RatingSplits:
    train: datasets.Dataset  # text, rating (int), position, label (id or float rating)
    eval: datasets.Dataset
    scale: RatingScale
    head: str
    reports: dict[str, RatingLoadReport]

    @property
    def label_names(self) -> list[str]:
        return self.scale.names

    @property
    def mean_rating(self) -> float:
        return float(np.mean(self.train["rating"]))


def _stratified_split(ds: datasets.Dataset, fraction: float, seed: int) -> tuple[datasets.Dataset, datasets.Dataset]:
    from sklearn.model_selection import train_test_split

    ratings = ds["rating"]
    counts = {r: ratings.count(r) for r in set(ratings)}
    stratify = ratings if min(counts.values()) >= 2 else None
    train_idx, eval_idx = train_test_split(np.arange(len(ds)), test_size=fraction, random_state=seed,
                                           stratify=stratify)
    return ds.select(np.sort(train_idx)), ds.select(np.sort(eval_idx))


def load_rating_splits(data_args, rating_args: RatingArguments, seed: int) -> RatingSplits:
    """Read the source, validate ratings, split single-file sources, subsample, and add ``label`` per head."""
    fmt, path = detect_format(data_args.dataset, data_args.data_dir)
    low, high = rating_args.rating_range or DEFAULT_RANGES[fmt]
    if fmt == "table":
        train, train_report = read_rating_table(data_args.dataset, data_args.train_split, data_args.text_column,
                                                rating_args.rating_column, low, high, data_args.data_dir)
        eval_, eval_report = read_rating_table(data_args.dataset, data_args.eval_split, data_args.text_column,
                                               rating_args.rating_column, low, high, data_args.data_dir)
        reports = {"train": train_report, "eval": eval_report}
    else:
        reader = read_douban_dmr if fmt == "douban_dmr" else read_douban_csv
        full, report = reader(path, low, high, rating_args.deduplicate)
        train, eval_ = _stratified_split(full, rating_args.eval_fraction, seed)
        reports = {"all": report}
    train = subsample(train, data_args.max_train_samples, seed)
    eval_ = subsample(eval_, data_args.max_eval_samples, seed)
    scale = RatingScale(tuple(sorted(set(rating_args.rating_values or train["rating"]))))
    for role, ds in (("train", train), ("eval", eval_)):
        outside = sorted(set(ds["rating"]) - set(scale.values))
        if outside:
            raise DataError(f"{data_args.dataset} ({role}): ratings {outside} are not in the label scale "
                            f"{list(scale.values)}; add them to --rating_values or train on data that has them.")
    if rating_args.clean:
        train, eval_ = (clean_texts(ds) for ds in (train, eval_))
    train, eval_ = (with_labels(ds, scale, rating_args.head) for ds in (train, eval_))
    return RatingSplits(train, eval_, scale, rating_args.head, reports)


def with_labels(ds: datasets.Dataset, scale: RatingScale, head: str) -> datasets.Dataset:
    """Add ``label``: the scale index (classification) or the rating as a float (regression target, unscaled)."""
    labels = [float(r) for r in ds["rating"]] if head == "regression" else scale.to_ids(ds["rating"]).tolist()
    ds = ds.remove_columns([c for c in ("label",) if c in ds.column_names])
    return ds.add_column("label", labels)


def clean_texts(ds: datasets.Dataset) -> datasets.Dataset:
    """Apply ``toolkit.cleaning`` (when that module exists) to the text column."""
    try:
        from .cleaning import Cleaner
    except ImportError:
        raise ValueError("--clean needs toolkit.cleaning, which this checkout does not have; drop --clean.") from None
    cleaner = Cleaner()
    return ds.map(lambda batch: {"text": cleaner.clean_batch(batch["text"])}, batched=True, desc="clean")


def cleaning_options(rating_args: RatingArguments) -> dict | None:
    if not rating_args.clean:
        return None
    from .cleaning import Cleaner

    return Cleaner().to_dict()


# ---- model -------------------------------------------------------------------------------------------------------
def build_rating_model(model_args, scale: RatingScale, head: str, cleaning: dict | None = None,
                       target_mean: float | None = None):
    """``EncoderClassifier`` with one class per scale value, or one output with problem_type regression.

    A regressor's output bias starts at ``target_mean`` (the mean training rating): its target is the raw rating, and
    from 0 a fine-tuning learning rate (1e-5..5e-5) needs many epochs just to climb to the middle of the scale."""
    from .modeling import EncoderClassifier

    if head == "regression":
        labels = {"num_labels": 1, "problem_type": "regression", "id2label": {0: "rating"}, "label2id": {"rating": 0}}
    else:
        labels = {"num_labels": len(scale.values), "problem_type": "single_label_classification",
                  "id2label": dict(enumerate(scale.names)), "label2id": {n: i for i, n in enumerate(scale.names)}}
    model = EncoderClassifier.from_encoder(model_args.model_name_or_path, cache_dir=model_args.model_cache_dir,
                                           rating_values=list(scale.values), cleaning=cleaning, **labels,
                                           **model_args.head_kwargs())
    if head == "regression" and target_mean is not None:
        import torch

        with torch.no_grad():
            model.head[-1].bias.fill_(float(target_mean))
    return model


def pooled_outputs(trainer, indices: Sequence[int]) -> dict[str, list]:
    """Pooled vectors (and self-attention weights over real tokens, with their token ids) for the given eval rows,
    in that order; works on cached features too (then without attention)."""
    import torch

    ds = trainer.eval_dataset
    subset = ds.select(list(indices)) if isinstance(ds, datasets.Dataset) else torch.utils.data.Subset(ds, indices)
    model = trainer.model.eval()
    pooled, attention, token_ids = [], [], []
    with torch.no_grad():
        for batch in trainer.get_eval_dataloader(subset):
            batch = trainer._prepare_inputs(batch)
            out = model.pool(input_ids=batch.get("input_ids"), attention_mask=batch.get("attention_mask"),
                             token_type_ids=batch.get("token_type_ids"), features=batch.get("features"))
            pooled.append(out.pooled.float().cpu().numpy())
            if out.attention is not None:
                mask = batch["attention_mask"].bool().cpu()
                for att, ids, m in zip(out.attention.float().cpu(), batch["input_ids"].cpu(), mask):
                    attention.append(att[:, m].numpy())
                    token_ids.append(ids[m].tolist())
    return {"pooled": np.concatenate(pooled) if pooled else np.zeros((0, 0)), "attention": attention,
            "token_ids": token_ids}
