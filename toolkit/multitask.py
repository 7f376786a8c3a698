"""Multi-task learning: one shared encoder, one MLP head per task, and a Trainer that sums the heads' losses.

Labels travel as one column per task, ``labels_<task>``, with -100 (classification) or NaN (regression)
where an example has no label for that task. Two data situations are built here:

1. one dataset whose rows carry every task's label (IMDB sentiment + star rating; shopping category + sentiment);
2. one dataset per task, concatenated with a ``task_ids`` column. Batches MIX tasks: each head's loss is the
   mean over the examples of its own task in the batch (other rows are masked), and a task with no example in
   a batch adds nothing, so its head gets no gradient from that batch. Task sampling is proportional to
   dataset size (``sampling_temperature=1``) or temperature-scaled, p_t ∝ n_t^(1/T).

A regression head learns standardised targets (mean/std of its training labels, kept in its ``TaskConfig``) so its
MSE is on the scale of a cross-entropy; its outputs (``task_logits``) are in the label's own units.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import datasets
import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, DataCollatorWithPadding, default_data_collator
from transformers.utils import ModelOutput

from .data import DataError, LoadReport, read_split, subsample
from .metrics import classification_metrics, per_class_report, softmax
from .modeling import PROBLEM_TYPES, EncoderHeadConfig, EncoderHeadModel, mlp_head
from .run import save_final_model
from .trainer import ToolkitTrainer

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
TASK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SHORT_PROBLEM_TYPES = {"classification": "single_label_classification", "regression": "regression"}


# ---- config ---------------------------------------------------------------------------------------
@dataclass
class TaskConfig:
    """One head: its name, output size, loss and label names (what ``toolkit.inference`` reads per task)."""

    name: str
    num_labels: int
    problem_type: str = "single_label_classification"
    loss_weight: float = 1.0
    id2label: dict[int, str] = field(default_factory=dict)
    target_mean: float = 0.0  # regression: the head predicts (y - mean) / std, so its loss is on the scale of CE
    target_std: float = 1.0

    def __post_init__(self):
        where = f"task {self.name!r}"
        if not isinstance(self.name, str) or not TASK_NAME.match(self.name):
            raise ValueError(f"Task name {self.name!r} must start with a letter and hold only letters, digits and _ "
                             "(it becomes the label column labels_<task>).")
        self.problem_type = SHORT_PROBLEM_TYPES.get(self.problem_type, self.problem_type)
        if self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"{where}: problem_type={self.problem_type!r} is not one of {PROBLEM_TYPES} "
                             "(or the short forms classification/regression).")
        if self.problem_type == "regression":
            if self.num_labels != 1:
                raise ValueError(f"{where}: a regression head has num_labels=1, got {self.num_labels}.")
            self.id2label = {}
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


def validate_tasks(tasks: Sequence[TaskConfig | dict]) -> list[TaskConfig]:
    """TaskConfigs from dicts; at least one task, names unique."""
    tasks = [t if isinstance(t, TaskConfig) else TaskConfig(**t) for t in tasks]
    if not tasks:
        raise ValueError("A multi-task model needs at least one task; got none. Pass tasks=[{'name': ..., "
                         "'num_labels': ...}, ...].")
    names = [t.name for t in tasks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"Duplicate task names {dupes} in {names}; every head needs its own name.")
    return tasks


class MultiTaskConfig(EncoderHeadConfig):
    """Encoder + pooling settings (``EncoderHeadConfig``) and the list of tasks, one head each."""

    model_type = "toolkit_multitask"

    tasks: list | None = None

    def __post_init__(self, **kwargs: Any):
        if self.tasks is not None:  # None only for transformers' own default instances; the model rejects it
            self.tasks = [asdict(t) for t in validate_tasks(self.tasks)]
        super().__post_init__(**kwargs)

    @property
    def task_names(self) -> list[str]:
        return [t["name"] for t in self.tasks or []]

    def task_configs(self) -> list[TaskConfig]:
        return validate_tasks(self.tasks or [])

    def task(self, name: str) -> TaskConfig:
        """The per-task config (``problem_type``, ``id2label``, ...) of head ``name``."""
        for spec in self.tasks or []:
            if spec["name"] == name:
                return TaskConfig(**spec)
        raise KeyError(f"No task {name!r} in this model (tasks: {self.task_names}).")


# ---- model ----------------------------------------------------------------------------------------
@dataclass
class MultiTaskOutput(ModelOutput):
    """``loss`` (config-weighted sum), ``task_logits`` and ``task_losses`` (only tasks with labels in the batch)."""

    loss: torch.Tensor | None = None
    task_logits: dict[str, torch.Tensor] | None = None
    task_losses: dict[str, torch.Tensor] | None = None
    attention_penalty: torch.Tensor | None = None
    attentions: torch.Tensor | None = None


def task_loss(task: TaskConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
    """Mean loss over the examples that have a label for ``task``; None when none has."""
    if task.is_regression:
        labels = labels.float()
        present = ~torch.isnan(labels)
        if not bool(present.any()):
            return None
        error = (logits.squeeze(-1).float()[present] - labels[present]) / task.target_std
        return error.pow(2).mean()  # MSE in standard deviations of the training labels
    labels = labels.long()
    present = labels != IGNORE_INDEX
    if not bool(present.any()):
        return None
    bad = labels[present & ((labels < 0) | (labels >= task.num_labels))]
    if bad.numel():
        raise ValueError(f"labels_{task.name} holds {sorted(set(bad.tolist()))[:5]}, outside the head's range "
                         f"0..{task.num_labels - 1} ({task.label_names}); use -100 for a missing label.")
    return nn.functional.cross_entropy(logits.float()[present], labels[present])


class MultiTaskModel(EncoderHeadModel):
    """A shared encoder + pooler with one ``mlp_head`` per task (``self.heads[name]``)."""

    config_class = MultiTaskConfig
    accepts_loss_kwargs = False  # per-task means, not token counts: the Trainer scales for accumulation

    def __init__(self, config: MultiTaskConfig):
        super().__init__(config)
        self.tasks = config.task_configs()
        self.heads = nn.ModuleDict({
            t.name: mlp_head(self.pooler.output_size, config.head_hidden_size, config.head_dropout, t.num_labels)
            for t in self.tasks
        })
        self.post_init()
        self.apply_mode()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
        task_ids: torch.Tensor | None = None,
        **labels: torch.Tensor,
    ) -> MultiTaskOutput:
        """``labels_<task>`` tensors are optional; with ``task_ids``, row i counts only for task ``task_ids[i]``."""
        unknown = sorted(k for k in labels if k.removeprefix("labels_") not in self.heads)
        if unknown:
            raise ValueError(f"Unexpected inputs {unknown}; label inputs are labels_<task> for tasks "
                             f"{list(self.heads)}.")
        pooled = self.pool(input_ids, attention_mask, token_type_ids, features)
        task_logits = {t.name: self.heads[t.name](pooled.pooled) for t in self.tasks}
        for t in self.tasks:  # regression heads report values in the label's units
            if t.is_regression:
                task_logits[t.name] = task_logits[t.name] * t.target_std + t.target_mean
        task_losses = {}
        for i, task in enumerate(self.tasks):
            target = labels.get(task.label_column)
            if target is None:
                continue
            target = target.float() if task.is_regression else target.long()
            if task_ids is not None:  # a row of another task's dataset never counts for this head
                missing = torch.full_like(target, float("nan") if task.is_regression else IGNORE_INDEX)
                target = torch.where(task_ids.to(target.device) == i, target, missing)
            loss = task_loss(task, task_logits[task.name], target)
            if loss is not None:
                task_losses[task.name] = loss
        penalty = self.attention_penalty(pooled)
        loss = None
        if labels:
            loss = combine_losses(task_losses, {t.name: t.loss_weight for t in self.tasks}, penalty, task_logits)
        return MultiTaskOutput(loss=loss, task_logits=task_logits, task_losses=task_losses,
                               attention_penalty=penalty, attentions=pooled.attention)


def combine_losses(task_losses: dict[str, torch.Tensor], weights: dict[str, float], penalty: torch.Tensor | None,
                   task_logits: dict[str, torch.Tensor]) -> torch.Tensor:
    """Weighted sum of the per-task losses (+ attention penalty); a graph-connected zero when no task has labels."""
    parts = [weights[name] * loss for name, loss in task_losses.items()]
    if penalty is not None:
        parts.append(penalty)
    if not parts:
        return sum(logits.sum() for logits in task_logits.values()) * 0.0
    return torch.stack(parts).sum()


AutoConfig.register(MultiTaskConfig.model_type, MultiTaskConfig)


# ---- metrics --------------------------------------------------------------------------------------
def task_metrics(task: TaskConfig, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy/macro-F1 (classification) or MAE/RMSE (regression), plus the mean loss, on labelled rows."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if task.is_regression:
        present = ~np.isnan(labels)
        if not present.any():
            return {}
        err = logits.reshape(len(logits), -1)[:, 0][present] - labels[present]
        return {"loss": float(np.mean((err / task.target_std) ** 2)), "mae": float(np.mean(np.abs(err))),
                "rmse": float(np.sqrt(np.mean(err ** 2))), "n": int(present.sum())}
    present = labels != IGNORE_INDEX
    if not present.any():
        return {}
    y = labels[present].astype(int)
    probs = softmax(logits[present])
    nll = -np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))
    return {"loss": float(nll.mean()), **classification_metrics(y, probs.argmax(-1)), "n": int(present.sum())}


def compute_multitask_metrics(tasks: Sequence[TaskConfig]):
    """A ``compute_metrics``: ``<task>_accuracy``, ``<task>_macro_f1`` / ``<task>_mae``, ``<task>_rmse``, and
    ``loss_<task>`` (so the Trainer logs ``eval_loss_<task>``)."""

    def compute(eval_pred) -> dict[str, float]:
        out = {}
        for task, logits, labels in zip(tasks, eval_pred.predictions, eval_pred.label_ids):
            metrics = task_metrics(task, logits, labels)
            if metrics:
                out[f"loss_{task.name}"] = metrics.pop("loss")
                out.update({f"{task.name}_{k}": v for k, v in metrics.items()})
        return out

    return compute


# ---- trainer --------------------------------------------------------------------------------------
def task_sampling_probabilities(sizes: Sequence[int], temperature: float = 1.0) -> np.ndarray:
    """p_t ∝ n_t^(1/T): T=1 is proportional to dataset size, larger T moves towards uniform."""
    if temperature <= 0:
        raise ValueError(f"sampling_temperature={temperature} must be > 0 (1 = proportional).")
    sizes = np.asarray(sizes, dtype=np.float64)
    scaled = np.where(sizes > 0, sizes ** (1.0 / temperature), 0.0)
    return scaled / scaled.sum()


class MultiTaskTrainer(ToolkitTrainer):
    """``Trainer`` whose loss is ``sum_t loss_weights[t] * loss_t``; logs ``loss_<task>`` (train) and
    ``eval_loss_<task>`` with each task's metrics (eval).

    ``loss_weights`` (dict or list in task order) default to the weights in the model config.
    ``sampling_temperature`` applies when the train set has ``task_ids`` (one dataset per task).
    """

    def __init__(self, *args, loss_weights: dict[str, float] | Sequence[float] | None = None,
                 sampling_temperature: float = 1.0, **kwargs):
        model = kwargs.get("model", args[0] if args else None)
        tasks = model.tasks
        train_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if train_args is not None and train_args.label_names is None:
            train_args.label_names = [t.label_column for t in tasks]
        kwargs.setdefault("compute_metrics", compute_multitask_metrics(tasks))
        super().__init__(*args, **kwargs)
        self.tasks = tasks
        self.loss_weights = resolve_loss_weights(tasks, loss_weights)
        self.sampling_temperature = sampling_temperature
        task_probabilities = None
        if self.train_dataset is not None and "task_ids" in _columns(self.train_dataset):
            task_probabilities = task_sampling_probabilities(self._task_sizes(), sampling_temperature)
        self.task_probabilities = task_probabilities
        self.can_return_loss = True
        self._task_loss_sums = torch.zeros(len(tasks), dtype=torch.float64)
        self._task_loss_counts = torch.zeros(len(tasks), dtype=torch.float64)

    def _task_sizes(self) -> list[int]:
        ids = np.asarray(_column(self.train_dataset, "task_ids"))
        return [int((ids == i).sum()) for i in range(len(self.tasks))]

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        extra = [t.label_column for t in self.tasks] + ["task_ids", "features"]
        self._signature_columns += [c for c in extra if c not in self._signature_columns]

    def _get_train_sampler(self, train_dataset=None):
        train_dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.task_probabilities is None or self.sampling_temperature == 1.0:
            return super()._get_train_sampler(train_dataset)  # shuffled: tasks appear in proportion to size
        ids = np.asarray(_column(train_dataset, "task_ids"))
        sizes = np.bincount(ids, minlength=len(self.tasks)).astype(np.float64)
        weights = self.task_probabilities[ids] / sizes[ids]
        generator = torch.Generator().manual_seed(self.args.seed)
        return torch.utils.data.WeightedRandomSampler(weights.tolist(), num_samples=len(ids), replacement=True,
                                                      generator=generator)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        loss = combine_losses(outputs.task_losses, self.loss_weights, outputs.attention_penalty,
                              outputs.task_logits)
        if model.training:
            for i, task in enumerate(self.tasks):
                if task.name in outputs.task_losses:
                    self._task_loss_sums[i] += float(outputs.task_losses[task.name].detach())
                    self._task_loss_counts[i] += 1
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            outputs = model(**inputs)
            loss = combine_losses(outputs.task_losses, self.loss_weights, outputs.attention_penalty,
                                  outputs.task_logits).detach()
        if prediction_loss_only:
            return loss, None, None
        logits = tuple(outputs.task_logits[t.name].detach() for t in self.tasks)
        labels = tuple(self._labels_for(inputs, i, t) for i, t in enumerate(self.tasks))
        return loss, logits, labels

    def _labels_for(self, inputs: dict, index: int, task: TaskConfig) -> torch.Tensor:
        """A task's labels for metrics, missing-marked where absent or belonging to another task."""
        batch = next(v for v in inputs.values() if isinstance(v, torch.Tensor)).shape[0]
        missing = float("nan") if task.is_regression else IGNORE_INDEX
        device = self.args.device
        labels = inputs.get(task.label_column)
        if labels is None:
            return torch.full((batch,), missing, dtype=torch.float32 if task.is_regression else torch.long,
                              device=device)
        labels = labels.float() if task.is_regression else labels.long()
        if "task_ids" in inputs:
            labels = torch.where(inputs["task_ids"] == index, labels, torch.full_like(labels, missing))
        return labels

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and not any(k.startswith("eval_") for k in logs):
            sums, counts = self._task_loss_sums.clone(), self._task_loss_counts.clone()
            if self.args.world_size > 1:
                both = self.accelerator.reduce(torch.stack([sums, counts]).to(self.args.device), "sum").cpu()
                sums, counts = both[0], both[1]
            for i, task in enumerate(self.tasks):
                if counts[i] > 0:
                    logs[f"loss_{task.name}"] = round(float(sums[i] / counts[i]), 4)
            self._task_loss_sums.zero_()
            self._task_loss_counts.zero_()
        super().log(logs, start_time)


def resolve_loss_weights(tasks: Sequence[TaskConfig], weights: dict | Sequence[float] | None) -> dict[str, float]:
    """Per-task loss weights from a dict, a list in task order, or the model config."""
    names = [t.name for t in tasks]
    if weights is None:
        return {t.name: float(t.loss_weight) for t in tasks}
    if not isinstance(weights, dict):
        weights = list(weights)
        if len(weights) != len(names):
            raise ValueError(f"loss_weights {weights} has {len(weights)} values for {len(names)} tasks {names}.")
        weights = dict(zip(names, weights))
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ValueError(f"loss_weights names tasks {unknown} that the model lacks (tasks: {names}).")
    out = {n: float(weights.get(n, t.loss_weight)) for n, t in zip(names, tasks)}
    bad = {n: w for n, w in out.items() if not (math.isfinite(w) and w >= 0)}
    if bad:
        raise ValueError(f"loss_weights {bad} must be finite numbers >= 0.")
    return out


def _columns(ds) -> list[str]:
    return ds.column_names if isinstance(ds, datasets.Dataset) else list(getattr(ds, "columns", {})) + ["features"]


def _column(ds, name: str):
    return ds[name] if isinstance(ds, datasets.Dataset) else ds.columns[name]


# ---- data -----------------------------------------------------------------------------------------
@dataclass
class TaskSpec:
    """Where a task's labels come from: ``name:column[:classification|regression[:name1,name2,...]]``."""

    name: str
    column: str
    problem_type: str = "classification"
    class_names: list[str] | None = None

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


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def encode_labels(values: Sequence, spec: TaskSpec, source: str,
                  class_names: list[str] | None = None) -> tuple[list, list[str]]:
    """Label ids (classification, -100 where missing) or floats (regression, NaN where missing) and class names.

    Without names: strings → sorted set; ints 0..k → "0".."k"; other ints (ratings 1-4, 7-10) → their sorted set.
    """
    where = f"{source}, task {spec.name!r} (column {spec.column!r})"
    if spec.problem_type == "regression":
        try:
            return [float("nan") if _missing(v) else float(v) for v in values], []
        except (TypeError, ValueError) as err:
            raise DataError(f"{where}: regression labels must be numbers ({err}).") from None
    present = [v for v in values if not _missing(v)]
    if not present:
        raise DataError(f"{where}: no row has a label.")
    names = class_names or spec.class_names
    if isinstance(present[0], str):
        names = names or sorted(set(present))
        index = {n: i for i, n in enumerate(names)}
        bad = sorted({v for v in present if v not in index})
        if bad:
            raise DataError(f"{where}: labels {bad[:5]} are not in the label set {names}.")
        return [IGNORE_INDEX if _missing(v) else index[v] for v in values], list(names)
    if any(float(v) != int(v) for v in present):
        raise DataError(f"{where}: non-integer class labels; declare the task as name:column:regression.")
    ints = sorted({int(v) for v in present})
    if names and all(re.fullmatch(r"-?\d+", n) for n in names) and names != [str(i) for i in range(len(names))]:
        index = {n: i for i, n in enumerate(names)}  # names read off sparse integer labels (ratings): map by value
        bad = [v for v in ints if str(v) not in index]
        if bad:
            raise DataError(f"{where}: labels {bad[:5]} are not in the label set {names}.")
        return [IGNORE_INDEX if _missing(v) else index[str(int(v))] for v in values], list(names)
    if names:
        bad = [v for v in ints if not 0 <= v < len(names)]
        if bad:
            raise DataError(f"{where}: labels {bad[:5]} are outside the head's range 0..{len(names) - 1} ({names}).")
        return [IGNORE_INDEX if _missing(v) else int(v) for v in values], list(names)
    if ints[0] == 0:
        names = [str(i) for i in range(ints[-1] + 1)]
        return [IGNORE_INDEX if _missing(v) else int(v) for v in values], names
    index = {v: i for i, v in enumerate(ints)}
    return [IGNORE_INDEX if _missing(v) else index[int(v)] for v in values], [str(v) for v in ints]


@dataclass
class MultiTaskSplits:
    train: datasets.Dataset  # text, labels_<task> for every task, task_ids in situation 2
    eval: datasets.Dataset
    tasks: list[TaskConfig]
    reports: dict[str, LoadReport]


def _clean_texts(ds: datasets.Dataset, text_column: str, source: str) -> tuple[datasets.Dataset, LoadReport]:
    """Text column renamed to ``text``, leading BOMs stripped, missing/empty texts dropped and counted."""
    if text_column not in ds.column_names:
        raise DataError(f"{source}: no text column '{text_column}' (columns: {ds.column_names}); "
                        "set --text_column to one of them.")
    report = LoadReport(source=source, rows_read=len(ds))

    def strip_bom(batch: dict) -> dict:
        return {"text": [t.lstrip("\ufeff") if isinstance(t, str) else "" for t in batch[text_column]]}

    ds = ds.map(strip_bom, batched=True, desc="strip BOM")
    if text_column != "text":
        ds = ds.remove_columns(text_column)
    ds = ds.filter(lambda b: [bool(t.strip()) for t in b["text"]], batched=True, desc="drop empty texts")
    report.empty_texts_dropped = report.rows_read - len(ds)
    if report.empty_texts_dropped:
        logger.warning("%s: dropped %d empty texts", source, report.empty_texts_dropped)
    if len(ds) == 0:
        raise DataError(f"{source}: every text is empty.")
    return ds, report


def _read_train_eval(source: str, train_split: str, eval_split: str, eval_fraction: float, seed: int,
                     data_dir: str | None) -> tuple[datasets.Dataset, datasets.Dataset]:
    """A file is split into train/eval (seeded ``eval_fraction``); a folder or named set gives both splits."""
    if Path(source).expanduser().is_file():
        ds = read_split(source, train_split, data_dir=data_dir)
        parts = ds.train_test_split(test_size=eval_fraction, seed=seed)
        return parts["train"], parts["test"]
    return read_split(source, train_split, data_dir=data_dir), read_split(source, eval_split, data_dir=data_dir)


def load_multitask_splits(
    specs: Sequence[TaskSpec],
    dataset: str | None = None,
    task_datasets: Sequence[str] | None = None,
    text_column: str = "text",
    train_split: str = "train",
    eval_split: str = "test",
    eval_fraction: float = 0.1,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    loss_weights: Sequence[float] | None = None,
    seed: int = 42,
    data_dir: str | None = None,
) -> MultiTaskSplits:
    """Situation 1 (``dataset``: every row labels every task) or 2 (``task_datasets``: one source per task,
    aligned with ``specs``; rows get ``task_ids``). Sample limits apply per source."""
    specs = list(specs)
    weights = list(loss_weights) if loss_weights is not None else [1.0] * len(specs)
    if len(weights) != len(specs):
        raise ValueError(f"--loss_weights has {len(weights)} values for {len(specs)} tasks.")
    if task_datasets:
        if len(task_datasets) != len(specs):
            raise ValueError(f"--task_datasets names {len(task_datasets)} sources for {len(specs)} tasks "
                             f"({[s.name for s in specs]}); give one per task, in the same order.")
        sources = [(i, src) for i, src in enumerate(task_datasets)]
    else:
        if not dataset:
            raise ValueError("Give --dataset (every row labels every task) or --task_datasets (one per task).")
        sources = [(None, dataset)]
    raw = {"train": [], "eval": []}
    reports = {}
    for task_index, source in sources:
        train, evaluation = _read_train_eval(source, train_split, eval_split, eval_fraction, seed, data_dir)
        for role, ds, limit in (("train", train, max_train_samples), ("eval", evaluation, max_eval_samples)):
            ds, report = _clean_texts(ds, text_column, f"{source}[{role}]")
            ds = subsample(ds, limit, seed)
            raw[role].append((task_index, ds))
            reports[f"{source}[{role}]" if task_index is None else f"{specs[task_index].name}[{role}]"] = report
    tasks, columns = [], {"train": [], "eval": []}
    for i, spec in enumerate(specs):
        names = spec.class_names
        owned = [(role, j, ds) for role in ("train", "eval") for j, (ti, ds) in enumerate(raw[role])
                 if ti is None or ti == i]
        encoded = {}
        for role, j, ds in owned:  # train first: its label set is the head's, eval must fit it
            if spec.column not in ds.column_names:
                raise DataError(f"task {spec.name!r} [{role}]: no label column '{spec.column}' for task {spec.name!r} "
                                f"(columns: {ds.column_names}).")
            encoded[(role, j)], names = encode_labels(ds[spec.column], spec, f"task {spec.name} [{role}]", names)
        scale = {}
        if spec.problem_type == "regression":
            values = np.asarray([v for (role, _), vs in encoded.items() if role == "train" for v in vs], dtype=float)
            values = values[~np.isnan(values)]
            scale = {"target_mean": float(values.mean()), "target_std": float(values.std()) or 1.0}
        tasks.append(TaskConfig(spec.name, 1 if spec.problem_type == "regression" else len(names),
                                spec.problem_type, weights[i], dict(enumerate(names)), **scale))
        for role in ("train", "eval"):
            for j, (ti, ds) in enumerate(raw[role]):
                if (role, j) in encoded:
                    columns[role].append((j, spec, encoded[(role, j)]))
                else:
                    columns[role].append((j, spec, [float("nan") if spec.problem_type == "regression"
                                                    else IGNORE_INDEX] * len(ds)))
    out = {}
    for role in ("train", "eval"):
        parts = []
        for j, (ti, ds) in enumerate(raw[role]):
            part = ds.select_columns(["text"])
            for jj, spec, values in columns[role]:
                if jj == j:
                    part = part.add_column(f"labels_{spec.name}", values)
            if ti is not None:
                part = part.add_column("task_ids", [ti] * len(part))
            parts.append(part)
        out[role] = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    return MultiTaskSplits(out["train"], out["eval"], validate_tasks(tasks), reports)


def tokenize_multitask(ds: datasets.Dataset, tokenizer, max_length: int) -> datasets.Dataset:
    """Tokenise ``text`` (truncation, no padding); keeps ``labels_<task>`` and ``task_ids``."""
    keep = [c for c in ds.column_names if c.startswith("labels_") or c == "task_ids"]
    return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True,
                  remove_columns=[c for c in ds.column_names if c not in keep], desc=f"tokenize ({max_length})")


class MultiTaskFeatureDataset(torch.utils.data.Dataset):
    """Cached encoder features with every task's label column (and ``task_ids``), for ``default_data_collator``."""

    def __init__(self, features: torch.Tensor, columns: dict[str, list]):
        self.features = features
        self.columns = {k: torch.tensor(v) for k, v in columns.items()}
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


def build_multitask_datasets(model: MultiTaskModel, tokenizer, splits: MultiTaskSplits, max_length: int,
                             training_args, pad_to_multiple_of: int | None = 8, feature_cache: bool = True,
                             cache_dir: str | Path | None = None):
    """Tokenised train/eval sets and their collator; for a frozen, cacheable encoder, cached features instead."""
    from .features import cached_feature_dataset

    with training_args.main_process_first(desc="tokenize"):
        tok = {role: tokenize_multitask(ds, tokenizer, max_length)
               for role, ds in (("train", splits.train), ("eval", splits.eval))}
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
    if not (model.is_frozen and feature_cache):
        return tok["train"], tok["eval"], collator
    if not model.pooler.cacheable:
        logger.warning("pooling=%s layers=%s learns over tokens: training without the feature cache.",
                       model.config.pooling, model.config.layers)
        return tok["train"], tok["eval"], collator
    out = []
    with training_args.main_process_first(desc="feature cache"):
        for role in ("train", "eval"):
            label_cols = [c for c in tok[role].column_names if c.startswith("labels_") or c == "task_ids"]
            inputs = tok[role].remove_columns(label_cols)
            inputs = inputs.add_column("labels", [0] * len(inputs))  # the cache keys on tokens only
            feats = cached_feature_dataset(model, inputs, collator, cache_dir, max_length,
                                           training_args.per_device_eval_batch_size, training_args.device).features
            out.append(MultiTaskFeatureDataset(feats, {c: tok[role][c] for c in label_cols}))
    return out[0], out[1], default_data_collator


# ---- reports --------------------------------------------------------------------------------------
def write_multitask_results(trainer: MultiTaskTrainer, splits: MultiTaskSplits, model_name: str,
                            train_seconds: float, feature_cache: bool) -> dict:
    """Final per-task metrics, per-class reports, per-epoch table, loss curve, misclassified rows, results JSON."""
    from . import reports

    out = Path(trainer.args.output_dir)
    prediction = trainer.predict(trainer.eval_dataset, metric_key_prefix="test")
    if not trainer.is_world_process_zero():
        return {}
    final = {k.removeprefix("test_"): v for k, v in prediction.metrics.items()}
    per_task, per_class, misclassified = {}, {}, {}
    for task, logits, labels in zip(trainer.tasks, prediction.predictions, prediction.label_ids):
        prefix = f"{task.name}_"
        per_task[task.name] = {k.removeprefix(prefix): v for k, v in final.items() if k.startswith(prefix)}
        if f"loss_{task.name}" in final:
            per_task[task.name]["loss"] = final[f"loss_{task.name}"]
        if task.is_regression:
            continue
        rows = np.flatnonzero(np.asarray(labels) != IGNORE_INDEX)
        if len(rows) == 0:
            continue
        probs = softmax(np.asarray(logits, dtype=np.float64)[rows])
        y = np.asarray(labels)[rows].astype(int)
        per_class[task.name] = per_class_report(y, probs.argmax(-1), task.label_names)
        texts = splits.eval.select(rows)["text"] if len(rows) < len(splits.eval) else splits.eval["text"]
        misclassified[task.name] = reports.write_misclassified(out / f"misclassified_{task.name}.jsonl", texts, y,
                                                               probs, task.label_names)
    metric_keys = ["eval_loss"] + [f"eval_{k}" for t in trainer.tasks for k in
                                   ([f"loss_{t.name}"] + ([f"{t.name}_mae", f"{t.name}_rmse"] if t.is_regression
                                                          else [f"{t.name}_accuracy", f"{t.name}_macro_f1"]))]
    epochs = reports.epoch_rows(trainer.state.log_history, metric_keys)
    results = {
        "model": model_name,
        "mode": trainer.model.config.mode,
        "pooling": trainer.model.config.pooling,
        "tasks": [asdict(t) for t in trainer.tasks],
        "loss_weights": trainer.loss_weights,
        "situation": "one dataset per task" if "task_ids" in _columns(trainer.train_dataset) else
                     "every row labels every task",
        "task_sampling_probabilities": None if trainer.task_probabilities is None else
        dict(zip([t.name for t in trainer.tasks], map(float, trainer.task_probabilities))),
        "train_examples": len(splits.train),
        "eval_examples": len(splits.eval),
        "data": {k: asdict(r) for k, r in splits.reports.items()},
        "epochs": epochs,
        "final": final,
        "per_task": per_task,
        "per_class": per_class,
        "misclassified": misclassified,
        "train_seconds": round(train_seconds, 1),
        "feature_cache": feature_cache,
    }
    losses = trainer.batch_losses()
    if losses:
        reports.plot_loss_curve(losses, out / "loss_curve.png", window=50, title="training loss (weighted sum)")
    (out / "results.md").write_text(
        f"# Multi-task {model_name} ({results['mode']}, tasks: {', '.join(t.name for t in trainer.tasks)})\n\n"
        f"Per-epoch evaluation on {results['eval_examples']} examples:\n\n" + reports.markdown_table(epochs),
        encoding="utf-8")
    reports.write_json(out / "results.json", results)
    return results


# ---- arguments and run steps (used by recipes/multitask.py) -----------------------------------------
@dataclass
class MultiTaskArguments:
    """Data and task arguments of a multi-task run (field names avoid TrainingArguments' ``label_names``)."""

    tasks: list[str] = field(
        default_factory=lambda: ["sentiment:label:classification:neg,pos", "rating:rating:regression"],
        metadata={"help": "One head per spec name:column[:classification|regression[:class1,class2,...]]; "
                  "class names are in id order (default: from the data)."},
    )
    dataset: str | None = field(
        default="imdb",
        metadata={"help": "Situation 1: one source whose rows label every task (a named local set such as imdb, a "
                  "folder of <split> files, or one CSV/parquet/JSON file, split by --eval_fraction)."},
    )
    task_datasets: list[str] | None = field(
        default=None,
        metadata={"help": "Situation 2: one source per task, in --tasks order; overrides --dataset. Rows carry a "
                  "task id, batches mix tasks, and each head's loss counts only its own rows."},
    )
    text_column: str = field(default="text", metadata={"help": "Column holding the text (in every source)."})
    train_split: str = field(default="train", metadata={"help": "Split to train on (folders and named sets)."})
    eval_split: str = field(default="test", metadata={"help": "Split evaluated every epoch (folders and named sets)."})
    eval_fraction: float = field(default=0.1, metadata={"help": "Held-out fraction when a source is a single file."})
    loss_weights: list[float] | None = field(
        default=None, metadata={"help": "Weight of each task's loss, in --tasks order (default 1 each)."}
    )
    sampling_temperature: float = field(
        default=1.0, metadata={"help": "Situation 2: task t is drawn with p ∝ n_t^(1/T); 1 = proportional to size."}
    )
    max_length: int = field(default=512, metadata={"help": "Truncate texts to this many tokens."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Seeded subset per source (null = all)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Seeded eval subset per source."})
    pad_to_multiple_of: int | None = field(default=8, metadata={"help": "Pad each batch to a multiple of this."})
    feature_cache: bool = field(default=True, metadata={"help": "Frozen mode: encode once, train heads on features."})
    feature_cache_dir: str | None = field(default=None, metadata={"help": "Default <model cache>/features."})
    data_dir: str | None = field(default=None, metadata={"help": "Extra folder searched first for named datasets."})

    def __post_init__(self):
        if not self.tasks:
            raise ValueError("--tasks is empty; give at least one task spec such as sentiment:label.")
        self.task_specs = [TaskSpec.parse(s) for s in self.tasks]
        validate_tasks([TaskConfig(s.name, 1 if s.problem_type == "regression" else 2, s.problem_type)
                        for s in self.task_specs])
        if self.loss_weights is not None and len(self.loss_weights) != len(self.tasks):
            raise ValueError(f"--loss_weights {self.loss_weights} has {len(self.loss_weights)} values for "
                             f"{len(self.tasks)} tasks {[s.name for s in self.task_specs]}.")
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"--eval_fraction {self.eval_fraction} must lie in (0, 1).")
        if self.sampling_temperature <= 0:
            raise ValueError(f"--sampling_temperature {self.sampling_temperature} must be > 0.")
        if self.max_length < 8:
            raise ValueError(f"--max_length {self.max_length} is too small (>= 8).")

    def load(self, seed: int) -> MultiTaskSplits:
        return load_multitask_splits(
            self.task_specs, self.dataset, self.task_datasets, self.text_column, self.train_split, self.eval_split,
            self.eval_fraction, self.max_train_samples, self.max_eval_samples, self.loss_weights, seed, self.data_dir,
        )


def build_multitask_model(model_args, tasks: Sequence[TaskConfig], **extra_config: Any) -> MultiTaskModel:
    """A new multi-task model on pretrained encoder weights (``ModelArguments``), one random head per task."""
    return MultiTaskModel.from_encoder(model_args.model_name_or_path, cache_dir=model_args.model_cache_dir,
                                       tasks=[asdict(t) for t in tasks], **model_args.head_kwargs(), **extra_config)


def build_multitask_trainer(model: MultiTaskModel, tokenizer, splits: MultiTaskSplits, model_args,
                            args: MultiTaskArguments, training_args, callbacks=None) -> MultiTaskTrainer:
    """Tokenise (or use cached frozen features) and build the ``MultiTaskTrainer``."""
    from .hub import default_cache_dir

    cache = Path(args.feature_cache_dir or Path(model_args.model_cache_dir or default_cache_dir()) / "features")
    train_ds, eval_ds, collator = build_multitask_datasets(model, tokenizer, splits, args.max_length, training_args,
                                                           args.pad_to_multiple_of, args.feature_cache, cache)
    return MultiTaskTrainer(model=model, args=training_args, train_dataset=train_ds, eval_dataset=eval_ds,
                            processing_class=tokenizer, data_collator=collator, callbacks=callbacks,
                            loss_weights=args.loss_weights, sampling_temperature=args.sampling_temperature)


def train_and_report_multitask(trainer: MultiTaskTrainer, splits: MultiTaskSplits, model_name: str) -> dict:
    """Train (resuming when asked), save model + tokenizer, and write the per-task reports."""
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=trainer.args.resume_from_checkpoint)
    seconds = time.perf_counter() - start
    save_final_model(trainer)
    cached = not isinstance(trainer.train_dataset, datasets.Dataset)
    return write_multitask_results(trainer, splits, model_name, seconds, cached)
