"""The label space of a task: what a head predicts and how raw labels become training targets.

One type serves every study: class names (IMDB neg/pos, Weibo's six emotions), sparse integer labels read as their
sorted set (IMDB ratings 1-4, 7-10 are 8 classes), an ordered rating scale (``values``: classification over the
scale's positions, or a regressor whose outputs are also read as the nearest rating), and regression with its
standardisation (the head learns (y - mean) / std; outputs are in the label's units). A model config stores a list
of these, so data preparation, the loss, metrics, reports and inference all read the same definition.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .readers import DataError

IGNORE_INDEX = -100
TASK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
PROBLEM_TYPES = ("single_label_classification", "regression")
SHORT_PROBLEM_TYPES = {"classification": "single_label_classification", "regression": "regression"}


@dataclass
class TaskConfig:
    """One head: its name, output size, loss, label names and (for ratings) the ordered scale of values."""

    name: str
    num_labels: int
    problem_type: str = "single_label_classification"
    loss_weight: float = 1.0
    id2label: dict[int, str] = field(default_factory=dict)
    target_mean: float = 0.0  # regression: the head predicts (y - mean) / std, so its loss is on the scale of CE
    target_std: float = 1.0
    values: list[float] | None = None  # an ordered rating scale: label id i means values[i]
    class_weights: list[float] | None = None  # classification: per-class cross-entropy weights

    def __post_init__(self):
        where = f"task {self.name!r}"
        if not isinstance(self.name, str) or not TASK_NAME.match(self.name):
            raise ValueError(f"Task name {self.name!r} must start with a letter and hold only letters, digits and _ "
                             "(it becomes the label column labels_<task>).")
        self.problem_type = SHORT_PROBLEM_TYPES.get(self.problem_type, self.problem_type)
        if self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"{where}: problem_type={self.problem_type!r} is not one of {PROBLEM_TYPES} "
                             "(or the short forms classification/regression).")
        if self.values is not None:
            self.values = [float(v) for v in self.values]
            if len(self.values) < 2 or self.values != sorted(set(self.values)):
                raise ValueError(f"{where}: rating values {self.values} must be at least two distinct values in "
                                 "ascending order.")
        if self.problem_type == "regression":
            if self.num_labels != 1:
                raise ValueError(f"{where}: a regression head has num_labels=1, got {self.num_labels}.")
            self.id2label = {}
            if self.class_weights is not None:
                raise ValueError(f"{where}: class weights apply to classification heads only.")
            if not (math.isfinite(self.target_mean) and math.isfinite(self.target_std) and self.target_std > 0):
                raise ValueError(f"{where}: target_mean={self.target_mean} / target_std={self.target_std} must be "
                                 "finite with std > 0.")
        else:
            if self.num_labels < 2:
                raise ValueError(f"{where}: a classification head needs num_labels >= 2, got {self.num_labels}.")
            self.id2label = {int(k): str(v) for k, v in (self.id2label or {}).items()} or \
                {i: str(i) for i in range(self.num_labels)}
            if sorted(self.id2label) != list(range(self.num_labels)):
                raise ValueError(f"{where}: id2label keys {sorted(self.id2label)} must be 0..{self.num_labels - 1}.")
            if self.values is not None and len(self.values) != self.num_labels:
                raise ValueError(f"{where}: {len(self.values)} rating values for {self.num_labels} classes.")
            if self.class_weights is not None:
                self.class_weights = [float(w) for w in self.class_weights]
                if len(self.class_weights) != self.num_labels or not all(
                        math.isfinite(w) and w >= 0 for w in self.class_weights):
                    raise ValueError(f"{where}: class_weights {self.class_weights} must be {self.num_labels} finite "
                                     "numbers >= 0.")
        if not (isinstance(self.loss_weight, (int, float)) and math.isfinite(self.loss_weight)
                and self.loss_weight >= 0):
            raise ValueError(f"{where}: loss_weight={self.loss_weight!r} must be a finite number >= 0.")

    @property
    def is_regression(self) -> bool:
        return self.problem_type == "regression"

    @property
    def label2id(self) -> dict[str, int]:
        return {v: k for k, v in self.id2label.items()}

    @property
    def label_names(self) -> list[str]:
        return [self.id2label[i] for i in range(self.num_labels)] if not self.is_regression else []

    @property
    def label_column(self) -> str:
        return f"labels_{self.name}"

    @property
    def missing(self) -> float | int:
        """The target that marks "no label for this task" in a row."""
        return float("nan") if self.is_regression else IGNORE_INDEX

    @property
    def scale_names(self) -> list[str]:
        """Rating scale: each value as a label (``"4"``, not ``"4.0"``)."""
        return [str(int(v)) if float(v).is_integer() else str(v) for v in self.values or []]

    def to_values(self, ids: Sequence[int]) -> np.ndarray:
        """Rating scale: the value of each label id."""
        return np.asarray(self.values, dtype=np.float64)[np.asarray(ids, dtype=np.int64)]

    def nearest_ids(self, predictions: Sequence[float]) -> np.ndarray:
        """Rating scale: the id of the value nearest each prediction (clipped to the scale; ties go lower)."""
        values = np.asarray(self.values, dtype=np.float64)
        clipped = np.clip(np.asarray(predictions, dtype=np.float64), values[0], values[-1])
        return np.abs(clipped[:, None] - values[None, :]).argmin(axis=1)


def validate_tasks(tasks: Sequence[TaskConfig | dict]) -> list[TaskConfig]:
    """TaskConfigs from dicts; at least one task, names unique."""
    tasks = [t if isinstance(t, TaskConfig) else TaskConfig(**t) for t in tasks]
    if not tasks:
        raise ValueError("A model needs at least one task; got none. Pass tasks=[{'name': ..., 'num_labels': ...}].")
    names = [t.name for t in tasks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"Duplicate task names {dupes} in {names}; every head needs its own name.")
    return tasks


@dataclass
class TaskSpec:
    """Where a task's labels come from: ``name:column[:classification|regression[:name1,name2,...]]``."""

    name: str
    column: str
    problem_type: str = "classification"
    class_names: list[str] | None = None
    scale: bool = False  # labels are ratings on an ordered scale (the head's TaskConfig gets ``values``)
    values: list[float] | None = None  # the scale's values (default: those in the train split)

    @classmethod
    def parse(cls, spec: str) -> "TaskSpec":
        parts = spec.split(":", 3)
        if len(parts) < 2 or not all(parts[:2]):
            raise ValueError(f"Task spec {spec!r} is not name:column[:classification|regression[:names]] "
                             "(for example sentiment:label:classification:neg,pos or rating:rating:regression).")
        kind = parts[2] if len(parts) > 2 and parts[2] else "classification"
        if kind not in SHORT_PROBLEM_TYPES:
            raise ValueError(f"Task spec {spec!r}: kind {kind!r} is not classification or regression.")
        names = [n for n in parts[3].split(",") if n] if len(parts) > 3 else None
        if names and kind == "regression":
            raise ValueError(f"Task spec {spec!r}: a regression task has no class names.")
        TaskConfig(parts[0], 1 if kind == "regression" else 2, kind)  # validates the name early
        return cls(parts[0], parts[1], kind, names)

    @property
    def is_regression(self) -> bool:
        return SHORT_PROBLEM_TYPES.get(self.problem_type, self.problem_type) == "regression"


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def encode_labels(values: Sequence, spec: TaskSpec, source: str,
                  class_names: Sequence[str] | None = None) -> tuple[list, list[str]]:
    """Label ids (classification, -100 where missing) or floats (regression, NaN where missing) and class names.

    Without names: strings -> their sorted set; ints 0..k -> "0".."k"; other ints (ratings 1-4, 7-10) -> their
    sorted set. With names, strings map by name; integer names read off sparse labels (ratings) map by value;
    otherwise integers are ids and must lie in 0..len(names)-1.
    """
    where = f"{source}, task {spec.name!r} (column {spec.column!r})"
    if spec.is_regression:
        try:
            return [float("nan") if is_missing(v) else float(v) for v in values], []
        except (TypeError, ValueError) as err:
            raise DataError(f"{where}: regression labels must be numbers ({err}).") from None
    present = [v for v in values if not is_missing(v)]
    if not present:
        raise DataError(f"{where}: no row has a label.")
    names = list(class_names or spec.class_names or []) or None
    if isinstance(present[0], str):
        names = names or sorted(set(present))
        index = {n: i for i, n in enumerate(names)}
        bad = sorted({v for v in present if v not in index})
        if bad:
            raise DataError(f"{where}: labels {bad[:5]} are not in the label set {names}.")
        return [IGNORE_INDEX if is_missing(v) else index[v] for v in values], list(names)
    if any(isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) for v in present):
        bad = sorted({repr(v) for v in present if isinstance(v, bool) or not isinstance(v, (int, float))})
        raise DataError(f"{where}: labels {bad[:5]} are neither names nor integers.")
    if any(float(v) != int(v) for v in present):
        raise DataError(f"{where}: non-integer class labels; declare the task as name:column:regression.")
    ints = sorted({int(v) for v in present})
    if names and all(re.fullmatch(r"-?\d+(\.0)?", n) for n in names) and \
            [int(float(n)) for n in names] != list(range(len(names))):
        index = {int(float(n)): i for i, n in enumerate(names)}  # names read off sparse integer labels: by value
        bad = [v for v in ints if v not in index]
        if bad:
            raise DataError(f"{where}: labels {bad[:5]} are not in the label set {names}.")
        return [IGNORE_INDEX if is_missing(v) else index[int(v)] for v in values], list(names)
    if names:
        bad = [v for v in ints if not 0 <= v < len(names)]
        if bad:
            raise DataError(f"{where}: labels {bad[:5]} are outside 0..{len(names) - 1} ({names}).")
        return [IGNORE_INDEX if is_missing(v) else int(v) for v in values], list(names)
    if ints[0] == 0:
        names = [str(i) for i in range(ints[-1] + 1)]
        return [IGNORE_INDEX if is_missing(v) else int(v) for v in values], names
    index = {v: i for i, v in enumerate(ints)}
    return [IGNORE_INDEX if is_missing(v) else index[int(v)] for v in values], [str(v) for v in ints]


def balanced_class_weights(label_ids: Sequence[int], num_classes: int) -> list[float]:
    """scikit-learn's "balanced" weights, n / (k * count); a class absent from the data gets weight 1."""
    from sklearn.utils.class_weight import compute_class_weight

    ids = np.asarray([i for i in label_ids if i != IGNORE_INDEX], dtype=np.int64)
    present = np.unique(ids)
    weights = np.ones(num_classes)
    weights[present] = compute_class_weight("balanced", classes=present, y=ids) * len(present) / num_classes
    return weights.tolist()
