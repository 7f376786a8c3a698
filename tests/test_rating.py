"""Rating prediction: the "rating" evaluate module on hand-computed cases, regression rounding, readers and bad
ratings, cleaning, the rating label space and regression head, self-attentive pooling, the pictures, and the
recipe end to end on a tiny random BERT with real Douban and IMDB rows."""

import importlib.util
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.data.labels import TaskConfig
from toolkit.data.readers import DataError
from toolkit.evaluation.evaluate_metrics import compute, load_metric
from toolkit.evaluation.metrics import compute_task_metrics, task_predictions
from toolkit.studies import rating_reports
from toolkit.studies.rating import (RatingArguments, detect_format, parse_rating, read_douban_csv, read_douban_dmr,
                                    read_rating_table)

ROOT = Path(__file__).resolve().parents[1]


def scale(values, head: str = "classification") -> TaskConfig:
    """The label space of a rating head on the scale ``values`` (as load_splits fits it)."""
    names = {i: str(v) for i, v in enumerate(values)}
    if head == "regression":
        return TaskConfig("rating", 1, "regression", values=list(values))
    return TaskConfig("rating", len(values), id2label=names, values=list(values))


FIVE = scale((1, 2, 3, 4, 5))
IMDB = scale((1, 2, 3, 4, 7, 8, 9, 10))
PNG = b"\x89PNG\r\n\x1a\n"
CSV_HEADER = "ID,Movie_Name_EN,Movie_Name_CN,Crawl_Date,Number,Username,Date,Star,Comment,Like\n"


def to_ids(scale: TaskConfig, ratings) -> list[int]:
    """The class id (position on the scale) of each rating."""
    return [scale.values.index(float(r)) for r in ratings]


def rating_metrics(true_ids, pred_ids, scale: TaskConfig, point_predictions=None) -> dict:
    """The bundled "rating" evaluate module on ids of ``scale``."""
    points = None if point_predictions is None else list(map(float, point_predictions))
    return compute(load_metric("rating"), list(map(int, pred_ids)), list(map(int, true_ids)), values=scale.values,
                   points=points)


def load_recipe():
    spec = importlib.util.spec_from_file_location("rating_recipe", ROOT / "recipes" / "rating.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- metrics ------------------------------------------------------------------------------------------------------
def test_metrics_on_a_hand_computed_case():
    true = to_ids(FIVE, [1, 5, 3, 2, 5])
    pred = to_ids(FIVE, [2, 4, 3, 5, 5])  # off by 1, 1, 0, 3, 0
    m = rating_metrics(true, pred, FIVE)
    assert m["accuracy"] == pytest.approx(2 / 5)
    assert m["off_by_one_accuracy"] == pytest.approx(4 / 5)
    assert m["mae"] == pytest.approx(1.0) and m["mae_rounded"] == pytest.approx(1.0)
    assert m["rmse"] == pytest.approx(math.sqrt(11 / 5))
    # per-class F1: 1: 0, 2: 0, 3: 1, 4 (never true, predicted once): 0, 5: P = 1/2 (5 predicted for a 2), R = 1/2
    assert m["macro_f1"] == pytest.approx((0 + 0 + 1 + 0 + 1 / 2) / 5)


def test_off_by_one_at_the_scale_ends_and_across_imdb_gap():
    # 1->2 and 5->4 are neighbours, 1->3 and 5->3 are not; nothing wraps around (1 vs 5).
    m = rating_metrics(to_ids(FIVE, [1, 5, 1, 5, 1]), to_ids(FIVE, [2, 4, 3, 3, 5]), FIVE)
    assert m["accuracy"] == 0 and m["off_by_one_accuracy"] == pytest.approx(2 / 5)
    # IMDB has no 5 or 6: 4 and 7 are adjacent classes (off-by-one right), 3 vs 7 is two steps; MAE stays in stars.
    m = rating_metrics(to_ids(IMDB, [4, 3, 10, 1]), to_ids(IMDB, [7, 7, 9, 1]), IMDB)
    assert m["off_by_one_accuracy"] == pytest.approx(3 / 4) and m["accuracy"] == pytest.approx(1 / 4)
    assert m["mae"] == pytest.approx((3 + 4 + 1 + 0) / 4)


def test_spearman_perfect_reversed_and_undefined():
    ids = np.asarray(to_ids(FIVE, [1, 2, 3, 4, 5]))
    assert rating_metrics(ids, ids, FIVE)["spearman"] == pytest.approx(1.0)
    assert rating_metrics(ids, ids[::-1], FIVE)["spearman"] == pytest.approx(-1.0)
    assert math.isnan(rating_metrics(ids, np.full(5, 3), FIVE)["spearman"])  # constant predictions


def test_regression_predictions_are_clipped_then_rounded_to_the_scale():
    five, imdb = scale(FIVE.values, "regression"), scale(IMDB.values, "regression")
    raw = np.array([[-3.0], [0.4], [1.49], [1.5], [2.51], [7.2]])
    pred = task_predictions(five, raw)
    np.testing.assert_allclose(pred["points"], [1, 1, 1.49, 1.5, 2.51, 5])
    np.testing.assert_allclose(pred["values"], raw[:, 0])  # the head's output itself, in stars
    assert five.to_values(pred["ids"]).tolist() == [1, 1, 1, 1, 3, 5]  # 1.5 is a tie: the lower rating
    ids = task_predictions(imdb, np.array([5.4, 5.6, 11.0, 0.0]))["ids"]
    assert imdb.to_values(ids).tolist() == [4, 7, 10, 1]  # nearest present value across the 5-6 gap
    # MAE/RMSE use the clipped raw value; accuracy the rounded one.
    m = rating_metrics(to_ids(FIVE, [1, 5]), to_ids(FIVE, [1, 5]), FIVE, point_predictions=[1.0, 4.6])
    assert m["accuracy"] == 1 and m["mae"] == pytest.approx(0.2) and m["mae_rounded"] == 0


def test_compute_metrics_for_the_trainer_both_heads():
    from transformers import EvalPrediction

    cls = compute_task_metrics([FIVE])(
        EvalPrediction(predictions=np.eye(5)[[0, 1, 4]], label_ids=np.array([0, 2, 4])))
    assert cls["accuracy"] == pytest.approx(2 / 3) and cls["off_by_one_accuracy"] == 1
    # a regressor's outputs are in stars; its labels are the ratings themselves
    reg = compute_task_metrics([scale(FIVE.values, "regression")])(
        EvalPrediction(predictions=np.array([[0.2], [3.4], [9.0]]), label_ids=np.array([1.0, 3.0, 4.0])))
    assert reg["accuracy"] == pytest.approx(2 / 3) and reg["mae"] == pytest.approx((0 + 0.4 + 1) / 3)


# ---- readers and bad ratings ----------------------------------------------------------------------------------------
def test_parse_rating_accepts_whole_numbers_only():
    assert [parse_rating(v) for v in (4, 4.0, "4", " 5 ", "3.0")] == [4, 4, 4, 5, 3]
    assert [parse_rating(v) for v in (None, "", "five", 4.5, float("nan"), True)] == [None] * 6


def test_douban_csv_bad_ratings_are_reported_with_their_lines(tmp_path):
    path = tmp_path / "DMSC.csv"
    rows = [(5, "很好看"), (0, "零分"), (6, "六星"), ("five", "五星"), ("", "没有评分"), (3, "一般")]
    lines = [f"{i},Movie,电影,2018-01-01,{i},user{i},2017-12-01,{star},{text},1\n" for i, (star, text) in
             enumerate(rows)]
    path.write_text(CSV_HEADER + "".join(lines), encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_douban_csv(path)
    message = str(err.value)
    assert "4 record(s) have a bad rating" in message
    for shown in ("line 3: '0'", "line 4: '6'", "line 5: 'five'", "line 6: missing"):
        assert shown in message
    assert "whole numbers from 1 to 5" in message and "line 2" not in message


def test_douban_csv_reads_dedupes_and_keeps_positions(tmp_path):
    path = tmp_path / "DMSC.csv"
    body = ["1,M,电影,d,1,u,d,5,太棒了,1\n", "2,M,电影,d,2,u,d,4,太棒了,0\n", "3,M,电影,d,3,u,d,1,\"很差, 很无聊\",2\n",
            "4,M,电影,d,4,u,d,2,,0\n"]
    path.write_text("\ufeff" + CSV_HEADER + "".join(body), encoding="utf-8")
    assert detect_format(str(path))[0] == "douban_csv"
    ds, report = read_douban_csv(path)
    assert ds["text"] == ["太棒了", "很差, 很无聊"] and ds["rating"] == [5, 1] and ds["position"] == ["line 2", "line 4"]
    assert (report.duplicates_dropped, report.duplicates_with_other_label, report.empty_texts_dropped) == (1, 1, 1)
    assert (report.rows_read, report.rows_kept) == (4, 2)


def test_douban_csv_with_another_layout_fails_clearly(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("label,review\n1,好\n", encoding="utf-8")
    with pytest.raises(DataError, match="no \\['Star', 'Comment'\\] column"):
        read_douban_csv(path)


def test_dmr_bad_stars_name_the_nested_review(tmp_path):
    path = tmp_path / "reviews.json"
    nested = {"review0": {"text": "差", "stars": 0}, "review1": {"text": "还行", "stars": "five"}}
    data = {"review0": {"text": "好", "stars": 5, "user_reviews": nested},
            "review1": {"text": "一般", "user_reviews": {}}}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_douban_dmr(path)
    message = str(err.value)
    assert "3 record(s)" in message and "review0.user_reviews.review0: 0" in message
    assert "review0.user_reviews.review1: 'five'" in message and "review1: missing" in message


def test_real_dmr_file_is_flattened_and_deduplicated(shared_data):
    path = shared_data / "douban_dmr" / "reviews.json"
    assert detect_format(str(path)) == ("douban_dmr", path)
    ds, report = read_douban_dmr(path)
    assert report.rows_read == 1627 and report.empty_texts_dropped == 360 and report.duplicates_dropped == 59
    assert len(ds) == len(set(ds["text"])) == 1208
    assert Counter(ds["rating"]) == {1: 67, 2: 60, 3: 248, 4: 485, 5: 348} and report.rows_kept == 1208
    assert any(".user_reviews." in p for p in ds["position"])


def test_imdb_rating_column_and_a_bad_table_rating(shared_data, tmp_path):
    ds, report = read_rating_table(str(shared_data / "imdb" / "test.parquet"), "test")
    assert set(ds["rating"]) == {1, 2, 3, 4, 7, 8, 9, 10} and report.rows_kept == 25000
    path = tmp_path / "rated.csv"
    path.write_text("text,rating\ngood,9\nbad,11\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"record 1: 11.*from 1 to 10"):
        read_rating_table(str(path), "train")


class FakeCleaner:  # the agreed interface of toolkit.cleaning.Cleaner
    def clean_batch(self, texts):
        return [t.replace("@user", "").strip() for t in texts]

    def to_dict(self):
        return {"drop_mentions": True}


class Built(Exception):
    """Raised in place of building the Trainer: the recipe's data and model are ready."""


def test_clean_uses_toolkit_cleaning_and_records_its_options(monkeypatch, tiny_bert, tmp_path):
    import sys
    import types

    from toolkit.training import run

    monkeypatch.setitem(sys.modules, "toolkit.cleaning", types.SimpleNamespace(Cleaner=FakeCleaner))
    recipe = load_recipe()  # imports Cleaner from toolkit.cleaning: the fake one

    def built(model, tokenizer, splits, *args, **kwargs):
        raise Built(model, splits)

    monkeypatch.setattr(run, "build_trainer", built)
    path = tmp_path / "DMSC.csv"
    rows = [(5, "@user 好看"), (3, "一般"), (5, "很好看"), (3, "@user 还行")] * 2
    path.write_text(CSV_HEADER + "".join(f"{i},M,电影,d,{i},u,d,{star},{text}{i},0\n"
                                         for i, (star, text) in enumerate(rows)), encoding="utf-8")

    def prepared(*flags):
        argv = ["--model_name_or_path", str(tiny_bert), "--dataset", str(path), "--output_dir", str(tmp_path / "o"),
                "--eval_fraction", "0.5", "--report_to", "none", *flags]
        with pytest.raises(Built) as got:
            recipe.main(argv)
        return got.value.args

    model, splits = prepared("--clean", "true")
    both = list(splits.train["text"]) + list(splits.eval["text"])
    assert sorted(both) == sorted(f"{t.replace('@user', '').strip()}{i}" for i, (_, t) in enumerate(rows))
    raw = list(splits.train["raw"]) + list(splits.eval["raw"])
    assert sorted(raw) == sorted(f"{t}{i}" for i, (_, t) in enumerate(rows))
    assert sorted(list(splits.train["rating"]) + list(splits.eval["rating"])) == sorted(star for star, _ in rows)
    assert model.config.cleaning == {"drop_mentions": True}
    model, splits = prepared()
    assert model.config.cleaning is None and "raw" not in splits.train.column_names
    assert any(t.startswith("@user") for t in list(splits.train["text"]) + list(splits.eval["text"]))


def test_regression_head_outputs_the_mean_rating_when_its_last_layer_is_zero(tiny_bert):
    import datasets

    from toolkit.args import DataArguments, ModelArguments
    from toolkit.data.splits import label_columns
    from toolkit.studies.rating import rating_task_spec
    from toolkit.training.run import build_model

    ratings = [1, 2, 3, 4, 7, 8, 9, 10, 10, 8]  # mean 6.2
    parts = [(None, {"train": datasets.Dataset.from_dict({"rating": ratings}),
                     "eval": datasets.Dataset.from_dict({"rating": [1, 10]})})]
    data_args = DataArguments()
    args = ModelArguments(model_name_or_path=str(tiny_bert), mode="frozen", pooling="mean")
    batch = {"input_ids": torch.tensor([[2, 10, 11, 3], [2, 12, 3, 0]]), "attention_mask": torch.tensor(
        [[1, 1, 1, 1], [1, 1, 1, 0]])}

    by_role, (task,) = label_columns(parts, [rating_task_spec(RatingArguments(head="regression"))], data_args)
    assert task.values == list(IMDB.values) and task.target_mean == pytest.approx(6.2)
    assert task.target_std == pytest.approx(np.std(ratings)) and by_role["train"]["labels_rating"] == ratings
    model = build_model(args, [task]).eval()
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    assert model.config.tasks[0]["values"] == list(IMDB.values)
    with torch.no_grad():
        model.head[-1].weight.zero_()
        model.head[-1].bias.zero_()
        torch.testing.assert_close(model(**batch).logits, torch.full((2, 1), 6.2))  # in rating units
        model.head[-1].bias.fill_(0.5)  # the head learns (y - mean) / std
        expected = 6.2 + 0.5 * task.target_std
        torch.testing.assert_close(model(**batch).logits, torch.full((2, 1), expected))
        labels = torch.tensor([6.2, 6.2 + task.target_std])
        assert model(**batch, labels=labels).loss.item() == pytest.approx((0.5 ** 2 + 0.5 ** 2) / 2)  # MSE in stds

    _, (classes,) = label_columns(parts, [rating_task_spec(RatingArguments())], data_args)
    classifier = build_model(args, [classes])
    assert classifier.config.id2label[4] == "7" and classifier.config.tasks[0]["values"] == list(IMDB.values)
    assert classifier.config.problem_type == "single_label_classification" and classifier.head[-1].bias.abs().max() < 1


def test_rating_arguments_validate():
    with pytest.raises(ValueError, match="--head 'ordinal'"):
        RatingArguments(head="ordinal")
    with pytest.raises(ValueError, match="--rating_range"):
        RatingArguments(rating_range=[5, 1])


# ---- self-attentive pooling ---------------------------------------------------------------------------------------
def test_attention_sums_to_one_on_real_tokens_and_penalty_matches_hand_value(tiny_bert):
    from transformers import AutoTokenizer

    from toolkit.modeling.model import TaskModel
    from toolkit.modeling.pooling import SelfAttentivePooling

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = TaskModel.from_encoder(str(tiny_bert), tasks=[{"name": "rating", "num_labels": 5}], pooling="attention",
                                   attention_hops=3, attention_dim=16, mode="frozen").eval()
    batch = tokenizer(["the film was great fun", "bad"], padding=True, return_tensors="pt")
    labels = torch.tensor([4, 0])
    out = model(**batch, labels=labels)
    att, mask = out.attentions, batch["attention_mask"]
    assert att.shape == (2, 3, mask.shape[1])
    torch.testing.assert_close(att.sum(-1), torch.ones(2, 3))
    assert torch.all(att[1][:, mask[1] == 0] == 0) and (mask[1] == 0).sum() > 0

    a = torch.tensor([[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]])  # AA^T - I = [[-.5, .5], [.5, 0]] -> 0.75
    assert SelfAttentivePooling.penalty(a).item() == pytest.approx(0.75)
    model.config.attention_penalty = 0.5
    with torch.no_grad():
        with_penalty = model(**batch, labels=labels)
    expected = out.loss + 0.5 * SelfAttentivePooling.penalty(with_penalty.attentions)
    torch.testing.assert_close(with_penalty.loss, expected)


# ---- pictures ------------------------------------------------------------------------------------------------------
def test_confusion_matrices_are_row_normalised():
    true, pred = np.array([0, 0, 0, 0, 4, 4]), np.array([0, 1, 2, 4, 3, 4])
    plain = rating_reports.confusion(true, pred, 5)
    np.testing.assert_allclose(plain[0], [0.25, 0.25, 0.25, 0, 0.25])
    np.testing.assert_allclose(plain[4], [0, 0, 0, 0.5, 0.5])
    assert plain[1:4].sum() == 0  # no reviews of those ratings: an empty row, not a division by zero
    loose = rating_reports.confusion(true, pred, 5, off_by_one=True)
    np.testing.assert_allclose(loose[0], [0.5, 0, 0.25, 0, 0.25])
    np.testing.assert_allclose(loose[4], [0, 0, 0, 0, 1])


def test_every_picture_is_written(tmp_path):
    rng = np.random.default_rng(0)
    true = rng.integers(0, 5, 60)
    pred = np.clip(true + rng.integers(-1, 2, 60), 0, 4)
    files = [
        rating_reports.plot_confusion(rating_reports.confusion(true, pred, 5), FIVE.scale_names, tmp_path / "cm.png",
                                      "cm"),
        rating_reports.plot_rating_histograms(true, pred, FIVE, tmp_path / "hist.png", rng.uniform(0.5, 5.5, 60)),
        rating_reports.plot_tsne(rating_reports.tsne_points(rng.normal(size=(60, 20)) + true[:, None], 0), true, FIVE,
                                 tmp_path / "tsne.png"),
        rating_reports.plot_attention([{"tokens": list("这部电影很好看"), "attention": np.full((2, 7), 1 / 7),
                                        "title": "true 5"}], tmp_path / "att.png"),
    ]
    for path in files:
        assert path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


def test_the_scatter_and_bar_pictures_label_both_axes(tmp_path, monkeypatch):
    saved = []
    real_save = rating_reports.reports.save_figure

    def keep(fig, path):
        saved.append([(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes if ax.get_label() != "<colorbar>"])
        return real_save(fig, path)

    monkeypatch.setattr(rating_reports.reports, "save_figure", keep)
    rng = np.random.default_rng(0)
    true = rng.integers(0, 5, 60)
    pred = np.clip(true + rng.integers(-1, 2, 60), 0, 4)
    rating_reports.plot_confusion(rating_reports.confusion(true, pred, 5), FIVE.scale_names, tmp_path / "cm.png", "cm")
    rating_reports.plot_rating_histograms(true, pred, FIVE, tmp_path / "hist.png", rng.uniform(0.5, 5.5, 60))
    rating_reports.plot_tsne(rating_reports.tsne_points(rng.normal(size=(60, 20)), 0), true, FIVE, tmp_path / "t.png")
    assert len(saved) == 3
    for labels in saved:
        assert labels and all(x and y for x, y in labels), labels


def test_top_words_per_rating_english_and_chinese():
    texts = ["great acting, great story", "great fun", "awful boring plot", "boring and awful", "the plot"]
    table = rating_reports.top_words(texts, [4, 4, 0, 0, 2], FIVE, k=2)
    assert table["5"][0]["term"] == "great" and table["5"][0]["reviews"] == 2
    assert {t["term"] for t in table["1"]} == {"awful", "boring"} and table["2"] == []
    zh = rating_reports.top_words(["好看好看", "很好看", "太差了", "差劲的电影"], [4, 4, 0, 0], FIVE, k=3)
    assert zh["5"][0]["term"] in ("好看", "好", "看") and zh["1"][0]["term"] == "差"
    assert all("的" != t["term"] for terms in zh.values() for t in terms)


# ---- the recipe end to end -----------------------------------------------------------------------------------------
def recipe_argv(model, out, *extra):
    return ["--model_name_or_path", str(model), "--output_dir", str(out), "--max_length", "64",
            "--per_device_train_batch_size", "32", "--num_train_epochs", "2", "--learning_rate", "1e-3",
            "--report_to", "none", "--feature_cache_dir", str(out.parent / "features"), "--save_strategy", "no",
            "--dataloader_pin_memory", "false", "--tsne_points", "80", *extra]


def check_run(results: dict, out: Path, eval_examples: int):
    assert results["eval_examples"] == eval_examples
    for name in results["pictures"].values():
        assert (out / name).stat().st_size > 1000 and (out / name).read_bytes()[:8] == PNG
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert saved["final"]["accuracy"] == pytest.approx(results["final"]["accuracy"])
    with open(out / "predictions.jsonl", encoding="utf-8") as fh:  # not splitlines(): texts may hold U+2028
        records = [json.loads(line) for line in fh]
    assert len(records) == eval_examples
    # ratings in predictions.jsonl are numbers on the scale (as inference's "rating"), not their names ("5")
    assert all(type(r["rating"]) is int and type(r["predicted"]) is int for r in records), records[0]
    assert np.mean([r["rating"] == r["predicted"] for r in records]) == pytest.approx(results["final"]["accuracy"])
    final = results["final"]
    assert 0 <= final["accuracy"] <= final["off_by_one_accuracy"] <= 1 and final["mae"] >= 0
    # one task: the final metrics are its metrics (the final loss also holds any attention penalty)
    per_task = {k: v for k, v in results["per_task"]["rating"].items() if k not in ("n", "loss")}
    assert {k: final[k] for k in per_task} == pytest.approx(per_task, nan_ok=True)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["tasks"][0]["values"] == results["rating_values"] == results["tasks"][0]["values"]
    return records, config


@pytest.mark.slow
def test_recipe_douban_classification_with_attention(tmp_path, tiny_bert, shared_data):
    out = tmp_path / "dmr-attention"
    results = load_recipe().main(recipe_argv(
        tiny_bert, out, "--dataset", str(shared_data / "douban_dmr" / "reviews.json"), "--head", "classification",
        "--mode", "frozen", "--pooling", "attention", "--attention_hops", "2", "--attention_penalty", "0.1",
        "--max_train_samples", "300", "--max_eval_samples", "100"))
    records, config = check_run(results, out, 100)
    assert results["rating_values"] == [1, 2, 3, 4, 5] and results["train_examples"] == 300
    assert set(results["pictures"]) == {"confusion_matrix", "confusion_off_by_one", "rating_histogram", "tsne",
                                        "attention", "loss_curve"}
    assert len(config["id2label"]) == 5 and config["problem_type"] == "single_label_classification"
    # the file's report (on the train role): 1627 reviews read, 360 empty and 59 duplicates dropped; of the 1208
    # kept, each role reports its own share (before --max_*_samples)
    data = results["data"]
    assert (data["train"]["format"], data["train"]["rows_read"], data["train"]["empty_texts_dropped"],
            data["train"]["duplicates_dropped"]) == ("douban_dmr", 1627, 360, 59)
    assert data["train"]["rows_kept"] + data["eval"]["rows_kept"] == 1208 and not results["feature_cache"]
    assert data["eval"]["rows_kept"] == math.ceil(1208 * 0.1)  # --eval_fraction 0.1 (sklearn rounds the test share up)
    assert all(r["rating"] in range(1, 6) and ".json" not in r["position"] for r in records)
    assert "| 5 |" in (out / "top_words.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_recipe_imdb_regression_on_the_eight_present_ratings(tmp_path, tiny_bert, shared_data):
    out = tmp_path / "imdb-regression"
    results = load_recipe().main(recipe_argv(
        tiny_bert, out, "--dataset", "imdb", "--data_dir", str(shared_data), "--head", "regression",
        "--mode", "frozen", "--pooling", "mean", "--max_train_samples", "300", "--max_eval_samples", "120"))
    records, config = check_run(results, out, 120)
    assert results["rating_values"] == [1, 2, 3, 4, 7, 8, 9, 10] and results["feature_cache"]
    assert config["problem_type"] == "regression" and "attention" not in results["pictures"]
    raw = np.array([r["raw_prediction"] for r in records])
    assert 3 < np.median(raw) < 8  # the output bias starts at the mean training rating (~5.5), not at 0
    rounded = IMDB.to_values(IMDB.nearest_ids(raw))
    assert np.array_equal(rounded, [r["predicted"] for r in records])
    errors = np.clip(raw, 1, 10) - [r["rating"] for r in records]
    assert results["final"]["mae"] == pytest.approx(np.mean(np.abs(errors)), abs=1e-3)

    from toolkit.inference import load_model, predict

    model, tokenizer = load_model(out)
    rows = predict(model, tokenizer, [records[0]["text"], records[1]["text"]], max_length=64)
    for row, record in zip(rows, records):
        assert row["value"] == pytest.approx(record["raw_prediction"], abs=1e-3)
        assert row["rating"] == record["predicted"] and row["rating"] in IMDB.values


@pytest.mark.parametrize("config", sorted((ROOT / "recipes" / "rating").glob("*.yaml")), ids=lambda p: p.name)
def test_every_rating_yaml_parses(config):
    from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args

    cpu = [] if torch.cuda.is_available() else ["--bf16", "false"]
    types = (ModelArguments, DataArguments, RatingArguments, ToolkitTrainingArguments)
    model_args, data_args, rating_args, _ = parse_args(types, [str(config), *cpu, "--output_dir", "x"])
    assert rating_args.head in ("classification", "regression") and data_args.max_length <= 512
