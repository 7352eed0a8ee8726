"""Figures of training and results (chapters 03-06); each returns a matplotlib Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, FuncFormatter, NullFormatter
from numpy.typing import ArrayLike

from .dataset import LABELS
from .metrics import PAPER, clipped_logit
from .plots_data import CLASS_COLOURS, MODEL_COLOURS, figure

__all__ = [
    "plot_augmented_samples",
    "plot_history",
    "plot_confusion_matrices",
    "plot_roc_pr",
    "plot_threshold_tradeoff",
    "plot_score_shift",
    "plot_reliability",
    "plot_gradcam_gallery",
    "plot_distributions",
    "plot_image_grid",
]


#: How the history's metric names are written on the figures.
_METRIC_LABELS = {
    "loss": "loss (binary cross-entropy)",
    "auc": "ROC AUC",
    "accuracy": "accuracy (threshold 0.5)",
    "learning_rate": "learning rate",
}


def plot_augmented_samples(images: np.ndarray, augmentation, variants: int = 4, seed: int = 0) -> Figure:
    """Each image (``(n, size, size)`` uint8, a few rows of the cache) as cached, then ``variants`` random
    augmentations of it: ``augmentation`` (:func:`cxr_utils.training.augmentation_layers`) with ``training=True``."""
    import keras

    keras.utils.set_random_seed(seed)
    batch = np.asarray(images, dtype=np.float32)[..., None]
    fig = figure(2.2 * (variants + 1), 2.3 * len(batch))
    axes = fig.subplots(len(batch), variants + 1, squeeze=False)
    for column in range(variants + 1):
        shown = batch if column == 0 else keras.ops.convert_to_numpy(augmentation(batch, training=True))
        for row in range(len(batch)):
            ax = axes[row][column]
            ax.imshow(np.clip(shown[row, ..., 0], 0, 255), cmap="gray", vmin=0, vmax=255)
            ax.set_axis_off()
            ax.set_title("as cached" if column == 0 else f"augmented {column}", fontsize=8)
    return fig


def plot_history(history: pd.DataFrame, metrics: tuple[str, ...] = ("loss", "auc")) -> Figure:
    """Learning curves of ``metrics``, training and validation, one panel each; the best validation epoch dashed."""
    fig = figure(4.2 * len(metrics), 3.4)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
    for ax, metric in zip(axes, metrics):
        ax.plot(epochs, history[metric], marker="o", label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        label = _METRIC_LABELS.get(metric, metric.replace("_", " "))
        ax.set(xlabel="epoch", ylabel=label, title=label)
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    if "val_auc" in history and "auc" in metrics:
        best_epoch = np.asarray(epochs)[int(np.argmax(history["val_auc"].to_numpy()))]
        axes[list(metrics).index("auc")].axvline(
            best_epoch, color="grey", linestyle="--", linewidth=0.8, label=f"best validation (epoch {best_epoch})"
        )
    for ax in axes:
        ax.legend()
    return fig


def plot_confusion_matrices(y_true: np.ndarray, models: dict[str, tuple[np.ndarray, float]]) -> Figure:
    """One confusion matrix per model (name -> ``(scores, threshold)``), counts and row shares in each cell."""
    from sklearn.metrics import confusion_matrix

    fig = figure(3.6 * len(models), 3.4)
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    for ax, (name, (scores, threshold)) in zip(axes, models.items()):
        matrix = confusion_matrix(y_true, np.asarray(scores) >= threshold, labels=[0, 1])
        shares = matrix / matrix.sum(axis=1, keepdims=True)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (row, column), count in np.ndenumerate(matrix):
            colour = "white" if shares[row, column] > 0.6 else "black"
            ax.text(column, row, f"{count}\n{shares[row, column]:.1%}", ha="center", va="center", color=colour)
        ax.set_xticks([0, 1], [f"predicted\n{label}" for label in LABELS])
        ax.set_yticks([0, 1], [f"true\n{label}" for label in LABELS])
        ax.set_title(f"{name}\nthreshold {threshold:.3f}", fontsize=9)
    return fig


def plot_roc_pr(y_true: np.ndarray, models: dict[str, tuple[np.ndarray, float]]) -> Figure:
    """ROC and precision-recall curves of ``models`` with their operating points and the paper's; a zoomed corner."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    fig = figure(10, 4.2)
    roc_ax, pr_ax = fig.subplots(1, 2)
    zoom = roc_ax.inset_axes([0.45, 0.3, 0.5, 0.42], xlim=(0, 0.3), ylim=(0.7, 1.0))
    y_true = np.asarray(y_true)
    for colour, (name, (scores, threshold)) in zip(MODEL_COLOURS, models.items()):
        scores = np.asarray(scores)
        fpr, tpr, _ = roc_curve(y_true, scores)
        predicted = scores >= threshold
        sensitivity = predicted[y_true == 1].mean()
        specificity = 1 - predicted[y_true == 0].mean()
        for ax in (roc_ax, zoom):
            ax.plot(fpr, tpr, color=colour, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
            ax.plot(1 - specificity, sensitivity, "o", color=colour, markeredgecolor="black")
        precision, recall, _ = precision_recall_curve(y_true, scores)
        pr_ax.plot(recall, precision, color=colour, label=f"{name} (AP {average_precision_score(y_true, scores):.3f})")
        ppv = y_true[predicted].mean() if predicted.any() else np.nan
        pr_ax.plot(sensitivity, ppv, "o", color=colour, markeredgecolor="black")
    for ax in (roc_ax, zoom):
        paper = (1 - PAPER["specificity"], PAPER["sensitivity"])
        ax.plot(*paper, "*", color="black", markersize=11, label="Kermany et al. 2018 (published point)")
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
    zoom.tick_params(labelsize=7)
    roc_ax.indicate_inset_zoom(zoom, edgecolor="grey")
    roc_ax.set(xlabel="1 - specificity (false positive rate)", ylabel="sensitivity")
    roc_ax.set_title("ROC curve (dots: chosen thresholds)")
    pr_ax.axhline(y_true.mean(), color="grey", linestyle=":", linewidth=0.8, label="always PNEUMONIA")
    pr_ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title="Precision-recall curve")
    for ax in (roc_ax, pr_ax):
        ax.legend(fontsize=7, loc="lower left" if ax is pr_ax else "lower right")
    return fig


#: Ticks of the logit threshold axis, as probabilities: symmetric about 0.5 in log-odds.
_LOGIT_TICKS = (1e-6, 1e-4, 0.01, 0.1, 0.5, 0.9, 0.99, 1 - 1e-4, 1 - 1e-6)


def _probability_label(p: float) -> str:
    """``1e-04`` and ``1-1e-04`` for probabilities near 0 and 1, ``0.99`` otherwise."""
    if p < 0.01:
        return f"{p:.0e}"
    if p > 0.99:
        return f"1-{1 - p:.0e}"
    return f"{p:g}"


def plot_threshold_tradeoff(curves: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float) -> Figure:
    """Sensitivity and specificity against the threshold (logit axis) per split, the chosen ``threshold`` drawn."""
    logits = np.concatenate([clipped_logit(np.asarray(s), eps=1e-6) for _, s in curves.values()])
    logits = np.append(logits, clipped_logit(threshold, eps=1e-6))
    low, high = logits.min() - 0.5, logits.max() + 0.5  # the range the scores use, in log-odds
    grid = 1 / (1 + np.exp(-np.linspace(low, high, 201)))  # thresholds evenly spaced in log-odds
    fig = figure(7.2, 4.2)
    ax = fig.subplots()
    for style, (name, (y_true, scores)) in zip(("-", "--", ":"), curves.items()):
        y_true, scores = np.asarray(y_true), np.asarray(scores)
        above = scores[None, :] >= grid[:, None]
        sensitivity, specificity = above[:, y_true == 1].mean(axis=1), 1 - above[:, y_true == 0].mean(axis=1)
        ax.plot(grid, sensitivity, style, color=CLASS_COLOURS["PNEUMONIA"], label=f"sensitivity ({name})")
        ax.plot(grid, specificity, style, color=CLASS_COLOURS["NORMAL"], label=f"specificity ({name})")
    ax.set_xscale("logit")
    ax.set_xlim(grid[0], grid[-1])
    ticks = [t for t in _LOGIT_TICKS if grid[0] <= t <= grid[-1]]
    if len(ticks) < 4:  # a narrow range: add the tenths
        ticks = sorted({*ticks, *(t for t in np.arange(0.1, 1.0, 0.1).round(1) if grid[0] <= t <= grid[-1])})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FixedFormatter([_probability_label(t) for t in ticks]))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axvline(threshold, color="black", linewidth=1.0)
    box = dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor="none", alpha=0.8)
    text = f"chosen on validation: {threshold:.4g}"
    ax.annotate(text, (threshold, 0.04), xytext=(5, 0), textcoords="offset points", fontsize=9, bbox=box)
    ax.set(xlabel="threshold on the PNEUMONIA probability (logit scale)", ylabel="share", ylim=(0, 1.02))
    ax.set_title("The threshold trade-off")
    ax.legend(fontsize=8, loc="center left")
    return fig


def plot_score_shift(frames: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float | None = None) -> Figure:
    """Score histograms per class on a log-odds axis, one panel per split (name -> ``(y_true, scores)``)."""
    fig = figure(4.6 * len(frames), 3.6)
    axes = fig.subplots(1, len(frames), squeeze=False, sharex=True)[0]
    # one set of bins for every panel, spanning the scores in use (at least -2..2 in log-odds)
    reach = max([2.0] + [float(np.abs(clipped_logit(scores, eps=1e-6)).max()) for _, scores in frames.values()])
    bins = np.linspace(-np.ceil(reach), np.ceil(reach), 57)
    for ax, (name, (y_true, scores)) in zip(axes, frames.items()):
        y_true = np.asarray(y_true)
        logits = clipped_logit(scores, eps=1e-6)
        for value, label in enumerate(LABELS):
            n = (y_true == value).sum()
            share, colour = np.ones(n) / max(n, 1), CLASS_COLOURS[label]
            ax.hist(logits[y_true == value], bins=bins, weights=share, alpha=0.6, color=colour, label=f"{label} ({n})")
        if threshold is not None:
            ax.axvline(clipped_logit(threshold), color="black", linewidth=0.8)
        ax.set(xlabel="log-odds of PNEUMONIA", ylabel="share of the class", title=name)
        ax.legend(fontsize=8)
    return fig


def plot_reliability(panels: dict[str, dict[str, pd.DataFrame]]) -> Figure:
    """Reliability diagrams, images per bin below; ``panels``: title -> name -> ``reliability_table``."""
    fig = figure(4.8 * len(panels), 6.0)
    grid = fig.subplots(2, len(panels), sharex=True, squeeze=False, gridspec_kw={"height_ratios": [3, 1]})
    most = max(t["count"].max() for tables in panels.values() for t in tables.values())
    for (ax, counts_ax), (title, tables) in zip(grid.T, panels.items()):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8, label="perfect calibration")
        for k, (colour, (name, table)) in enumerate(zip(MODEL_COLOURS, tables.items())):
            used = table[table["count"] > 0]
            ax.plot(used["mean_score"], used["observed"], "o-", color=colour, label=name)
            width = (table["bin_high"] - table["bin_low"]).to_numpy() / (len(tables) + 1)
            left = table["bin_low"].to_numpy() + width * (k + 0.5)
            counts_ax.bar(left, table["count"], width=width, align="edge", color=colour, label=name)
        ax.set(ylabel="observed share of PNEUMONIA", xlim=(0, 1), ylim=(0, 1), title=f"Reliability, {title}")
        ax.legend(fontsize=8, loc="upper left")
        counts_ax.set_yscale("symlog", linthresh=1)
        counts_ax.set_ylim(0, 3 * max(most, 1))
        counts_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 10, not 10^1
        counts_ax.set(xlabel="predicted probability of PNEUMONIA (bins)", ylabel="images per bin")
    return fig


def plot_gradcam_gallery(images: np.ndarray, heatmaps: np.ndarray, titles: list[str], per_row: int = 4) -> Figure:
    """Each image (``(n, h, w[, c])``, 0..255) with its heatmap (``(n, h, w)`` in 0..1) laid over it, one title each."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    if len(heatmaps) != len(images):
        raise ValueError(f"need one heatmap per image: {len(images)} images, {len(heatmaps)} heatmaps")
    fig = plot_image_grid(images, titles, per_row)
    for ax, heatmap in zip(fig.axes, heatmaps):
        shown = ax.imshow(heatmap, cmap="jet", alpha=0.35, vmin=0, vmax=1)
    bar = fig.colorbar(shown, ax=fig.axes, shrink=0.6, pad=0.02)
    bar.set_label("Grad-CAM evidence for PNEUMONIA\n(share of each map's maximum)", fontsize=8)
    return fig


def plot_distributions(
    groups: dict[str, ArrayLike], *, xlabel: str, title: str, log: bool = False, bins: int = 40
) -> Figure:
    """Step histograms of one number in several groups (name -> values), each normalised; ``log``: log10 bins."""
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in groups.items()}
    arrays = {name: values[np.isfinite(values)] for name, values in arrays.items()}
    if not arrays or any(len(v) == 0 for v in arrays.values()):
        raise ValueError("every group needs at least one finite value")
    if log and any((v <= 0).any() for v in arrays.values()):
        raise ValueError("a logarithmic axis needs positive values")
    scale = np.log10 if log else np.asarray
    everything = np.concatenate([scale(v) for v in arrays.values()])
    edges = np.linspace(everything.min(), everything.max(), bins + 1)
    fig = figure(7.0, 3.6)
    ax = fig.subplots()
    for (name, values), colour in zip(arrays.items(), MODEL_COLOURS):
        density, _ = np.histogram(scale(values), bins=edges, density=True)
        shown = 10**edges if log else edges
        ax.stairs(density, shown, linewidth=1.8, color=colour, label=f"{name} ({len(values)})")
    if log:
        ax.set_xscale("log")
    ax.set(
        xlabel=xlabel, ylabel="share per log10 unit (density)" if log else "share of the group (density)", title=title
    )
    ax.legend(frameon=False, fontsize=8)
    return fig


def plot_image_grid(images: np.ndarray, titles: list[str], per_row: int = 4) -> Figure:
    """Gray images in a grid, each with its title. ``images``: ``(n, h, w)``, 0..255."""
    images = np.asarray(images)
    if len(images) != len(titles) or len(images) == 0:
        raise ValueError(f"need as many images as titles, at least one: {len(images)}, {len(titles)}")
    rows = -(-len(images) // per_row)
    fig = figure(2.6 * per_row, 2.9 * rows)
    axes = fig.subplots(rows, per_row, squeeze=False).ravel()
    for ax, image, title in zip(axes, images, titles):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=7)
    for ax in axes:
        ax.set_axis_off()
    return fig
