"""ULMFiT's fine-tuning methods (Howard & Ruder 2018) for a ``TaskModel``: layer groups, discriminative learning
rates, the slanted triangular learning rate (STLR) and gradual unfreezing.

The layer groups, from the bottom: ``embeddings`` (with any encoder weight outside a layer), ``layer.0`` ..
``layer.{L-1}``, and ``top`` (everything outside the encoder: pooler and heads). The optimizer gets one pair of
parameter groups (weight decay / none) per layer group, top first, so ``param_groups[0]`` (the rate Trainer logs)
is the head's base rate. ``ToolkitTrainer`` uses them for ``--layer_lr_decay``, ``--stlr_cut_frac`` and
``--gradual_unfreezing``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from transformers import Trainer, TrainerCallback

logger = logging.getLogger(__name__)

EMBEDDINGS, TOP = "embeddings", "top"
# Where encoders keep their list of transformer layers: BERT/MPNet/RoBERTa, DistilBERT, others.
LAYER_LISTS = ("encoder.layer", "transformer.layer", "layers", "layer")


@dataclass
class LayerGroup:
    """One unit of discriminative rates and of unfreezing: a name and its ``(name, parameter)`` pairs."""

    name: str
    params: list[tuple[str, nn.Parameter]] = field(default_factory=list)


def encoder_layer_list(encoder: nn.Module) -> nn.ModuleList:
    """The encoder's transformer layers, bottom first."""
    for path in LAYER_LISTS:
        module = encoder
        for attr in path.split("."):
            module = getattr(module, attr, None)
        if isinstance(module, nn.ModuleList) and len(module):
            return module
    raise ValueError(f"{type(encoder).__name__} keeps no layer list at any of {LAYER_LISTS}: layer-wise methods "
                     "(--layer_lr_decay, --gradual_unfreezing) need one.")


def layer_groups(model: nn.Module) -> list[LayerGroup]:
    """The model's parameters as groups from the bottom: embeddings, layer.0 .. layer.{L-1}, top (pooler + heads).

    Encoder weights outside every layer (MPNet's relative attention bias, a final norm) join the embeddings.
    """
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise ValueError(f"{type(model).__name__} has no .encoder: layer-wise methods need a TaskModel.")
    layers = encoder_layer_list(encoder)
    where = {id(p): i + 1 for i, layer in enumerate(layers) for p in layer.parameters()}
    in_encoder = {id(p) for p in encoder.parameters()}
    groups = [LayerGroup(EMBEDDINGS)] + [LayerGroup(f"layer.{i}") for i in range(len(layers))] + [LayerGroup(TOP)]
    for name, param in model.named_parameters():
        index = where.get(id(param), 0 if id(param) in in_encoder else len(groups) - 1)
        groups[index].params.append((name, param))
    return groups


def trainer_decay_names(model: nn.Module) -> set[str]:
    """The parameters Trainer applies weight decay to (all but biases and norms), by its own rule."""
    return set(Trainer.get_decay_parameter_names(None, model))  # a method that does not use its trainer


def discriminative_param_groups(model: nn.Module, base_lr: float, decay: float | None = None,
                                weight_decay: float = 0.0, decay_names: set[str] | None = None,
                                trainable_only: bool = True) -> list[dict]:
    """Optimizer parameter groups, top first: group k from the top trains at ``base_lr * decay**k`` (the pooler and
    heads at ``base_lr``, the top encoder layer at ``base_lr * decay``, the embeddings lowest); within each, the
    weights in ``decay_names`` (default: Trainer's rule) get ``weight_decay`` and the others none. Each group carries
    its ``layer_group`` name. ``trainable_only`` leaves out frozen parameters, as Trainer does; gradual unfreezing
    passes False, so that the groups it unfreezes later are in the optimizer from the start."""
    decay = 1.0 if decay is None else decay
    decay_names = trainer_decay_names(model) if decay_names is None else set(decay_names)
    out = []
    for depth, group in enumerate(reversed(layer_groups(model))):
        params = [(n, p) for n, p in group.params if p.requires_grad or not trainable_only]
        for with_decay in (True, False):
            chosen = [p for n, p in params if (n in decay_names) == with_decay]
            if chosen:
                out.append({"params": chosen, "lr": base_lr * decay ** depth,
                            "weight_decay": weight_decay if with_decay else 0.0, "layer_group": group.name})
    return out


class SlantedTriangular:
    """STLR's multiplier of the peak rate at optimizer step t of T (ULMFiT, eq. 3): a linear rise over the first
    ``cut = floor(T * cut_frac)`` steps from 1/ratio to 1, then a linear fall back to 1/ratio at step T::

        p = t / cut                 if t < cut
            1 - (t - cut) / (T - cut)  otherwise
        multiplier = (1 + p * (ratio - 1)) / ratio

    The paper writes the fall's length as ``cut * (1/cut_frac - 1)``, which is ``T - cut`` when ``T * cut_frac`` is
    whole; otherwise it is shorter than the steps left and the rate would turn negative before step T (T=10,
    cut_frac=0.15: cut=1, length 5.7), so ``T - cut`` is used. A callable object (not a lambda), so
    ``LambdaLR.state_dict`` saves T, cut_frac and ratio with a checkpoint.
    """

    def __init__(self, total_steps: int, cut_frac: float = 0.1, ratio: float = 32.0):
        if total_steps < 1 or not 0.0 < cut_frac < 1.0 or ratio < 1.0:
            raise ValueError(f"STLR needs total_steps >= 1, cut_frac in (0, 1) and ratio >= 1; got {total_steps}, "
                             f"{cut_frac}, {ratio}.")
        self.total_steps, self.cut_frac, self.ratio = int(total_steps), float(cut_frac), float(ratio)
        self.cut = math.floor(self.total_steps * self.cut_frac)

    def __call__(self, step: int) -> float:
        if step < self.cut:
            p = step / self.cut
        else:
            p = max(0.0, 1.0 - (step - self.cut) / (self.total_steps - self.cut))
        return (1.0 + p * (self.ratio - 1.0)) / self.ratio


def stlr_scheduler(optimizer: Optimizer, total_steps: int, cut_frac: float = 0.1, ratio: float = 32.0) -> LambdaLR:
    """A ``LambdaLR`` following ``SlantedTriangular``: each parameter group's own rate (discriminative rates
    included) times the multiplier."""
    return LambdaLR(optimizer, SlantedTriangular(total_steps, cut_frac, ratio))


class GradualUnfreezing(TrainerCallback):
    """ULMFiT's gradual unfreezing: training starts with only the top group (pooler and heads) trainable and
    unfreezes the next group down every epoch (or every ``every_steps`` optimizer steps) until the embeddings
    train too: in epoch e (0-based) the top e+1 groups train.

    The count follows from ``state.epoch`` or ``state.global_step``, so a resumed run continues where it stopped.
    Every group must already be in the optimizer (``discriminative_param_groups(..., trainable_only=False)``): a
    frozen parameter has no gradient, so AdamW skips it (no update, no weight decay, no moment state) until it is
    unfrozen. Each change is logged; ``history`` keeps them, and ``unfrozen`` is the current count.
    """

    def __init__(self, groups: list[LayerGroup], every_steps: int | None = None):
        if every_steps is not None and every_steps < 1:
            raise ValueError(f"unfreeze_every_steps={every_steps} must be >= 1 (or None for every epoch).")
        self.groups, self.every_steps = groups, every_steps
        self.unfrozen: int | None = None
        self.history: list[dict] = []
        self._initial: list[bool] = []

    def target(self, state) -> int:
        """How many groups, counted from the top, train at this point of the run."""
        done = state.global_step // self.every_steps if self.every_steps else math.floor(state.epoch or 0)
        return min(len(self.groups), 1 + int(done))

    def trainable_names(self) -> list[str]:
        """The trainable groups' names, top first."""
        return [g.name for g in reversed(self.groups)][: self.unfrozen or 0]

    def apply(self, state) -> None:
        count = self.target(state)
        if count == self.unfrozen:
            return
        self.unfrozen = count
        for depth, group in enumerate(reversed(self.groups)):
            for _, param in group.params:
                param.requires_grad_(depth < count)
        names = self.trainable_names()
        self.history.append({"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), "trainable": names})
        logger.info("gradual unfreezing at step %d (epoch %.2f): %d/%d groups trainable: %s", state.global_step,
                    state.epoch or 0.0, count, len(self.groups), ", ".join(names))

    def check_optimizer(self, optimizer) -> None:
        """Every group's parameters must be in the optimizer, or unfreezing them would train nothing."""
        if optimizer is None:
            return
        held = {id(p) for g in optimizer.param_groups for p in g["params"]}
        missing = [g.name for g in self.groups if any(id(p) not in held for _, p in g.params)]
        if missing:
            raise ValueError(f"gradual unfreezing: the optimizer lacks parameters of groups {missing}; build it with "
                             "discriminative_param_groups(..., trainable_only=False) (ToolkitTrainer does).")

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        self.check_optimizer(optimizer)
        self._initial = [p.requires_grad for g in self.groups for _, p in g.params]
        self.unfrozen = None
        self.apply(state)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.apply(state)

    def on_step_begin(self, args, state, control, **kwargs):
        self.apply(state)

    def on_train_end(self, args, state, control, **kwargs):
        """Give every parameter back its trainable flag from before training."""
        for (_, param), flag in zip((pair for g in self.groups for pair in g.params), self._initial):
            param.requires_grad_(flag)
