"""Figures of results (chapter 05): confusion matrices, curves, thresholds, shift, calibration, Grad-CAM."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..layout import LABELS
from .shift import plot_image_grid
from .style import CLASS_COLOURS, MODEL_COLOURS, figure

__all__ = [
    "plot_confusion_matrices",
    "plot_roc_pr",
    "plot_threshold_tradeoff",
    "plot_score_shift",
    "plot_reliability",
    "plot_gradcam_gallery",
]


def plot_confusion_matrices(y_true: np.ndarray, models: dict[str, tuple[np.ndarray, float]]) -> Figure:
    """One confusion matrix per model at its threshold, counts and row shares in each cell.

    Parameters
    ----------
    y_true : numpy.ndarray
        Shape ``(n,)``, 1 = PNEUMONIA.
    models : dict
        Model name to ``(scores, threshold)`` on the same images.
    """
    from sklearn.metrics import confusion_matrix

    fig = figure(3.6 * len(models), 3.4)
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    for ax, (name, (scores, threshold)) in zip(axes, models.items()):
        matrix = confusion_matrix(y_true, np.asarray(scores) >= threshold, labels=[0, 1])
        shares = matrix / matrix.sum(axis=1, keepdims=True)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (row, column), count in np.ndenumerate(matrix):
            ax.text(
                column,
                row,
                f"{count}\n{shares[row, column]:.1%}",
                ha="center",
                va="center",
                color="white" if shares[row, column] > 0.6 else "black",
            )
        ax.set_xticks([0, 1], [f"predicted\n{label}" for label in LABELS])
        ax.set_yticks([0, 1], [f"true\n{label}" for label in LABELS])
        ax.set_title(f"{name}\nthreshold {threshold:.3f}", fontsize=9)
    return fig


def plot_roc_pr(y_true: np.ndarray, models: dict[str, tuple[np.ndarray, float]]) -> Figure:
    """ROC and precision-recall curves, each model's operating point marked.

    Parameters as :func:`plot_confusion_matrices`.
    """
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    fig = figure(10, 4.2)
    roc_ax, pr_ax = fig.subplots(1, 2)
    y_true = np.asarray(y_true)
    for colour, (name, (scores, threshold)) in zip(MODEL_COLOURS, models.items()):
        scores = np.asarray(scores)
        fpr, tpr, _ = roc_curve(y_true, scores)
        roc_ax.plot(fpr, tpr, color=colour, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        predicted = scores >= threshold
        sensitivity = predicted[y_true == 1].mean()
        specificity = 1 - predicted[y_true == 0].mean()
        roc_ax.plot(1 - specificity, sensitivity, "o", color=colour, markeredgecolor="black")
        precision, recall, _ = precision_recall_curve(y_true, scores)
        pr_ax.plot(recall, precision, color=colour, label=f"{name} (AP {average_precision_score(y_true, scores):.3f})")
        ppv = y_true[predicted].mean() if predicted.any() else np.nan
        pr_ax.plot(sensitivity, ppv, "o", color=colour, markeredgecolor="black")
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
    roc_ax.set(
        xlabel="1 - specificity (false positive rate)",
        ylabel="sensitivity",
        title="ROC curve (dots: chosen thresholds)",
    )
    pr_ax.axhline(y_true.mean(), color="grey", linestyle=":", linewidth=0.8, label="always PNEUMONIA")
    pr_ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title="Precision-recall curve")
    for ax in (roc_ax, pr_ax):
        ax.legend(fontsize=8, loc="lower left" if ax is pr_ax else "lower right")
    return fig


def plot_threshold_tradeoff(curves: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float) -> Figure:
    """Sensitivity and specificity as the threshold moves, for validation and test.

    Parameters
    ----------
    curves : dict
        Split name (e.g. ``"validation"``, ``"test"``) to ``(y_true, scores)``.
    threshold : float
        The threshold chosen on validation, drawn as a vertical line.
    """
    grid = np.linspace(0, 1, 201)
    fig = figure(6.8, 4.0)
    ax = fig.subplots()
    for style, (name, (y_true, scores)) in zip(("-", "--", ":"), curves.items()):
        y_true, scores = np.asarray(y_true), np.asarray(scores)
        above = scores[None, :] >= grid[:, None]
        ax.plot(
            grid,
            above[:, y_true == 1].mean(axis=1),
            style,
            color=CLASS_COLOURS["PNEUMONIA"],
            label=f"sensitivity ({name})",
        )
        ax.plot(
            grid,
            1 - above[:, y_true == 0].mean(axis=1),
            style,
            color=CLASS_COLOURS["NORMAL"],
            label=f"specificity ({name})",
        )
    ax.axvline(threshold, color="black", linewidth=0.8)
    ax.annotate(
        f"chosen on validation: {threshold:.3f}",
        (threshold, 0.02),
        xytext=(4, 0),
        textcoords="offset points",
        fontsize=8,
    )
    ax.set(
        xlabel="threshold on the PNEUMONIA probability", ylabel="share", ylim=(0, 1.02), title="The threshold trade-off"
    )
    ax.legend(fontsize=8, loc="center right")
    return fig


def plot_score_shift(frames: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float | None = None) -> Figure:
    """Score histograms per class, one panel per split, on a log-odds axis.

    Parameters
    ----------
    frames : dict
        Split name to ``(y_true, scores)``.
    threshold : float, optional
        Drawn as a vertical line.
    """
    from ..calibration import clipped_logit

    fig = figure(4.6 * len(frames), 3.6)
    axes = fig.subplots(1, len(frames), squeeze=False, sharex=True)[0]
    for ax, (name, (y_true, scores)) in zip(axes, frames.items()):
        y_true = np.asarray(y_true)
        logits = clipped_logit(scores, eps=1e-6)
        bins = np.linspace(-14, 14, 57)
        for value, label in enumerate(LABELS):
            share = np.ones((y_true == value).sum()) / max((y_true == value).sum(), 1)
            ax.hist(
                logits[y_true == value],
                bins=bins,
                weights=share,
                alpha=0.6,
                color=CLASS_COLOURS[label],
                label=f"{label} ({(y_true == value).sum()})",
            )
        if threshold is not None:
            ax.axvline(clipped_logit(threshold), color="black", linewidth=0.8)
        ax.set(xlabel="log-odds of PNEUMONIA", ylabel="share of the class", title=name)
        ax.legend(fontsize=8)
    return fig


def plot_reliability(tables: dict[str, pd.DataFrame]) -> Figure:
    """Reliability diagrams: observed share of PNEUMONIA against the mean predicted probability.

    Parameters
    ----------
    tables : dict
        Curve name to a :func:`cxr_utils.calibration.reliability_table`.
    """
    fig = figure(5.2, 4.6)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8, label="perfect calibration")
    for colour, (name, table) in zip(MODEL_COLOURS, tables.items()):
        used = table[table["count"] > 0]
        ax.plot(used["mean_score"], used["observed"], "o-", color=colour, label=name)
        for _, row in used.iterrows():
            ax.annotate(
                str(int(row["count"])),
                (row["mean_score"], row["observed"]),
                fontsize=6,
                xytext=(3, -8),
                textcoords="offset points",
                color=colour,
            )
    ax.set(
        xlabel="mean predicted probability of PNEUMONIA",
        ylabel="observed share of PNEUMONIA",
        xlim=(0, 1),
        ylim=(0, 1),
        title="Reliability (numbers: images per bin)",
    )
    ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_gradcam_gallery(images: np.ndarray, heatmaps: np.ndarray, titles: list[str], per_row: int = 4) -> Figure:
    """Each image with its Grad-CAM heatmap laid over it (red = most evidence).

    Parameters
    ----------
    images : numpy.ndarray
        Shape ``(n, h, w)`` or ``(n, h, w, channels)``, 0..255 (the first channel is shown).
    heatmaps : numpy.ndarray
        Shape ``(n, h, w)`` in 0..1, from :func:`cxr_utils.explain.grad_cam`.
    titles : list of str
        One per image (file name, label, score).
    """
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    if len(heatmaps) != len(images):
        raise ValueError(f"need one heatmap per image: {len(images)} images, {len(heatmaps)} heatmaps")
    fig = plot_image_grid(images, titles, per_row)
    for ax, heatmap in zip(fig.axes, heatmaps):
        ax.imshow(heatmap, cmap="jet", alpha=0.35, vmin=0, vmax=1)
    return fig
