"""Throughput of ``toolkit.cleaning`` on the 20,606 real SMP2020-EWECT posts, next to OpenCC t2s alone.

    python bench/bench_cleaning.py [--repeats 7] [--core 0]

Pinned to one CPU core, torch-free. Every method runs ``--repeats`` times, interleaved so that a burst of load on
the machine hits all of them alike, and the best time counts. Prints a markdown table; the ratio is the
throughput relative to OpenCC t2s called once per post (the goal for the default pipeline: >= 0.80).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "smp2020_ewect"
FILES = ("usual_eval_labeled.json", "usual_test_labeled.json", "virus_train.json", "virus_eval_labeled.json",
         "virus_test_labeled.json")
GOAL = 0.80


def load_posts(folder: Path) -> list[str]:
    """The ``content`` of every post in the five competition files."""
    posts = []
    for name in FILES:
        posts += [r["content"] for r in json.loads((folder / name).read_text(encoding="utf-8"))]
    return posts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each method; the best counts")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin the process to")
    parser.add_argument("--data-dir", type=Path, default=DATA, help="folder with the SMP2020-EWECT JSON files")
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    import opencc

    from toolkit.cleaning import Cleaner

    posts = load_posts(args.data_dir)
    t2s = opencc.OpenCC("t2s")
    cleaner = Cleaner()
    full = Cleaner(emoji="text", emoticons="text", strip_hashtags=True, max_punct_repeat=3,
                   remove_repost_marker=True, max_length=140)
    start = time.perf_counter()
    batch_out = cleaner.clean_batch(posts)  # first use: probes OpenCC's tables, compiles the regexes
    setup = time.perf_counter() - start
    assert batch_out == [cleaner(p) for p in posts], "batch and one-by-one cleaning differ"
    full.clean_batch(posts)

    methods = {
        "OpenCC t2s alone, one call per post": lambda: [t2s.convert(p) for p in posts],
        "OpenCC t2s alone, one call on the joined batch": lambda: t2s.convert("\n".join(posts)).split("\n"),
        "Cleaner() defaults, one call per post": lambda: [cleaner(p) for p in posts],
        "Cleaner().clean_batch(posts), defaults": lambda: cleaner.clean_batch(posts),
        "clean_batch, every step on (emoji/emoticons text, topics, squeeze, 转发微博, cut 140)":
            lambda: full.clean_batch(posts),
    }
    best = dict.fromkeys(methods, float("inf"))
    for _ in range(args.repeats):
        for name, run in methods.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)

    base = len(posts) / best["OpenCC t2s alone, one call per post"]
    cpu = platform.processor() or platform.machine()
    print(f"{len(posts):,} posts ({sum(map(len, posts)):,} characters), Python {platform.python_version()}, "
          f"OpenCC {opencc.__version__}, {os.cpu_count()} CPUs ({cpu}), pinned to core {args.core}; "
          f"best of {args.repeats}; first-use setup {setup:.2f} s (not counted)\n")
    print("| method | posts | seconds | posts/s | ratio to OpenCC alone |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in best.items():
        rate = len(posts) / seconds
        print(f"| {name} | {len(posts):,} | {seconds:.4f} | {rate:,.0f} | {rate / base:.2f} |")
    ratio = len(posts) / best["Cleaner().clean_batch(posts), defaults"] / base
    print(f"\nclean_batch with the default steps runs at {ratio:.2f}x OpenCC t2s alone (goal >= {GOAL:.2f}: "
          f"{'met' if ratio >= GOAL else 'NOT met'}).")
    assert "torch" not in sys.modules and "transformers" not in sys.modules
    return 0


if __name__ == "__main__":
    sys.exit(main())
