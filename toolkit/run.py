"""The steps of a single-task classification run, shared by the recipes.

get data -> get tokenizer -> get model -> (feature cache) -> Trainer -> reports. Each step is one
function so that a recipe reads as the list of them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
import transformers
from transformers import AutoTokenizer, DataCollatorWithPadding, default_data_collator, set_seed

from . import reports
from .args import DataArguments, ModelArguments, ToolkitTrainingArguments
from .data import DataError, LoadReport, prepare_split, read_split, subsample, tokenize
from .features import cached_feature_dataset
from .hub import default_cache_dir, resolve_model_path
from .metrics import compute_classification_metrics, per_class_report, softmax
from .modeling import EncoderClassifier
from .trainer import ToolkitTrainer

logger = logging.getLogger(__name__)


@dataclass
class Splits:
    train: datasets.Dataset  # raw rows: text, label, and the source's other columns
    eval: datasets.Dataset
    label_names: list[str]
    reports: dict[str, LoadReport]


def setup_logging(training_args: ToolkitTrainingArguments) -> None:
    level = training_args.get_process_log_level()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level)
    transformers.utils.logging.set_verbosity(level)
    datasets.utils.logging.set_verbosity(level)


def default_output_dir(training_args: ToolkitTrainingArguments, recipe: str, mode: str) -> None:
    if training_args.output_dir is None:
        training_args.output_dir = str(Path("runs") / f"{recipe}-{mode}")


def load_splits(data_args: DataArguments, seed: int, default_label_names: list[str] | None = None) -> Splits:
    """Read, validate and subsample the train and eval splits; the eval labels must fit the train label set."""
    label_names = data_args.class_names or default_label_names
    loaded = {}
    for role, split, limit in (("train", data_args.train_split, data_args.max_train_samples),
                               ("eval", data_args.eval_split, data_args.max_eval_samples)):
        raw = read_split(*_split_source(data_args.dataset, split), data_dir=data_args.data_dir)
        ds, report = prepare_split(raw, f"{data_args.dataset}[{split}]", data_args.text_column,
                                   data_args.label_column, label_names)
        label_names = report.label_names
        loaded[role] = (subsample(ds, limit, seed), report)
    return Splits(loaded["train"][0], loaded["eval"][0], label_names,
                  {role: report for role, (_, report) in loaded.items()})


def _split_source(dataset: str, split: str) -> tuple[str, str]:
    """``(source, split)`` to read: a split given as a file path is read on its own; a single data file has no
    splits, so it cannot serve as both train and eval data."""
    if Path(split).suffix and Path(split).is_file():
        return split, split
    path = Path(dataset)
    if path.is_file() and not path.name.endswith((".tar.gz", ".tgz", ".tar")):
        raise DataError(
            f"--dataset {dataset} is a single file, so it has no '{split}' split: pass --train_split and --eval_split "
            "as file paths (for example --train_split train.csv --eval_split test.csv), or a folder holding "
            f"{split}.parquet/.csv/.json(l)."
        )
    return dataset, split


def load_tokenizer(model_args: ModelArguments):
    path = resolve_model_path(model_args.model_name_or_path, model_args.model_cache_dir)
    return AutoTokenizer.from_pretrained(path)


def build_model(model_args: ModelArguments, label_names: list[str], **extra_config: Any) -> EncoderClassifier:
    return EncoderClassifier.from_encoder(
        model_args.model_name_or_path,
        cache_dir=model_args.model_cache_dir,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
        **model_args.head_kwargs(),
        **extra_config,
    )


def feature_cache_dir(data_args: DataArguments, model_args: ModelArguments) -> Path:
    return Path(data_args.feature_cache_dir or Path(model_args.model_cache_dir or default_cache_dir()) / "features")


def build_trainer(model, tokenizer, splits: Splits, model_args: ModelArguments, data_args: DataArguments,
                  training_args: ToolkitTrainingArguments, compute_metrics=None, callbacks=None) -> ToolkitTrainer:
    """Tokenise (main process first), swap in cached features for a frozen encoder, and build the Trainer."""
    data_args.max_length = model.fit_max_length(data_args.max_length, data_args.pad_to_multiple_of)
    with training_args.main_process_first(desc="tokenize"):
        train_tok = tokenize(splits.train, tokenizer, data_args.max_length)
        eval_tok = tokenize(splits.eval, tokenizer, data_args.max_length)
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=data_args.pad_to_multiple_of)
    use_cache = model.is_frozen and data_args.feature_cache and model.pooler.cacheable
    if model.is_frozen and data_args.feature_cache and not model.pooler.cacheable:
        logger.warning("pooling=%s layers=%s learns over tokens: training without the feature cache.",
                       model.config.pooling, model.config.layers)
    if use_cache:
        cache = feature_cache_dir(data_args, model_args)
        with training_args.main_process_first(desc="feature cache"):
            train_ds, eval_ds = (
                cached_feature_dataset(model, tok, collator, cache, data_args.max_length,
                                       training_args.per_device_eval_batch_size, training_args.device)
                for tok in (train_tok, eval_tok)
            )
        collator = default_data_collator
    else:
        train_ds, eval_ds = train_tok, eval_tok
    return ToolkitTrainer(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_metrics or compute_classification_metrics(),
        callbacks=callbacks,
    )


def write_classification_results(trainer: ToolkitTrainer, splits: Splits, model_args: ModelArguments,
                                 data_args: DataArguments, train_seconds: float) -> dict:
    """Final predictions, per-epoch table, loss curve, misclassified examples and results JSON."""
    out = Path(trainer.args.output_dir)
    prediction = trainer.predict(trainer.eval_dataset, metric_key_prefix="test")
    if not trainer.is_world_process_zero():
        return {}
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    probabilities = softmax(np.asarray(logits, dtype=np.float64))
    labels = np.asarray(splits.eval["label"])
    names = splits.label_names
    rows = reports.epoch_rows(trainer.state.log_history, ("eval_loss", "eval_accuracy", "eval_macro_f1"))
    losses = trainer.batch_losses()
    extra = {c: splits.eval[c] for c in ("id", "rating") if c in splits.eval.column_names}
    results = {
        "model": model_args.model_name_or_path,
        "mode": trainer.model.config.mode,
        "pooling": trainer.model.config.pooling,
        "layers": trainer.model.config.layers,
        "train_examples": len(splits.train),
        "eval_examples": len(splits.eval),
        "data": {role: asdict(r) for role, r in splits.reports.items()},
        "epochs": rows,
        "final": {k.removeprefix("test_"): v for k, v in prediction.metrics.items()},
        "per_class": per_class_report(labels, probabilities.argmax(-1), names),
        "train_seconds": round(train_seconds, 1),
        "feature_cache": bool(trainer.model.is_frozen and data_args.feature_cache and trainer.model.pooler.cacheable),
        "precision": "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32",
        "tokens": trainer.token_counts(),
    }
    results["misclassified"] = reports.write_misclassified(out / "misclassified.jsonl", splits.eval["text"], labels,
                                                           probabilities, names, extra)
    if losses:
        reports.plot_loss_curve(losses, out / "loss_curve.png", window=50)
    (out / "results.md").write_text(
        f"# {results['model']} ({results['mode']}, pooling={results['pooling']}, layers={results['layers']})\n\n"
        f"Per-epoch evaluation on {results['eval_examples']} examples:\n\n" + reports.markdown_table(rows),
        encoding="utf-8",
    )
    reports.write_json(out / "results.json", results)
    return results


def save_final_model(trainer) -> None:
    """Model (safetensors), tokenizer and trainer state; the arguments as JSON rather than Trainer's pickle."""
    trainer.save_model(trainer.args.output_dir)
    trainer.save_state()
    if trainer.is_world_process_zero():
        out = Path(trainer.args.output_dir)
        (out / "training_args.bin").unlink(missing_ok=True)
        (out / "training_args.json").write_text(trainer.args.to_json_string(), encoding="utf-8")


def train_and_report(trainer: ToolkitTrainer, splits: Splits, model_args: ModelArguments,
                     data_args: DataArguments) -> dict:
    """Train (resuming from the last checkpoint when asked), save the model and tokenizer, write the reports."""
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=trainer.args.resume_from_checkpoint)
    seconds = time.perf_counter() - start
    save_final_model(trainer)
    return write_classification_results(trainer, splits, model_args, data_args, seconds)


def seed_everything(training_args: ToolkitTrainingArguments) -> None:
    set_seed(training_args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def print_summary(results: dict, output_dir: str) -> None:
    if not results:
        return
    final = results["final"]
    print(json.dumps({k: final[k] for k in final if k in ("accuracy", "macro_f1", "loss")}))
    print(f"Results written to {Path(output_dir).resolve()} (results.json, results.md, loss_curve.png, "
          "misclassified.jsonl, model files; tensorboard logs under runs/ inside it)")
