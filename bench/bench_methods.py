"""Ablation of the fine-tuning methods: screen each alone on one seed, confirm the best on several seeds.

    python bench/bench_methods.py                                  # both datasets, screen then confirm (~2 h CPU)
    python bench/bench_methods.py --datasets imdb --stage screen   # one seed per method, IMDB only
    python bench/bench_methods.py --stage confirm --seeds 42,43,44 # reuses the screen's runs
    python bench/bench_methods.py --smoke                          # 64/64 rows, 32 tokens, 1 epoch, 2 methods

Every row is one run of a recipe's main() (recipes/imdb.py, recipes/weibo_emotion.py) with the method's flags on
top of the dataset's settings; nothing here trains by itself. IMDB: MiniLM fine-tuned, mean pooling, seeded
subsets of train and test (the recipe's eval split is the test split, so IMDB's screening picks on the split it
reports). Weibo: zh-mini-mlm on a virus_train subset, the best epoch by virus_eval macro-F1, scored on
virus_test; screening ranks Weibo's methods by virus_eval macro-F1.

--stage screen: baseline and each method alone, first seed. --stage confirm: baseline, the best --top methods
(those that beat the baseline; the best one if none does) and their combination (all their flags at once), on
every seed in --seeds. --stage all: both. The seed also draws the data subsets, so the spread over seeds covers
data and initialisation; every method sees the same subset for a given seed. Each run's folder under
--out/runs/<dataset>/ is named by its settings, and a folder holding results.json is reused, so an interrupted
ablation resumes where it stopped. Tables (mean ± sample std over seeds of accuracy, macro-F1 and wall time) are
printed and written to --out/methods.md, the rows and summaries to --out/methods.json.

Default sizes and the time they took (2026-12-01, this project's 2-core AMD EPYC CPU): IMDB 1,000 train / 1,000
test reviews at 128 tokens, 2 epochs, batch 32: a plain run 6 minutes with both cores, 7.5 with one core beside
another job, FGM and R-Drop twice that. Weibo 1,000 virus_train / 500 virus_eval / 1,000 virus_test posts, up to
2 epochs, batch 16 (64 optimizer steps at batch 32 did not leave the uniform prediction), lr 2e-4, balanced class
weights, training batches grouped by length: 5 minutes a run on one core. IMDB's 12 runs add up to 94 minutes and
Weibo's 11 to 58; side by side, one core each, the two finish in about 95 minutes:
    taskset -c 0 python bench/bench_methods.py --datasets imdb &  taskset -c 1 python bench/bench_methods.py --datasets weibo
(with OMP_NUM_THREADS=1), then `python bench/bench_methods.py` again to gather both into one table (every run reused).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import ROOT, hardware, load_recipe

ZH_MINI = str(ROOT.parent / "shared" / "models" / "zh-mini-mlm")
STAGES = ("screen", "confirm", "all")

# name -> flags of the method alone; "{unfreeze_every}" is filled per dataset (see DatasetPlan.unfreeze_every)
METHODS: dict[str, list[str]] = {
    "baseline": [],
    "layer_lr_decay": ["--layer_lr_decay", "0.9"],
    "stlr": ["--stlr_cut_frac", "0.1", "--stlr_ratio", "32"],
    "gradual_unfreezing": ["--gradual_unfreezing", "true", "--unfreeze_every_steps", "{unfreeze_every}"],
    "fgm": ["--adversarial", "fgm", "--adversarial_epsilon", "1.0"],
    "rdrop": ["--rdrop_alpha", "1.0"],
    "focal": ["--loss", "focal", "--focal_gamma", "2.0"],
    "label_smoothing": ["--label_smoothing_factor", "0.1"],
}
SMOKE_METHODS = ("baseline", "label_smoothing")
# Weibo's screen leaves out R-Drop (two forward passes a step, as FGM) to keep the whole ablation near two hours on a
# 2-core CPU; --weibo_methods puts it back
WEIBO_METHODS = tuple(m for m in METHODS if m != "rdrop")


@dataclass
class DatasetPlan:
    """One dataset's recipe, its settings (flags every row shares), and how to read a run's scores."""

    name: str
    recipe: str
    common: list[str]
    train: int
    batch: int
    epochs: float
    encoder_layers: int
    warmup: bool  # the settings warm up (Weibo: half an epoch), which STLR replaces
    reported: str  # the split the tables report
    selection: str  # the split the screening ranks by

    @property
    def unfreeze_every(self) -> int:
        """Steps between unfreezings: the whole encoder (its layers and the embeddings) is unfrozen after one epoch."""
        return max(1, math.ceil(self.train / self.batch) // (self.encoder_layers + 1))

    def flags(self, method_flags: list[str]) -> list[str]:
        flags = [f.format(unfreeze_every=self.unfreeze_every) for f in method_flags]
        if self.warmup and "--stlr_cut_frac" in flags:
            flags += ["--warmup_epochs", "0"]
        return flags


@dataclass
class Row:
    """One run: dataset, method (or combination), seed, its flags and folder; scores once it has run."""

    dataset: str
    method: str
    seed: int
    flags: list[str]
    folder: Path
    scores: dict = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return (self.folder / "results.json").is_file()


def dataset_plans(args) -> dict[str, DatasetPlan]:
    """The settings of each dataset at the sizes asked for."""
    plans = {}
    if "imdb" in args.datasets:
        common = ["--model_name_or_path", args.imdb_model, "--mode", "finetune", "--pooling", "mean",
                  "--max_length", str(args.imdb_max_length), "--max_train_samples", str(args.imdb_train),
                  "--max_eval_samples", str(args.imdb_test), "--num_train_epochs", f"{args.epochs:g}",
                  "--learning_rate", f"{args.imdb_lr:g}", "--per_device_train_batch_size", "32",
                  "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none"]
        plans["imdb"] = DatasetPlan("imdb", "imdb", common, args.imdb_train, 32, args.epochs, args.encoder_layers,
                                    warmup=False, reported="test", selection="test")
    if "weibo" in args.datasets:
        common = ["--model_name_or_path", args.weibo_model, "--max_length", str(args.weibo_max_length),
                  "--max_train_samples", str(args.weibo_train), "--max_eval_samples", str(args.weibo_eval),
                  "--test_splits", "virus_test", "--num_train_epochs", f"{args.weibo_epochs:g}",
                  "--learning_rate", f"{args.weibo_lr:g}", "--per_device_train_batch_size", "16",
                  "--class_weighting", "balanced", "--warmup_epochs", "0.5",
                  "--early_stopping_patience", str(args.weibo_patience), "--report_to", "none",
                  # posts run from a few characters to over 140 (median 37): batches of like lengths pad ~2.5x less
                  "--train_sampling_strategy", "group_by_length"]
        if args.weibo_test:
            common += ["--max_test_samples", str(args.weibo_test)]
        plans["weibo"] = DatasetPlan("weibo", "weibo_emotion", common, args.weibo_train, 16, args.weibo_epochs,
                                     args.encoder_layers, warmup=True, reported="virus_test", selection="virus_eval")
    return plans


def run_key(plan: DatasetPlan, flags: list[str], seed: int) -> str:
    """Ten hex digits naming the settings of a run: recipe, shared flags, method flags, seed."""
    settings = {"recipe": plan.recipe, "common": plan.common, "flags": flags, "seed": seed}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


def make_row(plan: DatasetPlan, method: str, method_flags: list[str], seed: int, out: Path) -> Row:
    flags = plan.flags(method_flags)
    folder = out / "runs" / plan.name / f"{method}-seed{seed}-{run_key(plan, flags, seed)}"
    return Row(plan.name, method, seed, flags, folder)


def combine(methods: list[str]) -> list[str] | None:
    """The flags of several methods at once; None where two set the same flag differently."""
    merged: dict[str, str] = {}
    for name in methods:
        flags = METHODS[name]
        for flag, value in zip(flags[::2], flags[1::2]):
            if merged.setdefault(flag, value) != value:
                return None
    return [item for pair in merged.items() for item in pair]


def screen_rows(plan: DatasetPlan, methods: list[str], seed: int, out: Path) -> list[Row]:
    return [make_row(plan, m, METHODS[m], seed, out) for m in methods]


def pick_best(screened: list[Row], top: int, metric: str = "selection_macro_f1") -> list[str]:
    """The ``top`` methods with the best screening score that beat the baseline (the single best if none does)."""
    base = next(r.scores[metric] for r in screened if r.method == "baseline")
    ranked = sorted((r for r in screened if r.method != "baseline"), key=lambda r: -r.scores[metric])
    better = [r.method for r in ranked if r.scores[metric] > base][:top]
    return better or [r.method for r in ranked[:1]]


def confirm_rows(plan: DatasetPlan, best: list[str], seeds: list[int], out: Path) -> list[Row]:
    """Baseline, each best method, and their combination, on every seed."""
    variants = [("baseline", METHODS["baseline"]), *((m, METHODS[m]) for m in best)]
    flags = combine(best) if len(best) > 1 else None
    if flags is not None:
        variants.append(("+".join(best), flags))
    return [make_row(plan, name, f, seed, out) for name, f in variants for seed in seeds]


def read_scores(row: Row, plan: DatasetPlan) -> dict:
    """Accuracy and macro-F1 (reported split and selection split) and wall time of a finished run."""
    results = json.loads((row.folder / "results.json").read_text(encoding="utf-8"))
    meta_path = row.folder / "bench_row.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    final = results["final"]
    if plan.name == "weibo":
        task = results["tasks"][0]["name"]
        test = results["test"][plan.reported][task]
    else:
        test = final
    return {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"],
            "selection_accuracy": final["accuracy"], "selection_macro_f1": final["macro_f1"],
            "wall_s": meta.get("wall_s", results.get("train_seconds")), "train_s": results.get("train_seconds"),
            "hardware": meta.get("hardware"),
            "epochs_run": len(results.get("epochs", [])), "train_examples": results.get("train_examples")}


def execute(row: Row, plan: DatasetPlan, keep_models: bool = False) -> bool:
    """Run the row's recipe unless its folder already holds results.json; True when it ran now."""
    if row.done:
        row.scores = read_scores(row, plan)
        return False
    argv = [*plan.common, *row.flags, "--seed", str(row.seed), "--output_dir", str(row.folder),
            "--overwrite_output_dir", "true"]
    print(f"[{plan.name}] {row.method} seed {row.seed}: {' '.join(row.flags) or '(no method flags)'}", flush=True)
    start = time.perf_counter()
    load_recipe(plan.recipe).main(argv)
    wall = time.perf_counter() - start
    if not keep_models:  # the weights are not needed for the ablation, and 30+ runs of them fill a disk
        for weights in row.folder.glob("*.safetensors"):
            weights.unlink()
    (row.folder / "bench_row.json").write_text(json.dumps({"method": row.method, "seed": row.seed,
                                                           "flags": row.flags, "argv": argv, "wall_s": round(wall, 1),
                                                           "hardware": hardware()},
                                                          indent=2), encoding="utf-8")
    row.scores = read_scores(row, plan)
    return True


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def fmt(values: list[float], digits: int = 4) -> str:
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def summarise(rows: list[Row]) -> list[dict]:
    """Per method (in first-seen order): seeds, mean and std of accuracy, macro-F1, selection macro-F1, wall s."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.method, []).append(r)
    out = []
    for method, group in groups.items():
        entry = {"method": method, "flags": group[0].flags, "seeds": [r.seed for r in group]}
        for key in ("accuracy", "macro_f1", "selection_macro_f1", "wall_s"):
            mean, std = mean_std([r.scores[key] for r in group])
            entry[key] = {"mean": mean, "std": std, "values": [r.scores[key] for r in group]}
        out.append(entry)
    return out


def markdown(rows: list[Row], plan: DatasetPlan, title: str) -> str:
    """The table of one dataset and stage: mean ± std over seeds (a single value with one seed)."""
    head = f"| method | flags | seeds | {plan.reported} accuracy | {plan.reported} macro-F1 |"
    rule = "|---|---|---|---|---|"
    if plan.selection != plan.reported:
        head += f" {plan.selection} macro-F1 |"
        rule += "---|"
    lines = [f"### {title}", "", head + " wall s |", rule + "---|"]
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.method, []).append(r)
    for method, group in groups.items():
        cells = [method, " ".join(group[0].flags) or "-", str(len(group)),
                 fmt([r.scores["accuracy"] for r in group]), fmt([r.scores["macro_f1"] for r in group])]
        if plan.selection != plan.reported:
            cells.append(fmt([r.scores["selection_macro_f1"] for r in group]))
        cells.append(fmt([r.scores["wall_s"] for r in group], 0))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", default="all", choices=STAGES)
    p.add_argument("--datasets", default="imdb,weibo", help="Comma-separated: imdb, weibo.")
    p.add_argument("--methods", help=f"Screened methods (default all; --smoke: {', '.join(SMOKE_METHODS)}), from "
                   f"{', '.join(METHODS)}.")
    p.add_argument("--seeds", default="42,43,44", help="Comma-separated; the screen uses the first.")
    p.add_argument("--weibo_methods", default=",".join(WEIBO_METHODS),
                   help="Weibo's screened methods (--methods overrides; --smoke: as --methods).")
    p.add_argument("--top", type=int, default=1, help="Methods carried from the screen to the confirmation.")
    p.add_argument("--epochs", type=float, default=2, help="IMDB epochs (the final epoch is reported).")
    p.add_argument("--imdb_model", default="minilm")
    p.add_argument("--imdb_train", type=int, default=1000)
    p.add_argument("--imdb_test", type=int, default=1000)
    p.add_argument("--imdb_max_length", type=int, default=128)
    p.add_argument("--imdb_lr", type=float, default=5e-5)
    p.add_argument("--weibo_model", default=ZH_MINI)
    p.add_argument("--weibo_train", type=int, default=1000, help="virus_train subset (of 8,606).")
    p.add_argument("--weibo_eval", type=int, default=500, help="virus_eval subset for the epoch choice (of 2,000).")
    p.add_argument("--weibo_test", type=int, default=1000, help="virus_test subset (of 3,000; 0: all).")
    p.add_argument("--weibo_max_length", type=int, default=140)
    p.add_argument("--weibo_epochs", type=float, default=2, help="Most epochs; the best by virus_eval macro-F1.")
    p.add_argument("--weibo_patience", type=int, default=2)
    p.add_argument("--weibo_lr", type=float, default=2e-4)
    p.add_argument("--encoder_layers", type=int, default=6, help="Encoder layers (paces gradual unfreezing).")
    p.add_argument("--keep_models", action="store_true", help="Keep each run's weights (default: removed).")
    p.add_argument("--smoke", action="store_true", help="64 train / 64 test rows, 32 tokens, 1 epoch, 2 methods.")
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "methods"))
    args = p.parse_args(argv)
    args.datasets = [d for d in args.datasets.split(",") if d]
    methods = args.methods or ",".join(SMOKE_METHODS if args.smoke else METHODS)
    weibo_methods = args.methods or (methods if args.smoke else args.weibo_methods)
    args.methods, args.weibo_methods = ([m for m in names.split(",") if m] for names in (methods, weibo_methods))
    args.seeds = [int(s) for s in args.seeds.split(",")]
    if args.smoke:
        args.imdb_train = args.imdb_test = args.weibo_train = args.weibo_eval = args.weibo_test = 64
        args.imdb_max_length = args.weibo_max_length = 32
        args.epochs = args.weibo_epochs = 1
    unknown = ([m for m in {*args.methods, *args.weibo_methods} if m not in METHODS] +
               [d for d in args.datasets if d not in ("imdb", "weibo")])
    if unknown:
        p.error(f"unknown method or dataset {', '.join(unknown)}; methods: {', '.join(METHODS)}; "
                "datasets: imdb, weibo")
    for methods in (args.methods, args.weibo_methods):
        if "baseline" not in methods:
            methods.insert(0, "baseline")
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    out = Path(args.out)
    plans = dataset_plans(args)
    report: dict = {"hardware": hardware(), "args": {k: v for k, v in vars(args).items()}, "datasets": {}}
    sections, every = [], []
    start = time.perf_counter()
    for name, plan in plans.items():
        entry = report["datasets"][name] = {"common": plan.common,
                                            "splits": {"reported": plan.reported, "selection": plan.selection}}
        screened = screen_rows(plan, args.weibo_methods if name == "weibo" else args.methods, args.seeds[0], out)
        for row in screened:  # every stage: confirm ranks by the screen, so it runs (or reuses) the screen first
            execute(row, plan, args.keep_models)
        every += screened
        entry["screen"] = {"rows": [as_json(r) for r in screened], "summary": summarise(screened)}
        sections.append(markdown(screened, plan, f"{name}: screen, seed {args.seeds[0]}"))
        if args.stage in ("confirm", "all"):
            best = pick_best(screened, args.top)
            confirmed = confirm_rows(plan, best, args.seeds, out)
            for row in confirmed:
                execute(row, plan, args.keep_models)
            every += confirmed
            entry["best"] = best
            entry["confirm"] = {"rows": [as_json(r) for r in confirmed], "summary": summarise(confirmed)}
            sections.append(markdown(confirmed, plan, f"{name}: confirm, seeds {','.join(map(str, args.seeds))}"))
    report["wall_s"] = round(time.perf_counter() - start, 1)
    # the machines the runs had (each run records its own: a gathering call reuses runs made elsewhere)
    ran_on = sorted({row.scores.get("hardware") or "older runs: machine not recorded" for row in every})
    report["hardware"] = "; ".join(ran_on) if ran_on else hardware()
    text = (f"## Fine-tuning methods ablation\n\n{describe(args, plans, report['hardware'])}\n\n"
            + "\n\n".join(sections) + "\n")
    print("\n" + text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "methods.md").write_text(text, encoding="utf-8")
    tmp = out / "methods.json.tmp"
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(out / "methods.json")
    return report


def as_json(row: Row) -> dict:
    return {"method": row.method, "seed": row.seed, "flags": row.flags, "folder": str(row.folder), **row.scores}


def describe(args, plans: dict[str, DatasetPlan], ran_on: str) -> str:
    parts = []
    if "imdb" in plans:
        parts.append(f"IMDB: {args.imdb_model} fine-tuned, mean pooling, {args.imdb_train} train / {args.imdb_test} "
                     f"test reviews, max_length {args.imdb_max_length}, {args.epochs:g} epochs, lr {args.imdb_lr:g}, "
                     "batch 32, final epoch reported.")
    if "weibo" in plans:
        parts.append(f"Weibo: {Path(args.weibo_model).name} fine-tuned, virus_train {args.weibo_train} / virus_eval "
                     f"{args.weibo_eval} / virus_test {args.weibo_test or 'all 3,000'}, max_length "
                     f"{args.weibo_max_length}, up to {args.weibo_epochs:g} epochs (best by virus_eval macro-F1), lr "
                     f"{args.weibo_lr:g}, batch 16, balanced class weights, half an epoch of warm-up (STLR: none).")
    parts.append(f"Mean ± sample std over seeds; wall s per run (recipe main() call). Runs on: {ran_on}.")
    return " ".join(parts)


if __name__ == "__main__":
    main()
    sys.exit(0)
