"""SMP2020-EWECT Weibo emotion: the reader, the label map, class weighting and the evaluation report.

The competition files are JSON lists of ``{"id", "content", "label"}`` with six labels. The reader
cleans every post with the model's ``Cleaner`` (so training, evaluation and inference see the same
text), drops posts that are empty after cleaning (counted), and rejects unknown labels or records
without ``content`` with a message naming the file and record.

    python -m toolkit.weibo --model runs/weibo-emotion --test_file virus_test --output_dir runs/weibo-emotion/test
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .args import DataArguments, ToolkitTrainingArguments
from .data import DataError, LoadReport, find_named_dataset, read_json, subsample

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
CLASS_WEIGHTING = ("none", "balanced")


# ---- arguments ----------------------------------------------------------------------------------------------------
@dataclass
class WeiboDataArguments(DataArguments):
    """``DataArguments`` for SMP2020-EWECT, plus the test splits, cleaning, class weighting and early stopping."""

    dataset: str = field(
        default="smp2020_ewect",
        metadata={"help": "Folder of the competition JSON files: a name found in the data folders or a path."},
    )
    train_split: str = field(default="virus_train", metadata={"help": "Split name (virus_train ...) or JSON file."})
    eval_split: str = field(default="virus_eval", metadata={"help": "Split that selects the best epoch (macro-F1)."})
    test_splits: list[str] = field(
        default_factory=lambda: ["virus_test", "usual_eval", "usual_test"],
        metadata={"help": "Splits (or JSON files) scored once with the best checkpoint after training."},
    )
    text_column: str = field(default="content", metadata={"help": "Key holding the post."})
    class_names: list[str] | None = field(
        default_factory=lambda: list(WEIBO_LABELS), metadata={"help": "Label names in id order."}
    )
    max_length: int = field(default=140, metadata={"help": "Truncate posts to this many tokens (the study: 140)."})
    max_test_samples: int | None = field(
        default=None, metadata={"help": "Seeded random subset of each test split (null = all)."}
    )
    clean: bool = field(
        default=True, metadata={"help": "Clean posts with toolkit.cleaning.Cleaner (saved with the model)."}
    )
    class_weighting: str = field(
        default="none",
        metadata={"help": f"{CLASS_WEIGHTING}: 'balanced' weights the cross-entropy by n / (k * count(class))."},
    )
    early_stopping_patience: int | None = field(
        default=5, metadata={"help": "Stop after this many evaluations without a better macro-F1 (null = never)."}
    )
    warmup_epochs: float = field(default=1.0, metadata={"help": "Linear warm-up length in epochs (the study: 1)."})

    def __post_init__(self):
        super().__post_init__()
        if self.class_weighting not in CLASS_WEIGHTING:
            raise ValueError(f"--class_weighting {self.class_weighting!r} is not one of {CLASS_WEIGHTING}.")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError(f"--early_stopping_patience {self.early_stopping_patience} must be >= 1 or null.")
        if self.warmup_epochs < 0:
            raise ValueError(f"--warmup_epochs {self.warmup_epochs} must be >= 0.")
        if self.max_test_samples is not None and self.max_test_samples < 1:
            raise ValueError(f"--max_test_samples {self.max_test_samples} must be >= 1, or null for all.")


@dataclass
class WeiboTrainingArguments(ToolkitTrainingArguments):
    """``ToolkitTrainingArguments`` with the Weibo study's defaults.

    Changed defaults: batch 64, up to 30 epochs, best checkpoint by eval macro-F1 loaded at the end,
    two checkpoints kept (the best and the last), output in runs/weibo-emotion.
    """

    per_device_train_batch_size: int = field(default=64, metadata={"help": "Batch size per device (the study: 64)."})
    per_device_eval_batch_size: int = field(default=128, metadata={"help": "Eval batch size per device."})
    num_train_epochs: float = field(default=30.0, metadata={"help": "Most epochs; early stopping ends sooner."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Reload the best checkpoint at the end."})
    metric_for_best_model: str | None = field(default="macro_f1", metadata={"help": "Selects the best checkpoint."})
    greater_is_better: bool | None = field(default=True, metadata={"help": "macro-F1: higher is better."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept (the best and the last)."})
    output_dir: str | None = field(default="runs/weibo-emotion", metadata={"help": "Where the model and reports go."})


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


def read_smp2020(
    path: str | Path,
    label_names: Sequence[str] = WEIBO_LABELS,
    cleaner=None,
    text_key: str = "content",
    label_key: str = "label",
):
    """Read one competition JSON file into ``(Dataset[id, text, raw, label], LoadReport)``.

    Labels are names (``happy``) or ids; ``text`` is the cleaned post and ``raw`` the original.
    """
    import datasets

    path = Path(path)
    records = read_json(path, "a list of {id, content, label}")
    if isinstance(records, dict):  # some releases wrap the list
        records = next((v for v in records.values() if isinstance(v, list)), None)
    if not isinstance(records, list) or not records:
        raise DataError(f"{path}: expected a non-empty JSON list of {{id, content, label}} records.")
    index = {name: i for i, name in enumerate(label_names)}
    ids, raws, labels = [], [], []
    for i, record in enumerate(records):
        where = f"{path}: record {i}" + (f" (id {record.get('id')})" if isinstance(record, dict) else "")
        if not isinstance(record, dict):
            raise DataError(f"{where} is a {type(record).__name__}, not an object with '{text_key}', '{label_key}'.")
        text = record.get(text_key)
        if not isinstance(text, str):
            raise DataError(f"{where} has no '{text_key}' text (keys: {sorted(record)}); fix the record or remove it.")
        labels.append(_label_id(record.get(label_key), index, where, label_key))
        ids.append(str(record.get("id", i)))
        raws.append(text)
    texts = cleaner.clean_batch(raws) if cleaner is not None else list(raws)
    keep = [i for i, t in enumerate(texts) if t.strip()]
    report = LoadReport(source=str(path), rows_read=len(records), empty_texts_dropped=len(records) - len(keep),
                        label_names=list(label_names))
    if report.empty_texts_dropped:
        logger.warning("%s: dropped %d posts that are empty after cleaning", path, report.empty_texts_dropped)
    if not keep:
        raise DataError(f"{path}: every post is empty after cleaning.")
    ds = datasets.Dataset.from_dict({
        "id": [ids[i] for i in keep],
        "text": [texts[i] for i in keep],
        "raw": [raws[i] for i in keep],
        "label": [labels[i] for i in keep],
    })
    return ds, report


def _label_id(label: Any, index: dict[str, int], where: str, label_key: str) -> int:
    if isinstance(label, str) and label in index:
        return index[label]
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(index):
        return label
    if label is None:
        raise DataError(f"{where} has no '{label_key}'; an unlabelled file cannot be used for training or scoring.")
    raise DataError(f"{where}: label {label!r} is not one of {list(index)}; fix the label or pass --class_names.")


def load_weibo_splits(data_args: WeiboDataArguments, seed: int, cleaner=None):
    """Train and eval splits as ``toolkit.run.Splits``, plus the test splits as ``{name: Dataset}``."""
    from .run import Splits

    names = data_args.class_names or WEIBO_LABELS

    def load(split: str, limit: int | None):
        path = resolve_split_file(split, data_args.dataset, data_args.data_dir)
        ds, report = read_smp2020(path, names, cleaner, data_args.text_column, data_args.label_column)
        return subsample(ds, limit, seed), report

    train, train_report = load(data_args.train_split, data_args.max_train_samples)
    eval_, eval_report = load(data_args.eval_split, data_args.max_eval_samples)
    tests = {Path(s).stem: load(s, data_args.max_test_samples)[0] for s in data_args.test_splits}
    return Splits(train, eval_, list(names), {"train": train_report, "eval": eval_report}), tests


def make_cleaner(enabled: bool = True):
    """The default Weibo ``Cleaner`` (full->half width, t2s, lower-case, URL/e-mail/@ removed, emoji kept), or None."""
    if not enabled:
        return None
    from .cleaning import Cleaner

    return Cleaner()


# ---- training helpers ---------------------------------------------------------------------------------------------
def class_weights(labels: Sequence[int], num_classes: int, scheme: str = "balanced") -> np.ndarray:
    """Per-class loss weights; ``balanced`` is n / (k * count): with every class present, the mean weight over the
    training posts is 1, so the loss keeps plain cross-entropy's scale."""
    if scheme not in CLASS_WEIGHTING:
        raise ValueError(f"class weighting {scheme!r} is not one of {CLASS_WEIGHTING}.")
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    if scheme == "none":
        return np.ones(num_classes)
    return len(labels) / (num_classes * np.maximum(counts, 1.0))


class WeightedCrossEntropy:
    """A Trainer ``compute_loss_func``: class-weighted cross-entropy.

    Summed over the batch and divided by ``num_items_in_batch`` when the Trainer gives it (gradient
    accumulation and multi-device averaging stay correct), a plain weighted mean otherwise (evaluation).
    """

    def __init__(self, weights: Sequence[float]):
        import torch

        self.weights = torch.as_tensor(np.asarray(weights, dtype=np.float32))

    def __call__(self, outputs, labels, num_items_in_batch=None):
        import torch.nn.functional as F

        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        weight = self.weights.to(logits.device)
        if num_items_in_batch is None:
            return F.cross_entropy(logits.float(), labels.long(), weight=weight)
        per_item = F.cross_entropy(logits.float(), labels.long(), reduction="none") * weight[labels.long()]
        return per_item.sum() / num_items_in_batch


def warmup_steps_for(num_train: int, training_args, warmup_epochs: float = 1.0) -> int:
    """Optimizer steps in ``warmup_epochs`` epochs (transformers 5.x has no warmup_ratio; a float < 1 is a ratio
    of *all* steps, which with early stopping is not one epoch)."""
    per_step = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    per_step *= max(1, training_args.world_size)
    return int(math.ceil(warmup_epochs * math.ceil(num_train / per_step)))


def early_stopping(patience: int | None) -> list:
    from transformers import EarlyStoppingCallback

    return [] if patience is None else [EarlyStoppingCallback(early_stopping_patience=patience)]


# ---- evaluation report --------------------------------------------------------------------------------------------
def write_evaluation(out_dir: str | Path, name: str, labels: Sequence[int], probabilities: np.ndarray,
                     label_names: Sequence[str], texts: Sequence[str], ids: Sequence[str] | None = None) -> dict:
    """Accuracy, macro-F1, per-class report, confusion-matrix PNG and misclassified posts of one labelled split."""
    from .metrics import classification_metrics, per_class_report
    from .reports import plot_confusion, write_json, write_misclassified

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels)
    predictions = probabilities.argmax(axis=-1)
    metrics = classification_metrics(labels, predictions)
    report = per_class_report(labels, predictions, label_names)
    counts = np.asarray(report["confusion_matrix"])
    support = counts.sum(axis=1)
    plot_confusion(counts / np.maximum(support[:, None], 1), label_names, out / f"confusion_{name}.png",
                   title=f"{name}: acc {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}",
                   support=support.tolist(), counts=counts)
    write_misclassified(out / f"misclassified_{name}.jsonl", texts, labels, probabilities, label_names,
                        {"id": list(ids)} if ids is not None else None)
    result = {"split": name, "examples": int(len(labels)), **metrics, "per_class": report}
    write_json(out / f"test_{name}.json", result)
    rows = [f"| {c} | {report[c]['precision']:.3f} | {report[c]['recall']:.3f} | {report[c]['f1-score']:.3f} | "
            f"{int(report[c]['support'])} |" for c in label_names]
    (out / f"test_{name}.md").write_text(
        f"# {name}: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f} ({len(labels)} posts)\n\n"
        "| class | precision | recall | F1 | support |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n",
        encoding="utf-8")
    return result


def score_splits(trainer, tests: dict, tokenizer, max_length: int, label_names: Sequence[str],
                 out_dir: str | Path) -> dict[str, dict]:
    """Score the (best) model of a Trainer on each test split and write its report; {} on non-main processes."""
    from .data import tokenize
    from .metrics import softmax

    results = {}
    for name, ds in tests.items():
        name = name.removesuffix("_labeled")
        prediction = trainer.predict(tokenize(ds, tokenizer, max_length), metric_key_prefix=name)
        if not trainer.is_world_process_zero():
            continue
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        probabilities = softmax(np.asarray(logits, dtype=np.float64))
        results[name] = write_evaluation(out_dir, name, ds["label"], probabilities, label_names, ds["text"], ds["id"])
        trainer.log({f"test_{name}_accuracy": results[name]["accuracy"],
                     f"test_{name}_macro_f1": results[name]["macro_f1"]})
    return results


def predict_probabilities(model, tokenizer, texts: Sequence[str], batch_size: int = 64, max_length: int = 140):
    """Class probabilities of already-cleaned texts (no second cleaning), in order."""
    import torch

    from .inference import batched_outputs

    chunks = [torch.softmax(output.logits.float(), dim=-1).cpu().numpy()
              for _, output in batched_outputs(model, tokenizer, texts, batch_size, max_length)]
    return np.concatenate(chunks).astype(np.float64)


def evaluate_saved_model(model_dir: str | Path, test_files: Sequence[str], output_dir: str | Path,
                         dataset: str = "smp2020_ewect", data_dir: str | None = None, device: str = "cpu",
                         batch_size: int = 64, max_length: int = 140, max_samples: int | None = None,
                         seed: int = 42) -> dict[str, dict]:
    """Score a saved model on labelled SMP2020 files, cleaning them with the model's own cleaning options."""
    from .inference import cleaner_for, load_model

    model, tokenizer = load_model(model_dir, device)
    max_length = model.fit_max_length(max_length)
    label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    cleaner = cleaner_for(model.config)
    results = {}
    for split in test_files:
        path = resolve_split_file(split, dataset, data_dir)
        ds, report = read_smp2020(path, label_names, cleaner)
        ds = subsample(ds, max_samples, seed)
        probabilities = predict_probabilities(model, tokenizer, ds["text"], batch_size, max_length)
        name = path.stem.removesuffix("_labeled")
        results[name] = write_evaluation(output_dir, name, ds["label"], probabilities, label_names, ds["text"],
                                         ds["id"])
        results[name]["empty_after_cleaning"] = report.empty_texts_dropped
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score a saved Weibo emotion model on labelled SMP2020 files: "
                                                 "accuracy, macro-F1, per-class report, confusion-matrix PNG.")
    parser.add_argument("--model", required=True, help="Saved model directory (train.sh's output).")
    parser.add_argument("--test_file", action="append", required=True,
                        help=f"Split name ({', '.join(SMP2020_FILES)}) or a JSON file; repeatable.")
    parser.add_argument("--output_dir", help="Where reports go (default <model>/test).")
    parser.add_argument("--dataset", default="smp2020_ewect", help="Folder holding the split files.")
    parser.add_argument("--data_dir", help="Extra folder searched first for the dataset.")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto (cuda when available).")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--max_length", type=int, default=140)
    parser.add_argument("--max_samples", type=int, help="Seeded random subset of each file (quick checks).")
    args = parser.parse_args(argv)
    if not (Path(args.model) / "config.json").is_file():
        parser.error(f"--model {args.model}: no saved model there (no config.json); train one with `sh train.sh`.")
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    output_dir = args.output_dir or str(Path(args.model) / "test")
    try:
        results = evaluate_saved_model(args.model, args.test_file, output_dir, args.dataset, args.data_dir,
                                       args.device, args.batch_size, args.max_length, args.max_samples)
    except DataError as err:
        parser.error(str(err))
    for name, result in results.items():
        print(json.dumps({"split": name, "examples": result["examples"], "accuracy": round(result["accuracy"], 4),
                          "macro_f1": round(result["macro_f1"], 4)}))
        print(Path(output_dir, f"test_{name}.md").read_text(encoding="utf-8"))
    print(f"Reports written to {Path(output_dir).resolve()} (test_<split>.json/.md, confusion_<split>.png, "
          "misclassified_<split>.jsonl)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
