"""k-fold training with an ensemble: K models on K-1 folds of the train split each, one ensemble of them.

The folds are seeded and, for one classification task, stratified by its label (with one source per task, by task).
Fold k trains from the run's model with its pooler and heads initialised under ``seed + k``, selects on its held-out
fold (early stopping and ``load_best_model_at_end`` act there), and is saved under ``<output_dir>/folds/NN``. Every
fold and the ensemble (the mean of the folds' class probabilities; for a regressor, of their predictions) are scored
on the eval split and the test splits, none of which any fold trained on: results.json, results.md, and
``ensemble_<split>.jsonl`` with each row's fold and ensemble probabilities.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import datasets
import numpy as np
import torch

from ..data.readers import DataError
from ..data.splits import Splits, test_name
from ..evaluation import reports
from ..evaluation.metrics import present_rows, task_metrics, task_predictions
from ..modeling.features import FeatureDataset
from . import run
from .search import restart_model

logger = logging.getLogger(__name__)

FOLDS_DIR = "folds"
HEADLINE = ("accuracy", "macro_f1", "mae", "rmse")


def fold_indices(splits: Splits, k: int, seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], str | None]:
    """K (train rows, held-out rows) pairs over the train split, and what they are stratified by (None: not)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(splits.train)
    if n < k:
        raise DataError(f"--kfold {k} needs at least {k} train rows, but the train split has {n}; lower --kfold.")
    task = splits.tasks[0]
    strata, by = None, None
    if len(splits.tasks) == 1 and not task.is_regression:
        strata, by = np.asarray(splits.train[task.label_column]), task.name
        names = task.label_names
        counts = {names[c] if 0 <= c < len(names) else str(c): int((strata == c).sum()) for c in np.unique(strata)}
        counts.update({name: 0 for name in names if name not in counts})
        rarest = min(counts, key=counts.get)
        if counts[rarest] < k:
            raise DataError(f"--kfold {k} needs at least {k} train rows of every class of task {task.name!r} (one "
                            f"per fold), but class {rarest!r} has {counts[rarest]}; lower --kfold to at most "
                            f"{max(counts[rarest], 1)} or add rows.")
    elif "task_ids" in splits.train.column_names:
        strata, by = np.asarray(splits.train["task_ids"]), "task"
    rows = np.arange(n)
    if strata is None:
        folds = KFold(n_splits=k, shuffle=True, random_state=seed).split(rows)
    else:
        folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(rows, strata)
    return [(np.sort(tr), np.sort(ho)) for tr, ho in folds], by


def select_rows(ds, rows: np.ndarray):
    """The given rows of a prepared split: tokens (``datasets.Dataset``) or cached features."""
    if isinstance(ds, FeatureDataset):
        index = torch.as_tensor(rows, dtype=torch.long)
        return FeatureDataset(ds.features[index], {k: v[index] for k, v in ds.columns.items()})
    return ds.select(rows.tolist())


def as_outputs(tasks, predictions) -> list[np.ndarray]:
    """Per task: class probabilities (classification) or predicted values (regression) from a head's outputs."""
    outputs = []
    for task, logits in zip(tasks, run.as_tuple(predictions)):
        pred = task_predictions(task, np.asarray(logits))
        outputs.append(pred["values"] if task.is_regression else pred["probabilities"])
    return outputs


def as_logits(task, output: np.ndarray) -> np.ndarray:
    """What ``task_metrics`` reads: log-probabilities (softmax gives the probabilities back) or the values."""
    return output if task.is_regression else np.log(np.clip(output, 1e-12, None))


def split_metrics(tasks, outputs: Sequence[np.ndarray], labels: Sequence) -> dict[str, dict]:
    return {task.name: m for task, out, y in zip(tasks, outputs, labels)
            if (m := task_metrics(task, as_logits(task, out), np.asarray(y)))}


def run_kfold(trainer, splits: Splits, model_args, data_args, reporters: Sequence = ()) -> dict:
    """Train one model per fold on the datasets ``trainer`` was built with, score each and their ensemble, and
    write the results; {} on other processes."""
    args, tasks = trainer.args, splits.tasks
    out, k = Path(args.output_dir), int(args.kfold)
    if reporters:
        logger.warning("--kfold: the recipe's own reports describe one model and are not written for an ensemble.")
    folds, stratified_by = fold_indices(splits, k, args.seed)
    template, tokenizer, collator = trainer.model, trainer.processing_class, trainer.data_collator
    prepared_train = trainer.train_dataset
    # The held-out splits every fold and the ensemble are scored on: the eval split, then the test splits.
    scored = {test_name(data_args.eval_split): (splits.eval, trainer.eval_dataset)}
    for name, ds in splits.tests.items():
        scored[name] = (ds, run.test_dataset(template, tokenizer, ds, model_args, data_args, args))
    labels = {name: [np.asarray(ds[t.label_column]) for t in tasks] for name, (ds, _) in scored.items()}
    template = template.to("cpu")
    trainer.model = trainer.model_wrapped = None  # each fold trains its own copy

    fold_records, fold_outputs = [], {name: [] for name in scored}
    for index, (train_rows, held_rows) in enumerate(folds):
        fold_args = copy.copy(args)
        fold_args.output_dir = str(out / FOLDS_DIR / f"{index:02d}")
        fold_args.seed = int(args.seed) + index
        fold_args.kfold = None
        Path(fold_args.output_dir).mkdir(parents=True, exist_ok=True)
        logger.info("fold %d/%d: %d train rows, %d held out (seed %d)", index + 1, k, len(train_rows),
                    len(held_rows), fold_args.seed)
        model = restart_model(template, fold_args.seed)
        fold = run.make_trainer(model, tokenizer, select_rows(prepared_train, train_rows),
                                select_rows(prepared_train, held_rows), collator, data_args, fold_args)
        fold.train()
        run.save_final_model(fold, tokenizer)
        dev = fold.evaluate()
        record = {"fold": index, "seed": fold_args.seed, "train_rows": len(train_rows),
                  "held_out_rows": len(held_rows),
                  "dir": fold_args.output_dir, "best_checkpoint": fold.state.best_model_checkpoint,
                  "dev": {key.removeprefix("eval_"): value for key, value in dev.items()
                          if not key.endswith(("_runtime", "_per_second"))},
                  "train_seconds": round(fold.train_seconds(), 1), "test": {}}
        for name, (_, prepared) in scored.items():
            outputs = as_outputs(tasks, fold.predict(prepared, metric_key_prefix=name).predictions)
            fold_outputs[name].append(outputs)
            record["test"][name] = split_metrics(tasks, outputs, labels[name])
        fold_records.append(record)
        run.remove_checkpoints(fold_args)
        fold.model = fold.model_wrapped = None
        del model, fold

    if not trainer.is_world_process_zero():
        return {}
    ensemble = {name: [np.mean([fo[t] for fo in fold_outputs[name]], axis=0) for t in range(len(tasks))]
                for name in scored}
    ensemble_metrics = {name: split_metrics(tasks, ensemble[name], labels[name]) for name in scored}
    for name, (ds, _) in scored.items():
        write_ensemble_rows(out / f"ensemble_{name}.jsonl", tasks, ds, labels[name], fold_outputs[name],
                            ensemble[name])
    first = next(iter(scored))
    table = fold_table(tasks, fold_records, ensemble_metrics, first)
    results = {
        "model": model_args.model_name_or_path, "mode": template.config.mode, "pooling": template.config.pooling,
        "layers": template.config.layers, "max_length": template.config.max_length,
        "tasks": [asdict(t) for t in tasks], "train_examples": len(splits.train),
        "kfold": {"k": k, "seed": args.seed, "stratified_by": stratified_by, "folds": fold_records,
                  "ensemble": {"method": "mean of the folds' class probabilities (regression: of their predictions)",
                               "scored_on": list(scored), "metrics": ensemble_metrics},
                  "mean_over_folds": mean_over_folds(fold_records, scored), "table": table},
        "per_task": ensemble_metrics[first],  # the headline: the ensemble on the first held-out split
        "test": {name: {"examples": len(ds), **ensemble_metrics[name]} for name, (ds, _) in scored.items()},
        "train_seconds": round(sum(r["train_seconds"] for r in fold_records), 1),
    }
    results = reports.finite(results)
    markdown = (f"# {results['model']} ({results['mode']}): {k}-fold ensemble\n\n"
                f"{k} folds of the {len(splits.train)} train rows (seed {args.seed}, "
                f"{'stratified by ' + stratified_by if stratified_by else 'not stratified'}); each fold's model "
                f"evaluated (and with --load_best_model_at_end selected) on its held-out fold (dev) and scored on "
                f"'{first}'; the ensemble averages the folds' class probabilities.\n\n"
                + reports.markdown_table(table, floatfmt="{:.4g}"))
    for name in list(scored)[1:]:
        markdown += f"\n## {name}\n\n" + reports.markdown_table(
            fold_table(tasks, fold_records, ensemble_metrics, name, dev=False), floatfmt="{:.4g}")
    reports.write_text_atomic(out / "results.md", markdown)
    reports.write_json(out / "results.json", results)
    return results


def fold_table(tasks, records: list[dict], ensemble: dict, split: str, dev: bool = True) -> list[dict]:
    """Rows: each fold (dev = its held-out fold, and the split), the mean over folds, and the ensemble."""
    rows = []
    for record in records:
        row = {"model": f"fold {record['fold']}"}
        for task in tasks:
            prefix = "" if len(tasks) == 1 else f"{task.name}_"
            if dev:
                row.update({f"dev_{prefix}{m}": record["dev"].get(f"{prefix}{m}") for m in HEADLINE
                            if f"{prefix}{m}" in record["dev"]})
            row.update({f"{split}_{prefix}{m}": v for m, v in record["test"][split].get(task.name, {}).items()
                        if m in HEADLINE})
        rows.append(row)
    keys = list(rows[0])
    mean = {"model": "mean of folds"}
    mean.update({key: float(np.mean([r[key] for r in rows if r.get(key) is not None])) for key in keys[1:]
                 if any(r.get(key) is not None for r in rows)})
    ensemble_row = {"model": "ensemble", **{key: None for key in keys[1:] if key.startswith("dev_")}}
    for task in tasks:
        prefix = "" if len(tasks) == 1 else f"{task.name}_"
        ensemble_row.update({f"{split}_{prefix}{m}": v for m, v in ensemble[split].get(task.name, {}).items()
                             if m in HEADLINE})
    return rows + [mean, {key: ("" if ensemble_row.get(key) is None else ensemble_row[key]) for key in keys}]


def mean_over_folds(records: list[dict], scored: dict) -> dict:
    """Mean and standard deviation over folds of every metric, per held-out split and task."""
    out = {}
    for name in scored:
        out[name] = {}
        for task, metrics in records[0]["test"][name].items():
            values = {m: [r["test"][name][task][m] for r in records] for m in metrics if m != "n"}
            out[name][task] = {m: {"mean": float(np.mean(v)), "std": float(np.std(v))} for m, v in values.items()}
    return out


def write_ensemble_rows(path: Path, tasks, ds: datasets.Dataset, labels: Sequence, fold_outputs: list,
                        ensemble: list) -> None:
    """One JSON line per row, in order: its text, label, the ensemble's prediction and probabilities (or value), and
    every fold's; with several tasks, one entry per task."""
    import json

    texts = list(ds["text"])
    with open(path, "w", encoding="utf-8") as f:
        for i, text in enumerate(texts):
            entries = {}
            for t, task in enumerate(tasks):
                y = labels[t][i]
                present = bool(present_rows(task, np.asarray([y]))[0])
                if task.is_regression:
                    entry = {"label": float(y) if present else None, "predicted": float(ensemble[t][i]),
                             "folds": [float(fo[t][i]) for fo in fold_outputs]}
                else:
                    names = task.label_names
                    entry = {"label": names[int(y)] if present else None,
                             "predicted": names[int(np.argmax(ensemble[t][i]))],
                             "probabilities": dict(zip(names, map(float, ensemble[t][i]))),
                             "fold_probabilities": [list(map(float, fo[t][i])) for fo in fold_outputs]}
                entries[task.name] = entry
            row = {"text": text, **(next(iter(entries.values())) if len(tasks) == 1 else entries)}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
