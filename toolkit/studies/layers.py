"""Per-layer probe: what each layer of a frozen encoder knows about a task.

One encoder pass per split gives a pooled vector for every layer (the feature cache's per-layer entry, shared with
the last4/scalar-mix layer choices), and a logistic regression on standardised features is trained per layer on
the train split and scored on every other split. The regression is deterministic (lbfgs, fixed seed), so two runs
on the same features give the same table.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
from transformers import DataCollatorWithPadding

from ..data.splits import Splits, tokenize
from ..evaluation import reports
from ..evaluation.metrics import classification_metrics
from ..training import run


def layer_names(num_layers: int) -> list[str]:
    """Row names of a per-layer feature tensor [N, L+1, H]: the embeddings, then encoder layers 1..L."""
    return ["embeddings", *(f"layer {i}" for i in range(1, num_layers))]


def per_layer_features(splits: Splits, model_args, data_args,
                       training_args) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (features [N, L+1, H], labels [N])}`` for train, eval and every test split, from the feature cache
    (one encoder pass per split on a miss). The first task's labels; ``model_args.pooling`` must be cls or mean."""
    # a multi-layer choice of a linear pooling is what makes the cache hold one pooled vector per layer
    model_args = dataclasses.replace(model_args, mode="frozen", layers="scalar_mix")
    data_args = dataclasses.replace(data_args, feature_cache=True)
    model = run.build_model(model_args, splits.tasks)
    if not model.pooler.per_layer_features:
        raise ValueError(f"--pooling {model_args.pooling} has no per-layer features; use cls or mean.")
    tokenizer = run.load_tokenizer(model_args)
    train_ds, eval_ds, _ = run.prepare_datasets(model, tokenizer, splits, model_args, data_args, training_args)
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=data_args.pad_to_multiple_of)
    datasets = {"train": train_ds, "eval": eval_ds}
    for name, ds in splits.tests.items():
        datasets[name] = run.model_dataset(model, tokenize(ds, tokenizer, data_args.max_length), collator,
                                           model_args, data_args, training_args)
    column = splits.tasks[0].label_column
    return {name: (ds.features.numpy(), ds.columns[column].numpy()) for name, ds in datasets.items()}


def probe_layers(features: dict[str, tuple[np.ndarray, np.ndarray]], train: str = "train",
                 class_weight: str | None = None, c: float = 1.0, seed: int = 0,
                 num_classes: int | None = None) -> list[dict]:
    """One logistic regression (standardised features) per layer, fit on ``train``; a row per layer with
    ``<split>_accuracy`` and ``<split>_macro_f1`` for every other split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, y_train = features[train]
    names = layer_names(x_train.shape[1])
    rows = []
    for layer, name in enumerate(names):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000, class_weight=class_weight,
                                                                 random_state=seed))
        clf.fit(x_train[:, layer], y_train)
        row = {"layer": layer, "name": name}
        for split, (x, y) in features.items():
            if split == train:
                continue
            metrics = classification_metrics(y, clf.predict(x[:, layer]), num_classes)
            row[f"{split}_accuracy"], row[f"{split}_macro_f1"] = metrics["accuracy"], metrics["macro_f1"]
        rows.append(row)
    return rows


def plot_layer_probe(curves: dict[str, list[dict]], split: str, path: str | Path, title: str) -> Path:
    """Accuracy and macro-F1 on ``split`` against layer, one pair of lines per curve (e.g. per pooling)."""
    plt = reports.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, rows in curves.items():
        layers = [r["layer"] for r in rows]
        ax.plot(layers, [r[f"{split}_accuracy"] for r in rows], marker="o", label=f"{label}: accuracy")
        ax.plot(layers, [r[f"{split}_macro_f1"] for r in rows], marker="s", linestyle="--", label=f"{label}: macro-F1")
    names = next(iter(curves.values()))
    ax.set_xticks([r["layer"] for r in names], ["emb", *(str(r["layer"]) for r in names[1:])])
    ax.set_xlabel("layer (emb = embedding output, then encoder layers)")
    ax.set_ylabel(f"{split} score")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return reports.save_figure(fig, path)


def markdown_rows(rows: Sequence[dict], splits: Sequence[str]) -> str:
    """A markdown table: layer, then accuracy and macro-F1 per split."""
    head = "| layer | " + " | ".join(f"{s} accuracy | {s} macro-F1" for s in splits) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(splits))]
    for r in rows:
        cells = " | ".join(f"{r[f'{s}_accuracy']:.4f} | {r[f'{s}_macro_f1']:.4f}" for s in splits)
        lines.append(f"| {r['layer']} ({r['name']}) | {cells} |")
    return "\n".join(lines)
