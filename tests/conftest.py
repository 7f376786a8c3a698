"""Shared fixtures: a tiny random BERT saved offline, and the real data folder beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY_WORDS = (
    "the a an and or but not no is was are were be been it this that film movie story acting plot great good bad "
    "awful boring loved hated best worst fun dull i you he she they we very really so too ! . , ? ' - ( ) "
    "好 坏 的 了 是 我 你 他 不 很 开 心 难 过 生 气 害 怕 惊 讶 喜 欢 电 影 书 太 棒 差"
).split()


def write_tiny_bert(path: Path, hidden: int = 32, layers: int = 2, heads: int = 4) -> Path:
    """A random BERT with a ~100-token vocabulary, saved with safetensors and a vocab.txt tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + TINY_WORDS + [f"##{c}" for c in "sdeyrlnt"]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast.from_pretrained(str(path))  # reads vocab.txt (the vocab_file= form does not)
    assert len(tokenizer) == len(vocab)
    tokenizer.save_pretrained(path)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden * 2, max_position_embeddings=128)
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """Directory of a tiny 2-layer random BERT (hidden 32) with its tokenizer."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_bert_4layers(tmp_path_factory) -> Path:
    """A tiny 4-layer BERT, for the layer choices that need the last four layers."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert-4"), layers=4)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data beside the checkout (../shared/data); CI always has it, so its absence fails."""
    assert SHARED_DATA.is_dir(), f"expected the shared data folder at {SHARED_DATA}"
    return SHARED_DATA
