"""Metrics of every task, computed by the toolkit's evaluate modules (scikit-learn underneath), offline.

A classification head gets accuracy and macro-F1; a head on a rating scale also off-by-one accuracy, MAE/RMSE in
rating units and Spearman; a regressor MAE/RMSE/Spearman (and, on a rating scale, the rating metrics of its nearest
ratings). ``--metric`` adds any evaluate module (a bundled name, a local path, or a hub name where the hub is
reachable) to every classification head.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy.special import softmax
from sklearn.metrics import classification_report, confusion_matrix

from ..data.labels import IGNORE_INDEX, TaskConfig
from .evaluate_metrics import compute, load_metric


def classification_metrics(labels: Sequence[int], predictions: Sequence[int],
                           num_classes: int | None = None) -> dict[str, float]:
    """Accuracy and macro-F1 (macro-F1 rewards rare classes; report both on unbalanced data)."""
    kwargs = {"labels": list(range(num_classes))} if num_classes else {}
    return compute(load_metric("classification"), list(map(int, predictions)), list(map(int, labels)), **kwargs)


def per_class_report(labels: Sequence[int], predictions: Sequence[int], label_names: Sequence[str]) -> dict:
    """Per-class precision/recall/F1 and the confusion matrix, as JSON-ready values."""
    ids = list(range(len(label_names)))
    report = classification_report(
        labels, predictions, labels=ids, target_names=list(label_names), output_dict=True, zero_division=0
    )
    report["confusion_matrix"] = confusion_matrix(labels, predictions, labels=ids).tolist()
    return report


def task_predictions(task: TaskConfig, logits: np.ndarray) -> dict[str, np.ndarray]:
    """What a head's raw outputs mean: ``ids`` (class or nearest rating ids), ``probabilities`` (classification),
    ``values`` (regression, in the label's units) and ``points`` (rating units, for MAE on a scale)."""
    logits = np.asarray(logits, dtype=np.float64)
    if task.is_regression:
        values = logits.reshape(len(logits), -1)[:, 0]
        out = {"values": values}
        if task.values is not None:
            out["ids"] = task.nearest_ids(values)
            out["points"] = np.clip(values, task.values[0], task.values[-1])
        return out
    probabilities = softmax(logits, axis=-1)
    out = {"probabilities": probabilities, "ids": probabilities.argmax(-1)}
    if task.values is not None:
        out["points"] = np.asarray(task.values)[out["ids"]]
    return out


def present_rows(task: TaskConfig, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.float64)
    return ~np.isnan(labels) if task.is_regression else labels != IGNORE_INDEX


def task_metrics(task: TaskConfig, logits: np.ndarray, labels: np.ndarray,
                 extra_metrics: Sequence[str] = ()) -> dict[str, float]:
    """The head's metrics and mean loss over its labelled rows ({} when none has a label)."""
    labels = np.asarray(labels, dtype=np.float64)
    present = present_rows(task, labels)
    if not present.any():
        return {}
    pred = task_predictions(task, np.asarray(logits)[present])
    y = labels[present]
    if task.is_regression:
        out = {"loss": float(np.mean(((pred["values"] - y) / task.target_std) ** 2))}
        if task.values is None:
            out.update(compute(load_metric("regression"), pred["values"].tolist(), y.tolist()))
        else:  # on a rating scale: predictions clipped to it, and read as their nearest rating for accuracy
            out.update(compute(load_metric("rating"), pred["ids"].tolist(), task.nearest_ids(y).tolist(),
                               values=task.values, points=pred["points"].tolist()))
        return {**out, "n": int(present.sum())}
    y = y.astype(int)
    probs = pred["probabilities"]
    weights = np.asarray(task.class_weights)[y] if task.class_weights is not None else np.ones(len(y))
    nll = -np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)) * weights
    out = {"loss": float(nll.mean())}
    if task.values is not None:
        out.update(compute(load_metric("rating"), pred["ids"].tolist(), y.tolist(), values=task.values))
    else:
        out.update(classification_metrics(y, pred["ids"], task.num_labels))
    for name in extra_metrics:
        out.update(compute(load_metric(name), pred["ids"].tolist(), y.tolist()))
    return {**out, "n": int(present.sum())}


def metric_prefix(task: TaskConfig, tasks: Sequence[TaskConfig]) -> str:
    """Metric keys of a single-task run are plain (``accuracy``); with several tasks, ``<task>_accuracy``."""
    return "" if len(tasks) == 1 else f"{task.name}_"


def compute_task_metrics(tasks: Sequence[TaskConfig], extra_metrics: Sequence[str] = ()) -> Callable:
    """A ``compute_metrics`` for the Trainer: every task's metrics (prefixed by task name when there are several)
    and ``loss_<task>`` (so the Trainer logs ``eval_loss_<task>``); a single task's loss is ``eval_loss`` itself."""
    for name in extra_metrics:
        load_metric(name)  # fail before training, not after the first epoch

    def compute_metrics(eval_pred) -> dict[str, float]:
        out = {}
        predictions, label_ids = eval_pred.predictions, eval_pred.label_ids
        if not isinstance(predictions, (tuple, list)):
            predictions, label_ids = (predictions,), (label_ids,)
        for task, logits, labels in zip(tasks, predictions, label_ids):
            metrics = task_metrics(task, logits, labels, extra_metrics)
            if not metrics:
                continue
            loss, _ = metrics.pop("loss"), metrics.pop("n")
            prefix = metric_prefix(task, tasks)
            if prefix:
                out[f"loss_{task.name}"] = loss
            out.update({f"{prefix}{k}": v for k, v in metrics.items()})
        return out

    return compute_metrics
