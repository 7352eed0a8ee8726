"""Patients and files across splits: what file names and bytes can tell about leaks.

- :func:`shared_patients` patient ids that occur in more than one split;
- :func:`duplicate_files` groups of byte-identical files.

Both take an index table (:func:`cxr_utils.dataset.index_dataset`'s ``table``, or
:func:`cxr_utils.dataset.index_manifest` for the official names without images).
"""

from __future__ import annotations

import pandas as pd

from .dataset import SPLITS

__all__ = ["shared_patients", "duplicate_files"]


def shared_patients(index: pd.DataFrame) -> pd.DataFrame:
    """Patient ids that occur in more than one split of an index (``split``, ``patient_id`` columns).

    One row per shared id, sorted: ``patient_id``, ``splits`` (comma-joined, train/val/test
    order), ``pathogens`` (comma-joined), ``same_pathogen_in_two_splits`` (one pathogen under
    this id in two splits) and an image count per split, ``n_<split>``. Names only: see
    chapter 01 for what a shared id can and cannot mean.
    """
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
    """Groups of byte-identical files, from the index's ``sha256`` column (KeyError without one).

    One row per file that shares its hash with another: ``group`` (0, 1, ...), ``sha256``,
    ``path``, ``split``, ``label``, ``patient_id``, ``cross_split`` (the group spans two splits,
    which would leak training images into evaluation) and ``cross_patient`` (its copies carry
    different patient ids).
    """
    if "sha256" not in index.columns:
        raise KeyError("the index has no sha256 column: build it with index_dataset(..., sha256=True)")
    repeated = index[index.duplicated("sha256", keep=False)].sort_values(["sha256", "path"])
    groups = {digest: number for number, digest in enumerate(repeated["sha256"].unique())}
    result = repeated[["sha256", "path", "split", "label", "patient_id"]].copy()
    result.insert(0, "group", result["sha256"].map(groups))
    result["cross_split"] = result.groupby("sha256")["split"].transform("nunique") > 1
    result["cross_patient"] = result.groupby("sha256")["patient_id"].transform("nunique") > 1
    return result.sort_values(["group", "path"], ignore_index=True)
