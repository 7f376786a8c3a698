"""Hypothesis properties of ``toolkit.cleaning`` over every option set: idempotent (``c(c(x)) == c(x)``), total (a
``str`` for every ``str``), a batch equal to one text at a time, the compiled steps 1-2 equal to their regex; emoji
as text in every emoji language and every OpenCC configuration, and the HanLP table, with the cases of issue 16 as
examples."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("toolkit") is None:  # a plain `pytest tests/...` from a checkout without installing
    sys.path.insert(0, str(ROOT))

from toolkit import cleaning  # noqa: E402
from toolkit.cleaning import Cleaner  # noqa: E402

emoji = pytest.importorskip("emoji")

# pieces that the steps react to, alone or glued together
FRAGMENTS = [
    "http://", "https://", "HTTP://", "ftp://", "www.", "WWW.", "t.cn/", "T.CN/", "a", "Z", "1", ".", ",", ":", "：",
    "/", "//", "@", "＠", "#", "＃", "[", "]", "［", "【", "】", "哈", "乾", "清", "宮", "薴", "苧", "苎", "尼日", "爾",
    "麼", "么", "瞭", "隨身碟", "猛", "、", "“", "①", "²", " ", "  ", "\t", "\n", "\u3000", "\xa0", "😂", "👍", "🏽",
    "\u200d", "\ufe0f", "\u20e3", "🇨", "🇳", "🇮🇩", "#️⃣", "\u200b", "\x00", "\ud800", "ｈｔｔｐ", "．", "com",
    "example.com", "x@y.com", "回复", "回覆", "转发微博", "轉發微博", "！", "？", "，", "~", "-", "_", "·", "Ⅰ", "Σ",
    "İ", "ß", "\U00010400", "𠀀", "\ufdd0", "\ufdd1", "\uf8ff", "…", "。", "e\u0301", "\u202e", "ⅰ", "(", "（", ")",
    "）", "来自", "分享自", "一二三四五六七八九十一二三四五六", "⿴", "⿲",
]
EMOJI = sorted(emoji.EMOJI_DATA)
tricky_text = st.lists(st.sampled_from(FRAGMENTS) | st.sampled_from(EMOJI) | st.text(max_size=3),
                       max_size=12).map("".join)


def option_sets():
    """Any value of every option (positive ints small enough to matter)."""
    values = {"opencc": st.sampled_from(cleaning.OPENCC_CONFIGS + (None,)),
              "emoji": st.sampled_from(cleaning.EMOJI_MODES),
              "emoji_language": st.sampled_from(cleaning.EMOJI_LANGUAGES),
              "emoticons": st.sampled_from(cleaning.EMOTICON_MODES),
              "char_table": st.sampled_from(cleaning.CHAR_TABLES + (None,)),
              "missing": st.sampled_from(cleaning.MISSING_POLICIES),
              "max_punct_repeat": st.none() | st.integers(1, 3),
              "max_length": st.none() | st.integers(1, 12)}
    return st.fixed_dictionaries({f.name: values.get(f.name, st.booleans()) for f in fields(Cleaner)})


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(cleaner: Cleaner, texts: list[str]) -> None:
    once = cleaner.clean_batch(texts)
    assert all(isinstance(t, str) for t in once)
    assert cleaner.clean_batch(once) == once
    assert once == [cleaner(t) for t in texts]
    slice_size = cleaning._SLICE
    try:  # a long batch is cleaned in slices of _SLICE texts
        cleaning._SLICE = 2
        assert cleaner.clean_batch(texts) == once
    finally:
        cleaning._SLICE = slice_size
    compiled = cleaning._compiled
    try:  # the regex that runs steps 1 and 2 where the compiled module is not built gives the same results
        cleaning._compiled = None
        assert cleaner.clean_batch(texts) == once
        assert [cleaner(t) for t in texts] == once
    finally:
        cleaning._compiled = compiled
    for t in once:
        t.encode("utf-8")  # no lone surrogate survives


@SETTINGS
@given(options=option_sets(), texts=st.lists(tricky_text, max_size=5))
@example(options={"emoji": "text", "emoji_language": "zh"}, texts=["🇮🇩"])
@example(options={"emoji": "text", "emoji_language": "ja"}, texts=["😂🇮🇩 #️⃣#️⃣"])
@example(options={"opencc": "tw2sp"}, texts=["t.cn/隨身碟"])
@example(options={"char_table": "hanlp", "opencc": "t2s"}, texts=["苎薴苧"])
@example(options={"emoji": "text", "strip_hashtags": True, "max_punct_repeat": 1}, texts=["#️⃣#️⃣#️⃣"])
def test_every_option_set_is_idempotent_and_total(options, texts):
    check(Cleaner(**options), texts)


@SETTINGS
@given(options=option_sets(), text=st.text(st.characters(exclude_categories=()), max_size=40))
def test_every_option_set_on_any_unicode(options, text):
    """Lone surrogates, controls, combining marks, RTL, astral planes."""
    check(Cleaner(**options), [text])


@pytest.mark.parametrize("language", cleaning.EMOJI_LANGUAGES)
@pytest.mark.parametrize("config", cleaning.OPENCC_CONFIGS + (None,))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.lists(st.sampled_from(EMOJI) | st.sampled_from(FRAGMENTS), max_size=6).map("".join),
                      max_size=4))
def test_emoji_text_in_every_language_and_opencc_config(language, config, texts):
    check(Cleaner(emoji="text", emoji_language=language, opencc=config), texts)


@pytest.mark.slow
@pytest.mark.parametrize("language", cleaning.EMOJI_LANGUAGES)
def test_every_emoji_name_in_every_language_is_settled(language):
    for config in cleaning.OPENCC_CONFIGS + (None,):
        cleaner = Cleaner(emoji="text", emoji_language=language, opencc=config)
        out = cleaner.clean_batch(EMOJI)
        assert [(a, b) for a, b in zip(out, cleaner.clean_batch(out)) if a != b] == [], config
