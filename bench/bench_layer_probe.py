"""Per-layer probe: a logistic regression on each layer's frozen features (embeddings and every encoder layer).

    python bench/bench_layer_probe.py --dataset imdb --train 2000 --test 2000 --max_length 256   # MiniLM
    python bench/bench_layer_probe.py --dataset weibo                 # zh-mini-mlm, all virus_train, max_length 140
    python bench/bench_layer_probe.py --dataset imdb --poolings mean,cls

Each split is encoded once per pooling into the per-layer feature cache ($TOOLKIT_CACHE/features, or --cache_dir;
a second run is a cache hit), then toolkit.studies.layers fits a logistic regression on standardised features
(lbfgs, C=--C, deterministic) per layer on the train split. IMDB scores the seeded test subset (the recipe's eval
split); Weibo trains on virus_train, scores virus_eval and virus_test, and names the layer virus_eval selects
(macro-F1). Prints a markdown table per pooling and writes layer_probe_<dataset>.png/.json/.md into --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from benchlib import ROOT, hardware

sys.path.insert(0, str(ROOT))

from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args  # noqa: E402
from toolkit.data.splits import load_splits  # noqa: E402
from toolkit.evaluation.reports import write_json, write_text_atomic  # noqa: E402
from toolkit.studies import layers as probe  # noqa: E402

ZH_MINI = ROOT.parent / "shared" / "models" / "zh-mini-mlm"
STUDY = {  # dataset -> recipe YAML, model, max_length, splits scored, class weighting of the regression
    "imdb": {"config": ROOT / "recipes" / "imdb" / "cpu.yaml", "model": "minilm", "max_length": 256,
             "scored": ["eval"], "names": {"eval": "test"}, "class_weight": None},
    "weibo": {"config": ROOT / "recipes" / "weibo_emotion" / "cpu.yaml", "model": str(ZH_MINI), "max_length": 140,
              "scored": ["eval", "virus_test"], "names": {"eval": "virus_eval"}, "class_weight": "balanced"},
}


def load(dataset: str, pooling: str, args) -> tuple:
    """The recipe's splits and arguments for one pooling (frozen encoder, per-layer cache)."""
    study = STUDY[dataset]
    argv = [str(study["config"]), "--model_name_or_path", args.model or study["model"], "--mode", "frozen",
            "--pooling", pooling, "--layers", "scalar_mix",
            "--max_length", str(args.max_length or study["max_length"]), "--report_to", "none",
            "--output_dir", str(Path(args.out) / "unused"), "--seed", str(args.seed)]
    if args.cache_dir:
        argv += ["--feature_cache_dir", args.cache_dir]
    if dataset == "weibo":
        from toolkit.studies.weibo import WEIBO_DEFAULTS

        argv += ["--test_splits", "virus_test"]
        parsed = parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments),
                            argv + sizes(args), defaults=WEIBO_DEFAULTS)
    else:
        parsed = parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments), argv + sizes(args))
    model_args, data_args, training_args = parsed
    if dataset == "weibo":
        from toolkit.cleaning import Cleaner
        from toolkit.studies.weibo import read_weibo_source

        splits = load_splits(data_args, training_args.seed, reader=read_weibo_source,
                             cleaner=Cleaner() if data_args.clean else None)
    else:
        splits = load_splits(data_args, training_args.seed)
    return splits, model_args, data_args, training_args


def sizes(args) -> list[str]:
    """Subset flags; IMDB's defaults are the recipe's 2,000/2,000, Weibo's are every post."""
    limits = ({"--max_train_samples": args.train, "--max_eval_samples": args.test} if args.dataset == "imdb" else
              {"--max_train_samples": args.train, "--max_eval_samples": args.eval, "--max_test_samples": args.test})
    return [item for flag, value in limits.items() if value for item in (flag, str(value))]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="imdb", choices=sorted(STUDY))
    p.add_argument("--model", help="Encoder (default: minilm for imdb, ../shared/models/zh-mini-mlm for weibo).")
    p.add_argument("--poolings", default="mean", help="Comma-separated, from cls,mean (each is one encoder pass).")
    p.add_argument("--max_length", type=int, help="Tokens per text (default: imdb 256, weibo 140).")
    p.add_argument("--train", type=int, help="Train subset (default: imdb 2,000; weibo all 8,606 of virus_train).")
    p.add_argument("--eval", type=int, help="Weibo: virus_eval subset (default all 2,000).")
    p.add_argument("--test", type=int, help="Test subset (default: imdb 2,000; weibo all 3,000 of virus_test).")
    p.add_argument("--C", type=float, default=1.0, help="Inverse L2 strength of the logistic regression.")
    p.add_argument("--seed", type=int, default=42, help="Seed of the data subsets and the regression.")
    p.add_argument("--cache_dir", help="Feature cache folder (default $TOOLKIT_CACHE/features).")
    p.add_argument("--out", default=str(ROOT / "bench" / "out"), help="Folder for the PNG, JSON and markdown.")
    args = p.parse_args(argv)
    study = STUDY[args.dataset]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    curves, timings, splits = {}, {}, None
    for pooling in args.poolings.split(","):
        start = time.perf_counter()
        splits, model_args, data_args, training_args = load(args.dataset, pooling, args)
        features = probe.per_layer_features(splits, model_args, data_args, training_args)
        encoded = time.perf_counter()
        rows = probe.probe_layers(features, class_weight=study["class_weight"], c=args.C, seed=args.seed,
                                  num_classes=len(splits.label_names))
        curves[pooling] = [{**r, **{f"{study['names'].get(s, s)}_{m}": r.pop(f"{s}_{m}")
                                    for s in study["scored"] for m in ("accuracy", "macro_f1")}} for r in rows]
        timings[pooling] = {"features_s": round(encoded - start, 1),
                            "probe_s": round(time.perf_counter() - encoded, 1)}
        print(json.dumps({"pooling": pooling, **timings[pooling]}), flush=True)

    scored = [study["names"].get(s, s) for s in study["scored"]]
    model = model_args.model_name_or_path
    shape = {"train": len(splits.train), scored[0]: len(splits.eval), **{k: len(v) for k, v in splits.tests.items()}}
    weight = study["class_weight"] or "none"
    header = (f"{args.dataset}: {Path(model).name} frozen, max_length {data_args.max_length}, sizes "
              f"{', '.join(f'{k} {v}' for k, v in shape.items())}; probe: logistic regression on standardised "
              f"features per layer (lbfgs, C={args.C:g}, class weights {weight}); {hardware()}, torch "
              f"{torch.__version__}")
    markdown = [f"## Per-layer probe, {header}\n"]
    for pooling, rows in curves.items():
        markdown.append(f"\n### {pooling} pooling ({timings[pooling]['features_s']:.0f} s features, "
                        f"{timings[pooling]['probe_s']:.0f} s probes)\n\n" + probe.markdown_rows(rows, scored))
        if len(scored) > 1:
            best = max(rows, key=lambda r: r[f"{scored[0]}_macro_f1"])
            markdown.append(f"\n\n{scored[0]} (macro-F1) selects layer {best['layer']} ({best['name']}): "
                            f"{scored[1]} accuracy {best[f'{scored[1]}_accuracy']:.4f}, macro-F1 "
                            f"{best[f'{scored[1]}_macro_f1']:.4f}")
    report = "".join(markdown) + "\n"
    print("\n" + report)
    picture = probe.plot_layer_probe(curves, scored[-1], out / f"layer_probe_{args.dataset}.png",
                                     f"{args.dataset} ({Path(model).name}): per-layer logistic probe on {scored[-1]}")
    write_text_atomic(out / f"layer_probe_{args.dataset}.md", report)
    write_json(out / f"layer_probe_{args.dataset}.json",
               {"dataset": args.dataset, "model": model, "max_length": data_args.max_length, "sizes": shape,
                "probe": {"kind": "logistic regression, standardised features", "C": args.C, "class_weight": weight},
                "hardware": hardware(), "timings": timings, "curves": curves, "picture": picture.name})
    print(f"wrote {picture}, {out / f'layer_probe_{args.dataset}.md'}, .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
