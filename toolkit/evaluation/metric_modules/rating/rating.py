"""Rating metrics on an ordered scale (accuracy, off-by-one, macro-F1, MAE, RMSE, Spearman), as an ``evaluate``
module computed by scikit-learn and SciPy."""

import datasets
import evaluate
import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    root_mean_squared_error,
)

_DESCRIPTION = """\
Metrics for ratings on an ordered scale whose class ids are the positions of the rating values (IMDB: values
1,2,3,4,7,8,9,10 are ids 0..7, so 4 and 7 are neighbours). Accuracy, off-by-one accuracy (one step on the scale
counts as right) and macro-F1 compare ids; MAE, RMSE and Spearman compare the point predictions (a regressor's
clipped raw output, or else the predicted rating values) with the true values, in rating units; mae_rounded
always compares the predicted rating values. Spearman is NaN when either side is constant.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids, positions on the scale.
    references (`list` of `int`): true class ids.
    values (`list` of `float`, *optional*): the rating value of each id, ascending; default: the ids themselves.
    points (`list` of `float`, *optional*): point predictions in rating units (a regressor's output), one per
        example; default: the predicted values.
Returns:
    accuracy (`float`): sklearn ``accuracy_score`` on ids.
    off_by_one_accuracy (`float`): the fraction with |predicted id - true id| <= 1 (the three central diagonals
        of sklearn's ``confusion_matrix``).
    macro_f1 (`float`): sklearn ``f1_score(average="macro", zero_division=0)`` on ids.
    mae (`float`), rmse (`float`): sklearn ``mean_absolute_error`` / ``root_mean_squared_error``, points
        against true values.
    mae_rounded (`float`): sklearn ``mean_absolute_error``, predicted values against true values.
    spearman (`float`): ``scipy.stats.spearmanr(true values, points).statistic``; NaN for a constant side.
Examples:
    >>> metric = evaluate.load("toolkit/evaluation/metric_modules/rating")
    >>> metric.compute(predictions=[3, 4], references=[4, 4], values=[1, 2, 3, 4, 7, 8, 9, 10])["mae"]
    1.5
"""

_CITATION = """\
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and others},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
@article{2020SciPy-NMeth,
  title={{SciPy} 1.0: Fundamental Algorithms for Scientific Computing in Python},
  author={Virtanen, Pauli and others},
  journal={Nature Methods},
  volume={17},
  pages={261--272},
  year={2020}
}
"""


def _scale(values, predictions: np.ndarray, references: np.ndarray) -> np.ndarray:
    """The rating value of each id, checked: ascending and distinct, and covering every id given."""
    if values is None:
        values = np.arange(max(predictions.max(), references.max()) + 1, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size < 2 or np.any(np.diff(values) <= 0):
        raise ValueError(f"rating values must be at least two distinct values in ascending order, got {values}.")
    ids = np.concatenate([predictions, references])
    if ids.min() < 0 or ids.max() >= values.size:
        raise ValueError(f"class ids must lie in [0, {values.size}) for {values.size} rating values, got {ids}.")
    return values


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Rating(evaluate.Metric):
    """Classification and regression metrics of predicted against true positions on a rating scale."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html"],
        )

    def _compute(self, predictions, references, values=None, points=None) -> dict:
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        if predictions.shape != references.shape or references.size == 0:
            raise ValueError(f"need as many predictions as references (>0), got {predictions.shape} "
                             f"and {references.shape}.")
        scale = _scale(values, predictions, references)
        true_values, pred_values = scale[references], scale[predictions]
        points = pred_values if points is None else np.asarray(points, dtype=np.float64)
        if points.shape != references.shape:
            raise ValueError(f"need one point prediction per reference, got {points.shape} and {references.shape}.")
        # rows: true id, columns: predicted id; the diagonals -1, 0, +1 hold the pairs at most one step apart
        matrix = confusion_matrix(references, predictions, labels=np.arange(scale.size))
        near = sum(np.trace(matrix, offset=k) for k in (-1, 0, 1))
        constant = np.ptp(points) == 0 or np.ptp(true_values) == 0  # spearmanr would warn and give NaN
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            "off_by_one_accuracy": float(near / matrix.sum()),
            "macro_f1": float(f1_score(references, predictions, average="macro", zero_division=0)),
            "mae": float(mean_absolute_error(true_values, points)),
            "rmse": float(root_mean_squared_error(true_values, points)),
            "mae_rounded": float(mean_absolute_error(true_values, pred_values)),
            "spearman": float("nan") if constant else float(spearmanr(true_values, points).statistic),
        }
