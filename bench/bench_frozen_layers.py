"""Frozen-encoder layer study on IMDB: one encoder pass, then a head per layer choice.

    python bench/bench_frozen_layers.py                                  # full IMDB (25k/25k), max_length 512
    python bench/bench_frozen_layers.py --train 2000 --test 2000         # a quick look

Runs the IMDB recipe (frozen MiniLM, the study's MLP head, 3 epochs) once per layer choice with
one shared feature cache. The first run encodes every review once and stores one pooled vector
per layer; the other choices (last-4 mean, scalar mix, last layer) read that entry, so each costs
only its head's training. Accuracy is on the whole test split given; epochs are chosen by nothing
(the final epoch is reported), as in the study. A logistic regression (standardised features, sklearn
defaults) on the same cached features of the last layer and of the last-4 concatenation tells whether
the head or the features limit the accuracy.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchlib import hardware, load_recipe

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("last4_concat", "last4_mean", "scalar_mix", "last")  # the first run fills the shared per-layer entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, help="IMDB train reviews (seeded subset; default all 25,000).")
    parser.add_argument("--test", type=int, help="IMDB test reviews (seeded subset; default all 25,000).")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--pooling", default="mean", choices=["cls", "mean"])
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--cache_dir", help="Feature cache folder (default: a temporary one, removed after).")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="bench-layers-")
    work = Path(tmp.name)
    cache = Path(args.cache_dir) if args.cache_dir else work / "features"
    # frozen_full.yaml: all reviews unless --train/--test say otherwise; every other setting is a flag here
    common = [str(ROOT / "recipes" / "imdb" / "frozen_full.yaml"), "--model_name_or_path", args.model,
              "--mode", "frozen", "--pooling", args.pooling,
              "--max_length", str(args.max_length), "--num_train_epochs", str(args.epochs),
              "--learning_rate", str(args.learning_rate), "--report_to", "none", "--save_strategy", "no",
              "--feature_cache_dir", str(cache)]
    for flag, value in (("--max_train_samples", args.train), ("--max_eval_samples", args.test)):
        if value:
            common += [flag, str(value)]
    rows = []
    for layers in ORDER:
        start = time.perf_counter()
        results = load_recipe("imdb").main([*common, "--layers", layers, "--output_dir", str(work / layers)])
        final = results["final"]
        rows.append((layers, final["accuracy"], final["macro_f1"], time.perf_counter() - start))
        print(f"{layers}: accuracy {final['accuracy']:.4f}", flush=True)
    probe = logistic_probe([*common, "--layers", "scalar_mix", "--output_dir", str(work / "probe")])
    tmp.cleanup()

    print(f"\nIMDB frozen {args.model} ({args.pooling} pooling), train {args.train or 'all'} / test "
          f"{args.test or 'all'}, max_length {args.max_length}, head 256 + dropout 0.1, lr {args.learning_rate:g}, "
          f"batch 32, {args.epochs:g} epochs; {hardware()}; torch {torch.__version__}\n")
    print("| layers | accuracy | macro-F1 | wall s |")
    print("|---|---|---|---|")
    for layers, accuracy, f1, wall in rows:
        print(f"| {layers} | {accuracy:.4f} | {f1:.4f} | {wall:.0f} |")
    print("\n| same cached features, logistic regression | accuracy |\n|---|---|")
    for layers, accuracy in probe.items():
        print(f"| {layers} | {accuracy:.4f} |")


def logistic_probe(argv: list[str]) -> dict[str, float]:
    """Test accuracy of a logistic regression on the cached per-layer features (a cache hit after the sweep)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args
    from toolkit.data.splits import load_splits
    from toolkit.modeling.pooling import combine_layers
    from toolkit.training import run

    model_args, data_args, training_args = parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments), argv)
    splits = load_splits(data_args, training_args.seed)
    model = run.build_model(model_args, splits.tasks)
    trainer = run.build_trainer(model, run.load_tokenizer(model_args), splits, model_args, data_args, training_args)
    train, test = trainer.train_dataset, trainer.eval_dataset  # FeatureDatasets: the cached per-layer vectors
    column = splits.tasks[0].label_column  # labels_label: IMDB's neg/pos ids
    scores = {}
    for layers in ("last", "last4_concat"):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        clf.fit(combine_layers(train.features, layers).numpy(), train.columns[column].numpy())
        scores[layers] = clf.score(combine_layers(test.features, layers).numpy(), test.columns[column].numpy())
    return scores


if __name__ == "__main__":
    main()
