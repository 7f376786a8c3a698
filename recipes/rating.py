"""Star-rating prediction (Douban 1-5, IMDB 1-10): a classification head over the rating values, or a
regressor on the rating itself, on a frozen or fine-tuned encoder, with optional self-attentive pooling.

    accelerate launch recipes/rating.py                                # recipes/rating/imdb_cpu.yaml: MiniLM, frozen
    accelerate launch recipes/rating.py recipes/rating/douban_dmr.yaml     # DMR Douban reviews, zh-mini-mlm, frozen
    accelerate launch recipes/rating.py recipes/rating/douban_dmr_attention.yaml   # self-attentive pooling
    accelerate launch recipes/rating.py recipes/rating/douban_csv.yaml     # Douban short comments CSV (GPU)
    python recipes/rating.py --head regression --mode finetune --max_train_samples 500  # flags override the YAML

Results land in --output_dir (default runs/rating-<dataset>-<head>-<mode>): results.json, results.md,
predictions.jsonl, confusion_matrix.png, confusion_off_by_one.png, rating_histogram.png, tsne.png, attention.png
(pooling=attention), top_words.md, loss_curve.png, the saved model (rating values in its config), tensorboard logs.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a fresh clone without installing

from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args  # noqa: E402
from toolkit.cli import run_cli  # noqa: E402
from toolkit.cleaning import Cleaner  # noqa: E402
from toolkit.data.splits import load_splits  # noqa: E402
from toolkit.studies import rating  # noqa: E402
from toolkit.studies.rating_reports import rating_reporter  # noqa: E402
from toolkit.training import run  # noqa: E402

DEFAULT_CONFIG = Path(__file__).parent / "rating" / "imdb_cpu.yaml"


def main(argv=None) -> dict:
    parsed = parse_args((ModelArguments, DataArguments, rating.RatingArguments, ToolkitTrainingArguments), argv,
                        default_config=DEFAULT_CONFIG)
    model_args, data_args, rating_args, training_args = parsed
    run.start_run(parsed, "rating", f"{rating.dataset_tag(data_args.dataset)}-{rating_args.head}-{model_args.mode}")

    # ---- data: ratings validated; one head on the scale (classes over its values, or a regressor) --------------
    data_args.task_specs = [rating.rating_task_spec(rating_args)]
    cleaner = Cleaner() if data_args.clean else None
    splits = load_splits(data_args, training_args.seed, reader=rating.rating_reader(rating_args), cleaner=cleaner)

    # ---- tokenizer and model ------------------------------------------------------------------------------------
    tokenizer = run.load_tokenizer(model_args)
    model = run.build_model(model_args, splits.tasks, cleaning=cleaner.to_dict() if cleaner else None)

    # ---- train and report: the common report plus the rating pictures ------------------------------------------
    trainer = run.build_trainer(model, tokenizer, splits, model_args, data_args, training_args)
    results = run.train_and_report(trainer, splits, model_args, data_args, reporters=[rating_reporter(rating_args)])
    run.print_summary(results, training_args.output_dir)
    return results


if __name__ == "__main__":
    run_cli(main)
