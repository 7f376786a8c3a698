"""The one Trainer of every study: task heads' labels and losses, task sampling, loss curve, token counts."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback
from transformers.trainer_optimizer import is_optimizer_factory
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, IntervalStrategy, has_length

from ..data.labels import TaskConfig
from ..modeling.features import FeatureDataset
from ..precision import autocast, no_grad_precision
from .checkpoints import STAT_COLUMNS, TRAINER_STATE, read_step_stats, resolve_resume, write_step_stats
from .robust import (
    SetUpOnTrainBegin,
    has_active_dropout,
    make_adversary,
    rdrop_divergence,
    rdrop_loss,
    word_embedding_weight,
)
from .schedules import GradualUnfreezing, discriminative_param_groups, layer_groups, stlr_scheduler

logger = logging.getLogger(__name__)


def task_sampling_probabilities(sizes: Sequence[int], temperature: float = 1.0) -> np.ndarray:
    """p_t ∝ n_t^(1/T): T=1 is proportional to dataset size, larger T moves towards uniform."""
    if temperature <= 0:
        raise ValueError(f"sampling_temperature={temperature} must be > 0 (1 = proportional).")
    sizes = np.asarray(sizes, dtype=np.float64)
    scaled = np.where(sizes > 0, sizes ** (1.0 / temperature), 0.0)
    return scaled / scaled.sum()


def _column(ds, name: str):
    return ds.columns[name] if isinstance(ds, FeatureDataset) else ds[name]


def _columns(ds) -> list[str]:
    return list(getattr(ds, "column_names", []))


class LengthSortedSampler(torch.utils.data.Sampler):
    """Row indices longest first (stable), so that each evaluation batch pads to its own length."""

    def __init__(self, lengths: Sequence[int]) -> None:
        self.order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")

    def __iter__(self):
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


def _sorted_order(dataloader) -> np.ndarray | None:
    """The LengthSortedSampler's order behind an evaluation dataloader, else None (accelerate's prepared loader keeps
    it as its batch sampler's sampler)."""
    for sampler in (getattr(dataloader, "sampler", None), getattr(dataloader.batch_sampler, "sampler", None)):
        if isinstance(sampler, LengthSortedSampler):
            return sampler.order
    return None


def _in_row_order(values, inverse: np.ndarray):
    """Predictions or labels gathered in sorted order, back in row order (tuples per task kept as tuples)."""
    if values is None:
        return None
    if isinstance(values, (tuple, list)):
        return type(values)(_in_row_order(v, inverse) for v in values)
    if len(values) != len(inverse):
        raise RuntimeError(f"length-sorted evaluation: an output of {len(values)} rows for {len(inverse)} rows")
    return values[inverse]


def _on_host(values: list) -> list:
    """Tensors and numbers as Python numbers, in order, with one device sync."""
    tensors = [i for i, v in enumerate(values) if isinstance(v, torch.Tensor)]
    out = list(values)
    if tensors:
        for i, v in zip(tensors, torch.stack([values[i] for i in tensors]).cpu().tolist()):
            out[i] = v
    return out


class StepStatsMixin:
    """What every training step records on the side, for any ``Trainer``: each batch's loss (the smoothed loss
    curve) and real vs padded tokens (padding efficiency), both kept on the device until read, so no host sync per
    step; on CPU, denormal floats are flushed to zero.

    Every checkpoint gets this process's records so far (step_stats.json, written before Trainer's files, so
    trainer_state.json stays the last one), and ``train(resume_from_checkpoint=...)`` starts from the checkpoint's
    records, cut to its global_step: after a resume the loss curve, token counts and train seconds cover the whole
    run. ``resume_from_checkpoint`` also takes "true"/"latest" (the newest complete checkpoint) and "false".
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.device.type == "cpu":
            # Backward passes of pretrained encoders produce denormal floats (GELU's gradient far from zero,
            # tiny softmax probabilities); x86 matmuls on them run several times slower. Flushing them to
            # zero (below 1.2e-38) changes no result that matters and speeds CPU training up 3-4x.
            torch.set_flush_denormal(True)
        self._reset_step_stats()

    def _reset_step_stats(self, saved: dict | None = None) -> None:
        """Start the records empty, or from a checkpoint's (host lists, one entry per micro-batch)."""
        saved = saved or {}
        self._saved = {k: list(saved.get(k, [])) for k in STAT_COLUMNS}
        self._seconds_before = float(saved.get("train_seconds", 0.0))
        self._train_started: float | None = None
        self._batch_losses: list[torch.Tensor] = []
        self._batch_steps: list[int] = []  # the optimizer step (0-based) each batch belongs to
        self._batch_real_tokens: list[torch.Tensor | int] = []
        self._batch_padded_tokens: list[int] = []

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, ignore_keys_for_eval=None,
              **kwargs):
        checkpoint = resolve_resume(self.args.output_dir, resume_from_checkpoint, world_size=self.args.world_size)
        saved = None
        if checkpoint is not None:
            saved = read_step_stats(checkpoint, self.args.world_size, self.args.process_index)
        self._reset_step_stats(saved)
        self._train_started = time.perf_counter()
        try:
            return super().train(resume_from_checkpoint=checkpoint, trial=trial,
                                 ignore_keys_for_eval=ignore_keys_for_eval, **kwargs)
        finally:
            self._seconds_before += time.perf_counter() - self._train_started
            self._train_started = None

    def training_step(self, model, inputs, num_items_in_batch=None):
        mask = inputs.get("attention_mask")
        self._batch_real_tokens.append(0 if mask is None else mask.sum())
        self._batch_padded_tokens.append(0 if mask is None else mask.numel())
        self._batch_steps.append(self.state.global_step)
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._batch_losses.append(loss.detach())
        return loss

    def _save_checkpoint(self, model, trial) -> None:
        folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        if self.args.should_save:  # re-saving into an old folder: not complete until trainer_state.json is new
            (folder / TRAINER_STATE).unlink(missing_ok=True)
        write_step_stats(folder, self.step_stats(), self.args.world_size, self.args.process_index)
        super()._save_checkpoint(model, trial)

    def step_stats(self) -> dict:
        """This process's records of the run so far, as saved into a checkpoint (one entry per micro-batch)."""
        return {"global_step": self.state.global_step, "train_seconds": round(self.train_seconds(), 3),
                "losses": self.batch_losses(), "steps": self._saved["steps"] + self._batch_steps,
                "real_tokens": self._saved["real_tokens"] + [int(v) for v in _on_host(self._batch_real_tokens)],
                "padded_tokens": self._saved["padded_tokens"] + self._batch_padded_tokens}

    def batch_losses(self) -> list[float]:
        """Per-batch training losses of this process, in order (the whole run's, across resumes)."""
        if not self._batch_losses:
            return list(self._saved["losses"])
        return self._saved["losses"] + torch.stack(self._batch_losses).float().cpu().tolist()

    def token_counts(self) -> dict[str, float]:
        """Real and padded (real + padding) tokens this process trained on, and their ratio."""
        real = int(sum(self._saved["real_tokens"]) + sum(_on_host(self._batch_real_tokens)))
        padded = int(sum(self._saved["padded_tokens"]) + sum(self._batch_padded_tokens))
        return {"real_tokens": real, "padded_tokens": padded,
                "padding_efficiency": round(real / padded, 4) if padded else None}

    def train_seconds(self) -> float:
        """Seconds spent in ``train()`` over the whole run, the resumed checkpoint's share included."""
        running = 0.0 if self._train_started is None else time.perf_counter() - self._train_started
        return self._seconds_before + running


class LogLastStepCallback(TrainerCallback):
    """Log the training loss at the last optimizer step too (Trainer logs every ``logging_steps`` only, so a run
    shorter than that logged none), and when a callback stops training early."""

    def on_step_end(self, args, state, control, **kwargs):
        if args.logging_strategy != IntervalStrategy.NO and (control.should_training_stop or
                                                             state.global_step >= state.max_steps):
            control.should_log = True  # Trainer skips it when this step was logged already

    def on_epoch_end(self, args, state, control, **kwargs):
        if args.logging_strategy != IntervalStrategy.NO and control.should_training_stop:
            control.should_log = True


class ToolkitTrainer(StepStatsMixin, Trainer):
    """``Trainer`` for a ``TaskModel``: the loss is the model's (Σ_t w_t·loss_t), evaluation returns every task's
    logits and labels, and the train log carries ``loss_<task>`` beside the total; each step's loss and token
    counts are recorded by ``StepStatsMixin``. ``sampling_temperature`` applies when the train rows carry
    ``task_ids`` (one source per task).
    """

    def __init__(self, *args, sampling_temperature: float = 1.0, **kwargs):
        model = kwargs.get("model", args[0] if args else None)
        self.tasks: list[TaskConfig] = list(model.tasks)
        train_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if train_args is not None and train_args.label_names is None:
            train_args.label_names = [t.label_column for t in self.tasks]
        if kwargs.get("compute_metrics") is None:
            from ..evaluation.metrics import compute_task_metrics

            kwargs["compute_metrics"] = compute_task_metrics(self.tasks)
        super().__init__(*args, **kwargs)
        self.add_callback(LogLastStepCallback)
        self.unfreezing = self._gradual_unfreezing()
        self.can_return_loss = True
        self.sampling_temperature = sampling_temperature
        self.task_probabilities = None
        if self.train_dataset is not None and "task_ids" in _columns(self.train_dataset):
            ids = np.asarray(_column(self.train_dataset, "task_ids"))
            sizes = [int((ids == i).sum()) for i in range(len(self.tasks))]
            self.task_probabilities = task_sampling_probabilities(sizes, sampling_temperature)
        self._task_loss_sums = torch.zeros(len(self.tasks), dtype=torch.float64)
        self._task_loss_counts = torch.zeros(len(self.tasks), dtype=torch.float64)
        self._setup_robust_methods()

    # -- ULMFiT's methods (toolkit.training.schedules); with them off, Trainer's own optimizer and scheduler -------
    def _gradual_unfreezing(self) -> GradualUnfreezing | None:
        """The unfreezing callback (added) when ``--gradual_unfreezing``; layer-wise options need a trained encoder."""
        gradual = getattr(self.args, "gradual_unfreezing", False)
        if getattr(self.model, "is_frozen", False) and (gradual or getattr(self.args, "layer_lr_decay", None)):
            raise ValueError("--gradual_unfreezing and --layer_lr_decay train the encoder layer by layer; the model "
                             "is in mode frozen, use mode finetune.")
        if not gradual:
            return None
        callback = GradualUnfreezing(layer_groups(self.model), getattr(self.args, "unfreeze_every_steps", None))
        self.add_callback(callback)
        return callback

    def create_optimizer(self, model=None):
        """Trainer's optimizer (its class and kwargs from ``--optim``) over discriminative parameter groups, top first,
        when ``--layer_lr_decay`` or ``--gradual_unfreezing`` is on (the latter with every group in from the start)."""
        decay = getattr(self.args, "layer_lr_decay", None)
        if self.optimizer is not None or (decay is None and self.unfreezing is None):
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        if self.optimizer_cls_and_kwargs is not None:
            optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs
        else:
            optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, opt_model)
        if is_optimizer_factory(optimizer_cls) or {"params", "model", "optimizer_dict"} & set(optimizer_kwargs):
            raise ValueError(f"--layer_lr_decay and --gradual_unfreezing need an optimizer over parameter groups; "
                             f"--optim {self.args.optim} builds its own.")
        groups = discriminative_param_groups(opt_model, self.args.learning_rate, decay, self.args.weight_decay,
                                             set(self.get_decay_parameter_names(opt_model)),
                                             trainable_only=self.unfreezing is None)
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """Slanted triangular learning rates when ``--stlr_cut_frac`` is set, else Trainer's scheduler."""
        cut_frac = getattr(self.args, "stlr_cut_frac", None)
        if cut_frac is None or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        self.lr_scheduler = stlr_scheduler(optimizer or self.optimizer, num_training_steps, cut_frac,
                                           self.args.stlr_ratio)
        self._created_lr_scheduler = True  # as Trainer's: made anew by the next train()
        return self.lr_scheduler

    def _get_eval_sampler(self, eval_dataset):
        # Trainer also length-groups evaluation under train_sampling_strategy="group_by_length", which returns
        # predictions out of row order; every report here pairs predictions with the rows' texts and ids. Here the
        # rows are evaluated longest first (batches padded to their own length) and evaluation_loop puts them back.
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_eval_sampler(eval_dataset)
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        if self.args.world_size > 1:
            return None
        if "input_ids" not in _columns(eval_dataset):
            return SequentialSampler(eval_dataset)
        return LengthSortedSampler([len(ids) for ids in _column(eval_dataset, "input_ids")])

    def evaluation_loop(self, dataloader, *args, **kwargs):
        output = super().evaluation_loop(dataloader, *args, **kwargs)
        order = _sorted_order(dataloader)
        if order is None:
            return output
        if output.num_samples != len(order):
            raise RuntimeError(f"length-sorted evaluation: {output.num_samples} rows predicted, {len(order)} sorted")
        inverse = np.argsort(order)
        return output._replace(predictions=_in_row_order(output.predictions, inverse),
                               label_ids=_in_row_order(output.label_ids, inverse))

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        extra = [t.label_column for t in self.tasks] + ["task_ids", "features"]
        self._signature_columns += [c for c in extra if c not in self._signature_columns]

    def _get_train_sampler(self, train_dataset=None):
        train_dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.task_probabilities is None or self.sampling_temperature == 1.0:
            return super()._get_train_sampler(train_dataset)  # shuffled: tasks appear in proportion to size
        ids = np.asarray(_column(train_dataset, "task_ids"))
        sizes = np.bincount(ids, minlength=len(self.tasks)).astype(np.float64)
        weights = self.task_probabilities[ids] / sizes[ids]
        generator = torch.Generator().manual_seed(self.args.seed)
        return torch.utils.data.WeightedRandomSampler(weights.tolist(), num_samples=len(ids), replacement=True,
                                                      generator=generator)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        loss, task_losses = outputs.loss, outputs.task_losses
        if model.training and self.rdrop_alpha > 0 and loss is not None:  # R-Drop: a second pass, new dropout
            second = model(**inputs)
            divergence = rdrop_divergence(self.tasks, outputs.task_logits, second.task_logits, inputs.get("task_ids"))
            loss = rdrop_loss(outputs.loss, second.loss, divergence, self.rdrop_alpha)
            task_losses = {name: 0.5 * (value + second.task_losses[name]) for name, value in task_losses.items()}
            self._record_robust("rdrop_divergence", divergence)
        if model.training:
            for i, task in enumerate(self.tasks):
                if task.name in task_losses:
                    self._task_loss_sums[i] += float(task_losses[task.name].detach())
                    self._task_loss_counts[i] += 1
        return (loss, outputs) if return_outputs else loss

    # -- robustness methods (toolkit.training.robust) -------------------------------------------------------------
    def _setup_robust_methods(self) -> None:
        """Label smoothing in the model's own loss; FGM/PGD and R-Drop from the arguments, refused where they would
        silently do nothing. Runs at construction and again when training begins (``SetUpOnTrainBegin``)."""
        model, args = self.model, self.args
        smoothing = float(args.label_smoothing_factor)
        if smoothing and all(t.is_regression for t in self.tasks):
            raise ValueError(f"--label_smoothing_factor {smoothing} applies to classification heads; every head of "
                             "this model is a regressor.")
        # The model computes its own loss; Trainer's LabelSmoother would need a popped `labels` and never runs here.
        model.config.label_smoothing = smoothing
        self.label_smoother = None
        method = getattr(args, "adversarial", "none")
        key = (method, getattr(args, "adversarial_epsilon", 1.0), getattr(args, "pgd_alpha", 0.3),
               getattr(args, "pgd_steps", 3))
        if getattr(self, "_adversary_key", None) != key:  # kept when training begins with the same arguments
            self.adversary, self._adversary_key = make_adversary(*key), key
        if self.adversary is not None:
            if model.is_frozen:
                raise ValueError(f"--adversarial {method} perturbs the encoder's word embeddings, which --mode frozen "
                                 "does not train; use --mode finetune or --adversarial none.")
            if self.is_deepspeed_enabled or self.is_fsdp_enabled:
                raise ValueError(f"--adversarial {method} needs the whole word-embedding matrix and its gradient on "
                                 "every process; DeepSpeed and FSDP partition them.")
            word_embedding_weight(model)
        self.rdrop_alpha = float(getattr(args, "rdrop_alpha", 0.0))
        if self.rdrop_alpha > 0 and not has_active_dropout(model):
            raise ValueError(f"--rdrop_alpha {self.rdrop_alpha} needs dropout, and no dropout of this model is active "
                             "in training (frozen encoder, --head_dropout 0, or dropout-free encoder).")
        names = ["loss_adversarial", "adversarial_skipped"] * (self.adversary is not None)
        names += ["rdrop_divergence"] * (self.rdrop_alpha > 0)  # the same names on every process, for the reduce
        self._robust_sums: dict[str, list] = {name: [0.0, 0] for name in names}
        self._warned_skip = False
        if not any(isinstance(c, SetUpOnTrainBegin) for c in self.callback_handler.callbacks):
            self.add_callback(SetUpOnTrainBegin(self._setup_robust_methods))

    def _record_robust(self, name: str, value: torch.Tensor | float) -> None:
        """Add one batch's value to the means logged as ``name`` (kept on the device until logged)."""
        entry = self._robust_sums[name]
        entry[0] = entry[0] + (value.detach().float() if isinstance(value, torch.Tensor) else float(value))
        entry[1] += 1

    def _backward_as_trainer(self, loss: torch.Tensor, num_items_in_batch=None) -> None:
        """Backward of an extra loss, scaled as ``Trainer.training_step`` scales the main one."""
        if self.args.n_gpu > 1:
            loss = loss.mean()
        scaled = self.loss_is_scaled_for_ga
        if scaled is None:
            scaled = self.model_accepts_loss_kwargs and num_items_in_batch is not None
            scaled = scaled or self.compute_loss_func is not None
        if not scaled:
            loss = loss / self.current_gradient_accumulation_steps
        self.accelerator.backward(loss)

    def training_step(self, model, inputs, num_items_in_batch=None):
        """The plain step (clean loss, recorded once by ``StepStatsMixin`` and returned), then with --adversarial
        the adversarial pass(es) on perturbed word embeddings, whose gradient adds to the update; the embeddings are
        restored before the optimizer steps. Its loss is logged as ``loss_adversarial``. Embeddings not trained yet
        (gradual unfreezing) still get a gradient for the direction, which is dropped before the optimizer step."""
        if self.adversary is None:
            return super().training_step(model, inputs, num_items_in_batch)
        weight = word_embedding_weight(self.accelerator.unwrap_model(model))
        borrowed = not weight.requires_grad
        if borrowed:
            weight.requires_grad_(True)
        try:
            return self._adversarial_step(model, inputs, num_items_in_batch, weight)
        finally:
            if borrowed:
                weight.requires_grad_(False)
                weight.grad = None

    def _adversarial_step(self, model, inputs, num_items_in_batch, weight):
        before = None if weight.grad is None else weight.grad.detach().clone()  # earlier micro-batches' share
        loss = super().training_step(model, inputs, num_items_in_batch)
        grad = weight.grad if before is None or weight.grad is None else weight.grad - before
        inputs = self._prepare_inputs(inputs)
        bare = self.accelerator.unwrap_model(model)

        def probe() -> torch.Tensor:  # PGD's inner steps: gradient to the embeddings only, no DDP sync
            with self.compute_loss_context_manager():
                return bare(**inputs).loss

        def loss_and_backward() -> torch.Tensor:
            with self.compute_loss_context_manager():
                adversarial = model(**inputs).loss
            self._backward_as_trainer(adversarial, num_items_in_batch)
            return adversarial.detach()

        adversarial = self.adversary.run(weight, grad, probe, loss_and_backward)
        if adversarial is None:
            self._record_robust("adversarial_skipped", 1.0)
            if not self._warned_skip:
                logger.warning("--adversarial: no gradient reached the word embeddings in this batch (frozen, or "
                               "overflow); skipping its adversarial pass. Counted in the log as adversarial_skipped.")
                self._warned_skip = True
        else:
            self._record_robust("loss_adversarial", adversarial)
        return loss

    def _evaluation_autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for evaluation where ``--precision auto`` picks it for gradient-free work although training
        runs in fp32 (a CPU with AMX/AVX512-BF16, ``toolkit.precision``); with --bf16/--fp16 accelerate's own."""
        if self.args.bf16 or self.args.fp16 or not hasattr(self.args, "precision"):
            return contextlib.nullcontext()
        return autocast(no_grad_precision(self.args), self.args.device)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self._evaluation_autocast():
            outputs = model(**inputs)
        loss = outputs.loss.detach() if outputs.loss is not None else None
        if prediction_loss_only:
            return loss, None, None
        logits = tuple(outputs.task_logits[t.name].detach() for t in self.tasks)
        labels = tuple(self._labels_for(inputs, i, t) for i, t in enumerate(self.tasks))
        return loss, logits, labels

    def _labels_for(self, inputs: dict, index: int, task: TaskConfig) -> torch.Tensor:
        """A task's labels for metrics, missing-marked where absent or belonging to another task."""
        batch = next(v for v in inputs.values() if isinstance(v, torch.Tensor)).shape[0]
        dtype = torch.float32 if task.is_regression else torch.long
        labels = inputs.get(task.label_column)
        if labels is None and len(self.tasks) == 1:  # the single-task shorthand the model accepts too
            labels = inputs.get("labels")
        if labels is None:
            return torch.full((batch,), task.missing, dtype=dtype, device=self.args.device)
        labels = labels.to(dtype)
        if "task_ids" in inputs:
            labels = torch.where(inputs["task_ids"] == index, labels, torch.full_like(labels, task.missing))
        return labels

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and not any(k.startswith("eval_") for k in logs) and len(self.tasks) > 1:
            sums, counts = self._task_loss_sums.clone(), self._task_loss_counts.clone()
            if self.args.world_size > 1:
                both = self.accelerator.reduce(torch.stack([sums, counts]).to(self.args.device), "sum").cpu()
                sums, counts = both[0], both[1]
            for i, task in enumerate(self.tasks):
                if counts[i] > 0:
                    logs[f"loss_{task.name}"] = round(float(sums[i] / counts[i]), 4)
            self._task_loss_sums.zero_()
            self._task_loss_counts.zero_()
        if "loss" in logs and not any(k.startswith("eval_") for k in logs) and self._robust_sums:
            logs.update(self._robust_logs())
        if getattr(self, "unfreezing", None) is not None and self.unfreezing.unfrozen and "loss" in logs:
            logs["trainable_groups"] = self.unfreezing.unfrozen  # gradual unfreezing: groups training, from the top
        super().log(logs, start_time)

    def _robust_logs(self) -> dict[str, float]:
        """Means since the last log of loss_adversarial and rdrop_divergence; adversarial_skipped as a count."""
        names = sorted(self._robust_sums)
        sums = torch.tensor([float(self._robust_sums[n][0]) for n in names], dtype=torch.float64)
        counts = torch.tensor([self._robust_sums[n][1] for n in names], dtype=torch.float64)
        if self.args.world_size > 1:
            both = self.accelerator.reduce(torch.stack([sums, counts]).to(self.args.device), "sum").cpu()
            sums, counts = both[0], both[1]
        self._robust_sums = {name: [0.0, 0] for name in names}
        return {n: int(s) if n == "adversarial_skipped" else float(f"{s / c:.4g}")
                for n, s, c in zip(names, sums.tolist(), counts.tolist()) if c > 0}
