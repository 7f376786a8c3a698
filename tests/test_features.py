"""The frozen-feature cache: one per-layer entry serves every layer choice of a linear pooling."""

import pytest
import torch
from datasets import Dataset
from transformers import BertConfig

from toolkit.modeling import features as features_module
from toolkit.modeling.features import FeatureDataset, cached_feature_dataset, compute_features
from toolkit.modeling.model import TaskModel, TaskModelConfig

ENCODER = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32).to_dict()


class _Collator:
    def __call__(self, rows):
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r["input_ids"])] = torch.tensor(r["input_ids"])
            mask[i, : len(r["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": mask}


def _model(layers, pooling="mean", seed=0):
    torch.manual_seed(seed)
    model = TaskModel(TaskModelConfig(encoder=ENCODER, tasks=[{"name": "label", "num_labels": 2}], mode="frozen",
                                      pooling=pooling, layers=layers))
    return model.eval()


@pytest.fixture
def tokenized():
    g = torch.Generator().manual_seed(0)
    rows = [torch.randint(5, 50, (int(n),), generator=g).tolist() for n in torch.randint(3, 20, (12,), generator=g)]
    return Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows],
                              "labels_label": [i % 2 for i in range(12)]})


def _refuse_to_encode(*args, **kwargs):
    raise AssertionError("the encoder ran although the cache held these features")


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_one_encoder_pass_serves_every_layer_choice(tmp_path, tokenized, monkeypatch, pooling):
    collator = _Collator()
    first = _model("last4_concat", pooling)
    cached_feature_dataset(first, tokenized, collator, tmp_path, max_length=32)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1

    monkeypatch.setattr(features_module, "compute_features", _refuse_to_encode)
    for layers in ("last4_mean", "scalar_mix", "last", "last4_concat"):
        model = _model(layers, pooling)  # same seed: same encoder weights, fresh head
        ds = cached_feature_dataset(model, tokenized, collator, tmp_path, max_length=32)
        direct = torch.stack([model.pool(**collator([row])).pooled[0] for row in tokenized.select_columns(
            ["input_ids"])])
        with torch.no_grad():
            torch.testing.assert_close(model.pool(features=ds.features).pooled, direct, rtol=1e-4, atol=1e-5)
        assert ds.column_names == ["features", "labels_label"]
        assert ds.columns["labels_label"].tolist() == tokenized["labels_label"]
    assert len(list(tmp_path.glob("*.safetensors"))) == 1, "no second entry was written"


def test_other_encoder_weights_miss_the_cache(tmp_path, tokenized, monkeypatch):
    collator = _Collator()
    cached_feature_dataset(_model("scalar_mix"), tokenized, collator, tmp_path, max_length=32)
    calls = []
    real = compute_features
    monkeypatch.setattr(features_module, "compute_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    cached_feature_dataset(_model("scalar_mix", seed=1), tokenized, collator, tmp_path, max_length=32)
    cached_feature_dataset(_model("last", pooling="max"), tokenized, collator, tmp_path, max_length=32)
    assert len(calls) == 2 and len(list(tmp_path.glob("*.safetensors"))) == 3


def test_last_layer_entry_is_not_mistaken_for_per_layer(tmp_path, tokenized, monkeypatch):
    """A 'last' entry holds [N, H]; a later last-4 run must encode again, not read it."""
    collator = _Collator()
    cached_feature_dataset(_model("last"), tokenized, collator, tmp_path, max_length=32)
    ds = cached_feature_dataset(_model("last4_mean"), tokenized, collator, tmp_path, max_length=32)
    assert ds.features.shape == (12, 5, 16)


def test_every_label_and_task_id_column_travels_with_the_features(tmp_path, tokenized):
    """A multi-task set keeps each labels_<task> column and task_ids beside the cached features, row for row."""
    collator = _Collator()
    multi = tokenized.rename_column("labels_label", "labels_sentiment")
    multi = multi.add_column("labels_rating", [float(i) for i in range(12)]).add_column("task_ids", [0, 1] * 6)
    ds = cached_feature_dataset(_model("last"), multi, collator, tmp_path, max_length=32)
    assert ds.column_names == ["features", "labels_sentiment", "labels_rating", "task_ids"] and len(ds) == 12
    row = ds[3]
    assert set(row) == set(ds.column_names) and row["features"].shape == (16,)
    assert (row["labels_sentiment"].item(), row["labels_rating"].item(), row["task_ids"].item()) == (1, 3.0, 1)
    with pytest.raises(ValueError, match="12 feature rows but 2 values in task_ids"):
        FeatureDataset(ds.features, {"task_ids": [0, 1]})
