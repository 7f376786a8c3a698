"""ToolkitTokenizer: saved cleaning and truncation apply through AutoTokenizer and pipeline() with no arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertTokenizerFast, pipeline

from toolkit.cleaning import Cleaner
from toolkit.modeling.tokenizer import ToolkitTokenizer, wrap_tokenizer

MAX_LENGTH = 16
# simplified characters only: their traditional forms (們 愛 說 話 電 影) are [UNK] without cleaning
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "我", "们", "爱", "说", "话", "电", "影", "好", "很", "不",
         "的", "是", "你", "他", "hello", "world", "good", "bad", "movie", ",", "!", "?", ".", "a", "the"]
REPO_ROOT = Path(__file__).resolve().parents[1]


def _bert_source(path: Path) -> BertTokenizerFast:
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast.from_pretrained(str(path))  # reads vocab.txt (vocab_file= does not, in 5.x)
    assert len(tokenizer) == len(VOCAB)
    return tokenizer


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> BertTokenizerFast:
    """The plain BERT tokenizer the model was trained from."""
    return _bert_source(tmp_path_factory.mktemp("vocab"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory, source) -> Path:
    """A saved model folder: wrapped tokenizer (default cleaning, max_length 16) and a tiny random BERT classifier."""
    path = tmp_path_factory.mktemp("model")
    wrap_tokenizer(source, Cleaner().to_dict(), MAX_LENGTH).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=MAX_LENGTH, num_labels=2)
    BertForSequenceClassification(config).eval().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tok(saved) -> ToolkitTokenizer:
    return AutoTokenizer.from_pretrained(str(saved))


def test_autotokenizer_returns_toolkit_tokenizer_with_saved_options(saved, tok):
    assert type(tok) is ToolkitTokenizer
    assert tok.cleaning == Cleaner().to_dict()
    assert tok.model_max_length == MAX_LENGTH
    assert tok.model_input_names == ["input_ids", "token_type_ids", "attention_mask"]  # BERT's, kept by wrapping
    saved_config = json.loads((saved / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert saved_config["tokenizer_class"] == "ToolkitTokenizer"
    assert saved_config["cleaning"] == Cleaner().to_dict()
    assert saved_config["model_max_length"] == MAX_LENGTH


def test_traditional_gives_the_ids_of_simplified(source, tok):
    unk = source.unk_token_id
    assert unk in source("我們愛說話")["input_ids"]  # the plain tokenizer does not know 們 愛 說 話
    ids = tok("我們愛說話")["input_ids"]
    assert ids == tok("我们爱说话")["input_ids"] == source("我们爱说话")["input_ids"]
    assert unk not in ids
    assert tok.encode("電影很好") == source.encode("电影很好")
    assert tok.tokenize("我們") == ["我", "们"]


def test_fullwidth_gives_the_ids_of_halfwidth(source, tok):
    assert source.unk_token_id in source("ＨＥＬＬＯ，ｗｏｒｌｄ！")["input_ids"]
    assert tok("ＨＥＬＬＯ，ｗｏｒｌｄ！")["input_ids"] == source("hello,world!")["input_ids"]


def test_batches_and_pairs_are_cleaned(source, tok):
    batch = tok(["我們", "ＨＥＬＬＯ @someone http://t.cn/abc"], ["說話", "ｗｏｒｌｄ"])
    expected = source(["我们", "hello"], ["说话", "world"])
    assert batch["input_ids"] == expected["input_ids"]
    assert batch["token_type_ids"] == expected["token_type_ids"]
    assert tok([("我們", "說話")])["input_ids"] == source([("我们", "说话")])["input_ids"]
    assert tok("我們", "說話")["input_ids"] == source("我们", "说话")["input_ids"]
    words = tok(["我們", "說"], is_split_into_words=True)["input_ids"]
    assert words == source(["我们", "说"], is_split_into_words=True)["input_ids"]


def test_truncates_to_max_length_without_being_asked(source, tok):
    long = "我" * 100
    assert len(source(long)["input_ids"]) == 102  # the plain tokenizer does not truncate
    assert len(tok(long)["input_ids"]) == MAX_LENGTH
    assert len(tok.encode(long)) == MAX_LENGTH
    assert len(tok(long, "说" * 100)["input_ids"]) == MAX_LENGTH
    assert [len(ids) for ids in tok([long, "你好"])["input_ids"]] == [MAX_LENGTH, 4]
    assert tuple(tok(long, return_tensors="pt")["input_ids"].shape) == (1, MAX_LENGTH)
    assert len(tok(long, max_length=8)["input_ids"]) == 8  # the caller's choices still win
    assert len(tok(long, truncation=False)["input_ids"]) == 102


def test_empty_input_still_tokenizes(tok):
    cls_sep = [tok.cls_token_id, tok.sep_token_id]
    assert tok("")["input_ids"] == cls_sep
    assert tok("http://t.cn/abc @someone")["input_ids"] == cls_sep  # emptied by cleaning
    assert tok(["", "你好"])["input_ids"][0] == cls_sep


def test_cleaner_is_built_once_and_lazily(saved, monkeypatch):
    calls = []
    original = Cleaner.from_dict.__func__
    monkeypatch.setattr(Cleaner, "from_dict", classmethod(lambda cls, d: calls.append(d) or original(cls, d)))
    tokenizer = AutoTokenizer.from_pretrained(str(saved))
    assert calls == []  # loading does not build it
    for text in ("我們", "說話", ["電影", "好"]):
        tokenizer(text)
    assert len(calls) == 1


def test_without_cleaning_text_is_untouched(tmp_path, source):
    wrap_tokenizer(source, None, MAX_LENGTH).save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    assert type(tokenizer) is ToolkitTokenizer and tokenizer.cleaning is None
    for text in ("我們愛說話", "ＨＥＬＬＯ", "hello http://t.cn/abc", "你好 world", ""):
        assert tokenizer(text)["input_ids"] == source(text)["input_ids"]
    assert source.unk_token_id in tokenizer("我們")["input_ids"]
    assert len(tokenizer("我" * 100)["input_ids"]) == MAX_LENGTH  # truncation does not depend on cleaning


def test_without_cleaning_toolkit_cleaning_is_not_imported(tmp_path, source):
    wrap_tokenizer(source, None, MAX_LENGTH).save_pretrained(tmp_path)
    code = ("import sys; from transformers import AutoTokenizer; import toolkit.modeling.tokenizer; "
            f"tok = AutoTokenizer.from_pretrained({str(tmp_path)!r}); ids = tok('我們 hello')['input_ids']; "
            "assert type(tok).__name__ == 'ToolkitTokenizer', type(tok); "
            "assert 'toolkit.cleaning' not in sys.modules, 'toolkit.cleaning was imported'")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_pipeline_cleans_and_truncates_with_no_arguments(saved):
    classifier = pipeline("text-classification", model=str(saved), device="cpu", top_k=None)
    assert type(classifier.tokenizer) is ToolkitTokenizer
    traditional, simplified, other = classifier(["我們愛說話", "我们爱说话", "hello world good bad movie"])
    assert traditional == simplified
    assert traditional != other  # the model does tell inputs apart: equal scores come from cleaning
    # 500 characters with 16 position embeddings: only the default truncation makes this run
    result = classifier("我们" * 250)
    assert len(result) == 1 and len(result[0]) == 2


def test_wraps_other_fast_tokenizers(tmp_path):
    from transformers import MPNetTokenizer

    vocab = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "我", "们", "hello", "world", "<mask>"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    source = MPNetTokenizer.from_pretrained(str(tmp_path))
    wrap_tokenizer(source, Cleaner().to_dict(), 8).save_pretrained(tmp_path / "saved")
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "saved"))
    assert type(tokenizer) is ToolkitTokenizer
    assert tokenizer.model_input_names == ["input_ids", "attention_mask"]  # MPNet takes no token_type_ids
    for text, plain in (("hello <mask> world", "hello <mask> world"), ("我們 ＨＥＬＬＯ", "我们 hello"), ("", "")):
        assert tokenizer(text)["input_ids"] == source(plain)["input_ids"]
    assert tokenizer("hello", "world")["input_ids"] == source("hello", "world")["input_ids"]
    assert len(tokenizer("hello " * 20)["input_ids"]) == 8


def test_wrap_rejects_bad_options(source):
    with pytest.raises(ValueError):
        wrap_tokenizer(source, {"no_such_option": True}, MAX_LENGTH)
    with pytest.raises(ValueError):
        wrap_tokenizer(source, None, 0)
    with pytest.raises(TypeError):
        wrap_tokenizer(source, "t2s", MAX_LENGTH)  # type: ignore[arg-type]
