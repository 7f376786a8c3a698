"""The report's six sections. Each runs (or reuses) its recipes and benches through ``runner``, reads what they wrote
(results.json, their JSON and PNGs) and returns a ``Section``: markdown and the pictures it shows. Nothing here
trains or scores a model; the per-epoch, per-task and per-method pictures are drawn from the runs' numbers."""

from __future__ import annotations

import datetime
import json
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..evaluation import reports
from .profiles import DMR, Profile
from .runner import ROOT, Run, load_script, relative, run_function, run_script

PUBLISHED_IMDB = [  # the IMDB study's Table 1: test accuracy (%), fine-tuned at epoch 2 and frozen features
    {"model": "bert-base-uncased", "fine-tuned (epoch 2)": "93.84", "frozen": "87.01"},
    {"model": "bert-large-uncased", "fine-tuned (epoch 2)": "93.76", "frozen": "89.66"},
]
PUBLISHED_WEIBO = {"model": "bert-base-chinese", "accuracy": 0.772, "macro_f1": 0.739}
MULTITASK = {  # recipes/multitask.py --tasks specs: IMDB sentiment and its 8 star ratings (1-4, 7-10)
    "sentiment": "sentiment:label:classification:neg,pos",
    "rating": "rating:rating:classification:1,2,3,4,7,8,9,10",
}


@dataclass
class Section:
    title: str
    runs: list[Run] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    pictures: list[Path] = field(default_factory=list)  # files in the report folder
    seeds: Sequence[int] = ()
    extra_provenance: list[str] = field(default_factory=list)


@dataclass
class Context:
    """Where runs and pictures go, and the profile's sizes."""

    profile: Profile
    runs_dir: Path
    pictures_dir: Path  # the report's pictures/ is swapped in from here once every section is built

    def folder(self, section: str, name: str) -> Path:
        return self.runs_dir / section / name

    def picture(self, section: Section, source: Path, name: str, alt: str) -> str:
        """Copy a run's PNG into the report's pictures/ folder; the markdown that shows it."""
        source = Path(source)
        if not source.is_file() or source.stat().st_size == 0:
            raise FileNotFoundError(f"the report expected the picture {relative(source)}, which is missing or empty")
        target = self.pictures_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        section.pictures.append(target)
        return f"![{alt}](pictures/{name})"

    def drawn(self, section: Section, path: Path, alt: str) -> str:
        """Markdown for a picture the report drew itself into pictures/."""
        section.pictures.append(path)
        return f"![{alt}](pictures/{path.name})"

    def picture_path(self, name: str) -> Path:
        path = self.pictures_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


# ---- small helpers ------------------------------------------------------------------------------------------------
def mean_std(values: Sequence[float], digits: int = 4) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def flags(**values) -> list[str]:
    """``--name value`` pairs, leaving out the ones that are None."""
    out = []
    for name, value in values.items():
        if value is not None:
            out += [f"--{name}", f"{value:g}" if isinstance(value, float) else str(value)]
    return out


def seed_note(seeds: Sequence[int]) -> str:
    seeds = list(seeds)
    if len(seeds) == 1:
        return f"1 (seed {seeds[0]})"
    return f"{len(seeds)} (seeds {', '.join(map(str, seeds))}; mean ± sample std over them)"


def encoder_shape(model: str) -> str:
    """"6 layers, hidden 384" from an encoder's config.json (the embedded alias or a folder)."""
    from ..hub import resolve_model_path

    config = json.loads((Path(resolve_model_path(model)) / "config.json").read_text(encoding="utf-8"))
    return f"{config['num_hidden_layers']} layers, hidden {config['hidden_size']}"


def provenance(section: Section) -> str:
    """Command, hardware, date, seeds and run folders of a section."""
    lines = []
    commands = [r.command for r in section.runs if not r.script.startswith("report:")]
    computed = [r for r in section.runs if r.script.startswith("report:")]
    if commands:
        lines.append("Commands (each writes into its run folder; a recipe: results.json, run_config.json, pictures):"
                     "\n\n```\n" + "\n".join(commands) + "\n```")
    for run in computed:
        lines.append(f"Computed by the report itself: {run.script.removeprefix('report:')}, kept in "
                     f"`{relative(run.folder)}/result.json`.")
    hardware = sorted({r.record.get("hardware", "?") for r in section.runs})
    dates = sorted({r.record.get("finished", "?")[:10] for r in section.runs})
    reused = sum(r.reused for r in section.runs)
    items = [f"- Hardware: {'; '.join(hardware)}" if hardware else None,
             f"- Date: {' to '.join([dates[0], dates[-1]] if len(dates) > 1 else dates)}" if dates else None,
             f"- Seeds: {seed_note(section.seeds)}" if section.seeds else None,
             f"- Run folders: {', '.join(f'`{relative(r.folder)}`' for r in section.runs)}"
             f"{f' ({reused} of {len(section.runs)} reused from earlier runs)' if reused else ''}"
             if section.runs else None, *section.extra_provenance]
    lines.append("\n".join(i for i in items if i))
    return "\n\n".join(lines)


def recipe(ctx: Context, script: str, section: str, name: str, argv: Sequence[str]) -> Run:
    return run_script(script, [*argv, *ctx.profile.common], ctx.folder(section, name))


# ---- 1. IMDB: frozen against fine-tuned, per epoch --------------------------------------------------------------
def imdb_runs(ctx: Context, mode: str, seed: int, layers: str = "last") -> Run:
    p = ctx.profile
    frozen = mode == "frozen"
    argv = [*flags(model_name_or_path=p.en_model, mode=mode, pooling="mean", layers=layers,
                   max_length=p.imdb_max_length, max_train_samples=p.imdb_train or 25000,
                   max_eval_samples=p.imdb_eval or 25000,
                   num_train_epochs=float(p.imdb_frozen_epochs if frozen else p.imdb_finetune_epochs),
                   learning_rate="1e-3" if frozen else "5e-5",
                   per_device_train_batch_size=32 if frozen else p.imdb_finetune_batch, seed=seed),
            "--save_strategy", "no"]
    return recipe(ctx, "recipes/imdb.py", "imdb", f"{mode}-{layers}-seed{seed}", argv)


def plot_epochs(curves: dict[str, dict[int, dict[str, list[float]]]], path: Path, title: str) -> Path:
    """Accuracy and eval loss per epoch, one line per mode (mean over seeds, bars: sample std)."""
    plt = reports.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, by_epoch in curves.items():
        epochs = sorted(by_epoch)
        for ax, key in zip(axes, ("eval_accuracy", "eval_loss")):
            values = [by_epoch[e][key] for e in epochs]
            means = [statistics.fmean(v) for v in values]
            stds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
            ax.errorbar(epochs, means, yerr=stds, marker="o", capsize=3, label=label)
    for ax, name in zip(axes, ("test accuracy", "test loss (cross-entropy)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    return reports.save_figure(fig, path)


def section_imdb(ctx: Context) -> Section:
    p = ctx.profile
    section = Section("1. IMDB: frozen features against fine-tuning, per epoch", seeds=p.imdb_seeds)
    frozen = [imdb_runs(ctx, "frozen", s) for s in p.imdb_seeds]
    tuned = [imdb_runs(ctx, "finetune", s) for s in p.imdb_finetune_seeds]
    section.runs = frozen + tuned
    if list(p.imdb_finetune_seeds) != list(p.imdb_seeds):
        section.extra_provenance.append(f"- Fine-tuning seeds: {seed_note(p.imdb_finetune_seeds)}")
    curves: dict[str, dict] = {}
    for label, runs in (("frozen", frozen), ("fine-tuned", tuned)):
        for run in runs:
            for row in run.results["epochs"]:
                entry = curves.setdefault(label, {}).setdefault(int(round(row["epoch"])), {})
                for key in ("eval_accuracy", "eval_loss"):
                    entry.setdefault(key, []).append(row[key])
    epochs = sorted(set().union(*(c.keys() for c in curves.values())))
    rows = [{"epoch": e, **{f"{label} {k}": mean_std(curves[label][e][f"eval_{k}"]) if e in curves[label] else "-"
                            for label in curves for k in ("accuracy", "loss")}} for e in epochs]
    model = frozen[0].results["model"]
    stand_in = (f"MiniLM (all-MiniLM-L6-v2, the embedded model `minilm`: {encoder_shape(model)}, 22.7M parameters)"
                if p.en_model == "minilm" else f"`{model}` ({encoder_shape(model)})")
    title = f"IMDB, {Path(model).name}: frozen vs fine-tuned"
    picture = plot_epochs(curves, ctx.picture_path("imdb_epochs.png"), title)
    tuned_last = tuned[0].results
    section.body += [
        f"Test accuracy and loss after each epoch, mean pooling, {frozen[0].results['train_examples']:,} train / "
        f"{frozen[0].results['eval_examples']:,} test reviews (seeded subsets), max_length "
        f"{frozen[0].results['max_length']}. Frozen: the encoder's features computed once (feature cache), the head "
        f"(Linear 256, ReLU, dropout 0.1, Linear) trained at lr 1e-3, batch 32. Fine-tuned: every weight at lr 5e-5, "
        f"batch {p.imdb_finetune_batch}.",
        reports.markdown_table(rows),
        ctx.drawn(section, picture, "IMDB accuracy and loss per epoch, frozen and fine-tuned"),
        ctx.picture(section, tuned[0].folder / "loss_curve.png", "imdb_finetune_loss_curve.png",
                    "training loss of the fine-tuned run"),
        "The published study (BERT, full 25,000 / 25,000 reviews, 512 tokens, test accuracy %):",
        reports.markdown_table(PUBLISHED_IMDB),
        f"Stand-in: the study's BERTs cannot be had offline, so {stand_in} stands in for bert-base-uncased and "
        f"bert-large-uncased, at the sizes above rather than the full data. Fine-tuned here: "
        f"{tuned_last['final']['accuracy']:.4f} after epoch {len(tuned_last['epochs'])}.",
    ]
    return section


# ---- 2. Per-layer probe and layer choices -----------------------------------------------------------------------
def probe_table(data: dict) -> tuple[str, str]:
    """The probe's table (first pooling) and the split it scores, from a layer_probe_<dataset>.json."""
    pooling, rows = next(iter(data["curves"].items()))
    splits = sorted({k.removesuffix("_accuracy") for k in rows[0] if k.endswith("_accuracy")} - {"eval"})
    metrics = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"))
    table = [{"layer": f"{r['layer']} ({r['name']})",
              **{f"{s} {m}": r[f"{s}_{k}"] for s in splits for k, m in metrics}} for r in rows]
    return reports.markdown_table(table), pooling


def section_layers(ctx: Context) -> Section:
    p = ctx.profile
    seed = p.imdb_seeds[0]
    section = Section("2. Per-layer probe and layer choices (IMDB, frozen)", seeds=[seed])
    probe = run_script("bench/bench_layer_probe.py",
                       flags(dataset="imdb", model=p.en_model, train=p.imdb_train or 25000,
                             test=p.imdb_eval or 25000, max_length=p.imdb_max_length, seed=seed),
                       ctx.folder("layers", "probe"), outputs=("layer_probe_imdb.json", "layer_probe_imdb.png"),
                       output_flag="--out")
    choices = [imdb_runs(ctx, "frozen", seed, layers) for layers in ("last", "last4_mean", "last4_concat",
                                                                     "scalar_mix")]
    section.runs = [probe, *choices]
    data = probe.json("layer_probe_imdb.json")
    table, pooling = probe_table(data)
    rows = []
    for run in choices:
        r = run.results
        rows.append({"layers": r["layers"], "accuracy": r["final"]["accuracy"], "macro-F1": r["final"]["macro_f1"],
                     "test loss": r["final"]["loss"], "head train s": f"{r['train_seconds']:.1f}"})
    section.body += [
        f"A logistic regression on standardised {pooling}-pooled features of each layer (the embeddings, then every "
        f"encoder layer), on the same reviews and cache entry as section 1 ({data['sizes']}, max_length "
        f"{data['max_length']}):",
        table,
        ctx.picture(section, probe.folder / "layer_probe_imdb.png", "layer_probe_imdb.png",
                    "per-layer probe accuracy and macro-F1 against layer"),
        "The recipe's layer choices and mixes, the frozen head of section 1 on each (`--layers`; one encoder pass "
        "serves all four):",
        reports.markdown_table(rows),
    ]
    weibo = ROOT / "bench" / "out" / "layer_probe_weibo.json"
    if p.name != "tiny" and weibo.is_file():
        data = json.loads(weibo.read_text(encoding="utf-8"))
        table, _ = probe_table(data)
        when = datetime.date.fromtimestamp(weibo.stat().st_mtime).isoformat()
        section.body += [
            f"Weibo, from `bench/out/layer_probe_weibo.json` (made by `python bench/bench_layer_probe.py --dataset "
            f"weibo` on {when}, {data['hardware']}; sizes {data['sizes']}):", table,
            ctx.picture(section, weibo.with_suffix(".png"), "layer_probe_weibo.png", "per-layer probe on Weibo")]
    return section


# ---- 3. Weibo emotion -------------------------------------------------------------------------------------------
WEIBO_TESTS = ("usual_test", "virus_test")


def tfidf_scores(p: Profile, seed: int, max_train: int | None) -> dict:
    """bench/bench_weibo.py's char TF-IDF(1-3) + logistic regression baseline on the recipe's splits."""
    from ..args import DataArguments
    from ..cleaning import Cleaner
    from ..data.splits import load_splits
    from ..studies.weibo import WEIBO_DEFAULTS, read_weibo_source

    bench = load_script("bench/bench_weibo.py")
    keys = ("dataset", "train_split", "eval_split", "text_column", "class_names", "max_length")
    data_args = DataArguments(**{k: WEIBO_DEFAULTS[k] for k in keys}, test_splits=list(WEIBO_TESTS), clean=True,
                              max_test_samples=p.weibo_test)
    splits = load_splits(data_args, seed, reader=read_weibo_source, cleaner=Cleaner())
    column = splits.tasks[0].label_column
    return {name: bench.tfidf_baseline(splits.train, splits.tests[name], column, max_train, seed)
            for name in WEIBO_TESTS}


def section_weibo(ctx: Context) -> Section:
    p = ctx.profile
    seed = 42
    section = Section("3. Weibo emotion (SMP2020-EWECT)", seeds=[seed])
    argv = [*flags(model_name_or_path=p.zh_model, max_length=p.weibo_max_length,
                   per_device_train_batch_size=p.weibo_batch, num_train_epochs=float(p.weibo_epochs),
                   learning_rate="1e-4", warmup_epochs=0.5, class_weighting="balanced",
                   train_sampling_strategy="group_by_length", max_train_samples=p.weibo_train,
                   max_eval_samples=p.weibo_eval, max_test_samples=p.weibo_test,
                   seed=seed), "--test_splits", *WEIBO_TESTS]
    model_run = recipe(ctx, "recipes/weibo_emotion.py", "weibo", f"finetune-seed{seed}", argv)
    baselines = [run_function("report:char TF-IDF(1-3) + logistic regression, balanced (bench/bench_weibo.py "
                              "tfidf_baseline)", {"train": n, "test": p.weibo_test, "seed": seed},
                              ctx.folder("weibo", f"tfidf-{n or 'all'}"), lambda n=n: tfidf_scores(p, seed, n))
                 for n in dict.fromkeys([p.weibo_train, *([None] if p.weibo_baseline_all else [])])]
    section.runs = [model_run, *baselines]
    r = model_run.results
    task = r["tasks"][0]["name"]
    rows = [{"model": f"{PUBLISHED_WEIBO['model']} (published)", "train posts": "usual train, 27,768",
             "usual_test accuracy": PUBLISHED_WEIBO["accuracy"], "usual_test macro-F1": PUBLISHED_WEIBO["macro_f1"],
             "virus_test accuracy": "-", "virus_test macro-F1": "-"},
            {"model": f"{Path(r['model']).name} fine-tuned", "train posts": f"virus_train, {r['train_examples']:,}",
             **{f"{s} {m}": r["test"][s][task][k] for s in WEIBO_TESTS
                for k, m in (("accuracy", "accuracy"), ("macro_f1", "macro-F1"))}}]
    for run in baselines:
        scores = run.json("result.json")
        rows.append({"model": "char TF-IDF(1-3) + LR (baseline)",
                     "train posts": f"virus_train, {scores[WEIBO_TESTS[0]]['train']:,}",
                     **{f"{s} {m}": scores[s][k] for s in WEIBO_TESTS
                        for k, m in (("accuracy", "accuracy"), ("macro_f1", "macro-F1"))}})
    per_class = r.get("test_per_class", {})
    class_rows = []
    for name in r["tasks"][0]["id2label"].values():
        row = {"class": name}
        for split in WEIBO_TESTS:
            report = per_class.get(split, {}).get(task, {}).get(name)
            if report:
                row.update({f"{split} precision": report["precision"], f"{split} recall": report["recall"],
                            f"{split} F1": report["f1-score"], f"{split} n": int(report["support"])})
        class_rows.append(row)
    section.body += [
        f"{Path(r['model']).name} fine-tuned on virus_train ({r['train_examples']:,} cleaned posts), the best epoch "
        f"by virus_eval macro-F1 ({r['eval_examples']:,} posts; {len(r['epochs'])} epochs run), balanced class "
        f"weights, lr 1e-4, max_length {r['max_length']}, length-grouped batches (evaluation longest first, "
        "predictions put back in row order); scored on usual_test and virus_test:",
        reports.markdown_table(rows),
        "Per class (precision, recall, F1 and support) on the test splits:",
        reports.markdown_table(class_rows, floatfmt="{:.3f}"),
        *[ctx.picture(section, model_run.folder / f"confusion_{s}.png", f"weibo_confusion_{s}.png",
                      f"confusion matrix on {s}") for s in WEIBO_TESTS],
        f"Against the published {PUBLISHED_WEIBO['accuracy']} / {PUBLISHED_WEIBO['macro_f1']} (accuracy / macro-F1 "
        "on usual_test): that model is bert-base-chinese (12 layers, hidden 768, ~102M parameters) trained on the "
        "usual training set (27,768 posts), which is not available here; this one is "
        f"{Path(r['model']).name} ({encoder_shape(r['model'])}) trained on the epidemic-topic "
        f"virus_train posts only ({r['train_examples']:,} of 8,606), so usual_test is out of its training topic.",
    ]
    return section


# ---- 4. Multi-task ----------------------------------------------------------------------------------------------
def plot_multitask(rows: list[dict], path: Path) -> Path:
    plt = reports.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["single"] for r in rows], width=0.4, label="single-task")
    ax.bar(x + 0.2, [r["joint"] for r in rows], width=0.4, label="joint (multi-task)")
    ax.set_xticks(x, [f"{r['task']}\n{r['metric']}" for r in rows])
    ax.set_xlabel("task and metric")
    ax.set_ylabel("test score")
    ax.set_ylim(0, 1)
    ax.set_title("IMDB: one head per task, alone or sharing the fine-tuned encoder")
    ax.legend()
    return reports.save_figure(fig, path)


def section_multitask(ctx: Context) -> Section:
    p = ctx.profile
    seed = 42
    section = Section("4. Multi-task: single-task against joint training", seeds=[seed])
    runs = {}
    for name, tasks in (("sentiment", ["sentiment"]), ("rating", ["rating"]), ("joint", ["sentiment", "rating"])):
        argv = ["--tasks", *[MULTITASK[t] for t in tasks], "--loss_weights", *["1"] * len(tasks),
                *flags(model_name_or_path=p.en_model, dataset="imdb", mode="finetune", pooling="cls",
                       max_length=p.multitask_max_length, max_train_samples=p.multitask_train or 25000,
                       max_eval_samples=p.multitask_eval or 25000, num_train_epochs=float(p.multitask_epochs),
                       per_device_train_batch_size=p.multitask_batch, learning_rate="5e-5", seed=seed),
                "--eval_strategy", "no", "--save_strategy", "no"]
        runs[name] = recipe(ctx, "recipes/multitask.py", "multitask", f"{name}-seed{seed}", argv)
    section.runs = list(runs.values())
    joint = runs["joint"].results
    rows = []
    for task in ("sentiment", "rating"):
        single = runs[task].results["per_task"][task]
        both = joint["per_task"][task]
        for key, metric in (("accuracy", "accuracy"), ("macro_f1", "macro-F1")):
            rows.append({"task": task, "metric": metric, "single": single[key], "joint": both[key],
                         "joint - single": both[key] - single[key]})
    picture = plot_multitask(rows, ctx.picture_path("multitask.png"))
    section.body += [
        f"IMDB reviews with two labels each: sentiment (2 classes) and the star rating (8 classes: 1-4, 7-10). "
        f"{Path(joint['model']).name} fine-tuned with CLS pooling, {joint['train_examples']:,} train / "
        f"{joint['eval_examples']:,} test reviews, max_length {joint['max_length']}, "
        f"{p.multitask_epochs:g} epochs, lr 5e-5; the joint run's loss is CE(sentiment) + CE(rating). Same data, "
        "epochs and steps in every condition.",
        reports.markdown_table(rows),
        ctx.drawn(section, picture, "single-task against joint scores per task"),
        ctx.picture(section, runs["joint"].folder / "loss_curve.png", "multitask_loss_curve.png",
                    "training loss of the joint run"),
    ]
    return section


# ---- 5. Ratings -------------------------------------------------------------------------------------------------
RATING_KEYS = (("accuracy", "accuracy"), ("off_by_one_accuracy", "off-by-one"), ("mae", "MAE"),
               ("macro_f1", "macro-F1"), ("rmse", "RMSE"), ("spearman", "Spearman"))


def section_rating(ctx: Context) -> Section:
    p = ctx.profile
    section = Section("5. Ratings: DMR Douban reviews (1-5 stars)", seeds=p.rating_seeds)
    common = flags(model_name_or_path=p.zh_model, max_length=p.rating_max_length,
                   num_train_epochs=float(p.rating_epochs), max_train_samples=p.rating_train,
                   max_eval_samples=p.rating_eval, dataset=DMR)
    mean_runs = [recipe(ctx, "recipes/rating.py", "rating", f"mean-seed{s}",
                        ["recipes/rating/douban_dmr.yaml", *common, "--seed", str(s), "--save_strategy", "no"])
                 for s in p.rating_seeds]
    attention = recipe(ctx, "recipes/rating.py", "rating", f"attention-seed{p.rating_seeds[0]}",
                       ["recipes/rating/douban_dmr_attention.yaml", *common, "--seed", str(p.rating_seeds[0]),
                        "--save_strategy", "no"])
    section.runs = [*mean_runs, attention]
    rows = []
    for label, runs in (("mean pooling (cached features)", mean_runs), ("self-attentive pooling", [attention])):
        metrics = [r.results["per_task"]["rating"] for r in runs]
        rows.append({"frozen zh encoder, classification": label, "seeds": len(runs),
                     **{m: mean_std([x.get(k) for x in metrics], 3) for k, m in RATING_KEYS}})
    first = mean_runs[0]
    r = first.results
    top_words = (first.folder / "top_words.md").read_text(encoding="utf-8").strip()
    section.body += [
        f"A classification head over the five star values on frozen {Path(r['model']).name} features, "
        f"{r['train_examples']:,} train / {r['eval_examples']:,} eval reviews (a seeded stratified 80/20 split of "
        f"DMR's distinct reviews; the seed also draws the split), max_length {r['max_length']}, "
        f"{p.rating_epochs:g} epochs at lr 1e-3. Off-by-one counts a prediction one star away as right; MAE is in "
        "stars.",
        reports.markdown_table(rows),
        f"Pictures of seed {p.rating_seeds[0]} (mean pooling): confusion matrices (plain and off-by-one, rows "
        "normalised), true and predicted ratings, the t-SNE map of the pooled eval features; then the attention "
        "weights of the self-attentive run over the characters of a few eval reviews.",
        ctx.picture(section, first.folder / "confusion_matrix.png", "rating_confusion.png", "rating confusion"),
        ctx.picture(section, first.folder / "confusion_off_by_one.png", "rating_confusion_off_by_one.png",
                    "off-by-one confusion"),
        ctx.picture(section, first.folder / "rating_histogram.png", "rating_histogram.png",
                    "true and predicted rating counts"),
        ctx.picture(section, first.folder / "tsne.png", "rating_tsne.png", "t-SNE of pooled features"),
        ctx.picture(section, attention.folder / "attention.png", "rating_attention.png",
                    "attention weights over review characters"),
        "Top words per rating (TF-IDF of character bigrams over the train reviews):",
        top_words,
    ]
    return section


# ---- 6. Methods ablation ----------------------------------------------------------------------------------------
METHODS_JSON = (ROOT / "bench" / "out" / "methods" / "methods.json", ROOT / "bench" / "out" / "methods.json")


def method_splits(name: str, entry: dict) -> tuple[str, str | None]:
    """The split the ablation reports on, and the one it selects by where that is another split, as the bench
    recorded them (IMDB: test for both; Weibo: virus_test, selecting by virus_eval)."""
    splits = entry.get("splits")
    if not splits:
        raise ValueError(f"methods.json: dataset {name} does not name its splits (written by an older bench); run "
                         "`python bench/bench_methods.py --stage all` again (it reuses every finished run)")
    reported, selection = splits["reported"], splits["selection"]
    return reported, (selection if selection != reported else None)


def plot_methods(tables: dict[str, tuple[str, list[dict]]], path: Path) -> Path:
    plt = reports.pyplot()
    fig, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables), 4), squeeze=False)
    for ax, (name, (reported, summary)) in zip(axes[0], tables.items()):
        means = [s["macro_f1"]["mean"] for s in summary]
        stds = [s["macro_f1"]["std"] or 0.0 for s in summary]
        ax.barh(range(len(summary)), means, xerr=stds, capsize=3, color="tab:blue")
        ax.set_yticks(range(len(summary)), [s["method"] for s in summary])
        ax.invert_yaxis()
        ax.set_ylabel("method")
        ax.set_xlabel(f"{reported} macro-F1 (mean ± std over seeds)")
        ax.set_title(name)
        low = min(m - s for m, s in zip(means, stds))
        ax.set_xlim(max(0.0, low - 0.05), min(1.0, max(m + s for m, s in zip(means, stds)) + 0.02))
    fig.suptitle("fine-tuning methods")
    return reports.save_figure(fig, path)


def methods_markdown(data: dict) -> tuple[list[str], dict[str, tuple[str, list[dict]]]]:
    body, tables = [], {}
    for name, entry in data["datasets"].items():
        reported, selection = method_splits(name, entry)
        for stage in ("screen", "confirm"):
            if stage not in entry:
                continue
            summary = entry[stage]["summary"]
            rows = []
            for s in summary:
                row = {"method": s["method"], "flags": " ".join(s["flags"]) or "-", "seeds": len(s["seeds"]),
                       f"{reported} accuracy": mean_std(s["accuracy"]["values"]),
                       f"{reported} macro-F1": mean_std(s["macro_f1"]["values"])}
                if selection and "selection_macro_f1" in s:
                    row[f"{selection} macro-F1 (selection)"] = mean_std(s["selection_macro_f1"]["values"])
                rows.append({**row, "wall s": mean_std(s["wall_s"]["values"], 0)})
            body += [f"{name}, {stage}:", reports.markdown_table(rows)]
            tables[name] = (reported, summary)  # the confirmation (several seeds) when there is one
    return body, tables


def section_methods(ctx: Context) -> Section:
    p = ctx.profile
    section = Section("6. Fine-tuning methods ablation")
    if p.methods_argv is not None:
        run = run_script("bench/bench_methods.py", [*p.methods_argv, "--imdb_model", p.en_model,
                                                    "--weibo_model", p.zh_model],
                         ctx.folder("methods", "ablation"), outputs=("methods.json",), output_flag="--out")
        section.runs = [run]
        data, source = run.json("methods.json"), None
    else:
        source = next((path for path in METHODS_JSON if path.is_file()), None)
        if source is None:
            section.body.append(
                "Not run yet. `python bench/bench_methods.py` (about two hours on a 2-core CPU: each method alone on "
                "one seed, then the best one and the baseline on three) writes `bench/out/methods/methods.json`; "
                "run the report again to show it here.")
            return section
        data = json.loads(source.read_text(encoding="utf-8"))
        when = datetime.date.fromtimestamp(source.stat().st_mtime).isoformat()
        args = data.get("args", {})
        section.extra_provenance += [
            f"- Source: `{relative(source)}`, made by `python bench/bench_methods.py` (stage {args.get('stage')}, "
            f"datasets {','.join(args.get('datasets', []))}, seeds {','.join(map(str, args.get('seeds', [])))}) on "
            f"{when}", f"- Hardware: {data.get('hardware', '?')}",
            f"- Run folders: `{relative(source.parent / 'runs')}`"]
        sizes = {"imdb": ("imdb_train", "imdb_test", "imdb_max_length", "epochs", "imdb_lr"),
                 "weibo": ("weibo_train", "weibo_eval", "weibo_max_length", "weibo_epochs", "weibo_lr")}
        for name in args.get("datasets", []):
            keys = sizes.get(name, ())
            if all(k in args for k in keys):  # train, eval/test, tokens, epochs, lr as the bench recorded them
                train, held_out, tokens, epochs, lr = (args[k] for k in keys)
                section.extra_provenance.append(
                    f"- Sizes, {name}: {train or 'all'} train / {held_out or 'all'} held-out rows, {tokens} tokens, "
                    f"{epochs:g} epochs, lr {lr:g}")
    seeds = sorted({row["seed"] for entry in data["datasets"].values() for stage in ("screen", "confirm")
                    for row in entry.get(stage, {}).get("rows", [])})
    section.seeds = seeds
    body, tables = methods_markdown(data)
    top = data.get("args", {}).get("top")
    carried = (f"the best {top} screened methods and their combination" if top and top > 1 else
               "the best screened method")
    section.body += [data.get("description") or f"Each method alone on the first seed (screen), then the baseline "
                     f"and {carried} on every seed (confirm); every row is a run of the dataset's recipe with the "
                     "method's flags.", *body]
    if tables:
        section.body.append(ctx.drawn(section, plot_methods(tables, ctx.picture_path("methods.png")),
                                      "macro-F1 per method"))
    return section


SECTIONS: dict[str, Callable[[Context], Section]] = {
    "imdb": section_imdb, "layers": section_layers, "weibo": section_weibo, "multitask": section_multitask,
    "rating": section_rating, "methods": section_methods,
}
