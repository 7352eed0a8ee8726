"""The course's train / validation / test split, grouped by patient.

The official val split holds 16 images: too few to choose epochs or a threshold. The
course pools the official train and val images and carves a validation split out of
them, **grouped by patient id** (all images of one patient land on the same side, so
validation never sees a training patient) and stratified by class. The official test
split is kept as it is and touched once, at the end of a chapter. Where the order of its
images could reach a number (cross-fitting, a classifier fitted on them), they are put in
:func:`label_free_order`, which no label folder can change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.utils.class_weight import compute_class_weight

__all__ = ["course_splits", "patients_in_two_splits", "class_weights", "label_free_order"]


def course_splits(index: pd.DataFrame, *, validation_fraction: float = 0.2, seed: int = 0) -> pd.Series:
    """Each image's course split, ``"train"``, ``"validation"`` or ``"test"``: a Series aligned with
    ``index`` (``split``, ``label``, ``patient_id`` columns), named ``course_split``.

    Roughly ``validation_fraction`` of the pooled train + val images go to validation (the
    exact share depends on patient group sizes); the same ``seed`` gives the same split.
    Raises ValueError if ``validation_fraction`` is not in (0, 0.5], or a pooled image has no
    patient id.
    """
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
    """Balanced class weights ``n / (2 n_c)`` of labels 0 (NORMAL) and 1 (PNEUMONIA), shape ``(n,)``.

    Returns ``{0: weight of NORMAL, 1: weight of PNEUMONIA}``: each class contributes equally to the loss.
    """
    classes = np.array([0, 1])
    weights = compute_class_weight("balanced", classes=classes, y=np.asarray(labels))
    return {int(c): float(w) for c, w in zip(classes, weights)}


def label_free_order(names: ArrayLike) -> np.ndarray:
    """Positions that sort the images by ``names``: an order that no label folder can change.

    ``names`` are the file names (not the paths, which name the label folder), unique within
    the images ordered. Computations whose floating-point result depends on the order of
    the images (sums over batches, a classifier's fit) run in this order, so the same
    images give the same numbers however they were filed. Returns shape ``(n,)``; raises
    ValueError if a name occurs twice.
    """
    names = np.asarray(names).astype(str)
    order = np.argsort(names, kind="stable")
    repeated = names[order][1:][names[order][1:] == names[order][:-1]]
    if len(repeated):
        raise ValueError(f"names must be unique to order the images by them; {repeated[0]!r} occurs twice")
    return order
