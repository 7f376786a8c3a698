"""Masked-LM pretraining of a small Chinese BERT on raw in-domain text (offline, no hub checkpoint needed).

    accelerate launch recipes/pretrain_mlm.py                                     # recipes/pretrain_mlm/scratch.yaml
    accelerate launch recipes/pretrain_mlm.py recipes/pretrain_mlm/continue_zh_mini.yaml   # continue zh-mini-mlm
    python recipes/pretrain_mlm.py --max_texts 2000 --num_hidden_layers 2 --max_minutes 3  # a quick CPU try

From scratch: a character-level WordPiece vocabulary is trained on the corpus with `tokenizers`.
With --init_from: the checkpoint's own tokenizer and weights are continued. Masking: 15% of tokens,
80% [MASK] / 10% random / 10% kept. The default corpus leaves out the SMP2020 test splits. The output
dir holds a BertForMaskedLM + tokenizer that recipes/weibo_emotion.py takes as --model_name_or_path,
results.json (held-out MLM loss and perplexity, corpus sizes) and tensorboard logs.
"""

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a fresh clone without installing

from transformers import AutoTokenizer, Trainer  # noqa: E402

from toolkit.args import parse_args  # noqa: E402
from toolkit.cli import run_cli  # noqa: E402
from toolkit.evaluation.reports import write_json  # noqa: E402
from toolkit.hub import resolve_model_path  # noqa: E402
from toolkit.studies import mlm  # noqa: E402
from toolkit.training import run  # noqa: E402

DEFAULT_CONFIG = Path(__file__).parent / "pretrain_mlm" / "scratch.yaml"


def main(argv=None) -> dict:
    parsed = parse_args((mlm.MLMArguments, mlm.MLMTrainingArguments), argv, default_config=DEFAULT_CONFIG)
    args, training_args = parsed
    run.start_run(parsed, "zh-mlm", "pretrain")
    out = Path(training_args.output_dir)

    # ---- corpus: cleaned, deduplicated, a held-out share for the MLM eval loss -----------------
    cleaner = None
    if args.clean:
        from toolkit.cleaning import Cleaner

        cleaner = Cleaner()
    texts = mlm.corpus_texts(args.corpus, args.data_dir, cleaner)
    texts = mlm.shuffled(texts, training_args.seed, args.max_texts)
    n_eval = max(1, int(len(texts) * args.eval_fraction))
    train_texts, eval_texts = texts[n_eval:], texts[:n_eval]

    # ---- tokenizer and model: continue a checkpoint, or a new vocabulary and a new BERT --------
    if args.init_from:
        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.init_from))
        model = mlm.load_mlm_model(args.init_from, tokenizer)
    else:
        with training_args.main_process_first(desc="vocabulary"):
            vocab = mlm.train_char_vocab(train_texts, args.vocab_size, args.min_frequency)
            tokenizer = mlm.save_tokenizer(vocab, out, model_max_length=512)
        model = mlm.new_bert_mlm(tokenizer, args)

    # ---- pack, mask, train ---------------------------------------------------------------------
    with training_args.main_process_first(desc="pack"):
        train_ds = mlm.pack_texts(train_texts, tokenizer, args.block_size)
        eval_ds = mlm.pack_texts(eval_texts, tokenizer, args.block_size)
    time_limit = mlm.TimeLimitCallback(args.max_minutes)
    trainer = Trainer(model=model, args=training_args, train_dataset=train_ds, eval_dataset=eval_ds,
                      data_collator=mlm.mlm_collator(tokenizer, args.mlm_probability, training_args.seed),
                      processing_class=tokenizer, callbacks=[time_limit])
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    seconds = time.perf_counter() - start
    run.save_final_model(trainer)  # model, tokenizer (processing_class), state; arguments as JSON
    metrics = trainer.evaluate()
    if not trainer.is_world_process_zero():
        return {}

    results = {
        "init_from": args.init_from or "scratch",
        "corpus": args.corpus,
        "cleaning": cleaner.to_dict() if cleaner else None,
        "texts": {"train": len(train_texts), "eval": len(eval_texts), "train_chars": sum(map(len, train_texts))},
        "sequences": {"train": len(train_ds), "eval": len(eval_ds), "block_size": args.block_size},
        "vocab_size": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": trainer.state.global_step,
        "epochs": round(float(trainer.state.epoch or 0), 2),
        "train_seconds": round(seconds, 1),
        "stopped_by_time_limit": time_limit.stopped_at_step is not None,
        "eval_mlm_loss": metrics["eval_loss"],
        "eval_perplexity": math.exp(min(metrics["eval_loss"], 50)),
    }
    write_json(out / "results.json", results)
    keys = ("init_from", "vocab_size", "parameters", "steps", "train_seconds", "eval_mlm_loss")
    print({k: results[k] for k in keys})
    print(f"Model and tokenizer written to {out.resolve()}; fine-tune with "
          f"`accelerate launch recipes/weibo_emotion.py --model_name_or_path {out}`")
    return results


if __name__ == "__main__":
    run_cli(main)
