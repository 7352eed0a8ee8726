"""Figures of the data (chapters 01 and 02): counts, patients, sizes, intensities, resize policies."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..images import RESIZE_POLICIES, load_grayscale, resize_image
from ..layout import LABELS, SPLITS
from .style import CLASS_COLOURS, figure

__all__ = [
    "plot_split_counts",
    "plot_images_per_patient",
    "plot_pathogen_counts",
    "plot_sample_grid",
    "plot_size_histograms",
    "plot_size_scatter",
    "plot_file_sizes",
    "plot_intensity_histograms",
    "plot_resize_policies",
]


def plot_split_counts(table: pd.DataFrame) -> Figure:
    """Grouped bars: images per split and class, each bar labelled with its count.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`cxr_utils.stats.split_class_table` (its ``total`` row is left out).
    """
    counts = table.drop(index="total", errors="ignore")[list(LABELS)]
    fig = figure(6.5, 3.8)
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
    fig = figure(8, 3.4)
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
    fig = figure(6.5, 3.8)
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
    fig = figure(3.0 * per_row, 3.3 * len(LABELS))
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
    fig = figure(3.6 * len(splits), 3.2)
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
    fig = figure(6, 5)
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
    fig = figure(6.5, 3.6)
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
    fig = figure(6.5, 3.6)
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
    fig = figure(3.0 * len(columns), 3.1 * len(images))
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
