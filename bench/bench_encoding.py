"""Frozen-feature encoding speed on CPU: the toolkit in fp32 and under ``--precision auto``, against
sentence-transformers' ``encode`` (and ONNX Runtime when installed), in one process on the same IMDB reviews.

    python bench/bench_encoding.py                          # 200 reviews, max_length 512, batch 64
    python bench/bench_encoding.py --texts 400 --with_bf16  # also force bf16 autocast (slow without AMX)

toolkit rows: ``toolkit.modeling.features.compute_features`` (length-sorted batches, MiniLM mean pooling, last
layer) under the resolved precision. sentence-transformers: a ``SentenceTransformer`` built from the same local
MiniLM folder (Transformer + mean Pooling, no Normalize, max_seq_length = --max_length); its vectors are checked
equal to the toolkit's fp32 ones before anything is timed. Each row is timed once after a warm-up batch.
FLOPs (forward only) = sum over texts of 2 x P x L + 4 x layers x hidden x L^2, with P the non-embedding
parameters (attention and feed-forward matrices), L the text's real token count: matmuls on real tokens plus
attention scores and mixing; padding is not counted. The peak is a 2048 x 2048 matmul in the row's dtype,
median of 5, in this process. Agreement: cosine of each row's vectors to the toolkit fp32 ones (mean, min), and
the accuracy of a logistic-regression probe (standardised features, C=1) trained on a seeded, stratified 70%
of the bench reviews and scored on the other 30%.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from toolkit.hub import resolve_model_path  # noqa: E402
from toolkit.precision import CPU_BF16_FLAGS, DTYPES, cpu_flags, resolve_precision  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def matmul_peak(precision: str, n: int = 2048, reps: int = 5) -> float:
    dtype = DTYPES.get(precision, torch.float32)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def forward_flops(config, lengths: list[int]) -> float:
    h, layers, ffn = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    params = layers * (4 * h * h + 2 * h * ffn)
    return float(sum(2 * params * n + 4 * layers * h * n * n for n in lengths))


def probe_accuracy(features: np.ndarray, labels: np.ndarray, seed: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=0.3, random_state=seed,
                                                        stratify=labels)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(x_train, y_train)
    return float((probe.predict(x_test) == y_test).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200, help="IMDB train reviews (seeded random subset).")
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "imdb" / "train.parquet"))
    parser.add_argument("--with_bf16", action="store_true", help="Also time the toolkit with bf16 forced.")
    args = parser.parse_args(argv)

    import datasets
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, DataCollatorWithPadding

    from toolkit.data.splits import tokenize
    from toolkit.modeling.features import compute_features
    from toolkit.modeling.model import TaskModel

    table = pq.read_table(args.data, columns=["text", "label"])
    rows = np.sort(np.random.default_rng(args.seed).permutation(table.num_rows)[:args.texts])
    texts = [table.column("text")[int(i)].as_py() for i in rows]
    labels = np.array([table.column("label")[int(i)].as_py() for i in rows])

    path = resolve_model_path("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = TaskModel.from_encoder(path, tasks=[{"name": "label", "num_labels": 2}], mode="frozen", pooling="mean")
    tokenized = tokenize(datasets.Dataset.from_dict({"text": texts}), tokenizer, args.max_length)
    lengths = [len(ids) for ids in tokenized["input_ids"]]
    tokens = sum(lengths)
    flops = forward_flops(model.encoder.config, lengths)
    collator = DataCollatorWithPadding(tokenizer)

    def toolkit_encode(precision: str):
        return lambda data: compute_features(model, data, collator, args.batch, "cpu", precision).numpy()

    st_model = SentenceTransformer(modules=[Transformer(path, max_seq_length=args.max_length),
                                            Pooling(model.encoder.config.hidden_size, "mean")], device="cpu")

    def st_encode(data):
        return st_model.encode(data, batch_size=args.batch, convert_to_numpy=True, show_progress_bar=False)

    auto = resolve_precision("auto", "cpu")
    runs = [("toolkit fp32", "fp32", toolkit_encode("fp32"), True), (f"toolkit auto (= {auto})", auto,
                                                                     toolkit_encode(auto), True)]
    if args.with_bf16:
        runs.append(("toolkit bf16 (forced)", "bf16", toolkit_encode("bf16"), True))
    runs.append(("sentence-transformers encode (fp32)", "fp32", st_encode, False))

    # the same vectors before any timing: sentence-transformers must compute what the toolkit computes
    first = slice(0, min(16, len(texts)))
    ours = toolkit_encode("fp32")(tokenized.select(range(first.stop)))
    theirs = st_encode(texts[first])
    gap = float(np.abs(ours - theirs).max())
    if gap > 1e-4:
        raise SystemExit(f"bench_encoding.py: error: sentence-transformers' vectors differ from the toolkit's by up "
                         f"to {gap:.2e} on the first {first.stop} reviews; the comparison would not be like for like.")

    results, reference = [], None
    peaks: dict[str, float] = {}
    for name, precision, encode, on_tokens in runs:
        data = tokenized if on_tokens else texts
        encode(tokenized.select(range(2)) if on_tokens else texts[:2])  # warm-up
        start = time.perf_counter()
        features = encode(data)
        seconds = time.perf_counter() - start
        if reference is None:
            reference = features
        cos = (features * reference).sum(1) / (np.linalg.norm(features, axis=1) * np.linalg.norm(reference, axis=1))
        if precision not in peaks:
            peaks[precision] = matmul_peak(precision)
        results.append((name, precision, seconds, float(cos.mean()), float(cos.min()),
                        probe_accuracy(features, labels, args.seed)))

    flags = cpu_flags()
    present = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in (*CPU_BF16_FLAGS, "amx_tile", "avx512f"))
    print(f"\nCPU: {cpu_model()} ({present}); {torch.get_num_threads()} threads; torch {torch.__version__}; "
          f"{datetime.date.today().isoformat()}")
    n_train = len(texts) - int(np.ceil(0.3 * len(texts)))
    print(f"{len(texts)} IMDB train reviews (seed {args.seed}), max_length {args.max_length}, batch {args.batch}: "
          f"{tokens:,} real tokens (mean {tokens / len(texts):.0f}); {flops / 1e9:,.1f} GFLOP per pass; probe "
          f"{n_train} train / {len(texts) - n_train} test reviews\n")
    print("| encoder | precision | texts/s | tokens/s | GFLOP/s | matmul peak GFLOP/s | of peak | cosine to fp32 "
          "(mean / min) | probe accuracy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, precision, seconds, cos_mean, cos_min, acc in results:
        achieved = flops / seconds
        print(f"| {name} | {precision} | {len(texts) / seconds:.1f} | {tokens / seconds:,.0f} | {achieved / 1e9:.1f} "
              f"| {peaks[precision] / 1e9:.1f} | {achieved / peaks[precision]:.0%} | {cos_mean:.6f} / {cos_min:.6f} "
              f"| {acc:.3f} |")
    onnx = "installed, no ONNX path here yet" if _has_onnxruntime() else "not installed"
    print(f"| onnxruntime | - | skipped: {onnx} | | | | | | |")
    st_seconds = results[-1][2]
    print(f"\ntoolkit auto / sentence-transformers (texts/s): {st_seconds / results[1][2]:.2f}x; "
          f"max |toolkit fp32 - sentence-transformers| on the first {first.stop} reviews before timing: {gap:.1e}")
    return 0


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


if __name__ == "__main__":
    sys.exit(main())
