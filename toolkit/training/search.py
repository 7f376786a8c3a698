"""Hyperparameter search with restarts: transformers' ``Trainer.hyperparameter_search`` on Optuna.

The space maps ``TrainingArguments`` fields to a list of values (a grid, run exactly by Optuna's ``GridSampler``) or
to a ``{low, high, log}`` range (sampled by TPE). ``bert`` is the BERT paper's grid of learning rates; seeds serve as
restarts, every point once per seed. Each trial builds a fresh model with ``model_init`` (the run's model copied, its
pooler and heads re-initialised under the trial's seed, so frozen-mode feature caches still apply), trains under
``<output_dir>/trials/NN`` and is scored on the eval split. Every trial goes into ``search_trials.json`` and
``search_trials.md``; the best trial's settings are then trained again as the run's result, through the usual
``train_and_report``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from transformers import EarlyStoppingCallback, TrainerCallback, set_seed

logger = logging.getLogger(__name__)

SEARCH_BACKENDS = ("none", "optuna")
BERT_LEARNING_RATES = [5e-5, 4e-5, 3e-5, 2e-5]  # Devlin et al. 2019, appendix A.3
NAMED_SPACES = {"bert": {"learning_rate": BERT_LEARNING_RATES}}
# Fields a trial must not change: where the run writes, and the search itself.
NOT_SEARCHABLE = ("output_dir", "overwrite_output_dir", "resume_from_checkpoint", "search", "search_space",
                  "search_seeds", "search_trials", "kfold", "report_to", "push_to_hub")
TRIALS_DIR = "trials"


@dataclass
class SearchSpace:
    """A grid (name -> values, run point by point) and ranges (name -> {low, high, log}, sampled)."""

    grid: dict[str, list] = field(default_factory=dict)
    ranges: dict[str, dict] = field(default_factory=dict)

    @property
    def is_grid(self) -> bool:
        return not self.ranges

    @property
    def size(self) -> int | None:
        """Points in the grid (None when a range makes the space continuous)."""
        return math.prod(len(v) for v in self.grid.values()) if self.is_grid else None

    @property
    def names(self) -> list[str]:
        return [*self.grid, *self.ranges]

    def suggest(self, trial) -> dict[str, Any]:
        """The trial's values (Optuna returns the same value when a name is suggested again within a trial)."""
        params = {name: trial.suggest_categorical(name, values) for name, values in self.grid.items()}
        for name, r in self.ranges.items():
            if all(isinstance(r[k], int) for k in ("low", "high")) and not r.get("log"):
                params[name] = trial.suggest_int(name, r["low"], r["high"])
            else:
                params[name] = trial.suggest_float(name, float(r["low"]), float(r["high"]), log=bool(r.get("log")))
        return params


def parse_space(value: Any, seeds: Sequence[int] | None, default_seed: int, fields: set[str],
                check_value: Callable[[str, Any], str | None] = lambda name, v: None) -> SearchSpace:
    """``--search_space`` (a named space, a mapping, or a mapping as JSON) with ``--search_seeds`` as the seed
    axis; ``fields`` are the names a trial may set, ``check_value(name, v)`` the message for a value out of range."""
    source = value
    if value is None:
        value = "bert"
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"--search_space {source!r} is not valid JSON ({error.msg}); give a named space "
                                 f"({', '.join(NAMED_SPACES)}) or a mapping such as "
                                 '\'{"learning_rate": [5e-5, 3e-5]}\'.') from None
        elif text in NAMED_SPACES:
            value = copy.deepcopy(NAMED_SPACES[text])
        else:
            raise ValueError(f"--search_space {source!r} is not a named space ({', '.join(NAMED_SPACES)}) or a "
                             "mapping of TrainingArguments fields to values, e.g. "
                             '\'{"learning_rate": [5e-5, 3e-5]}\'.')
    if not isinstance(value, dict) or not value:
        raise ValueError(f"--search_space {source!r} must be a non-empty mapping of TrainingArguments fields to a "
                         "list of values or {low, high, log}.")
    space = SearchSpace()
    for name, values in value.items():
        if name not in fields or name in NOT_SEARCHABLE:
            raise ValueError(f"--search_space names {name!r}, which is not a training argument a trial can set; use "
                             "fields such as learning_rate, num_train_epochs, per_device_train_batch_size, "
                             "weight_decay, warmup_steps.")
        if isinstance(values, dict):
            if set(values) - {"low", "high", "log"} or not {"low", "high"} <= set(values) or not all(
                    isinstance(values[k], (int, float)) and not isinstance(values[k], bool) for k in ("low", "high")):
                raise ValueError(f"--search_space {name}: {values!r} must be {{low: number, high: number[, log: "
                                 "true]}} or a list of values.")
            if not values["low"] < values["high"] or (values.get("log") and values["low"] <= 0):
                raise ValueError(f"--search_space {name}: low {values['low']} must be below high {values['high']} "
                                 "(and above 0 with log: true).")
            checked = (values["low"], values["high"])
            space.ranges[name] = dict(values)
        else:
            values = list(values) if isinstance(values, (list, tuple)) else [values]
            if not values or not all(isinstance(v, (int, float, str, bool)) for v in values):
                raise ValueError(f"--search_space {name}: {values!r} must be a non-empty list of numbers or strings.")
            if len(set(map(repr, values))) < len(values):
                raise ValueError(f"--search_space {name}: {values!r} repeats a value; list each once.")
            checked = values
            space.grid[name] = values
        for v in checked:
            problem = check_value(name, v)
            if problem:
                raise ValueError(f"--search_space {name} value {v} is out of range: it must be {problem}.")
    if seeds is not None:
        if "seed" in value:
            raise ValueError("--search_seeds and a 'seed' entry in --search_space both set the seeds; keep one.")
        if not seeds or len(set(seeds)) < len(seeds) or any(s < 0 for s in seeds):
            raise ValueError(f"--search_seeds {list(seeds)} must be distinct seeds >= 0.")
        space.grid["seed"] = [int(s) for s in seeds]
    elif "seed" not in value:
        space.grid["seed"] = [int(default_seed)]  # every trial records the seed it trained with
    return space


def objective_metric(tasks: Sequence, args) -> tuple[str, bool]:
    """The eval metric that scores a trial, and whether greater is better: ``--metric_for_best_model`` when set,
    else macro-F1 for one classification head, MAE for one regressor, and the eval loss with several heads."""
    if args.metric_for_best_model:
        name = args.metric_for_best_model
        key = name if name.startswith("eval_") else f"eval_{name}"
        greater = args.greater_is_better if args.greater_is_better is not None else not key.endswith("loss")
        return key, bool(greater)
    if len(tasks) == 1:
        return ("eval_mae", False) if tasks[0].is_regression else ("eval_macro_f1", True)
    return "eval_loss", False


class TrialObjective(TrainerCallback):
    """``compute_objective`` for the search: the trial's score on the eval split. With ``load_best_model_at_end``
    a trial ends as its best evaluation, so that is its score; otherwise its last evaluation."""

    def __init__(self, key: str, greater: bool, keep_best: bool):
        self.key, self.greater, self.keep_best = key, greater, keep_best
        self.value: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.value = None

    def __call__(self, metrics: dict[str, float]) -> float:
        if self.key not in metrics:
            shown = ", ".join(sorted(k for k in metrics if not k.endswith(("_runtime", "_per_second"))))
            raise KeyError(f"the search scores trials by {self.key}, which the evaluation does not report "
                           f"(it has {shown}); set --metric_for_best_model to one of them.")
        value = float(metrics[self.key])
        if self.keep_best and self.value is not None:
            value = max(value, self.value) if self.greater else min(value, self.value)
        self.value = value
        return value


class TrialRecorder(TrainerCallback):
    """At the end of each trial: ``trials/NN/trial.json`` (its settings and per-evaluation metrics), and its
    checkpoints removed unless ``--keep_checkpoints``."""

    def __init__(self, keep_checkpoints: bool):
        self.keep_checkpoints = keep_checkpoints
        self.history: dict[str, list[dict]] = {}

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_hyper_param_search or not state.trial_name:
            return
        folder = Path(args.output_dir) / state.trial_name
        evals = [{k: v for k, v in row.items() if k.startswith("eval_") or k in ("epoch", "step")}
                 for row in state.log_history if any(k.startswith("eval_") for k in row)]
        self.history[state.trial_name] = evals
        if not state.is_world_process_zero:
            return
        folder.mkdir(parents=True, exist_ok=True)
        from ..evaluation import reports

        reports.write_json(folder / "trial.json", reports.finite({
            "trial": state.trial_name, "params": state.trial_params, "evaluations": evals,
            "best_metric": state.best_metric,
            "best_checkpoint": state.best_model_checkpoint if self.keep_checkpoints else None}))
        if not self.keep_checkpoints:
            for path in folder.glob("checkpoint-*"):
                shutil.rmtree(path, ignore_errors=True)


class FreshEarlyStopping(TrainerCallback):
    """Early stopping's patience counted afresh in every training: ``EarlyStoppingCallback`` keeps its counter from
    one ``train()`` to the next, so a trial would inherit the previous trial's evaluations without improvement."""

    def __init__(self, callbacks: list):
        self.callbacks = callbacks

    def on_train_begin(self, args, state, control, **kwargs):
        for callback in self.callbacks:
            if isinstance(callback, EarlyStoppingCallback):
                callback.early_stopping_patience_counter = 0


def restart_model(template, seed: int):
    """A copy of ``template`` (pretrained encoder weights kept) whose pooler and heads are initialised afresh under
    ``seed``, as ``TaskModel.__init__`` initialises them."""
    set_seed(seed)
    model = copy.deepcopy(template)
    for module in (model.pooler, model.heads):
        module.apply(model._init_weights)
    return model


def trial_name(trial) -> str:
    return f"{TRIALS_DIR}/{trial.number:02d}"


def run_search(trainer, tasks: Sequence) -> Callable:
    """Run the trials on ``trainer`` (built by ``run.build_trainer``), write the trial table, and leave the trainer
    set up to train the best trial's settings from a fresh model; returns the reporter of the search's results."""
    import optuna

    from ..evaluation import reports
    from .schedules import layer_groups

    args = trainer.args
    space: SearchSpace = args.search_space_parsed
    key, greater = objective_metric(tasks, args)
    objective = TrialObjective(key, greater, keep_best=bool(args.load_best_model_at_end))
    recorder = TrialRecorder(args.keep_checkpoints)
    trainer.add_callback(objective)
    trainer.add_callback(recorder)
    trainer.add_callback(FreshEarlyStopping(trainer.callback_handler.callbacks))  # for the final run too
    template = trainer.model.to("cpu")  # the pristine copy every trial starts from; trials train their own

    def model_init(trial=None):
        seed = int(space.suggest(trial)["seed"]) if trial is not None else int(args.seed)
        model = restart_model(template, seed)
        if trainer.unfreezing is not None:  # gradual unfreezing steps through this model's layer groups
            trainer.unfreezing.groups = layer_groups(model)
        return model

    trainer.model_init = model_init
    storage = optuna.storages.InMemoryStorage()
    sampler = (optuna.samplers.GridSampler(space.grid, seed=args.seed) if space.is_grid
               else optuna.samplers.TPESampler(seed=args.seed))
    n_trials = args.search_trials or space.size
    direction = "maximize" if greater else "minimize"
    logger.info("search: %d trials over %s, scored by %s (%s)", n_trials, space.names, key, direction)
    best = trainer.hyperparameter_search(
        hp_space=space.suggest, compute_objective=objective, n_trials=n_trials, direction=direction,
        backend="optuna", hp_name=trial_name, sampler=sampler, pruner=optuna.pruners.NopPruner(), storage=storage,
        study_name="toolkit-search")
    trainer.remove_callback(objective)
    trainer.remove_callback(recorder)
    study = optuna.load_study(study_name="toolkit-search", storage=storage)
    rows = trial_rows(study, space, int(best.run_id))
    out = Path(args.output_dir)
    summary = {
        "backend": "optuna", "objective": key, "direction": direction, "trials": len(rows),
        "space": {"grid": space.grid, "ranges": space.ranges},
        "sampler": "grid" if space.is_grid else "tpe",
        "best_trial": int(best.run_id), "best_objective": best.objective, "best_params": best.hyperparameters,
        "best_trial_dir": str(out / f"{TRIALS_DIR}/{int(best.run_id):02d}"),
        "table": rows,
    }
    if trainer.is_world_process_zero():
        reports.write_json(out / "search_trials.json", reports.finite(summary))
        reports.write_text_atomic(out / "search_trials.md", search_markdown(summary))
    apply_params(args, best.hyperparameters)
    trainer._train_batch_size = args.train_batch_size  # as Trainer does for a trial's batch size

    def report(run) -> dict:
        final = run.prediction.metrics.get(key.replace("eval_", "test_", 1))
        section = {**summary, "final_run": "the best trial's settings trained again from a fresh model",
                   "final_objective": final}
        run.markdown.append("\n" + search_markdown(section))
        return {"search": section}

    return report


def trial_rows(study, space: SearchSpace, best_number: int) -> list[dict]:
    """One row per trial: its number, learning rate and seed first, the other settings, objective, wall time."""
    names = ["learning_rate", "seed"] + [n for n in space.names if n not in ("learning_rate", "seed")]
    rows = []
    for t in sorted(study.trials, key=lambda t: t.number):
        row = {"trial": t.number}
        row.update({n: t.params.get(n) for n in names if n in t.params or n in space.names})
        row["objective"] = t.value
        row["seconds"] = round(t.duration.total_seconds(), 1) if t.duration is not None else None
        row["state"] = t.state.name.lower()
        row["best"] = t.number == best_number
        rows.append(row)
    return rows


def search_markdown(summary: dict) -> str:
    from ..evaluation import reports

    head = (f"## Search: {summary['trials']} trials ({summary['sampler']}), {summary['objective']} "
            f"({summary['direction']}) on the eval split\n\n")
    shown = [{k: ("**yes**" if v else "") if k == "best" else v for k, v in row.items()} for row in summary["table"]]
    tail = (f"\nBest: trial {summary['best_trial']} ({summary['best_trial_dir']}), {summary['objective']} "
            f"{summary['best_objective']:.4f}, settings {json.dumps(summary['best_params'])}.\n")
    if summary.get("final_objective") is not None:
        tail += f"Retrained with those settings as this run's model: {summary['objective']} " \
                f"{summary['final_objective']:.4f}.\n"
    return head + reports.markdown_table(shown, floatfmt="{:.4g}") + tail


def apply_params(args, params: dict[str, Any]) -> None:
    """Set a trial's values on the training arguments, cast to each field's type (as Trainer does per trial)."""
    for name, value in params.items():
        old = getattr(args, name, None)
        setattr(args, name, type(old)(value) if old is not None else value)
