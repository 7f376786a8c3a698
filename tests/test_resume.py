"""Resuming a run: half-saved checkpoints are skipped, and a resumed run reports what an uninterrupted one does."""

import json
import logging
import shutil

import datasets
import pytest
from transformers import AutoTokenizer, DataCollatorWithPadding, TrainingArguments

import toolkit.training.run as run
from toolkit.modeling.model import TaskModel
from toolkit.training.checkpoints import is_complete, latest_complete_checkpoint, resolve_resume
from toolkit.training.trainer import ToolkitTrainer

from test_recipe_imdb import argv, load_recipe

# 64 reviews in batches of 16 for 2 epochs: 8 optimizer steps, a checkpoint every 2, fewer than logging_steps (10).
# No evaluation during training: at an epoch's end it would run after the step's checkpoint and advance the RNG
# (its DataLoader draws a seed), so the epoch after a resume would get other dropout masks than the full run's.
CHECKPOINTED = ("--mode", "finetune", "--save_strategy", "steps", "--save_steps", "2", "--keep_checkpoints", "true",
                "--save_total_limit", "10", "--eval_strategy", "no")
RUN_FILES = ("results.json", "results.md", "README.md", "model.safetensors", "trainer_state.json")


def train_recipe(args: list[str]):
    """Run the IMDB recipe; its results and the trainer it used."""
    captured = {}
    original = run.train_and_report

    def spy(trainer, *rest, **kwargs):
        captured["trainer"] = trainer
        return original(trainer, *rest, **kwargs)

    run.train_and_report = spy
    try:
        results = load_recipe().main(args)
    finally:
        run.train_and_report = original
    return results, captured["trainer"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_bert, shared_data):
    """An uninterrupted fine-tuning run that kept checkpoints 2, 4, 6 and 8: its folder, results, loss curve."""
    out = tmp_path_factory.mktemp("resume") / "full"
    results, trainer = train_recipe(argv(tiny_bert, shared_data, out, *CHECKPOINTED))
    return out, results, trainer.batch_losses()


def killed_copy(finished, tmp_path, keep: tuple[int, ...]):
    """The run's folder as a kill after its last kept checkpoint leaves it: those checkpoints, no results."""
    out, source = tmp_path / "killed", finished[0]

    def ignore(folder, names):
        return [n for n in names if n in RUN_FILES] if folder == str(source) else []

    shutil.copytree(source, out, ignore=ignore)
    for checkpoint in out.glob("checkpoint-*"):
        if int(checkpoint.name.split("-")[1]) not in keep:
            shutil.rmtree(checkpoint)
    assert not (out / "results.json").exists()
    return out


def test_resumed_run_reports_the_whole_run(finished, tmp_path, tiny_bert, shared_data):
    """Killed after the epoch-1 checkpoint: the resumed run's token counts, loss curve and log match the full run's."""
    full_out, full, full_losses = finished
    out = killed_copy(finished, tmp_path, keep=(2, 4))
    results, trainer = train_recipe(argv(tiny_bert, shared_data, out, *CHECKPOINTED, "--resume_from_checkpoint",
                                         str(out / "checkpoint-4")))

    assert trainer.state.global_step == 8
    assert results["tokens"] == full["tokens"] and results["tokens"]["real_tokens"] > 0
    losses = trainer.batch_losses()
    assert len(losses) == len(full_losses) == 8  # one per batch, the 4 before the checkpoint restored, none twice
    assert losses == full_losses  # the checkpoint's 4, then the same batches on the same weights and RNG
    seconds_at_4 = json.loads((out / "checkpoint-4" / "step_stats.json").read_text())["train_seconds"]
    assert results["train_seconds"] >= seconds_at_4 > 0  # the killed run's share counts

    def logged(folder):
        history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
        return [(e["step"], pytest.approx(e["loss"], abs=1e-6)) for e in history if "loss" in e]

    # Trainer's log window restarts at the resumed step (what it had summed since its last log is not saved)
    assert logged(full_out) == [(8, sum(full_losses) / 8)] and logged(out) == [(8, sum(full_losses[4:]) / 4)]


def test_half_saved_checkpoints_are_skipped(finished, tmp_path, tiny_bert, shared_data, caplog):
    """A kill while saving leaves trainer_state.json (the last file written) missing or truncated: `true` resumes
    from the newest complete checkpoint, with a note; naming a half-saved one is refused before training."""
    full = finished[1]
    out = killed_copy(finished, tmp_path, keep=(2, 4, 6, 8))
    (out / "checkpoint-8" / "trainer_state.json").unlink()  # killed just before the last file
    state = out / "checkpoint-6" / "trainer_state.json"
    state.write_text(state.read_text()[:100])  # killed while writing it
    (out / "checkpoint-10").mkdir()  # killed right after creating the folder
    (out / "checkpoint-10" / "config.json").write_text("{}")

    with pytest.raises(ValueError, match=r"checkpoint-8: an incomplete checkpoint \(missing trainer_state\.json\).*"
                                         r"--resume_from_checkpoint true"):
        load_recipe().main(argv(tiny_bert, shared_data, out, *CHECKPOINTED, "--resume_from_checkpoint",
                                str(out / "checkpoint-8")))
    assert not (out / "results.json").exists()

    caplog.set_level(logging.INFO, logger="toolkit.training.checkpoints")
    results, trainer = train_recipe(argv(tiny_bert, shared_data, out, *CHECKPOINTED, "--resume_from_checkpoint",
                                         "true"))
    notes = [r.getMessage() for r in caplog.records if r.name == "toolkit.training.checkpoints"]
    assert any("checkpoint-10" in n and "model.safetensors" in n and "trainer_state.json" in n for n in notes)
    assert any("checkpoint-8" in n and "missing trainer_state.json" in n for n in notes)
    assert any("checkpoint-6" in n and "trainer_state.json (truncated)" in n for n in notes)
    assert any(n.startswith("Resuming from") and n.endswith("checkpoint-4 (step 4).") for n in notes)
    assert trainer.state.global_step == 8 and results["tokens"] == full["tokens"]
    assert trainer.batch_losses() == finished[2]  # resumed mid-epoch: 4 from the checkpoint, 4 new
    assert is_complete(out / "checkpoint-8") == (True, [])  # saved again by the resumed run


def test_nothing_to_resume_says_what_to_do(tmp_path, tiny_bert, shared_data):
    out = tmp_path / "empty"
    (out / "checkpoint-2").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"Nothing to resume in .*empty: no complete checkpoint-\* folder "
                                         r"\(checkpoint-2 lacks model\.safetensors.*--overwrite_output_dir"):
        load_recipe().main(argv(tiny_bert, shared_data, out, *CHECKPOINTED, "--resume_from_checkpoint", "true"))


def test_resolve_resume_values(tmp_path):
    """None/false: a fresh run; true/latest: the newest complete checkpoint; a path: checked, also under the run."""
    for step in (3, 12):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
            (folder / name).write_bytes(b"x")
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (tmp_path / "checkpoint-20").mkdir()
    (tmp_path / "checkpoint-20" / "model.safetensors").write_bytes(b"x")
    assert resolve_resume(tmp_path, None) is None and resolve_resume(tmp_path, "false") is None
    newest = str(tmp_path / "checkpoint-12")
    assert resolve_resume(tmp_path, "true") == resolve_resume(tmp_path, "latest") == resolve_resume(tmp_path, True)
    assert resolve_resume(tmp_path, "latest") == newest
    assert latest_complete_checkpoint(tmp_path) == (
        newest, [(str(tmp_path / "checkpoint-20"), ["optimizer.pt", "scheduler.pt", "rng_state.pth",
                                                    "trainer_state.json"])])
    assert resolve_resume(tmp_path, "checkpoint-3") == str(tmp_path / "checkpoint-3")
    with pytest.raises(ValueError, match="no such checkpoint folder"):
        resolve_resume(tmp_path, str(tmp_path / "checkpoint-99"))
    # Two processes save one RNG file each, and the main one writes trainer_state.json without waiting for the other
    assert is_complete(tmp_path / "checkpoint-12", world_size=2) == (True, [])  # a one-process save
    (tmp_path / "checkpoint-12" / "rng_state.pth").rename(tmp_path / "checkpoint-12" / "rng_state_0.pth")
    assert is_complete(tmp_path / "checkpoint-12", world_size=2) == (False, ["rng_state_1.pth"])
    assert is_complete(tmp_path / "checkpoint-12") == (True, [])


def test_a_run_shorter_than_logging_steps_logs_its_training_loss(tmp_path, tiny_bert, finished):
    """Trainer logs the loss every logging_steps only; the last step is logged too, once."""
    full_out, _, losses = finished
    history = json.loads((full_out / "trainer_state.json").read_text())["log_history"]
    assert [e["step"] for e in history if "loss" in e] == [8]  # 8 steps, logging_steps 10

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    ds = datasets.Dataset.from_dict({"text": ["great film", "awful plot", "good story", "bad acting"] * 2,
                                     "labels_label": [1, 0, 1, 0] * 2})
    ds = ds.map(lambda b: tokenizer(b["text"]), batched=True, remove_columns=["text"])
    for max_steps, logging_steps, expected in ((3, 10, [3]), (4, 2, [2, 4]), (3, 2, [2, 3])):
        model = TaskModel.from_encoder(str(tiny_bert), tasks=[{"name": "label", "num_labels": 2}])
        args = TrainingArguments(output_dir=str(tmp_path / f"s{max_steps}-{logging_steps}"), max_steps=max_steps,
                                 logging_steps=logging_steps, per_device_train_batch_size=4, report_to="none",
                                 save_strategy="no", use_cpu=True, dataloader_pin_memory=False)
        trainer = ToolkitTrainer(model=model, args=args, train_dataset=ds, data_collator=DataCollatorWithPadding(
            tokenizer))
        trainer.train()
        assert [e["step"] for e in trainer.state.log_history if "loss" in e] == expected


def test_step_stats_are_cut_to_the_checkpoints_global_step(tmp_path, caplog):
    """Batches recorded past the checkpoint's global_step (2 per optimizer step here) are not restored."""
    from toolkit.training.checkpoints import read_step_stats, write_step_stats

    (tmp_path / "trainer_state.json").write_text(json.dumps({"global_step": 3}))
    write_step_stats(tmp_path, {"global_step": 4, "train_seconds": 2.5, "losses": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3],
                                "steps": [0, 0, 1, 1, 2, 2, 3], "real_tokens": [5] * 7, "padded_tokens": [8] * 7})
    stats = read_step_stats(tmp_path)
    assert stats["losses"] == [0.9, 0.8, 0.7, 0.6, 0.5, 0.4] and stats["steps"] == [0, 0, 1, 1, 2, 2]
    assert sum(stats["real_tokens"]) == 30 and stats["global_step"] == 3 and stats["train_seconds"] == 2.5
    assert read_step_stats(tmp_path, world_size=2, process_index=1) is None  # saved without them: a note
    assert "step_stats_1.json" in caplog.text
