"""The per-layer probe (toolkit.studies.layers): one cached encoder pass per split, a regression per layer."""

import numpy as np
import pytest

from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args
from toolkit.data.splits import load_splits
from toolkit.modeling import features as features_module
from toolkit.studies import layers


def _setup(tiny_bert, shared_data, tmp_path, pooling="mean"):
    argv = ["--model_name_or_path", str(tiny_bert), "--data_dir", str(shared_data), "--mode", "frozen",
            "--pooling", pooling, "--max_train_samples", "48", "--max_eval_samples", "32", "--max_length", "48",
            "--feature_cache_dir", str(tmp_path / "features"), "--output_dir", str(tmp_path / "out"),
            "--report_to", "none"]
    model_args, data_args, training_args = parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments), argv)
    return load_splits(data_args, training_args.seed), model_args, data_args, training_args


def _refuse_to_encode(*args, **kwargs):
    raise AssertionError("the encoder ran although the per-layer cache held these features")


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_per_layer_features_come_from_one_cached_pass(tiny_bert, shared_data, tmp_path, monkeypatch, pooling):
    splits, model_args, data_args, training_args = _setup(tiny_bert, shared_data, tmp_path, pooling)
    features = layers.per_layer_features(splits, model_args, data_args, training_args)
    assert set(features) == {"train", "eval"}
    x, y = features["train"]
    assert x.shape == (48, 3, 32) and y.shape == (48,)  # embeddings + 2 layers, hidden 32
    assert features["eval"][0].shape == (32, 3, 32)
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 2  # one entry per split
    monkeypatch.setattr(features_module, "compute_features", _refuse_to_encode)
    again = layers.per_layer_features(splits, model_args, data_args, training_args)
    np.testing.assert_array_equal(again["eval"][0], features["eval"][0])


def test_probe_rows_plot_and_table(tiny_bert, shared_data, tmp_path):
    features = layers.per_layer_features(*_setup(tiny_bert, shared_data, tmp_path))
    rows = layers.probe_layers(features, num_classes=2)
    assert [r["name"] for r in rows] == ["embeddings", "layer 1", "layer 2"]
    assert all(0 <= r["eval_accuracy"] <= 1 and 0 <= r["eval_macro_f1"] <= 1 for r in rows)
    assert layers.probe_layers(features, num_classes=2) == rows  # deterministic
    png = layers.plot_layer_probe({"mean": rows}, "eval", tmp_path / "probe.png", "tiny")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = layers.markdown_rows(rows, ["eval"])
    assert table.splitlines()[0] == "| layer | eval accuracy | eval macro-F1 |"
    assert table.splitlines()[2].startswith(f"| 0 (embeddings) | {rows[0]['eval_accuracy']:.4f} |")


def test_a_probe_learns_separable_layers_and_ignores_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = rng.normal(size=(200, 2, 8))
    x[:, 1, 0] += 6 * y  # layer 1 carries the label, the embeddings do not
    rows = layers.probe_layers({"train": (x[:100], y[:100]), "test": (x[100:], y[100:])})
    assert rows[1]["test_accuracy"] >= 0.95 > 0.7 > rows[0]["test_accuracy"]
