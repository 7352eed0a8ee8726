"""Figures of the course. Each function returns a :class:`matplotlib.figure.Figure`.

Figures are made without pyplot, so a notebook shows each one exactly once (as the
cell's value) and tests can render them headless and inspect their content.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .dataset import LABELS, SPLITS
from .images import RESIZE_POLICIES, load_grayscale, resize_image

__all__ = [
    "CLASS_COLOURS",
    "plot_split_counts",
    "plot_images_per_patient",
    "plot_pathogen_counts",
    "plot_sample_grid",
    "plot_size_histograms",
    "plot_size_scatter",
    "plot_file_sizes",
    "plot_intensity_histograms",
    "plot_resize_policies",
    "plot_augmented_samples",
    "plot_history",
    "plot_confusion_matrices",
    "plot_roc_pr",
    "plot_threshold_tradeoff",
    "plot_score_shift",
    "plot_reliability",
    "plot_gradcam_gallery",
]

#: One colour per class, used by every figure.
CLASS_COLOURS = {"NORMAL": "#4C72B0", "PNEUMONIA": "#DD8452"}


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def plot_split_counts(table: pd.DataFrame) -> Figure:
    """Grouped bars: images per split and class, each bar labelled with its count.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`cxr_utils.stats.split_class_table` (its ``total`` row is left out).
    """
    counts = table.drop(index="total", errors="ignore")[list(LABELS)]
    fig = _figure(6.5, 3.8)
    ax = fig.subplots()
    positions = np.arange(len(counts))
    width = 0.38
    for offset, label in zip((-width / 2, width / 2), LABELS):
        bars = ax.bar(positions + offset, counts[label], width, label=label, color=CLASS_COLOURS[label])
        ax.bar_label(bars, fmt="%d", padding=2)
    ax.set_xticks(positions, counts.index)
    ax.set_xlabel("split")
    ax.set_ylabel("images")
    ax.set_title("Images per split and class")
    ax.legend(title="class")
    ax.margins(y=0.12)
    return fig


def plot_images_per_patient(per_patient: pd.DataFrame) -> Figure:
    """Histogram of the number of images per patient id, one panel per class.

    Parameters
    ----------
    per_patient : pandas.DataFrame
        From :func:`cxr_utils.stats.images_per_patient`.
    """
    fig = _figure(8, 3.4)
    axes = fig.subplots(1, len(LABELS), sharey=False)
    for ax, label in zip(axes, LABELS):
        counts = per_patient.loc[per_patient["label"] == label, "n_images"].value_counts().sort_index()
        ax.bar(counts.index, counts.to_numpy(), color=CLASS_COLOURS[label])
        ax.set_title(f"{label}: {int(counts.sum())} patient ids")
        ax.set_xlabel("images per patient id")
        ax.set_ylabel("patient ids")
    return fig


def plot_pathogen_counts(table: pd.DataFrame) -> Figure:
    """Stacked bars: bacteria, virus and normal (none) images per split.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`cxr_utils.stats.pathogen_table` (its ``total`` row is left out).
    """
    counts = table.drop(index="total", errors="ignore")
    colours = {"bacteria": "#C44E52", "virus": "#8172B2", "none": CLASS_COLOURS["NORMAL"]}
    fig = _figure(6.5, 3.8)
    ax = fig.subplots()
    bottom = np.zeros(len(counts))
    for pathogen in ["bacteria", "virus", "none"]:
        values = counts[pathogen].to_numpy()
        bars = ax.bar(counts.index, values, bottom=bottom, label=pathogen, color=colours[pathogen])
        ax.bar_label(bars, labels=[str(v) if v else "" for v in values], label_type="center", color="white")
        bottom += values
    ax.set_xlabel("split")
    ax.set_ylabel("images")
    ax.set_title("Pathogen per split (from file names)")
    ax.legend(title="pathogen")
    return fig


def plot_sample_grid(root: str | os.PathLike, sample: pd.DataFrame, per_row: int = 4) -> Figure:
    """Real images, one row per class, each titled with its file name, size and mode.

    Parameters
    ----------
    root : path-like
        The dataset root the sample's paths are relative to.
    sample : pandas.DataFrame
        Index rows (``path``, ``label``, ``name``; ``width``, ``height``, ``mode`` if
        present), e.g. from :func:`cxr_utils.stats.sample_per_class`. At most
        ``per_row`` images per class are shown.
    """
    fig = _figure(3.0 * per_row, 3.3 * len(LABELS))
    axes = fig.subplots(len(LABELS), per_row, squeeze=False)
    for row, label in zip(axes, LABELS):
        images = sample[sample["label"] == label].head(per_row)
        for ax, item in zip(row, list(images.itertuples()) + [None] * per_row):
            ax.set_axis_off()
            if item is None:
                continue
            ax.imshow(load_grayscale(Path(root) / item.path), cmap="gray", vmin=0, vmax=255)
            details = f"\n{item.width}x{item.height} {item.mode}" if hasattr(item, "width") else ""
            ax.set_title(f"{label}\n{item.name}{details}", fontsize=8)
    return fig


def plot_size_histograms(index: pd.DataFrame, column: str, bins: int = 30, log: bool = False) -> Figure:
    """Histograms of one size column per split, NORMAL and PNEUMONIA overlaid (seaborn).

    Parameters
    ----------
    index : pandas.DataFrame
        An index with ``split``, ``label`` and ``column`` (e.g. ``width``, ``height``,
        ``aspect_ratio``, ``megapixels`` from :func:`cxr_utils.stats.add_geometry`).
    column : str
        The column to histogram; it also labels the x axis.
    log : bool
        Logarithmic x axis.
    """
    data = index.dropna(subset=[column]).astype({column: "float64"})
    splits = [s for s in SPLITS if s in set(data["split"])]
    fig = _figure(3.6 * len(splits), 3.2)
    axes = fig.subplots(1, len(splits), squeeze=False)[0]
    for ax, split in zip(axes, splits):
        sns.histplot(
            data=data[data["split"] == split],
            x=column,
            hue="label",
            hue_order=list(LABELS),
            palette=CLASS_COLOURS,
            bins=bins,
            log_scale=log,
            stat="count",
            alpha=0.55,
            ax=ax,
        )
        ax.set_title(f"{split}: {column}")
        ax.set_xlabel(column)
        ax.set_ylabel("images")
    return fig


def plot_size_scatter(index: pd.DataFrame) -> Figure:
    """Width against height of every image, coloured by class, with a square-image line."""
    data = index.dropna(subset=["width", "height"]).astype({"width": "float64", "height": "float64"})
    fig = _figure(6, 5)
    ax = fig.subplots()
    sns.scatterplot(
        data=data,
        x="width",
        y="height",
        hue="label",
        hue_order=list(LABELS),
        palette=CLASS_COLOURS,
        style="split",
        s=18,
        alpha=0.7,
        ax=ax,
    )
    top = float(max(data["width"].max(), data["height"].max()))
    ax.plot([0, top], [0, top], color="grey", linewidth=0.8, linestyle="--", label="square")
    ax.set_xlabel("width (pixels)")
    ax.set_ylabel("height (pixels)")
    ax.set_title("Image sizes")
    ax.legend(fontsize=8)
    return fig


def plot_file_sizes(index: pd.DataFrame) -> Figure:
    """Histogram of file sizes in kB per class, on a logarithmic axis."""
    data = index.assign(kilobytes=index["bytes"] / 1000)
    fig = _figure(6.5, 3.6)
    ax = fig.subplots()
    sns.histplot(
        data=data,
        x="kilobytes",
        hue="label",
        hue_order=list(LABELS),
        palette=CLASS_COLOURS,
        log_scale=True,
        bins=30,
        element="step",
        ax=ax,
    )
    ax.set_xlabel("file size (kB)")
    ax.set_ylabel("images")
    ax.set_title("File sizes")
    return fig


def plot_intensity_histograms(histograms: pd.DataFrame) -> Figure:
    """Mean grey-level histogram per class.

    Parameters
    ----------
    histograms : pandas.DataFrame
        From :func:`cxr_utils.stats.intensity_histograms`.
    """
    fig = _figure(6.5, 3.6)
    ax = fig.subplots()
    for label, group in histograms.groupby("label", sort=True):
        centres = (group["bin_left"] + group["bin_right"]) / 2
        ax.plot(
            centres,
            group["share"],
            label=f"{label} ({int(group['n_images'].iloc[0])} images)",
            color=CLASS_COLOURS.get(label),
        )
    ax.set_xlabel("grey level (0 = black, 255 = white)")
    ax.set_ylabel("share of pixels")
    ax.set_title("Pixel intensities per class")
    ax.legend()
    return fig


def plot_resize_policies(images: dict[str, np.ndarray], size: int) -> Figure:
    """Each image as it is and after each resize policy (squash, pad, crop) at ``size``.

    Parameters
    ----------
    images : dict
        Title (e.g. the file name) -> gray pixels, shape ``(height, width)``.
    size : int
        The square side the policies produce.
    """
    columns = ["original", *RESIZE_POLICIES]
    fig = _figure(3.0 * len(columns), 3.1 * len(images))
    axes = fig.subplots(len(images), len(columns), squeeze=False)
    for row, (title, pixels) in zip(axes, images.items()):
        height, width = pixels.shape
        versions = [pixels] + [resize_image(pixels, size, policy) for policy in RESIZE_POLICIES]
        for ax, name, version in zip(row, columns, versions):
            ax.imshow(version, cmap="gray", vmin=0, vmax=255)
            ax.set_axis_off()
            label = f"{title}\n{width}x{height}" if name == "original" else f"{name} -> {size}x{size}"
            ax.set_title(label, fontsize=8)
    return fig


def plot_augmented_samples(images: np.ndarray, augmentation, variants: int = 4, seed: int = 0) -> Figure:
    """Each image as cached, then ``variants`` random augmentations of it.

    Parameters
    ----------
    images : numpy.ndarray
        Shape ``(n, size, size)``, uint8 gray images (a few rows of the cache).
    augmentation : keras.Layer
        Called with ``training=True`` (see :func:`cxr_utils.pipeline.augmentation_layers`).
    variants : int
        Augmented versions per image.
    """
    import keras

    keras.utils.set_random_seed(seed)
    batch = np.asarray(images, dtype=np.float32)[..., None]
    fig = _figure(2.2 * (variants + 1), 2.3 * len(batch))
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
    """Learning curves: each metric per epoch on training and validation data.

    Parameters
    ----------
    history : pandas.DataFrame
        One row per epoch with an ``epoch`` column, ``<metric>`` and ``val_<metric>``
        columns (``cxr_utils.training.fit`` returns this).
    """
    fig = _figure(4.2 * len(metrics), 3.4)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
    for ax, metric in zip(axes, metrics):
        ax.plot(epochs, history[metric], marker="o", label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.legend()
    if "val_auc" in history and "auc" in metrics:
        best_epoch = np.asarray(epochs)[int(np.argmax(history["val_auc"].to_numpy()))]
        axes[list(metrics).index("auc")].axvline(best_epoch, color="grey", linestyle="--", linewidth=0.8)
    return fig


# --- Evaluation and error analysis (chapter 05) ---------------------------------------

#: Colours for models compared in one figure, in order.
MODEL_COLOURS = ("#55A868", "#8172B3", "#C44E52", "#937860", "#DA8BC3")


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

    fig = _figure(3.6 * len(models), 3.4)
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

    fig = _figure(10, 4.2)
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
    fig = _figure(6.8, 4.0)
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
    from .evaluate import clipped_logit

    fig = _figure(4.6 * len(frames), 3.6)
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
        Curve name to a :func:`cxr_utils.evaluate.reliability_table`.
    """
    fig = _figure(5.2, 4.6)
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
    if not (len(images) == len(heatmaps) == len(titles)) or len(images) == 0:
        raise ValueError(
            f"need as many images, heatmaps and titles, at least one: {len(images)}, {len(heatmaps)}, {len(titles)}"
        )
    rows = -(-len(images) // per_row)
    fig = _figure(2.6 * per_row, 2.9 * rows)
    axes = fig.subplots(rows, per_row, squeeze=False).ravel()
    for ax, image, heatmap, title in zip(axes, images, heatmaps, titles):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.imshow(heatmap, cmap="jet", alpha=0.35, vmin=0, vmax=1)
        ax.set_title(title, fontsize=7)
    for ax in axes:
        ax.set_axis_off()
    return fig
