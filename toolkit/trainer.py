"""Trainer subclasses and callbacks shared by the recipes."""

from __future__ import annotations

import torch
from transformers import Trainer


class ToolkitTrainer(Trainer):
    """``Trainer`` that keeps every batch's training loss, for the smoothed loss curve.

    Losses stay on the device as 0-d tensors until read, so recording them costs no sync.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._batch_losses: list[torch.Tensor] = []

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._batch_losses.append(loss.detach())
        return loss

    def batch_losses(self) -> list[float]:
        """Per-batch training losses of this process, in order."""
        if not self._batch_losses:
            return []
        return torch.stack(self._batch_losses).float().cpu().tolist()
