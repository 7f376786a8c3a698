"""Does multi-task learning help when each task has little data? Single-task vs multi-task on the same data.

    python bench/bench_multitask.py                         # 2-core CPU: sizes 250, 1000, 2000; ~15 minutes
    python bench/bench_multitask.py --sizes 1000 --seeds 42 43 44 --eval 1000

Data: IMDB reviews, each with its sentiment (2 classes) and its star rating (8 classes: 1-4, 7-10), so the
two tasks share every text (the study's situation 1). Seeded nested train subsets of the train split (the
250 reviews are inside the 1,000, ...) and one fixed seeded subset of the test split for evaluation.

What is shared: MiniLM's first 5 layers are frozen and run once (their token states are cached, max_length
128); its last layer (CLS path only: the one vector the heads read) is trained together with the heads. In
the multi-task run that top layer is shared by both heads and trained on the sum of both cross-entropies;
the single-task runs train it for one task. Same examples, epochs, batch size and steps for every run, so
the budget is equal. A control with the top layer frozen too ("frozen") must show no difference: with
nothing shared and trainable, two heads on fixed features are two independent problems.
Training and evaluation go through ``toolkit.multitask.MultiTaskTrainer`` and the toolkit's loss functions.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.data import read_split  # noqa: E402
from toolkit.hub import resolve_model_path  # noqa: E402
from toolkit.metrics import classification_metrics  # noqa: E402
from toolkit.modeling import mlp_head  # noqa: E402
from toolkit.multitask import MultiTaskOutput, MultiTaskTrainer, TaskConfig, combine_losses, task_loss  # noqa: E402
from toolkit.reports import markdown_table  # noqa: E402

RATINGS = [1, 2, 3, 4, 7, 8, 9, 10]
SENTIMENT = TaskConfig("sentiment", 2, loss_weight=1.0, id2label={0: "neg", 1: "pos"})
RATING = TaskConfig("rating", 8, loss_weight=1.0, id2label={i: str(r) for i, r in enumerate(RATINGS)})


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


def cls_top_layer(layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A BERT layer's output at the [CLS] position only (queries from CLS; keys/values from every token)."""
    att = layer.attention.self
    heads, size = att.num_attention_heads, att.attention_head_size
    b, t, _ = hidden.shape
    q = att.query(hidden[:, :1]).view(b, 1, heads, size).transpose(1, 2)
    k = att.key(hidden).view(b, t, heads, size).transpose(1, 2)
    v = att.value(hidden).view(b, t, heads, size).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(size) + additive_mask(mask)
    context = (att.dropout(scores.softmax(-1)) @ v).transpose(1, 2).reshape(b, 1, heads * size)
    attended = layer.attention.output(context, hidden[:, :1])
    return layer.output(layer.intermediate(attended), attended)[:, 0]


class TopLayerHeads(nn.Module):
    """MiniLM's last layer (CLS path) shared by one study MLP head per task; reads cached layer-5 states."""

    def __init__(self, top_layer: nn.Module, tasks: list[TaskConfig], hidden: int, train_top: bool, seed: int):
        super().__init__()
        self.tasks = tasks
        self.top = copy.deepcopy(top_layer)
        for p in self.top.parameters():
            p.requires_grad = train_top
        self.train_top = train_top
        self.heads = nn.ModuleDict()
        for i, t in enumerate(tasks):  # a task's head starts from the same weights alone or beside others
            torch.manual_seed(seed * 1000 + [SENTIMENT.name, RATING.name].index(t.name))
            self.heads[t.name] = mlp_head(hidden, 256, 0.1, t.num_labels)

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.train_top:
            self.top.eval()
        return self

    def forward(self, hidden_states, attention_mask, **labels):
        pooled = cls_top_layer(self.top, hidden_states.float(), attention_mask)
        logits = {t.name: self.heads[t.name](pooled) for t in self.tasks}
        losses = {}
        for t in self.tasks:
            if labels.get(t.label_column) is not None:
                loss = task_loss(t, logits[t.name], labels[t.label_column])
                if loss is not None:
                    losses[t.name] = loss
        loss = combine_losses(losses, {t.name: t.loss_weight for t in self.tasks}, None, logits) if labels else None
        return MultiTaskOutput(loss=loss, task_logits=logits, task_losses=losses)


class CachedStates(torch.utils.data.Dataset):
    def __init__(self, hidden, mask, sentiment, rating):
        self.hidden, self.mask, self.sentiment, self.rating = hidden, mask, sentiment, rating

    def __len__(self):
        return len(self.hidden)

    def __getitem__(self, i):
        return {"hidden_states": self.hidden[i], "attention_mask": self.mask[i],
                "labels_sentiment": self.sentiment[i], "labels_rating": self.rating[i]}


@torch.no_grad()
def encode_bottom(encoder, tokenizer, texts: list[str], max_length: int, batch_size: int = 64):
    """Token states after the second-to-last layer (fp16, padded to max_length) and attention masks."""
    hidden = torch.zeros(len(texts), max_length, encoder.config.hidden_size, dtype=torch.float16)
    masks = torch.zeros(len(texts), max_length, dtype=torch.long)
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        out = encoder(**enc, output_hidden_states=True)
        t = enc["input_ids"].shape[1]
        hidden[start:start + len(enc["input_ids"]), :t] = out.hidden_states[-2].half()
        masks[start:start + len(enc["input_ids"]), :t] = enc["attention_mask"]
    return hidden, masks


def run_one(top_layer, tasks, train_ds, eval_ds, train_top: bool, args, seed: int, out_dir: Path) -> dict:
    from transformers import TrainingArguments, set_seed

    set_seed(seed)
    model = TopLayerHeads(top_layer, tasks, top_layer.attention.self.query.in_features, train_top, seed)
    targs = TrainingArguments(output_dir=str(out_dir), per_device_train_batch_size=args.batch_size,
                              per_device_eval_batch_size=128, learning_rate=args.learning_rate,
                              num_train_epochs=args.epochs, eval_strategy="no", save_strategy="no",
                              logging_strategy="no", report_to="none", use_cpu=True, seed=seed,
                              disable_tqdm=True, dataloader_pin_memory=False)
    trainer = MultiTaskTrainer(model=model, args=targs, train_dataset=train_ds)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    pred = trainer.predict(eval_ds)
    scores = {"train_s": round(seconds, 1)}
    for task, logits in zip(tasks, pred.predictions):
        labels = eval_ds.sentiment.numpy() if task.name == "sentiment" else eval_ds.rating.numpy()
        predicted = np.asarray(logits).argmax(-1)
        metrics = classification_metrics(labels, predicted)
        scores[f"{task.name}_acc"] = metrics["accuracy"]
        scores[f"{task.name}_f1"] = metrics["macro_f1"]
        if task.name == "rating":
            stars = np.asarray(RATINGS)
            scores["rating_mae"] = float(np.abs(stars[predicted] - stars[labels]).mean())
    return scores


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 2000], help="Train subset sizes.")
    parser.add_argument("--eval", type=int, default=1000, help="Test reviews evaluated (fixed seeded subset).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="Training seeds (data subsets: seed 0).")
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=3e-4)
    parser.add_argument("--no_frozen_control", action="store_true", help="Skip the frozen-top-layer control.")
    parser.add_argument("--output_dir", default="/tmp/bench_multitask")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()
    torch.manual_seed(0)
    t0 = time.perf_counter()

    rng = np.random.default_rng(0)
    train_raw, test_raw = read_split("imdb", "train"), read_split("imdb", "test")
    train_idx = rng.permutation(len(train_raw))[: max(args.sizes)].tolist()
    eval_idx = rng.permutation(len(test_raw))[: args.eval].tolist()
    train_rows, eval_rows = train_raw.select(train_idx), test_raw.select(eval_idx)

    path = resolve_model_path("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path, add_pooling_layer=False, dtype=torch.float32).eval()
    top_layer = encoder.encoder.layer[-1]

    def cached(rows):
        hidden, mask = encode_bottom(encoder, tokenizer, rows["text"], args.max_length)
        rating = torch.tensor([RATINGS.index(r) for r in rows["rating"]])
        return CachedStates(hidden, mask, torch.tensor(rows["label"]), rating)

    train_all, eval_ds = cached(train_rows), cached(eval_rows)
    encode_s = time.perf_counter() - t0
    conditions = [("sentiment only", [SENTIMENT]), ("rating only", [RATING]),
                  ("both (multi-task)", [SENTIMENT, RATING])]
    regimes = [("top layer trained", True)] + ([] if args.no_frozen_control else [("frozen (control)", False)])
    rows = []
    for n in args.sizes:
        train_ds = CachedStates(train_all.hidden[:n], train_all.mask[:n], train_all.sentiment[:n],
                                train_all.rating[:n])
        for regime, train_top in regimes:
            if not train_top and n != min(args.sizes):
                continue  # the control needs one size only
            for name, tasks in conditions:
                runs = [run_one(top_layer, tasks, train_ds, eval_ds, train_top, args, seed, Path(args.output_dir))
                        for seed in args.seeds]
                row = {"train n": n, "regime": regime, "tasks": name}
                for key in ("sentiment_acc", "sentiment_f1", "rating_acc", "rating_f1", "rating_mae"):
                    values = [r[key] for r in runs if key in r]
                    row[key] = _fmt(values)
                row["train s/run"] = f"{np.mean([r['train_s'] for r in runs]):.0f}"
                rows.append(row)
                print(f"  done: n={n} {regime} {name} {row}", file=sys.stderr, flush=True)
    table = markdown_table(rows)
    header = (
        f"IMDB, MiniLM (all-MiniLM-L6-v2), max_length {args.max_length}; layers 1-5 frozen (cached), last layer "
        f"(CLS path) + one MLP head per task trained; train subsets {args.sizes} (nested, seeded) of the train "
        f"split, eval on {len(eval_ds)} seeded test reviews; {args.epochs:g} epochs, batch {args.batch_size}, "
        f"AdamW lr {args.learning_rate:g}, loss = CE(sentiment) + CE(rating, 8 classes); seeds {args.seeds} "
        f"(mean ± std when more than one). rating_mae is in stars, from the predicted class. "
        f"Encoding took {encode_s:.0f} s; total {time.perf_counter() - t0:.0f} s on {torch.get_num_threads()} "
        "CPU threads, no GPU.\n"
    )
    print(header)
    print(table)
    return header + table


def _fmt(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


if __name__ == "__main__":
    main()
