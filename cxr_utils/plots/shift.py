"""Figures of a shift between collections (chapter 06): distributions side by side, and image grids."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from .style import MODEL_COLOURS, figure

__all__ = ["plot_distributions", "plot_image_grid"]


def plot_distributions(
    groups: dict[str, ArrayLike], *, xlabel: str, title: str, log: bool = False, bins: int = 40
) -> Figure:
    """Step histograms of one number in several groups, each normalised to its own total.

    Parameters
    ----------
    groups : dict of str to array-like
        Group name (shown with its size in the legend) to its values.
    xlabel, title : str
    log : bool
        A logarithmic x axis (values must be positive), for sizes spanning decades: bins of
        equal width in log10, and the density is per log10 unit (the area under each curve
        is 1 on the axis as drawn).
    bins : int
        Bins shared by every group.
    """
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
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share per log10 unit (density)" if log else "share of the group (density)")
    ax.set_title(title)
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
