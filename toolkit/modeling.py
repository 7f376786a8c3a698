"""Encoder + pooling + the study's MLP head, as a ``PreTrainedModel`` that saves to safetensors.

One class serves both modes of the study: ``frozen`` (encoder weights fixed, encoder kept in
eval mode so features are deterministic) and ``finetune`` (everything trains).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .hub import resolve_model_path
from .pooling import Pooler, PoolerOutput, ScalarMix

logger = logging.getLogger(__name__)

MODES = ("frozen", "finetune")
PROBLEM_TYPES = ("single_label_classification", "regression")


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


class EncoderHeadConfig(PretrainedConfig):
    """Shared settings of every toolkit model: the encoder's own config, pooling, head and mode.

    ``cleaning`` holds the text-cleaning options the model was trained with (``Cleaner.to_dict()``),
    so inference cleans its input the same way.
    """

    model_type = "toolkit_encoder_head"
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

    def __post_init__(self, **kwargs: Any):
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r} is not one of {MODES}.")
        if isinstance(self.encoder, PretrainedConfig):
            self.encoder = self.encoder.to_dict()
        self.encoder = dict(self.encoder or {})
        self.encoder.pop("_name_or_path", None)
        # The encoder takes the model's dtype, not its checkpoint's (zh-mini-mlm is stored in float16): otherwise a
        # model built from this config would pair a half-precision encoder with float32 heads.
        for key in ("dtype", "torch_dtype"):
            self.encoder.pop(key, None)
        super().__post_init__(**kwargs)


class ClassifierConfig(EncoderHeadConfig):
    model_type = "toolkit_classifier"


class EncoderHeadModel(PreTrainedModel):
    """Base of the toolkit's models: builds the encoder and pooler from the config.

    Subclasses add heads and a ``forward``. ``from_encoder`` starts a model from pretrained
    encoder weights; ``from_pretrained`` reloads a saved toolkit model.
    """

    config_class = EncoderHeadConfig
    base_model_prefix = "toolkit"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    # forward returns a per-batch mean loss: Trainer must scale it for gradient accumulation and devices itself.
    accepts_loss_kwargs = False

    def __init__(self, config: EncoderHeadConfig):
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

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, ScalarMix):
            module.weights.zero_()
            module.gamma.fill_(1.0)
        elif module is not self:
            super()._init_weights(module)

    @classmethod
    def from_encoder(cls, name_or_path: str, cache_dir: str | None = None, **config_kwargs: Any) -> "EncoderHeadModel":
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

    def train(self, mode: bool = True) -> "EncoderHeadModel":
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


def _encoder_kwargs(model_type: str) -> dict:
    # BERT's and MPNet's own poolers are never used (the toolkit pools itself); dropping them also keeps DDP free of
    # unused weights.
    return {"add_pooling_layer": False} if model_type in ("bert", "mpnet") else {}


class EncoderClassifier(EncoderHeadModel):
    """Single-task classifier (or regressor with ``num_labels=1``) with the study's MLP head."""

    config_class = ClassifierConfig

    def __init__(self, config: ClassifierConfig):
        super().__init__(config)
        if config.problem_type is None:
            config.problem_type = "regression" if config.num_labels == 1 else "single_label_classification"
        if config.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type={config.problem_type!r} is not one of {PROBLEM_TYPES}.")
        self.num_labels = config.num_labels
        self.head = mlp_head(self.pooler.output_size, config.head_hidden_size, config.head_dropout, config.num_labels)
        self.post_init()
        self.apply_mode()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        pooled = self.pool(input_ids, attention_mask, token_type_ids, features)
        logits = self.head(pooled.pooled)
        loss = None
        if labels is not None:
            if self.config.problem_type == "regression":
                loss = nn.functional.mse_loss(logits.squeeze(-1).float(), labels.float())
            else:
                loss = nn.functional.cross_entropy(logits.float(), labels.long())
            penalty = self.attention_penalty(pooled)
            if penalty is not None:
                loss = loss + penalty
        return SequenceClassifierOutput(loss=loss, logits=logits, attentions=pooled.attention)


AutoConfig.register(EncoderHeadConfig.model_type, EncoderHeadConfig)
AutoConfig.register(ClassifierConfig.model_type, ClassifierConfig)
