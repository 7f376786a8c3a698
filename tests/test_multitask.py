"""Multi-task heads: loss arithmetic, gradient isolation, missing labels, save/load, bad configs, recipe runs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, EvalPrediction

from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args
from toolkit.data.labels import IGNORE_INDEX, TaskConfig, TaskSpec, encode_labels
from toolkit.data.readers import DataError
from toolkit.evaluation.metrics import compute_task_metrics, task_metrics
from toolkit.modeling.model import TaskModel, TaskModelConfig
from toolkit.training.trainer import ToolkitTrainer, task_sampling_probabilities

REPO = Path(__file__).resolve().parents[1]
TASKS = [
    {"name": "sentiment", "num_labels": 2, "loss_weight": 1.0, "id2label": {0: "neg", 1: "pos"}},
    {"name": "topic", "num_labels": 3, "loss_weight": 0.5, "id2label": {0: "film", 1: "book", 2: "food"}},
    {"name": "rating", "num_labels": 1, "problem_type": "regression", "loss_weight": 0.25},
]


def make_model(tiny_bert, tasks=TASKS, **kwargs) -> TaskModel:
    torch.manual_seed(0)
    return TaskModel.from_encoder(str(tiny_bert), tasks=tasks, head_hidden_size=16, **kwargs)


def batch(tiny_bert, n: int = 6) -> dict:
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    texts = ["the film was great", "awful boring plot", "i loved this book", "the worst movie", "good fun",
             "很 好 的 电 影"][:n]
    return dict(tok(texts, padding=True, return_tensors="pt"))


def test_loss_is_weighted_sum_of_head_losses(tiny_bert):
    model = make_model(tiny_bert).eval()
    labels = {"labels_sentiment": torch.tensor([1, 0, 1, 0, 1, 1]), "labels_topic": torch.tensor([0, 0, 1, 0, 2, 0]),
              "labels_rating": torch.tensor([9.0, 2.0, 8.0, 1.0, 7.0, 10.0])}
    out = model(**batch(tiny_bert), **labels)
    logits = out.task_logits
    assert logits["sentiment"].shape == (6, 2) and logits["topic"].shape == (6, 3) and logits["rating"].shape == (6, 1)

    def head_losses(logits: dict) -> dict:
        return {
            "sentiment": torch.nn.functional.cross_entropy(logits["sentiment"], labels["labels_sentiment"]),
            "topic": torch.nn.functional.cross_entropy(logits["topic"], labels["labels_topic"]),
            "rating": torch.nn.functional.mse_loss(logits["rating"].squeeze(-1), labels["labels_rating"]),
        }

    expected = head_losses(logits)
    for name, value in expected.items():
        torch.testing.assert_close(out.task_losses[name], value)
    torch.testing.assert_close(out.loss, expected["sentiment"] + 0.5 * expected["topic"] + 0.25 * expected["rating"])

    # the weights live in each task's TaskConfig.loss_weight, and the trainer's loss is the model's weighted sum
    reweighted = [TASKS[0], {**TASKS[1], "loss_weight": 2.0}, {**TASKS[2], "loss_weight": 0.0}]
    model = make_model(tiny_bert, tasks=reweighted).eval()
    args = ToolkitTrainingArguments(output_dir="unused", report_to="none", use_cpu=True, eval_strategy="no")
    trainer = ToolkitTrainer(model=model, args=args)
    loss = trainer.compute_loss(model, {**batch(tiny_bert), **labels})
    expected = head_losses(model(**batch(tiny_bert)).task_logits)
    torch.testing.assert_close(loss, expected["sentiment"] + 2.0 * expected["topic"])
    assert {t.name: t.loss_weight for t in trainer.tasks} == {"sentiment": 1.0, "topic": 2.0, "rating": 0.0}
    assert args.label_names == ["labels_sentiment", "labels_topic", "labels_rating"] and trainer.can_return_loss
    # --loss_weights (in --tasks order) become the tasks' loss_weight when the splits are built
    import datasets

    from toolkit.data.splits import label_columns

    data_args = DataArguments(tasks=["sentiment:label", "rating:rating:regression"], loss_weights=[1.0, 0.1])
    rows = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 0], "rating": [2.0, 9.0, 4.0]})
    _, tasks = label_columns([(None, {"train": rows, "eval": rows})], data_args.task_specs, data_args)
    assert {t.name: t.loss_weight for t in tasks} == {"sentiment": 1.0, "rating": 0.1}


def test_regression_head_learns_standardised_targets(tiny_bert):
    tasks = [TASKS[0], {**TASKS[2], "target_mean": 5.0, "target_std": 2.0}]
    model = make_model(tiny_bert, tasks=tasks).eval()
    raw = model.heads["rating"](model.pool(**batch(tiny_bert)).pooled)
    rating = torch.tensor([9.0, 2.0, 8.0, 1.0, 7.0, 10.0])
    out = model(**batch(tiny_bert), labels_rating=rating)
    torch.testing.assert_close(out.task_logits["rating"], raw * 2.0 + 5.0)  # reported in stars
    torch.testing.assert_close(out.task_losses["rating"], ((raw.squeeze(-1) - (rating - 5.0) / 2.0) ** 2).mean())
    assert model.config.task("rating").target_std == 2.0
    with pytest.raises(ValueError, match="std > 0"):
        TaskConfig("r", 1, "regression", target_std=0.0)


def test_head_gets_no_gradient_from_batches_without_its_task(tiny_bert):
    model = make_model(tiny_bert).train()
    # situation 2: every row belongs to "sentiment"; the topic labels given for them must not count
    out = model(**batch(tiny_bert), task_ids=torch.zeros(6, dtype=torch.long),
                labels_sentiment=torch.tensor([1, 0, 1, 0, 1, 1]), labels_topic=torch.tensor([0, 1, 2, 0, 1, 2]),
                labels_rating=torch.full((6,), float("nan")))
    assert set(out.task_losses) == {"sentiment"}
    out.loss.backward()
    for name in ("topic", "rating"):
        assert all(p.grad is None for p in model.heads[name].parameters()), name
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.heads["sentiment"].parameters())
    assert model.encoder.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_missing_labels_count_only_labelled_rows(tiny_bert):
    model = make_model(tiny_bert).eval()
    sentiment = torch.tensor([1, IGNORE_INDEX, 0, IGNORE_INDEX, 1, IGNORE_INDEX])
    rating = torch.tensor([float("nan"), 3.0, float("nan"), 8.0, float("nan"), float("nan")])
    out = model(**batch(tiny_bert), labels_sentiment=sentiment, labels_rating=rating,
                labels_topic=torch.full((6,), IGNORE_INDEX))
    keep = sentiment != IGNORE_INDEX
    torch.testing.assert_close(out.task_losses["sentiment"], torch.nn.functional.cross_entropy(
        out.task_logits["sentiment"][keep], sentiment[keep]))
    present = ~torch.isnan(rating)
    torch.testing.assert_close(out.task_losses["rating"], torch.nn.functional.mse_loss(
        out.task_logits["rating"].squeeze(-1)[present], rating[present]))
    assert "topic" not in out.task_losses and torch.isfinite(out.loss)
    torch.testing.assert_close(out.loss, out.task_losses["sentiment"] + 0.25 * out.task_losses["rating"])

    # task_ids route rows: rows 0-2 are sentiment's, rows 3-5 topic's; labels for the other task are ignored
    task_ids = torch.tensor([0, 0, 0, 1, 1, 1])
    out2 = model(**batch(tiny_bert), task_ids=task_ids, labels_sentiment=torch.tensor([1, 0, 1, 1, 1, 1]),
                 labels_topic=torch.tensor([2, 2, 2, 0, 1, 2]))
    torch.testing.assert_close(out2.task_losses["topic"], torch.nn.functional.cross_entropy(
        out2.task_logits["topic"][3:], torch.tensor([0, 1, 2])))
    torch.testing.assert_close(out2.task_losses["sentiment"], torch.nn.functional.cross_entropy(
        out2.task_logits["sentiment"][:3], torch.tensor([1, 0, 1])))

    # no labels for any task: a zero loss that still backpropagates (no NaN)
    out3 = model(**batch(tiny_bert), labels_sentiment=torch.full((6,), IGNORE_INDEX))
    assert out3.task_losses == {} and out3.loss.item() == 0.0 and out3.loss.requires_grad


def test_save_load_keeps_heads_and_label_maps(tiny_bert, tmp_path):
    from toolkit import inference

    model = make_model(tiny_bert, pooling="mean").eval()
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    loaded, tokenizer = inference.load_model(tmp_path)
    assert isinstance(loaded, TaskModel) and list(loaded.heads) == ["sentiment", "topic", "rating"]
    assert loaded.config.pooling == "mean"
    assert loaded.config.task("topic").id2label == {0: "film", 1: "book", 2: "food"}
    assert loaded.config.task("rating").problem_type == "regression"
    assert loaded.config.task("topic").loss_weight == 0.5
    inputs = batch(tiny_bert)
    for name, logits in model(**inputs).task_logits.items():
        torch.testing.assert_close(loaded(**inputs).task_logits[name], logits)
    rows = inference.predict(loaded, tokenizer, ["the film was great", "awful"])
    assert set(rows[0]) == {"text", "sentiment.label", "sentiment.probabilities", "topic.label",
                            "topic.probabilities", "rating.value"}
    assert rows[1]["topic.label"] in {"film", "book", "food"}
    assert sum(rows[0]["sentiment.probabilities"].values()) == pytest.approx(1.0, abs=1e-3)


def test_bad_configs_fail_clearly(tiny_bert):
    with pytest.raises(ValueError, match="at least one task"):
        TaskModelConfig(tasks=[])
    with pytest.raises(ValueError, match="at least one task"):
        TaskModel(TaskModelConfig(encoder=make_model(tiny_bert).config.encoder))
    with pytest.raises(ValueError, match=r"Duplicate task names \['a'\]"):
        TaskModelConfig(tasks=[{"name": "a", "num_labels": 2}, {"name": "a", "num_labels": 3}])
    with pytest.raises(ValueError, match="num_labels >= 2"):
        TaskConfig("a", 1)
    with pytest.raises(ValueError, match="regression head has num_labels=1"):
        TaskConfig("a", 3, "regression")
    with pytest.raises(ValueError, match="must start with a letter"):
        TaskConfig("bad name", 2)
    with pytest.raises(ValueError, match="loss_weight"):
        TaskConfig("a", 2, loss_weight=-1)
    with pytest.raises(KeyError, match="No task 'nope'"):
        make_model(tiny_bert).config.task("nope")
    model = make_model(tiny_bert)
    with pytest.raises(ValueError, match=r"labels_topic holds \[3\], outside the head's range 0..2"):
        model(**batch(tiny_bert), labels_topic=torch.tensor([0, 1, 2, 3, 0, 0]))
    with pytest.raises(ValueError, match="Unexpected inputs"):
        model(**batch(tiny_bert), labels_nope=torch.zeros(6))
    with pytest.raises(DataError, match=r"labels \[2\] are outside 0..1"):
        encode_labels([0, 1, 2], TaskSpec("s", "label", "classification", ["neg", "pos"]), "demo")
    with pytest.raises(ValueError, match="not name:column"):
        TaskSpec.parse("sentiment")
    with pytest.raises(ValueError, match="kind 'ordinal'"):
        TaskSpec.parse("rating:rating:ordinal")
    with pytest.raises(ValueError, match="Duplicate task names"):
        DataArguments(tasks=["a:label", "a:rating:regression"])
    with pytest.raises(ValueError, match="has 1 values for 2 tasks"):
        DataArguments(tasks=["sentiment:label", "rating:rating:regression"], loss_weights=[1.0])
    with pytest.raises(ValueError, match="names 1 sources for 2 tasks"):
        DataArguments(tasks=["a:label", "b:label"], task_datasets=["a.csv"])
    # weights are the tasks' own now: the trainer takes none that could name a task the model lacks
    args = ToolkitTrainingArguments(output_dir="unused", report_to="none", use_cpu=True, eval_strategy="no")
    with pytest.raises(TypeError, match="loss_weights"):
        ToolkitTrainer(model=model, args=args, loss_weights={"nope": 1.0})


def test_encode_labels_maps_strings_sparse_ints_and_missing():
    ids, names = encode_labels(["b", None, "a", "b"], TaskSpec("t", "c"), "demo")
    assert (ids, names) == ([1, IGNORE_INDEX, 0, 1], ["a", "b"])
    ids, names = encode_labels([1, 10, 7, 4], TaskSpec("r", "rating"), "demo")  # IMDB ratings as 8-way classes
    assert (ids, names) == ([0, 3, 2, 1], ["1", "4", "7", "10"])
    ids, _ = encode_labels([10, 1], TaskSpec("r", "rating"), "eval", names)  # eval reuses train's names by value
    assert ids == [3, 0]
    with pytest.raises(DataError, match=r"labels \[5\] are not in the label set"):
        encode_labels([5], TaskSpec("r", "rating"), "eval", names)
    values, names = encode_labels([1, None, 7.5], TaskSpec("r", "rating", "regression"), "demo")
    assert values[0] == 1.0 and math.isnan(values[1]) and names == []


def test_metrics_per_task_and_sampling_probabilities():
    tasks = [TaskConfig("s", 2), TaskConfig("r", 1, "regression")]
    logits = (np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [1.0, 0.0]]), np.array([[3.0], [5.0], [0.0], [0.0]]))
    labels = (np.array([0, 1, 0, IGNORE_INDEX]), np.array([4.0, 2.0, np.nan, np.nan]))
    metrics = compute_task_metrics(tasks)(EvalPrediction(predictions=logits, label_ids=labels))
    assert metrics["s_accuracy"] == pytest.approx(2 / 3) and task_metrics(tasks[0], logits[0], labels[0])["n"] == 3
    assert metrics["r_mae"] == pytest.approx(2.0) and metrics["r_rmse"] == pytest.approx(math.sqrt(5.0))
    assert metrics["loss_r"] == pytest.approx(5.0) and task_metrics(tasks[1], logits[1], labels[1])["n"] == 2
    assert metrics["loss_s"] == pytest.approx(np.mean([math.log1p(math.exp(-2))] * 2 + [math.log1p(math.exp(2))]))
    np.testing.assert_allclose(task_sampling_probabilities([900, 100]), [0.9, 0.1])
    np.testing.assert_allclose(task_sampling_probabilities([900, 100], temperature=2.0), [0.75, 0.25])
    np.testing.assert_allclose(task_sampling_probabilities([900, 100], temperature=1e6), [0.5, 0.5], atol=1e-4)
    with pytest.raises(ValueError, match="must be > 0"):
        task_sampling_probabilities([1, 2], temperature=0)


def test_temperature_sampler_draws_tasks_at_the_scaled_rate(tiny_bert):
    import datasets

    ds = datasets.Dataset.from_dict({"input_ids": [[2, 3]] * 1000, "task_ids": [0] * 900 + [1] * 100,
                                     "labels_sentiment": [0] * 1000, "labels_topic": [0] * 1000})
    args = ToolkitTrainingArguments(output_dir="unused", report_to="none", use_cpu=True, eval_strategy="no", seed=1)
    trainer = ToolkitTrainer(model=make_model(tiny_bert, tasks=TASKS[:2]), args=args, train_dataset=ds,
                             sampling_temperature=2.0)
    np.testing.assert_allclose(trainer.task_probabilities, [0.75, 0.25])
    drawn = np.asarray(ds["task_ids"])[list(trainer._get_train_sampler())]
    assert len(drawn) == 1000 and 0.2 < drawn.mean() < 0.3  # 25% task 1, not its 10% share of the rows


def _run_recipe(argv: list[str]) -> dict:
    sys.path.insert(0, str(REPO / "recipes"))
    try:
        import multitask as recipe  # recipes/multitask.py
    finally:
        sys.path.pop(0)
    return recipe.main(argv)


COMMON = ["--report_to", "none", "--num_train_epochs", "2", "--learning_rate", "1e-3", "--logging_steps", "1",
          "--per_device_train_batch_size", "16", "--save_strategy", "no", "--max_length", "32"]


@pytest.mark.slow
def test_recipe_imdb_both_labels_end_to_end(tiny_bert, shared_data, tmp_path, capsys):
    out = tmp_path / "run"
    results = _run_recipe(["--model_name_or_path", str(tiny_bert), "--mode", "finetune", "--dataset",
                           str(shared_data / "imdb"), "--max_train_samples", "200", "--max_eval_samples", "100",
                           "--loss_weights", "1.0", "0.1", "--output_dir", str(out), *COMMON])
    saved = json.loads((out / "results.json").read_text())
    assert saved["per_task"] == results["per_task"]
    assert saved["train_examples"] == 200 and saved["eval_examples"] == 100
    assert saved["situation"] == "every row labels every task"
    sentiment, rating = saved["per_task"]["sentiment"], saved["per_task"]["rating"]
    assert sentiment["n"] == 100 and 0.0 <= sentiment["accuracy"] <= 1.0 and 0.0 <= sentiment["macro_f1"] <= 1.0
    assert rating["n"] == 100 and 0 < rating["mae"] <= rating["rmse"] < 10
    assert {t["name"]: t["loss_weight"] for t in saved["tasks"]} == {"sentiment": 1.0, "rating": 0.1}
    rating_task = next(t for t in saved["tasks"] if t["name"] == "rating")  # standardised on the 200 train ratings
    assert 4.0 < rating_task["target_mean"] < 7.0 and 2.5 < rating_task["target_std"] < 4.5
    assert len(saved["epochs"]) == 2 and "eval_loss_rating" in saved["epochs"][-1]
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    train_logs = [h for h in history if "loss" in h]
    assert train_logs and all("loss_sentiment" in h and "loss_rating" in h for h in train_logs)
    first = train_logs[0]  # the logged total is the weighted sum of the logged per-task means
    assert first["loss"] == pytest.approx(first["loss_sentiment"] + 0.1 * first["loss_rating"], rel=1e-3)
    eval_logs = [h for h in history if "eval_loss" in h]
    assert all({"eval_sentiment_accuracy", "eval_sentiment_macro_f1", "eval_rating_mae", "eval_rating_rmse",
                "eval_loss_sentiment", "eval_loss_rating"} <= set(h) for h in eval_logs)
    assert (out / "misclassified_sentiment.jsonl").is_file() and (out / "loss_curve.png").is_file()

    from toolkit import inference

    capsys.readouterr()
    assert inference.main(["--model", str(out), "--input", "the film was great", "--input", "awful"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and rows[0]["sentiment.label"] in {"neg", "pos"} and "rating.value" in rows[0]


@pytest.mark.slow
def test_recipe_one_dataset_per_task_end_to_end(tiny_bert, shared_data, tmp_path):
    data = shared_data / "chinese_sentiment"
    out = tmp_path / "run"
    results = _run_recipe([
        str(REPO / "recipes" / "multitask" / "hotel_waimai_cpu.yaml"), "--model_name_or_path", str(tiny_bert),
        "--task_datasets", str(data / "ChnSentiCorp_htl_all.csv"), str(data / "waimai_10k.csv"),
        "--max_train_samples", "150", "--max_eval_samples", "60", "--output_dir", str(out),
        "--feature_cache_dir", str(tmp_path / "features"), *COMMON,
    ])
    assert results["situation"] == "one dataset per task" and results["train_examples"] == 300
    assert results["task_sampling_probabilities"] == pytest.approx({"hotel": 0.5, "waimai": 0.5})
    for task in ("hotel", "waimai"):
        assert results["per_task"][task]["n"] == 60  # each head is scored on its own dataset's rows only
        assert set(results["per_class"][task]) >= {"negative", "positive", "confusion_matrix"}
    assert results["mode"] == "frozen" and results["feature_cache"] is True
    model = TaskModel.from_pretrained(out)
    assert model.config.task("waimai").id2label == {0: "negative", 1: "positive"}


@pytest.mark.slow
def test_shopping_csv_bom_stripped_and_categories(tiny_bert, shared_data, tmp_path):
    from toolkit.data.splits import load_splits

    data_args = DataArguments(dataset=str(shared_data / "chinese_sentiment" / "online_shopping_10_cats.csv"),
                              tasks=["category:cat", "sentiment:label:classification:negative,positive"],
                              text_column="review", max_train_samples=None, max_eval_samples=300)
    splits = load_splits(data_args, seed=42)
    assert len(splits.train) + len(splits.eval) > 56000  # the whole file was read (62,774 rows, 10% held out)
    assert not any(t.startswith("\ufeff") for t in splits.train["text"])
    assert splits.tasks[0].num_labels == 10 and "酒店" in splits.tasks[0].label_names
    assert set(splits.eval["labels_sentiment"]) == {0, 1}


@pytest.mark.parametrize("config", sorted((REPO / "recipes" / "multitask").glob("*.yaml")), ids=lambda p: p.name)
def test_every_yaml_parses(config):
    cpu_overrides = [] if torch.cuda.is_available() else ["--bf16", "false"]  # GPU configs ask for bf16
    model_args, task_args, training_args = parse_args(
        (ModelArguments, DataArguments, ToolkitTrainingArguments), [str(config), *cpu_overrides])
    assert len(task_args.task_specs) == 2 and training_args.output_dir.startswith("runs/multitask-")
    assert (task_args.task_datasets is None) == ("hotel_waimai" not in config.name)


@pytest.mark.slow
def test_inference_cli_subprocess(tiny_bert, tmp_path):
    make_model(tiny_bert).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "toolkit.inference", "--model", str(tmp_path), "--input", "good"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"sentiment.label", "topic.label", "rating.value"} <= set(row)
