"""Masked-language-model pretraining of a small Chinese BERT on raw in-domain text, offline.

The pieces of ``recipes/pretrain_mlm.py``: a corpus from the local Chinese data (SMP2020 posts and
the review sets; both SMP2020 test splits are left out unless named), a character-level WordPiece
vocabulary trained with the ``tokenizers`` library, texts packed into fixed-length blocks, the 15%
80/10/10 masking collator, and a callback that stops training after a wall-clock budget.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from transformers import TrainerCallback

from ..args import ToolkitTrainingArguments
from ..data.readers import DataError, find_named_dataset

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Corpus source -> (dataset folder, file, text key). SMP2020 files are JSON lists, the others CSV.
CORPUS_SOURCES = {
    "usual_eval": ("smp2020_ewect", "usual_eval_labeled.json", "content"),
    "usual_test": ("smp2020_ewect", "usual_test_labeled.json", "content"),
    "virus_train": ("smp2020_ewect", "virus_train.json", "content"),
    "virus_eval": ("smp2020_ewect", "virus_eval_labeled.json", "content"),
    "virus_test": ("smp2020_ewect", "virus_test_labeled.json", "content"),
    "chnsenticorp": ("chinese_sentiment", "ChnSentiCorp_htl_all.csv", "review"),
    "waimai": ("chinese_sentiment", "waimai_10k.csv", "review"),
    "online_shopping": ("chinese_sentiment", "online_shopping_10_cats.csv", "review"),
}
# Everything except the two SMP2020 test splits (the texts the Weibo recipe reports scores on).
DEFAULT_CORPUS = ["usual_eval", "virus_train", "virus_eval", "chnsenticorp", "waimai", "online_shopping"]


@dataclass
class MLMArguments:
    corpus: list[str] = field(
        default_factory=lambda: list(DEFAULT_CORPUS),
        metadata={"help": f"Sources ({sorted(CORPUS_SOURCES)}) or paths to .txt (one text a line) / .json / .csv "
                          "files. The default leaves out usual_test and virus_test, which the Weibo recipe scores."},
    )
    data_dir: str | None = field(default=None, metadata={"help": "Extra folder searched first for the data."})
    clean: bool = field(default=True, metadata={"help": "Clean texts with toolkit.cleaning.Cleaner first."})
    init_from: str | None = field(
        default=None,
        metadata={"help": "Continue pretraining this checkpoint (its own tokenizer); null = a new BERT from scratch "
                          "with a character vocabulary built from the corpus."},
    )
    vocab_size: int = field(default=8000, metadata={"help": "Vocabulary size for a new tokenizer."})
    min_frequency: int = field(default=2, metadata={"help": "WordPiece pieces rarer than this are left out."})
    hidden_size: int = field(default=384, metadata={"help": "New model: hidden width."})
    num_hidden_layers: int = field(default=6, metadata={"help": "New model: transformer layers."})
    num_attention_heads: int = field(default=6, metadata={"help": "New model: attention heads."})
    intermediate_size: int = field(default=1536, metadata={"help": "New model: feed-forward width."})
    block_size: int = field(default=128, metadata={"help": "Tokens per packed training sequence."})
    mlm_probability: float = field(default=0.15, metadata={"help": "Share of tokens selected for masking."})
    eval_fraction: float = field(default=0.02, metadata={"help": "Share of texts held out for the MLM eval loss."})
    max_texts: int | None = field(default=None, metadata={"help": "Seeded random subset of the corpus (quick runs)."})
    max_minutes: float | None = field(default=None, metadata={"help": "Stop training after this wall-clock time."})

    def __post_init__(self):
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"--mlm_probability {self.mlm_probability} must be in (0, 1).")
        if not 0.0 < self.eval_fraction < 0.5:
            raise ValueError(f"--eval_fraction {self.eval_fraction} must be in (0, 0.5).")
        if self.block_size < 8 or self.vocab_size < len(SPECIAL_TOKENS) + 1:
            raise ValueError("--block_size must be >= 8 and --vocab_size larger than the special tokens.")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"--hidden_size {self.hidden_size} is not divisible by --num_attention_heads "
                             f"{self.num_attention_heads}.")


@dataclass
class MLMTrainingArguments(ToolkitTrainingArguments):
    """``ToolkitTrainingArguments`` for MLM pretraining.

    Changed defaults: lr 5e-4, batch 128, 10 epochs, 6% linear warm-up (a float < 1 is a ratio in
    transformers 5.x), weight decay 0.01, output in runs/zh-mlm.
    """

    learning_rate: float = field(default=5e-4, metadata={"help": "AdamW learning rate."})
    per_device_train_batch_size: int = field(default=128, metadata={"help": "Sequences per batch per device."})
    per_device_eval_batch_size: int = field(default=128, metadata={"help": "Eval batch size per device."})
    num_train_epochs: float = field(default=10.0, metadata={"help": "Epochs over the packed corpus."})
    warmup_steps: float = field(default=0.06, metadata={"help": "Warm-up steps, or a ratio of all steps if < 1."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    logging_steps: float = field(default=50, metadata={"help": "Log the training loss every N steps."})
    output_dir: str | None = field(default="runs/zh-mlm", metadata={"help": "Where the model and tokenizer go."})


# ---- corpus -------------------------------------------------------------------------------------------------------
def _source_file(source: str, data_dir: str | None) -> tuple[Path, str]:
    if source in CORPUS_SOURCES:
        folder, name, key = CORPUS_SOURCES[source]
        root = find_named_dataset(folder, data_dir)
        if root is None or not (root / name).is_file():
            raise DataError(f"Corpus source '{source}' needs {folder}/{name} in the data folder (../shared/data or "
                            "--data_dir).")
        return root / name, key
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(f"Corpus source '{source}' is neither one of {sorted(CORPUS_SOURCES)} nor a file.")
    return path, "content" if path.suffix == ".json" else "review"


def read_texts(path: str | Path, key: str = "content") -> list[str]:
    """Raw texts of one file: .txt (one a line), a JSON list of objects (``key``), or a CSV (``key`` column)."""
    import json

    path = Path(path)
    if path.suffix == ".json":
        records = json.loads(path.read_text(encoding="utf-8"))
        return [r[key] for r in records if isinstance(r, dict) and isinstance(r.get(key), str)]
    if path.suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if key not in (reader.fieldnames or []):
                raise DataError(f"{path}: no '{key}' column (columns: {reader.fieldnames}).")
            return [row[key] for row in reader if row.get(key)]
    return path.read_text(encoding="utf-8").splitlines()


def corpus_texts(sources: Sequence[str], data_dir: str | None = None, cleaner=None, min_chars: int = 2) -> list[str]:
    """Texts of every source, BOM-stripped, cleaned, deduplicated (first occurrence kept), at least ``min_chars``."""
    seen: dict[str, None] = {}
    for source in sources:
        path, key = _source_file(source, data_dir)
        texts = [t.lstrip("\ufeff").strip() for t in read_texts(path, key)]
        if cleaner is not None:
            texts = cleaner.clean_batch(texts)
        for text in texts:
            if len(text) >= min_chars:
                seen.setdefault(text, None)
        logger.info("corpus: %s -> %d texts so far", source, len(seen))
    if not seen:
        raise DataError(f"The corpus {list(sources)} holds no text.")
    return list(seen)


def shuffled(texts: Sequence[str], seed: int, limit: int | None = None) -> list[str]:
    """A seeded shuffle (sources are concatenated in order), cut to ``limit`` texts."""
    import random

    texts = list(texts)
    random.Random(seed).shuffle(texts)
    return texts[:limit] if limit else texts


# ---- vocabulary and tokenizer -------------------------------------------------------------------------------------
def train_char_vocab(texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2,
                     lowercase: bool = True) -> list[str]:
    """A BERT WordPiece vocabulary trained with ``tokenizers``: every CJK character is its own token (character
    level), Latin words and digits get WordPiece pieces. Returns the tokens in id order, specials first."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                       lowercase=lowercase)
    tokenizer.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=SPECIAL_TOKENS, limit_alphabet=vocab_size, show_progress=False)
    vocab = tokenizer.get_vocab()
    return sorted(vocab, key=vocab.get)


def save_tokenizer(vocab: Sequence[str], out_dir: str | Path, model_max_length: int = 512, lowercase: bool = True):
    """Write ``vocab.txt`` and a BertTokenizerFast that ``AutoTokenizer.from_pretrained(out_dir)`` loads."""
    from transformers import BertTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # from_pretrained(dir) reads vocab.txt; BertTokenizerFast(vocab_file=...) builds a 5-token vocab on 5.x.
    tokenizer = BertTokenizerFast.from_pretrained(str(out), do_lower_case=lowercase, tokenize_chinese_chars=True,
                                                  strip_accents=False, model_max_length=model_max_length)
    if len(tokenizer) != len(vocab):
        raise RuntimeError(f"{out}/vocab.txt holds {len(vocab)} tokens but the tokenizer loaded {len(tokenizer)}.")
    tokenizer.save_pretrained(out)
    return tokenizer


# ---- data and model -----------------------------------------------------------------------------------------------
def pack_texts(texts: Sequence[str], tokenizer, block_size: int = 128):
    """``Dataset[input_ids]`` of ``block_size``-token blocks: texts tokenised as [CLS] text [SEP], concatenated and
    cut into blocks (no padding wasted; the last partial block is dropped unless it is the only one)."""
    import datasets

    def group(batch: dict) -> dict:
        ids = [i for seq in tokenizer(batch["text"], add_special_tokens=True)["input_ids"] for i in seq]
        usable = (len(ids) // block_size) * block_size or len(ids)
        return {"input_ids": [ids[i:i + block_size] for i in range(0, usable, block_size)]}

    ds = datasets.Dataset.from_dict({"text": list(texts)})
    return ds.map(group, batched=True, batch_size=2000, remove_columns=["text"], desc=f"pack into {block_size}")


def mlm_collator(tokenizer, mlm_probability: float = 0.15, seed: int | None = None):
    """BERT masking: ``mlm_probability`` of the tokens are selected; 80% -> [MASK], 10% random, 10% unchanged."""
    from transformers import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=mlm_probability,
                                           mask_replace_prob=0.8, random_replace_prob=0.1, seed=seed)


def new_bert_mlm(tokenizer, args: MLMArguments):
    """A randomly initialised ``BertForMaskedLM`` sized by ``args``, for ``tokenizer``'s vocabulary."""
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=args.hidden_size,
                        num_hidden_layers=args.num_hidden_layers, num_attention_heads=args.num_attention_heads,
                        intermediate_size=args.intermediate_size,
                        max_position_embeddings=max(256, args.block_size), pad_token_id=tokenizer.pad_token_id)
    return BertForMaskedLM(config)


def load_mlm_model(name_or_path: str, tokenizer, cache_dir: str | None = None):
    """A pretrained masked-LM checkpoint (alias, local dir or hub id) in float32, embeddings resized to
    ``tokenizer``."""
    import torch
    from transformers import AutoModelForMaskedLM

    from ..hub import resolve_model_path

    model = AutoModelForMaskedLM.from_pretrained(resolve_model_path(name_or_path, cache_dir), dtype=torch.float32)
    if model.get_input_embeddings().num_embeddings != len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    return model


class TimeLimitCallback(TrainerCallback):
    """Stops training (and saves, via the Trainer's end-of-training save) once ``minutes`` of training have passed."""

    def __init__(self, minutes: float | None):
        self.seconds = None if minutes is None else 60.0 * minutes
        self.start = None
        self.stopped_at_step = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds is not None and time.perf_counter() - self.start > self.seconds:
            control.should_training_stop = True
            self.stopped_at_step = state.global_step
        return control


def masked_share(batch: dict, tokenizer) -> float:
    """Share of the maskable positions (not padding, [CLS] or [SEP]) the collator selected (labels != -100)."""
    import torch

    specials = torch.tensor(tokenizer.all_special_ids)
    maskable = ~torch.isin(batch["input_ids"].where(batch["labels"] == -100, batch["labels"]), specials)
    return float((batch["labels"] != -100)[maskable].float().mean())
