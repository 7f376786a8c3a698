"""What a rating run leaves behind: row-normalised confusion matrices (plain and off-by-one), true vs predicted
rating histograms, a t-SNE map of pooled features, the self-attention heat-map, and top words per rating.

Every picture is a PNG drawn with matplotlib's Agg backend. Chinese labels need a CJK font (Noto Sans CJK,
WenQuanYi, SimHei, ...); one is used when installed, otherwise Chinese characters show as boxes.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.labels import TaskConfig
from ..evaluation import reports
from ..evaluation.metrics import task_predictions
from ..training.run import Reporter, RunReport, as_tuple
from .rating import pooled_outputs

logger = logging.getLogger(__name__)

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# html line breaks, the two words every review has, and what contractions leave behind (don't -> don)
ENGLISH_NOISE = {"br", "film", "movie", "films", "movies", "don", "doesn", "didn", "isn", "wasn", "aren", "ve", "ll",
                 "re", "couldn", "wouldn", "haven"}
# Function characters that top every Chinese rating's list (plus 电影 "film"); a bigram is dropped only when both of
# its characters are here, so 不错 and 好看 stay.
CHINESE_STOP_CHARS = set("的了是一我也在有这就都和人他她它们个之与及把被那你吗吧啊呢着过得地么电影部")


def is_chinese(texts: Sequence[str]) -> bool:
    """Whether at least 30% of the non-space characters of (a sample of) the texts are CJK ideographs."""
    sample = "".join(texts[:500])
    chars = [c for c in sample if not c.isspace()]
    return bool(chars) and sum(bool(_CJK.match(c)) for c in chars) / len(chars) >= 0.3


# ---- confusion matrices and histograms ---------------------------------------------------------------------------
def confusion(true_ids: Sequence[int], pred_ids: Sequence[int], n: int, off_by_one: bool = False) -> np.ndarray:
    """Row-normalised confusion matrix (scikit-learn's); with ``off_by_one`` a prediction one step away counts on
    the diagonal. A rating absent from the true labels gives a row of zeros."""
    from sklearn.metrics import confusion_matrix

    true_ids, pred_ids = np.asarray(true_ids), np.asarray(pred_ids)
    if off_by_one:
        pred_ids = np.where(np.abs(pred_ids - true_ids) <= 1, true_ids, pred_ids)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = confusion_matrix(true_ids, pred_ids, labels=list(range(n)), normalize="true")
    return np.nan_to_num(rates)


def plot_confusion(matrix: np.ndarray, names: Sequence[str], path: str | Path, title: str,
                   support: Sequence[int] | None = None) -> Path:
    return reports.plot_confusion(matrix, names, path, title, support, xlabel="predicted rating",
                                  ylabel="true rating")


def plot_rating_histograms(true_ids: Sequence[int], pred_ids: Sequence[int], scale: TaskConfig, path: str | Path,
                           raw_predictions: Sequence[float] | None = None) -> Path:
    """Counts of true and predicted ratings side by side; for regression also the raw predicted values."""
    plt = reports.pyplot()
    n = len(scale.values)
    ncols = 1 if raw_predictions is None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 4), squeeze=False)
    ax = axes[0, 0]
    x = np.arange(n)
    ax.bar(x - 0.2, np.bincount(np.asarray(true_ids), minlength=n), width=0.4, label="true")
    ax.bar(x + 0.2, np.bincount(np.asarray(pred_ids), minlength=n), width=0.4, label="predicted")
    ax.set_xticks(x, scale.scale_names)
    ax.set_xlabel("rating")
    ax.set_ylabel("reviews")
    ax.set_title("true vs predicted ratings")
    ax.legend()
    if raw_predictions is not None:
        ax = axes[0, 1]
        low, high = scale.values[0], scale.values[-1]
        edges = np.arange(low - 0.625, high + 0.626, 0.25)  # bins of a quarter star centred on whole ratings
        ax.hist(np.asarray(raw_predictions), bins=edges, alpha=0.8, color="tab:orange", label="predicted (clipped)")
        ax.hist(scale.to_values(true_ids), bins=edges, histtype="step", linewidth=1.5, color="tab:blue", label="true")
        ax.set_xlabel("rating")
        ax.set_ylabel("reviews")
        ax.set_title("regression output before rounding")
        ax.legend()
    return reports.save_figure(fig, path)


# ---- t-SNE ------------------------------------------------------------------------------------------------------
def tsne_points(features: np.ndarray, seed: int) -> np.ndarray:
    """2-D t-SNE (after PCA to at most 50 dimensions), seeded. One thread: OpenMP spinning on a busy shared CPU made
    it 5-40x slower."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    features = np.asarray(features, dtype=np.float64)
    dims = min(50, features.shape[0] - 1, features.shape[1])
    reduced = features
    if features.shape[1] > dims:
        reduced = PCA(n_components=dims, random_state=seed).fit_transform(features)
    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
    with threadpool_limits(1):
        return TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(reduced)


def plot_tsne(points: np.ndarray, rating_ids: Sequence[int], scale: TaskConfig, path: str | Path,
              title: str = "t-SNE of pooled features") -> Path:
    plt = reports.pyplot()
    cmap = plt.get_cmap("plasma")  # ordered low -> high rating, and no colour too pale for white paper
    colours = [cmap(0.85 * i / max(1, len(scale.values) - 1)) for i in range(len(scale.values))]
    rating_ids = np.asarray(rating_ids)
    fig, ax = plt.subplots(figsize=(7, 6))
    for i, name in enumerate(scale.scale_names):
        chosen = rating_ids == i
        if chosen.any():
            ax.scatter(points[chosen, 0], points[chosen, 1], s=12, color=colours[i], label=f"{name} ({chosen.sum()})",
                       alpha=0.8, edgecolors="none")
    ax.set_xticks([])  # t-SNE coordinates have no unit or scale worth reading
    ax.set_yticks([])
    ax.set_xlabel("t-SNE dimension 1")
    ax.set_ylabel("t-SNE dimension 2")
    ax.set_title(title)
    ax.legend(title="true rating", markerscale=2, fontsize=8)
    return reports.save_figure(fig, path)


# ---- attention ----------------------------------------------------------------------------------------------------
def choose_attention_examples(rating_ids: Sequence[int], lengths: Sequence[int], k: int,
                              max_tokens: int = 48) -> list[int]:
    """Up to ``k`` eval rows spread over the scale (lowest, highest, between), preferring texts that fit the plot."""
    rating_ids, lengths = np.asarray(rating_ids), np.asarray(lengths)
    present = sorted(set(rating_ids.tolist()))
    if k <= 0 or not present:
        return []
    wanted = [present[int(round(j))] for j in np.linspace(0, len(present) - 1, min(k, len(present)))]
    chosen = []
    for rating in dict.fromkeys(wanted):
        rows = np.flatnonzero(rating_ids == rating)
        fitting = rows[lengths[rows] <= max_tokens]
        chosen.append(int((fitting if len(fitting) else rows)[0]))
    return chosen


def plot_attention(examples: list[dict], path: str | Path, max_tokens: int = 48) -> Path:
    """One panel per text: the attention of each hop and their mean over the (first ``max_tokens``) tokens.

    Each example dict holds ``tokens`` (list[str]), ``attention`` ([hops, T], rows sum to one) and ``title``."""
    plt = reports.pyplot()
    fig, axes = plt.subplots(len(examples), 1, figsize=(min(18, 2 + 0.32 * max_tokens), 2.2 * len(examples) + 0.4),
                             squeeze=False)
    for ax, example in zip(axes[:, 0], examples):
        attention = np.asarray(example["attention"], dtype=np.float64)
        grid = np.vstack([attention, attention.mean(axis=0, keepdims=True)])[:, :max_tokens]
        tokens = example["tokens"][:max_tokens]
        image = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0)
        ax.set_yticks(range(len(grid)), [f"hop {h + 1}" for h in range(len(attention))] + ["mean"], fontsize=7)
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=8)
        cut = f" (first {max_tokens} of {attention.shape[1]} tokens)" if attention.shape[1] > max_tokens else ""
        ax.set_title(example["title"] + cut, fontsize=9, loc="left")
        fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    return reports.save_figure(fig, path)


# ---- top words ---------------------------------------------------------------------------------------------------
def _chinese_terms(text: str) -> list[str]:
    """CJK characters and 2-character sequences within runs of CJK characters, less function characters."""
    terms = []
    for run in re.findall(r"[\u3400-\u9fff\uf900-\ufaff]+", text):
        terms.extend(c for c in run if c not in CHINESE_STOP_CHARS)
        terms.extend(run[i:i + 2] for i in range(len(run) - 1)
                     if not (run[i] in CHINESE_STOP_CHARS and run[i + 1] in CHINESE_STOP_CHARS))
    return terms


def top_words(texts: Sequence[str], rating_ids: Sequence[int], scale: TaskConfig, k: int = 10,
              chinese: bool | None = None) -> dict[str, list[dict]]:
    """Per rating: the ``k`` terms with the highest mean TF-IDF over that rating's reviews (IDF over all reviews),
    with how many of its reviews contain each. Chinese: characters and character bigrams; else English words."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    chinese = is_chinese(texts) if chinese is None else chinese
    if chinese:
        vectorizer = TfidfVectorizer(analyzer=_chinese_terms, sublinear_tf=True, min_df=2)
    else:
        vectorizer = TfidfVectorizer(lowercase=True, token_pattern=r"(?u)\b[a-zA-Z]{2,}\b", sublinear_tf=True,
                                     min_df=2, stop_words=sorted(ENGLISH_STOP_WORDS | ENGLISH_NOISE))
    try:
        matrix = vectorizer.fit_transform(list(texts))
    except ValueError:  # every term below min_df (tiny inputs)
        vectorizer.set_params(min_df=1)
        matrix = vectorizer.fit_transform(list(texts))
    vocab = np.asarray(vectorizer.get_feature_names_out())
    rating_ids = np.asarray(rating_ids)
    table = {}
    for i, name in enumerate(scale.scale_names):
        rows = np.flatnonzero(rating_ids == i)
        if len(rows) == 0:
            table[name] = []
            continue
        sub = matrix[rows]
        scores = np.asarray(sub.mean(axis=0)).ravel()
        docs = np.asarray((sub > 0).sum(axis=0)).ravel()
        best = np.argsort(-scores, kind="stable")[:k]
        table[name] = [{"term": str(vocab[j]), "score": round(float(scores[j]), 4), "reviews": int(docs[j])}
                       for j in best if scores[j] > 0]
    return table


def top_words_markdown(table: dict[str, list[dict]], counts: dict[str, int]) -> str:
    lines = ["| rating | reviews | top terms (reviews containing it) |", "|---|---|---|"]
    for name, terms in table.items():
        shown = ", ".join(f"{t['term']} ({t['reviews']})" for t in terms) or "-"
        lines.append(f"| {name} | {counts.get(name, 0)} | {shown} |")
    return "\n".join(lines) + "\n"


def _rating(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# ---- the reporter -----------------------------------------------------------------------------------------------
def rating_reporter(rating_args) -> "Reporter":
    """The rating study's part of a run's report: plain and off-by-one confusion matrices, rating histograms, a t-SNE
    map of pooled features, the attention heat-map (pooling=attention), top words per rating, predictions.jsonl."""

    def report(run: "RunReport") -> dict:
        trainer, splits, out = run.trainer, run.splits, run.output_dir
        scale = splits.tasks[0]
        head = "regression" if scale.is_regression else "classification"
        output = np.asarray(as_tuple(run.prediction.predictions)[0], dtype=np.float64)
        pred = task_predictions(scale, output)
        pred_ids = pred["ids"]
        labels = np.asarray(splits.eval[scale.label_column], dtype=np.float64)
        true_ids = scale.nearest_ids(labels) if scale.is_regression else labels.astype(int)
        final = run.results["per_task"][scale.name]
        n = len(scale.values)
        support = np.bincount(true_ids, minlength=n).tolist()
        texts, positions = list(splits.eval["text"]), list(splits.eval["position"])  # one read each, not per row
        points = pred.get("points") if scale.is_regression else None
        pictures = {
            "confusion_matrix": plot_confusion(
                confusion(true_ids, pred_ids, n), scale.scale_names, out / "confusion_matrix.png",
                f"row-normalised confusion (accuracy {final['accuracy']:.3f})", support),
            "confusion_off_by_one": plot_confusion(
                confusion(true_ids, pred_ids, n, off_by_one=True), scale.scale_names,
                out / "confusion_off_by_one.png",
                f"off-by-one: one step away counts on the diagonal\n(off-by-one accuracy "
                f"{final['off_by_one_accuracy']:.3f})", support),
            "rating_histogram": plot_rating_histograms(true_ids, pred_ids, scale, out / "rating_histogram.png",
                                                       points),
        }
        rng = np.random.default_rng(trainer.args.seed)
        n_eval = len(splits.eval)
        tsne_rows = np.sort(rng.choice(n_eval, size=min(n_eval, rating_args.tsne_points), replace=False))
        if len(tsne_rows) >= 10:
            pooled = pooled_outputs(trainer, tsne_rows.tolist())
            pictures["tsne"] = plot_tsne(tsne_points(pooled["pooled"], trainer.args.seed), true_ids[tsne_rows],
                                         scale, out / "tsne.png",
                                         f"t-SNE of {trainer.model.config.pooling}-pooled features "
                                         f"({len(tsne_rows)} eval texts)")
        if trainer.model.config.pooling == "attention" and rating_args.attention_examples:
            rows = choose_attention_examples(true_ids, [len(t) for t in texts], rating_args.attention_examples)
            got = pooled_outputs(trainer, rows)
            tokenizer = trainer.processing_class
            examples = [{"tokens": tokenizer.convert_ids_to_tokens(ids), "attention": att,
                         "title": f"true {scale.scale_names[true_ids[r]]}, predicted "
                                  f"{scale.scale_names[pred_ids[r]]}: {texts[r][:70]}"}
                        for r, ids, att in zip(rows, got["token_ids"], got["attention"])]
            if examples:
                pictures["attention"] = plot_attention(examples, out / "attention.png")

        train_labels = np.asarray(splits.train[scale.label_column], dtype=np.float64)
        train_ids = scale.nearest_ids(train_labels) if scale.is_regression else train_labels.astype(int)
        words = top_words(splits.train["text"], train_ids, scale, rating_args.top_words)
        train_counts = {name: int(c) for name, c in zip(scale.scale_names, np.bincount(train_ids, minlength=n))}
        reports.write_text_atomic(out / "top_words.md", top_words_markdown(words, train_counts))
        records = []
        for i in range(n_eval):
            record = {"index": i, "position": positions[i], "rating": _rating(scale.values[true_ids[i]]),
                      "predicted": _rating(scale.values[pred_ids[i]]), "text": texts[i]}
            if scale.is_regression:
                record["raw_prediction"] = round(float(pred["values"][i]), 4)
            records.append(json.dumps(record, ensure_ascii=False))
        reports.write_text_atomic(out / "predictions.jsonl", "\n".join(records) + "\n")
        run.pictures.update({k: p.name for k, p in pictures.items()})
        run.markdown.append("\n## Top terms per rating (train, mean TF-IDF)\n\n"
                            + top_words_markdown(words, train_counts))
        return {"head": head, "rating_values": list(scale.values), "top_words": words,
                "label_mapping": ("label id = position in rating_values" if head == "classification" else
                                  "target = the rating value (learned standardised); predictions clipped to the scale "
                                  "and read as the nearest rating value for accuracy, off-by-one and the matrices")}

    return report
