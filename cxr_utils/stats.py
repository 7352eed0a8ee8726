"""Descriptive statistics of a dataset index: counts, patients, pathogens, colour, intensities.

Every function takes an index from :func:`cxr_utils.dataset.index_dataset` (or
:func:`cxr_utils.dataset.index_manifest`) and returns a small DataFrame that a
notebook shows and a plot in :mod:`cxr_utils.plots` draws. :func:`check_copy` says which copy
of the dataset an index describes: its counts against the official ones, and whether it holds
the original files or a resized copy, on which size statistics teach nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import load_grayscale, load_rgb
from .dataset import LABELS, OFFICIAL_COUNTS, SPLITS, DatasetIndex, index_manifest

__all__ = [
    "check_copy",
    "split_class_table",
    "images_per_patient",
    "pathogen_table",
    "colour_check",
    "intensity_histograms",
    "sample_per_class",
]


def _splits_present(index: pd.DataFrame) -> list[str]:
    return [s for s in SPLITS if s in set(index["split"])]


def split_class_table(index: pd.DataFrame) -> pd.DataFrame:
    """Images per split and class, with totals and the share of PNEUMONIA.

    Index: the splits present (train, val, test order) and ``total``. Columns ``NORMAL``,
    ``PNEUMONIA``, ``total`` (image counts) and ``pneumonia_share`` (PNEUMONIA / total, 0 to 1:
    also the accuracy of answering PNEUMONIA for every image, the floor any model must beat).
    """
    table = pd.crosstab(index["split"], index["label"]).reindex(index=_splits_present(index), columns=list(LABELS))
    table = table.fillna(0).astype(int)
    table.loc["total"] = table.sum()
    table["total"] = table.sum(axis=1)
    table["pneumonia_share"] = table["PNEUMONIA"] / table["total"]
    table.index.name, table.columns.name = "split", None
    return table


def images_per_patient(index: pd.DataFrame) -> pd.DataFrame:
    """Number of images per patient id, with the patient's class(es) and split(s).

    One row per patient id: ``patient_id``, ``label`` (comma-joined if several), ``splits``
    (comma-joined, train/val/test order), ``n_images``; by ``n_images`` descending, then id.
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


def colour_check(root: str | os.PathLike, paths: list[str], tolerance: int = 2) -> pd.DataFrame:
    """Whether RGB files (``paths`` relative to the dataset ``root``) hold any colour.

    Returns one row per file: ``path``, ``max_channel_difference`` (0-255, the largest
    max(R, G, B) - min(R, G, B) of its pixels), ``coloured_fraction`` (share of pixels above
    ``tolerance``, the grey levels JPEG rounding may account for) and ``has_colour`` (any).
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


def sample_per_class(index: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """Up to ``n`` readable images per class, drawn at random with a fixed seed."""
    usable = index[index["problem"].isna()] if "problem" in index else index
    parts = [group.sample(min(n, len(group)), random_state=seed) for _, group in usable.groupby("label", sort=True)]
    return pd.concat(parts, ignore_index=True) if parts else usable.iloc[:0]


def intensity_histograms(root: str | os.PathLike, sample: pd.DataFrame, bins: int = 64) -> pd.DataFrame:
    """Grey-level histograms per class of the ``sample``'s images (paths relative to ``root``), averaged.

    Each image's histogram (``bins`` equal bins over 0..255) is normalised to sum to 1, so that
    large images do not outweigh small ones; a class's curve is the mean of its images'.
    Returns the columns ``label``, ``bin_left``, ``bin_right`` (grey levels), ``share`` (mean
    fraction of pixels in the bin) and ``n_images``.
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


@dataclass(frozen=True)
class CopyCheck:
    """Which copy of the dataset an index describes (:func:`check_copy`).

    ``counts``: per split and class the images ``found`` and ``official``, and their ``difference``. ``n_images``
    images have a known size, in ``n_sizes`` sizes, the commonest ``common_size`` (width, height); ``n_listed`` files
    are in the official manifest (same class and name), ``n_official_bytes`` of them with their official byte count.
    """

    counts: pd.DataFrame
    n_images: int
    n_sizes: int
    common_size: tuple[int, int] | None
    n_listed: int
    n_official_bytes: int

    @property
    def counts_official(self) -> bool:
        """Every split and class holds its official number of images."""
        return bool((self.counts["difference"] == 0).all())

    @property
    def one_size(self) -> bool:
        """Every image (of more than one) has the same width and height: a resized copy."""
        return self.n_images > 1 and self.n_sizes == 1

    @property
    def originals(self) -> bool:
        """The original files: sizes vary, and no file the manifest lists has another byte count."""
        return not self.one_size and self.n_listed == self.n_official_bytes

    def summary(self) -> pd.Series:
        """The check as a small table, one row per finding."""
        return pd.Series(
            {
                "images": int(self.counts["found"].sum()),
                "official images": int(self.counts["official"].sum()),
                "every split and class at its official count": self.counts_official,
                "images with a known size": self.n_images,
                "distinct sizes (width x height)": self.n_sizes,
                "commonest size": "x".join(map(str, self.common_size)) if self.common_size else "none",
                "files the official manifest names": self.n_listed,
                "... with their official byte count": self.n_official_bytes,
                "one size for every image (resized)": self.one_size,
                "original files": self.originals,
            },
            name="this copy",
            dtype=object,
        )


def check_copy(dataset: DatasetIndex, manifest: pd.DataFrame | str | os.PathLike | None = None) -> CopyCheck:
    """Which copy an index describes, from the index alone: images per split and class against
    :data:`OFFICIAL_COUNTS` (a Mendeley copy's train holds the official val images), sizes, and byte counts against
    the ``manifest`` (default the official one), matched by class and name."""
    official = dict(OFFICIAL_COUNTS)
    if dataset.layout == "mendeley":
        for label in LABELS:
            official[("train", label)] += official.pop(("val", label))
    index = dataset.table
    found = index.groupby(["split", "label"]).size()
    counts = pd.DataFrame(
        [{"split": s, "label": c, "found": int(found.get((s, c), 0)), "official": n} for (s, c), n in official.items()]
    )
    counts["difference"] = counts["found"] - counts["official"]
    manifest = index_manifest(manifest)[["label", "name", "bytes"]]
    listed = index[["label", "name", "bytes"]].merge(manifest, on=["label", "name"], suffixes=("", "_official"))
    sized = index.dropna(subset=["width", "height"])
    sizes = list(zip(sized["width"].astype(int), sized["height"].astype(int)))
    common = pd.Series(sizes, dtype=object).value_counts().index[0] if sizes else None
    return CopyCheck(
        counts=counts,
        n_images=len(sizes),
        n_sizes=len(set(sizes)),
        common_size=tuple(int(v) for v in common) if common is not None else None,
        n_listed=len(listed),
        n_official_bytes=int((listed["bytes"] == listed["bytes_official"]).sum()),
    )
