"""SMP2020-EWECT Weibo emotion: the reader of the competition files, the study's defaults, and the scoring of a
saved model on labelled files (``test.sh``).

The competition files are JSON lists of ``{"id", "content", "label"}`` with six labels. Records without
``content`` or with unknown labels are rejected with a message naming the file and record. Training goes through
the common run (``recipes/weibo_emotion.py``): posts cleaned with the ``Cleaner`` saved into the model, empty
posts after cleaning dropped (counted), the best epoch by eval macro-F1, the test splits scored at the end.

    python -m toolkit.studies.weibo --model runs/weibo-emotion --test_file virus_test
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.readers import DataError, LoadReport, find_named_dataset, read_json, subsample
from ..data.splits import test_name

logger = logging.getLogger(__name__)

WEIBO_LABELS = ["happy", "angry", "sad", "fear", "surprise", "neutral"]
# Short split names -> competition file names (the usual train file is not shipped with the offline data).
SMP2020_FILES = {
    "usual_train": "usual_train.json",
    "usual_eval": "usual_eval_labeled.json",
    "usual_test": "usual_test_labeled.json",
    "virus_train": "virus_train.json",
    "virus_eval": "virus_eval_labeled.json",
    "virus_test": "virus_test_labeled.json",
}
# The study's defaults, layered below a recipe's YAML (``parse_args(..., defaults=WEIBO_DEFAULTS)``): the
# competition files, cleaned posts of at most 140 tokens, batch 64, one warm-up epoch, up to 30 epochs with early
# stopping, the best epoch by eval macro-F1 (two checkpoints kept while training: the best and the last).
WEIBO_DEFAULTS = {
    "dataset": "smp2020_ewect", "train_split": "virus_train", "eval_split": "virus_eval",
    "test_splits": ["virus_test", "usual_eval", "usual_test"], "text_column": "content",
    "class_names": list(WEIBO_LABELS), "max_length": 140, "clean": True,
    "per_device_train_batch_size": 64, "per_device_eval_batch_size": 128, "num_train_epochs": 30.0,
    "warmup_epochs": 1.0, "early_stopping_patience": 5, "load_best_model_at_end": True,
    "metric_for_best_model": "macro_f1", "greater_is_better": True, "save_total_limit": 2,
    "output_dir": "runs/weibo-emotion",
}


# ---- reading ------------------------------------------------------------------------------------------------------
def resolve_split_file(split: str, dataset: str = "smp2020_ewect", data_dir: str | None = None) -> Path:
    """The JSON file of a split name (``virus_test``), a file name inside the dataset folder, or a path."""
    path = Path(split).expanduser()
    if path.is_file():
        return path
    given = Path(dataset).expanduser()
    folder = given if given.is_dir() else find_named_dataset(dataset, data_dir)
    if folder is None:
        raise DataError(f"Dataset folder '{dataset}' not found (looked in ../shared/data, $TOOLKIT_DATA, --data_dir); "
                        "pass --dataset /path/to/smp2020_ewect.")
    candidates = [folder / SMP2020_FILES.get(split, split), folder / f"{split}.json", folder / f"{split}_labeled.json"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in folder.glob("*.json"))
    raise DataError(f"Split '{split}' has no file in {folder} (files: {known}); use a split name such as "
                    f"{sorted(SMP2020_FILES)} or a path to a JSON file.")


def read_smp2020(path: str | Path, label_names: Sequence[str] = WEIBO_LABELS, text_key: str = "content",
                 label_key: str = "label"):
    """One competition JSON file as ``(Dataset[id, <text_key>, label], LoadReport)``; labels are checked per
    record (names, or ids into ``label_names``) and returned as names."""
    import datasets

    path = Path(path)
    records = read_json(path, "a list of {id, content, label}")
    if isinstance(records, dict):  # some releases wrap the list
        records = next((v for v in records.values() if isinstance(v, list)), None)
    if not isinstance(records, list) or not records:
        raise DataError(f"{path}: expected a non-empty JSON list of {{id, content, label}} records.")
    index = {name: i for i, name in enumerate(label_names)}
    ids, texts, labels = [], [], []
    for i, record in enumerate(records):
        where = f"{path}: record {i}" + (f" (id {record.get('id')})" if isinstance(record, dict) else "")
        if not isinstance(record, dict):
            raise DataError(f"{where} is a {type(record).__name__}, not an object with '{text_key}', '{label_key}'.")
        text = record.get(text_key)
        if not isinstance(text, str):
            raise DataError(f"{where} has no '{text_key}' text (keys: {sorted(record)}); fix the record or remove it.")
        labels.append(label_names[_label_id(record.get(label_key), index, where, label_key)])
        ids.append(str(record.get("id", i)))
        texts.append(text)
    report = LoadReport(source=str(path), format="smp2020", rows_read=len(records))
    return datasets.Dataset.from_dict({"id": ids, text_key: texts, "label": labels}), report


def read_weibo_source(source: str, data_args, seed: int) -> dict:
    """The ``toolkit.data.splits`` reader of the competition files: train, eval and every test split."""
    names = data_args.class_names or WEIBO_LABELS
    roles = {"train": data_args.train_split, "eval": data_args.eval_split,
             **{test_name(s): s for s in data_args.test_splits}}
    return {role: read_smp2020(resolve_split_file(split, source, data_args.data_dir), names, data_args.text_column,
                               data_args.label_column)
            for role, split in roles.items()}


def _label_id(label: Any, index: dict[str, int], where: str, label_key: str) -> int:
    if isinstance(label, str) and label in index:
        return index[label]
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(index):
        return label
    if label is None:
        raise DataError(f"{where} has no '{label_key}'; an unlabelled file cannot be used for training or scoring.")
    raise DataError(f"{where}: label {label!r} is not one of {list(index)}; fix the label or pass --class_names.")


# ---- scoring a saved model ----------------------------------------------------------------------------------
def evaluate_saved_model(model_dir: str | Path, test_files: Sequence[str], output_dir: str | Path,
                         dataset: str = "smp2020_ewect", data_dir: str | None = None, device: str = "cpu",
                         batch_size: int = 64, max_length: int | None = None, max_samples: int | None = None,
                         seed: int = 42) -> dict[str, dict]:
    """Score a saved model on labelled SMP2020 files, cleaned with the model's own cleaning options: per file its
    metrics, per-class report, confusion-matrix PNG and misclassified posts (as a training run's test splits)."""
    from ..data.labels import TaskSpec, encode_labels
    from ..data.splits import prepare_texts
    from ..evaluation.predict import predict_logits
    from ..evaluation.reports import write_json
    from ..inference import load_model
    from ..training.run import evaluate_split

    model, tokenizer = load_model(model_dir, device)
    task = model.tasks[0]
    max_length = model.fit_max_length(max_length or model.config.max_length or 140)
    cleaner = None
    if model.config.cleaning:
        from ..cleaning import Cleaner

        cleaner = Cleaner.from_dict(model.config.cleaning)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for split in test_files:
        path = resolve_split_file(split, dataset, data_dir)
        raw, report = read_smp2020(path, task.label_names)
        ds = subsample(prepare_texts(raw, report, "content", cleaner), max_samples, seed)
        labels, _ = encode_labels(ds["label"], TaskSpec(task.name, "label"), str(path), task.label_names)
        logits = predict_logits(model, tokenizer, ds["text"], batch_size, max_length)[task.name]
        name = test_name(str(path))
        entry = evaluate_split(name, [task], [logits], [np.asarray(labels)], ds, out, plot=True)[task.name]
        results[name] = {"split": name, "examples": len(ds), **entry["metrics"], "per_class": entry["per_class"],
                         "empty_after_cleaning": report.empty_texts_dropped}
        write_json(out / f"test_{name}.json", results[name])
        (out / f"test_{name}.md").write_text(
            f"# {name}: accuracy {entry['metrics']['accuracy']:.4f}, macro-F1 {entry['metrics']['macro_f1']:.4f} "
            f"({len(ds)} posts)\n\n" + per_class_markdown(entry["per_class"], task.label_names), encoding="utf-8")
    return results


def per_class_markdown(report: dict, label_names: Sequence[str]) -> str:
    rows = [f"| {c} | {report[c]['precision']:.3f} | {report[c]['recall']:.3f} | {report[c]['f1-score']:.3f} | "
            f"{int(report[c]['support'])} |" for c in label_names]
    return "| class | precision | recall | F1 | support |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI (test.sh); a bad model or data file raises (``run_cli`` makes it one line), bad flags exit 2."""
    from ..inference import check_device, device_or_auto_arg, int_at_least, positive_int

    parser = argparse.ArgumentParser(
        prog="toolkit.studies.weibo", description="Score a saved Weibo emotion model on labelled SMP2020 files: "
        "accuracy, macro-F1, per-class report, confusion-matrix PNG.")
    parser.add_argument("--model", required=True, help="Saved model directory (train.sh's output).")
    parser.add_argument("--test_file", action="append", required=True,
                        help=f"Split name ({', '.join(SMP2020_FILES)}) or a JSON file; repeatable.")
    parser.add_argument("--output_dir", help="Where reports go (default <model>/test).")
    parser.add_argument("--dataset", default="smp2020_ewect", help="Folder holding the split files.")
    parser.add_argument("--data_dir", help="Extra folder searched first for the dataset.")
    parser.add_argument("--device", type=device_or_auto_arg, default="auto",
                        help="auto (cuda when available), cpu, cuda, cuda:N or mps.")
    parser.add_argument("--batch_size", type=positive_int, default=64)
    parser.add_argument("--max_length", type=int_at_least(8), help="Default: the model's training max_length.")
    parser.add_argument("--max_samples", type=positive_int, help="Seeded random subset of each file (quick checks).")
    args = parser.parse_args(argv)
    if not (Path(args.model) / "config.json").is_file():
        raise FileNotFoundError(f"--model {args.model}: no saved model there (no config.json); train one with "
                                "`sh train.sh`.")
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    check_device(args.device)
    output_dir = args.output_dir or str(Path(args.model) / "test")
    results = evaluate_saved_model(args.model, args.test_file, output_dir, args.dataset, args.data_dir,
                                   args.device, args.batch_size, args.max_length, args.max_samples)
    for name, result in results.items():
        print(json.dumps({"split": name, "examples": result["examples"], "accuracy": round(result["accuracy"], 4),
                          "macro_f1": round(result["macro_f1"], 4)}))
        print(Path(output_dir, f"test_{name}.md").read_text(encoding="utf-8"))
    print(f"Reports written to {Path(output_dir).resolve()} (test_<split>.json/.md, confusion_<split>.png, "
          "misclassified_<split>.jsonl)")
    return 0


if __name__ == "__main__":
    from ..cli import run_cli

    run_cli(main, prog="toolkit.studies.weibo")
