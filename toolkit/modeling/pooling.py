"""Turn an encoder's token states into one vector per text: layer choice, then pooling.

A pooler is split in two so frozen features can be cached: ``features()`` maps hidden states to
a tensor that determines the output, and ``from_features()`` finishes the job. CLS and mean pooling
are linear, so pooling commutes with every layer choice: their multi-layer features are one pooled
vector per layer ([B, L+1, H]), and one cached encoder pass serves a whole sweep over last-4 mean,
last-4 concat and scalar mix (and the last layer, which is the final row). Poolers with learned
weights over tokens (self-attentive) cannot be cached.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

LAYER_CHOICES = ("last", "last4_mean", "last4_concat", "scalar_mix")
POOLING_CHOICES = ("cls", "mean", "max", "attention")
LINEAR_POOLINGS = ("cls", "mean")  # pool(combination of layers) == combination of pooled layers
PER_LAYER = "per_layer"  # the feature spec's layers for one pooled vector per layer


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens; ``states`` is [..., T, H], ``mask`` is [B, T]."""
    weights = _broadcast_mask(mask, states)
    summed = (states * weights).sum(dim=-2)
    return summed / weights.sum(dim=-2).clamp(min=1.0)


def masked_max(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Element-wise max over real tokens; padding never wins."""
    weights = _broadcast_mask(mask, states)
    filled = states.masked_fill(weights == 0, torch.finfo(states.dtype).min)
    return filled.max(dim=-2).values


def _broadcast_mask(mask: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    # mask [B, T] against states [B, T, H] or [B, L, T, H]
    weights = mask.to(states.dtype).unsqueeze(-1)
    if states.dim() == 4:
        weights = weights.unsqueeze(1)
    return weights


def combine_layers(per_layer: torch.Tensor, layers: str, scalar_mix: "ScalarMix | None" = None) -> torch.Tensor:
    """A layer choice applied to per-layer vectors ``[B, L+1, H]`` (embeddings first, last layer last)."""
    if layers == "last":
        return per_layer[:, -1]
    if layers == "last4_mean":
        return per_layer[:, -4:].mean(dim=1)
    if layers == "last4_concat":
        return per_layer[:, -4:].flatten(1)  # same order as concatenating the last four layers' token states
    if scalar_mix is None:
        raise ValueError("layers='scalar_mix' needs the pooler's ScalarMix.")
    return scalar_mix(per_layer, dim=1)


class ScalarMix(nn.Module):
    """ELMo-style learned softmax mix over layers, times a learned scale."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))
        self.gamma = nn.Parameter(torch.ones(()))

    def forward(self, stacked: torch.Tensor, dim: int = 1) -> torch.Tensor:
        shape = [1] * stacked.dim()
        shape[dim] = -1
        probs = torch.softmax(self.weights, dim=0).to(stacked.dtype).view(shape)
        return self.gamma.to(stacked.dtype) * (stacked * probs).sum(dim=dim)


class SelfAttentivePooling(nn.Module):
    """Structured self-attentive sentence embedding (Lin et al., 2017).

    ``A = softmax(W2 tanh(W1 H^T))`` gives ``hops`` attention distributions over the real tokens;
    the output is the ``hops`` weighted sums, concatenated. ``penalty(A) = ||A A^T - I||_F^2``
    pushes the hops to attend to different tokens.
    """

    def __init__(self, hidden_size: int, attention_dim: int = 128, hops: int = 4):
        super().__init__()
        self.hops = hops
        self.w1 = nn.Linear(hidden_size, attention_dim, bias=False)
        self.w2 = nn.Linear(attention_dim, hops, bias=False)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.w2(torch.tanh(self.w1(states))).transpose(1, 2)  # [B, hops, T]
        scores = scores.masked_fill(mask.unsqueeze(1) == 0, torch.finfo(scores.dtype).min)
        attention = torch.softmax(scores.float(), dim=-1).to(states.dtype)
        attention = attention * mask.unsqueeze(1).to(states.dtype)  # exact zeros on padding
        pooled = torch.bmm(attention, states)  # [B, hops, H]
        return pooled.flatten(1), attention

    @staticmethod
    def penalty(attention: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of ``||A A^T - I||_F^2``."""
        gram = torch.bmm(attention.float(), attention.float().transpose(1, 2))
        eye = torch.eye(gram.size(-1), device=gram.device)
        return ((gram - eye) ** 2).sum(dim=(1, 2)).mean()


@dataclass
class PoolerOutput:
    pooled: torch.Tensor
    attention: torch.Tensor | None = None  # [B, hops, T] for self-attentive pooling

    def penalty(self) -> torch.Tensor | None:
        return None if self.attention is None else SelfAttentivePooling.penalty(self.attention)


class Pooler(nn.Module):
    """Layer choice + pooling; see the module docstring for the features / from_features split."""

    def __init__(
        self,
        hidden_size: int,
        num_hidden_layers: int,
        pooling: str = "cls",
        layers: str = "last",
        attention_dim: int = 128,
        attention_hops: int = 4,
    ):
        super().__init__()
        if pooling not in POOLING_CHOICES:
            raise ValueError(f"pooling={pooling!r} is not one of {POOLING_CHOICES}.")
        if layers not in LAYER_CHOICES:
            raise ValueError(f"layers={layers!r} is not one of {LAYER_CHOICES}.")
        if layers in ("last4_mean", "last4_concat") and num_hidden_layers < 4:
            raise ValueError(f"layers={layers!r} needs an encoder with at least 4 layers, got {num_hidden_layers}.")
        self.pooling, self.layers = pooling, layers
        self.hidden_size = hidden_size
        self.scalar_mix = ScalarMix(num_hidden_layers + 1) if layers == "scalar_mix" else None
        width = hidden_size * (4 if layers == "last4_concat" else 1)
        self.attention = SelfAttentivePooling(width, attention_dim, attention_hops) if pooling == "attention" else None
        self.output_size = width * (attention_hops if pooling == "attention" else 1)

    @property
    def needs_all_layers(self) -> bool:
        return self.layers != "last"

    @property
    def cacheable(self) -> bool:
        """Whether ``features()`` is independent of every trainable parameter of the pooler."""
        return self.pooling != "attention" and not (self.layers == "scalar_mix" and self.pooling == "max")

    def _token_states(self, hidden_states: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self.layers == "last":
            return hidden_states[-1]
        if self.layers == "last4_mean":
            return torch.stack(hidden_states[-4:], dim=0).mean(dim=0)
        if self.layers == "last4_concat":
            return torch.cat(hidden_states[-4:], dim=-1)
        return self.scalar_mix(torch.stack(hidden_states, dim=1), dim=1)

    def _pool(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return states[..., 0, :]
        if self.pooling == "mean":
            return masked_mean(states, mask)
        return masked_max(states, mask)

    @property
    def per_layer_features(self) -> bool:
        """Whether cached features are one pooled vector per layer, [B, L+1, H] (see the module docstring)."""
        return self.pooling in LINEAR_POOLINGS and self.layers != "last"

    def feature_spec(self) -> dict[str, str]:
        """What the cached features depend on besides the encoder and the tokens: every multi-layer choice
        of a linear pooling shares one per-layer entry."""
        return {"pooling": self.pooling, "layers": PER_LAYER if self.per_layer_features else self.layers}

    def features(self, hidden_states: tuple[torch.Tensor, ...], mask: torch.Tensor) -> torch.Tensor:
        """Cacheable features: the pooled vector, or one pooled vector per layer (``per_layer_features``)."""
        if not self.cacheable:
            raise ValueError(
                f"pooling={self.pooling!r} with layers={self.layers!r} learns weights over tokens, so its "
                "features cannot be cached; turn the feature cache off."
            )
        if self.per_layer_features:
            return self._pool(torch.stack(hidden_states, dim=1), mask)  # [B, L+1, H]
        return self._pool(self._token_states(hidden_states), mask)

    def from_features(self, features: torch.Tensor) -> torch.Tensor:
        if not self.per_layer_features:
            return features
        return combine_layers(features, self.layers, self.scalar_mix)

    def forward(self, hidden_states: tuple[torch.Tensor, ...], mask: torch.Tensor) -> PoolerOutput:
        if self.layers == "scalar_mix" and self.cacheable:  # pool each layer, then mix: cheaper than mixing tokens
            return PoolerOutput(self.from_features(self.features(hidden_states, mask)))
        states = self._token_states(hidden_states)
        if self.attention is None:
            return PoolerOutput(self._pool(states, mask))
        pooled, attention = self.attention(states, mask)
        return PoolerOutput(pooled, attention)
