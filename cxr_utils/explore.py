"""Exploring a dataset index: which copy, counts, patients, duplicates, colour, intensity; the course's splits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.utils.class_weight import compute_class_weight

from .cache import load_grayscale, load_rgb
from .dataset import LABELS, OFFICIAL_COUNTS, SPLITS, DatasetIndex
from .records import index_manifest

__all__ = [
    "check_copy",
    "split_class_table",
    "images_per_patient",
    "pathogen_table",
    "shared_patients",
    "duplicate_files",
    "colour_check",
    "intensity_histograms",
    "sample_per_class",
    "course_splits",
    "patients_in_two_splits",
    "class_weights",
    "label_free_order",
]


@dataclass(frozen=True)
class CopyCheck:
    """Which copy an index describes (:func:`check_copy`): ``counts`` found against official per split and class, the
    image sizes, and how many files the official manifest lists with their official byte count."""

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


def _splits_present(index: pd.DataFrame) -> list[str]:
    return [s for s in SPLITS if s in set(index["split"])]


def split_class_table(index: pd.DataFrame) -> pd.DataFrame:
    """Images per split (and ``total``) and class; ``pneumonia_share``: the accuracy of always answering PNEUMONIA."""
    table = pd.crosstab(index["split"], index["label"]).reindex(index=_splits_present(index), columns=list(LABELS))
    table = table.fillna(0).astype(int)
    table.loc["total"] = table.sum()
    table["total"] = table.sum(axis=1)
    table["pneumonia_share"] = table["PNEUMONIA"] / table["total"]
    table.index.name, table.columns.name = "split", None
    return table


def images_per_patient(index: pd.DataFrame) -> pd.DataFrame:
    """One row per patient id: ``label``, ``splits``, ``n_images``, most images first."""
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
    """Per RGB file under ``root``: ``max_channel_difference``, ``coloured_fraction``, ``has_colour``."""
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
    """Gray-level histograms of the ``sample``'s images, each normalised, averaged per class."""
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


def shared_patients(index: pd.DataFrame) -> pd.DataFrame:
    """Patient ids in more than one split (from names): ``splits``, ``pathogens``, ``n_<split>``, ..."""
    known = index.dropna(subset=["patient_id"])
    counts = pd.crosstab(known["patient_id"], known["split"])
    counts = counts[[s for s in SPLITS if s in counts.columns]]
    shared = counts[(counts > 0).sum(axis=1) > 1]
    pathogens = known.groupby("patient_id")["pathogen"].agg(lambda v: ",".join(sorted(set(v))))
    # a pathogen seen in two splits under the same id (a hint that it may be one person)
    splits_per_pathogen = known.groupby(["patient_id", "pathogen"])["split"].nunique()
    same_pathogen = (splits_per_pathogen > 1).groupby(level="patient_id").any()
    result = pd.DataFrame(
        {
            "patient_id": shared.index,
            "splits": [",".join(s for s in counts.columns if row[s] > 0) for _, row in shared.iterrows()],
            "pathogens": pathogens.loc[shared.index].to_numpy(),
            "same_pathogen_in_two_splits": same_pathogen.loc[shared.index].to_numpy(),
        }
    )
    for split in counts.columns:
        result[f"n_{split}"] = shared[split].to_numpy()
    return result.sort_values("patient_id", ignore_index=True)


def duplicate_files(index: pd.DataFrame) -> pd.DataFrame:
    """Byte-identical files (by ``sha256``), one row each, with ``group``, ``cross_split`` and ``cross_patient``."""
    if "sha256" not in index.columns:
        raise KeyError("the index has no sha256 column: build it with index_dataset(..., sha256=True)")
    repeated = index[index.duplicated("sha256", keep=False)].sort_values(["sha256", "path"])
    groups = {digest: number for number, digest in enumerate(repeated["sha256"].unique())}
    result = repeated[["sha256", "path", "split", "label", "patient_id"]].copy()
    result.insert(0, "group", result["sha256"].map(groups))
    result["cross_split"] = result.groupby("sha256")["split"].transform("nunique") > 1
    result["cross_patient"] = result.groupby("sha256")["patient_id"].transform("nunique") > 1
    return result.sort_values(["group", "path"], ignore_index=True)


def course_splits(index: pd.DataFrame, *, validation_fraction: float = 0.2, seed: int = 0) -> pd.Series:
    """Each image's course split ("train", "validation", "test"), a Series aligned with ``index``: about
    ``validation_fraction`` of train + val, grouped by patient, drawn by ``seed``."""
    if not 0 < validation_fraction <= 0.5:
        raise ValueError(f"validation_fraction must be in (0, 0.5], got {validation_fraction}")
    result = pd.Series("test", index=index.index, name="course_split", dtype=object)
    pool = index[index["split"] != "test"]
    if pool["patient_id"].isna().any():
        raise ValueError("every train/val image needs a patient id to group by (see cxr_utils.dataset.parse_name)")
    folds = StratifiedGroupKFold(n_splits=round(1 / validation_fraction), shuffle=True, random_state=seed)
    _, validation = next(folds.split(pool, pool["label"], groups=pool["patient_id"]))
    result.loc[pool.index] = "train"
    result.loc[pool.index[validation]] = "validation"
    return result


def patients_in_two_splits(index: pd.DataFrame, splits: pd.Series, between=("train", "validation")) -> list[str]:
    """Patient ids that have images on both sides of two course splits (should be empty)."""
    first = set(index.loc[splits == between[0], "patient_id"])
    second = set(index.loc[splits == between[1], "patient_id"])
    return sorted(first & second)


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """Balanced class weights ``{0: NORMAL's, 1: PNEUMONIA's}`` (``n / (2 n_c)``): each class weighs equally."""
    classes = np.array([0, 1])
    weights = compute_class_weight("balanced", classes=classes, y=np.asarray(labels))
    return {int(c): float(w) for c, w in zip(classes, weights)}


def label_free_order(names: ArrayLike) -> np.ndarray:
    """Positions sorting the images by (unique) file name ``names``: order-dependent rounding then does not vary."""
    names = np.asarray(names).astype(str)
    order = np.argsort(names, kind="stable")
    repeated = names[order][1:][names[order][1:] == names[order][:-1]]
    if len(repeated):
        raise ValueError(f"names must be unique to order the images by them; {repeated[0]!r} occurs twice")
    return order
