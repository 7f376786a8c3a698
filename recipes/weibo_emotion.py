"""SMP2020-EWECT Weibo emotion (six labels): fine-tune a Chinese BERT, keep the best epoch by eval macro-F1.

    accelerate launch recipes/weibo_emotion.py                                       # recipes/weibo_emotion/cpu.yaml
    accelerate launch recipes/weibo_emotion.py recipes/weibo_emotion/bert_base_chinese.yaml  # the study (GPU, hub)
    accelerate launch recipes/weibo_emotion.py recipes/weibo_emotion/zh_mini_mlm.yaml    # offline model, GPU
    python recipes/weibo_emotion.py --class_weighting balanced --max_train_samples 500  # any flag overrides the YAML

Posts are cleaned with toolkit.cleaning (options saved in the model's config, re-applied at inference).
Trains on --train_split (virus_train), selects the epoch on --eval_split (virus_eval) with early stopping,
then scores the best model on --test_splits (virus_test, usual_eval, usual_test). --output_dir gets
results.json/.md, loss_curve.png, test_<split>.json/.md, confusion_<split>.png, misclassified_*.jsonl,
the model, and tensorboard logs (loss, learning rate, eval accuracy and macro-F1).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a fresh clone without installing

from toolkit import run, weibo  # noqa: E402
from toolkit.args import ModelArguments, parse_args  # noqa: E402
from toolkit.reports import write_json  # noqa: E402

DEFAULT_CONFIG = Path(__file__).parent / "weibo_emotion" / "cpu.yaml"


def main(argv=None) -> dict:
    model_args, data_args, training_args = parse_args(
        (ModelArguments, weibo.WeiboDataArguments, weibo.WeiboTrainingArguments), argv, default_config=DEFAULT_CONFIG
    )
    run.setup_logging(training_args)
    run.seed_everything(training_args)

    # ---- data (cleaned with the cleaner that is saved into the model) -------------------------
    cleaner = weibo.make_cleaner(data_args.clean)
    splits, tests = weibo.load_weibo_splits(data_args, training_args.seed, cleaner)
    training_args.warmup_steps = weibo.warmup_steps_for(len(splits.train), training_args, data_args.warmup_epochs)

    # ---- tokenizer and model ------------------------------------------------------------------
    tokenizer = run.load_tokenizer(model_args)
    model = run.build_model(model_args, splits.label_names, cleaning=cleaner.to_dict() if cleaner else None)
    data_args.max_length = model.fit_max_length(data_args.max_length, data_args.pad_to_multiple_of)

    # ---- trainer: early stopping on macro-F1, optional class-weighted cross-entropy ----------
    trainer = run.build_trainer(model, tokenizer, splits, model_args, data_args, training_args,
                                callbacks=weibo.early_stopping(data_args.early_stopping_patience))
    weights = weibo.class_weights(splits.train["label"], len(splits.label_names), data_args.class_weighting)
    if data_args.class_weighting != "none":
        trainer.compute_loss_func = weibo.WeightedCrossEntropy(weights)

    # ---- train, report on the eval split, then score the best model on the test splits -------
    results = run.train_and_report(trainer, splits, model_args, data_args)
    test_results = weibo.score_splits(trainer, tests, tokenizer, data_args.max_length, splits.label_names,
                                      training_args.output_dir)
    if not results:  # not the main process
        return {}
    results.update(
        class_weighting=data_args.class_weighting,
        class_weights=dict(zip(splits.label_names, [round(float(w), 4) for w in weights])),
        warmup_steps=training_args.warmup_steps,
        best_checkpoint=trainer.state.best_model_checkpoint,
        best_eval_macro_f1=trainer.state.best_metric,
        test={name: {k: r[k] for k in ("examples", "accuracy", "macro_f1")} for name, r in test_results.items()},
    )
    write_json(Path(training_args.output_dir) / "results.json", results)
    run.print_summary(results, training_args.output_dir)
    for name, r in results["test"].items():
        print(f"test {name}: accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}  ({r['examples']} posts)")
    return results


if __name__ == "__main__":
    main()
