"""The bundled evaluate modules match scikit-learn/SciPy, load by name and by path offline, and the loader's errors."""

from __future__ import annotations

import math
import os
import stat
import warnings
from pathlib import Path

import evaluate.loading
import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, root_mean_squared_error

from toolkit.evaluation import evaluate_metrics as em

IMDB = [1, 2, 3, 4, 7, 8, 9, 10]  # ids 0..7: 4 (id 3) and 7 (id 4) are neighbours on the scale


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch, tmp_path):
    """Each test starts with an empty module cache and its own $TOOLKIT_CACHE."""
    monkeypatch.setattr(em, "_CACHE", {})
    monkeypatch.setenv("TOOLKIT_CACHE", str(tmp_path / "toolkit-cache"))


def by_name(name: str):
    return em.load_metric(name)


def by_path(name: str):
    return em.load_metric(str(em.bundled_path(name)))


def by_script(name: str):
    return em.load_metric(str(em.bundled_path(name) / f"{name}.py"))


LOADERS = pytest.mark.parametrize("load", [by_name, by_path, by_script], ids=["name", "folder", "script"])


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ---- classification ----------------------------------------------------------------------------------------------
@LOADERS
def test_classification_matches_sklearn_with_a_class_never_predicted(load):
    references = [0, 0, 1, 1, 2, 2]
    predictions = [0, 0, 1, 1, 1, 1]  # class 2 is never predicted: its F1 is 0, not skipped
    result = em.compute(load("classification"), predictions, references)
    assert result["accuracy"] == pytest.approx(accuracy_score(references, predictions)) == pytest.approx(4 / 6)
    expected = f1_score(references, predictions, average="macro", zero_division=0)
    assert result["macro_f1"] == pytest.approx(expected) == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_classification_labels_count_classes_absent_from_both_sides():
    references, predictions = [0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 1, 1]
    metric = em.load_metric("classification")
    result = em.compute(metric, predictions, references, labels=[0, 1, 2, 3])
    expected = f1_score(references, predictions, labels=[0, 1, 2, 3], average="macro", zero_division=0)
    assert result["macro_f1"] == pytest.approx(expected) == pytest.approx((1 + 2 / 3) / 4)
    assert em.compute(metric, predictions, references)["macro_f1"] == pytest.approx(5 / 9)  # labels did not stick


def test_compute_accepts_numpy_and_returns_plain_floats():
    result = em.compute(em.load_metric("classification"), np.array([1, 0, 1]), np.array([1, 1, 1], dtype=np.int32))
    expected_f1 = f1_score([1, 1, 1], [1, 0, 1], average="macro", zero_division=0)
    assert result == {"accuracy": pytest.approx(2 / 3), "macro_f1": pytest.approx(expected_f1)}
    assert all(type(value) is float for value in result.values())


# ---- regression --------------------------------------------------------------------------------------------------
@LOADERS
def test_regression_matches_sklearn_and_scipy(load):
    references = np.array([1.0, 2.5, 3.0, 7.0, 10.0])
    predictions = np.array([1.5, 2.0, 4.0, 6.5, 8.0])
    result = em.compute(load("regression"), predictions, references)
    assert result["mae"] == pytest.approx(mean_absolute_error(references, predictions)) == pytest.approx(0.9)
    assert result["rmse"] == pytest.approx(root_mean_squared_error(references, predictions))
    assert result["rmse"] == pytest.approx(math.sqrt((0.25 + 0.25 + 1 + 0.25 + 4) / 5))
    assert result["spearman"] == pytest.approx(spearmanr(references, predictions).statistic) == pytest.approx(1.0)
    assert set(result) == {"mae", "rmse", "spearman"}


def test_regression_keeps_float64_precision():
    references, predictions = [1e8 + 0.125, 2.0], [1e8, 2.0]  # float32 would round 1e8 + 0.125 to 1e8
    assert em.compute(em.load_metric("regression"), predictions, references)["mae"] == pytest.approx(0.0625)


def test_regression_spearman_is_nan_for_a_constant_side():
    metric = em.load_metric("regression")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN by the guard, not by scipy's ConstantInputWarning
        constant = em.compute(metric, [3.0, 3.0, 3.0], [1.0, 2.0, 4.0])
    assert math.isnan(constant["spearman"]) and constant["mae"] == pytest.approx(4 / 3)
    assert math.isnan(em.compute(metric, [1.0, 2.0, 4.0], [5.0, 5.0, 5.0])["spearman"])


# ---- rating ------------------------------------------------------------------------------------------------------
def sklearn_rating(true_ids, pred_ids, values, points=None) -> dict[str, float]:
    """The rating metrics spelled out independently, for comparison."""
    true_ids, pred_ids = np.asarray(true_ids), np.asarray(pred_ids)
    true_values, pred_values = np.asarray(values, dtype=float)[true_ids], np.asarray(values, dtype=float)[pred_ids]
    points = pred_values if points is None else np.asarray(points, dtype=float)
    return {
        "accuracy": accuracy_score(true_ids, pred_ids),
        "off_by_one_accuracy": float(np.mean(np.abs(true_ids - pred_ids) <= 1)),
        "macro_f1": f1_score(true_ids, pred_ids, average="macro", zero_division=0),
        "mae": mean_absolute_error(true_values, points),
        "rmse": root_mean_squared_error(true_values, points),
        "mae_rounded": mean_absolute_error(true_values, pred_values),
        "spearman": spearmanr(true_values, points).statistic,
    }


@LOADERS
def test_rating_off_by_one_uses_scale_positions_not_values(load):
    true_ids = [3, 4, 0, 7, 5]
    pred_ids = [4, 3, 2, 7, 5]  # 4<->7 are one step apart (values differ by 3); 1 vs 3 is two steps
    result = em.compute(load("rating"), pred_ids, true_ids, values=IMDB)
    assert result == pytest.approx(sklearn_rating(true_ids, pred_ids, IMDB))
    assert result["off_by_one_accuracy"] == pytest.approx(4 / 5)
    assert result["accuracy"] == pytest.approx(2 / 5)
    assert result["mae"] == result["mae_rounded"] == pytest.approx((3 + 3 + 2 + 0 + 0) / 5)  # in rating units


def test_rating_points_replace_predicted_values_for_mae_rmse_spearman():
    true_ids, pred_ids = [3, 4, 0, 7, 5], [4, 3, 2, 7, 5]
    points = [5.5, 6.0, 2.0, 9.5, 8.0]  # a regressor's clipped output in rating units
    result = em.compute(em.load_metric("rating"), pred_ids, true_ids, values=IMDB, points=points)
    assert result == pytest.approx(sklearn_rating(true_ids, pred_ids, IMDB, points))
    assert result["mae"] == pytest.approx((1.5 + 1.0 + 1.0 + 0.5 + 0.0) / 5)
    assert result["mae_rounded"] == pytest.approx(1.6)  # still the predicted scale values, not the points


def test_rating_default_values_are_the_ids_and_spearman_nan_when_constant():
    metric = em.load_metric("rating")
    result = em.compute(metric, [0, 2, 2], [1, 2, 0])
    assert result == pytest.approx(sklearn_rating([1, 2, 0], [0, 2, 2], [0, 1, 2]))
    assert result["mae"] == pytest.approx(1.0) and result["off_by_one_accuracy"] == pytest.approx(2 / 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN by the guard, not by scipy's ConstantInputWarning
        assert math.isnan(em.compute(metric, [1, 1, 1], [0, 1, 2], values=[1, 2, 3])["spearman"])


def test_rating_rejects_ids_outside_the_scale_and_unsorted_values():
    metric = em.load_metric("rating")
    with pytest.raises(ValueError, match="class ids must lie in"):
        em.compute(metric, [0, 8], [0, 1], values=IMDB)
    with pytest.raises(ValueError, match="ascending"):
        em.compute(metric, [0, 1], [0, 1], values=[2, 1])


# ---- the loader --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(em.BUNDLED))
def test_bundled_modules_document_their_inputs(name):
    metric = em.load_metric(name)
    assert metric.description.strip() and metric.citation.strip() and "predictions" in metric.inputs_description
    assert set(metric.features) == {"predictions", "references"}


def test_loads_are_cached_per_target_and_kwargs():
    metric = em.load_metric("rating")
    assert em.load_metric("rating") is metric
    assert em.load_metric(str(em.bundled_path("rating"))) is metric  # the same target as the bundled name
    assert em.load_metric("rating", experiment_id="other") is not metric


def test_metric_cache_dir_is_under_toolkit_cache_and_package_stays_untouched(tmp_path):
    before = files_under(em.bundled_path("classification").parent)
    metric = em.load_metric("classification")
    em.compute(metric, [0, 1], [0, 1])
    assert Path(metric.data_dir).is_relative_to(tmp_path / "toolkit-cache" / "evaluate")
    assert files_under(em.bundled_path("classification").parent) == before


def test_loads_from_a_read_only_copy(tmp_path):
    folder = tmp_path / "ro" / "rating"
    folder.mkdir(parents=True)
    (folder / "rating.py").write_text((em.bundled_path("rating") / "rating.py").read_text(encoding="utf-8"),
                                      encoding="utf-8")
    for path in (folder / "rating.py", folder, folder.parent):
        path.chmod(stat.S_IREAD | (stat.S_IEXEC if path.is_dir() else 0))
    try:
        result = em.compute(em.load_metric(str(folder)), [3], [4], values=IMDB)
        assert result["off_by_one_accuracy"] == 1.0 and result["mae"] == pytest.approx(3.0)
        assert files_under(folder.parent) == {"rating", os.path.join("rating", "rating.py")}
    finally:
        for path in (folder.parent, folder, folder / "rating.py"):
            path.chmod(stat.S_IRWXU)


def test_unknown_name_offline_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError) as caught:
        em.load_metric("no_such_metric_xyz")
    message = str(caught.value)
    assert "\n" not in message and "'no_such_metric_xyz'" in message
    assert all(name in message for name in em.BUNDLED) and "a local evaluate module path" in message


def test_bundled_path_rejects_unknown_names():
    with pytest.raises(ValueError, match="classification, rating, regression"):
        em.bundled_path("accuracy")


USER_METRIC = '''"""A user's own metric: the largest absolute error."""

import datasets
import evaluate
from sklearn.metrics import max_error


class WorstError(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="largest absolute error", citation="", inputs_description="predictions, references",
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("float64")}),
        )

    def _compute(self, predictions, references, scale=1.0):
        return {"worst": scale * max_error(references, predictions)}
'''


@pytest.mark.parametrize("as_file", [False, True], ids=["folder", "file"])
def test_a_users_own_module_loads_by_path(tmp_path, as_file):
    folder = tmp_path / "worst_error"
    folder.mkdir()
    (folder / "worst_error.py").write_text(USER_METRIC, encoding="utf-8")
    metric = em.load_metric(str(folder / "worst_error.py" if as_file else folder))
    assert em.compute(metric, [1.0, 5.0, 2.0], [1.5, 2.0, 2.0]) == {"worst": 3.0}
    assert em.compute(metric, [1.0, 5.0], [1.5, 2.0], scale=2.0) == {"worst": 6.0}  # compute kwargs pass through


def no_hub(*args, **kwargs):
    raise AssertionError("a local path was looked up on the hub")


def test_a_relative_local_folder_is_never_looked_up_on_the_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate.loading, "HubEvaluationModuleFactory", no_hub)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "worst_error").mkdir()
    (tmp_path / "worst_error" / "worst_error.py").write_text(USER_METRIC, encoding="utf-8")
    assert em.compute(em.load_metric("worst_error"), [1.0], [3.0]) == {"worst": 2.0}
    (tmp_path / "empty_metric").mkdir()
    with pytest.raises(FileNotFoundError, match="empty_metric.py"):
        em.load_metric("empty_metric")
