"""Cleaning of raw Weibo posts (and other short Chinese social-media text) before classification.

``Cleaner`` is a frozen dataclass of switchable steps: ``Cleaner()(text)`` cleans one text,
``Cleaner().clean_batch(texts)`` a list (much faster: each step makes one pass over the joined batch, and
OpenCC only sees the texts it can change), ``clean(text, **options)`` is the one-off form, and
``to_dict()``/``from_dict()`` keep the options in a model's ``config.json`` so that inference cleans exactly
like training did. Only the standard library is imported here; ``opencc`` and ``emoji`` on first use.

Steps, in the order they run (each switchable; defaults in brackets):

1. Lone surrogates become U+FFFD (always: they cannot be written as UTF-8). Invisible characters are
   deleted [``remove_invisible=True``]: controls other than whitespace, soft hyphen, zero-width space, word
   joiner, bidi marks/embeddings/isolates, BOM. ZWJ, ZWNJ and variation selectors stay (emoji need them).
2. Full-width to half-width [``halfwidth=True``]: U+FF01-U+FF5E become their ASCII forms and the
   ideographic space U+3000 a space. These full-width forms include the Chinese punctuation ，！？：；（）～,
   which therefore becomes , ! ? : ; ( ) ~ as in the reference pipelines; the CJK punctuation 。、《》「」『』
   【】 and “”‘’—… is kept. NFKC is not used (it would also rewrite ①, ㎡, ﬁ, ², ...).
3. Latin letters lower-cased [``lowercase=True``]; Greek, Cyrillic, Roman numerals (Ⅰ) etc. keep their case.
4. Emoji [``emoji="keep"``]: ``"remove"`` deletes them; ``"text"`` writes their names with the ``emoji``
   package (😂 -> ``:face_with_tears_of_joy:``, or ``:笑哭了:`` with ``emoji_language="zh"``). Skin tones
   and ZWJ sequences are one emoji; stray components (a lone regional indicator) are dropped in both modes.
5. ``#话题#`` markers removed, the words kept [``strip_hashtags=False``]: a run of ``#`` followed by a
   non-space character opens a topic, the next ``#`` run closes it.
6. Repeated punctuation squeezed to at most N [``max_punct_repeat=None``]; ``/`` is never squeezed.
7. Links [``remove_urls=True``]: http/https/ftp links, bare ``www.`` links and Weibo short links ``t.cn/...``.
   A link is ASCII, so it ends at whitespace or at any Chinese character or punctuation glued to it;
   trailing ``.,;:!?`` are left in the text.
8. @mentions [``remove_mentions=True``]: ``@`` and a user name of letters, digits, ``_``, ``-`` or ``·``
   (what Weibo allows; ``·`` occurs in real names such as ``W·L白龙站``), ending at whitespace, other
   punctuation (ASCII or full-width), a colon or the end of the text. A colon right after the name goes
   with it, and the repost and reply forms ``//@用户名:`` and ``回复@用户名:`` go away whole. An ``@``
   followed by a domain (``x@example.com``, ``@example.com``) is never a mention.
9. E-mail addresses [``remove_emails=True``].
10. Weibo bracket emoticons [``emoticons="keep"``]: ``"remove"``, or ``"text"`` (``[哈哈]`` -> ``哈哈``). An
    emoticon is ``[``, 1-8 letters or digits (not all digits), ``]``.
    Links, mentions, e-mails and emoticons are replaced by one space, never by nothing: gluing the text
    around them together could form a new link or mention, and cleaning would not be idempotent.
11. Whitespace collapsed to single spaces [``collapse_whitespace=True``] (and stripped, step 14).
12. Traditional -> simplified Chinese with OpenCC [``opencc="t2s"``; ``"tw2sp"``, ``"hk2s"`` or None].
    OpenCC alone is not idempotent (薴 -> 苧 -> 苎, 乾清宮 -> 乾清宫 -> 干清宫; tw2sp even grows 尼日尔 ->
    尼日尔尔 -> ...), so t2s is repeated until it changes nothing, and tw2sp/hk2s only convert texts that
    still hold characters t2s would change.
13. ``转发微博`` (Weibo's default repost text) removed [``remove_repost_marker=False``].
14. Strip [``collapse_whitespace=True``]. 15. Cut to ``max_length`` characters [None; the SMP2020 study: 140].

Cleaning is idempotent for every option set (``c(c(x)) == c(x)``) and total: every ``str`` gives a ``str`` in
linear time; anything else raises ``TypeError``. A text that becomes empty comes back as ``""`` at its index,
never dropped; ``clean_batch_report`` lists those indices.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache

__all__ = ["Cleaner", "CleanReport", "clean", "OPENCC_CONFIGS", "EMOJI_MODES", "EMOTICON_MODES", "EMOJI_LANGUAGES"]

OPENCC_CONFIGS = ("t2s", "tw2sp", "hk2s")
EMOJI_MODES = ("keep", "remove", "text")
EMOTICON_MODES = ("keep", "remove", "text")
EMOJI_LANGUAGES = ("en", "zh", "es", "ja", "ko", "pt", "it", "fr", "de", "fa", "id", "ru", "tr", "ar")
_DICT_VERSION = 1

# ---- characters ----------------------------------------------------------------------------------------------------
# Batch separators: noncharacters that no step treats as text (not \w, not \s, not punctuation) and that OpenCC
# passes through unchanged; a batch is joined with the first one it does not contain.
_SEPARATORS = tuple(chr(c) for c in range(0xFDD0, 0xFDF0))
_SEP_CLASS = "\ufdd0-\ufdef"
_INVISIBLE = ("\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f"  # controls that are not whitespace
              "\u00ad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb")
_WHITESPACE = "\t-\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"  # str.isspace() minus " "
# The most frequent full-width punctuation is mapped with one str.replace each over the whole batch, after the
# link/mention/e-mail/topic/emoticon steps (none of which these characters can start, end or extend), instead of
# one call per character in the early pass.
_LATE_FULLWIDTH = "，！？"
# Characters that t2s changes only inside phrases holding no other convertible character (TSPhrases of OpenCC
# 1.4.2: 明瞭 -> 明了, 沈默 -> 沉默, 反覆 -> 反复, 英哩 -> 英里, ...). All other convertible characters are found
# at run time by converting every CJK code point once. With another OpenCC version every text is converted.
_T2S_PHRASE_ONLY = "哩坏沈甦瞭藉衹覆"
_OPENCC_TABLES_CHECKED = ("1.4.2",)
_T2S_PROBE = ((0x2E80, 0xA000), (0xF900, 0xFB00), (0x20000, 0x32400))
# Blocks holding every character that has a lower-case mapping (a test checks this against a full scan).
_CASED_BLOCKS = ((0x0000, 0x3000), (0xA600, 0xAC00), (0xFF00, 0x10000), (0x10400, 0x10E00), (0x11800, 0x11A00),
                 (0x16E00, 0x16F00), (0x1E900, 0x1EA00))
# Astral ranges are matched coarsely and checked exactly in Python: a regex class with many astral ranges is
# scanned range by range for every character of the text.
_ASTRAL_CASED = "\U00010400-\U0001e9ff"
_ASTRAL_CJK = "\U00020000-\U000323ff"
_SQUEEZE_PUNCT = ("!\"#$%&'()*+,\\-.:;<=>?@\\[\\\\\\]^_`{|}~\u00b7\u2010-\u2027\u2030-\u203b\u203d-\u2048\u204a-\u205e"
                  "\u3001-\u3003\u3008-\u3011\u3014-\u301f\ufe10-\ufe19\ufe30-\ufe6b\uff01-\uff0e\uff1a-\uff20"
                  "\uff3b-\uff40\uff5b-\uff65")

# ---- patterns (all linear: no nested ambiguous quantifiers; unbounded runs are followed by nothing that fails) --
_URL_CHARS = r"A-Za-z0-9\-._~:?#!$&*+,;=%"  # and "/", which never eats the "//" of "//@name"
_URL_PATH = rf"[{_URL_CHARS}]*(?:/(?!/@)[{_URL_CHARS}]*)*(?<![.,;:!?])"
_URL_WWW = rf"\.[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+(?:[/?#]{_URL_PATH})?"
# any case; the first character is a class so that the engine skips quickly to candidates
_URL_ANY_CASE = (rf"[hHfFwWtT](?:(?<=[hH])(?i:ttps?)[:：]//{_URL_PATH}|(?<=[fF])(?i:tp)[:：]//{_URL_PATH}"
                 rf"|(?<=[wW])(?i:ww){_URL_WWW}|(?<=[tT])(?<![A-Za-z0-9.\-].)(?i:\.cn)/[A-Za-z0-9]+)")
# lower-cased text: four patterns with literal prefixes, found much faster
_URL_LOWER = (rf"https?[:：]//{_URL_PATH}", rf"ftp[:：]//{_URL_PATH}", rf"www{_URL_WWW}",
              r"t\.cn/(?<![A-Za-z0-9.\-]t\.cn/)[A-Za-z0-9]+")
_DOMAIN = r"(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
_MENTION_REST = rf"@(?!{_DOMAIN})[\w\-\u00b7\u30fb\u0300-\u036f]+(?![\ufe0f\u20e3])[:：]?"
_MENTION = rf"//{_MENTION_REST}|回[复覆復]{_MENTION_REST}|{_MENTION_REST}"
_EMAIL_CHARS = r"A-Za-z0-9._%+\-"
# An address starts where a run of address characters starts (linear time). A run glued to the end of the address
# and leading to another "@" goes with it: "a@b.com_c@d.com" would otherwise leave "_c@d.com" behind, which is an
# address once the first one is gone.
_EMAIL = rf"[{_EMAIL_CHARS}](?<![{_EMAIL_CHARS}].)[{_EMAIL_CHARS}]{{0,63}}@{_DOMAIN}(?:[{_EMAIL_CHARS}]*(?=@))?"
_EMAIL_HINT = rf"@(?<=[{_EMAIL_CHARS}]@)(?={_DOMAIN})"
_EMOTICON = r"\[(?!\d+\])(\w{1,8})\]"
_HASHTAG = rf"#(?<!##)#*([^#\s\ufe0f\u20e3{_SEP_CLASS}][^#{_SEP_CLASS}]*)#+"
_SPACES = re.compile("  +")


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


# ---- OpenCC (lazy) -------------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _converter(config: str):
    """One OpenCC converter per configuration, built on first use."""
    import opencc

    return opencc.OpenCC(config)


def _convert_one(conv, text: str) -> str:
    if "\x00" in text:  # tw2sp/hk2s stop at a NUL (their segmenter uses C strings): convert around it
        return "\x00".join(conv.convert(part) for part in text.split("\x00"))
    return conv.convert(text)


def _convert_many(conv, texts: list[str]) -> list[str]:
    """Convert a list with one OpenCC call on the joined list (a separator stops every OpenCC phrase)."""
    if len(texts) == 1:
        return [_convert_one(conv, texts[0])]
    for sep in _SEPARATORS:
        joined = sep.join(texts)
        if joined.count(sep) == len(texts) - 1:
            out = _convert_one(conv, joined).split(sep)
            if len(out) == len(texts):
                return out
            break
    return [_convert_one(conv, t) for t in texts]


@lru_cache(maxsize=None)
def _t2s_changeable() -> tuple[frozenset, bool]:
    """Characters that t2s may change, and whether that set is known to be complete for this OpenCC."""
    import opencc

    chars = [chr(c) for lo, hi in _T2S_PROBE for c in range(lo, hi)]
    out = _converter("t2s").convert("\n".join(chars)).split("\n")
    if len(out) != len(chars):  # not expected; then every text is converted
        return frozenset(_T2S_PHRASE_ONLY), False
    changeable = {a for a, b in zip(chars, out) if a != b} | set(_T2S_PHRASE_ONLY)
    return frozenset(changeable), getattr(opencc, "__version__", "") in _OPENCC_TABLES_CHECKED


def _t2s_fixpoint(texts: list[str], rounds: int = 8) -> list[str]:
    """Apply t2s until it no longer changes each text (OpenCC's own output is not always a fixpoint)."""
    conv = _converter("t2s")
    cur = _convert_many(conv, texts)
    todo = [i for i, (a, b) in enumerate(zip(texts, cur)) if a != b]
    for _ in range(rounds - 1):
        if not todo:
            break
        nxt = _convert_many(conv, [cur[i] for i in todo])
        still = []
        for i, z in zip(todo, nxt):
            if z != cur[i]:
                cur[i] = z
                still.append(i)
        todo = still
    return cur


# ---- case (lazy) ---------------------------------------------------------------------------------------------------
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


@lru_cache(maxsize=None)
def _latin_upper_re() -> re.Pattern:
    return re.compile(f"[{_ranges(_cased()[0])}]+")


def _latin_lower(text: str) -> str:
    """Lower-case Latin letters only (``str.lower`` would also change Greek, Cyrillic, Ⅰ, ...)."""
    return _latin_upper_re().sub(lambda m: m.group().lower(), text)


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


@lru_cache(maxsize=8192)
def _emoji_name(emoji_text: str, language: str, lower: bool) -> str:
    """The name of one emoji (``emoji.demojize``), without stray components; cached, as posts repeat emoji a lot."""
    import emoji

    text = emoji.demojize(emoji_text, language=language).translate(_emoji_tables()[1])
    return _latin_lower(text) if lower else text


# ---- the options ---------------------------------------------------------------------------------------------------
def _option(default: object, text: str):
    """A field with its help text (the CLI shows it)."""
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

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool" and not isinstance(value, bool):
                raise ValueError(f"Cleaner({f.name}={value!r}): expected True or False.")
        if isinstance(self.opencc, str) and self.opencc.strip().lower() in ("none", ""):
            object.__setattr__(self, "opencc", None)
        if self.opencc is not None and self.opencc not in OPENCC_CONFIGS:
            raise ValueError(f"Cleaner(opencc={self.opencc!r}): unknown OpenCC configuration; use one of "
                             f"{', '.join(map(repr, OPENCC_CONFIGS))}, or None to skip the conversion.")
        for name, allowed in (("emoji", EMOJI_MODES), ("emoticons", EMOTICON_MODES),
                              ("emoji_language", EMOJI_LANGUAGES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Cleaner({name}={getattr(self, name)!r}): use one of "
                                 f"{', '.join(map(repr, allowed))}.")
        for name in ("max_punct_repeat", "max_length"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"Cleaner({name}={value!r}): expected a positive integer, or None to switch it off.")

    def __call__(self, text: str) -> str:
        """Clean one text."""
        if type(text) is not str:
            if not isinstance(text, str):
                raise TypeError(f"Cleaner expects a str, got {type(text).__name__} ({_short(text)}).")
            text = str(text)
        return self._plan().run(text, 1)[0]

    def clean_batch(self, texts: Sequence[str]) -> list[str]:
        """Clean a list of texts: the same results as calling the cleaner on each, many times faster."""
        texts = _check_texts(texts)
        if not texts:
            return []
        plan = self._plan()
        for sep in _SEPARATORS:
            joined = sep.join(texts)
            if joined.count(sep) == len(texts) - 1:
                return plan.run(joined, len(texts), sep, texts)
        return [plan.run(t, 1)[0] for t in texts]  # the batch holds every separator

    def clean_batch_report(self, texts: Sequence[str]) -> CleanReport:
        """Clean a list and report which texts changed and which became empty (and so are ``""``)."""
        texts = _check_texts(texts)
        out = self.clean_batch(texts)
        return CleanReport(texts=out, empty_indices=[i for i, t in enumerate(out) if not t],
                           changed_indices=[i for i, (a, b) in enumerate(zip(texts, out)) if a != b])

    def to_dict(self) -> dict[str, object]:
        """The options as a JSON-ready dict with a format version (for a model's config.json)."""
        return {"version": _DICT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, options: dict[str, object]) -> Cleaner:
        """Rebuild a cleaner from ``to_dict()`` output; unknown keys are an error, missing ones take defaults."""
        if not isinstance(options, dict):
            raise ValueError(f"Cleaner.from_dict expects a dict of options, got {type(options).__name__}.")
        options = dict(options)
        version = options.pop("version", _DICT_VERSION)
        if version != _DICT_VERSION:
            raise ValueError(f"Cleaner.from_dict: options format version {version!r} is not supported (this toolkit "
                             f"reads version {_DICT_VERSION}); use the toolkit version that wrote the config.")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"Cleaner.from_dict: unknown option(s) {unknown}; the options are {known}.")
        return cls(**options)

    def _plan(self) -> _Plan:
        plan = self.__dict__.get("_compiled")
        if plan is None:
            plan = _build_plan(tuple(getattr(self, f.name) for f in fields(self)))
            object.__setattr__(self, "_compiled", plan)
        return plan

    def __getstate__(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # the compiled plan is rebuilt, not pickled

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)


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


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("clean_batch expects a list of str, got one str; call the cleaner on it instead.")
    texts = list(texts)
    if set(map(type, texts)) - {str}:
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"clean_batch: item {i} is a {type(t).__name__} ({_short(t)}), not a str.")
            texts[i] = str(t)  # a str subclass
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
        self.opencc = o["opencc"]
        self.lowercase = o["lowercase"]
        self.collapse = o["collapse_whitespace"]
        self.max_length = o["max_length"]
        self.squeeze = o["max_punct_repeat"]
        # Early pass (steps 1-3), one regex over characters: maps surrogates, invisible characters, rare
        # full-width forms and, when collapsing, whitespace other than " "; flags the texts OpenCC may change (so
        # that OpenCC runs on those only) and the texts holding cased non-Latin letters (Ⅰ, Σ, Д: a batch is
        # lower-cased with one fast str.lower(), and those few texts are cleaned again on their own).
        table = dict.fromkeys(range(0xD800, 0xE000), "\ufffd")
        if o["remove_invisible"]:
            table.update(dict.fromkeys(_codes(_INVISIBLE), ""))
        self.late_fullwidth = []
        if o["halfwidth"]:
            late = "" if self.squeeze else _LATE_FULLWIDTH  # squeezing must see the final punctuation
            for c in range(0xFF01, 0xFF5F):
                if chr(c) in late:
                    self.late_fullwidth.append((chr(c), chr(c - 0xFEE0)))
                else:
                    table[c] = chr(c - 0xFEE0)
            table[0x3000] = " "
        if self.collapse:
            table.update(dict.fromkeys(_codes(_WHITESPACE), " "))
        self.char_map = {chr(k): v for k, v in table.items()}
        bmp, astral = set(table), ""
        self.flag_chars, self.convert_all, flag_bmp = frozenset(), False, set()
        if self.opencc:
            self.flag_chars, complete = _t2s_changeable()
            self.convert_all = self.opencc == "t2s" and not complete
            flag_bmp = {ord(c) for c in self.flag_chars if ord(c) < 0x10000}
            astral += _ASTRAL_CJK
        self.other_cased = frozenset()
        if self.lowercase:
            self.other_cased = frozenset(map(chr, _cased()[1]))
            bmp |= {c for c in _cased()[1] if c < 0x10000}
            astral += _ASTRAL_CASED
        if flag_bmp:
            # after a flagged character the rest of its text is skipped in the same match (one call per text,
            # not per character), up to the next character that needs a call of its own
            stop = _ranges(bmp) + astral + _SEP_CLASS
            self.early_re = re.compile(f"[{_ranges(bmp | flag_bmp)}{astral}](?:(?<=[{_ranges(flag_bmp)}])[^{stop}]*)?")
        else:
            self.early_re = re.compile(f"[{_ranges(bmp)}{astral}]")

        self.emoji_mode, self.emoji_language = o["emoji"], o["emoji_language"]
        if self.emoji_mode != "keep":
            self.emoji_re = _emoji_tables()[0]
        if self.emoji_mode == "text":
            import emoji

            if self.emoji_language not in getattr(emoji, "LANGUAGES", EMOJI_LANGUAGES):
                raise ValueError(f"Cleaner(emoji_language={self.emoji_language!r}): the installed emoji package "
                                 f"has no names in that language; use one of {emoji.LANGUAGES}.")
        self.hashtag_re = re.compile(_HASHTAG) if o["strip_hashtags"] else None
        self.squeeze_re = re.compile(rf"([{_SQUEEZE_PUNCT}])\1{{{self.squeeze},}}") if self.squeeze else None
        self.url_res = []
        if o["remove_urls"]:
            self.url_res = [re.compile(p) for p in _URL_LOWER] if self.lowercase else [re.compile(_URL_ANY_CASE)]
        self.mention_re = re.compile(_MENTION) if o["remove_mentions"] else None
        self.email_re = re.compile(_EMAIL) if o["remove_emails"] else None
        self.email_hint = re.compile(_EMAIL_HINT)
        self.emoticons = o["emoticons"]
        self.emoticon_re = re.compile(_EMOTICON) if self.emoticons != "keep" else None
        self.repost_marker = o["remove_repost_marker"]

    def run(self, s: str, n: int, sep: str = "", raw: list[str] | None = None) -> list[str]:
        """Clean ``n`` texts joined by ``sep`` (one text when n == 1; ``raw`` lists the texts of a batch)."""
        texts = self._run(s, n, sep, raw)
        return texts if self.max_length is None else self._cut(texts)

    def _run(self, s: str, n: int, sep: str, raw: list[str] | None = None) -> list[str]:
        original, flags, cased = s, set(), set()
        s = self._early(s, n, sep, flags, cased)
        if self.lowercase:
            # str.lower() is fast but also lowers Greek, Cyrillic, Ⅰ...: texts holding those get _latin_lower,
            # in a batch by cleaning them again one by one below
            s = _latin_lower(s) if n == 1 and cased else s.lower()
        if self.emoji_mode != "keep":
            s = self._emoji(s)
        if self.hashtag_re is not None and "#" in s:
            s = self.hashtag_re.sub(r"\1", s)
        if self.squeeze_re is not None:
            s = self.squeeze_re.sub(lambda m: m.group(1) * self.squeeze, s)
        if "/" in s or "." in s:  # every link has one
            for url_re in self.url_res:
                s = url_re.sub(" ", s)
        if self.mention_re is not None and "@" in s:
            s = self.mention_re.sub(" ", s)
        if self.email_re is not None and "@" in s and self.email_hint.search(s):
            s = self.email_re.sub(" ", s)
        if self.emoticon_re is not None and "[" in s:
            s = self.emoticon_re.sub(" " if self.emoticons == "remove" else r" \1 ", s)
        for full, half in self.late_fullwidth:
            if full in s:
                s = s.replace(full, half)
        if self.collapse and "  " in s:
            s = _SPACES.sub(" ", s)
        texts = s.split(sep) if n > 1 else [s]
        if len(texts) != n:  # a step removed or added a separator: a bug
            raise RuntimeError(f"internal error: a batch of {n} texts came back as {len(texts)}")
        texts = self._per_text(texts, flags)
        if self.lowercase and cased and n > 1:
            raw = raw if raw is not None else original.split(sep)
            for i in cased:
                texts[i] = self._run(raw[i], 1, "")[0]
        return texts

    def _early(self, s: str, n: int, sep: str, flags: set, cased: set) -> str:
        """The early pass; adds to ``flags`` the texts OpenCC may change, to ``cased`` those with Ⅰ, Σ, Д..."""
        if n == 1 and not self.early_re.search(s):
            return s
        flag_chars, other_cased, char_map = self.flag_chars, self.other_cased, self.char_map
        state = [0, 0]  # position up to which separators were counted, and the text index there

        def index(pos: int) -> int:
            if n > 1:
                state[1] += s.count(sep, state[0], pos)
                state[0] = pos
            return state[1]

        def repl(m: re.Match) -> str:
            g = m.group()
            c = g[0]
            if c in flag_chars:
                flags.add(index(m.start()))
                return g
            if c in other_cased:
                cased.add(index(m.start()))
                return c
            return char_map.get(c, c)  # (an astral character that only fell in a coarse range)

        return self.early_re.sub(repl, s)

    def _emoji(self, s: str) -> str:
        if self.emoji_mode == "remove":
            return self.emoji_re.sub("", s)
        lang, lower = self.emoji_language, self.lowercase
        return self.emoji_re.sub(lambda m: _emoji_name(m.group(), lang, lower), s)

    def _per_text(self, texts: list[str], flags: set) -> list[str]:
        if self.opencc and (flags or self.convert_all):
            idx = list(range(len(texts))) if self.convert_all else sorted(flags)
            for i, t in zip(idx, self._opencc([texts[i] for i in idx])):
                texts[i] = t
        if self.repost_marker:
            for i, t in enumerate(texts):
                if "转发微博" in t:
                    t = t.replace("转发微博", " ")
                    texts[i] = " ".join(t.split()) if self.collapse else t
        if self.collapse:
            texts = [t.strip() for t in texts]
        return texts

    def _cut(self, texts: list[str], rounds: int = 8) -> list[str]:
        """Cut texts to ``max_length`` and clean the cut ones again until stable.

        A cut can change what the other steps see: it can split a phrase that OpenCC converted as a whole, or
        cut the domain off ``@example.com`` so that what is left is a mention.
        """
        limit = self.max_length
        todo = [i for i, t in enumerate(texts) if len(t) > limit]
        for _ in range(rounds):
            if not todo:
                break
            cut = [texts[i][:limit] for i in todo]
            again = self._run_list(cut)
            still = []
            for i, a, b in zip(todo, cut, again):
                texts[i] = b[:limit]
                if b != a:
                    still.append(i)
            todo = still
        return texts

    def _run_list(self, texts: list[str]) -> list[str]:
        for sep in _SEPARATORS:
            joined = sep.join(texts)
            if joined.count(sep) == len(texts) - 1:
                return self._run(joined, len(texts), sep, texts)
        return [self._run(t, 1, "")[0] for t in texts]

    def _opencc(self, texts: list[str]) -> list[str]:
        if self.opencc == "t2s":
            return _t2s_fixpoint(texts)
        # tw2sp/hk2s: convert only texts that are not simplified yet, then settle with t2s
        check = _convert_many(_converter("t2s"), texts)
        todo = [i for i, (a, b) in enumerate(zip(texts, check)) if a != b]
        if todo:
            converted = _convert_many(_converter(self.opencc), [texts[i] for i in todo])
            for i, t in zip(todo, _t2s_fixpoint(converted)):
                texts[i] = _latin_lower(t) if self.lowercase else t  # tw2sp writes Latin too: 隨身碟 -> U盘
        return texts
