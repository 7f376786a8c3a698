"""The toolkit's model: an encoder, a pooler and one MLP head per task, as a ``PreTrainedModel`` (safetensors).

A single-task model is a multi-task model with one head; it also answers as a sequence classifier
(``logits``, ``id2label``, ``problem_type`` on the config), so ``AutoModelForSequenceClassification`` and
``pipeline("text-classification")`` load a saved one after ``import toolkit``. Two modes: ``frozen``
(encoder weights fixed, kept in eval mode so features are deterministic) and ``finetune`` (everything trains).
The loss lives here: per task a mean over the rows that have its label, weighted and summed over tasks.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from ..data.labels import IGNORE_INDEX, TaskConfig, validate_tasks
from ..hub import resolve_model_path
from .pooling import Pooler, PoolerOutput, ScalarMix

logger = logging.getLogger(__name__)

MODES = ("frozen", "finetune")
LOSSES = ("ce", "focal")


def encoder_config_from_dict(encoder: dict | PretrainedConfig) -> PretrainedConfig:
    if isinstance(encoder, PretrainedConfig):
        return encoder
    encoder = dict(encoder)
    return AutoConfig.for_model(encoder.pop("model_type"), **encoder)


def mlp_head(in_features: int, hidden: int, dropout: float, out_features: int) -> nn.Sequential:
    """The study's head: Linear(in, hidden) -> ReLU -> Dropout -> Linear(hidden, out)."""
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_features)
    )


class TaskModelConfig(PretrainedConfig):
    """Everything a saved model needs: the encoder's own config, pooling, head, mode, the tasks (label spaces),
    the training ``max_length`` and the text-cleaning options (``Cleaner.to_dict()``) that inference re-applies.
    The classification loss: ``loss`` (ce or focal, with ``focal_gamma``) and ``label_smoothing`` (set by
    ``ToolkitTrainer`` from ``label_smoothing_factor``).

    With one task, ``num_labels``/``id2label``/``label2id``/``problem_type`` mirror it for transformers' own code.
    """

    model_type = "toolkit"
    keys_to_ignore_at_inference = ["attentions", "hidden_states"]

    encoder: dict | None = None
    pooling: str = "cls"
    layers: str = "last"
    head_hidden_size: int = 256
    head_dropout: float = 0.1
    attention_dim: int = 128
    attention_hops: int = 4
    attention_penalty: float = 0.0
    mode: str = "finetune"
    cleaning: dict | None = None
    max_length: int | None = None
    tasks: list | None = None
    loss: str = "ce"
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0

    def __post_init__(self, **kwargs: Any):
        if self.tasks is not None:  # None only for transformers' own default instances; the model rejects it
            tasks = validate_tasks(self.tasks)
            self.tasks = [asdict(t) for t in tasks]
            if len(tasks) == 1:
                only = tasks[0]
                kwargs["problem_type"] = only.problem_type
                kwargs["id2label"] = only.id2label or {0: only.name}
                kwargs["label2id"] = {v: k for k, v in kwargs["id2label"].items()}
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r} is not one of {MODES}.")
        if self.loss not in LOSSES or self.focal_gamma < 0 or not 0 <= self.label_smoothing < 1:
            raise ValueError(f"loss={self.loss!r} must be one of {LOSSES}, focal_gamma={self.focal_gamma} >= 0 and "
                             f"label_smoothing={self.label_smoothing} in [0, 1).")
        if self.loss == "focal" and self.tasks and all(t.get("problem_type") == "regression" for t in self.tasks):
            raise ValueError("--loss focal applies to classification heads; every head of this model is a regressor.")
        if isinstance(self.encoder, PretrainedConfig):
            self.encoder = self.encoder.to_dict()
        self.encoder = dict(self.encoder or {})
        self.encoder.pop("_name_or_path", None)
        # The encoder takes the model's dtype, not its checkpoint's (zh-mini-mlm is stored in float16): otherwise a
        # model built from this config would pair a half-precision encoder with float32 heads.
        for key in ("dtype", "torch_dtype"):
            self.encoder.pop(key, None)
        super().__post_init__(**kwargs)

    @property
    def task_names(self) -> list[str]:
        return [t["name"] for t in self.tasks or []]

    def task_configs(self) -> list[TaskConfig]:
        return validate_tasks(self.tasks or [])

    def task(self, name: str | None = None) -> TaskConfig:
        """The label space of head ``name`` (default: the only head)."""
        tasks = self.task_configs()
        if name is None and len(tasks) == 1:
            return tasks[0]
        for task in tasks:
            if task.name == name:
                return task
        raise KeyError(f"No task {name!r} in this model (tasks: {self.task_names}).")


@dataclass
class TaskModelOutput(ModelOutput):
    """``loss`` (weighted sum over tasks), ``logits`` (the only task's, in a single-task model), ``task_logits``
    and ``task_losses`` (tasks with labels in the batch). Regression outputs are in the label's units."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    task_logits: dict[str, torch.Tensor] | None = None
    task_losses: dict[str, torch.Tensor] | None = None
    attention_penalty: torch.Tensor | None = None
    attentions: torch.Tensor | None = None


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0,
               label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-row focal loss (Lin et al. 2017), -Σ_c q_c (1 - p_c)^γ log p_c with q the (smoothed) one-hot target:
    -(1 - p_y)^γ log p_y without smoothing; γ = 0 is cross-entropy (with ``label_smoothing``, torch's)."""
    log_p = logits.float().log_softmax(-1)
    k = logits.shape[-1]
    target = nn.functional.one_hot(labels, k).float() * (1.0 - label_smoothing) + label_smoothing / k
    modulating = (1.0 - log_p.exp()).clamp(min=0.0).pow(gamma)
    return -(target * modulating * log_p).sum(-1)


def task_loss(task: TaskConfig, logits: torch.Tensor, labels: torch.Tensor, loss: str = "ce",
              focal_gamma: float = 2.0, label_smoothing: float = 0.0) -> torch.Tensor | None:
    """Mean loss over the rows that have a label for ``task`` (class-weighted where the task has weights: the
    focal loss's alpha); None when no row has one. Classification: ``loss`` ce or focal, with ``label_smoothing``;
    regression heads ignore both."""
    if task.is_regression:
        labels = labels.float()
        present = ~torch.isnan(labels)
        if not bool(present.any()):
            return None
        error = (logits.squeeze(-1).float()[present] - labels[present]) / task.target_std
        return error.pow(2).mean()  # MSE in standard deviations of the training labels
    labels = labels.long()
    present = labels != IGNORE_INDEX
    if not bool(present.any()):
        return None
    bad = labels[present & ((labels < 0) | (labels >= task.num_labels))]
    if bad.numel():
        raise ValueError(f"{task.label_column} holds {sorted(set(bad.tolist()))[:5]}, outside the head's range "
                         f"0..{task.num_labels - 1} ({task.label_names}); use -100 for a missing label.")
    if loss == "focal":
        losses = focal_loss(logits[present], labels[present], focal_gamma, label_smoothing)
    else:
        losses = nn.functional.cross_entropy(logits.float()[present], labels[present], reduction="none",
                                             label_smoothing=label_smoothing)
    if task.class_weights is not None:
        losses = losses * torch.tensor(task.class_weights, device=losses.device)[labels[present]]
    return losses.mean()


def combine_losses(task_losses: dict[str, torch.Tensor], weights: dict[str, float], penalty: torch.Tensor | None,
                   task_logits: dict[str, torch.Tensor]) -> torch.Tensor:
    """Weighted sum of the per-task losses (+ attention penalty); a graph-connected zero when no task has labels."""
    parts = [weights[name] * loss for name, loss in task_losses.items()]
    if penalty is not None:
        parts.append(penalty)
    if not parts:
        return sum(logits.sum() for logits in task_logits.values()) * 0.0
    return torch.stack(parts).sum()


class TaskModel(PreTrainedModel):
    """A shared encoder + pooler with one ``mlp_head`` per task (``self.heads[name]``).

    ``from_encoder`` starts a model from pretrained encoder weights; ``from_pretrained`` reloads a saved one.
    """

    config_class = TaskModelConfig
    base_model_prefix = "toolkit"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    # forward returns a per-batch mean loss: Trainer must scale it for gradient accumulation and devices itself.
    accepts_loss_kwargs = False

    def __init__(self, config: TaskModelConfig):
        super().__init__(config)
        enc_config = encoder_config_from_dict(config.encoder)
        self.encoder = AutoModel.from_config(enc_config, **_encoder_kwargs(enc_config.model_type))
        self.pooler = Pooler(
            enc_config.hidden_size,
            enc_config.num_hidden_layers,
            pooling=config.pooling,
            layers=config.layers,
            attention_dim=config.attention_dim,
            attention_hops=config.attention_hops,
        )
        self.tasks = config.task_configs()
        self.heads = nn.ModuleDict({
            t.name: mlp_head(self.pooler.output_size, config.head_hidden_size, config.head_dropout, t.num_labels)
            for t in self.tasks
        })
        self.post_init()
        self.apply_mode()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, ScalarMix):
            module.weights.zero_()
            module.gamma.fill_(1.0)
        elif module is not self:
            super()._init_weights(module)

    @classmethod
    def from_encoder(cls, name_or_path: str, cache_dir: str | None = None, **config_kwargs: Any) -> "TaskModel":
        """A new model whose encoder holds pretrained weights (alias, local dir or hub id); heads are random."""
        path = resolve_model_path(name_or_path, cache_dir)
        model_type = AutoConfig.from_pretrained(path).model_type
        encoder = AutoModel.from_pretrained(path, dtype=torch.float32, **_encoder_kwargs(model_type))
        config = cls.config_class(encoder=encoder.config.to_dict(), **config_kwargs)
        model = cls(config)
        model.encoder = encoder
        model.apply_mode()
        return model

    # -- modes ---------------------------------------------------------------------------------
    @property
    def is_frozen(self) -> bool:
        return self.config.mode == "frozen"

    def freeze_encoder(self) -> None:
        self.config.mode = "frozen"
        self.apply_mode()

    def unfreeze_encoder(self) -> None:
        self.config.mode = "finetune"
        self.apply_mode()

    def apply_mode(self) -> None:
        for param in self.encoder.parameters():
            param.requires_grad = not self.is_frozen
        if self.is_frozen:
            self.encoder.eval()

    def train(self, mode: bool = True) -> "TaskModel":
        super().train(mode)
        if self.is_frozen:  # a frozen encoder gives the same features every epoch: no dropout
            self.encoder.eval()
        return self

    def fit_max_length(self, max_length: int, pad_to_multiple_of: int | None = None) -> int:
        """``max_length`` lowered (with a warning) so padded batches fit the encoder's position embeddings."""
        positions = getattr(self.encoder.config, "max_position_embeddings", None)
        if not positions:
            return max_length
        limit = positions - positions % pad_to_multiple_of if pad_to_multiple_of else positions
        if max_length > limit:
            logger.warning("max_length %d (padded to a multiple of %s) exceeds the encoder's %d positions: using %d.",
                           max_length, pad_to_multiple_of, positions, limit)
            return limit
        return max_length

    # -- encoding ------------------------------------------------------------------------------
    def _hidden_states(self, input_ids, attention_mask, token_type_ids) -> tuple[torch.Tensor, ...]:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.encoder(**kwargs, output_hidden_states=self.pooler.needs_all_layers, return_dict=True)
        return tuple(out.hidden_states) if self.pooler.needs_all_layers else (out.last_hidden_state,)

    def encode_features(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """Cacheable features (see ``toolkit.pooling``); no gradient reaches the encoder."""
        with torch.no_grad():
            return self.pooler.features(self._hidden_states(input_ids, attention_mask, token_type_ids), attention_mask)

    def pool(self, input_ids=None, attention_mask=None, token_type_ids=None, features=None):
        """Pooled vector per text, from token ids or from cached features. Returns a ``PoolerOutput``."""
        if features is not None:
            return PoolerOutput(self.pooler.from_features(features))
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if self.is_frozen:
            with torch.no_grad():
                hidden = self._hidden_states(input_ids, attention_mask, token_type_ids)
            hidden = tuple(h.detach() for h in hidden)
        else:
            hidden = self._hidden_states(input_ids, attention_mask, token_type_ids)
        return self.pooler(hidden, attention_mask)

    def attention_penalty(self, pooled) -> torch.Tensor | None:
        if self.config.attention_penalty and pooled.attention is not None:
            return self.config.attention_penalty * pooled.penalty()
        return None

    @property
    def head(self) -> nn.Sequential:
        """The only head of a single-task model."""
        if len(self.tasks) != 1:
            raise AttributeError(f"This model has {len(self.tasks)} heads ({list(self.heads)}); use model.heads.")
        return self.heads[self.tasks[0].name]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
        task_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **task_labels: torch.Tensor,
    ) -> TaskModelOutput:
        """Label inputs are ``labels_<task>`` (or ``labels`` in a single-task model), all optional; with
        ``task_ids``, row i counts only for task ``task_ids[i]``."""
        task_labels.pop("return_dict", None)
        unknown = sorted(k for k in task_labels if k.removeprefix("labels_") not in self.heads)
        if unknown:
            raise ValueError(f"Unexpected inputs {unknown}; label inputs are labels_<task> for tasks "
                             f"{list(self.heads)}.")
        if labels is not None:
            if len(self.tasks) != 1:
                raise ValueError(f"`labels` is for single-task models; this one has tasks {list(self.heads)}: pass "
                                 "labels_<task>.")
            task_labels[self.tasks[0].label_column] = labels
        pooled = self.pool(input_ids, attention_mask, token_type_ids, features)
        task_logits = {}
        for task in self.tasks:  # regression heads report values in the label's units
            out = self.heads[task.name](pooled.pooled)
            task_logits[task.name] = out * task.target_std + task.target_mean if task.is_regression else out
        task_losses = {}
        for i, task in enumerate(self.tasks):
            target = task_labels.get(task.label_column)
            if target is None:
                continue
            target = target.float() if task.is_regression else target.long()
            if task_ids is not None:  # a row of another task's dataset never counts for this head
                target = torch.where(task_ids.to(target.device) == i, target, torch.full_like(target, task.missing))
            loss = task_loss(task, task_logits[task.name], target, self.config.loss, self.config.focal_gamma,
                             self.config.label_smoothing)
            if loss is not None:
                task_losses[task.name] = loss
        penalty = self.attention_penalty(pooled)
        loss = None
        if task_labels:
            loss = combine_losses(task_losses, {t.name: t.loss_weight for t in self.tasks}, penalty, task_logits)
        logits = task_logits[self.tasks[0].name] if len(self.tasks) == 1 else None
        return TaskModelOutput(loss=loss, logits=logits, task_logits=task_logits, task_losses=task_losses,
                               attention_penalty=penalty, attentions=pooled.attention)


def _encoder_kwargs(model_type: str) -> dict:
    # BERT's and MPNet's own poolers are never used (the toolkit pools itself); dropping them also keeps DDP free of
    # unused weights.
    return {"add_pooling_layer": False} if model_type in ("bert", "mpnet") else {}


AutoConfig.register(TaskModelConfig.model_type, TaskModelConfig)
AutoModel.register(TaskModelConfig, TaskModel)
AutoModelForSequenceClassification.register(TaskModelConfig, TaskModel)
