"""Accuracy and macro-F1 for single-label classification, as an ``evaluate`` module computed by scikit-learn."""

import datasets
import evaluate
from sklearn.metrics import accuracy_score, f1_score

_DESCRIPTION = """\
Accuracy (the fraction of exact matches) and macro-F1 (the unweighted mean of the per-class F1 scores) for
single-label classification. Macro-F1 rewards rare classes, so report both on unbalanced data. A class that is
never predicted scores F1 0 (``zero_division=0``); pass ``labels`` to count classes absent from both sides too.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): true class ids.
    labels (`list` of `int`, *optional*): the class ids macro-F1 averages over; default: the ids that occur in
        predictions or references.
Returns:
    accuracy (`float`): sklearn ``accuracy_score``.
    macro_f1 (`float`): sklearn ``f1_score(average="macro", zero_division=0)``.
Examples:
    >>> metric = evaluate.load("toolkit/evaluation/metric_modules/classification")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 2])
    {'accuracy': 0.6666666666666666, 'macro_f1': 0.5555555555555555}
"""

_CITATION = """\
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and Michel, V. and Thirion, B. and Grisel, O. and
          Blondel, M. and Prettenhofer, P. and Weiss, R. and Dubourg, V. and Vanderplas, J. and Passos, A. and
          Cournapeau, D. and Brucher, M. and Perrot, M. and Duchesnay, E.},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Classification(evaluate.Metric):
    """Accuracy and macro-F1 of predicted against true class ids."""

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

    def _compute(self, predictions, references, labels=None) -> dict:
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            "macro_f1": float(
                f1_score(references, predictions, labels=labels, average="macro", zero_division=0)
            ),
        }
