"""A run's data: raw rows from a reader -> cleaned texts -> one label column per task -> tokens.

Every study goes through ``load_splits``; what differs is the reader (tables and aclImdb, SMP2020 JSON, Douban
reviews) and the task specs. Labels travel as ``labels_<task>`` columns with -100 (classification) or NaN
(regression) where a row has no label for that task. With one source per task the rows also carry ``task_ids``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import datasets
import numpy as np

from .labels import TaskConfig, TaskSpec, balanced_class_weights, encode_labels, validate_tasks
from .readers import DataError, LoadReport, read_split, subsample

if TYPE_CHECKING:
    from ..args import DataArguments

logger = logging.getLogger(__name__)

# (source, data arguments, seed) -> {role: (raw rows, report)}; roles: train, eval and the test split names.
Reader = Callable[[str, "DataArguments", int], dict[str, tuple[datasets.Dataset, LoadReport]]]


@dataclass
class Splits:
    """Train and eval rows (and labelled test splits), with the label space of every task fitted on train."""

    train: datasets.Dataset  # text, labels_<task> per task, task_ids (one source per task), the source's columns
    eval: datasets.Dataset
    tasks: list[TaskConfig]
    reports: dict[str, LoadReport]
    tests: dict[str, datasets.Dataset] = field(default_factory=dict)

    @property
    def label_names(self) -> list[str]:
        """The first task's class names (the only task of a single-task run)."""
        return self.tasks[0].label_names


def test_name(split: str) -> str:
    """The report name of a test split: a file's stem without a ``_labeled`` suffix."""
    return Path(split).stem.removesuffix("_labeled")


def read_table_source(source: str, data_args: "DataArguments", seed: int) -> dict:
    """Tables, aclImdb folders/tarballs and named local sets; a single file is split by ``eval_fraction``."""
    path = Path(source).expanduser()
    roles = {"train": data_args.train_split, "eval": data_args.eval_split,
             **{test_name(s): s for s in data_args.test_splits}}
    if path.is_file() and not path.name.endswith((".tar.gz", ".tgz", ".tar")) and \
            not all(_is_file(split) for split in roles.values()):
        ds = read_split(source, data_args.train_split, data_dir=data_args.data_dir)
        train, eval_ = split_fraction(ds, data_args.eval_fraction, seed, data_args.task_specs[0])
        return {"train": (train, LoadReport(source=source, rows_read=len(train))),
                "eval": (eval_, LoadReport(source=source, rows_read=len(eval_)))}
    out = {}
    for role, split in roles.items():
        where, name = (split, split) if _is_file(split) else (source, split)
        ds = read_split(where, name, data_dir=data_args.data_dir)
        out[role] = (ds, LoadReport(source=f"{where}[{name}]", rows_read=len(ds)))
    return out


def _is_file(split: str) -> bool:
    return bool(Path(split).suffix) and Path(split).is_file()


def split_fraction(ds: datasets.Dataset, fraction: float, seed: int,
                   spec: TaskSpec | None = None) -> tuple[datasets.Dataset, datasets.Dataset]:
    """A seeded train/eval split of one source, stratified on a classification label column where every class
    has two rows; row order is kept inside each part."""
    from sklearn.model_selection import train_test_split

    stratify = None
    if spec is not None and not spec.is_regression and spec.column in ds.column_names:
        labels = [str(v) for v in ds[spec.column]]
        counts = {label: labels.count(label) for label in set(labels)}
        stratify = labels if min(counts.values()) >= 2 else None
    train_idx, eval_idx = train_test_split(np.arange(len(ds)), test_size=fraction, random_state=seed,
                                           stratify=stratify)
    return ds.select(np.sort(train_idx)), ds.select(np.sort(eval_idx))


def prepare_texts(ds: datasets.Dataset, report: LoadReport, text_column: str = "text",
                  cleaner=None) -> datasets.Dataset:
    """Text column checked and renamed to ``text``, byte-order marks stripped, texts cleaned (the original kept as
    ``raw``), and texts that are missing or empty (after cleaning) dropped and counted in ``report``."""
    source = report.source
    if text_column not in ds.column_names:
        raise DataError(f"{source}: no text column '{text_column}' (columns: {ds.column_names}); "
                        "set --text_column to one of them.")
    texts = ds[text_column]
    non_str = [i for i, t in enumerate(texts) if t is not None and not isinstance(t, str)]
    if non_str:
        raise DataError(f"{source}: record {non_str[0]} has a non-text value in column '{text_column}' "
                        f"({len(non_str)} such); the text column must hold strings.")
    texts = [t.lstrip("\ufeff") if t else "" for t in texts]
    columns = [c for c in ds.column_names if c not in (text_column, "text", "raw")]
    ds = ds.select_columns(columns) if columns else datasets.Dataset.from_dict({"_": [0] * len(texts)})
    if cleaner is not None:
        ds = ds.add_column("raw", texts)
        texts = cleaner.clean_batch(texts)
    ds = ds.add_column("text", texts)
    if not columns:
        ds = ds.remove_columns("_")
    keep = [i for i, t in enumerate(texts) if t.strip()]
    report.empty_texts_dropped += len(texts) - len(keep)
    if report.empty_texts_dropped:
        logger.warning("%s: dropped %d empty texts%s", source, report.empty_texts_dropped,
                       " (after cleaning)" if cleaner is not None else "")
    if not keep:
        raise DataError(f"{source}: every text is empty{' after cleaning' if cleaner is not None else ''}.")
    if len(keep) < len(texts):
        ds = ds.select(keep)
    report.rows_kept = len(ds)
    return ds


def load_splits(data_args: "DataArguments", seed: int, reader: Reader = read_table_source,
                cleaner=None) -> Splits:
    """Read every source, prepare its texts, subsample each role, and encode each task's labels."""
    specs = data_args.task_specs
    sources = list(enumerate(data_args.task_datasets)) if data_args.task_datasets else [(None, data_args.dataset)]
    limits = {"train": data_args.max_train_samples, "eval": data_args.max_eval_samples}
    parts, reports = [], {}
    for task_index, source in sources:
        roles = {}
        for role, (ds, report) in reader(source, data_args, seed).items():
            ds = prepare_texts(ds, report, data_args.text_column, cleaner)
            roles[role] = subsample(ds, limits.get(role, data_args.max_test_samples), seed)
            reports[role if task_index is None else f"{specs[task_index].name}[{role}]"] = report
        parts.append((task_index, roles))
    by_role, tasks = label_columns(parts, specs, data_args)
    tests = {role: ds for role, ds in by_role.items() if role not in ("train", "eval")}
    return Splits(by_role["train"], by_role["eval"], tasks, reports, tests)


def label_columns(parts: list[tuple[int | None, dict[str, datasets.Dataset]]], specs: Sequence[TaskSpec],
                  data_args: "DataArguments") -> tuple[dict[str, datasets.Dataset], list[TaskConfig]]:
    """Each task's label space fitted on its train rows (eval and test rows must fit it), and its
    ``labels_<task>`` column on every role; ``task_ids`` when each task has its own source."""
    weights = list(data_args.loss_weights or [1.0] * len(specs))
    tasks, columns = [], {}
    for i, spec in enumerate(specs):
        names = spec.class_names if spec.values is None or spec.is_regression else \
            [_value_name(v) for v in spec.values]
        owned = [(j, role, ds) for j, (ti, roles) in enumerate(parts) if ti is None or ti == i
                 for role, ds in sorted(roles.items(), key=lambda kv: kv[0] != "train")]
        encoded = {}
        for j, role, ds in owned:  # train first: its label set is the head's
            if spec.column not in ds.column_names:
                raise DataError(f"task {spec.name!r} [{role}]: no label column '{spec.column}' "
                                f"(columns: {ds.column_names}); set --label_column or the task spec.")
            encoded[(j, role)], names = encode_labels(ds[spec.column], spec, f"task {spec.name} [{role}]", names)
        train = [v for (j, role), vs in encoded.items() if role == "train" for v in vs]
        tasks.append(_task_config(spec, names, train, weights[i], data_args.class_weighting))
        for j, role, ds in owned:
            columns[(j, role, spec.name)] = encoded[(j, role)]
    by_role = {}
    roles = list(dict.fromkeys(role for _, part in parts for role in part))
    for role in roles:
        pieces = []
        for j, (ti, part) in enumerate(parts):
            if role not in part:
                continue
            ds = part[role]
            for task in tasks:
                ds = ds.add_column(task.label_column, columns.get((j, role, task.name), [task.missing] * len(ds)))
            if ti is not None:
                ds = ds.add_column("task_ids", [ti] * len(ds))
            pieces.append(ds)
        by_role[role] = datasets.concatenate_datasets(pieces) if len(pieces) > 1 else pieces[0]
    return by_role, validate_tasks(tasks)


def _value_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _task_config(spec: TaskSpec, names: list[str], train: list, loss_weight: float,
                 class_weighting: str) -> TaskConfig:
    if spec.is_regression:
        values = np.asarray(train, dtype=np.float64)
        values = values[~np.isnan(values)]
        if len(values) == 0:
            raise DataError(f"task {spec.name!r}: no train row has a label.")
        scale = spec.values or (sorted(set(values.tolist())) if spec.scale else None)
        if scale is not None:
            outside = sorted(set(values.tolist()) - set(map(float, scale)))
            if outside:
                raise DataError(f"task {spec.name!r}: ratings {outside[:5]} are not on the scale {scale}; add them "
                                "to --rating_values.")
        return TaskConfig(spec.name, 1, "regression", loss_weight, target_mean=float(values.mean()),
                          target_std=float(values.std()) or 1.0, values=scale)
    weights = balanced_class_weights(train, len(names)) if class_weighting == "balanced" else None
    return TaskConfig(spec.name, len(names), "single_label_classification", loss_weight, dict(enumerate(names)),
                      values=[float(n) for n in names] if spec.scale else None, class_weights=weights)


def tokenize(ds: datasets.Dataset, tokenizer, max_length: int) -> datasets.Dataset:
    """Tokenise ``text`` with truncation and no padding (the collator pads per batch); keeps the label columns
    (``labels_<task>``) and ``task_ids``."""
    keep = [c for c in ds.column_names if c.startswith("labels_") or c == "task_ids"]
    return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True,
                  remove_columns=[c for c in ds.column_names if c not in keep],
                  desc=f"tokenize (max_length={max_length})")
