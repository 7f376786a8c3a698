"""k-fold training with an ensemble (toolkit.training.kfold) through the IMDB recipe, on a tiny random BERT."""

import json

import numpy as np
import pytest

from test_recipe_imdb import argv, load_recipe
from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args
from toolkit.config import ConfigError
from toolkit.data.readers import DataError, read_split, subsample
from toolkit.inference import load_model, predict


@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_kfold_trains_k_models_and_the_ensemble_is_their_mean_probability(tmp_path, tiny_bert, shared_data, mode):
    out = tmp_path / "kfold"
    results = load_recipe().main(argv(tiny_bert, shared_data, out, "--mode", mode, "--num_train_epochs", "1",
                                      "--kfold", "3"))

    saved = json.loads((out / "results.json").read_text())
    kfold = saved["kfold"]
    assert kfold["k"] == 3 and kfold["stratified_by"] == "label" and len(kfold["folds"]) == 3
    held = [f["held_out_rows"] for f in kfold["folds"]]
    assert sum(held) == 64 and all(f["train_rows"] + f["held_out_rows"] == 64 for f in kfold["folds"])
    assert [f["seed"] for f in kfold["folds"]] == [42, 43, 44]
    for f in kfold["folds"]:  # each fold selected on its held-out fold and scored on the test split
        assert 0 <= f["dev"]["accuracy"] <= 1 and f["test"]["test"]["label"]["n"] == 40
        assert (out / "folds" / f"{f['fold']:02d}" / "model.safetensors").is_file()
    assert not list((out / "folds").glob("*/checkpoint-*"))

    # The ensemble's probabilities are the mean of the folds' saved models' probabilities, row by row.
    rows = [json.loads(line) for line in (out / "ensemble_test.jsonl").read_text().split("\n") if line]
    assert len(rows) == 40
    ds = subsample(read_split("imdb", "test", data_dir=str(shared_data)), 40, seed=42)
    assert [r["text"] for r in rows] == list(ds["text"])
    folds = []
    for index in range(3):
        model, tokenizer = load_model(out / "folds" / f"{index:02d}")
        predicted = predict(model, tokenizer, ds["text"], max_length=64)
        folds.append([[p["probabilities"]["neg"], p["probabilities"]["pos"]] for p in predicted])
    folds = np.asarray(folds)
    stored = np.asarray([r["fold_probabilities"] for r in rows]).transpose(1, 0, 2)
    np.testing.assert_allclose(stored, folds, atol=1e-4)
    ensemble = np.asarray([[r["probabilities"]["neg"], r["probabilities"]["pos"]] for r in rows])
    np.testing.assert_allclose(ensemble, folds.mean(axis=0), atol=1e-4)
    assert not np.allclose(folds[0], folds[1]), "the folds are different models"

    # Its metrics are those of the mean probabilities, reported beside each fold's.
    labels = np.asarray(ds["label"])
    accuracy = float((ensemble.argmax(-1) == labels).mean())
    assert saved["kfold"]["ensemble"]["metrics"]["test"]["label"]["accuracy"] == pytest.approx(accuracy)
    assert saved["test"]["test"]["label"]["accuracy"] == pytest.approx(accuracy)
    assert results["per_task"]["label"]["accuracy"] == pytest.approx(accuracy)
    table = kfold["table"]
    assert [row["model"] for row in table] == ["fold 0", "fold 1", "fold 2", "mean of folds", "ensemble"]
    assert table[-1]["test_accuracy"] == pytest.approx(accuracy)
    assert table[-2]["test_accuracy"] == pytest.approx(np.mean([f["test"]["test"]["label"]["accuracy"]
                                                                for f in kfold["folds"]]))
    markdown = (out / "results.md").read_text()
    assert "3-fold ensemble" in markdown and "| fold 2 |" in markdown and "| ensemble |" in markdown


def test_folds_are_stratified_and_seeded():
    import datasets

    from toolkit.data.labels import TaskConfig
    from toolkit.data.splits import Splits
    from toolkit.training.kfold import fold_indices

    labels = [0] * 30 + [1] * 6
    train = datasets.Dataset.from_dict({"text": ["x"] * 36, "labels_label": labels})
    task = TaskConfig("label", 2, "single_label_classification", id2label={0: "neg", 1: "pos"})
    splits = Splits(train, train, [task], {})
    folds, by = fold_indices(splits, 3, seed=1)
    assert by == "label"
    assert sorted(np.concatenate([held for _, held in folds]).tolist()) == list(range(36))
    assert [int(np.asarray(labels)[held].sum()) for _, held in folds] == [2, 2, 2]
    again, _ = fold_indices(splits, 3, seed=1)
    other, _ = fold_indices(splits, 3, seed=2)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))
    with pytest.raises(DataError, match="--kfold 7 needs at least 7 train rows of every class .* class 'pos' has 6"):
        fold_indices(splits, 7, seed=1)


def parse(*flags):
    return parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments), list(flags))


@pytest.mark.parametrize("flags, message", [
    (["--kfold", "1"], "--kfold 1 is out of range: it must be >= 2"),
    (["--kfold", "0"], "--kfold 0 is out of range"),
    (["--kfold", "3", "--resume_from_checkpoint", "true"], "is not resumed"),
])
def test_bad_kfold_flags_are_one_line_errors_at_parse_time(flags, message):
    with pytest.raises(ConfigError) as error:
        parse(*flags)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_kfold_larger_than_the_smallest_class_fails_before_training(tmp_path, tiny_bert, shared_data):
    out = tmp_path / "too-many"
    with pytest.raises(DataError, match="--kfold 40 needs at least 40 train rows of every class"):
        load_recipe().main(argv(tiny_bert, shared_data, out, "--mode", "frozen", "--kfold", "40"))
    assert not (out / "results.json").exists() and not (out / "folds").exists()
