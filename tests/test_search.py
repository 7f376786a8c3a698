"""Hyperparameter search with restarts (toolkit.training.search) through the IMDB recipe, on a tiny random BERT."""

import json
import math

import pytest

from test_recipe_imdb import argv, load_recipe
from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args
from toolkit.config import ConfigError
from toolkit.training.search import BERT_LEARNING_RATES, parse_space


@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_grid_of_lr_times_seeds_runs_every_trial_and_keeps_the_best(tmp_path, tiny_bert, shared_data, mode):
    out = tmp_path / "search"
    space = json.dumps({"learning_rate": [1e-2, 1e-4]})
    results = load_recipe().main(argv(tiny_bert, shared_data, out, "--mode", mode, "--num_train_epochs", "1",
                                      "--search", "optuna", "--search_space", space, "--search_seeds", "3", "4",
                                      "--metric_for_best_model", "loss"))

    table = json.loads((out / "search_trials.json").read_text())
    rows = table["table"]
    assert [row["trial"] for row in rows] == [0, 1, 2, 3]
    assert sorted((row["learning_rate"], row["seed"]) for row in rows) == [(1e-4, 3), (1e-4, 4), (1e-2, 3), (1e-2, 4)]
    assert all(row["state"] == "complete" and row["seconds"] >= 0 for row in rows)
    assert table["objective"] == "eval_loss" and table["direction"] == "minimize"

    # The recorded objective is each trial's eval loss, and the best trial is the one with the lowest.
    for row in rows:
        trial = json.loads((out / "trials" / f"{row['trial']:02d}" / "trial.json").read_text())
        assert trial["params"] == {"learning_rate": row["learning_rate"], "seed": row["seed"]}
        assert trial["evaluations"][-1]["eval_loss"] == pytest.approx(row["objective"])
    assert len({row["objective"] for row in rows}) == 4
    best = min(rows, key=lambda row: row["objective"])
    assert table["best_objective"] == pytest.approx(best["objective"])
    assert table["best_params"] == {"learning_rate": best["learning_rate"], "seed": best["seed"]}
    assert [row["best"] for row in rows].count(True) == 1 and best["best"]

    # Seeds are restarts: the same learning rate with another seed starts from other heads.
    losses = {(row["learning_rate"], row["seed"]): json.loads(
        (out / "trials" / f"{row['trial']:02d}" / "trial.json").read_text())["evaluations"][-1]["eval_loss"]
        for row in rows}
    assert losses[(1e-2, 3)] != losses[(1e-2, 4)] and losses[(1e-4, 3)] != losses[(1e-4, 4)]

    # The run's model is the best trial's settings trained again: the same dev score, recorded in results.
    chosen = next(row for row in rows if row["best"])
    saved = json.loads((out / "results.json").read_text())
    assert saved["search"]["best_trial"] == chosen["trial"]
    assert saved["final"]["loss"] == pytest.approx(chosen["objective"])
    assert saved["search"]["final_objective"] == pytest.approx(chosen["objective"])
    config = json.loads((out / "training_args.json").read_text())
    assert config["learning_rate"] == chosen["learning_rate"] and config["seed"] == chosen["seed"]
    assert results["search"]["trials"] == 4
    markdown = (out / "search_trials.md").read_text()
    assert markdown.count("\n| ") == 1 + 4 and "| trial | learning_rate | seed |" in markdown
    assert "## Search: 4 trials" in (out / "results.md").read_text()
    assert not list((out / "trials").glob("*/checkpoint-*")), "trial checkpoints are removed"


def test_default_objective_is_macro_f1_for_one_classifier_mae_for_a_regressor_else_the_loss():
    from toolkit.data.labels import TaskConfig
    from toolkit.training.search import objective_metric

    *_, training = parse("--search", "optuna")
    classes = TaskConfig("label", 2, "single_label_classification")
    regressor = TaskConfig("rating", 1, "regression")
    assert objective_metric([classes], training) == ("eval_macro_f1", True)
    assert objective_metric([regressor], training) == ("eval_mae", False)
    assert objective_metric([classes, regressor], training) == ("eval_loss", False)
    *_, training = parse("--search", "optuna", "--metric_for_best_model", "accuracy")
    assert objective_metric([classes], training) == ("eval_accuracy", True)


def parse(*flags):
    return parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments), list(flags))


def test_bert_space_is_the_papers_learning_rates_and_seeds_are_restarts():
    *_, training = parse("--search", "optuna", "--search_seeds", "1", "2", "3")
    space = training.search_space_parsed
    assert space.grid == {"learning_rate": BERT_LEARNING_RATES, "seed": [1, 2, 3]} and space.size == 12
    *_, training = parse("--search", "optuna", "--seed", "7")
    assert training.search_space_parsed.grid["seed"] == [7]
    *_, training = parse("--search", "optuna", "--search_space", '{"learning_rate": {"low": 1e-5, "high": 1e-4, '
                         '"log": true}, "num_train_epochs": [2, 3]}', "--search_trials", "5")
    assert training.search_space_parsed.ranges == {"learning_rate": {"low": 1e-5, "high": 1e-4, "log": True}}
    assert math.prod(len(v) for v in training.search_space_parsed.grid.values()) == 2


def test_a_yaml_mapping_is_a_space(tmp_path):
    config = tmp_path / "search.yaml"
    config.write_text("search: optuna\nsearch_space:\n  learning_rate: [1.0e-3, 3.0e-4]\n"
                      "  weight_decay: [0.0, 0.01]\n")
    *_, training = parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments), [str(config)])
    assert training.search_space_parsed.grid == {"learning_rate": [1e-3, 3e-4], "weight_decay": [0.0, 0.01],
                                                 "seed": [42]}


@pytest.mark.parametrize("flags, message", [
    (["--search", "ray"], "--search 'ray' is not a search backend: use optuna"),
    (["--search", "optuna", "--search_space", "roberta"], "--search_space 'roberta' is not a named space"),
    (["--search", "optuna", "--search_space", '{"learning_rate": [0, 1e-5]}'],
     "--search_space learning_rate value 0 is out of range: it must be > 0"),
    (["--search", "optuna", "--search_space", '{"learning_rate": ["fast"]}'], "learning_rate value fast"),
    (["--search", "optuna", "--search_space", '{"output_dir": ["a", "b"]}'], "names 'output_dir', which is not"),
    (["--search", "optuna", "--search_space", '{"learning_rat": [1e-5]}'], "names 'learning_rat'"),
    (["--search", "optuna", "--search_space", '{"learning_rate": [1e-5'], "is not valid JSON"),
    (["--search", "optuna", "--search_space", '{"learning_rate": {"low": 1e-4, "high": 1e-5}}', "--search_trials",
      "3"], "low 0.0001 must be below high"),
    (["--search", "optuna", "--search_space", '{"learning_rate": {"low": 1e-5, "high": 1e-4}}'],
     "give --search_trials N"),
    (["--search", "optuna", "--search_trials", "5"], "--search_trials 5 is more than the 4 points of the grid"),
    (["--search", "optuna", "--search_trials", "0"], "--search_trials 0 is out of range"),
    (["--search", "optuna", "--search_seeds", "1", "1"], "must be distinct seeds"),
    (["--search_seeds", "1", "2"], "--search_seeds [1, 2] applies to --search, which is none"),
    (["--search", "optuna", "--kfold", "3"], "do not combine"),
    (["--search", "optuna", "--resume_from_checkpoint"], "is not resumed"),
])
def test_bad_search_flags_are_one_line_errors_at_parse_time(flags, message):
    with pytest.raises(ConfigError) as error:
        parse(*flags)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_search_refuses_recipes_without_a_task_model(tmp_path):
    from toolkit.studies import mlm

    with pytest.raises(ConfigError, match="applies to the task-model recipes"):
        parse_args((mlm.MLMArguments, mlm.MLMTrainingArguments), ["--search", "optuna"])


def test_parse_space_without_seeds_records_the_run_seed():
    space = parse_space({"learning_rate": [1e-5]}, None, 5, {"learning_rate", "seed"})
    assert space.grid == {"learning_rate": [1e-5], "seed": [5]}
    with pytest.raises(ValueError, match="both set the seeds"):
        parse_space({"learning_rate": [1e-5], "seed": [1]}, [2], 5, {"learning_rate", "seed"})


def test_every_trial_counts_early_stopping_patience_afresh():
    from transformers import EarlyStoppingCallback, TrainerControl, TrainerState

    from toolkit.training.search import FreshEarlyStopping

    stopping = EarlyStoppingCallback(early_stopping_patience=3)
    stopping.early_stopping_patience_counter = 2  # what the previous trial left
    FreshEarlyStopping([stopping]).on_train_begin(None, TrainerState(), TrainerControl())
    assert stopping.early_stopping_patience_counter == 0
