"""Fine-tuning throughput: a plain-Trainer configuration against the toolkit's, in one process, on the
same IMDB reviews (real lengths), with a randomly initialised encoder of a chosen shape.

    python bench/bench_speed.py                          # CPU: small shape, a few hundred reviews
    python bench/bench_speed.py --shape base --samples 8192 --batch 32 --toolkit_batch 64 --steps 60   # GPU
    python bench/bench_speed.py --tokens .gpu_suite/imdb_train.npz --model_dir .gpu_suite/minilm ...   # GPU suite

plain:   BertForSequenceClassification, padding to max_length, random batches, batch --batch.
toolkit: TaskModel (toolkit.modeling.model; the study's head), length-grouped batches padded to
         --pad_multiple, bf16 where the GPU has it, fused AdamW, dataloader workers, batch --toolkit_batch.
--compile adds the toolkit configuration under Trainer's torch_compile (inductor; after the second
         sequence length it compiles one dynamic-shape graph, so padding to a multiple bounds recompiles);
         its warm-up steps include the compilation, reported separately.
The toolkit runs under ToolkitTrainer; the plain model under transformers' Trainer plus ToolkitTrainer's
per-step extras that bear on speed (token counting on the device, flushing denormals on CPU: PlainTrainer below).
Both read the same rows (toolkit.data.splits.load_splits, tokenize; or with --tokens the pre-tokenised reviews
that bench/prepare_gpu_suite.py writes, for a machine without the datasets package). Throughput is timed after --warmup
steps (device synchronised). MFU counts the FLOPs of real tokens
only (6 x non-embedding parameters per token, plus attention), against the device's peak: the
H100/H200 dense bf16 figure on those GPUs, a matmul measured in this process elsewhere.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch._dynamo
from transformers import (AutoTokenizer, BertConfig, BertForSequenceClassification, DataCollatorWithPadding, Trainer,
                          TrainerCallback, TrainingArguments)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toolkit.data.labels import TaskConfig  # noqa: E402
from toolkit.hub import resolve_model_path  # noqa: E402
from toolkit.modeling.model import TaskModel, TaskModelConfig  # noqa: E402
from toolkit.training.trainer import StepStatsMixin, ToolkitTrainer  # noqa: E402

SHAPES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),
}
GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


class StepTimer(TrainerCallback):
    """Wall time from the end of step ``warmup`` to the end of training, device synchronised."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.seconds, self.steps = warmup, None, None, 0

    def _sync(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self._sync()
            self.start = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self._sync()
        self.seconds = time.perf_counter() - self.start
        self.steps = state.global_step - self.warmup


class PlainTrainer(StepStatsMixin, Trainer):
    """transformers' Trainer plus what ToolkitTrainer records on the side of every step (token counts, the CPU
    denormal flush), so both columns are measured alike."""


def peak_flops(dtype: torch.dtype) -> tuple[float, str]:
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        for key, value in GPU_PEAK_BF16.items():
            if key in name:
                return value, f"{name} dense bf16 peak"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n = 2048 if device == "cuda" else 1024
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(3):
        a @ b
    start, reps = time.perf_counter(), 10
    for _ in range(reps):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - start), f"measured {n}x{n} {dtype} matmul"


def train_flops(config: BertConfig, real_tokens: int, mean_len: float) -> float:
    """6 FLOPs per parameter per token (forward + backward) plus attention scores and mixing."""
    h, layers, ffn = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    params = layers * (4 * h * h + 2 * h * ffn)
    attention = 12 * layers * h * mean_len  # per token: QK^T and AV, forward + backward
    return real_tokens * (6 * params + attention)


def run(name, model, train, collator, args_kwargs, warmup, trainer_class=ToolkitTrainer):
    timer = StepTimer(warmup)
    graphs_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, report_to="none", save_strategy="no", logging_steps=10_000,
                                 disable_tqdm=True, **args_kwargs)
        # no evaluation here: an empty compute_metrics keeps evaluate (which needs datasets) unimported
        trainer = trainer_class(model=model, args=args, train_dataset=train, data_collator=collator,
                                callbacks=[timer], compute_metrics=lambda _: {})
        trainer.train()
        tokens = trainer.token_counts()
    batch = args_kwargs["per_device_train_batch_size"]
    samples = timer.steps * batch
    untimed = time.perf_counter() - started - timer.seconds  # set-up and warm-up steps (compilation included)
    return {"name": name, "samples_per_s": samples / timer.seconds, "steps": timer.steps, "seconds": timer.seconds,
            "padding_efficiency": tokens["padding_efficiency"], "warmup_s": untimed,
            "graphs": torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs_before}


def main(argv: list[str] | None = None) -> dict:
    """Run the bench, print its table, and return the toolkit column's figures (for bench/gpu_suite.py)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--samples", type=int, default=512, help="IMDB train reviews used (seeded subset).")
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16, help="Plain configuration's batch size.")
    parser.add_argument("--toolkit_batch", type=int, default=16)
    parser.add_argument("--pad_multiple", type=int, default=8)
    parser.add_argument("--steps", type=int, default=24, help="Timed steps (after warm-up) per configuration.")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--plain_bf16", action="store_true", help="Give the plain configuration bf16 too.")
    parser.add_argument("--compile", action="store_true", help="Also run the toolkit configuration compiled.")
    parser.add_argument("--tokens", help="Pre-tokenised train reviews (bench/prepare_gpu_suite.py's imdb_train.npz) "
                        "instead of reading and tokenising IMDB; --max_length can only lower their length then.")
    parser.add_argument("--model_dir", default="minilm", help="Where the tokenizer comes from (default minilm).")
    args = parser.parse_args(argv)

    gpu = torch.cuda.is_available()
    bf16 = gpu and torch.cuda.is_bf16_supported()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.model_dir))  # bert-base-uncased's vocabulary
    if args.tokens:
        from bench.suite_tokens import TokenRows

        task = TaskConfig(name="label", num_labels=2, id2label={0: "neg", 1: "pos"})
        train = TokenRows(args.tokens, task.label_column, limit=args.samples, seed=0, max_length=args.max_length)
        plain_train = TokenRows(args.tokens, "labels", limit=args.samples, seed=0, max_length=args.max_length)
        lengths = train.lengths
    else:
        from toolkit.args import DataArguments
        from toolkit.data.splits import load_splits, tokenize

        # the seeded train subset a recipe run with --max_train_samples and seed 0 gets (the eval split is not used)
        splits = load_splits(DataArguments(dataset="imdb", max_train_samples=args.samples, max_eval_samples=1), seed=0)
        task = splits.tasks[0]  # IMDB sentiment, neg/pos, labels in column labels_label
        train = tokenize(splits.train, tokenizer, args.max_length)
        plain_train = train.rename_column(task.label_column, "labels")  # what BertForSequenceClassification takes
        lengths = [len(x) for x in train["input_ids"]]
    mean_len = sum(lengths) / len(lengths)
    config = BertConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=512, **SHAPES[args.shape])

    total = args.steps + args.warmup
    common = dict(max_steps=total, learning_rate=5e-5, use_cpu=not gpu, dataloader_num_workers=0, seed=0)
    torch.manual_seed(0)
    plain_model = BertForSequenceClassification(config)
    plain = run("plain Trainer (pad to max_length, random batches)", plain_model, plain_train,
                DataCollatorWithPadding(tokenizer, padding="max_length", max_length=args.max_length),
                dict(common, per_device_train_batch_size=args.batch, bf16=bf16 and args.plain_bf16,
                     optim="adamw_torch"), args.warmup, trainer_class=PlainTrainer)
    toolkit_kwargs = dict(common, per_device_train_batch_size=args.toolkit_batch, bf16=bf16,
                          optim="adamw_torch_fused", train_sampling_strategy="group_by_length",
                          dataloader_num_workers=args.workers)
    runs = [(plain, args.batch, "bf16" if bf16 and args.plain_bf16 else "fp32")]
    for compiled in (False, True) if args.compile else (False,):
        torch.manual_seed(0)
        model = TaskModel(TaskModelConfig(encoder=config.to_dict(), tasks=[asdict(task)], mode="finetune"))
        extra = ", torch.compile" if compiled else ""
        name = f"toolkit (length-grouped, pad x{args.pad_multiple}, fused AdamW{extra})"
        res = run(name, model, train, DataCollatorWithPadding(tokenizer, pad_to_multiple_of=args.pad_multiple),
                  dict(toolkit_kwargs, torch_compile=compiled), args.warmup)
        runs.append((res, args.toolkit_batch, "bf16" if bf16 else "fp32"))
    toolkit = runs[1][0]

    peak, peak_note = peak_flops(torch.bfloat16 if bf16 else torch.float32)
    device = torch.cuda.get_device_name(0) if gpu else f"CPU {platform.machine()}, {torch.get_num_threads()} threads"
    print(f"\nIMDB train reviews: {args.samples} (mean {mean_len:.0f} tokens at max_length {args.max_length}); "
          f"encoder shape '{args.shape}' ({config.num_hidden_layers} layers, hidden {config.hidden_size}), "
          "random init; "
          f"{args.steps} timed steps after {args.warmup} warm-up; {device}; torch {torch.__version__}; "
          f"peak = {peak / 1e12:.2f} TFLOP/s ({peak_note})\n")
    print("| configuration | batch | precision | samples/s | real tokens/s | padding efficiency | MFU "
          "| set-up + warm-up s | graphs compiled |")
    print("|---|---|---|---|---|---|---|---|---|")
    for res, batch, precision in runs:
        tokens_per_s = res["samples_per_s"] * mean_len  # every sample's real tokens, whatever the padding
        mfu = res["mfu"] = train_flops(config, tokens_per_s, mean_len) / peak
        print(f"| {res['name']} | {batch} | {precision} | {res['samples_per_s']:.1f} | {tokens_per_s:,.0f} | "
              f"{res['padding_efficiency']:.1%} | {mfu:.1%} | {res['warmup_s']:.1f} | {res['graphs']} |")
    print(f"\nspeed-up (samples/s, toolkit / plain): {toolkit['samples_per_s'] / plain['samples_per_s']:.2f}x")
    if args.compile:
        print(f"torch.compile (samples/s, compiled / eager toolkit): "
              f"{runs[2][0]['samples_per_s'] / toolkit['samples_per_s']:.2f}x")
    return {"samples_per_s": toolkit["samples_per_s"], "speedup": toolkit["samples_per_s"] / plain["samples_per_s"],
            "mfu": toolkit["mfu"], "precision": runs[1][2], "peak_note": peak_note}


if __name__ == "__main__":
    main()
