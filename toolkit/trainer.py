"""Trainer subclasses shared by the recipes."""

from __future__ import annotations

import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer
from transformers.trainer_utils import has_length


class ToolkitTrainer(Trainer):
    """``Trainer`` that keeps every batch's training loss (for the smoothed loss curve) and counts real
    and padded tokens (padding efficiency).

    Both stay on the device until read, so recording them costs no host sync per step.
    """

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

    def _get_eval_sampler(self, eval_dataset):
        # Trainer also length-groups evaluation under train_sampling_strategy="group_by_length", which returns
        # predictions out of row order; every report here pairs predictions with the rows' texts and ids.
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_eval_sampler(eval_dataset)
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

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
