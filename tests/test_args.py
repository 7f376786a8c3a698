from pathlib import Path

import pytest

from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args
from toolkit.training.run import default_output_dir

TYPES = (ModelArguments, DataArguments, ToolkitTrainingArguments)
RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_study_defaults():
    model_args, data_args, training_args = parse_args(TYPES, ["--output_dir", "x"])
    assert training_args.learning_rate == 1e-5 and training_args.per_device_train_batch_size == 32
    assert training_args.num_train_epochs == 3 and model_args.head_hidden_size == 256
    assert model_args.head_dropout == 0.1 and data_args.max_length == 512


def test_yaml_then_flags_override(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("mode: frozen\nlearning_rate: 0.001\nmax_train_samples: 10\n", encoding="utf-8")
    model_args, data_args, training_args = parse_args(TYPES, [str(cfg), "--learning_rate", "0.5", "--output_dir", "o"])
    assert model_args.mode == "frozen" and data_args.max_train_samples == 10 and training_args.learning_rate == 0.5
    _, _, training_args = parse_args(TYPES, ["--config", str(cfg), "--output_dir", "o"])
    assert training_args.learning_rate == 0.001


def test_study_defaults_lie_under_the_yaml_and_the_flags(tmp_path):
    """A study's ``defaults`` (what WeiboDataArguments/WeiboTrainingArguments used to hold) replace the dataclass
    defaults, and the YAML and then the flags still win over them."""
    defaults = {"dataset": "weibo", "learning_rate": 2e-5, "max_length": 128, "warmup_epochs": 1.0}
    _, data_args, training_args = parse_args(TYPES, ["--output_dir", "o"], defaults=defaults)
    assert (data_args.dataset, data_args.max_length) == ("weibo", 128)
    assert training_args.learning_rate == 2e-5 and training_args.warmup_epochs == 1.0
    cfg = tmp_path / "c.yaml"
    cfg.write_text("learning_rate: 0.001\n", encoding="utf-8")
    _, data_args, training_args = parse_args(TYPES, [str(cfg), "--max_length", "64", "--output_dir", "o"],
                                             defaults=defaults)
    assert training_args.learning_rate == 0.001 and data_args.max_length == 64 and data_args.dataset == "weibo"


def test_default_task_is_one_classification_head_on_the_label_column():
    (spec,) = DataArguments().task_specs  # imdb: its label ids are neg/pos
    assert (spec.name, spec.column, spec.problem_type, spec.class_names) == ("label", "label", "classification",
                                                                             ["neg", "pos"])
    (spec,) = DataArguments(dataset="x.csv", label_column="stars", class_names=["bad", "good"]).task_specs
    assert (spec.name, spec.column, spec.class_names) == ("stars", "stars", ["bad", "good"])
    specs = DataArguments(tasks=["sentiment:label:classification:neg,pos", "rating:rating:regression"]).task_specs
    assert [(s.name, s.is_regression) for s in specs] == [("sentiment", False), ("rating", True)]


def test_unknown_yaml_key_and_bad_values_fail(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("learning_rat: 0.1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"c.yaml: unknown keys learning_rat \(line 1\)"):
        parse_args(TYPES, [str(cfg)])
    with pytest.raises(ValueError, match="--mode 'half'"):
        parse_args(TYPES, ["--mode", "half", "--output_dir", "o"])
    with pytest.raises(FileNotFoundError):
        parse_args(TYPES, [str(tmp_path / "missing.yaml")])


@pytest.mark.parametrize("config", sorted(RECIPES.glob("imdb/*.yaml")), ids=lambda p: p.name)
def test_every_imdb_yaml_parses(config):
    import torch

    cpu_overrides = [] if torch.cuda.is_available() else ["--precision", "fp32"]  # GPU configs ask for bf16
    model_args, data_args, training_args = parse_args(TYPES, [str(config), *cpu_overrides])
    default_output_dir(training_args, "imdb", model_args.mode)
    assert model_args.model_name_or_path == "minilm" and training_args.output_dir.startswith("runs/imdb")
    assert model_args.mode in ("frozen", "finetune")
