"""Issue 16 (cleaning v2), one test per point: repost colons, idempotence of emoji names and tw2sp, mentions, the
study's normalisation as a preset, missing values, a pure-Python opencc, saved versions, help(Cleaner), and loops
that say when they do not settle. Each of these failed on the cleaner before the issue."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("toolkit") is None:  # a plain `pytest tests/...` from a checkout without installing
    sys.path.insert(0, str(ROOT))

from toolkit import cleaning  # noqa: E402
from toolkit.cleaning import Cleaner  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SMP_FILES = ("usual_eval_labeled.json", "usual_test_labeled.json", "virus_train.json", "virus_eval_labeled.json",
             "virus_test_labeled.json")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def smp_posts() -> list[str]:
    posts = []
    for name in SMP_FILES:
        posts += [r["content"] for r in json.loads((DATA / "smp2020_ewect" / name).read_text(encoding="utf-8"))]
    assert len(posts) == 20606
    return posts


def settled(cleaner: Cleaner, text: str) -> str:
    out = cleaner(text)
    assert cleaner(out) == out, (text, out, cleaner(out))
    assert cleaner.clean_batch([text, "x", text]) == [out, "x", out]
    return out


# ---- repost colons -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("//@世界末日旗旗子 ://@V闪闪 :这是中国疾病预防控制中心", "这是中国疾病预防控制中心"),
    ("？？？傻逼//@照烧盐 :傻逼//@_Synchronicity :千里送病毒[太开心]", "???傻逼 傻逼 千里送病毒[太开心]"),
    ("@张三 ：你好", "你好"),
    ("@张三   :你好", "你好"),
])
def test_a_colon_after_spaces_goes_with_the_mention(text, expected):
    assert settled(Cleaner(), text) == expected


def test_real_posts_keep_no_repost_colon(smp_posts):
    cleaned = Cleaner().clean_batch(smp_posts)
    assert sum(bool(re.search(r"@[\w\-·]+ +[:：]", p)) for p in smp_posts) > 200
    left = [c for p, c in zip(smp_posts, cleaned) if re.search(r"@[\w\-·]+ +[:：]", p) and re.search(r"(^|\s):", c)]
    assert left == []


# ---- idempotence: producers (emoji names, OpenCC) before the steps that decide --------------------------------------
@pytest.mark.parametrize("options,text,expected", [
    ({"emoji": "text", "emoji_language": "zh"}, "🇮🇩", ":印度尼西亚:"),
    ({"emoji": "text", "emoji_language": "ja"}, "😂🇮🇩", ":嬉し泣き::旗_インドネシア:"),
    ({"opencc": "tw2sp"}, "t.cn/隨身碟", "盘"),  # tw2sp writes U盘, which makes the link t.cn/u
    ({"opencc": "tw2sp", "lowercase": False}, "看t.cn/隨身碟", "看 盘"),
])
def test_producers_are_settled(options, text, expected):
    assert settled(Cleaner(**options), text) == expected


def test_every_emoji_name_is_settled_in_japanese():
    emoji = pytest.importorskip("emoji")
    names = list(emoji.EMOJI_DATA)
    assert len(names) > 5000
    cleaner = Cleaner(emoji="text", emoji_language="ja")
    out = cleaner.clean_batch(names)
    assert [(a, b) for a, b in zip(out, cleaner.clean_batch(out)) if a != b] == []


def test_real_posts_with_japanese_names_are_settled(smp_posts):
    cleaner = Cleaner(emoji="text", emoji_language="ja")
    out = cleaner.clean_batch(smp_posts)
    assert cleaner.clean_batch(out) == out


# ---- mentions ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("我就想问一下@杭州市民卡你们是怎么做到过去一周不管什么时候打你们客服电话", "我就想问一下 杭州市民卡你们是怎么做到过去一周不管什么时候打你们客服电话"),
    ("@一二三四五六七八九十一二三四五:好", "好"),  # 15 CJK characters: 30 units, a name
    ("@一二三四五六七八九十一二三四五六:好", "一二三四五六七八九十一二三四五六:好"),  # 16: no name is that long
    ("排长队改签】（来自 @一点资讯）http://t.cn/A6P7LZ9O ??", "排长队改签】 ??"),
    ("然消失。  （分享自 @澎湃新闻） http://t.cn/x", "然消失。"),
    ("医学观察。（@人民日报 ）", "医学观察。"),
    ("@ :哈哈哈哈", "哈哈哈哈"),
    ("手动@ 上海市政府", "手动 上海市政府"),
    ("致敬//@", "致敬"),
    ("写信给 @example.com 吧", "写信给 @example.com 吧"),  # still never a mention
])
def test_mentions(text, expected):
    assert settled(Cleaner(), text) == expected


def test_real_posts_lose_no_long_cjk_runs_to_a_mention(smp_posts):
    cleaned = Cleaner().clean_batch(smp_posts)
    lost = []
    for raw, out in zip(smp_posts, cleaned):
        for m in re.finditer(r"@([\w\-·]+)", raw):
            if len(CJK.findall(m.group(1))) > 15 and m.group(1)[:16] not in out:
                lost.append(raw)
    assert sum(len(CJK.findall(m)) > 15 for p in smp_posts for m in re.findall(r"@([\w\-·]+)", p)) >= 10
    assert lost == []
    assert [c for c in cleaned if "@" in c and not re.search(r"@[a-z0-9\-]+\.", c)] == []
    emptied = [c for p, c in zip(smp_posts, cleaned) if "( )" in c and not re.search(r"[(（]\s+[)）]", p)]
    assert sum(bool(re.search(r"[(（]\s*(来自|分享自)?\s*@", p)) for p in smp_posts) >= 4 and emptied == []


# ---- the study's normalisation -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("[哈哈]【标题】〈书〉«x»", "《哈哈》《标题》《书》《x》"),
    ("一、二、三", "一,二,三"),
    ("“你好”「世界」", '"你好""世界"'),
    ("①②⑩ x² H₂O", "一二十 x2 h2o"),
    ("［新型肺炎］", "《新型肺炎》"),
    ("猛糊脊拾乾", "勐煳嵴十干"),  # HanLP's own choices
    ("開心 轉發微博 http://t.cn/x", "开心"),
])
def test_hanlp_chartable_preset(text, expected):
    assert settled(cleaning.Cleaner.preset("hanlp_chartable"), text) == expected


def test_hanlp_chartable_preset_reproduces_the_study_on_virus_train():
    raw = json.loads((DATA / "smp2020_ewect" / "virus_train.json").read_text(encoding="utf-8"))
    ref = {r["id"]: r["content"] for r in json.loads(
        (DATA / "smp2020_ewect_reference" / "virus_train_cleaned.json").read_text(encoding="utf-8"))}
    cleaner = Cleaner.preset("hanlp_chartable")
    out = cleaner.clean_batch([r["content"] for r in raw])
    pairs = [(o, ref[r["id"]]) for r, o in zip(raw, out) if r["id"] in ref]
    same = sum(a == b for a, b in pairs)
    assert len(pairs) == 8592 and same / len(pairs) >= 0.99, same
    assert Cleaner().clean_batch([r["content"] for r in raw]) != out  # opt-in: the defaults stay


def test_hanlp_table_is_a_projection_and_overrides_apply():
    table = cleaning._hanlp_table()
    assert len(table) > 4000
    assert all(table.get(b, b) == b for b in table.values())
    assert Cleaner.preset("hanlp_chartable", max_length=3)("轉發微博開心快樂") == "开心快"
    with pytest.raises(ValueError, match="unknown preset"):
        Cleaner.preset("study")


@pytest.mark.parametrize("config", ["t2s", "tw2sp", "hk2s"])
def test_char_table_with_opencc_settles(config):
    cleaner = Cleaner(char_table="hanlp", opencc=config)
    for text in ("苎薴苧", "乾清宮", "猛糊脊", "尼日爾河", "剙働堦槼蓡贑", "鍾"):
        settled(cleaner, text)


# ---- install, a same-named opencc, missing values, saved versions, help ---------------------------------------------
def test_a_pure_python_opencc_is_named_in_a_warning(monkeypatch):
    fake = types.ModuleType("opencc")

    class OpenCC:
        def __init__(self, config):
            self.config = config

        def convert(self, text):
            return text.replace("開", "开")

    fake.OpenCC = OpenCC
    monkeypatch.setitem(sys.modules, "opencc", fake)
    cleaning._converter.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="opencc-python-reimplemented"):
            assert cleaning._convert("t2s", ["開心", "x"]) == ["开心", "x"]
    finally:
        cleaning._converter.cache_clear()


def test_missing_values_policy():
    pd = pytest.importorskip("pandas")
    series = pd.Series(["開心", None, float("nan"), "好"], index=["a", "b", "c", "d"], dtype=object)
    with pytest.raises(TypeError, match=r"item 1 \(index label 'b'\) is missing"):
        Cleaner().clean_batch(series)
    with pytest.raises(TypeError, match="missing"):
        Cleaner()(None)
    assert Cleaner(missing="empty").clean_batch(series) == ["开心", "", "", "好"]
    kept = Cleaner(missing="keep").clean_batch(series)
    assert kept[0] == "开心" and kept[1] is None and kept[2] != kept[2] and kept[3] == "好"
    assert Cleaner(missing="keep")(None) is None
    assert Cleaner(missing="empty").clean_batch(pd.Series(["開心", None])) == ["开心", ""]  # pandas' own str dtype
    report = Cleaner(missing="keep").clean_batch_report(["x", None, ""])
    assert report.empty_indices == [2] and report.changed_indices == []


def test_to_dict_records_the_opencc_and_emoji_versions():
    saved = Cleaner().to_dict()
    assert saved["versions"]["opencc"] and saved["versions"]["emoji"]
    assert Cleaner.from_dict(json.loads(json.dumps(saved))) == Cleaner()
    old = dict(saved, versions={"opencc": "0.0.1", "emoji": saved["versions"]["emoji"]})
    with pytest.warns(UserWarning, match="opencc 0.0.1"):
        Cleaner.from_dict(old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Cleaner.from_dict(dict(old, opencc=None))  # a version it does not use is not worth a warning
        Cleaner.from_dict({"version": 1, "lowercase": True})  # a config saved before the versions were


def test_help_shows_each_option():
    doc = Cleaner.__doc__
    for f in cleaning.fields(Cleaner):
        assert f"``{f.name}``" in doc and f.metadata["help"] in doc


def test_a_pass_that_never_settles_is_an_error(monkeypatch):
    plan = Cleaner(opencc=None)._plan()
    flip = {"a": "b", "b": "a"}
    monkeypatch.setattr(type(plan), "_per_text", lambda self, texts, flags, touched, first: (
        touched.update(range(len(texts))), [flip.get(t, t) for t in texts])[1])
    with pytest.raises(RuntimeError, match="still changes after 10 passes"):
        plan.run(["a"])


@pytest.mark.parametrize("config", cleaning.OPENCC_CONFIGS)
def test_an_ideographic_description_sequence_is_converted_on_its_own(config):
    """OpenCC reads ⿰ and the two (⿲, ⿳: three) characters after it as one unit, also across the separator that
    joins a batch: "乾⿴" + sep + "乾" left the second 乾 alone, so ["乾⿴", "乾"] cleaned to ["干⿴", "乾"], and
    again to ["干⿴", "干"] (found by hypothesis)."""
    conv = cleaning._converter(config)
    ids = [chr(c) for c in range(0x2FF0, 0x3000)]
    texts = [t for d in ids for t in ("乾" + d, "乾", d + "臺", "乾", d, "x灣")] + ["乾隆"]
    assert cleaning._convert(config, texts) == [conv.convert(t) for t in texts]
    cleaner = Cleaner(opencc=config)
    once = cleaner.clean_batch(["乾⿴", "乾"])
    assert once == [cleaner("乾⿴"), cleaner("乾")] == cleaner.clean_batch(once)
