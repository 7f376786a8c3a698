"""IMDB sentiment: frozen-feature head vs full fine-tuning (the study's Table 1 settings).

    accelerate launch recipes/imdb.py                                   # reads recipes/imdb/cpu.yaml: frozen, 2k/2k
    accelerate launch recipes/imdb.py recipes/imdb/finetune_full.yaml   # full study, fine-tuning (GPU)
    accelerate launch recipes/imdb.py recipes/imdb/frozen_full.yaml     # full study, frozen features (GPU)
    python recipes/imdb.py --mode finetune --max_train_samples 500      # any flag overrides the YAML

Results land in --output_dir (default runs/imdb-<mode>): results.json, results.md, loss_curve.png,
misclassified.jsonl, the saved model, and tensorboard logs.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a fresh clone without installing

from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args  # noqa: E402
from toolkit.cli import run_cli  # noqa: E402
from toolkit.data.splits import load_splits  # noqa: E402
from toolkit.training import run  # noqa: E402

DEFAULT_CONFIG = Path(__file__).parent / "imdb" / "cpu.yaml"


def main(argv=None) -> dict:
    parsed = parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments), argv, default_config=DEFAULT_CONFIG)
    model_args, data_args, training_args = parsed
    run.start_run(parsed, "imdb", model_args.mode)

    # ---- data ---------------------------------------------------------------------------------
    splits = load_splits(data_args, training_args.seed)

    # ---- tokenizer and model ------------------------------------------------------------------
    tokenizer = run.load_tokenizer(model_args)
    model = run.build_model(model_args, splits.tasks)

    # ---- train and report ---------------------------------------------------------------------
    trainer = run.build_trainer(model, tokenizer, splits, model_args, data_args, training_args)
    results = run.train_and_report(trainer, splits, model_args, data_args)
    run.print_summary(results, training_args.output_dir)
    return results


if __name__ == "__main__":
    run_cli(main)
