"""The run contract of every recipe: config layering with per-mode blocks, parse-time checks naming file and line,
output folders (a recipe's default, a used one refused, overwrite, resume), one-line errors."""

import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import pytest

from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args
from toolkit.config import ConfigError
from toolkit.training.run import claim_output_dir, default_output_dir


def test_recipe_default_folder_applies_when_no_output_dir_is_given():
    _, _, training_args = parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments),
                                     ["--report_to", "none", "--mode", "frozen"])
    default_output_dir(training_args, "rating", "douban_dmr-classification-frozen")
    assert training_args.output_dir == "runs/rating-douban_dmr-classification-frozen"


def test_a_given_output_dir_is_kept():
    _, _, training_args = parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments),
                                     ["--report_to", "none", "--output_dir", "elsewhere"])
    default_output_dir(training_args, "imdb", "frozen")
    assert training_args.output_dir == "elsewhere"


# ---- config layering: a mode's own block, sources, parse-time checks ---------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
TYPES = (ModelArguments, DataArguments, ToolkitTrainingArguments)
CPU_YAML = str(ROOT / "recipes" / "imdb" / "cpu.yaml")


def test_switching_the_mode_brings_that_modes_settings():
    model_args, _, training_args = parse_args(TYPES, [CPU_YAML, "--mode", "finetune"])
    default_output_dir(training_args, "imdb", model_args.mode)
    assert model_args.mode == "finetune"
    assert (training_args.learning_rate, training_args.output_dir) == (5e-5, "runs/imdb-finetune")
    assert training_args.arg_sources.of("learning_rate").endswith("(modes.finetune)")
    model_args, _, training_args = parse_args(TYPES, [CPU_YAML])
    default_output_dir(training_args, "imdb", model_args.mode)
    assert (training_args.learning_rate, training_args.output_dir) == (1e-3, "runs/imdb-frozen")
    # A value given as a flag still wins over the mode's block.
    _, _, training_args = parse_args(TYPES, [CPU_YAML, "--mode", "finetune", "--learning_rate", "2e-5"])
    assert training_args.learning_rate == 2e-5 and training_args.arg_sources.of("learning_rate") == \
        "flag --learning_rate"


def test_study_defaults_have_mode_blocks_too_and_sources_are_recorded(tmp_path):
    defaults = {"max_length": 64, "modes": {"frozen": {"learning_rate": 1e-3}}}
    cfg = tmp_path / "c.yaml"
    cfg.write_text("pooling: mean\n", encoding="utf-8")
    _, data_args, training_args = parse_args(TYPES, [str(cfg), "--mode", "frozen"], defaults=defaults)
    sources = training_args.arg_sources
    assert training_args.learning_rate == 1e-3 and data_args.max_length == 64
    assert sources.of("learning_rate") == "recipe defaults (modes.frozen)"
    assert sources.of("pooling") == f"{cfg}:1" and sources.of("mode") == "flag --mode"
    assert sources.of("seed") == "default"


def test_a_file_without_a_block_for_the_chosen_mode_says_so(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("mode: frozen\nlearning_rate: 1.0e-3\n", encoding="utf-8")
    _, _, training_args = parse_args(TYPES, [str(cfg), "--mode", "finetune"])
    assert training_args.learning_rate == 1e-3  # the file's value, set explicitly, still applies ...
    assert any("no modes.finetune block" in n for n in training_args.arg_sources.notes)  # ... and is pointed out


@pytest.mark.parametrize("text, message", [
    ("max_length: 512.0\n", r"max_length: 512.0 \(.*c.yaml:1\) is not an integer; write 512"),
    ("per_device_train_batch_size: 0\n", r"--per_device_train_batch_size 0 is out of range: it must be >= 1 "
                                         r"\(set in .*c.yaml:1\)"),
    ("clean: 'yes'\n", r"clean: 'yes' \(.*c.yaml:1\) is not true or false"),
    ("eval_strategy: sometimes\n", r"eval_strategy: 'sometimes' .* is not one of no, steps, epoch"),
    ("test_splits: {a: 1}\n", r"test_splits: .* is not a list of"),
    ("pooling: [cls]\n", r"pooling: \['cls'\] .* is not a string"),
    ("mode: frozen\nmodes:\n  frozen:\n    learning_rat: 1\n", r"unknown keys \['learning_rat'\] in modes.frozen"),
    ("learning_rate: 1e-3\n  bad: indent\n", r"c.yaml:2: not valid YAML"),
])
def test_yaml_values_of_the_wrong_type_or_range_name_file_and_line(tmp_path, text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        parse_args(TYPES, [str(cfg)])


def test_yaml_numbers_are_read_as_users_write_them(tmp_path):
    cfg = tmp_path / "c.yaml"  # YAML 1.1 reads 5e-5 as a string; a float field takes it as the number
    cfg.write_text("learning_rate: 5e-5\ntest_splits: virus_test\nnum_train_epochs: 2\n", encoding="utf-8")
    _, data_args, training_args = parse_args(TYPES, [str(cfg)])
    assert training_args.learning_rate == 5e-5 and data_args.test_splits == ["virus_test"]
    assert training_args.num_train_epochs == 2.0


@pytest.mark.parametrize("argv, message", [
    (["--per_device_train_batch_size", "0"], r"--per_device_train_batch_size 0 is out of range"),
    (["--learning_rate", "0"], r"--learning_rate 0.0 is out of range: it must be > 0"),
    (["--num_train_epochs", "0"], r"--num_train_epochs 0.0 trains nothing"),
    (["--max_length", "4"], r"--max_length 4 is too small"),
])
def test_flags_out_of_range_fail_at_parse_time(argv, message):
    with pytest.raises(ValueError, match=message):
        parse_args(TYPES, argv)


def test_resume_flag_without_a_value_means_the_latest_checkpoint():
    for argv in (["--resume_from_checkpoint"], ["--resume_from_checkpoint", "--seed", "3"]):
        assert parse_args(TYPES, argv)[2].resume_from_checkpoint == "true"
    assert parse_args(TYPES, ["--resume_from_checkpoint", "false"])[2].resume_from_checkpoint is None


# ---- output folders ---------------------------------------------------------------------------------------------
def folder_args(out: Path, **kw) -> SimpleNamespace:
    return SimpleNamespace(output_dir=str(out), resume_from_checkpoint=kw.get("resume"), process_index=0,
                           world_size=1, overwrite_output_dir=kw.get("overwrite", False),
                           main_process_first=lambda desc: nullcontext())


def finished_run(out: Path) -> Path:
    out.mkdir(parents=True)
    for name in ("results.json", "results.md", "config.json", "misclassified_old_split.jsonl"):
        (out / name).write_text("{}", encoding="utf-8")
    (out / "checkpoint-8").mkdir()
    return out


def test_a_used_folder_is_refused_and_overwrite_clears_the_previous_run(tmp_path):
    out = finished_run(tmp_path / "run")
    with pytest.raises(ValueError, match=r"already holds a finished run .*--overwrite_output_dir"):
        claim_output_dir(folder_args(out))
    claim_output_dir(folder_args(out, overwrite=True))
    assert out.is_dir() and not list(out.iterdir()), "nothing of the previous run may look like this run's"


def test_unfinished_run_points_at_resume_and_resuming_drops_stale_results(tmp_path, monkeypatch):
    out = tmp_path / "run"
    (out / "checkpoint-4").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"unfinished run \(checkpoint-4\).*--resume_from_checkpoint"):
        claim_output_dir(folder_args(out))
    with pytest.raises(ValueError, match="Nothing to resume"):  # checkpoint-4 is empty: checked before data loads
        claim_output_dir(folder_args(out, resume="true"))
    (out / "results.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr("toolkit.training.run.resolve_resume", lambda out, requested, world_size: str(out / "c-4"))
    args = folder_args(out, resume="true")
    claim_output_dir(args)
    assert args.resume_from_checkpoint == str(out / "c-4")
    assert (out / "checkpoint-4").is_dir() and not (out / "results.json").exists()


def test_overwrite_never_deletes_a_folder_that_holds_no_run(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.tex").write_text("mine", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no previous run"):
        claim_output_dir(folder_args(out, overwrite=True))
    assert (out / "thesis.tex").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    claim_output_dir(folder_args(tmp_path / "empty"))  # an empty folder, or one a failed start left, is free
    (tmp_path / "empty" / "run_config.json").write_text("{}", encoding="utf-8")
    claim_output_dir(folder_args(tmp_path / "empty"))


# ---- the command line: one line and exit 2 ----------------------------------------------------------------------
def run_recipe(*args, env=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "recipes" / "imdb.py"), *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.mark.slow
def test_recipe_errors_are_one_line_and_exit_2_unless_debug(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("mode: frozen\nmax_length: 512.0\n", encoding="utf-8")
    proc = run_recipe(str(bad), "--output_dir", str(tmp_path / "o"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f"imdb.py: error: max_length: 512.0 ({bad}:2) is not an integer; write 512."
    proc = run_recipe(str(bad), "--output_dir", str(tmp_path / "o"), "--debug")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ConfigError" in proc.stderr
