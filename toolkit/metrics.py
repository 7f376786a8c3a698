"""Offline metrics (scikit-learn and numpy only; nothing is fetched from a hub)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def classification_metrics(labels: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
    """Accuracy and macro-F1 (macro-F1 rewards rare classes; report both on unbalanced data)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
    }


def per_class_report(labels: Sequence[int], predictions: Sequence[int], label_names: Sequence[str]) -> dict:
    """Per-class precision/recall/F1 and the confusion matrix, as JSON-ready values."""
    ids = list(range(len(label_names)))
    report = classification_report(
        labels, predictions, labels=ids, target_names=list(label_names), output_dict=True, zero_division=0
    )
    report["confusion_matrix"] = confusion_matrix(labels, predictions, labels=ids).tolist()
    return report


def _logits(predictions) -> np.ndarray:
    return predictions[0] if isinstance(predictions, (tuple, list)) else predictions


def compute_classification_metrics() -> Callable:
    """A ``compute_metrics`` for ``Trainer``: accuracy and macro-F1 from logits."""

    def compute(eval_pred) -> dict[str, float]:
        logits = _logits(eval_pred.predictions)
        return classification_metrics(eval_pred.label_ids, np.argmax(logits, axis=-1))

    return compute
