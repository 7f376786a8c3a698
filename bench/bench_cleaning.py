"""Throughput of ``toolkit.cleaning`` on the 20,606 real SMP2020-EWECT posts, next to OpenCC t2s alone, and the
``hanlp_chartable`` preset against the study's own cleaning of virus_train.

    python bench/bench_cleaning.py [--repeats 5] [--core 0]

Pinned to one CPU core, one process, torch-free. Every method runs ``--repeats`` times, interleaved so that a burst
of load on the machine hits all of them alike, and the median counts. The baseline is OpenCC t2s called once on the
joined batch (``t2s.convert("\\n".join(posts))``, faster than one call per post); the goal for ``clean_batch`` with
the defaults is >= 1.00x that. Run it on a quiet machine (the load average is printed). It says whether the
character passes ran compiled (``toolkit/_cleaning_scan.c``) and times the defaults without them too.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import difflib
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
FILES = ("usual_eval_labeled.json", "usual_test_labeled.json", "virus_train.json", "virus_eval_labeled.json",
         "virus_test_labeled.json")
GOAL = 1.00
BASELINE = "OpenCC t2s, one call on the joined batch"


def load_posts(folder: Path) -> list[str]:
    """The ``content`` of every post in the five competition files."""
    posts = []
    for name in FILES:
        posts += [r["content"] for r in json.loads((folder / name).read_text(encoding="utf-8"))]
    return posts


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timings(methods: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each method over ``repeats`` interleaved runs."""
    runs: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, run in methods.items():
            start = time.perf_counter()
            run()
            runs[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in runs.items()}


def category(raw: str, ours: str, study: str) -> str:
    """Why a post the preset cleans differs from the study's file (the first reason that fits)."""
    ops = [(ours[i1:i2], study[j1:j2]) for tag, i1, i2, j1, j2 in
           difflib.SequenceMatcher(None, ours, study, autojunk=False).get_opcodes() if tag != "equal"]
    if "t.cn/" in study and "t.cn/" not in ours:
        return "a bare t.cn/ link: removed here, kept by the study (its link rule needs http://)"
    if re.search(r"\((来自|分享自)?\s*\)?", "".join(b for _, b in ops)) and re.search(r"[(（]", raw):
        return "brackets a removal emptied, (来自 @x): dropped here, kept by the study"
    if all(not a.strip() and not b.strip() for a, b in ops):
        return "a link or mention glued to the text: replaced by a space here, by nothing in the study"
    if "@" in raw and len(study) < len(ours) and any(len(a) > len(b) for a, b in ops):
        return "the study's @-rule removes everything up to the next space or colon, not just the name"
    if "http" in raw:
        return "the study's link rule also takes the punctuation and //@ glued to a link"
    return "other"


def compare_with_study(data: Path) -> None:
    """The hanlp_chartable preset against the study's own cleaned virus_train, the differences by category."""
    from toolkit.cleaning import Cleaner

    raw = json.loads((data / "smp2020_ewect" / "virus_train.json").read_text(encoding="utf-8"))
    ref = {r["id"]: r["content"] for r in json.loads(
        (data / "smp2020_ewect_reference" / "virus_train_cleaned.json").read_text(encoding="utf-8"))}
    for name, cleaner in (("Cleaner() defaults", Cleaner()),
                          ('Cleaner.preset("hanlp_chartable")', Cleaner.preset("hanlp_chartable"))):
        out = cleaner.clean_batch([r["content"] for r in raw])
        pairs = [(r["content"], o, ref[r["id"]]) for r, o in zip(raw, out) if r["id"] in ref]
        differ = [p for p in pairs if p[1] != p[2]]
        same = len(pairs) - len(differ)
        print(f"\n{name} vs the study's virus_train_cleaned.json: {same:,} of {len(pairs):,} posts identical "
              f"({same / len(pairs):.2%}), {len(differ)} differ")
        if name.startswith("Cleaner.preset"):
            counts = collections.Counter(category(*p) for p in differ)
            for reason, n in counts.most_common():
                print(f"  {n:3d}  {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each method; the median counts")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin the process to")
    parser.add_argument("--data-dir", type=Path, default=DATA, help="folder holding smp2020_ewect/ and the reference")
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    import emoji
    import opencc

    from toolkit import cleaning
    from toolkit.cleaning import Cleaner

    posts = load_posts(args.data_dir / "smp2020_ewect")
    t2s = opencc.OpenCC("t2s")
    cleaner = Cleaner()
    full = Cleaner(emoji="text", emoticons="text", strip_hashtags=True, max_punct_repeat=3,
                   remove_repost_marker=True, max_length=140)
    preset = Cleaner.preset("hanlp_chartable")
    compiled = cleaning._compiled

    def regex_steps(run):  # as where toolkit._cleaning_scan is not built: its passes as regex and str.replace
        cleaning._compiled = None
        try:
            return run()
        finally:
            cleaning._compiled = compiled

    start = time.perf_counter()
    batch_out = cleaner.clean_batch(posts)  # first use: probes OpenCC's tables, compiles the regexes
    setup = time.perf_counter() - start
    assert batch_out == [cleaner(p) for p in posts], "batch and one-by-one cleaning differ"
    assert regex_steps(lambda: cleaner.clean_batch(posts)) == batch_out, "compiled and pure-Python passes differ"
    full.clean_batch(posts)
    preset.clean_batch(posts)

    methods = {
        "OpenCC t2s, one call per post": lambda: [t2s.convert(p) for p in posts],
        BASELINE: lambda: t2s.convert("\n".join(posts)).split("\n"),
        "Cleaner() defaults, one call per post": lambda: [cleaner(p) for p in posts],
        "Cleaner().clean_batch(posts), defaults": lambda: cleaner.clean_batch(posts),
        "the same without the compiled module (its passes as regex and str.replace)":
            lambda: regex_steps(lambda: cleaner.clean_batch(posts)),
        'Cleaner.preset("hanlp_chartable").clean_batch': lambda: preset.clean_batch(posts),
        "clean_batch, every step on (emoji/emoticons text, topics, squeeze, 转发微博, cut 140)":
            lambda: full.clean_batch(posts),
    }
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    seconds = timings(methods, args.repeats)

    base = len(posts) / seconds[BASELINE]
    steps = "compiled" if compiled else "pure Python: toolkit._cleaning_scan is not built"
    print(f"{datetime.date.today()}, {cpu_model()}, {os.cpu_count()} CPUs, pinned to core {args.core}, load average "
          f"{load:.2f} at the start; Python {platform.python_version()}, OpenCC {opencc.__version__}, emoji "
          f"{emoji.__version__}; character passes {steps}\n{len(posts):,} posts ({sum(map(len, posts)):,} characters); median of "
          f"{args.repeats} interleaved runs; first-use setup {setup:.2f} s (not counted)\n")
    print(f"| method | posts | seconds | posts/s | ratio to {BASELINE} |")
    print("|---|---:|---:|---:|---:|")
    for name, secs in seconds.items():
        rate = len(posts) / secs
        print(f"| {name} | {len(posts):,} | {secs:.4f} | {rate:,.0f} | {rate / base:.2f} |")
    ratio = len(posts) / seconds["Cleaner().clean_batch(posts), defaults"] / base
    print(f"\nclean_batch with the default steps runs at {ratio:.2f}x {BASELINE} (goal >= {GOAL:.2f}: "
          f"{'met' if ratio >= GOAL else 'NOT met'}).")
    compare_with_study(args.data_dir)
    assert "torch" not in sys.modules and "transformers" not in sys.modules
    return 0


if __name__ == "__main__":
    sys.exit(main())
