"""Multi-task heads on one shared encoder (the third study): a weighted sum of per-task losses.

    accelerate launch recipes/multitask.py                                      # recipes/multitask/imdb_cpu.yaml
    accelerate launch recipes/multitask.py recipes/multitask/shopping_cpu.yaml  # category + sentiment (Chinese)
    accelerate launch recipes/multitask.py recipes/multitask/hotel_waimai_cpu.yaml  # one dataset per task
    accelerate launch recipes/multitask.py recipes/multitask/imdb_full.yaml     # full IMDB, fine-tuning (GPU)
    python recipes/multitask.py --tasks sentiment:label:classification:neg,pos rating:rating:classification \
        --loss_weights 1 0.5 --max_train_samples 500                            # any flag overrides the YAML

Results land in --output_dir: results.json (per-task metrics and per-class reports), results.md,
loss_curve.png, misclassified_<task>.jsonl, the saved model (every head and label map), tensorboard logs.
Predict with every head: python -m toolkit.inference --model <output_dir> --input "..." --device cpu
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a fresh clone without installing

from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args  # noqa: E402
from toolkit.cli import run_cli  # noqa: E402
from toolkit.data.splits import load_splits  # noqa: E402
from toolkit.training import run  # noqa: E402

DEFAULT_CONFIG = Path(__file__).parent / "multitask" / "imdb_cpu.yaml"
# A multi-task run's own defaults, below the YAML: IMDB sentiment and its star rating.
DEFAULTS = {"tasks": ["sentiment:label:classification:neg,pos", "rating:rating:regression"]}


def main(argv=None) -> dict:
    parsed = parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments), argv, default_config=DEFAULT_CONFIG,
                        defaults=DEFAULTS)
    model_args, data_args, training_args = parsed
    run.start_run(parsed, "multitask", model_args.mode)

    # ---- data: every task's labels, one column per task ---------------------------------------
    splits = load_splits(data_args, training_args.seed)

    # ---- tokenizer and model: shared encoder, one head per task -------------------------------
    tokenizer = run.load_tokenizer(model_args)
    model = run.build_model(model_args, splits.tasks)

    # ---- train and report ---------------------------------------------------------------------
    trainer = run.build_trainer(model, tokenizer, splits, model_args, data_args, training_args)
    results = run.train_and_report(trainer, splits, model_args, data_args)
    run.print_summary(results, training_args.output_dir)
    return results


if __name__ == "__main__":
    run_cli(main)
