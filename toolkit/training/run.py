"""The steps of every run, shared by the recipes: data -> tokenizer -> model -> (feature cache) -> Trainer ->
train -> save -> report.

Each step is one function so that a recipe reads as the list of them. What a study adds plugs into
``train_and_report`` as a reporter: a callable that gets the finished ``RunReport``, may write files into its folder,
and returns sections for results.json (and markdown for results.md).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import datasets
import numpy as np
import torch
import transformers
from transformers import AutoTokenizer, DataCollatorWithPadding, EarlyStoppingCallback, default_data_collator, set_seed

from ..args import DataArguments, ModelArguments, ToolkitTrainingArguments
from ..data.labels import TaskConfig
from ..data.splits import Splits, tokenize
from ..evaluation import reports
from ..evaluation.metrics import compute_task_metrics, metric_prefix, per_class_report, present_rows, task_predictions
from ..hub import default_cache_dir, resolve_model_path
from ..modeling.features import cached_feature_dataset
from ..modeling.model import TaskModel
from ..precision import no_grad_precision
from .checkpoints import resolve_resume
from .trainer import ToolkitTrainer

logger = logging.getLogger(__name__)


def setup_logging(training_args: ToolkitTrainingArguments) -> None:
    level = training_args.get_process_log_level()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level)
    transformers.utils.logging.set_verbosity(level)
    datasets.utils.logging.set_verbosity(level)


def seed_everything(training_args: ToolkitTrainingArguments) -> None:
    set_seed(training_args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def default_output_dir(training_args: ToolkitTrainingArguments, recipe: str, mode: str) -> None:
    """``runs/<recipe>-<mode>`` unless the user (flag or YAML) named an output folder."""
    if not getattr(training_args, "output_dir_given", True):
        training_args.output_dir = str(Path("runs") / f"{recipe}-{mode}")
        sources = getattr(training_args, "arg_sources", None)
        if sources is not None:
            sources.sources["output_dir"] = f"recipe default runs/{recipe}-<mode>"


def start_run(parsed: Sequence[Any], recipe: str, tag: str) -> ToolkitTrainingArguments:
    """What every run does before it reads data: its output folder (the recipe's default unless given; a used one
    refused unless overwritten or resumed), logging, the effective configuration printed and saved, the seed."""
    training_args = next(a for a in parsed if isinstance(a, transformers.TrainingArguments))
    default_output_dir(training_args, recipe, tag)
    setup_logging(training_args)
    claim_output_dir(training_args)
    record_config(parsed, training_args)
    seed_everything(training_args)
    return training_args


# A previous run's files: what --overwrite_output_dir replaces, and what must not look current while a run resumes.
RUN_FILES = ("run_config.json", "results.json", "trainer_state.json", "config.json", "model.safetensors", "trials",
             "folds")
STALE_FILES = ("results.json", "results.md", "README.md")


def describe_used_folder(out: Path, entries: list[Path]) -> str:
    names = {p.name for p in entries}
    checkpoints = sorted(p.name for p in entries if p.name.startswith("checkpoint-"))
    if "results.json" in names:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime((out / "results.json").stat().st_mtime))
        what, resume = f"already holds a finished run (results.json of {when})", ""
    elif checkpoints:
        what = f"holds checkpoints of an unfinished run ({', '.join(checkpoints)})"
        resume = ", --resume_from_checkpoint to continue it"
    else:
        shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
        what, resume = f"is not empty ({shown})", ""
    return (f"--output_dir '{out}' {what}; pass --overwrite_output_dir to replace it{resume}, or choose another "
            "--output_dir.")


def claim_output_dir(training_args: ToolkitTrainingArguments) -> None:
    """transformers' examples' convention: a non-empty output folder is refused unless ``--overwrite_output_dir``
    (which clears a previous run's folder first) or the run resumes. Either way an earlier run's results are
    removed before training, so a killed run never leaves results that look current."""
    out = Path(training_args.output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output_dir '{out}' is a file, not a folder.")
    # A run_config.json alone is a run that stopped before training (bad data, say): nothing to protect.
    entries = sorted(p for p in out.iterdir() if p.name != "run_config.json") if out.is_dir() else []
    resuming = training_args.resume_from_checkpoint is not None
    replace = bool(entries) and not resuming
    if replace and not training_args.overwrite_output_dir:
        raise ValueError(describe_used_folder(out, entries))
    if replace and not any(p.name in RUN_FILES or p.name.startswith("checkpoint-") for p in entries):
        raise ValueError(f"--output_dir '{out}' is not empty and holds no previous run ({', '.join(RUN_FILES)} or "
                         "checkpoint-*), so --overwrite_output_dir will not delete its files; choose a new folder.")
    if resuming:  # "true" becomes the latest complete checkpoint, a path is checked: before any data loads
        training_args.resume_from_checkpoint = resolve_resume(out, training_args.resume_from_checkpoint,
                                                              world_size=training_args.world_size)
    with training_args.main_process_first(desc="output folder"):
        if training_args.process_index == 0:
            if replace:
                logger.warning("--overwrite_output_dir: removing the previous run in %s", out)
                for path in entries:
                    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            out.mkdir(parents=True, exist_ok=True)
            for name in STALE_FILES:
                (out / name).unlink(missing_ok=True)


def record_config(parsed: Sequence[Any], training_args: ToolkitTrainingArguments) -> None:
    """Print the values set by a recipe, a file or a flag (with where each came from) and save every value with
    its source as run_config.json in the output folder."""
    from ..config import ConfigSources, effective_values, non_default

    record = getattr(training_args, "arg_sources", None) or ConfigSources()
    if training_args.process_index != 0:
        return
    values = effective_values(tuple(parsed))
    rows = non_default(tuple(parsed), record, values)
    width = max((len(name) for name, _, _ in rows), default=0)
    out = Path(training_args.output_dir)
    lines = [f"Configuration (set by the recipe, a file or a flag; every value in {out / 'run_config.json'}):"]
    lines += [f"  {name:<{width}} = {json.dumps(value, ensure_ascii=False, default=str)}  [{source}]"
              for name, value, source in rows]
    lines += [f"  note: {note}" for note in record.notes]
    print("\n".join(lines), flush=True)
    for note in record.notes:
        logger.warning(note)
    reports.write_json(out / "run_config.json", reports.finite({
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "config_file": record.config_file,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sources": dict(record.sources),
        "values": values,
    }))


def load_tokenizer(model_args: ModelArguments):
    path = resolve_model_path(model_args.model_name_or_path, model_args.model_cache_dir)
    return AutoTokenizer.from_pretrained(path)


def build_model(model_args: ModelArguments, tasks: Sequence[TaskConfig], cleaning: dict | None = None,
                **extra_config: Any) -> TaskModel:
    """A new model on pretrained encoder weights, one random head per task."""
    return TaskModel.from_encoder(model_args.model_name_or_path, cache_dir=model_args.model_cache_dir,
                                  tasks=[asdict(t) for t in tasks], cleaning=cleaning, **model_args.head_kwargs(),
                                  **extra_config)


def feature_cache_dir(data_args: DataArguments, model_args: ModelArguments) -> Path:
    return Path(data_args.feature_cache_dir or Path(model_args.model_cache_dir or default_cache_dir()) / "features")


def uses_feature_cache(model: TaskModel, data_args: DataArguments) -> bool:
    return bool(model.is_frozen and data_args.feature_cache and model.pooler.cacheable)


def model_dataset(model: TaskModel, tokenized: datasets.Dataset, collator, model_args: ModelArguments,
                  data_args: DataArguments, training_args: ToolkitTrainingArguments):
    """What the Trainer's collator expects for a tokenised split: the tokens, or for a frozen, cacheable encoder
    their cached features (computed once per encoder weights, tokens and pooling)."""
    if not uses_feature_cache(model, data_args):
        return tokenized
    with training_args.main_process_first(desc="feature cache"):
        return cached_feature_dataset(model, tokenized, collator, feature_cache_dir(data_args, model_args),
                                      data_args.max_length, training_args.per_device_eval_batch_size,
                                      training_args.device, no_grad_precision(training_args))


def test_dataset(model: TaskModel, tokenizer, ds: datasets.Dataset, model_args: ModelArguments,
                 data_args: DataArguments, training_args: ToolkitTrainingArguments):
    """A labelled split the model did not train on, as its Trainer reads it: tokens at the model's max_length, or
    (frozen, cacheable) its cached features."""
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=data_args.pad_to_multiple_of)
    return model_dataset(model, tokenize(ds, tokenizer, model.config.max_length), collator, model_args, data_args,
                         training_args)


def prepare_datasets(model: TaskModel, tokenizer, splits: Splits, model_args: ModelArguments,
                     data_args: DataArguments, training_args: ToolkitTrainingArguments):
    """Train/eval sets (tokenised on the main process first, or their cached features) and their collator. Fixes
    ``max_length`` to what the encoder's positions allow and records it in the config."""
    data_args.max_length = model.fit_max_length(data_args.max_length, data_args.pad_to_multiple_of)
    model.config.max_length = data_args.max_length
    with training_args.main_process_first(desc="tokenize"):
        train_tok, eval_tok = (tokenize(ds, tokenizer, data_args.max_length) for ds in (splits.train, splits.eval))
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=data_args.pad_to_multiple_of)
    if model.is_frozen and data_args.feature_cache and not model.pooler.cacheable:
        logger.warning("pooling=%s layers=%s learns over tokens: training without the feature cache.",
                       model.config.pooling, model.config.layers)
    train_ds, eval_ds = (model_dataset(model, tok, collator, model_args, data_args, training_args)
                         for tok in (train_tok, eval_tok))
    return train_ds, eval_ds, default_data_collator if uses_feature_cache(model, data_args) else collator


def build_trainer(model: TaskModel, tokenizer, splits: Splits, model_args: ModelArguments, data_args: DataArguments,
                  training_args: ToolkitTrainingArguments, callbacks: list | None = None) -> ToolkitTrainer:
    """Datasets (tokens or cached features), warm-up in epochs, early stopping, and the Trainer."""
    train_ds, eval_ds, collator = prepare_datasets(model, tokenizer, splits, model_args, data_args, training_args)
    return make_trainer(model, tokenizer, train_ds, eval_ds, collator, data_args, training_args, callbacks)


def make_trainer(model: TaskModel, tokenizer, train_ds, eval_ds, collator, data_args: DataArguments,
                 training_args: ToolkitTrainingArguments, callbacks: list | None = None) -> ToolkitTrainer:
    """The Trainer on prepared datasets (``prepare_datasets``; k-fold passes each fold's rows of them)."""
    if training_args.warmup_epochs is not None:
        training_args.warmup_steps = warmup_steps_for(len(train_ds), training_args, training_args.warmup_epochs)
    callbacks = list(callbacks or [])
    if training_args.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=training_args.early_stopping_patience))
    return ToolkitTrainer(
        model=model, args=training_args, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tokenizer,
        data_collator=collator, compute_metrics=compute_task_metrics(model.tasks, training_args.metric),
        callbacks=callbacks, sampling_temperature=data_args.sampling_temperature,
    )


def warmup_steps_for(num_train: int, training_args, warmup_epochs: float = 1.0) -> int:
    """Optimizer steps in ``warmup_epochs`` epochs (transformers 5.x has no warmup_ratio; a float < 1 is a ratio
    of *all* steps, which with early stopping is not one epoch)."""
    per_step = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    per_step *= max(1, training_args.world_size)
    return int(math.ceil(warmup_epochs * math.ceil(num_train / per_step)))


# ---- reports ----------------------------------------------------------------------------------------------------
@dataclass
class RunReport:
    """What reporters see after training: the trainer (best model loaded), the splits, the eval predictions, and
    the results and markdown being assembled."""

    trainer: ToolkitTrainer
    splits: Splits
    model_args: ModelArguments
    data_args: DataArguments
    prediction: Any  # PredictionOutput of the eval split
    results: dict = field(default_factory=dict)
    markdown: list[str] = field(default_factory=list)
    pictures: dict[str, str] = field(default_factory=dict)

    @property
    def output_dir(self) -> Path:
        return Path(self.trainer.args.output_dir)


Reporter = Callable[[RunReport], dict | None]


def as_tuple(values) -> tuple:
    """Per-task outputs of ``Trainer.predict`` as a tuple, also for a single array."""
    return tuple(values) if isinstance(values, (tuple, list)) else (values,)


def evaluate_split(name: str, tasks: Sequence[TaskConfig], logits: Sequence, labels: Sequence, ds: datasets.Dataset,
                   out: Path, plot: bool = False) -> dict:
    """Per task of one labelled split: its metrics, per-class report, misclassified rows (most confident first)
    and, with ``plot``, a row-normalised confusion-matrix PNG. File names carry the split and, with several tasks,
    the task."""
    from ..evaluation.metrics import task_metrics

    per_task = {}
    texts = list(ds["text"])  # as lists: indexing a dataset's lazy column row by row costs a read per row
    extra_columns = {c: list(ds[c]) for c in ("id", "rating", "position") if c in ds.column_names}
    for task, task_logits, task_labels in zip(tasks, logits, labels):
        metrics = task_metrics(task, task_logits, task_labels)
        if not metrics:
            continue
        entry = {"metrics": metrics}
        rows = np.flatnonzero(present_rows(task, task_labels))
        if not task.is_regression:
            pred = task_predictions(task, np.asarray(task_logits)[rows])
            y = np.asarray(task_labels)[rows].astype(int)
            report = per_class_report(y, pred["ids"], task.label_names)
            entry["per_class"] = report
            suffix = "_".join(p for p in (None if name == "eval" else name, None if len(tasks) == 1 else task.name)
                              if p)
            extra = {c: [values[i] for i in rows] for c, values in extra_columns.items()}
            entry["misclassified"] = reports.write_misclassified(
                out / f"misclassified{'_' * bool(suffix)}{suffix}.jsonl", [texts[i] for i in rows], y,
                pred["probabilities"], task.label_names, extra)
            if plot:
                counts = np.asarray(report["confusion_matrix"])
                support = counts.sum(axis=1)
                title = f"{suffix or name}: acc {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}"
                reports.plot_confusion(counts / np.maximum(support[:, None], 1), task.label_names,
                                       out / f"confusion_{suffix or name}.png", title, support=support.tolist(),
                                       counts=counts)
        per_task[task.name] = entry
    return per_task


def score_tests(run: RunReport) -> dict:
    """Score the final (best) model on every labelled test split: metrics, per-class reports, confusion PNGs."""
    trainer, splits = run.trainer, run.splits
    if not splits.tests:
        return {}
    scored, per_class = {}, {}
    for name, ds in splits.tests.items():
        inputs = test_dataset(trainer.model, trainer.processing_class, ds, run.model_args, run.data_args,
                              trainer.args)
        prediction = trainer.predict(inputs, metric_key_prefix=name)
        if not trainer.is_world_process_zero():
            continue
        per_task = evaluate_split(name, splits.tasks, as_tuple(prediction.predictions),
                                  as_tuple(prediction.label_ids), ds, run.output_dir, plot=True)
        scored[name] = {"examples": len(ds), **{t: e["metrics"] for t, e in per_task.items()}}
        per_class[name] = {t: e["per_class"] for t, e in per_task.items() if "per_class" in e}
        for task_name, entry in per_task.items():
            prefix = "" if len(splits.tasks) == 1 else f"{task_name}_"
            trainer.log({f"test_{name}_{prefix}{k}": v for k, v in entry["metrics"].items()
                         if k in ("accuracy", "macro_f1", "mae")})
        run.markdown.append(f"\n## Test split {name} ({len(ds)} rows)\n\n" + reports.markdown_table(
            [{"task": t, **{k: v for k, v in e["metrics"].items() if k != "n"}} for t, e in per_task.items()]))
    return {"test": scored, "test_per_class": per_class}


def epoch_metric_keys(tasks: Sequence[TaskConfig]) -> list[str]:
    keys = ["eval_loss"]
    for t in tasks:
        prefix = metric_prefix(t, tasks)
        if prefix:
            keys.append(f"eval_loss_{t.name}")
        if t.values is not None:
            names = ("accuracy", "off_by_one_accuracy", "macro_f1", "mae")
        else:
            names = ("mae", "rmse") if t.is_regression else ("accuracy", "macro_f1")
        keys += [f"eval_{prefix}{k}" for k in names]
    return keys


def write_results(run: RunReport, train_seconds: float, reporters: Sequence[Reporter] = ()) -> dict:
    """The one results writer: final eval metrics, per-task reports, per-epoch table, loss curve, test splits, what
    the reporters add; results.json and results.md written atomically (a killed run leaves no half file)."""
    trainer, splits = run.trainer, run.splits
    model, out = trainer.model, run.output_dir
    tasks = splits.tasks
    final = {k.removeprefix("test_"): v for k, v in run.prediction.metrics.items()}
    per_task = evaluate_split("eval", tasks, as_tuple(run.prediction.predictions),
                              as_tuple(run.prediction.label_ids), splits.eval, out)
    rows = reports.epoch_rows(trainer.state.log_history, epoch_metric_keys(tasks))
    run.results.update({
        "model": run.model_args.model_name_or_path,
        "mode": model.config.mode,
        "pooling": model.config.pooling,
        "layers": model.config.layers,
        "max_length": model.config.max_length,
        "cleaning": model.config.cleaning,
        "tasks": [asdict(t) for t in tasks],
        "situation": "one dataset per task" if "task_ids" in splits.train.column_names else
                     "every row labels every task",
        "task_sampling_probabilities": None if trainer.task_probabilities is None else
        dict(zip([t.name for t in tasks], map(float, trainer.task_probabilities))),
        "train_examples": len(splits.train),
        "eval_examples": len(splits.eval),
        "data": {role: asdict(r) for role, r in splits.reports.items()},
        "epochs": rows,
        "final": final,
        "per_task": {name: e["metrics"] for name, e in per_task.items()},
        "per_class": {name: e["per_class"] for name, e in per_task.items() if "per_class" in e},
        "misclassified": {name: e["misclassified"] for name, e in per_task.items() if "misclassified" in e},
        "train_seconds": round(train_seconds, 1),
        "feature_cache": uses_feature_cache(model, run.data_args),
        "precision": "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32",
        "tokens": trainer.token_counts(),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_metric": trainer.state.best_metric,
    })
    losses = trainer.batch_losses()
    if losses:
        title = "training loss" if len(tasks) == 1 else "training loss (weighted sum)"
        run.pictures["loss_curve"] = reports.plot_loss_curve(losses, out / "loss_curve.png", window=50,
                                                             title=title).name
    heading = ", ".join(t.name for t in tasks)
    run.markdown.insert(0, f"# {run.results['model']} ({run.results['mode']}, pooling={run.results['pooling']}, "
                           f"layers={run.results['layers']}; tasks: {heading})\n\n"
                           f"Per-epoch evaluation on {len(splits.eval)} examples:\n\n" + reports.markdown_table(rows))
    for reporter in (score_tests, *reporters):
        run.results.update(reporter(run) or {})
    run.results["pictures"] = dict(run.pictures)
    results = reports.finite(run.results)
    reports.write_text_atomic(out / "results.md", "".join(run.markdown))
    reports.write_json(out / "results.json", results)
    return results


def save_final_model(trainer, tokenizer=None) -> None:
    """Model (safetensors), the tokenizer that re-applies the model's cleaning and max_length, and the trainer
    state; the arguments as JSON rather than Trainer's pickle."""
    from ..modeling.tokenizer import wrap_tokenizer

    trainer.save_model(trainer.args.output_dir)
    trainer.save_state()
    if not trainer.is_world_process_zero():
        return
    out = Path(trainer.args.output_dir)
    config = getattr(trainer.model, "config", None)
    if tokenizer is not None and getattr(config, "max_length", None):
        wrap_tokenizer(tokenizer, config.cleaning, config.max_length).save_pretrained(out)
    (out / "training_args.bin").unlink(missing_ok=True)
    (out / "training_args.json").write_text(trainer.args.to_json_string(), encoding="utf-8")


def remove_checkpoints(training_args: ToolkitTrainingArguments) -> None:
    """Drop checkpoint-* folders (optimizer state in torch pickles) once a run has completed, unless kept."""
    if training_args.keep_checkpoints:
        return
    for path in Path(training_args.output_dir).glob("checkpoint-*"):
        shutil.rmtree(path, ignore_errors=True)


def train_and_report(trainer: ToolkitTrainer, splits: Splits, model_args: ModelArguments, data_args: DataArguments,
                     reporters: Sequence[Reporter] = ()) -> dict:
    """Train (resuming when asked), save the model, write every report and the model card; {} on other processes.
    With ``--kfold`` K models and their ensemble instead; with ``--search`` the trials first, then the best one's
    settings as this run."""
    if getattr(trainer.args, "kfold", None):
        from .kfold import run_kfold

        return run_kfold(trainer, splits, model_args, data_args, reporters)
    if getattr(trainer.args, "search", "none") != "none":
        from .search import run_search

        reporters = [*reporters, run_search(trainer, splits.tasks)]
    trainer.train(resume_from_checkpoint=trainer.args.resume_from_checkpoint)  # "true": the latest complete one
    seconds = trainer.train_seconds()  # the whole run's, a resumed checkpoint's share included
    save_final_model(trainer, trainer.processing_class)
    prediction = trainer.predict(trainer.eval_dataset, metric_key_prefix="test")
    if not trainer.is_world_process_zero():
        return {}
    run = RunReport(trainer, splits, model_args, data_args, prediction)
    results = write_results(run, seconds, reporters)
    reports.write_model_card(run.output_dir, results, command=" ".join(sys.argv))
    remove_checkpoints(trainer.args)
    return results


def print_summary(results: dict, output_dir: str) -> None:
    """The headline numbers of every task, and where the files are."""
    if not results:
        return
    keys = ("accuracy", "macro_f1", "off_by_one_accuracy", "mae", "rmse", "spearman")
    summary = {name: {k: round(v, 4) for k, v in metrics.items() if k in keys and v is not None}
               for name, metrics in results["per_task"].items()}
    print(json.dumps(summary if len(summary) > 1 else next(iter(summary.values()), {}), ensure_ascii=False))
    for name, scored in results.get("test", {}).items():
        for task, metrics in scored.items():
            if isinstance(metrics, dict):
                shown = "  ".join(f"{k} {metrics[k]:.4f}" for k in keys if metrics.get(k) is not None)
                print(f"test {name}{'' if len(results['tasks']) == 1 else f' [{task}]'}: {shown}  "
                      f"({scored['examples']} rows)")
    for section in ("search", "kfold"):  # the trial table, the per-fold and ensemble table
        if results.get(section, {}).get("table"):
            print(reports.markdown_table(results[section]["table"], floatfmt="{:.4g}"), end="")
    if "kfold" in results:
        print(f"Results written to {Path(output_dir).resolve()} (results.json, results.md, ensemble_*.jsonl; each "
              "fold's model in folds/NN)")
        return
    files = ["results.json", "results.md", "README.md (model card)", *results.get("pictures", {}).values()]
    print(f"Results written to {Path(output_dir).resolve()} ({', '.join(files)}, misclassified_*.jsonl, model files)")
