"""The IMDB recipe end to end on a tiny random BERT and a few real reviews."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.evaluation.inputs import InputError
from toolkit.inference import load_model, main as predict_main, predict

ROOT = Path(__file__).resolve().parents[1]


def load_recipe():
    spec = importlib.util.spec_from_file_location("imdb_recipe", ROOT / "recipes" / "imdb.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def argv(tiny_bert, shared_data, out, *extra):
    return [
        "--model_name_or_path", str(tiny_bert), "--data_dir", str(shared_data), "--output_dir", str(out),
        "--max_train_samples", "64", "--max_eval_samples", "40", "--max_length", "64",
        "--per_device_train_batch_size", "16", "--num_train_epochs", "2", "--learning_rate", "1e-3",
        "--report_to", "none", "--feature_cache_dir", str(out.parent / "features"), "--save_strategy", "no",
        "--dataloader_pin_memory", "false", *extra,
    ]


@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_recipe_writes_results_and_a_loadable_model(tmp_path, tiny_bert, shared_data, mode):
    out = tmp_path / mode
    results = load_recipe().main(argv(tiny_bert, shared_data, out, "--mode", mode))

    saved = json.loads((out / "results.json").read_text())
    assert saved["mode"] == mode and saved["train_examples"] == 64 and saved["eval_examples"] == 40
    assert [row["epoch"] for row in saved["epochs"]] == [1.0, 2.0]
    assert all(0.0 <= row["eval_accuracy"] <= 1.0 and row["eval_loss"] > 0 for row in saved["epochs"])
    assert saved["feature_cache"] is (mode == "frozen")
    assert "| epoch | eval_loss | eval_accuracy |" in (out / "results.md").read_text()
    assert (out / "loss_curve.png").stat().st_size > 1000
    assert (out / "model.safetensors").is_file() and (out / "training_args.json").is_file()
    assert not list(out.glob("*.bin")), "no pickles in the saved model folder"
    if mode == "finetune":
        assert 0.0 < saved["tokens"]["padding_efficiency"] <= 1.0
    else:  # the head trains on cached features: no tokens pass through training
        assert saved["tokens"]["padding_efficiency"] is None
    wrong = (out / "misclassified.jsonl").read_text().splitlines()
    assert len(wrong) == saved["misclassified"]["label"] == round((1 - saved["final"]["accuracy"]) * 40)
    if wrong:
        first = json.loads(wrong[0])
        assert first["label"] != first["predicted"] and set(first["probabilities"]) == {"neg", "pos"}
        assert first["rating"] in (1, 2, 3, 4, 7, 8, 9, 10)
    assert results["final"]["accuracy"] == saved["final"]["accuracy"]

    # The saved model predicts the same as the final evaluation did.
    model, tokenizer = load_model(out)
    assert model.config.id2label == {0: "neg", 1: "pos"} and model.config.mode == mode
    from toolkit.data.readers import read_split, subsample

    ds = subsample(read_split("imdb", "test", data_dir=str(shared_data)), 40, seed=42)
    rows = predict(model, tokenizer, ds["text"], max_length=64)
    accuracy = np.mean([r["label"] == ["neg", "pos"][y] for r, y in zip(rows, ds["label"])])
    assert accuracy == pytest.approx(saved["final"]["accuracy"])


def test_rerun_into_a_used_folder_is_refused_unless_overwritten(tmp_path, tiny_bert, shared_data):
    out = tmp_path / "run"
    recipe = load_recipe()
    recipe.main(argv(tiny_bert, shared_data, out, "--mode", "frozen", "--num_train_epochs", "1"))
    first = json.loads((out / "results.json").read_text())
    (out / "misclassified_old_split.jsonl").write_text("{}\n")  # what an earlier run with other test splits left
    with pytest.raises(ValueError, match="already holds a finished run"):
        recipe.main(argv(tiny_bert, shared_data, out, "--mode", "frozen", "--num_train_epochs", "2"))
    assert json.loads((out / "results.json").read_text()) == first, "a refused run must not touch the folder"
    recipe.main(argv(tiny_bert, shared_data, out, "--mode", "frozen", "--num_train_epochs", "2",
                     "--overwrite_output_dir"))
    assert len(json.loads((out / "results.json").read_text())["epochs"]) == 2
    assert not (out / "misclassified_old_split.jsonl").exists()
    config = json.loads((out / "run_config.json").read_text())
    assert config["values"]["num_train_epochs"] == 2.0 and config["values"]["overwrite_output_dir"] is True
    assert config["sources"]["num_train_epochs"] == "flag --num_train_epochs"
    assert config["sources"]["pooling"].endswith("cpu.yaml:10")


def test_feature_cache_gives_the_same_model_as_recomputing(tmp_path, tiny_bert, shared_data):
    recipe = load_recipe()
    cached = recipe.main(argv(tiny_bert, shared_data, tmp_path / "cached", "--mode", "frozen", "--pooling", "mean"))
    assert list((tmp_path / "features").glob("*.safetensors")), "the cache holds the features"
    plain = recipe.main(argv(tiny_bert, shared_data, tmp_path / "plain", "--mode", "frozen", "--pooling", "mean",
                             "--feature_cache", "false"))
    assert plain["feature_cache"] is False and cached["feature_cache"] is True
    a, _ = load_model(tmp_path / "cached")
    b, _ = load_model(tmp_path / "plain")
    for (name, x), (_, y) in zip(a.head.state_dict().items(), b.head.state_dict().items()):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=name)
    assert cached["final"]["accuracy"] == plain["final"]["accuracy"]


def test_bad_data_path_fails_before_writing(tmp_path, tiny_bert, shared_data):
    out = tmp_path / "bad"
    with pytest.raises(ValueError, match="does not exist"):
        load_recipe().main(argv(tiny_bert, shared_data, out, "--dataset", str(tmp_path / "nothing.parquet")))
    assert not (out / "results.json").exists()


def test_inference_cli(tmp_path, tiny_bert, shared_data, capsys):
    out = tmp_path / "m"
    load_recipe().main(argv(tiny_bert, shared_data, out, "--mode", "frozen", "--num_train_epochs", "1"))
    capsys.readouterr()
    cli = ["--model", str(out), "--input", "great film", "--input", "awful plot", "--device", "cpu"]
    assert predict_main(cli) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["text"] for line in lines] == ["great film", "awful plot"]
    assert all(line["label"] in ("neg", "pos") and sum(line["probabilities"].values()) == pytest.approx(1, abs=1e-3)
               for line in lines)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        predict_main(["--model", str(tmp_path / "missing"), "--input", "x"])

    # A file: one output row per '\n' line, in order, Unicode line breaks inside a line kept; blank rows get no label.
    texts = ["great film \u2028 second half of the same review", "", "awful plot \x85 still the same line", "   "]
    source = tmp_path / "reviews.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert len(source.read_text(encoding="utf-8").splitlines()) > len(texts)  # what str.splitlines would have cut
    target = tmp_path / "predictions.jsonl"
    assert predict_main(["--model", str(out), "--file", str(source), "--output", str(target)]) == 0
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").split("\n") if line]
    assert [row["text"] for row in rows] == texts
    assert [row["label"] is None for row in rows] == [False, True, False, True]
    assert all(row.get("empty") for row in rows if row["label"] is None)
    with pytest.raises(InputError, match="the output is the input file"):  # never written over its own input
        predict_main(["--model", str(out), "--file", str(source), "--output", str(source)])
    assert source.read_text(encoding="utf-8") == "\n".join(texts) + "\n"
