"""Argument dataclasses shared by the recipes, and a parser that layers CLI flags over a YAML file.

``python recipes/imdb.py recipes/imdb/finetune_full.yaml --learning_rate 5e-5``: the YAML sets
values, flags on the command line win, and a YAML key no dataclass knows, or a value of the wrong type or range,
is an error naming the file and line (``toolkit.config``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from transformers import HfArgumentParser, TrainingArguments
from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from .config import ConfigError, layered_defaults, with_source
from .data.labels import TASK_NAME, TaskConfig, TaskSpec, validate_tasks
from .data.readers import KNOWN_CLASS_NAMES
from .modeling.model import LOSSES, MODES
from .modeling.pooling import LAYER_CHOICES, POOLING_CHOICES
from .training.checkpoints import NO_RESUME
from .training.distributed import choose_ddp_backend
from .training.robust import ADVERSARIAL
from .training.search import SEARCH_BACKENDS, parse_space


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default="minilm",
        metadata={
            "help": "Encoder to start from: an embedded alias (minilm = all-MiniLM-L6-v2, shipped offline), a local "
            "directory, or a hub id such as bert-base-uncased (needs network)."
        },
    )
    mode: str = field(default="finetune", metadata={"help": f"One of {MODES}: train the head only, or everything."})
    pooling: str = field(default="cls", metadata={"help": f"How token states become one vector: {POOLING_CHOICES}."})
    layers: str = field(default="last", metadata={"help": f"Which encoder layers feed the pooling: {LAYER_CHOICES}."})
    head_hidden_size: int = field(default=256, metadata={"help": "Hidden width of the MLP head (the study: 256)."})
    head_dropout: float = field(default=0.1, metadata={"help": "Dropout inside the MLP head (the study: 0.1)."})
    attention_hops: int = field(default=4, metadata={"help": "Hops of self-attentive pooling (pooling=attention)."})
    attention_dim: int = field(default=128, metadata={"help": "Hidden size d_a of self-attentive pooling."})
    attention_penalty: float = field(
        default=0.0, metadata={"help": "Weight of the ||AA^T - I||^2 penalty of self-attentive pooling."}
    )
    model_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Where embedded models are extracted (default $TOOLKIT_CACHE or ~/.cache/toolkit)."},
    )
    # Robustness methods, model side (saved in the model config; the trainer side is in ToolkitTrainingArguments).
    loss: str = field(
        default="ce",
        metadata={"help": f"Classification loss, one of {LOSSES}: cross-entropy, or focal loss (Lin et al. 2017) "
                  "-(1-p_y)^gamma log p_y; --class_weighting is its alpha, --label_smoothing_factor applies to both."},
    )
    focal_gamma: float = field(default=2.0, metadata={"help": "Focal loss gamma (>= 0; 0 is cross-entropy)."})

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"--loss {self.loss!r} is not one of {LOSSES}.")
        if self.focal_gamma < 0:
            raise ValueError(f"--focal_gamma {self.focal_gamma} is out of range: it must be >= 0.")
        if self.mode not in MODES:
            raise ValueError(f"--mode {self.mode!r} is not one of {MODES}.")
        if self.pooling not in POOLING_CHOICES:
            raise ValueError(f"--pooling {self.pooling!r} is not one of {POOLING_CHOICES}.")
        if self.layers not in LAYER_CHOICES:
            raise ValueError(f"--layers {self.layers!r} is not one of {LAYER_CHOICES}.")
        if self.head_hidden_size < 1 or not 0.0 <= self.head_dropout < 1.0:
            raise ValueError("--head_hidden_size must be >= 1 and --head_dropout in [0, 1).")

    def head_kwargs(self) -> dict[str, Any]:
        """Config fields for ``EncoderHeadModel.from_encoder``."""
        keys = ("mode", "pooling", "layers", "head_hidden_size", "head_dropout", "attention_hops", "attention_dim",
                "attention_penalty", "loss", "focal_gamma")
        return {k: getattr(self, k) for k in keys}


CLASS_WEIGHTING = ("none", "balanced")


@dataclass
class DataArguments:
    """Where the rows come from and what their labels are: one source whose rows label every task
    (``--dataset``), or one source per task (``--task_datasets``)."""

    dataset: str = field(
        default="imdb",
        metadata={
            "help": "A dataset name found in the local data folders (imdb -> ../shared/data/imdb) or on the hub; or a "
            "path: an aclImdb folder or tarball, a folder of <split>.parquet/csv/json(l) files, or one such file "
            "(split into train/eval by --eval_fraction)."
        },
    )
    task_datasets: list[str] | None = field(
        default=None,
        metadata={"help": "One source per task, in --tasks order; overrides --dataset. Rows carry a task id, batches "
                  "mix tasks, and each head's loss counts only its own rows."},
    )
    tasks: list[str] | None = field(
        default=None,
        metadata={"help": "One head per spec name:column[:classification|regression[:class1,class2,...]]; class "
                  "names are in id order (default: from the data). Default: one classification task on "
                  "--label_column with --class_names."},
    )
    data_dir: str | None = field(default=None, metadata={"help": "Extra folder searched first for named datasets."})
    train_split: str = field(default="train", metadata={"help": "Split name, or a data file path, to train on."})
    eval_split: str = field(
        default="test", metadata={"help": "Split name, or a data file path, evaluated after every epoch."}
    )
    test_splits: list[str] = field(
        default_factory=list,
        metadata={"help": "Labelled splits (or files) scored once with the final (best) model after training."},
    )
    text_column: str = field(default="text", metadata={"help": "Column holding the text."})
    label_column: str = field(default="label", metadata={"help": "Column holding the label (int or string)."})
    class_names: list[str] | None = field(
        default=None, metadata={"help": "Label names in id order; default: from the data (imdb: neg pos)."}
    )
    eval_fraction: float = field(
        default=0.1, metadata={"help": "Single-file sources: the seeded (stratified) share held out for eval."}
    )
    clean: bool = field(
        default=False, metadata={"help": "Clean texts with toolkit.cleaning.Cleaner (options saved with the model)."}
    )
    loss_weights: list[float] | None = field(
        default=None, metadata={"help": "Weight of each task's loss, in --tasks order (default 1 each)."}
    )
    sampling_temperature: float = field(
        default=1.0, metadata={"help": "One source per task: task t is drawn with p ∝ n_t^(1/T); 1 = by size."}
    )
    class_weighting: str = field(
        default="none",
        metadata={"help": f"{CLASS_WEIGHTING}: 'balanced' weights each class's cross-entropy by n / (k * count)."},
    )
    max_length: int = field(default=512, metadata={"help": "Truncate texts to this many tokens."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Seeded random subset of the train split, per source (null = all)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Seeded random subset of the eval split, per source (null = all)."}
    )
    max_test_samples: int | None = field(
        default=None, metadata={"help": "Seeded random subset of each test split (null = all)."}
    )
    pad_to_multiple_of: int | None = field(
        default=8, metadata={"help": "Pad each batch to a multiple of this length (tensor-core friendly)."}
    )
    feature_cache: bool = field(
        default=True, metadata={"help": "Frozen mode: compute encoder features once and train the head on them."}
    )
    feature_cache_dir: str | None = field(
        default=None, metadata={"help": "Where cached features live (default <model cache>/features)."}
    )

    def __post_init__(self):
        if self.max_length < 8:
            raise ValueError(f"--max_length {self.max_length} is too small (>= 8).")
        for name in ("max_train_samples", "max_eval_samples", "max_test_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} {value} must be >= 1, or null for all.")
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"--eval_fraction {self.eval_fraction} must lie strictly between 0 and 1.")
        if self.sampling_temperature <= 0:
            raise ValueError(f"--sampling_temperature {self.sampling_temperature} must be > 0.")
        if self.class_weighting not in CLASS_WEIGHTING:
            raise ValueError(f"--class_weighting {self.class_weighting!r} is not one of {CLASS_WEIGHTING}.")
        if self.tasks is not None and not self.tasks:
            raise ValueError("--tasks is empty; give at least one task spec such as sentiment:label.")
        self.task_specs = self.default_task_specs()
        validate_tasks([TaskConfig(s.name, 1 if s.is_regression else 2, s.problem_type) for s in self.task_specs])
        if self.loss_weights is not None and len(self.loss_weights) != len(self.task_specs):
            raise ValueError(f"--loss_weights {self.loss_weights} has {len(self.loss_weights)} values for "
                             f"{len(self.task_specs)} tasks {[s.name for s in self.task_specs]}.")
        if self.task_datasets is not None and len(self.task_datasets) != len(self.task_specs):
            raise ValueError(f"--task_datasets names {len(self.task_datasets)} sources for {len(self.task_specs)} "
                             f"tasks ({[s.name for s in self.task_specs]}); give one per task, in the same order.")

    def default_task_specs(self) -> list[TaskSpec]:
        """The task specs: --tasks, or one classification task on --label_column with --class_names."""
        if self.tasks:
            return [TaskSpec.parse(s) for s in self.tasks]
        name = self.label_column if TASK_NAME.match(self.label_column) else "label"
        names = self.class_names
        if names is None and self.label_column == "label" and not self.task_datasets:
            names = KNOWN_CLASS_NAMES.get(self.dataset.lower())
        return [TaskSpec(name, self.label_column, "classification", names)]


def check_ranges(args: Any, ranges: tuple[tuple[str, Any, str], ...]) -> None:
    """Each ``(field, ok, wanted)``: ``ok(value)`` must hold, else a ValueError naming the flag, value and range."""
    for name, ok, wanted in ranges:
        value = getattr(args, name)
        if not ok(value):
            raise ValueError(f"--{name} {value} is out of range: it must be {wanted}.")


def _optional(test):
    return lambda v: v is None or test(v)


# TrainingArguments' own checks come late (a batch size of 0 fails inside the data loader); these run at parse time.
TRAINING_RANGES = (
    ("per_device_train_batch_size", lambda v: v >= 1, ">= 1"),
    ("per_device_eval_batch_size", lambda v: v >= 1, ">= 1"),
    ("gradient_accumulation_steps", lambda v: v >= 1, ">= 1"),
    ("learning_rate", lambda v: v > 0, "> 0"),
    ("max_steps", lambda v: v == -1 or v >= 1, "-1 (use --num_train_epochs) or >= 1"),
    ("logging_steps", lambda v: v > 0, "> 0"),
    ("save_steps", lambda v: v > 0, "> 0"),
    ("eval_steps", _optional(lambda v: v > 0), "> 0, or null for --logging_steps"),
    ("warmup_steps", lambda v: v >= 0, ">= 0"),
    ("weight_decay", lambda v: v >= 0, ">= 0"),
    ("max_grad_norm", lambda v: v >= 0, ">= 0"),
    ("adam_epsilon", lambda v: v > 0, "> 0"),
    ("adam_beta1", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("adam_beta2", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("label_smoothing_factor", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("save_total_limit", _optional(lambda v: v >= 1), ">= 1, or null to keep every checkpoint"),
    ("dataloader_num_workers", lambda v: v >= 0, ">= 0"),
    ("seed", lambda v: v >= 0, ">= 0"),
    ("warmup_epochs", _optional(lambda v: v >= 0), ">= 0, or null"),
    ("early_stopping_patience", _optional(lambda v: v >= 1), ">= 1, or null for no early stopping"),
    # ULMFiT's fine-tuning methods (toolkit.training.schedules)
    ("layer_lr_decay", _optional(lambda v: 0 < v <= 1), "in (0, 1], or null for one learning rate"),
    ("stlr_cut_frac", _optional(lambda v: 0 < v < 1), "in (0, 1), or null for --lr_scheduler_type"),
    ("stlr_ratio", lambda v: v >= 1, ">= 1"),
    ("unfreeze_every_steps", _optional(lambda v: v >= 1), ">= 1, or null for every epoch"),
    # robustness methods (toolkit.training.robust)
    ("adversarial", lambda v: v in ADVERSARIAL, f"one of {', '.join(ADVERSARIAL)}"),
    ("adversarial_epsilon", lambda v: v > 0, "> 0"),
    ("pgd_steps", lambda v: v >= 1, ">= 1"),
    ("pgd_alpha", lambda v: v > 0, "> 0"),
    ("rdrop_alpha", lambda v: v >= 0, ">= 0 (0 = off)"),
    # search with restarts, k-fold ensembles (toolkit.training.search, toolkit.training.kfold)
    ("search_trials", _optional(lambda v: v >= 1), ">= 1, or null for the whole grid"),
    ("kfold", _optional(lambda v: v >= 2), ">= 2 (two folds at least), or null for no k-fold"),
)


@dataclass
class ToolkitTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with the study's defaults.

    Changed defaults: learning_rate 1e-5, batch 32 (eval 64), 3 epochs, evaluation and logging of
    the eval split every epoch, tensorboard logging, one checkpoint kept, output under ``runs/``.
    """

    output_dir: str | None = field(default=None, metadata={"help": "Where results go (default runs/<recipe>-<mode>)."})
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate (the study: 1e-5)."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Batch size per device (the study: 32)."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Eval batch size per device."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Epochs (the study: 3)."})
    eval_strategy: IntervalStrategy | str = field(
        default="epoch", metadata={"help": "When to evaluate: no, steps or epoch."}
    )
    save_strategy: SaveStrategy | str = field(
        default="epoch", metadata={"help": "When to checkpoint: no, steps, epoch or best."}
    )
    save_total_limit: int | None = field(default=1, metadata={"help": "Checkpoints kept on disk."})
    logging_steps: float = field(default=10, metadata={"help": "Log the training loss every N steps."})
    report_to: None | str | list[str] = field(
        default="tensorboard", metadata={"help": "Loggers: tensorboard or none."}
    )
    precision: str = field(
        default="auto",
        metadata={"help": "auto (bf16 on GPUs that support it, else fp32; on a CPU with AMX/AVX512-BF16 frozen "
                  "feature encoding runs in bf16 and training stays fp32), fp32 (everywhere), bf16 or fp16; sets "
                  "--bf16/--fp16."},
    )
    warmup_epochs: float | None = field(
        default=None, metadata={"help": "Linear warm-up length in epochs (sets warmup_steps; the Weibo study: 1)."}
    )
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after this many evaluations without a better metric_for_best_model."}
    )
    keep_checkpoints: bool = field(
        default=False,
        metadata={"help": "Keep checkpoint-* folders (optimizer state, for resuming) after a run completes; by "
                  "default they are removed so the output folder holds the model, reports and JSON only."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace the previous run in a non-empty --output_dir. Without it such a folder is refused, "
                  "unless the run resumes (--resume_from_checkpoint)."},
    )
    metric: list[str] = field(
        default_factory=list,
        metadata={"help": "Extra evaluate modules for every classification head: a bundled name (classification, "
                  "rating), a local module path, or a hub name where the hub is reachable."},
    )
    # ULMFiT's fine-tuning methods (toolkit.training.schedules): ToolkitTrainer's optimizer, scheduler, callback.
    layer_lr_decay: float | None = field(
        default=None,
        metadata={"help": "Discriminative fine-tuning: layer group k from the top trains at learning_rate * decay^k "
                  "(pooler and heads k=0, the top encoder layer 1, ..., the embeddings lowest), e.g. 0.95; in (0, 1]; "
                  "null = one rate."},
    )
    stlr_cut_frac: float | None = field(
        default=None,
        metadata={"help": "Slanted triangular learning rates (STLR): rise linearly over this share of the steps "
                  "from learning_rate/stlr_ratio to learning_rate, then fall linearly back; in (0, 1), e.g. 0.1. "
                  "Replaces --lr_scheduler_type and the warm-up; null = off."},
    )
    stlr_ratio: float = field(
        default=32.0, metadata={"help": "STLR: how many times smaller the lowest rate is than the peak (>= 1)."}
    )
    gradual_unfreezing: bool = field(
        default=False,
        metadata={"help": "Gradual unfreezing: train the pooler and heads alone first, then unfreeze one encoder "
                  "layer group more from the top (down to the embeddings) every epoch or --unfreeze_every_steps; "
                  "the encoder starts frozen and ends fine-tuned, so it needs --mode finetune."},
    )
    unfreeze_every_steps: int | None = field(
        default=None,
        metadata={"help": "Gradual unfreezing: one more group every N optimizer steps (null = every epoch)."},
    )
    # Robustness methods, trainer side (toolkit.training.robust); --loss/--focal_gamma are model arguments.
    adversarial: str = field(
        default="none",
        metadata={"help": f"Adversarial training on the encoder's word embeddings, one of {ADVERSARIAL}: fgm adds the "
                  "loss at weights moved by epsilon*g/||g||, pgd takes --pgd_steps steps inside that ball (needs "
                  "--mode finetune)."},
    )
    adversarial_epsilon: float = field(
        default=1.0, metadata={"help": "FGM step / PGD ball radius: L2 norm of the word-embedding perturbation."}
    )
    pgd_steps: int = field(default=3, metadata={"help": "PGD: ascent steps per batch (each a forward pass)."})
    pgd_alpha: float = field(default=0.3, metadata={"help": "PGD: L2 size of each ascent step."})
    rdrop_alpha: float = field(
        default=0.0,
        metadata={"help": "R-Drop: two forward passes with dropout; loss = their mean loss + alpha * symmetric KL of "
                  "their predictions (regression heads: squared difference). 0 = off."},
    )
    # Search with restarts and k-fold ensembles (toolkit.training.search, toolkit.training.kfold).
    search: str = field(
        default="none",
        metadata={"help": f"Hyperparameter search, one of {SEARCH_BACKENDS}: Trainer.hyperparameter_search on Optuna; "
                  "each trial trains under <output_dir>/trials/NN and is scored on the eval split, the best trial's "
                  "settings are then trained again as the run's result."},
    )
    search_space: dict | str | None = field(
        default="bert",
        metadata={"help": "bert (learning rates 5e-5, 4e-5, 3e-5, 2e-5: the BERT paper's grid), or a mapping of "
                  "training arguments to a list of values (a grid) or {low, high, log} (a range), in YAML or as "
                  "JSON."},
    )
    search_seeds: list[int] | None = field(
        default=None,
        metadata={"help": "Seeds as restarts: every point of the space trains once per seed (default: --seed)."},
    )
    search_trials: int | None = field(
        default=None, metadata={"help": "Trials to run (default: the whole grid; needed when the space has a range)."}
    )
    kfold: int | None = field(
        default=None,
        metadata={"help": "k-fold training: K models, each on K-1 folds of the train split (seeded, stratified by "
                  "label for one classification task) and selected on its held-out fold; they and their ensemble "
                  "(mean class probabilities) are scored on the eval and test splits. null = off."},
    )

    def __post_init__(self):
        check_ranges(self, TRAINING_RANGES)
        check_schedule_args(self)
        check_search_args(self)
        if self.num_train_epochs <= 0 and self.max_steps <= 0:
            raise ValueError(f"--num_train_epochs {self.num_train_epochs} trains nothing; give a number > 0 (or "
                             "--max_steps N).")
        if isinstance(self.resume_from_checkpoint, str) and self.resume_from_checkpoint.lower() in NO_RESUME:
            self.resume_from_checkpoint = None
        # TrainingArguments turns a missing output_dir into 'trainer_output'; remember that none was given, so a
        # recipe's own default folder (runs/<recipe>-<mode>) applies instead of every run sharing that one.
        self.output_dir_given = self.output_dir is not None
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"--precision {self.precision!r} is not one of auto, fp32, bf16, fp16.")
        if self.precision == "auto" and not (self.bf16 or self.fp16) and not self.use_cpu:
            import torch

            self.bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        elif self.precision != "auto":
            self.bf16, self.fp16 = self.precision == "bf16", self.precision == "fp16"
        # Under torchrun/accelerate on CPU: a real gloo process group (not N separate runs), or a one-line refusal.
        self.ddp_backend, self.use_cpu = choose_ddp_backend(self.ddp_backend, self.use_cpu)
        super().__post_init__()


def parse_args(
    dataclass_types: tuple[type, ...], argv: list[str] | None = None, default_config: str | Path | None = None,
    defaults: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """Parse ``[config.yaml] [--config config.yaml] [--flags]`` into the dataclasses.

    Layers, lowest first: the dataclasses' defaults, a study's ``defaults`` (its dataset, columns, schedule), the
    YAML file, then flags on the command line; the study's and the file's ``modes`` block for the run's mode sits
    on top of each (``toolkit.config``). ``default_config`` is read when the command line names no config (a
    recipe's CPU-sized default). Every value is checked before anything loads; an error names the value and where
    it came from. Each returned object carries ``arg_sources`` (a ``ConfigSources``) for the run's record.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    config_path = default_config
    if argv and argv[0].endswith((".yaml", ".yml")):
        config_path = argv.pop(0)
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise ConfigError("--config needs a YAML file path.")
        config_path = argv[i + 1]
        del argv[i : i + 2]
    argv = bare_flags_as_true(argv, ("resume_from_checkpoint",))
    merged, record = layered_defaults(dataclass_types, argv, config_path, defaults)
    parser = HfArgumentParser(dataclass_types)
    parser.set_defaults(**merged)
    try:
        parsed = parser.parse_args_into_dataclasses(args=argv)
        check_robust_methods(parsed)
        check_schedule_methods(parsed)
        check_search_methods(parsed)
    except ValueError as error:
        raise ConfigError(with_source(error, record)) from None
    for obj in parsed:
        obj.arg_sources = record
    return parsed


def check_robust_methods(parsed: Sequence[Any]) -> None:
    """Combinations of the robustness methods with the run that would silently do nothing: adversarial training
    without a trained encoder, R-Drop without dropout, either outside the task-model recipes."""
    training = next((a for a in parsed if isinstance(a, ToolkitTrainingArguments)), None)
    if training is None or (training.adversarial == "none" and training.rdrop_alpha == 0):
        return
    model = next((a for a in parsed if isinstance(a, ModelArguments)), None)
    if model is None:
        raise ValueError(f"--adversarial {training.adversarial} / --rdrop_alpha {training.rdrop_alpha} apply to the "
                         "task-model recipes (ToolkitTrainer) only; set them to none / 0 here.")
    if training.adversarial != "none" and model.mode == "frozen":
        raise ValueError(f"--adversarial {training.adversarial} perturbs the encoder's word embeddings, which "
                         "--mode frozen does not train; use --mode finetune or --adversarial none.")
    if training.rdrop_alpha > 0 and model.mode == "frozen" and model.head_dropout == 0:
        raise ValueError(f"--rdrop_alpha {training.rdrop_alpha} needs dropout, but with --mode frozen only the head's "
                         "is active and --head_dropout is 0.")


def check_schedule_args(args: ToolkitTrainingArguments) -> None:
    """The ULMFiT options' conflicts among training arguments: STLR is a whole schedule, warm-up included."""
    if args.stlr_cut_frac is not None:
        scheduler = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
        if scheduler != "linear":
            raise ValueError(f"--stlr_cut_frac {args.stlr_cut_frac} replaces the scheduler, but --lr_scheduler_type "
                             f"is {scheduler}; leave it at linear, or drop --stlr_cut_frac.")
        if args.warmup_steps or args.warmup_epochs:
            raise ValueError(f"--stlr_cut_frac {args.stlr_cut_frac} warms up by itself (its rising cut_frac share of "
                             "the steps); set --warmup_steps 0 and --warmup_epochs 0.")
    if args.unfreeze_every_steps is not None and not args.gradual_unfreezing:
        raise ValueError(f"--unfreeze_every_steps {args.unfreeze_every_steps} paces --gradual_unfreezing, which is "
                         "off; pass --gradual_unfreezing true, or drop it.")
    if args.gradual_unfreezing and args.ddp_find_unused_parameters is None:
        args.ddp_find_unused_parameters = True  # under DDP, frozen groups get no gradient until unfrozen


def check_schedule_methods(parsed: Sequence[Any]) -> None:
    """The layer-wise ULMFiT options need a task model whose encoder trains (``toolkit.training.schedules``)."""
    training = next((a for a in parsed if isinstance(a, ToolkitTrainingArguments)), None)
    if training is None:
        return
    given = [f"--{name} {getattr(training, name)}" for name in ("layer_lr_decay", "stlr_cut_frac")
             if getattr(training, name) is not None] + ["--gradual_unfreezing true"] * training.gradual_unfreezing
    model = next((a for a in parsed if isinstance(a, ModelArguments)), None)
    if given and model is None:
        raise ValueError(f"{given[0]} is a fine-tuning method of the task-model recipes (ToolkitTrainer); this run "
                         "does not apply it, so drop it here.")
    if model is None or model.mode != "frozen":
        return
    if training.gradual_unfreezing:
        raise ValueError("--gradual_unfreezing starts with the encoder frozen and unfreezes it group by group, which "
                         "--mode frozen (encoder fixed, features cached) forbids; use --mode finetune.")
    if training.layer_lr_decay is not None:
        raise ValueError(f"--layer_lr_decay {training.layer_lr_decay} sets the encoder layers' learning rates, but "
                         "--mode frozen trains only the pooler and heads; use --mode finetune, or drop it.")


def check_search_args(args: ToolkitTrainingArguments) -> None:
    """The search's backend and space, checked and parsed (``args.search_space_parsed``) before any data loads."""
    args.search_space_parsed = None
    if args.search not in SEARCH_BACKENDS:
        raise ValueError(f"--search {args.search!r} is not a search backend: use optuna, or none for no search (for "
                         "trials on several machines, see Ray Tune in the README).")
    if args.search == "none":
        for name in ("search_seeds", "search_trials"):
            if getattr(args, name) is not None:
                raise ValueError(f"--{name} {getattr(args, name)} applies to --search, which is none; pass --search "
                                 f"optuna, or drop --{name}.")
        return
    import importlib.util

    if importlib.util.find_spec("optuna") is None:
        raise ValueError("--search optuna needs the optuna package, which is not installed: pip install -e "
                         "'.[search]' (or pip install 'optuna>=3.0').")
    from dataclasses import fields

    def out_of_range(name: str, value: Any) -> str | None:
        current = getattr(args, name)
        if isinstance(current, (int, float)) and not isinstance(current, bool) and (
                isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"a number (the field's default is {current})"
        for field_name, ok, wanted in TRAINING_RANGES:
            if field_name == name:
                try:
                    return None if ok(value) else wanted
                except TypeError:
                    return wanted
        return None

    space = parse_space(args.search_space, args.search_seeds, args.seed, {f.name for f in fields(args)},
                        out_of_range)
    if space.size is None and args.search_trials is None:
        raise ValueError(f"--search_space {args.search_space} has a range ({', '.join(space.ranges)}), so the trials "
                         "are sampled: give --search_trials N.")
    if space.size is not None and args.search_trials is not None and args.search_trials > space.size:
        raise ValueError(f"--search_trials {args.search_trials} is more than the {space.size} points of the grid "
                         f"({' x '.join(f'{len(v)} {k}' for k, v in space.grid.items())}); drop it to run the grid.")
    args.search_space_parsed = space


def check_search_methods(parsed: Sequence[Any]) -> None:
    """--search and --kfold: task-model recipes only, not together, not resumed, the search in one process."""
    training = next((a for a in parsed if isinstance(a, ToolkitTrainingArguments)), None)
    if training is None or (training.search == "none" and training.kfold is None):
        return
    given = f"--search {training.search}" if training.search != "none" else f"--kfold {training.kfold}"
    if not any(isinstance(a, ModelArguments) for a in parsed):
        raise ValueError(f"{given} applies to the task-model recipes (imdb, multitask, rating, weibo_emotion); this "
                         "run does not, so drop it here.")
    if training.search != "none" and training.kfold is not None:
        raise ValueError(f"--search {training.search} and --kfold {training.kfold} do not combine (a search inside "
                         "every fold is nested cross-validation, which is not built); search first, then run --kfold "
                         "with the best trial's settings.")
    if training.resume_from_checkpoint is not None:
        raise ValueError(f"--resume_from_checkpoint continues one training, but {given} trains several models and "
                         "is not resumed; drop it and pass --overwrite_output_dir to start the run again.")
    if training.search != "none" and training.world_size > 1:
        raise ValueError(f"--search {training.search} runs its trials in one process, but this run has "
                         f"{training.world_size}; launch it with one process (for trials on several machines, see "
                         "Ray Tune in the README).")


def bare_flags_as_true(argv: list[str], names: tuple[str, ...]) -> list[str]:
    """``--resume_from_checkpoint`` with no value (last, or before another flag) means ``true``."""
    out = []
    for i, token in enumerate(argv):
        out.append(token)
        if token in {f"--{n}" for n in names} and (i + 1 == len(argv) or argv[i + 1].startswith("--")):
            out.append("true")
    return out
