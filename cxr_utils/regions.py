"""Fixed regions of a chest film: its four corners, its outer border, its lung fields.

Side markers (the radiographer's lead *R* or *L*) and burned-in text sit near the edges of a
film; the lung fields fill the inside, either side of the mediastinum. The regions here are
fixed fractions of the image, not segmented anatomy:

- :func:`heatmap_regions` how hot each heatmap (e.g. from :func:`cxr_utils.explain.grad_cam`)
  is in the four corners and the outer border against the lung fields, and where its peak lies;
- :func:`occlude` the test of what the heat hints at: the corners or the border covered with
  one grey level, to be scored again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["CORNERS", "OCCLUDED_REGIONS", "occlude", "heatmap_regions"]

#: The corner squares, named as the image is shown.
CORNERS = ("top left", "top right", "bottom left", "bottom right")

#: What :func:`occlude` can cover: the four corner squares, or the outer border band.
OCCLUDED_REGIONS = ("corners", "border")


def _corner_squares(height: int, width: int, corner: float) -> dict[str, tuple[slice, slice]]:
    """The four corner squares, each ``corner`` of each side (at least one pixel), by name."""
    ch, cw = max(1, round(corner * height)), max(1, round(corner * width))
    return {
        "top left": (slice(0, ch), slice(0, cw)),
        "top right": (slice(0, ch), slice(width - cw, width)),
        "bottom left": (slice(height - ch, height), slice(0, cw)),
        "bottom right": (slice(height - ch, height), slice(width - cw, width)),
    }


def _border_mask(height: int, width: int, border: float) -> np.ndarray:
    """``(height, width)`` bool: True in the outer band ``border`` of each side wide (at least one pixel)."""
    bh, bw = max(1, round(border * height)), max(1, round(border * width))
    in_border = np.ones((height, width), dtype=bool)
    in_border[bh : height - bh, bw : width - bw] = False
    return in_border


def occlude(images: np.ndarray, region: str, *, size: float = 0.15, fill: float | None = None) -> np.ndarray:
    """A copy of ``images`` with the four corner squares, or the outer border band, set to one grey level.

    Side markers and burned-in text sit there: if a model's scores move when they are
    covered, the scores used what was there. The corner squares are those
    :func:`heatmap_regions` measures (with ``corner=size``).

    Parameters
    ----------
    images : numpy.ndarray
        Shape ``(n, height, width)`` or ``(n, height, width, channels)``, any dtype (e.g. the
        image cache's uint8 in 0..255).
    region : {"corners", "border"}
        The four squares of side ``size`` (a fraction of each side) in the image's corners, or
        the band ``size`` of each side wide along all four edges.
    size : float
        In ``(0, 0.5)``.
    fill : float, optional
        The grey level written (in the images' units). Default: each image's median over the
        pixels left visible, so that the covered part carries no structure and no new
        brightness.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``images``; ``images`` is not changed.

    Raises
    ------
    ValueError
        For an image array that is not 3-D or 4-D, an unknown ``region`` or a ``size`` out of range.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (n, height, width[, channels]), got {images.shape}")
    if region not in OCCLUDED_REGIONS:
        raise ValueError(f"region must be one of {OCCLUDED_REGIONS}, got {region!r}")
    if not 0 < size < 0.5:
        raise ValueError(f"need 0 < size < 0.5, got {size}")
    height, width = images.shape[1:3]
    if region == "border":
        covered = _border_mask(height, width, size)
    else:
        covered = np.zeros((height, width), dtype=bool)
        for rows, cols in _corner_squares(height, width, size).values():
            covered[rows, cols] = True
    out = images.copy()
    if fill is None:
        levels = np.median(images[:, ~covered].reshape(len(images), -1), axis=1)
        if np.issubdtype(images.dtype, np.integer):
            levels = np.round(levels)
        out[:, covered] = levels.astype(images.dtype).reshape(-1, *([1] * (images.ndim - 2)))
    else:
        out[:, covered] = fill
    return out


def heatmap_regions(
    heatmaps: np.ndarray,
    border: float = 0.15,
    corner: float = 0.15,
    corners: Sequence[str] = CORNERS,
    mediastinum: float = 0.2,
):
    """Where each heatmap's evidence lies: the corners and the outer border, or the lung fields.

    Side markers (the radiographer's lead *R* or *L*) and burned-in text sit near the edges
    of a film, in any corner or along a side; the lung fields fill the inside, either side of
    the mediastinum (heart, great vessels, spine) down the middle. For each map this measures
    the mean heat in its hottest corner square (of ``corners``) against the mean heat in the
    lung fields (inside the border, without a central band), the share of the map's mass in
    the outer border beside the share of the image the border covers (what a uniform map
    would put there), and the region where the peak lies. The regions are fixed fractions of
    the image, not segmented anatomy.

    Parameters
    ----------
    heatmaps : numpy.ndarray
        Shape ``(n, height, width)``, non-negative (e.g. from :func:`cxr_utils.explain.grad_cam`).
    border : float
        Width of the outer border as a fraction of each side, in ``(0, 0.5)``; the centre is
        the rest.
    corner : float
        Side of each corner square as a fraction of each side, in ``(0, 0.5]``.
    corners : sequence of str
        The corners measured, of "top left", "top right", "bottom left" and "bottom right"
        (as the image is shown). Default: all four.
    mediastinum : float
        Width of the central band left out of the lung fields, as a fraction of the width, in ``[0, 1)``.

    Returns
    -------
    pandas.DataFrame
        One row per map: ``corner_heat`` (mean of the map in its hottest corner square, 0..1
        for maps in 0..1), ``hottest_corner`` (which of ``corners``), ``lung_heat`` (mean in the
        lung fields), ``corner_to_lungs`` (their ratio; NaN where the lung fields are all
        zero), ``border_share`` (fraction of the map's mass in the border, 0..1; NaN for an
        all-zero map), ``border_area`` (fraction of the image the border covers),
        ``peak_region`` (where the map's maximum lies: the name of one of ``corners``, else
        "border", "lung fields" or "mediastinum"; "none" for an all-zero map), and the
        booleans ``peak_in_border`` (anywhere in the border, corners included) and
        ``peak_in_corners`` (in one of ``corners``).

    Raises
    ------
    ValueError
        For maps that are not 3-D or have negative values, fractions out of range, or an
        unknown or empty ``corners``.
    """
    import pandas as pd

    maps = np.asarray(heatmaps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"heatmaps must have shape (n, height, width), got {maps.shape}")
    if (maps < 0).any():
        raise ValueError("heatmaps must be non-negative")
    if not 0 < border < 0.5 or not 0 < corner <= 0.5 or not 0 <= mediastinum < 1:
        raise ValueError(
            f"need 0 < border < 0.5, 0 < corner <= 0.5, 0 <= mediastinum < 1: {border}, {corner}, {mediastinum}"
        )
    if not corners or set(corners) - set(CORNERS):
        raise ValueError(f"corners must be some of {CORNERS}, got {corners!r}")
    height, width = maps.shape[1:]
    in_border = _border_mask(height, width, border)
    squares = {name: square for name, square in _corner_squares(height, width, corner).items() if name in corners}
    in_lungs = ~in_border
    band = round(mediastinum * width / 2)
    in_lungs[:, width // 2 - band : width - width // 2 + band] = False
    # each pixel's region, the corner squares first (they may reach beyond a narrow border)
    region = np.where(in_border, "border", np.where(in_lungs, "lung fields", "mediastinum")).astype(object)
    for name, (rows, cols) in squares.items():
        region[rows, cols] = name
    heat = np.stack([maps[:, rows, cols].mean(axis=(1, 2)) for rows, cols in squares.values()], axis=1)
    corner_heat = heat.max(axis=1)
    lung_heat = maps[:, in_lungs].mean(axis=1)
    total = maps.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        border_share = np.where(total > 0, (maps * in_border).sum(axis=(1, 2)) / total, np.nan)
        ratio = np.where(lung_heat > 0, corner_heat / lung_heat, np.nan)
    peaks = maps.reshape(len(maps), -1).argmax(axis=1)
    peak_rows, peak_cols = np.unravel_index(peaks, (height, width))
    peak_region = np.where(total > 0, region[peak_rows, peak_cols], "none")
    return pd.DataFrame(
        {
            "corner_heat": corner_heat,
            "hottest_corner": np.array(list(squares))[heat.argmax(axis=1)],
            "lung_heat": lung_heat,
            "corner_to_lungs": ratio,
            "border_share": border_share,
            "border_area": in_border.mean(),
            "peak_region": peak_region,
            "peak_in_border": in_border[peak_rows, peak_cols] & (total > 0),
            "peak_in_corners": np.isin(peak_region, list(squares)),
        }
    )
