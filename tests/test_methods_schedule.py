"""ULMFiT's fine-tuning methods: discriminative learning rates, STLR and gradual unfreezing, each a test that fails
when the method is silently off, on the direct trainer and on the IMDB recipe driven from a YAML file."""

import json
from pathlib import Path

import datasets
import pytest
import torch
from transformers import AutoTokenizer, BertModel, DataCollatorWithPadding, Trainer, TrainerCallback

from test_recipe_imdb import argv as recipe_argv, load_recipe
from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args
from toolkit.config import ConfigError
from toolkit.inference import load_model
from toolkit.modeling.model import TaskModel
from toolkit.training import run
from toolkit.training.schedules import (GradualUnfreezing, SlantedTriangular, discriminative_param_groups,
                                        layer_groups, stlr_scheduler)
from toolkit.training.trainer import ToolkitTrainer

TASKS = [{"name": "label", "num_labels": 2}]
TYPES = (ModelArguments, DataArguments, ToolkitTrainingArguments)
GROUPS = ["embeddings", "layer.0", "layer.1", "top"]  # the tiny BERT's 2 layers, bottom first


def depth_of(name: str) -> int:
    """Depth from the top of a tiny-BERT TaskModel parameter, written out independently of layer_groups."""
    if name.startswith("encoder.embeddings."):
        return 3
    if name.startswith("encoder.encoder.layer."):
        return 2 - int(name.split(".")[3])
    assert name.startswith(("pooler.", "heads.")), name
    return 0


def tiny_trainer(tmp_path, tiny_bert, rows: int = 16, **overrides) -> ToolkitTrainer:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    torch.manual_seed(0)
    model = TaskModel.from_encoder(str(tiny_bert), tasks=TASKS)
    texts = ["great film", "awful plot", "good story", "bad acting", "loved it", "boring and dull", "best", "worst"]
    ds = datasets.Dataset.from_dict({"text": (texts * rows)[:rows], "labels_label": ([1, 0] * rows)[:rows]})
    ds = ds.map(lambda b: tokenizer(b["text"]), batched=True, remove_columns=["text"])
    values = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, num_train_epochs=1,
                  learning_rate=1e-3, weight_decay=0.1, report_to="none", save_strategy="no", eval_strategy="no",
                  logging_steps=1, use_cpu=True, dataloader_pin_memory=False)
    args = ToolkitTrainingArguments(**{**values, **overrides})
    return ToolkitTrainer(model=model, args=args, train_dataset=ds, data_collator=DataCollatorWithPadding(tokenizer))


def rates_by_name(model, param_groups) -> dict[str, tuple[float, float]]:
    """(lr, weight_decay) of every parameter in the groups, by name; each parameter in one group only."""
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in param_groups:
        for p in group["params"]:
            assert names[id(p)] not in out, f"{names[id(p)]} is in two groups"
            out[names[id(p)]] = (group.get("initial_lr", group["lr"]), group["weight_decay"])
    return out


def assert_discriminative(model, param_groups, base: float, decay: float, weight_decay: float) -> None:
    decayed = set(Trainer.get_decay_parameter_names(None, model))
    rates = rates_by_name(model, param_groups)
    assert set(rates) == {n for n, _ in model.named_parameters()}
    for name, (lr, wd) in rates.items():
        assert lr == base * decay ** depth_of(name), name
        assert wd == (weight_decay if name in decayed else 0.0), name


# ---- the pieces ---------------------------------------------------------------------------------------------------
def test_layer_groups_run_from_the_embeddings_to_the_heads(tiny_bert):
    model = TaskModel.from_encoder(str(tiny_bert), tasks=TASKS, layers="scalar_mix")
    groups = layer_groups(model)
    assert [g.name for g in groups] == GROUPS
    names = [n for g in groups for n, _ in g.params]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())  # every parameter, once
    for depth, group in enumerate(reversed(groups)):
        assert all(depth_of(n) == depth for n, _ in group.params), group.name
    assert any(n.startswith("pooler.scalar_mix") for n, _ in groups[-1].params)


def test_discriminative_rates_are_base_times_decay_to_the_depth(tiny_bert):
    model = TaskModel.from_encoder(str(tiny_bert), tasks=TASKS)
    groups = discriminative_param_groups(model, 1e-3, 0.5, 0.01)
    assert_discriminative(model, groups, 1e-3, 0.5, 0.01)
    assert groups[0]["layer_group"] == "top" and groups[0]["lr"] == 1e-3  # the rate Trainer logs: the base one
    assert {g["layer_group"]: g["lr"] for g in groups}["embeddings"] == 1e-3 * 0.5 ** 3
    model.encoder.embeddings.requires_grad_(False)  # Trainer's rule: frozen weights stay out, unless asked
    assert not any(g["layer_group"] == "embeddings" for g in discriminative_param_groups(model, 1e-3, 0.5))
    kept = discriminative_param_groups(model, 1e-3, 0.5, trainable_only=False)
    assert sum(len(g["params"]) for g in kept) == len(list(model.parameters()))


def test_stlr_multipliers_at_known_steps():
    stlr = SlantedTriangular(100, cut_frac=0.1, ratio=32)
    assert stlr(0) == pytest.approx(1 / 32) and stlr(100) == pytest.approx(1 / 32)
    assert stlr(10) == pytest.approx(1.0)  # the peak, at cut = floor(100 * 0.1)
    assert stlr(5) == pytest.approx((1 + 0.5 * 31) / 32) and stlr(55) == pytest.approx((1 + 0.5 * 31) / 32)
    for t in range(101):  # the paper's formula, where T * cut_frac is whole
        p = t / 10 if t < 10 else 1 - (t - 10) / (10 * (1 / 0.1 - 1))
        assert stlr(t) == pytest.approx((1 + p * 31) / 32), t
    odd = SlantedTriangular(10, cut_frac=0.15, ratio=32)  # cut = 1: the paper's fall would go negative
    assert all(1 / 32 - 1e-12 <= odd(t) <= 1 for t in range(11)) and odd(10) == pytest.approx(1 / 32)
    assert odd(1) == 1.0
    with pytest.raises(ValueError, match="cut_frac"):
        SlantedTriangular(10, cut_frac=1.0)

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    scheduler = stlr_scheduler(optimizer, 100, 0.1, 32)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    assert scheduler.get_last_lr() == [pytest.approx(0.5)]
    state = scheduler.state_dict()  # T, cut_frac and ratio travel with a checkpoint
    assert state["lr_lambdas"][0] == {"total_steps": 100, "cut_frac": 0.1, "ratio": 32.0, "cut": 10}


# ---- the trainer --------------------------------------------------------------------------------------------------
def test_options_off_leave_trainers_own_optimizer_and_scheduler(tmp_path, tiny_bert):
    trainer = tiny_trainer(tmp_path, tiny_bert)
    ours = trainer.create_optimizer()
    plain = Trainer(model=trainer.model, args=trainer.args)
    theirs = plain.create_optimizer()
    assert type(ours) is type(theirs) and len(ours.param_groups) == len(theirs.param_groups) == 2
    for a, b in zip(ours.param_groups, theirs.param_groups):
        assert [id(p) for p in a["params"]] == [id(p) for p in b["params"]] and "layer_group" not in a
        assert (a["lr"], a["weight_decay"]) == (b["lr"], b["weight_decay"])
    scheduler = trainer.create_scheduler(10)
    assert "linear" in scheduler.lr_lambdas[0].func.__name__
    assert trainer.unfreezing is None and not any(isinstance(c, GradualUnfreezing)
                                                  for c in trainer.callback_handler.callbacks)


def test_trainer_optimizer_uses_the_discriminative_groups(tmp_path, tiny_bert):
    trainer = tiny_trainer(tmp_path, tiny_bert, layer_lr_decay=0.5, optim="adamw_torch")
    optimizer = trainer.create_optimizer()
    assert type(optimizer) is Trainer.get_optimizer_cls_and_kwargs(trainer.args, trainer.model)[0]
    assert_discriminative(trainer.model, optimizer.param_groups, 1e-3, 0.5, 0.1)
    assert optimizer.defaults["betas"] == (trainer.args.adam_beta1, trainer.args.adam_beta2)


class Snapshots(TrainerCallback):
    """Each layer group's weights at the start and after every epoch."""

    def __init__(self, model):
        self.model, self.seen = model, []

    def take(self):
        self.seen.append({g.name: torch.cat([p.detach().flatten().clone() for _, p in g.params])
                          for g in layer_groups(self.model)})

    def on_train_begin(self, args, state, control, **kwargs):
        self.take()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.take()


def changed(before: dict, after: dict) -> set[str]:
    return {name for name in before if not torch.equal(before[name], after[name])}


def test_gradual_unfreezing_trains_one_group_more_per_epoch(tmp_path, tiny_bert):
    trainer = tiny_trainer(tmp_path, tiny_bert, num_train_epochs=4, gradual_unfreezing=True)  # 2 steps an epoch
    snapshots = Snapshots(trainer.model)
    trainer.add_callback(snapshots)
    trainer.train()
    start, *epochs = snapshots.seen
    assert changed(start, epochs[0]) == {"top"}
    assert changed(start, epochs[1]) == {"top", "layer.1"}
    assert changed(epochs[1], epochs[2]) == {"top", "layer.1", "layer.0"} and "embeddings" not in changed(
        start, epochs[2])  # frozen weights are skipped by AdamW: no update, no weight decay (0.1 here)
    assert changed(start, epochs[3]) == set(GROUPS)
    assert [h["trainable"] for h in trainer.unfreezing.history] == [GROUPS[::-1][:k] for k in (1, 2, 3, 4)]
    assert [h["step"] for h in trainer.unfreezing.history] == [0, 2, 4, 6]
    held = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert held == {id(p) for p in trainer.model.parameters()}  # every group in the optimizer from the start
    losses = [e for e in trainer.state.log_history if "loss" in e]
    assert [e["trainable_groups"] for e in losses] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert all(p.requires_grad for p in trainer.model.parameters()), "flags restored after training"


def test_gradual_unfreezing_every_n_steps(tmp_path, tiny_bert):
    trainer = tiny_trainer(tmp_path, tiny_bert, per_device_train_batch_size=4, max_steps=6, gradual_unfreezing=True,
                           unfreeze_every_steps=2)  # 4 steps an epoch
    snapshots = Snapshots(trainer.model)
    trainer.add_callback(snapshots)
    trainer.train()
    assert [(h["step"], len(h["trainable"])) for h in trainer.unfreezing.history] == [(0, 1), (2, 2), (4, 3)]
    start, first_epoch, _ = snapshots.seen
    assert changed(start, first_epoch) == {"top", "layer.1"}  # steps 0-3 of 4: the embeddings still frozen


def test_conflicting_settings_fail_in_one_line(tmp_path, tiny_bert):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("mode: frozen\ngradual_unfreezing: true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"--gradual_unfreezing .*use --mode finetune.*c\.yaml:2"):
        parse_args(TYPES, [str(cfg), "--output_dir", "o"])
    cases = [(["--mode", "frozen", "--layer_lr_decay", "0.9"], "--layer_lr_decay 0.9 sets the encoder"),
             (["--layer_lr_decay", "1.5"], r"--layer_lr_decay 1.5 is out of range: it must be in \(0, 1\]"),
             (["--layer_lr_decay", "0"], "--layer_lr_decay 0.0 is out of range"),
             (["--stlr_cut_frac", "1"], r"--stlr_cut_frac 1.0 is out of range: it must be in \(0, 1\)"),
             (["--stlr_ratio", "0.5"], "--stlr_ratio 0.5 is out of range"),
             (["--stlr_cut_frac", "0.1", "--warmup_steps", "5"], "warms up by itself"),
             (["--stlr_cut_frac", "0.1", "--lr_scheduler_type", "cosine"], "leave it at linear"),
             (["--unfreeze_every_steps", "3"], "paces --gradual_unfreezing, which is off"),
             (["--gradual_unfreezing", "true", "--unfreeze_every_steps", "0"], "--unfreeze_every_steps 0 is out")]
    for flags, message in cases:
        with pytest.raises(ConfigError, match=message):
            parse_args(TYPES, ["--output_dir", "o", *flags])
    from toolkit.studies import mlm

    with pytest.raises(ConfigError, match="--stlr_cut_frac 0.1 is a fine-tuning method of the task-model recipes"):
        parse_args((mlm.MLMArguments, mlm.MLMTrainingArguments), ["--stlr_cut_frac", "0.1", "--warmup_steps", "0"])
    frozen = TaskModel.from_encoder(str(tiny_bert), tasks=TASKS, mode="frozen")
    args = ToolkitTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, eval_strategy="no",
                                    gradual_unfreezing=True)
    with pytest.raises(ValueError, match="mode frozen"):
        ToolkitTrainer(model=frozen, args=args)


# ---- the recipe, from YAML ----------------------------------------------------------------------------------------
def run_recipe(tmp_path, tiny_bert, shared_data, monkeypatch, yaml_text: str, *flags):
    """The IMDB recipe on 64 reviews (4 steps an epoch, 2 epochs) with a YAML file; returns its trainer and folder."""
    cfg = tmp_path / "methods.yaml"
    cfg.write_text(yaml_text, encoding="utf-8")
    seen = {}
    train_and_report = run.train_and_report

    def capture(trainer, *args, **kwargs):
        seen["trainer"] = trainer
        return train_and_report(trainer, *args, **kwargs)

    monkeypatch.setattr(run, "train_and_report", capture)
    out = tmp_path / "run"
    load_recipe().main([str(cfg), *recipe_argv(tiny_bert, shared_data, out, "--logging_steps", "1", *flags)])
    return seen["trainer"], out


def test_recipe_yaml_discriminative_rates_and_stlr(tmp_path, tiny_bert, shared_data, monkeypatch):
    trainer, out = run_recipe(tmp_path, tiny_bert, shared_data, monkeypatch,
                              "mode: finetune\nlayer_lr_decay: 0.5\nstlr_cut_frac: 0.25\nstlr_ratio: 8\n")
    assert_discriminative(trainer.model, trainer.optimizer.param_groups, 1e-3, 0.5, 0.0)
    stlr = SlantedTriangular(8, 0.25, 8)
    logged = [e["learning_rate"] for e in trainer.state.log_history if "loss" in e]
    assert logged == pytest.approx([1e-3 * stlr(t) for t in range(8)])  # the rate of each step, the head's
    assert max(logged) == pytest.approx(1e-3) and logged[0] == pytest.approx(1e-3 / 8)
    last = trainer.lr_scheduler.get_last_lr()
    assert last[0] == pytest.approx(1e-3 / 8) and min(last) == pytest.approx(1e-3 * 0.5 ** 3 / 8)
    sources = json.loads((out / "run_config.json").read_text())["sources"]
    assert sources["layer_lr_decay"].endswith("methods.yaml:2") and sources["stlr_cut_frac"].endswith("methods.yaml:3")


def test_recipe_yaml_gradual_unfreezing_end_to_end(tmp_path, tiny_bert, shared_data, monkeypatch):
    trainer, out = run_recipe(tmp_path, tiny_bert, shared_data, monkeypatch, "gradual_unfreezing: true\n",
                              "--mode", "finetune", "--weight_decay", "0.01")
    state = json.loads((out / "trainer_state.json").read_text())
    assert [e["trainable_groups"] for e in state["log_history"] if "loss" in e] == [1] * 4 + [2] * 4
    model, _ = load_model(out)  # after 2 epochs of 4 groups: only the head and the top layer trained
    original = BertModel.from_pretrained(tiny_bert, add_pooling_layer=False).state_dict()
    trained = model.encoder.state_dict()
    same = {k for k in original if torch.equal(original[k], trained[k])}
    assert {k for k in original if k.startswith(("embeddings.", "encoder.layer.0."))} <= same
    assert not any(k.startswith("encoder.layer.1.") for k in same)
    assert json.loads((out / "results.json").read_text())["mode"] == "finetune"
    assert Path(out / "model.safetensors").is_file()
