"""SMP2020-EWECT reader, label map, cleaning in load_splits, class weighting, warm-up, split scoring, the Weibo
recipe, train.sh/test.sh and inference.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from toolkit.cleaning import Cleaner
from toolkit.data.labels import TaskConfig, TaskSpec, balanced_class_weights, encode_labels
from toolkit.data.readers import DataError
from toolkit.data.splits import prepare_texts
from toolkit.studies import weibo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_posts(path: Path, records: list) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def read_prepared(path: Path, cleaner=None):
    """A competition file as a run reads it: the reader, then load_splits' text preparation (clean, drop empty)."""
    ds, report = weibo.read_smp2020(path)
    return prepare_texts(ds, report, "content", cleaner), report


def load_recipe(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- reader and label map -----------------------------------------------------------------------------------------
def test_label_map_and_reader(tmp_path):
    path = write_posts(tmp_path / "posts.json", [
        {"id": 1, "content": "开心", "label": "happy"}, {"id": 2, "content": "生气", "label": "angry"},
        {"id": 3, "content": "难过", "label": "sad"}, {"id": 4, "content": "害怕", "label": "fear"},
        {"id": 5, "content": "惊讶", "label": "surprise"}, {"id": 6, "content": "电影", "label": "neutral"},
        {"id": 7, "content": "好", "label": 0},
    ])
    raw, _ = weibo.read_smp2020(path)
    assert weibo.WEIBO_LABELS == ["happy", "angry", "sad", "fear", "surprise", "neutral"]
    assert raw["label"] == weibo.WEIBO_LABELS + ["happy"]  # names, and the id 0 read as its name
    ids, names = encode_labels(raw["label"], TaskSpec("label", "label"), str(path), weibo.WEIBO_LABELS)
    assert ids == [0, 1, 2, 3, 4, 5, 0] and names == weibo.WEIBO_LABELS
    ds, report = read_prepared(path, Cleaner())
    assert ds["id"][:2] == ["1", "2"] and ds["text"][1] == "生气" and ds["raw"][1] == "生气"
    assert report.rows_read == 7 and report.empty_texts_dropped == 0 and report.rows_kept == 7


def test_unknown_label_is_an_error(tmp_path):
    path = write_posts(tmp_path / "p.json", [{"id": 1, "content": "好", "label": "happy"},
                                             {"id": 9, "content": "啊", "label": "joy"}])
    with pytest.raises(DataError, match=r"record 1 \(id 9\).*'joy'.*happy"):
        weibo.read_smp2020(path)


def test_missing_content_and_label_are_errors(tmp_path):
    no_content = write_posts(tmp_path / "a.json", [{"id": 3, "text": "好", "label": "happy"}])
    with pytest.raises(DataError, match=r"record 0 \(id 3\) has no 'content'"):
        weibo.read_smp2020(no_content)
    no_label = write_posts(tmp_path / "b.json", [{"id": 4, "content": "好"}])
    with pytest.raises(DataError, match="has no 'label'"):
        weibo.read_smp2020(no_label)
    not_a_list = tmp_path / "c.json"
    not_a_list.write_text('{"id": 1}', encoding="utf-8")
    with pytest.raises(DataError, match="JSON list"):
        weibo.read_smp2020(not_a_list)


def test_empty_posts_are_dropped_and_counted(tmp_path):
    path = write_posts(tmp_path / "p.json", [{"id": 1, "content": "好", "label": "happy"},
                                             {"id": 2, "content": "   ", "label": "sad"},
                                             {"id": 3, "content": "", "label": "sad"}])
    ds, report = read_prepared(path)
    assert ds["id"] == ["1"] and report.empty_texts_dropped == 2
    only_empty = write_posts(tmp_path / "e.json", [{"id": 1, "content": " ", "label": "happy"}])
    with pytest.raises(DataError, match="e.json: every text is empty"):
        read_prepared(only_empty)


def test_reader_cleans_and_drops_posts_empty_after_cleaning(tmp_path):
    cleaner = Cleaner()  # the recipe's cleaner (clean: true in WEIBO_DEFAULTS)
    path = write_posts(tmp_path / "p.json", [{"id": 1, "content": "ＡＢＣ開心", "label": "happy"},
                                             {"id": 2, "content": "http://t.cn/abc", "label": "neutral"}])
    ds, report = read_prepared(path, cleaner)
    assert ds["text"] == [cleaner("ＡＢＣ開心")] and ds["raw"] == ["ＡＢＣ開心"]
    assert ds["text"][0] == "abc开心"
    assert report.empty_texts_dropped == 1 and ds["label"] == ["happy"]
    with pytest.raises(DataError, match="every text is empty after cleaning"):
        prepare_texts(*weibo.read_smp2020(write_posts(tmp_path / "u.json", [
            {"id": 1, "content": "http://t.cn/abc", "label": "happy"}])), "content", cleaner)


def test_split_names_resolve_to_the_competition_files(shared_data):
    path = weibo.resolve_split_file("virus_test", "smp2020_ewect")
    assert path == shared_data / "smp2020_ewect" / "virus_test_labeled.json"
    assert weibo.resolve_split_file("usual_eval", str(shared_data / "smp2020_ewect")).name == "usual_eval_labeled.json"
    with pytest.raises(DataError, match="usual_train"):  # the usual train file is not shipped offline
        weibo.resolve_split_file("usual_train", "smp2020_ewect")
    ds, _ = weibo.read_smp2020(shared_data / "smp2020_ewect" / "virus_eval_labeled.json")
    assert len(ds) == 2000 and set(ds["label"]) == set(weibo.WEIBO_LABELS)


# ---- class weighting and warm-up ----------------------------------------------------------------------------------
def label_space(labels: list[int], class_weighting: str) -> TaskConfig:
    """The label space load_splits fits on these train labels (eval: one post of each class)."""
    from toolkit.args import DataArguments
    from toolkit.data.splits import label_columns

    data_args = DataArguments(class_names=weibo.WEIBO_LABELS[:4], class_weighting=class_weighting)
    parts = [(None, {"train": datasets.Dataset.from_dict({"label": labels}),
                     "eval": datasets.Dataset.from_dict({"label": [0, 1, 2, 3]})})]
    by_role, tasks = label_columns(parts, data_args.task_specs, data_args)
    assert by_role["train"]["labels_label"] == labels
    return tasks[0]


def test_balanced_class_weights_and_weighted_loss():
    from toolkit.modeling.model import task_loss

    labels = [0] * 6 + [1] * 3 + [2]
    weights = balanced_class_weights(labels, 4)
    # n / (k * count) for the present classes; a class absent from the data gets weight 1 (documented)
    assert np.allclose(weights, [10 / 24, 10 / 12, 10 / 4, 1.0])
    present = np.asarray(balanced_class_weights(labels, 3))
    assert np.allclose(present, [10 / 18, 10 / 9, 10 / 3])
    assert np.isclose(present[np.asarray(labels)].mean(), 1.0)  # same loss scale as plain CE on the train set
    assert balanced_class_weights(labels + [-100, -100], 3) == present.tolist()  # missing labels do not count
    # --class_weighting: balanced puts the weights into the task's label space, none leaves plain cross-entropy
    assert np.allclose(label_space(labels, "balanced").class_weights, weights)
    assert label_space(labels, "none").class_weights is None

    logits = torch.randn(5, 4)
    target = torch.tensor([0, 1, 2, 2, 1])
    weighted = TaskConfig("label", 4, class_weights=weights)
    per_item = torch.nn.functional.cross_entropy(logits, target, reduction="none") * torch.tensor(weights)[target]
    # summed and divided by the number of labelled posts (as the Trainer's num_items_in_batch path was)
    assert torch.isclose(task_loss(weighted, logits, target), per_item.sum().float() / 5)
    plain = TaskConfig("label", 4)
    assert torch.isclose(task_loss(plain, logits, target), torch.nn.functional.cross_entropy(logits, target))
    # a missing label (-100) neither adds to the sum nor to the count
    with_missing = torch.cat([target, torch.tensor([-100])])
    assert torch.isclose(task_loss(weighted, torch.cat([logits, torch.randn(1, 4)]), with_missing),
                         per_item.sum().float() / 5)


def weibo_arguments(argv: list[str]):
    from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args

    return parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments), argv,
                      defaults=weibo.WEIBO_DEFAULTS)


def test_warmup_is_one_epoch_of_optimizer_steps(tmp_path):
    from toolkit.training.run import warmup_steps_for

    _, data_args, args = weibo_arguments(["--output_dir", str(tmp_path), "--per_device_train_batch_size", "64",
                                          "--report_to", "none", "--gradient_accumulation_steps", "2"])
    assert warmup_steps_for(8606, args, 1.0) == 68  # ceil(8606 / 128)
    assert warmup_steps_for(8606, args, 0.5) == 34
    assert args.metric_for_best_model == "macro_f1" and args.load_best_model_at_end and args.num_train_epochs == 30
    assert args.warmup_epochs == 1.0 and data_args.clean and data_args.class_names == weibo.WEIBO_LABELS


def test_recipe_yaml_configs_parse():
    from toolkit.args import DataArguments

    for config in sorted((ROOT / "recipes" / "weibo_emotion").glob("*.yaml")):
        _, data_args, training_args = weibo_arguments([str(config), "--report_to", "none"])
        assert data_args.max_length == 140 and training_args.metric_for_best_model == "macro_f1", config
    with pytest.raises(ValueError, match="class_weighting"):
        DataArguments(class_weighting="focal")


# ---- evaluation report --------------------------------------------------------------------------------------------
def test_evaluate_split_report(tmp_path):
    from toolkit.training.run import evaluate_split

    labels = [0, 1, 2, 2, 4]
    probabilities = np.eye(6)[[0, 1, 2, 3, 5]] * 0.9 + 0.01
    task = TaskConfig("label", 6, id2label=dict(enumerate(weibo.WEIBO_LABELS)))
    ds = datasets.Dataset.from_dict({"id": list("12345"), "text": list("abcde")})
    per_task = evaluate_split("toy", [task], [np.log(probabilities)], [np.asarray(labels)], ds, tmp_path, plot=True)
    entry = per_task["label"]
    assert entry["metrics"]["accuracy"] == pytest.approx(0.6) and entry["metrics"]["n"] == 5
    assert entry["per_class"]["confusion_matrix"][2] == [0, 0, 1, 1, 0, 0]
    png = tmp_path / "confusion_toy.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| sad | 1.000 | 0.500 |" in weibo.per_class_markdown(entry["per_class"], weibo.WEIBO_LABELS)
    wrong = [json.loads(line) for line in (tmp_path / "misclassified_toy.jsonl").read_text().splitlines()]
    assert len(wrong) == entry["misclassified"] == 2
    assert {w["id"] for w in wrong} == {"4", "5"} and {w["label"] for w in wrong} == {"sad", "surprise"}


# ---- the recipe end to end on a tiny model and real posts ---------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("weibo-run")
    argv = [
        "--model_name_or_path", str(tiny_bert), "--output_dir", str(out), "--report_to", "none",
        "--max_train_samples", "200", "--max_eval_samples", "64", "--max_test_samples", "64",
        "--test_splits", "virus_test", "usual_eval", "--num_train_epochs", "2", "--learning_rate", "1e-3",
        "--per_device_train_batch_size", "32", "--class_weighting", "balanced", "--max_length", "64",
        "--early_stopping_patience", "3",
    ]
    results = load_recipe("weibo_emotion").main(argv)
    return out, results, argv


def config_weights(out: Path) -> list[float]:
    return json.loads((out / "config.json").read_text(encoding="utf-8"))["tasks"][0]["class_weights"]


@pytest.mark.slow  # shares the ~20 s tiny training run of the `trained` fixture
def test_recipe_trains_selects_and_scores(trained):
    out, results, argv = trained
    assert results["train_examples"] == 200 and results["eval_examples"] == 64
    assert [row["epoch"] for row in results["epochs"]] == [1.0, 2.0]
    assert results["best_metric"] == pytest.approx(max(r["eval_macro_f1"] for r in results["epochs"]))
    training_args = json.loads((out / "training_args.json").read_text(encoding="utf-8"))
    assert training_args["warmup_steps"] == 7  # one epoch: ceil(200 / 32)
    (task,) = results["tasks"]
    # --class_weighting balanced: the weights of the run's 200 (cleaned, seeded) train posts, saved with the task
    from toolkit.data.splits import load_splits

    _, data_args, _ = weibo_arguments([str(ROOT / "recipes" / "weibo_emotion" / "cpu.yaml"), *argv])
    splits = load_splits(data_args, 42, reader=weibo.read_weibo_source, cleaner=Cleaner())
    assert len(splits.train) == 200
    assert task["class_weights"] == pytest.approx(balanced_class_weights(splits.train["labels_label"], 6))
    assert task["class_weights"][weibo.WEIBO_LABELS.index("surprise")] > 1.0
    assert config_weights(out) == task["class_weights"]  # and with the model
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert set(results["test"]) == set(saved["test"]) == {"virus_test", "usual_eval"}
    for name in ("virus_test", "usual_eval"):
        report = saved["test"][name]
        assert report["examples"] == 64 and 0.0 <= report["label"]["macro_f1"] <= 1.0
        assert (out / f"confusion_{name}.png").stat().st_size > 1000
        assert (out / f"misclassified_{name}.jsonl").is_file()
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["cleaning"] == Cleaner().to_dict()
    assert config["id2label"]["4"] == "surprise"


@pytest.mark.slow  # shares the ~20 s tiny training run of the `trained` fixture
def test_saved_model_cleans_inputs_at_inference(trained, tiny_bert):
    from transformers import AutoTokenizer

    from toolkit.inference import load_model, predict

    model, tokenizer = load_model(trained[0])
    cleaner = Cleaner.from_dict(model.config.cleaning)
    raw = ["ＨＥＬＬＯ！我很開心，@某人 http://t.cn/x", "電影太棒"]
    assert cleaner(raw[1]) == "电影太棒"
    assert predict(model, tokenizer, raw) == [
        {**row, "text": r} for row, r in zip(predict(model, tokenizer, cleaner.clean_batch(raw)), raw)]
    # without the saved cleaning, the traditional characters would be [UNK] for this vocabulary
    plain = AutoTokenizer.from_pretrained(tiny_bert)
    assert plain.tokenize("電影") == ["[UNK]", "影"] and plain.tokenize(cleaner("電影")) == ["电", "影"]
    assert tokenizer.tokenize("電影") == ["电", "影"]  # the saved tokenizer re-applies the cleaning


@pytest.mark.slow  # shares the ~20 s tiny training run of the `trained` fixture
def test_evaluate_saved_model_cli(trained, tmp_path, capsys):
    out = tmp_path / "scores"
    assert weibo.main(["--model", str(trained[0]), "--test_file", "virus_eval", "--max_samples", "40",
                       "--output_dir", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert '"split": "virus_eval", "examples": 40' in printed and "| surprise |" in printed
    assert (out / "confusion_virus_eval.png").is_file()
    with pytest.raises(FileNotFoundError, match="sh train.sh"):
        weibo.main(["--model", str(tmp_path / "none"), "--test_file", "virus_eval"])


@pytest.mark.slow  # shares the ~20 s tiny training run of the `trained` fixture
def test_root_inference_wrapper(trained, tmp_path, capsys, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("root_inference", ROOT / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--model", str(trained[0]), "--input", "你是个什么东西,垃圾", "--device", "cpu"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["text"] == "你是个什么东西,垃圾" and row["label"] in weibo.WEIBO_LABELS
    assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    monkeypatch.setattr(module, "DEFAULT_MODEL", tmp_path / "not-trained")
    assert module.main(["--input", "好"]) == 2
    assert "sh train.sh" in capsys.readouterr().err


# ---- the shell wrappers, from the repository, on a tiny model -----------------------------------------------------
@pytest.mark.slow
def test_train_sh_and_test_sh(tiny_bert, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MODEL": str(tiny_bert), "OUTPUT_DIR": str(tmp_path / "model"), "CONFIG": "recipes/weibo_emotion/cpu.yaml",
           "MAX_TRAIN": "120", "MAX_EVAL": "40", "MAX_TEST": "40", "EPOCHS": "1", "TEST": "virus_test"}
    train = subprocess.run(["sh", str(ROOT / "train.sh"), "--report_to", "none", "--max_length", "48"], env=env,
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "test virus_test: accuracy" in train.stdout
    env.update(MODEL_DIR=str(tmp_path / "model"), OUTPUT_DIR=str(tmp_path / "scores"), TEST="virus_eval usual_test",
               MAX_SAMPLES="30", DEVICE="cpu")
    test = subprocess.run(["sh", str(ROOT / "test.sh")], env=env, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert test.returncode == 0, test.stderr[-3000:]
    for name in ("virus_eval", "usual_test"):
        assert json.loads((tmp_path / "scores" / f"test_{name}.json").read_text())["examples"] == 30
        assert (tmp_path / "scores" / f"confusion_{name}.png").is_file()
    missing = subprocess.run(["sh", str(ROOT / "test.sh")], env={**env, "MODEL_DIR": str(tmp_path / "nothing")},
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "sh train.sh" in missing.stderr


@pytest.mark.slow
def test_frozen_cached_run_scores_its_test_splits(tiny_bert, tmp_path):
    # the Trainer of a frozen run collates cached features: test splits must reach it as features too
    out = tmp_path / "frozen"
    results = load_recipe("weibo_emotion").main([
        "--model_name_or_path", str(tiny_bert), "--output_dir", str(out), "--report_to", "none", "--mode", "frozen",
        "--max_train_samples", "64", "--max_eval_samples", "32", "--max_test_samples", "24",
        "--test_splits", "virus_test", "--num_train_epochs", "1", "--max_length", "32",
        "--feature_cache_dir", str(tmp_path / "features"),
    ])
    assert results["feature_cache"] is True
    scored = results["test"]["virus_test"]
    assert scored["examples"] == 24 and scored["label"]["n"] == 24 and 0.0 <= scored["label"]["accuracy"] <= 1.0
    assert (out / "confusion_virus_test.png").stat().st_size > 1000
