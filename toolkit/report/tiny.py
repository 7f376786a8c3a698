"""Tiny random encoders for the tiny profile: the real tokenizers (MiniLM's for English, zh-mini-mlm's characters for
Chinese, so pictures show real words and characters) on a 4-layer BERT of hidden size 32."""

from __future__ import annotations

from pathlib import Path


def tiny_encoder(source: str, path: Path, layers: int = 4, hidden: int = 32, heads: int = 4) -> Path:
    """A random BERT with ``source``'s tokenizer, saved in ``path`` (kept when it is already there)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ..hub import resolve_model_path

    path = Path(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return path
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(source))
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden * 2, max_position_embeddings=128)
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    return path
