"""MAE, RMSE and Spearman correlation for regression, as an ``evaluate`` module computed by scikit-learn and SciPy."""

import datasets
import evaluate
import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import mean_absolute_error, root_mean_squared_error

_DESCRIPTION = """\
Mean absolute error, root mean squared error and the Spearman rank correlation of predicted against true values.
Spearman is undefined (NaN) when either side is constant, since a constant has no ranking.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): predicted values.
    references (`list` of `float`): true values.
Returns:
    mae (`float`): sklearn ``mean_absolute_error``.
    rmse (`float`): sklearn ``root_mean_squared_error``.
    spearman (`float`): ``scipy.stats.spearmanr(references, predictions).statistic``; NaN for a constant side.
Examples:
    >>> metric = evaluate.load("toolkit/evaluation/metric_modules/regression")
    >>> metric.compute(predictions=[1.0, 2.0, 4.0], references=[1.0, 3.0, 4.0])
    {'mae': 0.3333333333333333, 'rmse': 0.5773502691896257, 'spearman': 1.0}
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


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Regression(evaluate.Metric):
    """MAE, RMSE and Spearman of predicted against true values."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/model_evaluation.html#regression-metrics",
                "https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.spearmanr.html",
            ],
        )

    def _compute(self, predictions, references) -> dict:
        predictions = np.asarray(predictions, dtype=np.float64)
        references = np.asarray(references, dtype=np.float64)
        constant = np.ptp(predictions) == 0 or np.ptp(references) == 0  # spearmanr would warn and give NaN
        return {
            "mae": float(mean_absolute_error(references, predictions)),
            "rmse": float(root_mean_squared_error(references, predictions)),
            "spearman": float("nan") if constant else float(spearmanr(references, predictions).statistic),
        }
