"""Robustness methods of ``ToolkitTrainer``: adversarial training on the word embeddings (FGM, PGD) and R-Drop.

- **FGM** (Miyato et al. 2017, "Adversarial Training Methods for Semi-Supervised Text Classification"): after the
  clean backward, the word-embedding weight moves by ``epsilon * g / ||g||`` (g: this batch's gradient of the
  embedding weight), a second forward/backward adds the adversarial loss's gradient, and the weight is restored.
- **PGD** (Madry et al. 2018): ``steps`` ascent steps of size ``alpha * g / ||g||``, each projected back into the
  ball of radius ``epsilon`` around the clean weight; only the last step's gradient joins the update.
- **R-Drop** (Liang et al. 2021): two forward passes with independent dropout; the loss is the mean of their losses
  plus ``alpha`` times the symmetric KL divergence of their predictive distributions (regression heads: the squared
  difference of the two predictions, in standard deviations of the training labels).

Only the encoder's word embeddings are perturbed (not the position/type embeddings or their LayerNorm).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from transformers import TrainerCallback

from ..data.labels import TaskConfig

ADVERSARIAL = ("none", "fgm", "pgd")


def word_embedding_weight(model: nn.Module) -> nn.Parameter:
    """The encoder's word-embedding weight (what FGM and PGD perturb)."""
    encoder = getattr(model, "encoder", None)
    embeddings = encoder.get_input_embeddings() if encoder is not None else None
    weight = getattr(embeddings, "weight", None)
    if not isinstance(weight, nn.Parameter):
        raise ValueError(f"--adversarial needs the encoder's word embeddings (model.encoder.get_input_embeddings()); "
                         f"{type(model).__name__} has none.")
    return weight


def _unit(grad: torch.Tensor | None) -> torch.Tensor | None:
    """``g / ||g||``, or None when there is no usable direction (no gradient, zero, inf or nan)."""
    if grad is None:
        return None
    norm = torch.linalg.vector_norm(grad.float())
    if not bool(torch.isfinite(norm)) or float(norm) == 0.0:
        return None
    return grad / norm.to(grad.dtype)


class FGM:
    """Fast Gradient Method on one embedding weight: ``attack(grad)``, the adversarial pass, ``restore()``."""

    steps = 1

    def __init__(self, epsilon: float = 1.0):
        self.epsilon = epsilon
        self._backup: torch.Tensor | None = None
        self._weight: nn.Parameter | None = None

    def attack(self, weight: nn.Parameter, grad: torch.Tensor | None) -> bool:
        """Move ``weight`` by epsilon along ``grad``'s direction; False (nothing moved) without a direction."""
        direction = _unit(grad)
        if direction is None:
            return False
        self._weight, self._backup = weight, weight.detach().clone()
        with torch.no_grad():
            weight.add_(direction, alpha=self.epsilon)
        return True

    def restore(self) -> None:
        """Put the clean weight back, bit for bit."""
        if self._backup is not None:
            with torch.no_grad():
                self._weight.copy_(self._backup)
        self._weight = self._backup = None

    def run(self, weight: nn.Parameter, grad: torch.Tensor | None, probe: Callable[[], torch.Tensor],
            loss_and_backward: Callable[[], torch.Tensor]) -> torch.Tensor | None:
        """One attack, the adversarial loss's backward (``loss_and_backward``), restore; None when skipped."""
        if not self.attack(weight, grad):
            return None
        try:
            return loss_and_backward()
        finally:
            self.restore()


class PGD(FGM):
    """Projected gradient descent: ``steps`` steps of ``alpha * g / ||g||`` inside the epsilon ball."""

    def __init__(self, epsilon: float = 1.0, alpha: float = 0.3, steps: int = 3):
        super().__init__(epsilon)
        self.alpha, self.steps = alpha, steps

    def step(self, weight: nn.Parameter, grad: torch.Tensor | None) -> bool:
        direction = _unit(grad)
        if direction is None:
            return False
        if self._backup is None:
            self._weight, self._backup = weight, weight.detach().clone()
        with torch.no_grad():
            weight.add_(direction, alpha=self.alpha)
            delta = weight - self._backup
            norm = torch.linalg.vector_norm(delta.float())
            if float(norm) > self.epsilon:
                weight.copy_(self._backup + delta * (self.epsilon / norm).to(delta.dtype))
        return True

    def run(self, weight: nn.Parameter, grad: torch.Tensor | None, probe: Callable[[], torch.Tensor],
            loss_and_backward: Callable[[], torch.Tensor]) -> torch.Tensor | None:
        """Steps 1..K-1 take their direction from ``probe()`` (the adversarial loss, whose gradient reaches only the
        embedding weight, not ``.grad``); the last step's loss goes through ``loss_and_backward``."""
        try:
            for _ in range(self.steps - 1):
                if not self.step(weight, grad):
                    return None
                grad = torch.autograd.grad(probe(), weight, allow_unused=True)[0]
            if not self.step(weight, grad):
                return None
            return loss_and_backward()
        finally:
            self.restore()


def make_adversary(method: str, epsilon: float = 1.0, alpha: float = 0.3, steps: int = 3) -> FGM | None:
    """FGM, PGD or None (``method='none'``)."""
    if method not in ADVERSARIAL:
        raise ValueError(f"--adversarial {method!r} is not one of {ADVERSARIAL}.")
    if method == "none":
        return None
    return FGM(epsilon) if method == "fgm" else PGD(epsilon, alpha, steps)


# ---- R-Drop -------------------------------------------------------------------------------------------------------
def symmetric_kl(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Per row, (KL(P1||P2) + KL(P2||P1)) / 2 of the softmax distributions of two logit tensors."""
    log_p, log_q = first.float().log_softmax(-1), second.float().log_softmax(-1)
    return 0.5 * ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(-1)


def rdrop_divergence(tasks: Sequence[TaskConfig], first: dict[str, torch.Tensor], second: dict[str, torch.Tensor],
                     task_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_t w_t · mean over task t's rows of the divergence of the two passes' outputs: the symmetric KL for a
    classification head, ((y1 - y2) / std)^2 for a regression head. Labels are not needed; with ``task_ids`` a head
    counts only its own rows."""
    parts = []
    for i, task in enumerate(tasks):
        a, b = first[task.name], second[task.name]
        if task_ids is not None:
            rows = task_ids.to(a.device) == i
            if not bool(rows.any()):
                continue
            a, b = a[rows], b[rows]
        if task.is_regression:
            per_row = ((a.float() - b.float()).squeeze(-1) / task.target_std).pow(2)
        else:
            per_row = symmetric_kl(a, b)
        parts.append(task.loss_weight * per_row.mean())
    if not parts:
        return sum(v.sum() for v in first.values()) * 0.0
    return torch.stack(parts).sum()


def rdrop_loss(first_loss: torch.Tensor, second_loss: torch.Tensor, divergence: torch.Tensor,
               alpha: float) -> torch.Tensor:
    """R-Drop's objective: the mean of the two passes' losses + alpha · divergence."""
    return 0.5 * (first_loss + second_loss) + alpha * divergence


def has_active_dropout(model: nn.Module) -> bool:
    """Whether a forward pass in training mode draws any dropout (a frozen encoder stays in eval mode)."""
    frozen = getattr(model, "is_frozen", False)
    encoder = getattr(model, "encoder", None)
    skip = {id(m) for m in encoder.modules()} if frozen and encoder is not None else set()
    dropouts = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and id(m) not in skip]
    config = getattr(encoder, "config", None)
    attention = 0.0 if frozen else float(getattr(config, "attention_probs_dropout_prob", 0.0) or 0.0)
    return any(m.p > 0 for m in dropouts) or attention > 0


class SetUpOnTrainBegin(TrainerCallback):
    """Calls ``setup()`` as training begins, so a model made by ``model_init`` (hyperparameter search) and a trial's
    arguments get the options too."""

    def __init__(self, setup: Callable[[], None]):
        self.setup = setup

    def on_train_begin(self, args, state, control, **kwargs):
        self.setup()
