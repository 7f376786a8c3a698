"""Robustness methods: FGM/PGD on the word embeddings, R-Drop, focal loss, label smoothing. Each test fails if its
method were silently off."""

import json
import math

import datasets
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, DataCollatorWithPadding

from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args
from toolkit.config import ConfigError
from toolkit.data.labels import TaskConfig
from toolkit.modeling.model import TaskModel, TaskModelConfig, focal_loss, task_loss
from toolkit.training.robust import rdrop_divergence, symmetric_kl
from toolkit.training.trainer import ToolkitTrainer

from test_distributed import check_one_model_of_two, launch, recipe_argv as ddp_argv
from test_recipe_imdb import argv as recipe_argv, load_recipe

TASKS = [{"name": "label", "num_labels": 2}]
TYPES = (ModelArguments, DataArguments, ToolkitTrainingArguments)
TEXTS = ["great film", "awful plot", "good story", "bad acting", "loved it", "boring and dull", "best", "worst"] * 2


def tiny_model(tokenizer, dropout: float = 0.0, head_dropout: float | None = None, seed: int = 0, **config):
    enc = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    torch.manual_seed(seed)
    head_dropout = dropout if head_dropout is None else head_dropout
    return TaskModel(TaskModelConfig(encoder=enc, tasks=TASKS, head_dropout=head_dropout, **config))


def train_set(tokenizer):
    ds = datasets.Dataset.from_dict({"text": TEXTS, "labels_label": [1, 0, 1, 0, 1, 0, 1, 0] * 2})
    return ds.map(lambda b: tokenizer(b["text"]), batched=True, remove_columns=["text"])


def a_batch(tokenizer, n: int = 8) -> dict:
    return DataCollatorWithPadding(tokenizer)([dict(r) for r in train_set(tokenizer).select(range(n))])


def trainer_for(tmp_path, model, tokenizer, **kwargs) -> ToolkitTrainer:
    defaults = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, max_steps=1, learning_rate=0.5,
                    optim="sgd", lr_scheduler_type="constant", report_to="none", save_strategy="no",
                    eval_strategy="no", use_cpu=True, train_sampling_strategy="sequential",
                    dataloader_pin_memory=False, max_grad_norm=0.0)
    args = ToolkitTrainingArguments(**{**defaults, **kwargs})
    trainer = ToolkitTrainer(model=model, args=args, train_dataset=train_set(tokenizer),
                             data_collator=DataCollatorWithPadding(tokenizer))
    trainer.current_gradient_accumulation_steps = 1  # what Trainer's loop sets before each training_step
    return trainer


def grads(model) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def embeddings(model) -> torch.nn.Parameter:
    return model.encoder.get_input_embeddings().weight


class EncoderCalls:
    """Counts encoder forwards, with the word embeddings' distance from ``clean`` at each."""

    def __init__(self, model):
        self.weight, self.clean = embeddings(model), embeddings(model).detach().clone()
        self.distances: list[float] = []
        self.handle = model.encoder.register_forward_pre_hook(self.hook)

    def hook(self, module, args):
        self.distances.append(float(torch.linalg.vector_norm(self.weight.detach() - self.clean)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


# ---- FGM / PGD -----------------------------------------------------------------------------------------------------
def test_fgm_adds_an_adversarial_pass_and_restores_the_embeddings(tmp_path, tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    batch = a_batch(tokenizer)
    plain = tiny_model(tokenizer)
    plain_trainer = trainer_for(tmp_path / "plain", plain, tokenizer)
    plain_loss = plain_trainer.training_step(plain, dict(batch))

    model = tiny_model(tokenizer)
    trainer = trainer_for(tmp_path, model, tokenizer, adversarial="fgm", adversarial_epsilon=0.5)
    with EncoderCalls(model) as calls:
        loss = trainer.training_step(model, dict(batch))
    assert len(calls.distances) == 2, "one clean and one adversarial forward"
    assert calls.distances[0] == 0.0 and calls.distances[1] == pytest.approx(0.5, rel=1e-4)
    assert torch.equal(embeddings(model), calls.clean), "the perturbation must be undone exactly"
    # The step's recorded and returned loss is the clean one, once; the adversarial loss is logged on the side.
    torch.testing.assert_close(loss, plain_loss)
    assert len(trainer._batch_losses) == len(trainer._batch_real_tokens) == 1
    assert trainer.token_counts() == plain_trainer.token_counts()
    adversarial = trainer._robust_logs()["loss_adversarial"]
    assert adversarial > float(loss), "a step up the gradient raises the loss"
    # The update differs from plain training, and from a zero-size perturbation (twice the clean gradient).
    assert not torch.allclose(grads(model), grads(plain), atol=1e-6)
    assert not torch.allclose(grads(model), 2 * grads(plain), atol=1e-6)


def test_fgm_of_size_zero_doubles_the_gradient_also_under_accumulation(tmp_path, tiny_bert):
    """epsilon 0: the adversarial gradient is the clean one, so one SGD update at lr equals plain SGD at 2*lr; with
    2 x 8 accumulation, the adversarial loss must be scaled like the clean one."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    plain = tiny_model(tokenizer)
    trainer_for(tmp_path / "plain", plain, tokenizer, per_device_train_batch_size=16, learning_rate=1.0).train()
    model = tiny_model(tokenizer)
    trainer = trainer_for(tmp_path, model, tokenizer, adversarial="fgm", gradient_accumulation_steps=2)
    trainer.adversary.epsilon = 0.0  # the flag refuses 0; the mechanics are what is tested
    trainer.train()
    torch.testing.assert_close(torch.nn.utils.parameters_to_vector(model.parameters()),
                               torch.nn.utils.parameters_to_vector(plain.parameters()), rtol=1e-4, atol=1e-6)


def test_fgm_direction_is_this_micro_batchs_gradient(tmp_path, tiny_bert):
    """Under accumulation .grad holds earlier micro-batches' gradients too; the direction must not."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = tiny_model(tokenizer)
    trainer = trainer_for(tmp_path, model, tokenizer, adversarial="fgm", gradient_accumulation_steps=2)
    seen, run = [], trainer.adversary.run
    trainer.adversary.run = lambda weight, grad, *a: seen.append(grad.detach().clone()) or run(weight, grad, *a)
    reference = tiny_model(tokenizer)
    trainer.train()
    assert len(seen) == 2
    collate = DataCollatorWithPadding(tokenizer)
    for i, grad in enumerate(seen):
        reference.zero_grad()
        rows = collate([dict(r) for r in train_set(tokenizer).select(range(8 * i, 8 * i + 8))])
        (reference(**rows).loss / 2).backward()
        torch.testing.assert_close(grad, embeddings(reference).grad, rtol=1e-4, atol=1e-7)


def test_pgd_takes_its_steps_inside_the_ball(tmp_path, tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = tiny_model(tokenizer)
    trainer = trainer_for(tmp_path, model, tokenizer, adversarial="pgd", adversarial_epsilon=0.5, pgd_alpha=0.3,
                          pgd_steps=3)
    with EncoderCalls(model) as calls:
        trainer.training_step(model, a_batch(tokenizer))
    assert len(calls.distances) == 4, "one clean forward and three PGD steps"
    assert calls.distances[1] == pytest.approx(0.3, rel=1e-4)
    assert all(d <= 0.5 + 1e-5 for d in calls.distances) and calls.distances[3] > 0.3
    assert torch.equal(embeddings(model), calls.clean)
    assert "loss_adversarial" in trainer._robust_logs()


def test_fgm_reaches_embeddings_not_yet_unfrozen(tmp_path, tiny_bert):
    """Gradual unfreezing leaves the embeddings without requires_grad; FGM borrows their gradient for the
    direction and gives none to the optimizer."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = tiny_model(tokenizer)
    trainer = trainer_for(tmp_path, model, tokenizer, adversarial="fgm")
    embeddings(model).requires_grad_(False)
    with EncoderCalls(model) as calls:
        trainer.training_step(model, a_batch(tokenizer))
    assert len(calls.distances) == 2 and calls.distances[1] == pytest.approx(1.0, rel=1e-4)
    assert embeddings(model).grad is None and not embeddings(model).requires_grad


def test_adversarial_training_is_refused_on_a_frozen_encoder(tmp_path, tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    with pytest.raises(ValueError, match="--adversarial fgm .*--mode frozen"):
        trainer_for(tmp_path, tiny_model(tokenizer, mode="frozen"), tokenizer, adversarial="fgm")
    with pytest.raises(ConfigError, match="--adversarial pgd .*--mode frozen"):
        parse_args(TYPES, ["--mode", "frozen", "--adversarial", "pgd", "--output_dir", "o"])


# ---- R-Drop --------------------------------------------------------------------------------------------------------
def test_symmetric_kl_by_hand():
    p, q = 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(1))  # softmax([1, 0]) and softmax([0, 1])
    kl = p * math.log(p / q) + q * math.log(q / p)  # KL(P||Q) = KL(Q||P) here
    got = symmetric_kl(torch.tensor([[1.0, 0.0], [2.0, 2.0]]), torch.tensor([[0.0, 1.0], [2.0, 2.0]]))
    torch.testing.assert_close(got, torch.tensor([kl, 0.0]))
    regression = TaskConfig("score", 1, "regression", target_std=2.0)
    classes = TaskConfig("label", 2)
    first = {"label": torch.tensor([[1.0, 0.0], [5.0, 5.0]]), "score": torch.tensor([[1.0], [3.0]])}
    second = {"label": torch.tensor([[0.0, 1.0], [5.0, 5.0]]), "score": torch.tensor([[2.0], [3.0]])}
    torch.testing.assert_close(rdrop_divergence([classes, regression], first, second),
                               torch.tensor(kl / 2 + ((1.0 - 2.0) / 2.0) ** 2 / 2))
    # with task ids, a head counts only its own rows
    torch.testing.assert_close(rdrop_divergence([classes, regression], first, second, torch.tensor([0, 1])),
                               torch.tensor(kl + 0.0))


def test_rdrop_loss_is_the_mean_loss_plus_alpha_times_the_symmetric_kl(tmp_path, tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = tiny_model(tokenizer, dropout=0.3).train()
    trainer = trainer_for(tmp_path, model, tokenizer, rdrop_alpha=2.0)
    batch = a_batch(tokenizer)
    torch.manual_seed(7)
    first, second = model(**batch), model(**batch)
    p, q = first.logits.softmax(-1), second.logits.softmax(-1)
    kl = (0.5 * (p - q) * (p.log() - q.log())).sum(-1).mean()
    expected = (first.loss + second.loss) / 2 + 2.0 * kl
    torch.manual_seed(7)
    with EncoderCalls(model) as calls:
        loss = trainer.compute_loss(model, batch)
    assert len(calls.distances) == 2
    assert float(kl.detach()) > 1e-6, "dropout makes the two passes differ"
    torch.testing.assert_close(loss, expected)
    assert not torch.isclose(loss, first.loss)
    assert trainer._robust_logs()["rdrop_divergence"] == pytest.approx(float(kl.detach()), rel=1e-3)


def test_rdrop_without_dropout_adds_nothing_and_is_refused(tmp_path, tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = tiny_model(tokenizer, dropout=0.0, head_dropout=0.1).train()
    trainer = trainer_for(tmp_path, model, tokenizer, rdrop_alpha=1.0)
    model.head[2].p = 0.0  # the only dropout, switched off after the check
    batch = a_batch(tokenizer)
    torch.testing.assert_close(trainer.compute_loss(model, batch), model(**batch).loss)
    assert trainer._robust_logs()["rdrop_divergence"] == 0.0
    with pytest.raises(ValueError, match="--rdrop_alpha 1.0 needs dropout"):
        trainer_for(tmp_path, tiny_model(tokenizer, dropout=0.0), tokenizer, rdrop_alpha=1.0)
    with pytest.raises(ConfigError, match="--rdrop_alpha 1.0 needs dropout"):
        parse_args(TYPES, ["--mode", "frozen", "--head_dropout", "0", "--rdrop_alpha", "1", "--output_dir", "o"])


# ---- focal loss and label smoothing --------------------------------------------------------------------------------
def test_focal_loss_matches_the_formula():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    labels = torch.tensor([0, 2])
    expected = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        p = math.exp(row[y]) / sum(math.exp(v) for v in row)
        expected.append(-((1 - p) ** 2) * math.log(p))
    task = TaskConfig("label", 3)
    torch.testing.assert_close(focal_loss(logits, labels, 2.0), torch.tensor(expected))
    torch.testing.assert_close(task_loss(task, logits, labels, "focal", 2.0), torch.tensor(sum(expected) / 2))
    ce = torch.nn.functional.cross_entropy(logits, labels)
    torch.testing.assert_close(task_loss(task, logits, labels, "focal", 0.0), ce)
    assert float(task_loss(task, logits, labels, "focal", 2.0)) < float(ce)
    smoothed = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    torch.testing.assert_close(task_loss(task, logits, labels, "focal", 0.0, 0.1), smoothed)
    weighted = TaskConfig("label", 3, class_weights=[2.0, 1.0, 0.5])  # alpha_t: the true class's weight
    torch.testing.assert_close(task_loss(weighted, logits, labels, "focal", 2.0),
                               torch.tensor((2.0 * expected[0] + 0.5 * expected[1]) / 2))


def test_focal_loss_is_a_saved_model_option(tmp_path, tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = tiny_model(tokenizer, loss="focal", focal_gamma=1.5).eval()
    batch = a_batch(tokenizer)
    out = model(**batch)
    torch.testing.assert_close(out.loss, focal_loss(out.logits, batch["labels_label"], 1.5).mean())
    model.save_pretrained(tmp_path)
    loaded = TaskModel.from_pretrained(tmp_path)
    assert (loaded.config.loss, loaded.config.focal_gamma) == ("focal", 1.5)
    model_args, _, _ = parse_args(TYPES, ["--loss", "focal", "--focal_gamma", "1", "--output_dir", "o"])
    assert model_args.head_kwargs()["loss"] == "focal" and model_args.head_kwargs()["focal_gamma"] == 1.0
    with pytest.raises(ConfigError, match="--loss 'hinge'"):
        parse_args(TYPES, ["--loss", "hinge", "--output_dir", "o"])


def test_label_smoothing_factor_reaches_the_models_loss(tmp_path, tiny_bert):
    """Trainer's own LabelSmoother never sees this model's loss (it needs `labels` popped in its compute_loss);
    the factor must reach TaskModel's cross-entropy instead."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    batch = a_batch(tokenizer, 16)
    model = tiny_model(tokenizer).eval()
    with torch.no_grad():
        logits = model(**batch).logits
    labels = batch["labels_label"]
    trainer = trainer_for(tmp_path, model, tokenizer, label_smoothing_factor=0.1, per_device_train_batch_size=16)
    model.config.label_smoothing = 0.0  # as a model made anew by model_init: set again when training begins
    trainer.train()
    smoothed = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    assert trainer.batch_losses()[0] == pytest.approx(float(smoothed), rel=1e-5)
    assert trainer.batch_losses()[0] != pytest.approx(float(torch.nn.functional.cross_entropy(logits, labels)))
    assert model.config.label_smoothing == 0.1
    trainer_for(tmp_path, model, tokenizer)  # a new run without smoothing resets it
    assert model.config.label_smoothing == 0.0


def test_range_checks_name_the_flag_and_the_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("adversarial: fgm\nadversarial_epsilon: -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"--adversarial_epsilon -1.0 is out of range.*c.yaml:2"):
        parse_args(TYPES, [str(cfg), "--output_dir", "o"])
    for flag, value in (("adversarial", "vat"), ("pgd_steps", "0"), ("rdrop_alpha", "-1"), ("focal_gamma", "-1")):
        with pytest.raises(ConfigError, match=f"--{flag}"):
            parse_args(TYPES, [f"--{flag}", value, "--output_dir", "o"])
    from toolkit.studies import mlm  # plain Trainer: the options would do nothing there

    with pytest.raises(ConfigError, match="--adversarial fgm .*task-model recipes"):
        parse_args((mlm.MLMArguments, mlm.MLMTrainingArguments), ["--adversarial", "fgm"])


# ---- end to end ----------------------------------------------------------------------------------------------------
def test_recipe_trains_with_fgm_rdrop_and_focal_loss(tmp_path, tiny_bert, shared_data):
    out = tmp_path / "robust"
    flags = ["--mode", "finetune", "--num_train_epochs", "1", "--adversarial", "fgm", "--rdrop_alpha", "1",
             "--loss", "focal", "--label_smoothing_factor", "0.1", "--logging_steps", "2"]
    results = load_recipe().main(recipe_argv(tiny_bert, shared_data, out, *flags))
    assert 0.0 <= results["final"]["accuracy"] <= 1.0
    config = json.loads((out / "config.json").read_text())
    assert (config["loss"], config["focal_gamma"], config["label_smoothing"]) == ("focal", 2.0, 0.1)
    values = json.loads((out / "run_config.json").read_text())["values"]
    assert (values["adversarial"], values["rdrop_alpha"], values["loss"]) == ("fgm", 1.0, "focal")
    logs = [e for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert logs and all(e["loss_adversarial"] > 0 and e["rdrop_divergence"] >= 0 for e in logs)
    assert all("adversarial_skipped" not in e for e in logs)


@pytest.mark.slow
def test_pgd_and_rdrop_train_one_model_under_cpu_ddp(tmp_path, tiny_bert, shared_data):
    """Two gloo processes: PGD's extra backward and R-Drop's second forward keep the ranks' weights in sync."""
    out = tmp_path / "ddp"
    flags = ["--adversarial", "pgd", "--pgd_steps", "2", "--rdrop_alpha", "1"]
    proc = launch(tmp_path, ["-m", "torch.distributed.run", "--nproc_per_node", "2"], out,
                  ddp_argv(tiny_bert, shared_data, out) + flags)
    check_one_model_of_two(out, proc)
    logs = [e for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert logs and all("loss_adversarial" in e and "rdrop_divergence" in e for e in logs)
