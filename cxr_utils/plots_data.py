"""Figures of the data (chapters 01-02) and the colours and figure factory every figure shares."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from .cache import RESIZE_POLICIES, load_grayscale, resize_image
from .dataset import LABELS, SPLITS

__all__ = [
    "plot_course_flow",
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


#: One colour per class, used by every figure.
CLASS_COLOURS = {"NORMAL": "#4C72B0", "PNEUMONIA": "#DD8452"}


#: Colours of the models compared in one figure, in order.
MODEL_COLOURS = ("#55A868", "#8172B3", "#C44E52", "#937860", "#DA8BC3")

#: seaborn's arguments for colouring by class.
_BY_CLASS = {"hue": "label", "hue_order": list(LABELS), "palette": CLASS_COLOURS}


def figure(width: float, height: float) -> Figure:
    """A constrained-layout Figure of ``width`` x ``height`` inches, made without pyplot (shown once in a notebook)."""
    return Figure(figsize=(width, height), layout="constrained")


#: The course's data flow, top to bottom: (step, where it happens, what it holds).
_COURSE_FLOW: tuple[tuple[str, str, str], ...] = (
    ("Files", "data/ or $CXR_DATA_DIR", "the JPEGs, in {train,val,test}/{NORMAL,PNEUMONIA}: chapters 01-02"),
    ("Index", "index_dataset()", "one row per file: split, class, patient id, pathogen, size, bytes, hash"),
    (
        "Cache",
        "cache_images()",
        "each image decoded once, squashed to the chapter's square size, kept as uint8 arrays in cache/",
    ),
    ("Splits", "course_splits()", "train / validation grouped by patient; the official test split kept apart"),
    ("Model", "chapters 03 and 04", "a CNN from scratch (03), an ImageNet backbone fine-tuned (04)"),
    ("Run folder", "runs/<name>/", "weights, training history, predictions, threshold, metrics (finish_run)"),
)


#: Where the run folders are read: (chapter, what it does with them).
_COURSE_READERS: tuple[tuple[str, str], ...] = (
    ("Chapter 05", "error analysis: which images are wrong, and why"),
    ("Chapter 06", "domain shift: the test hospital, without its labels"),
)


def plot_course_flow() -> Figure:
    """The course's data flow as boxes and arrows, files to run folders, and the chapters that read the runs."""
    steps, readers = _COURSE_FLOW, _COURSE_READERS
    row, box_width, box_height, text_x = 0.82, 2.5, 0.58, 3.0
    reader_gap = 1.25 * row  # the readers sit a little lower, so their arrows fan out visibly
    height = row * len(steps) + reader_gap + 0.2
    fig = figure(10.5, height)
    ax = fig.subplots()
    ax.set(xlim=(0, 10.5), ylim=(0, height))
    ax.set_axis_off()

    def box(x: float, y: float, width: float, title: str, subtitle: str, colour: str) -> None:
        style = {"boxstyle": "round,pad=0.02,rounding_size=0.08", "facecolor": colour, "edgecolor": "#333333"}
        ax.add_patch(FancyBboxPatch((x, y - box_height / 2), width, box_height, **style))
        title_y = y + 0.1 if subtitle else y
        ax.text(x + width / 2, title_y, title, ha="center", va="center", fontsize=11, fontweight="bold")
        if subtitle:
            ax.text(x + width / 2, y - 0.13, subtitle, ha="center", va="center", fontsize=9, family="monospace")

    def arrow(start: tuple[float, float], end: tuple[float, float]) -> None:
        ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": "#333333", "lw": 1.4})

    centre = 0.2 + box_width / 2
    for number, (title, where, what) in enumerate(steps):
        y = height - 0.1 - row * (number + 0.5)
        box(0.2, y, box_width, title, where, "#DCE6F2")
        ax.text(text_x, y, what, ha="left", va="center", fontsize=10)
        if number:
            arrow((centre, y + row - box_height / 2), (centre, y + box_height / 2))
    last = height - 0.1 - row * (len(steps) - 0.5)
    y = last - reader_gap
    reader_width = 1.9
    for number, (title, what) in enumerate(readers):
        x = 0.2 + number * (reader_width + 3.3)
        box(x, y, reader_width, title, "", "#FBE5D6")
        ax.text(x + reader_width + 0.1, y, what.replace(": ", ":\n", 1), ha="left", va="center", fontsize=9)
        arrow((centre, last - box_height / 2), (x + reader_width / 2, y + box_height / 2))
    return fig


def _readable_log_axis(axis: Axis) -> None:
    """Plain numbers on a log axis (``2``, ``5``, ``10``), never ``4x10^0``: more ticks when it spans little."""
    low, high = sorted(axis.get_view_interval())
    decades = np.log10(high / low) if low > 0 else np.inf
    subs = np.arange(1.0, 10.0) if decades < 1 else (1.0, 2.0, 5.0) if decades < 3 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot_split_counts(table: pd.DataFrame) -> Figure:
    """Grouped bars: images per split and class of a :func:`cxr_utils.explore.split_class_table`, counts written on."""
    counts = table.drop(index="total", errors="ignore")[list(LABELS)]
    ax = counts.plot.bar(ax=figure(6.5, 3.8).subplots(), width=0.76, rot=0, color=CLASS_COLOURS)
    for bars in ax.containers:
        ax.bar_label(bars, fmt="%d", padding=2)
    ax.set(xlabel="split", ylabel="images", title="Images per split and class")
    ax.legend(title="class")
    ax.margins(y=0.12)
    ax.autoscale(axis="x")  # matplotlib's margins, not pandas's
    return ax.figure


def plot_images_per_patient(per_patient: pd.DataFrame) -> Figure:
    """Histogram of :func:`cxr_utils.explore.images_per_patient`, one panel per class, counts written on the bars."""
    fig = figure(8, 3.4)
    axes = fig.subplots(1, len(LABELS), sharey=False)
    for ax, label in zip(axes, LABELS):
        counts = per_patient.loc[per_patient["label"] == label, "n_images"].value_counts().sort_index()
        bars = ax.bar(counts.index, counts.to_numpy(), color=CLASS_COLOURS[label])
        ax.bar_label(bars, fmt="%d", padding=2, fontsize=8)  # a bar of one patient id is too short to see
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.margins(y=0.12)
        ax.set(title=f"{label}: {int(counts.sum())} patient ids", xlabel="images per patient id", ylabel="patient ids")
    return fig


def plot_pathogen_counts(table: pd.DataFrame) -> Figure:
    """Each split of a :func:`cxr_utils.explore.pathogen_table` as one bar of pathogen shares, counts written on."""
    counts = table.drop(index="total", errors="ignore")[["bacteria", "virus", "none"]]
    totals = counts.sum(axis=1).to_numpy()
    shares = counts.to_numpy() / np.maximum(totals, 1)[:, None]
    names = {"bacteria": "bacterial pneumonia", "virus": "viral pneumonia", "none": "NORMAL (no pathogen)"}
    colours = {"bacteria": "#C44E52", "virus": "#8172B2", "none": CLASS_COLOURS["NORMAL"]}
    fig = figure(7.5, 1.2 + 0.55 * len(counts))
    ax = fig.subplots()
    positions = np.arange(len(counts))[::-1]  # the first split on top
    left = np.zeros(len(counts))
    for column, pathogen in enumerate(counts.columns):
        values = counts[pathogen].to_numpy()
        bars = ax.barh(positions, shares[:, column], left=left, height=0.6, label=names[pathogen])
        for bar in bars:
            bar.set_color(colours[pathogen])
        labels = [f"{v:,}" if share >= 0.05 else "" for v, share in zip(values, shares[:, column])]
        ax.bar_label(bars, labels=labels, label_type="center", color="white", fontsize=9, fontweight="bold")
        left += shares[:, column]
    for position, total in zip(positions, totals):
        ax.text(1.01, position, f"n = {total:,}", va="center", fontsize=9)
    ax.set_yticks(positions, counts.index)
    ax.set_xlim(0, 1.13)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0%", "25%", "50%", "75%", "100%"])
    ax.set(xlabel="share of the split's images", ylabel="split", title="Pathogen per split (from file names)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.45, -0.35 - 0.1 / len(counts)), ncol=3, fontsize=9, frameon=False)
    return fig


def plot_sample_grid(root: str | os.PathLike, sample: pd.DataFrame, per_row: int = 4) -> Figure:
    """Images of ``sample`` (index rows under ``root``), one row per class, titled with name, size and mode."""
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
    """Histograms of one size ``column`` per split, NORMAL and PNEUMONIA overlaid; ``log``: a logarithmic axis."""
    data = index.dropna(subset=[column]).astype({column: "float64"})
    splits = [s for s in SPLITS if s in set(data["split"])]
    fig = figure(3.6 * len(splits), 3.2)
    axes = fig.subplots(1, len(splits), squeeze=False)[0]
    for ax, split in zip(axes, splits):
        sns.histplot(data[data["split"] == split], x=column, bins=bins, log_scale=log, alpha=0.55, ax=ax, **_BY_CLASS)
        ax.set(title=f"{split}: {column}", xlabel=column, ylabel="images")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.2 images on a small split
        if ax is axes[0]:  # one legend for the figure: on a small split it would hide bars
            sns.move_legend(ax, "best", title="class", fontsize=8, title_fontsize=8)
        else:
            ax.get_legend().remove()
        if log:
            _readable_log_axis(ax.xaxis)
    return fig


def plot_size_scatter(index: pd.DataFrame) -> Figure:
    """Width against height of every image, coloured by class, with a square-image line."""
    data = index.dropna(subset=["width", "height"]).astype({"width": "float64", "height": "float64"})
    fig = figure(6, 5)
    ax = fig.subplots()
    sns.scatterplot(data, x="width", y="height", style="split", s=18, alpha=0.7, ax=ax, **_BY_CLASS)
    top = float(max(data["width"].max(), data["height"].max()))
    ax.plot([0, top], [0, top], color="grey", linewidth=0.8, linestyle="--", label="square")
    ax.set(xlabel="width (pixels)", ylabel="height (pixels)", title="Image sizes")
    ax.legend(fontsize=8)
    return fig


def plot_file_sizes(index: pd.DataFrame, official: pd.DataFrame) -> Figure:
    """File sizes in kB per class, this copy's (``index``) beside the ``official`` manifest's, on logarithmic axes."""
    panels = {
        f"this copy ({len(index):,} files)": index,
        f"official files, from the manifest ({len(official):,})": official,
    }
    fig = figure(11, 3.6)
    axes = fig.subplots(1, len(panels))
    for ax, (title, frame) in zip(axes, panels.items()):
        data = frame.assign(kilobytes=frame["bytes"] / 1000)
        sns.histplot(data, x="kilobytes", log_scale=True, bins=30, element="step", ax=ax, **_BY_CLASS)
        _readable_log_axis(ax.xaxis)
        sns.move_legend(ax, "upper right", title="class")
        ax.set(xlabel="file size (kB)", ylabel="images", title=f"File sizes: {title}")
    return fig


def plot_intensity_histograms(histograms: pd.DataFrame) -> Figure:
    """Mean grey-level histogram per class, of :func:`cxr_utils.explore.intensity_histograms`."""
    fig = figure(6.5, 3.6)
    ax = fig.subplots()
    for label, group in histograms.groupby("label", sort=True):
        centres = (group["bin_left"] + group["bin_right"]) / 2
        name = f"{label} ({int(group['n_images'].iloc[0])} images)"
        ax.plot(centres, group["share"], label=name, color=CLASS_COLOURS.get(label))
    ax.set(xlabel="grey level (0 = black, 255 = white)", ylabel="share of pixels", title="Pixel intensities per class")
    ax.legend()
    return fig


def plot_resize_policies(images: dict[str, np.ndarray], size: int) -> Figure:
    """Each image (title -> gray pixels ``(height, width)``) as it is and after each resize policy at ``size``."""
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
