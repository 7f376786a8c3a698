"""Offline Weibo emotion bench: character TF-IDF + logistic regression vs fine-tuned small Chinese BERTs.

Trains on virus_train, selects epochs on virus_eval (macro-F1), reports accuracy and macro-F1 on
virus_test. Rows: the TF-IDF(1-3)+LR baseline (balanced class weights), zh-mini-mlm fine-tuned, and
(with --mlm continue|scratch) a model MLM-pretrained here (recipes/pretrain_mlm.py) then fine-tuned
the same way. Every size is an argument; the defaults are the GPU run (one 9-minute pretraining
command, then fine-tuning up to 30 epochs with early stopping):

    python bench/bench_weibo.py                      # GPU defaults: continue zh-mini-mlm 9 min, fine-tune all
    python bench/bench_weibo.py --mlm none --ft_epochs 4 --ft_batch 32 --warmup_epochs 0.5 \
        --class_weighting balanced                  # CPU: zh-mini-mlm on all of virus_train, no MLM step

On the idle 2-core CPU one epoch of virus_train (8,593 cleaned posts, batch 32) takes about 5 minutes, so
the CPU run fine-tunes for a few epochs and skips the MLM step; the continued MLM is the GPU's job.

The MLM corpus is the default of recipes/pretrain_mlm.py: SMP2020 usual_eval, virus_train, virus_eval,
ChnSentiCorp, waimai_10k, online_shopping_10_cats; virus_test (scored here) and usual_test are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from benchlib import load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from toolkit.args import CLASS_WEIGHTING, DataArguments  # noqa: E402
from toolkit.cleaning import Cleaner  # noqa: E402
from toolkit.data.readers import subsample  # noqa: E402
from toolkit.data.splits import load_splits  # noqa: E402
from toolkit.studies.weibo import WEIBO_DEFAULTS, read_weibo_source  # noqa: E402


def weibo_splits(args):
    """virus_train and virus_test as the recipe reads them (the study's reader, cleaner and seeded test subset);
    labels are ids into the six emotions, in column labels_label."""
    keys = ("train_split", "eval_split", "text_column", "class_names", "max_length")
    data_args = DataArguments(**{k: WEIBO_DEFAULTS[k] for k in keys}, dataset=args.dataset,
                              test_splits=["virus_test"], clean=args.clean == "true",
                              max_test_samples=args.test_samples)
    return load_splits(data_args, args.seed, reader=read_weibo_source, cleaner=Cleaner() if data_args.clean else None)


def tfidf_baseline(train, test, column: str, max_train: int | None, seed: int) -> dict:
    """Character (1-3)-gram TF-IDF + logistic regression with balanced class weights."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from toolkit.evaluation.metrics import classification_metrics

    train = subsample(train, max_train, seed)  # the subset the recipe trains on with --max_train_samples
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
    x_train = vectorizer.fit_transform(train["text"])
    clf = LogisticRegression(max_iter=2000, class_weight="balanced", C=2.0)
    clf.fit(x_train, train[column])
    metrics = classification_metrics(test[column], clf.predict(vectorizer.transform(test["text"])))
    return {"train": len(train), "seconds": time.perf_counter() - start, **metrics}


def finetune(model: str, out: Path, args, max_train: int | None) -> dict:
    argv = ["--model_name_or_path", model, "--output_dir", str(out), "--dataset", args.dataset,
            "--test_splits", "virus_test", "--learning_rate", str(args.ft_lr),
            "--num_train_epochs", str(args.ft_epochs),
            "--per_device_train_batch_size", str(args.ft_batch), "--class_weighting", args.class_weighting,
            "--early_stopping_patience", str(args.patience), "--warmup_epochs", str(args.warmup_epochs),
            "--max_length", str(args.max_length),
            "--report_to", args.report_to, "--seed", str(args.seed), "--save_total_limit", "1",
            "--train_sampling_strategy", "group_by_length", "--clean", str(args.clean)]
    for flag, value in (("--max_train_samples", max_train), ("--max_eval_samples", args.ft_max_eval),
                        ("--max_test_samples", args.test_samples)):
        if value:
            argv += [flag, str(value)]
    if args.mixed_precision != "no":
        argv += [f"--{args.mixed_precision}", "true"]
    start = time.perf_counter()
    results = load_recipe("weibo_emotion").main(argv)
    task = results["tasks"][0]["name"]  # the one emotion head
    return {"train": results["train_examples"], "epochs": len(results["epochs"]),
            "seconds": time.perf_counter() - start,
            **{k: results["test"]["virus_test"][task][k] for k in ("accuracy", "macro_f1")}}


def pretrain(out: Path, args) -> dict:
    argv = ["--output_dir", str(out), "--report_to", args.report_to, "--seed", str(args.seed),
            "--max_minutes", str(args.mlm_minutes), "--num_train_epochs", str(args.mlm_epochs),
            "--per_device_train_batch_size", str(args.mlm_batch), "--learning_rate", str(args.mlm_lr),
            "--eval_strategy", "no", "--save_strategy", "no", "--clean", str(args.clean),
            "--dataloader_num_workers", "0"]
    if args.mlm == "continue":
        argv += ["--init_from", args.model]
    else:
        argv += ["--num_hidden_layers", str(args.mlm_layers)]
    if args.mlm_max_texts:
        argv += ["--max_texts", str(args.mlm_max_texts)]
    argv += ["--bf16", str(args.mixed_precision == "bf16"), "--fp16", str(args.mixed_precision == "fp16")]
    return load_recipe("pretrain_mlm").main(argv)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT.parent / "shared" / "models" / "zh-mini-mlm"), help="Anchor model.")
    p.add_argument("--dataset", default="smp2020_ewect")
    p.add_argument("--out", default="runs/bench-weibo")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--clean", default="true", choices=["true", "false"])
    p.add_argument("--max_length", type=int, default=140)
    p.add_argument("--ft_max_train", type=int, help="Fine-tuning subset of virus_train (default all 8,606).")
    p.add_argument("--ft_max_eval", type=int, help="Subset of virus_eval for epoch selection (default all 2,000).")
    p.add_argument("--test_samples", type=int, help="Subset of virus_test (default all 3,000).")
    p.add_argument("--ft_epochs", type=float, default=30, help="Most fine-tuning epochs (early stopping).")
    p.add_argument("--ft_lr", type=float, default=1e-4)
    p.add_argument("--ft_batch", type=int, default=64)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--warmup_epochs", type=float, default=1.0, help="Linear warm-up of the fine-tuning, in epochs.")
    p.add_argument("--class_weighting", default="balanced", choices=CLASS_WEIGHTING)
    p.add_argument("--mlm", default="continue", choices=["none", "continue", "scratch"],
                   help="Pretrain here first: continue --model, or a new BERT from scratch (own vocabulary).")
    p.add_argument("--mlm_minutes", type=float, default=9.0, help="Wall-clock budget of the pretraining.")
    p.add_argument("--mlm_epochs", type=float, default=30, help="Epochs the lr schedule decays over.")
    p.add_argument("--mlm_batch", type=int, default=256)
    p.add_argument("--mlm_lr", type=float, default=3e-4)
    p.add_argument("--mlm_layers", type=int, default=6, help="Layers of a from-scratch model.")
    p.add_argument("--mlm_max_texts", type=int, help="Corpus subset (default all ~95k texts).")
    p.add_argument("--mixed_precision", default="auto", choices=["auto", "no", "fp16", "bf16"])
    p.add_argument("--report_to", default="none")
    args = p.parse_args(argv)

    import torch

    if args.mixed_precision == "auto":
        args.mixed_precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    hardware = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                else f"CPU only, {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
                     f"torch threads {torch.get_num_threads()}")
    out = Path(args.out)
    splits = weibo_splits(args)
    train, test = splits.train, splits.tests["virus_test"]  # test: the same seeded subset the recipe scores
    column = splits.tasks[0].label_column

    rows = []
    base = tfidf_baseline(train, test, column, None, args.seed)
    rows.append(("char TF-IDF(1-3) + LR, balanced", "-", base["train"], "-", "balanced", base))
    if args.ft_max_train and args.ft_max_train < len(train):
        small = tfidf_baseline(train, test, column, args.ft_max_train, args.seed)
        rows.append(("char TF-IDF(1-3) + LR, balanced, same subset", "-", small["train"], "-", "balanced", small))
    anchor = finetune(args.model, out / "ft-zh-mini-mlm", args, args.ft_max_train)
    rows.append(("zh-mini-mlm fine-tuned", "as shipped", anchor["train"], anchor["epochs"], args.class_weighting,
                 anchor))
    if args.mlm != "none":
        mlm_dir = out / f"mlm-{args.mlm}"
        pre = pretrain(mlm_dir, args)
        ours = finetune(str(mlm_dir), out / f"ft-mlm-{args.mlm}", args, args.ft_max_train)
        what = (f"{args.mlm} MLM {pre['steps']} steps / {pre['train_seconds']:.0f}s, held-out MLM loss "
                f"{pre['eval_mlm_loss']:.2f}")
        rows.append((f"MLM-{args.mlm} ({pre['parameters'] / 1e6:.1f}M) fine-tuned", what, ours["train"],
                     ours["epochs"], args.class_weighting, ours))

    print(f"\n## Weibo emotion bench: virus_train -> virus_test ({len(test)} posts)\nhardware: {hardware}; "
          f"mixed precision: {args.mixed_precision}; max_length {args.max_length}; "
          f"fine-tuning: lr {args.ft_lr}, batch {args.ft_batch}, warm-up {args.warmup_epochs:g} epoch(s), up to "
          f"{args.ft_epochs:g} epochs, patience "
          f"{args.patience}, eval posts {args.ft_max_eval or 'all 2,000'}; cleaning: {args.clean}\n")
    print("| model | pretraining | train posts | epochs run | class weighting | accuracy | macro-F1 | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for name, pre, n, epochs, weighting, r in rows:
        print(f"| {name} | {pre} | {n} | {epochs} | {weighting} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
              f"{r['seconds']:.0f} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps({"hardware": hardware, "args": vars(args), "rows": [
        {"model": r[0], "pretraining": r[1], "train": r[2], "epochs": r[3], "weighting": r[4], **r[5]} for r in rows
    ]}, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
