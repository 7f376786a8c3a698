"""SMP2020-EWECT Weibo emotion (six labels): fine-tune a Chinese BERT, keep the best epoch by eval macro-F1.

    accelerate launch recipes/weibo_emotion.py                                       # recipes/weibo_emotion/cpu.yaml
    accelerate launch recipes/weibo_emotion.py recipes/weibo_emotion/bert_base_chinese.yaml  # the study (GPU, hub)
    accelerate launch recipes/weibo_emotion.py recipes/weibo_emotion/zh_mini_mlm.yaml    # offline model, GPU
    python recipes/weibo_emotion.py --class_weighting balanced --max_train_samples 500  # any flag overrides the YAML

Posts are cleaned with toolkit.cleaning (options saved in the model's config, re-applied at inference).
Trains on --train_split (virus_train), selects the epoch on --eval_split (virus_eval) with early stopping,
then scores the best model on --test_splits (virus_test, usual_eval, usual_test). --output_dir gets
results.json/.md (test splits included), loss_curve.png, confusion_<split>.png, misclassified_*.jsonl, the model
with its card (README.md), and tensorboard logs (loss, learning rate, eval accuracy and macro-F1).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a fresh clone without installing

from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args  # noqa: E402
from toolkit.cli import run_cli  # noqa: E402
from toolkit.cleaning import Cleaner  # noqa: E402
from toolkit.data.splits import load_splits  # noqa: E402
from toolkit.studies.weibo import WEIBO_DEFAULTS, read_weibo_source  # noqa: E402
from toolkit.training import run  # noqa: E402

DEFAULT_CONFIG = Path(__file__).parent / "weibo_emotion" / "cpu.yaml"


def main(argv=None) -> dict:
    parsed = parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments), argv, default_config=DEFAULT_CONFIG,
                        defaults=WEIBO_DEFAULTS)
    model_args, data_args, training_args = parsed
    run.start_run(parsed, "weibo-emotion", model_args.mode)

    # ---- data: the competition files, cleaned with the cleaner that is saved into the model ---
    cleaner = Cleaner() if data_args.clean else None
    splits = load_splits(data_args, training_args.seed, reader=read_weibo_source, cleaner=cleaner)

    # ---- tokenizer and model ------------------------------------------------------------------
    tokenizer = run.load_tokenizer(model_args)
    model = run.build_model(model_args, splits.tasks, cleaning=cleaner.to_dict() if cleaner else None)

    # ---- train (best epoch by eval macro-F1), report, score the test splits -------------------
    trainer = run.build_trainer(model, tokenizer, splits, model_args, data_args, training_args)
    results = run.train_and_report(trainer, splits, model_args, data_args)
    run.print_summary(results, training_args.output_dir)
    return results


if __name__ == "__main__":
    run_cli(main)
