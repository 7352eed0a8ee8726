"""Figures of training (chapters 03 and 04): augmented samples and the per-epoch history."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .style import figure

__all__ = ["plot_augmented_samples", "plot_history"]

#: How the history's metric names are written on the figures.
_METRIC_LABELS = {
    "loss": "loss (binary cross-entropy)",
    "auc": "ROC AUC",
    "accuracy": "accuracy (threshold 0.5)",
    "learning_rate": "learning rate",
}


def plot_augmented_samples(images: np.ndarray, augmentation, variants: int = 4, seed: int = 0) -> Figure:
    """Each image (``(n, size, size)`` uint8, a few rows of the cache) as cached, then ``variants`` random
    augmentations of it: ``augmentation`` (:func:`cxr_utils.training.augmentation_layers`) with ``training=True``.
    """
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
    """Learning curves: each of ``metrics`` per epoch on training and validation data, one panel each.

    ``history`` has one row per epoch: ``epoch``, ``<metric>`` and ``val_<metric>`` columns (as
    ``cxr_utils.training.fit_with_callbacks`` returns it). Panels are labelled readably (``auc``
    is "ROC AUC"); a dashed line marks the epoch of the best validation ROC AUC.
    """
    fig = figure(4.2 * len(metrics), 3.4)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
    for ax, metric in zip(axes, metrics):
        ax.plot(epochs, history[metric], marker="o", label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        label = _METRIC_LABELS.get(metric, metric.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    if "val_auc" in history and "auc" in metrics:
        best_epoch = np.asarray(epochs)[int(np.argmax(history["val_auc"].to_numpy()))]
        axes[list(metrics).index("auc")].axvline(
            best_epoch, color="grey", linestyle="--", linewidth=0.8, label=f"best validation (epoch {best_epoch})"
        )
    for ax in axes:
        ax.legend()
    return fig
