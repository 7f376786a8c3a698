"""The one Trainer of every study: task heads' labels and losses, task sampling, loss curve, token counts."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer
from transformers.trainer_utils import has_length

from ..data.labels import TaskConfig
from ..modeling.features import FeatureDataset


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


class StepStatsMixin:
    """What every training step records on the side, for any ``Trainer``: each batch's loss (the smoothed loss
    curve) and real vs padded tokens (padding efficiency), both kept on the device until read, so no host sync per
    step; on CPU, denormal floats are flushed to zero."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.device.type == "cpu":
            # Backward passes of pretrained encoders produce denormal floats (GELU's gradient far from zero,
            # tiny softmax probabilities); x86 matmuls on them run several times slower. Flushing them to
            # zero (below 1.2e-38) changes no result that matters and speeds CPU training up 3-4x.
            torch.set_flush_denormal(True)
        self._batch_losses: list[torch.Tensor] = []
        self._real_tokens: torch.Tensor | int = 0
        self._padded_tokens = 0

    def training_step(self, model, inputs, num_items_in_batch=None):
        mask = inputs.get("attention_mask")
        if mask is not None:
            self._real_tokens = self._real_tokens + mask.sum()
            self._padded_tokens += mask.numel()
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._batch_losses.append(loss.detach())
        return loss

    def batch_losses(self) -> list[float]:
        """Per-batch training losses of this process, in order."""
        if not self._batch_losses:
            return []
        return torch.stack(self._batch_losses).float().cpu().tolist()

    def token_counts(self) -> dict[str, float]:
        """Real and padded (real + padding) tokens this process trained on, and their ratio."""
        real = int(self._real_tokens)
        padded = self._padded_tokens
        return {"real_tokens": real, "padded_tokens": padded,
                "padding_efficiency": round(real / padded, 4) if padded else None}


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
        self.can_return_loss = True
        self.sampling_temperature = sampling_temperature
        self.task_probabilities = None
        if self.train_dataset is not None and "task_ids" in _columns(self.train_dataset):
            ids = np.asarray(_column(self.train_dataset, "task_ids"))
            sizes = [int((ids == i).sum()) for i in range(len(self.tasks))]
            self.task_probabilities = task_sampling_probabilities(sizes, sampling_temperature)
        self._task_loss_sums = torch.zeros(len(self.tasks), dtype=torch.float64)
        self._task_loss_counts = torch.zeros(len(self.tasks), dtype=torch.float64)

    def _get_eval_sampler(self, eval_dataset):
        # Trainer also length-groups evaluation under train_sampling_strategy="group_by_length", which returns
        # predictions out of row order; every report here pairs predictions with the rows' texts and ids.
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_eval_sampler(eval_dataset)
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

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
        if model.training:
            for i, task in enumerate(self.tasks):
                if task.name in outputs.task_losses:
                    self._task_loss_sums[i] += float(outputs.task_losses[task.name].detach())
                    self._task_loss_counts[i] += 1
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
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
        super().log(logs, start_time)
