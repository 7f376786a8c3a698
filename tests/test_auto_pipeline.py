"""Saved models outside the toolkit's own code: transformers' Auto classes and pipeline(), the model card, and a
final folder without pickles. Trained by the real recipes on a tiny random BERT and a few real IMDB / Weibo rows."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from toolkit.cleaning import Cleaner
import toolkit  # noqa: F401  (registers the model, config and tokenizer classes with transformers)
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer, pipeline

ROOT = Path(__file__).resolve().parents[1]
TRADITIONAL, SIMPLIFIED = "我們很開心，這部電影太棒了", "我们很开心,这部电影太棒了"


def load_recipe(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_recipe", ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def common(tiny_bert, shared_data, out):
    return ["--model_name_or_path", str(tiny_bert), "--data_dir", str(shared_data), "--output_dir", str(out),
            "--max_train_samples", "48", "--max_eval_samples", "24", "--per_device_train_batch_size", "16",
            "--num_train_epochs", "1", "--learning_rate", "1e-3", "--report_to", "none",
            "--dataloader_pin_memory", "false", "--feature_cache_dir", str(out.parent / "features")]


@pytest.fixture(scope="module")
def imdb_model(tiny_bert, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("auto") / "imdb"
    load_recipe("imdb").main(common(tiny_bert, shared_data, out) + ["--mode", "finetune", "--max_length", "48"])
    return out


@pytest.fixture(scope="module")
def weibo_model(tiny_bert, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("auto") / "weibo"
    load_recipe("weibo_emotion").main(common(tiny_bert, shared_data, out) + [
        "--test_splits", "virus_test", "--max_test_samples", "24", "--max_length", "32",
        "--warmup_epochs", "0"])
    return out


@pytest.mark.slow
def test_imdb_model_loads_through_auto_classes_and_pipeline(imdb_model):
    config = AutoConfig.from_pretrained(imdb_model)
    assert config.model_type == "toolkit" and config.id2label == {0: "neg", 1: "pos"} and config.max_length == 48
    model = AutoModelForSequenceClassification.from_pretrained(imdb_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(imdb_model)
    encoded = tokenizer(["a great film", "bad " * 200], padding=True, return_tensors="pt")
    assert encoded["input_ids"].shape[1] == 48, "the saved max_length truncates without being asked"
    with torch.no_grad():
        logits = model(**encoded).logits
    assert logits.shape == (2, 2)
    classify = pipeline("text-classification", model=str(imdb_model), device="cpu")
    got = classify(["a great film", "bad " * 200])
    expected = torch.softmax(logits, dim=-1).max(dim=-1)
    assert [g["label"] for g in got] == [config.id2label[int(i)] for i in expected.indices]
    assert [g["score"] for g in got] == pytest.approx(expected.values.tolist(), abs=1e-5)
    assert type(AutoModel.from_pretrained(imdb_model)).__name__ == "TaskModel"


@pytest.mark.slow
def test_weibo_pipeline_applies_the_saved_cleaning(weibo_model, tiny_bert):
    config = AutoConfig.from_pretrained(weibo_model)
    assert config.cleaning == Cleaner().to_dict() and config.max_length == 32
    classify = pipeline("text-classification", model=str(weibo_model), device="cpu", top_k=None)
    traditional, simplified = classify([TRADITIONAL, SIMPLIFIED])
    assert traditional == simplified, "a traditional-character post must get the simplified form's prediction"
    tokenizer = AutoTokenizer.from_pretrained(weibo_model)
    assert tokenizer(TRADITIONAL)["input_ids"] == tokenizer(SIMPLIFIED)["input_ids"]
    plain = AutoTokenizer.from_pretrained(tiny_bert)  # without the saved cleaning the two forms differ
    assert plain(TRADITIONAL)["input_ids"] != plain(SIMPLIFIED)["input_ids"]


@pytest.mark.slow
def test_final_folder_holds_safetensors_json_and_a_model_card(imdb_model, weibo_model):
    for folder in (imdb_model, weibo_model):
        files = {p.name for p in folder.rglob("*") if p.is_file()}
        assert "model.safetensors" in files and "config.json" in files and "tokenizer.json" in files
        assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))], files
        assert not list(folder.glob("checkpoint-*")), "checkpoints are removed once the run completed"
        card = (folder / "README.md").read_text(encoding="utf-8")
        for part in ("## Tasks", "- command: ", "- date: ", "- hardware: ", "## Evaluation", "| task |", "pipeline("):
            assert part in card, part
    results = json.loads((weibo_model / "results.json").read_text())
    assert results["test"]["virus_test"]["examples"] == 24
    assert (weibo_model / "confusion_virus_test.png").stat().st_size > 1000


@pytest.mark.slow
def test_multitask_model_loads_through_automodel(tiny_bert, shared_data, tmp_path):
    out = tmp_path / "mt"
    load_recipe("multitask").main(common(tiny_bert, shared_data, out) + ["--mode", "frozen", "--max_length", "32"])
    model = AutoModel.from_pretrained(out).eval()
    assert [t.name for t in model.tasks] == ["sentiment", "rating"]
    tokenizer = AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        output = model(**tokenizer(["a great film"], return_tensors="pt"))
    assert output.logits is None and set(output.task_logits) == {"sentiment", "rating"}
    with pytest.raises(ValueError, match="single-task"):
        model(**tokenizer(["x"], return_tensors="pt"), labels=torch.tensor([0]))


def test_import_toolkit_registers_without_loading_torch_for_cleaning():
    code = ("import sys, toolkit, toolkit.cleaning; assert 'torch' not in sys.modules; "
            "from transformers import AutoConfig; assert AutoConfig.for_model('toolkit').model_type == 'toolkit'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
