"""What a run leaves behind for people: per-epoch tables, the loss curve, misclassified examples."""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
             "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")


def cjk_fonts() -> list[str]:
    """The installed CJK fonts matplotlib can use, best first (``CJK_FONTS`` order). matplotlib reads its font list
    from a cache built when it was first imported, so a font installed later (``apt-get install
    fonts-wqy-microhei``) is missing from it: when no CJK font is listed, the system's font files that the cache
    lacks are added first."""
    from matplotlib import font_manager

    manager = font_manager.fontManager

    def listed() -> list[str]:
        names = {f.name for f in manager.ttflist}
        return [name for name in CJK_FONTS if name in names]

    if not listed():
        known = {f.fname for f in manager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                try:
                    manager.addfont(path)
                except (OSError, RuntimeError, ValueError) as err:  # an unreadable or unsupported font file
                    logger.debug("font %s not added: %s", path, err)
    return listed()


def cjk_font() -> str | None:
    """The CJK font pictures are drawn with (None when none is installed: Chinese text would show as boxes)."""
    fonts = cjk_fonts()
    return fonts[0] if fonts else None


def pyplot():
    """matplotlib's pyplot on the Agg backend, preferring an installed CJK font so Chinese labels render."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = cjk_fonts() + ["DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` as a PNG and close it; warn once if some characters had no glyph in the installed fonts."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    if any("Glyph" in str(w.message) for w in caught):
        logger.warning("%s: some characters have no glyph in the installed fonts (install a CJK font such as "
                       "fonts-noto-cjk or fonts-wqy-microhei to see Chinese labels).", path.name)
    plt.close(fig)
    return path


def plot_confusion(rates: np.ndarray, names: Sequence[str], path: str | Path, title: str,
                   support: Sequence[int] | None = None, counts: np.ndarray | None = None,
                   xlabel: str = "predicted", ylabel: str = "true") -> Path:
    """Row-normalised confusion matrix as a PNG; ``support`` labels each row with its size, ``counts`` adds the
    raw count to each cell."""
    plt = pyplot()
    n = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.8 + 0.7 * n))
    image = ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    for i in range(n):
        for j in range(n):
            text = f"{rates[i, j]:.2f}" if counts is None else f"{int(counts[i, j])}\n{rates[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if rates[i, j] > 0.55 else "black")
    rows = [f"{name} (n={support[i]})" for i, name in enumerate(names)] if support is not None else list(names)
    ax.set_xticks(range(n), names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(n), rows)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return save_figure(fig, path)


def epoch_rows(log_history: list[dict], metric_keys: Sequence[str] = ("eval_loss", "eval_accuracy")) -> list[dict]:
    """One row per evaluation in ``Trainer.state.log_history``, with its epoch and the metrics asked for."""
    rows = []
    for entry in log_history:
        if "eval_loss" in entry and "epoch" in entry:
            epoch = round(float(entry["epoch"]), 2)
            rows.append({"epoch": int(epoch) if epoch.is_integer() else epoch,
                         **{k: entry[k] for k in metric_keys if k in entry}})
    return rows


def markdown_table(rows: list[dict], floatfmt: str = "{:.4f}") -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    fmt = lambda v: floatfmt.format(v) if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def smooth(values: Sequence[float], window: int = 50) -> np.ndarray:
    """Trailing moving average; the first points average what exists so far."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return values
    csum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    start = np.maximum(idx - window, 0)
    return (csum[idx] - csum[start]) / (idx - start)


def plot_loss_curve(losses: Sequence[float], path: str | Path, window: int = 50, title: str = "training loss") -> Path:
    """Per-batch training loss (faint) and its ``window``-batch moving average, as a PNG."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, alpha=0.25, linewidth=0.8, label="per batch")
    ax.plot(steps, smooth(losses, window), linewidth=2, label=f"mean of last {window} batches")
    ax.set_xlabel("batch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    return save_figure(fig, path)


def write_misclassified(
    path: str | Path,
    texts: Sequence[str],
    labels: Sequence[int],
    probabilities: np.ndarray,
    label_names: Sequence[str],
    extra: dict[str, Sequence] | None = None,
) -> int:
    """JSONL of every wrong prediction, most confident mistakes first; returns how many."""
    predictions = probabilities.argmax(axis=-1)
    wrong = np.flatnonzero(predictions != np.asarray(labels))
    wrong = wrong[np.argsort(-probabilities[wrong, predictions[wrong]])]
    with open(path, "w", encoding="utf-8") as fh:
        for i in wrong:
            record = {
                "index": int(i),
                "label": label_names[labels[i]],
                "predicted": label_names[predictions[i]],
                "probabilities": {name: round(float(p), 4) for name, p in zip(label_names, probabilities[i])},
                "text": texts[i],
            }
            for key, values in (extra or {}).items():
                record[key] = values[i]
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(wrong)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it into place: a killed run never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")


def finite(value):
    """NaN and infinities (an undefined Spearman, say) as None, so results.json stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def hardware() -> str:
    """The device a run trained on, in words (GPU name, or CPU architecture and thread count) and torch's version."""
    import platform

    import torch

    if torch.cuda.is_available():
        device = f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    else:
        device = f"CPU only ({platform.machine()}, {torch.get_num_threads()} threads)"
    return f"{device}; torch {torch.__version__}"


def write_model_card(out: str | Path, results: dict, command: str) -> Path:
    """README.md beside the saved model: how it was trained (command, data, date, hardware), what it predicts
    (tasks and label spaces), how well (final metrics), and how to load it."""
    import datetime

    out = Path(out)
    tasks = results["tasks"]
    metric_rows = [{"task": name, **{k: v for k, v in metrics.items() if k != "n"}}
                   for name, metrics in results["per_task"].items()]
    task_lines = []
    for t in tasks:
        if t["problem_type"] == "regression":
            what = f"regression (outputs in the label's units; train mean {t['target_mean']:.4g}, std " \
                   f"{t['target_std']:.4g})"
        else:
            what = f"{t['num_labels']} classes: {', '.join(t['id2label'][k] for k in sorted(t['id2label']))}"
        scale = f"; rating scale {t['values']}" if t.get("values") else ""
        task_lines.append(f"- `{t['name']}`: {what}{scale}")
    data_lines = [f"- {role}: {r['source']} ({r['rows_kept'] or r['rows_read']} rows"
                  f"{', ' + str(r['empty_texts_dropped']) + ' empty dropped' if r['empty_texts_dropped'] else ''})"
                  for role, r in results["data"].items()]
    single = len(tasks) == 1
    usage = ("```python\nimport toolkit  # registers the model and tokenizer classes with transformers\n"
             "from transformers import pipeline\n\n"
             f'classify = pipeline("text-classification", model="{out}")\n'
             'print(classify("..."))  # cleaning and truncation as in training are applied by the tokenizer\n```\n'
             if single else
             "```python\nimport toolkit\nfrom toolkit.inference import load_model, predict\n\n"
             f'model, tokenizer = load_model("{out}")\nprint(predict(model, tokenizer, ["..."]))  # every head\n'
             "```\n")
    text = (
        f"# {out.name}\n\n"
        f"A `toolkit` text classifier: encoder `{results['model']}` ({results['mode']}, pooling "
        f"{results['pooling']}, layers {results['layers']}), max_length {results['max_length']}, "
        f"{'one head' if single else f'{len(tasks)} heads'}.\n\n"
        "## Tasks\n\n" + "\n".join(task_lines) + "\n\n"
        "## Training\n\n"
        f"- command: `{command}`\n- date: {datetime.date.today().isoformat()}\n- hardware: {hardware()}\n"
        f"- precision: {results['precision']}; train time {results['train_seconds']} s; "
        f"{results['train_examples']} train / {results['eval_examples']} eval rows\n"
        f"- cleaning: {'yes (in config.json; the tokenizer re-applies it)' if results.get('cleaning') else 'none'}"
        "\n\n## Data\n\n" + "\n".join(data_lines) + "\n\n"
        "## Evaluation (eval split, final model)\n\n" + markdown_table(metric_rows) + "\n"
        "## Use\n\n" + usage
    )
    path = out / "README.md"
    write_text_atomic(path, text)
    return path
