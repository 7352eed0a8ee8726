"""Descriptive statistics of a dataset index: counts, patients, pathogens, colour, intensities.

Every function takes an index from :func:`cxr_utils.dataset.index_dataset` (or
:func:`cxr_utils.verification.index_manifest`) and returns a small DataFrame that a
notebook shows and a plot in :mod:`cxr_utils.plots` draws. What a chapter computes in a
line or two of pandas (aspect ratios, medians, what a resize policy costs) it writes out
itself. :func:`check_resolution` says whether a copy holds the original files at all, or
a resized copy on which size statistics teach nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .images import load_grayscale, load_rgb
from .layout import LABELS, SPLITS
from .verification import OFFICIAL_COUNTS, index_manifest

__all__ = [
    "ResolutionCheck",
    "check_resolution",
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


#: Images in the complete official dataset.
_OFFICIAL_TOTAL = sum(OFFICIAL_COUNTS.values())


@dataclass(frozen=True)
class ResolutionCheck:
    """Whether a copy holds the original files, or a resized (or re-encoded) copy: :func:`check_resolution`.

    ``n_images`` images have a known width and height, in ``n_sizes`` distinct sizes, the
    most frequent ``common_size`` (``(width, height)`` pixels, None without images);
    ``n_listed`` files are in the official manifest (same class and name), ``n_official_bytes``
    of them with the official byte count. :meth:`note` is the text a chapter shows at its top.
    """

    n_images: int
    n_sizes: int
    common_size: tuple[int, int] | None
    n_listed: int
    n_official_bytes: int

    @property
    def one_size(self) -> bool:
        """True when every image (of more than one) has the same width and height."""
        return self.n_images > 1 and self.n_sizes == 1

    @property
    def n_altered_bytes(self) -> int:
        """Files the manifest lists whose byte count differs from the official one."""
        return self.n_listed - self.n_official_bytes

    @property
    def originals(self) -> bool:
        """True unless the copy is resized: sizes vary and no listed file has another byte count.

        A copy none of whose names the manifest lists is judged by its sizes alone.
        """
        return not self.one_size and self.n_altered_bytes == 0

    def _repr_markdown_(self) -> str:
        """A notebook shows the check as its note: ``resolution`` alone on a cell's last line."""
        return self.note()

    def note(self) -> str:
        """A Markdown note for the top of a chapter: what this copy is and what its figures can show."""
        if self.originals:
            lines = [
                f"> **This copy holds original files.** {self.n_images:,} images at {self.n_sizes:,} different "
                "sizes"
                + (
                    f"; all {self.n_listed:,} files named in the official manifest have their official byte counts."
                    if self.n_listed
                    else "; no file name is in the official manifest, so byte counts could not be checked."
                )
            ]
            if self.n_images < _OFFICIAL_TOTAL:
                lines.append(
                    f"> It is a subset ({self.n_images:,} of the {_OFFICIAL_TOTAL:,} official images): the sizes "
                    "and shapes are real, the counts and shares are the subset's."
                )
            return "\n>\n".join(lines)
        reasons = []
        if self.one_size:
            width, height = self.common_size
            reasons.append(f"every one of its {self.n_images:,} images is {width}x{height} pixels")
        if self.n_altered_bytes:
            which = "all" if self.n_altered_bytes == self.n_listed else f"{self.n_altered_bytes:,} of the"
            reasons.append(
                f"{which} {self.n_listed:,} files named in the official manifest have other byte counts than "
                "the official ones (they were resized or re-encoded)"
            )
        because = " and ".join(reasons)
        return (
            "> **Note: this is a resized copy, not the original files.** " + because[0].upper() + because[1:] + ".\n>\n"
            "> Sizes, shapes and file sizes of a resized copy describe how it was made, not the X-rays: "
            "the sections about them say so below and leave out figures that would show one bar. "
            "For the real histograms, run this chapter on the original files: `cxr download` fetches "
            "the official dataset into `data/`, or set `CXR_DATA_DIR` to a folder of the originals."
        )


def check_resolution(index: pd.DataFrame, manifest: pd.DataFrame | str | os.PathLike | None = None) -> ResolutionCheck:
    """Is this copy the original files, or a resized copy? From the index's sizes and byte counts only.

    Two signs, read without opening a file: every image has the same width and height (the
    originals come at many sizes), or files have another byte count than the ``manifest``
    (default the official one) gives for the same class and name.
    """
    official = index_manifest(manifest)[["label", "name", "bytes"]].rename(columns={"bytes": "official_bytes"})
    sized = index.dropna(subset=["width", "height"])
    sizes = list(zip(sized["width"].astype(int), sized["height"].astype(int)))
    common = pd.Series(sizes).value_counts().index[0] if sizes else None
    listed = index[["label", "name", "bytes"]].merge(official, on=["label", "name"], how="inner")
    return ResolutionCheck(
        n_images=len(sizes),
        n_sizes=len(set(sizes)),
        common_size=tuple(int(v) for v in common) if common is not None else None,
        n_listed=len(listed),
        n_official_bytes=int((listed["bytes"] == listed["official_bytes"]).sum()),
    )
