"""Descriptive statistics of a dataset index: counts, patients, sizes, colour, intensities.

Every function takes an index from :func:`cxr_utils.dataset.index_dataset` (or
:func:`cxr_utils.dataset.index_manifest`) and returns a small DataFrame or number
that a notebook shows and a plot in :mod:`cxr_utils.plots` draws.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import binary_labels
from .images import load_grayscale, load_rgb
from .layout import LABELS, SPLITS

__all__ = [
    "split_class_table",
    "always_pneumonia_accuracy",
    "images_per_patient",
    "pathogen_table",
    "add_geometry",
    "size_summary",
    "colour_check",
    "intensity_histograms",
    "sample_per_class",
    "resize_policy_effects",
]


def _splits_present(index: pd.DataFrame) -> list[str]:
    return [s for s in SPLITS if s in set(index["split"])]


def split_class_table(index: pd.DataFrame) -> pd.DataFrame:
    """Images per split and class, with totals and the share of PNEUMONIA.

    Returns
    -------
    pandas.DataFrame
        Index: the splits present (train, val, test order) and ``total``. Columns
        ``NORMAL``, ``PNEUMONIA``, ``total`` (image counts) and ``pneumonia_share``
        (PNEUMONIA / total, between 0 and 1).
    """
    table = pd.crosstab(index["split"], index["label"]).reindex(index=_splits_present(index), columns=list(LABELS))
    table = table.fillna(0).astype(int)
    table.loc["total"] = table.sum()
    table["total"] = table.sum(axis=1)
    table["pneumonia_share"] = table["PNEUMONIA"] / table["total"]
    table.index.name, table.columns.name = "split", None
    return table


def always_pneumonia_accuracy(index: pd.DataFrame, split: str = "test") -> float:
    """Accuracy of a classifier that answers PNEUMONIA for every image of ``split``.

    It equals the share of PNEUMONIA images: the floor any real model must beat.

    Raises
    ------
    ValueError
        If the split holds no images.
    """
    labels = index.loc[index["split"] == split, "label"]
    if labels.empty:
        raise ValueError(f"no images in split {split!r}")
    return float(binary_labels(labels).mean())


def images_per_patient(index: pd.DataFrame) -> pd.DataFrame:
    """Number of images per patient id, with the patient's class(es) and split(s).

    Returns
    -------
    pandas.DataFrame
        One row per patient id: ``patient_id``, ``label`` (comma-joined if several),
        ``splits`` (comma-joined, train/val/test order), ``n_images``. Sorted by
        ``n_images`` descending, then patient id.
    """
    known = index.dropna(subset=["patient_id"])
    order = {split: number for number, split in enumerate(SPLITS)}
    grouped = known.groupby("patient_id")
    result = pd.DataFrame(
        {
            "label": grouped["label"].agg(lambda v: ",".join(sorted(set(v)))),
            "splits": grouped["split"].agg(lambda v: ",".join(sorted(set(v), key=order.get))),
            "n_images": grouped.size(),
        }
    ).reset_index()
    return result.sort_values(["n_images", "patient_id"], ascending=[False, True], ignore_index=True)


def pathogen_table(index: pd.DataFrame) -> pd.DataFrame:
    """Images per split and pathogen (bacteria, virus, none), with totals."""
    table = pd.crosstab(index["split"], index["pathogen"]).reindex(
        index=_splits_present(index), columns=["bacteria", "virus", "none"]
    )
    table = table.fillna(0).astype(int)
    table.loc["total"] = table.sum()
    table.index.name, table.columns.name = "split", None
    return table


def add_geometry(index: pd.DataFrame) -> pd.DataFrame:
    """A copy of the index with ``aspect_ratio`` (width / height) and ``megapixels`` columns.

    Rows without a size (unreadable images) get NaN.
    """
    result = index.copy()
    width = result["width"].astype("float64")
    height = result["height"].astype("float64")
    result["aspect_ratio"] = width / height
    result["megapixels"] = width * height / 1e6
    return result


def size_summary(index: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Minimum, median and maximum width and height, in the dataset card's form.

    Each statistic is taken per column (the minimum width and the minimum height
    may come from different images), as in the card's ``min [384, 127]`` written
    as ``[width, height]``.

    Parameters
    ----------
    by : str, optional
        A column to group by first (``"label"``, ``"split"``).

    Returns
    -------
    pandas.DataFrame
        Rows ``min``, ``median``, ``max`` (per group when ``by`` is given, as a
        MultiIndex ``(group, statistic)``); columns ``width``, ``height`` (pixels)
        and ``[width, height]`` (the pair as text).
    """
    sized = index.dropna(subset=["width", "height"])
    sizes = sized[["width", "height"]].astype("float64")

    def summarise(frame: pd.DataFrame) -> pd.DataFrame:
        table = frame.agg(["min", "median", "max"])
        table["[width, height]"] = [f"[{w:g}, {h:g}]" for w, h in zip(table["width"], table["height"])]
        return table

    if by is None:
        return summarise(sizes)
    parts = {group: summarise(frame) for group, frame in sizes.groupby(sized[by])}
    return pd.concat(parts, names=[by, "statistic"])


def colour_check(root: str | os.PathLike, paths: list[str], tolerance: int = 2) -> pd.DataFrame:
    """Whether RGB files hold any colour: the largest difference between channels.

    Parameters
    ----------
    root : path-like
        The dataset root the paths are relative to.
    paths : list of str
        The files to decode (e.g. the index rows whose ``mode`` is ``"RGB"``).
    tolerance : int
        Channel differences up to this many grey levels count as JPEG rounding.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``max_channel_difference`` (0-255, over all pixels of
        max(R, G, B) - min(R, G, B)), ``coloured_fraction`` (share of pixels above
        the tolerance) and ``has_colour`` (any pixel above it).
    """
    rows = []
    for path in paths:
        pixels = load_rgb(Path(root) / path).astype(np.int16)
        spread = pixels.max(axis=-1) - pixels.min(axis=-1)
        rows.append(
            {
                "path": path,
                "max_channel_difference": int(spread.max()),
                "coloured_fraction": float((spread > tolerance).mean()),
                "has_colour": bool((spread > tolerance).any()),
            }
        )
    return pd.DataFrame(rows, columns=["path", "max_channel_difference", "coloured_fraction", "has_colour"])


def sample_per_class(index: pd.DataFrame, n: int, seed: int = 0, split: str | None = None) -> pd.DataFrame:
    """Up to ``n`` readable images per class, drawn at random with a fixed seed."""
    usable = index[index["problem"].isna()] if "problem" in index else index
    if split is not None:
        usable = usable[usable["split"] == split]
    parts = [group.sample(min(n, len(group)), random_state=seed) for _, group in usable.groupby("label", sort=True)]
    return pd.concat(parts, ignore_index=True) if parts else usable.iloc[:0]


def intensity_histograms(root: str | os.PathLike, sample: pd.DataFrame, bins: int = 64) -> pd.DataFrame:
    """Grey-level histograms per class, averaged over images.

    Each image is decoded to 8-bit gray (:func:`cxr_utils.images.load_grayscale`)
    and its histogram normalised to sum to 1, so that large images do not outweigh
    small ones; the class curve is the mean of its images' histograms.

    Parameters
    ----------
    root : path-like
        The dataset root the sample's paths are relative to.
    sample : pandas.DataFrame
        Index rows to decode (``path`` and ``label`` columns), e.g. from
        :func:`sample_per_class`.
    bins : int
        Equal-width bins over 0..255.

    Returns
    -------
    pandas.DataFrame
        Columns ``label``, ``bin_left``, ``bin_right`` (grey levels), ``share``
        (mean fraction of pixels in the bin), ``n_images``.
    """
    edges = np.linspace(0, 256, bins + 1)
    rows = []
    for label, group in sample.groupby("label", sort=True):
        shares = np.zeros(bins)
        for path in group["path"]:
            counts, _ = np.histogram(load_grayscale(Path(root) / path), bins=edges)
            shares += counts / counts.sum()
        shares /= len(group)
        for left, right, share in zip(edges[:-1], edges[1:], shares):
            rows.append({"label": label, "bin_left": left, "bin_right": right, "share": share, "n_images": len(group)})
    return pd.DataFrame(rows, columns=["label", "bin_left", "bin_right", "share", "n_images"])


def resize_policy_effects(index: pd.DataFrame) -> pd.DataFrame:
    """What each resize policy does to the images of each class, from their aspect ratios.

    For an image of aspect ratio ``r`` = width / height made square:
    ``squash`` stretches one side by ``max(r, 1/r)`` (the distortion);
    ``pad`` fills a share ``1 - min(r, 1/r)`` of the square with black border;
    ``crop`` cuts away the same share ``1 - min(r, 1/r)`` of the image.

    Returns
    -------
    pandas.DataFrame
        Index: class. Columns ``median_aspect_ratio``, ``mean_squash_distortion``
        (a factor >= 1), ``mean_pad_border_share`` and ``mean_crop_lost_share``
        (shares between 0 and 1).
    """
    geometry = add_geometry(index).dropna(subset=["aspect_ratio"])
    ratio = geometry["aspect_ratio"]
    short_over_long = np.minimum(ratio, 1 / ratio)
    frame = pd.DataFrame(
        {
            "label": geometry["label"],
            "median_aspect_ratio": ratio,
            "mean_squash_distortion": 1 / short_over_long,
            "mean_pad_border_share": 1 - short_over_long,
            "mean_crop_lost_share": 1 - short_over_long,
        }
    )
    grouped = frame.groupby("label")
    result = grouped.mean()
    result["median_aspect_ratio"] = grouped["median_aspect_ratio"].median()
    return result
