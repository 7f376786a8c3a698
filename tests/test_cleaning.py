"""toolkit.cleaning: a table of tricky cases, idempotence and totality (hypothesis), the real SMP2020-EWECT posts,
batch == one by one, OpenCC's quirks, options round trips, pickling and ``datasets.map(num_proc=2)``."""

from __future__ import annotations

import importlib.util
import json
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("toolkit") is None:  # a plain `pytest tests/...` from a checkout without installing
    sys.path.insert(0, str(ROOT))  # (an installed toolkit, also the torch-free toolkit-cleaning, is tested as is)

from toolkit import cleaning  # noqa: E402
from toolkit.cleaning import Cleaner, clean  # noqa: E402

SMP_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "smp2020_ewect"
SMP_FILES = ("usual_eval_labeled.json", "usual_test_labeled.json", "virus_train.json", "virus_eval_labeled.json",
             "virus_test_labeled.json")

# ---- the table: (raw text, options, exact expected output) -----------------------------------------------------
CASES = [
    # full-width forms, traditional characters, Latin case
    ("ＡＢＣ開心", {}, "abc开心"),
    ("你好（世界）；好：～", {}, "你好(世界);好:~"),
    ("「引号」《书名》、。——……", {}, "「引号」《书名》、。——……"),
    ("①②③ ㎡ ﬁ ²", {}, "①②③ ㎡ ﬁ ²"),
    ("Ⅰ级响应 ΑΒΓ Привет ÀÉÎ", {}, "Ⅰ级响应 ΑΒΓ Привет àéî"),
    ("電腦軟體與記憶體", {}, "电脑软体与记忆体"),
    ("電腦軟體與記憶體", {"opencc": "tw2sp"}, "电脑软件与内存"),
    ("這個軟件很好", {"opencc": "hk2s"}, "这个软件很好"),
    ("乾清宮", {}, "干清宫"),  # OpenCC gives 乾清宫, which it would change again: cleaning settles
    ("明瞭", {}, "明了"),  # 瞭 changes only inside phrases
    ("ＡＢＣ開心", {"opencc": None, "halfwidth": False, "lowercase": False}, "ＡＢＣ開心"),
    # mentions: names end at whitespace, punctuation (ASCII or full-width), a colon or the end
    ("我们永远在一起@aki猫咪//@aki猫咪:加油武汉", {}, "我们永远在一起 加油武汉"),
    ("向医护工作者们致敬//@TFBOYS组合:#致敬疫情前线医护人员#", {}, "向医护工作者们致敬 #致敬疫情前线医护人员#"),
    ("回复@小林綠子Cc_:这个……以前没有//@小林綠子Cc_:回复@姚花花:？？？什么", {}, "这个……以前没有 ???什么"),
    ("//@临风少主://@·FEIFEI·:他真的很好[拳头]", {}, "他真的很好[拳头]"),
    ("防控物资短缺的压力。@南宁铁路（@人民网） 好", {}, "防控物资短缺的压力。 好"),  # the emptied brackets go too
    ("@张三：你好", {}, "你好"),
    ("@张三:你好", {}, "你好"),
    ("@张三，你好", {}, ",你好"),
    ("注意防护2@X玖少年团肖战DAYTOY//@X玖少年团肖战DAYTOY:#武汉加油#", {}, "注意防护2 #武汉加油#"),
    ("一定要照顾好自己@jjjustin0219[抱抱]", {}, "一定要照顾好自己 [抱抱]"),
    ("@W·L白龙站 注意防范", {}, "注意防范"),
    ("@UNIQ-王一博", {}, ""),
    ("点赞@小明😂", {}, "点赞 😂"),
    # e-mails are not mentions
    ("联系 abc.def@example.com @张三 谢谢", {}, "联系 谢谢"),
    ("邮箱abc@example.com，电话", {}, "邮箱 ,电话"),
    ("写信给 @example.com 吧", {}, "写信给 @example.com 吧"),
    ("联系 abc@example.com", {"remove_emails": False}, "联系 abc@example.com"),
    ("联系 abc@example.com @张三", {"remove_mentions": False}, "联系 @张三"),
    ("a@b.com_c@d.com", {}, "@d.com"),
    # links: glued to Chinese on either side, ending in Chinese or ASCII punctuation; nothing else eaten
    ("看这里http://t.cn/A6PqoMKY武汉加油", {}, "看这里 武汉加油"),
    ("链接：http://t.cn/A6PqoMKY。", {}, "链接: 。"),
    ("http://t.cn/A6vBv3yL ???", {}, "???"),
    ("详情见https://weibo.com/u/6417072593?from=feed&x=1，转发", {}, "详情见 ,转发"),
    ("访问www.baidu.com吧", {}, "访问 吧"),
    ("访问WWW.Baidu.COM/s?wd=1.", {}, "访问 ."),
    ("短链t.cn/RlwJZX6我的淘宝", {}, "短链 我的淘宝"),
    ("microsoft.cn/abc 不是短链", {}, "microsoft.cn/abc 不是短链"),
    ("ftp://files.example.org/a.zip下载", {}, "下载"),
    ("HTTP://T.CN/ABC", {}, ""),
    ("http：//t.cn/abc", {}, ""),
    ("http://t.cn/x//@某人:转发", {}, "转发"),
    ("http://t.cn/x//@某人:转发", {"remove_mentions": False}, "//@某人:转发"),
    ("(见http://t.cn/abc)", {}, "(见 )"),
    ("see http://t.cn/abc, then", {}, "see , then"),
    # emoji with skin tones and ZWJ sequences
    ("哈哈😂😂👍🏽", {}, "哈哈😂😂👍🏽"),
    ("哈哈😂👍🏽👨‍👩‍👧", {"emoji": "remove"}, "哈哈"),
    ("哈哈😂👍🏽👨‍👩‍👧", {"emoji": "text"}, "哈哈:face_with_tears_of_joy::thumbs_up_medium_skin_tone::family_man_woman_girl:"),
    ("哈哈😂❤️", {"emoji": "text", "emoji_language": "zh"}, "哈哈:笑哭了::红心:"),
    ("按#️⃣键 🇨🇳", {"emoji": "text"}, "按:keycap_#:键 :china:"),
    ("🇨 alone", {"emoji": "remove"}, "alone"),
    # Weibo emoticons, nested brackets
    ("好[哈哈][泪]", {}, "好[哈哈][泪]"),
    ("好[哈哈][泪]", {"emoticons": "remove"}, "好"),
    ("好[哈哈][淚]", {"emoticons": "text"}, "好 哈哈 泪"),
    ("[[哈哈]]和[a[哈]b]", {"emoticons": "text"}, "[ 哈哈 ]和[a 哈 b]"),
    ("[[哈哈]]和[a[哈]b]", {"emoticons": "remove"}, "[ ]和[a b]"),
    ("参考[1]和[good]", {"emoticons": "remove"}, "参考[1]和"),
    # topics, repost marker, punctuation, whitespace, invisible characters, length
    ("#武汉加油# #致敬疫情前线医护人员#我们在一起", {"strip_hashtags": True}, "武汉加油 致敬疫情前线医护人员我们在一起"),
    ("C# 和 F# 语言", {"strip_hashtags": True}, "c# 和 f# 语言"),
    ("##双重## 话题", {"strip_hashtags": True}, "双重 话题"),
    ("转发微博", {"remove_repost_marker": True}, ""),
    ("轉發微博//@某人:哈哈", {"remove_repost_marker": True}, "哈哈"),
    ("太好了！！！！？？？。。。", {"max_punct_repeat": 1}, "太好了!?。"),
    ("太好了！！！！", {"max_punct_repeat": 2}, "太好了!!"),
    ("  多个   空格\t\n和\u3000全角空格 ", {}, "多个 空格 和 全角空格"),
    ("  多个   空格 ", {"collapse_whitespace": False}, "  多个   空格 "),
    ("零\u200b宽\ufeff字符\u202e与控制\x07符", {}, "零宽字符与控制符"),
    ("一二三四五六七八九十", {"max_length": 5}, "一二三四五"),
    ("abc def ghi", {"max_length": 4}, "abc"),
    ("写信 @example.com", {"max_length": 7}, "写信"),  # the cut leaves "@e": a mention now, cleaned again
    ("", {}, ""),
    ("\ud83d\ude02 lone surrogates", {}, "\ufffd\ufffd lone surrogates"),
]


def _id(case) -> str:
    text, options, _ = case
    return (text[:12] + ("|" + ",".join(f"{k}={v}" for k, v in options.items()) if options else "")).encode(
        "unicode_escape").decode("ascii")


@pytest.mark.parametrize("text,options,expected", CASES, ids=[_id(c) for c in CASES])
def test_table_of_tricky_cases(text, options, expected):
    cleaner = Cleaner(**options)
    assert cleaner(text) == expected
    assert cleaner(expected) == expected  # idempotent
    assert clean(text, **options) == expected


def test_table_batch_equals_one_by_one():
    by_options: dict[str, list[str]] = {}
    for text, options, _ in CASES:
        by_options.setdefault(json.dumps(options, sort_keys=True), []).append(text)
    for key, texts in by_options.items():
        cleaner = Cleaner(**json.loads(key))
        assert cleaner.clean_batch(texts) == [cleaner(t) for t in texts], key


# ---- properties ----------------------------------------------------------------------------------------------------
FRAGMENTS = [
    "http://", "https://", "HTTP://", "ftp://", "www.", "WWW.", "t.cn/", "T.CN/", "a", "Z", "1", ".", ",", ":", "：",
    "/", "//", "@", "＠", "#", "＃", "[", "]", "［", "哈", "乾", "清", "宮", "薴", "苧", "尼日", "爾", "麼", "么", "瞭",
    " ", "  ", "\t", "\n", "\u3000", "\xa0", "😂", "👍", "🏽", "\u200d", "\ufe0f", "\u20e3", "🇨", "🇳", "\u200b",
    "\x00", "\ud800", "ｈｔｔｐ", "．", "com", "example.com", "x@y.com", "回复", "回覆", "转发微博", "轉發微博", "！",
    "？", "，", "~", "-", "_", "·", "Ⅰ", "Σ", "İ", "ß", "\U00010400", "𠀀", "\ufdd0", "\ufdd1", "\uf8ff", "…", "。",
    "e\u0301", "\u202e", "ⅰ",
]
tricky_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=14).map("".join)
OPTION_SETS = [
    {},
    {"emoji": "remove", "emoticons": "remove", "strip_hashtags": True},
    {"emoji": "text", "emoticons": "text", "max_punct_repeat": 1, "remove_repost_marker": True},
    {"emoji": "text", "emoji_language": "zh", "max_length": 6},
    {"opencc": "tw2sp", "max_length": 4},
    {"opencc": "hk2s", "remove_mentions": False},
    {"remove_emails": False, "remove_urls": False, "strip_hashtags": True},
    {"opencc": None, "halfwidth": False, "lowercase": False, "collapse_whitespace": False, "remove_invisible": False},
]
PROPERTY_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("options", OPTION_SETS, ids=[json.dumps(o, ensure_ascii=True) for o in OPTION_SETS])
@PROPERTY_SETTINGS
@given(texts=st.lists(tricky_text, max_size=6))
def test_idempotent_and_batch_equals_one_by_one(options, texts):
    cleaner = Cleaner(**options)
    once = cleaner.clean_batch(texts)
    assert cleaner.clean_batch(once) == once
    assert once == [cleaner(t) for t in texts]


@pytest.mark.parametrize("options", OPTION_SETS, ids=[json.dumps(o, ensure_ascii=True) for o in OPTION_SETS])
@PROPERTY_SETTINGS
@given(text=st.text(st.characters(exclude_categories=()), max_size=40))
def test_total_on_any_unicode(options, text):
    """Lone surrogates, controls, combining marks, RTL, astral planes: always a str, idempotent, valid UTF-8."""
    cleaner = Cleaner(**options)
    out = cleaner(text)
    assert isinstance(out, str)
    assert cleaner(out) == out
    out.encode("utf-8")  # no lone surrogate survives


@pytest.mark.parametrize("bad", [5, b"bytes", ["list"]])
def test_non_str_is_a_type_error(bad):
    with pytest.raises(TypeError, match=type(bad).__name__):
        Cleaner()(bad)
    with pytest.raises(TypeError, match="item 1"):
        Cleaner().clean_batch(["ok", bad])


def test_clean_batch_wants_a_list_not_a_str():
    with pytest.raises(TypeError, match="single|one str"):
        Cleaner().clean_batch("abc")


def _adversarial(size: int) -> str:
    pieces = ["@" * 1000, "a" * 5000 + "@", "http://" * 300, "#" * 2000 + "a", "[" * 2000, "www." * 500,
              " " * 3000, "@a." * 1000, "http://a@b.c//@" * 200, "乾" * 2000, "😂\u200d" * 1000, "a@" * 1000,
              "x" * 70 + "@b.com", "t.cn/" * 500, "ｈｔｔｐ：／／" * 200, "\ud800" * 100, "\u20e3" * 500]
    unit = "".join(pieces)
    return (unit * (size // len(unit) + 1))[:size]


def test_ten_megabyte_adversarial_string_is_linear():
    text = _adversarial(10_000_000)
    start = time.perf_counter()
    out = Cleaner()(text)
    assert time.perf_counter() - start < 8.0
    assert isinstance(out, str) and len(out) < len(text)


@pytest.mark.slow
@pytest.mark.parametrize("options", OPTION_SETS[1:], ids=[json.dumps(o, ensure_ascii=True) for o in OPTION_SETS[1:]])
def test_ten_megabyte_adversarial_string_every_option_set(options):
    text = _adversarial(10_000_000)
    start = time.perf_counter()
    Cleaner(**options)(text)
    assert time.perf_counter() - start < 20.0


@pytest.mark.parametrize("piece", ["@", "a@", "#a", "[", "http://.", "@a.", " ", "www.a", "x.", "-x@y.com."])
def test_long_runs_of_one_pattern_are_fast(piece):
    text = piece * (1_000_000 // len(piece))
    for options in ({}, {"strip_hashtags": True, "emoticons": "remove", "max_punct_repeat": 1}):
        start = time.perf_counter()
        Cleaner(**options).clean_batch([text, text])
        assert time.perf_counter() - start < 5.0, (piece, options)


# ---- API -----------------------------------------------------------------------------------------------------------
def test_report_lists_empty_and_changed_texts():
    report = Cleaner().clean_batch_report(["好", "http://t.cn/abc", "開心", "", "@某人"])
    assert report.texts == ["好", "", "开心", "", ""]
    assert report.empty_indices == [1, 3, 4]
    assert report.changed_indices == [1, 2, 4]


def test_options_round_trip_through_json():
    cleaner = Cleaner(emoji="text", emoji_language="zh", opencc="tw2sp", max_length=140, strip_hashtags=True)
    saved = json.loads(json.dumps(cleaner.to_dict()))
    assert saved["version"] == 2 and saved["max_length"] == 140
    assert Cleaner.from_dict(saved) == cleaner
    assert Cleaner.from_dict({}) == Cleaner()
    assert Cleaner(opencc="none").opencc is None and Cleaner.from_dict({"opencc": None}).opencc is None


@pytest.mark.parametrize("options,message", [
    ({"version": 1, "lowercase": True, "colour": "red"}, "colour"),
    ({"version": 99}, "version 99"),
])
def test_from_dict_rejects_what_it_does_not_know(options, message):
    with pytest.raises(ValueError, match=message):
        Cleaner.from_dict(options)


@pytest.mark.parametrize("options,message", [
    ({"opencc": "t2x"}, "opencc='t2x'"),
    ({"emoji": "delete"}, "emoji='delete'"),
    ({"emoticons": "drop"}, "emoticons='drop'"),
    ({"emoji_language": "xx"}, "emoji_language='xx'"),
    ({"max_length": 0}, "max_length=0"),
    ({"max_length": 1.5}, "max_length=1.5"),
    ({"max_punct_repeat": True}, "max_punct_repeat=True"),
    ({"lowercase": "yes"}, "lowercase='yes'"),
])
def test_bad_options_name_the_bad_value(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Cleaner(**options)


def test_cleaner_pickles_without_its_compiled_state():
    cleaner = Cleaner(emoji="remove", max_length=10)
    cleaner("warm up 開心")  # compiles the plan
    data = pickle.dumps(cleaner)
    assert b"re.Pattern" not in data and len(data) < 1000
    copy = pickle.loads(data)
    assert copy == cleaner and hash(copy) == hash(cleaner)
    assert copy("😂開心 http://t.cn/x") == cleaner("😂開心 http://t.cn/x") == "开心"


def test_batches_holding_every_separator_fall_back_to_one_by_one():
    nasty = "".join(cleaning._SEPARATORS) + " 開心 http://t.cn/x"
    texts = [nasty, "電影", nasty]
    assert Cleaner().clean_batch(texts) == [Cleaner()(t) for t in texts]
    assert Cleaner()("電影") == "电影"


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "regex"])
def test_a_batch_cleans_alike_in_slices_of_any_size(monkeypatch, compiled):
    """clean_batch joins ``_SLICE`` texts at a time: flags, Latin and other cased letters, the separator fallback and
    a last slice of one text work in every slice; astral letters and CJK (one coarse range in the regex of steps 1-2)
    are checked exactly. Alike with the compiled steps 1-2 and with their regex."""
    if not compiled:
        monkeypatch.setattr(cleaning, "_compiled", None)
    nasty = "".join(cleaning._SEPARATORS) + " 開心"
    texts = ["ＡＢＣ 電影", "Ⅰ ABC", nasty, "乾清宮 @某人: http://t.cn/X", "😂乾隆😂時代（好）", "\U00010400 ABC",
             "\U0002005e 𠀀 X", "x", "//@a::", "@abc回复@def ：x"]
    whole = Cleaner().clean_batch(texts)
    assert whole == [Cleaner()(t) for t in texts]
    assert whole[:2] + whole[3:] == ["abc 电影", "Ⅰ abc", "干清宫", "😂乾隆😂时代(好)", "\U00010400 abc", "\U0002003e 𠀀 x",
                                     "x", ":", "x"]
    for size in (1, 2, 3, 4):
        monkeypatch.setattr(cleaning, "_SLICE", size)
        assert Cleaner().clean_batch(texts) == whole, size


def test_the_compiled_steps_take_the_plan_s_tables():
    """toolkit._cleaning_scan.chars: the same object back when nothing is replaced, flagged texts counted across
    separators (astral ones too), multi-character and empty replacements, surrogates, collapsed spaces, and a clear
    error for tables of the wrong size."""
    scan = pytest.importorskip("toolkit._cleaning_scan")
    table = {"A": "a", "İ": "i\u0307", "\u200b": "", "\ud800": "\ufffd", "（": "(", "C": "c", "D": "d",
             "\U0002f800": "丽"}
    tables = cleaning._compiled_tables(table, {"乾", "D", "\U0002000b"})
    text = "plain 文本 😂"
    assert scan.chars(text, "", *tables)[0] is text
    out, flagged = scan.chars("x\ufdd0乾乾A\ufdd0İ\u200b（😂\ud800\ufdd0\U0002f800\ufdd0\U0002000b", "\ufdd0", *tables)
    assert out == "x\ufdd0乾乾a\ufdd0i\u0307(😂\ufffd\ufdd0丽\ufdd0\U0002000b"
    assert flagged == [1, 4]
    assert scan.chars("BCD\ufdd0BCD", "\ufdd0", *tables) == ("BcD\ufdd0BcD".replace("D", "d"), [0, 1])
    with pytest.raises(ValueError, match="16384"):
        scan.chars(text, "", bytes(0x10000), *tables[1:])
    with pytest.raises(ValueError, match="one character"):
        scan.chars(text, "ab", *tables)
    # collapse: runs of spaces (also mapped ones) become one, the ends of every text lose theirs
    late = cleaning._compiled_tables({"\xa0": " "}, set())
    assert scan.chars("  a \xa0 b \ufdd0 \ufdd0c\xa0", "\ufdd0", *late, True) == ("a b\ufdd0\ufdd0c", [])
    assert scan.chars("a  b", "", *late) == ("a  b", [])
    single = "a b\ufdd0c"
    assert scan.chars(single, "\ufdd0", *late, True)[0] is single
    with pytest.raises(ValueError, match="other than a space"):
        scan.chars(single, " ", *late, True)
    kinds = bytearray(tables[0])
    kinds[ord("B") >> 2] |= 1 << (ord("B") & 3) * 2  # mapped (two bits per character), but no replacement
    with pytest.raises(TypeError, match="U\\+0042"):
        scan.chars("AB", "", bytes(kinds), *tables[1:])


def test_private_use_text_does_not_break_case_sparing():
    text = "\uf8ffⅠ ABC \ue000Σ"
    assert Cleaner()(text) == "\uf8ffⅠ abc \ue000Σ"
    assert Cleaner().clean_batch([text, "Ⅱ X"]) == ["\uf8ffⅠ abc \ue000Σ", "Ⅱ x"]


def test_import_is_light():
    code = ("import sys, time; t = time.perf_counter(); import toolkit.cleaning; t = time.perf_counter() - t; "
            "heavy = [m for m in ('torch', 'transformers', 'datasets', 'numpy', 'opencc', 'emoji') "
            "if m in sys.modules]; print(heavy, t)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    heavy, seconds = out.rsplit(" ", 1)
    assert heavy == "[]", out
    assert float(seconds) < 1.0


def test_cased_blocks_hold_every_cased_character():
    import unicodedata

    lat, other = cleaning._cased()
    full = {c for c in range(0x110000) if not 0xD800 <= c < 0xE000 and chr(c).lower() != chr(c)}
    assert set(lat) | set(other) == full
    assert all("LATIN" in unicodedata.name(chr(c)) for c in lat)


def test_character_classes_match_python():
    spaces = {c for c in range(0x110000) if chr(c).isspace()}
    assert set(cleaning._codes(cleaning._WHITESPACE)) | {0x20} == spaces
    invisible = set(cleaning._codes(cleaning._INVISIBLE))
    assert not invisible & spaces and not invisible & {0x200C, 0x200D, 0xFE0E, 0xFE0F, 0x20E3}


# ---- OpenCC --------------------------------------------------------------------------------------------------------
def test_opencc_quirks_are_settled():
    if cleaning._t2s_changeable()[1]:  # the OpenCC whose tables were checked (1.4.2) shows why settling is needed
        assert cleaning._converter("t2s").convert("乾清宮") == "乾清宫"
        assert cleaning._converter("t2s").convert("乾清宫") == "干清宫"
        assert cleaning._converter("tw2sp").convert("尼日尔") == "尼日尔尔"  # tw2sp alone never settles
    cleaner, tw = Cleaner(), Cleaner(opencc="tw2sp")
    for text in ("乾清宮", "薴", "尼日爾河", "什麼", "幺麼小丑"):
        for c in (cleaner, tw, Cleaner(opencc="hk2s")):
            assert c(c(text)) == c(text), (text, c.opencc)
    assert cleaner("薴") == "苎" and tw("尼日尔河") == "尼日尔河" and tw("什麼") == "什么"
    assert Cleaner(opencc="hk2s")("NUL\x00後面") == "nul后面"


def test_phrase_only_characters_are_right_for_this_opencc():
    changeable, complete = cleaning._t2s_changeable()
    plan = Cleaner()._plan()
    assert plan.convert_all is not complete  # an OpenCC whose tables were not checked converts every text
    if complete:
        t2s = cleaning._converter("t2s")
        assert all(t2s.convert(c) == c for c in cleaning._T2S_PHRASE_ONLY)
        phrases = {"英哩": "英里", "土坏": "土坯", "深沈": "深沉", "甦醒": "苏醒", "瞭解": "了解", "藉口": "借口",
                   "衹得": "只得", "反覆": "反复"}
        for raw, simplified in phrases.items():
            assert t2s.convert(raw) == simplified and Cleaner()(raw) == simplified


# ---- the real posts ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smp_posts() -> list[str]:
    assert SMP_DIR.is_dir(), f"the SMP2020-EWECT data must be at {SMP_DIR} (beside the checkout)"
    posts = []
    for name in SMP_FILES:
        posts += [record["content"] for record in json.loads((SMP_DIR / name).read_text(encoding="utf-8"))]
    assert len(posts) == 20606
    return posts


@pytest.fixture(scope="module")
def smp_cleaned(smp_posts) -> list[str]:
    return Cleaner().clean_batch(smp_posts)


URL_LEFT = re.compile(r"(?i)(?:https?|ftp)[:：]//|www\.[a-z0-9-]+\.[a-z]|(?<![a-z0-9.-])t\.cn/[a-z0-9]")
EMAIL_LEFT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
MENTION_LEFT = re.compile(r"@[\w\-·]")
FULLWIDTH_LEFT = re.compile("[\uff01-\uff5e\u3000]")


def test_real_posts_lose_links_emails_mentions_and_fullwidth(smp_posts, smp_cleaned):
    assert len(smp_cleaned) == len(smp_posts)
    assert sum("http" in p or "t.cn/" in p for p in smp_posts) > 1000 and sum("@" in p for p in smp_posts) > 5000
    for pattern in (URL_LEFT, EMAIL_LEFT, MENTION_LEFT, FULLWIDTH_LEFT):
        left = [t for t in smp_cleaned if pattern.search(t)]
        assert not left, (pattern.pattern, left[:3])


def test_real_posts_are_fully_simplified(smp_posts, smp_cleaned):
    t2s = cleaning._converter("t2s")
    assert sum(t2s.convert(p) != p for p in smp_posts) > 300
    assert [t for t in smp_cleaned if t2s.convert(t) != t] == []


def test_real_posts_keep_their_emoji(smp_posts, smp_cleaned):
    import emoji

    maybe = re.compile("[^\u0000-\u00a8\u00aa-\u00ad\u00af-\u1fff\u3000-\u9fff\uff00-\uffef]")
    pairs = [(p, c) for p, c in zip(smp_posts, smp_cleaned) if maybe.search(p)]
    assert sum(emoji.emoji_count(p) for p, _ in pairs) > 500
    assert [(p, c) for p, c in pairs if emoji.emoji_count(p) != emoji.emoji_count(c)] == []


def test_real_posts_batch_equals_one_by_one_and_is_idempotent(smp_posts, smp_cleaned):
    cleaner = Cleaner()
    assert [cleaner(p) for p in smp_posts] == smp_cleaned
    assert cleaner.clean_batch(smp_cleaned) == smp_cleaned


def test_real_posts_converting_only_flagged_texts_changes_nothing(smp_posts, smp_cleaned):
    """OpenCC runs only on texts holding a character it can change; converting every text gives the same."""
    plan = cleaning._Plan({f: getattr(Cleaner(), f) for f in Cleaner.__dataclass_fields__})
    plan.convert_all = True
    assert plan.run(list(smp_posts)) == smp_cleaned


def test_real_posts_joined_opencc_equals_one_call_per_post(smp_posts):
    for config in ("t2s", "tw2sp", "hk2s"):
        conv = cleaning._converter(config)
        assert cleaning._convert(config, smp_posts) == [conv.convert(p) for p in smp_posts], config


@pytest.mark.parametrize("options", [{"emoji": "remove", "emoticons": "remove", "strip_hashtags": True},
                                     {"emoji": "text", "emoticons": "text", "max_length": 140}])
def test_real_posts_other_modes_leave_no_emoji_and_are_idempotent(smp_posts, options):
    import emoji

    cleaner = Cleaner(**options)
    out = cleaner.clean_batch(smp_posts)
    assert [t for t in out if emoji.emoji_count(t)] == []
    assert [t for t in out if re.search(r"\[(?!\d+\])\w{1,8}\]", t)] == []
    assert cleaner.clean_batch(out) == out
    if "max_length" in options:
        assert max(map(len, out)) == 140


def test_datasets_map_with_two_processes(smp_posts):
    datasets = pytest.importorskip("datasets")  # not in the torch-free install

    cleaner = Cleaner()
    ds = datasets.Dataset.from_dict({"id": list(range(400)), "content": smp_posts[:400]})

    def clean_column(batch):
        report = cleaner.clean_batch_report(batch["content"])
        return {"content": report.texts, "empty": [i in set(report.empty_indices) for i in range(len(report.texts))]}

    mapped = ds.map(clean_column, batched=True, batch_size=64, num_proc=2)
    assert mapped["content"] == cleaner.clean_batch(smp_posts[:400])
    assert mapped["id"] == list(range(400))
    assert sum(mapped["empty"]) == sum(1 for t in mapped["content"] if not t)
