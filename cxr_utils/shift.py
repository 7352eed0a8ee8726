"""Measuring a shift between two collections of images, without their labels.

Chapter 06 asks whether the test hospital's images differ from the training images, and
how, before any test label is looked at:

- :func:`acquisition_features` label-free numbers per image (intensity, borders, bright
  corner marks, sharpness, file sizes);
- :func:`univariate_shift` each feature's power to tell the two collections apart (ROC AUC);
- :func:`domain_classifier_test` a classifier trained to tell target images from source
  images, its cross-validated ROC AUC (folds grouped by patient) as a two-sample test:
  0.5 means the collections cannot be told apart, 1.0 that every image gives itself away;
  its out-of-fold scores say which target images look least like the source;
- :func:`simulate_acquisition` a known shift (fewer pixels, heavy compression) to try
  adaptation methods on validation images, where the labels are known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from .explore import label_free_order
from .metrics import bootstrap_ci

__all__ = [
    "acquisition_features",
    "univariate_shift",
    "DomainTest",
    "domain_classifier_test",
    "simulate_acquisition",
]


def acquisition_features(images: np.ndarray, *, extra: dict[str, ArrayLike] | None = None) -> pd.DataFrame:
    """Label-free numbers describing how each image (``(n, size, size)`` uint8, a cache's) was acquired and stored.

    Returns one row per image: ``mean``, ``std``, ``p05``, ``p50``, ``p95`` (gray levels),
    ``dark share`` (pixels below 10), ``border mean`` (a frame 1/16 of the side wide),
    ``corner marks`` (the brightest of the four corner squares, 1/6 of the side, at its 99th
    percentile: burned-in letters and labels), ``sharpness`` (mean absolute difference between
    neighbouring pixels: detail and compression), and the ``extra`` columns as they are (one
    value per image, e.g. ``{"original kB": ...}``).
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"images must have shape (n, size, size), got {x.shape}")
    n, size = x.shape[0], x.shape[1]
    flat = x.reshape(n, -1)
    frame = max(1, size // 16)
    strips = (x[:, :frame], x[:, -frame:], x[:, :, :frame], x[:, :, -frame:])
    border = np.concatenate([strip.reshape(n, -1) for strip in strips], axis=1)
    corner = max(2, size // 6)
    corners = [x[:, :corner, :corner], x[:, :corner, -corner:], x[:, -corner:, :corner], x[:, -corner:, -corner:]]
    corner_marks = np.max([np.percentile(c.reshape(n, -1), 99, axis=1) for c in corners], axis=0)
    sharpness = (np.abs(np.diff(x, axis=1)).mean(axis=(1, 2)) + np.abs(np.diff(x, axis=2)).mean(axis=(1, 2))) / 2
    features = pd.DataFrame(
        {
            "mean": flat.mean(axis=1),
            "std": flat.std(axis=1),
            "p05": np.percentile(flat, 5, axis=1),
            "p50": np.percentile(flat, 50, axis=1),
            "p95": np.percentile(flat, 95, axis=1),
            "dark share": (flat < 10).mean(axis=1),
            "border mean": border.mean(axis=1),
            "corner marks": corner_marks,
            "sharpness": sharpness,
        }
    )
    for name, values in (extra or {}).items():
        features[name] = np.asarray(values, dtype=np.float64)
    return features


def univariate_shift(features: pd.DataFrame, is_target: ArrayLike) -> pd.DataFrame:
    """How well each feature alone tells target images from source images.

    Returns one row per feature, the strongest first: ``auc`` (ROC AUC of the feature as a score
    for "target"; below 0.5 when the target has lower values), ``separation`` (``|auc - 0.5| * 2``,
    0 to 1), and the feature's median in the source and target.
    """
    target = np.asarray(is_target, dtype=bool)
    if target.all() or not target.any():
        raise ValueError("is_target must mark some images as target and some as source")
    rows = {}
    for name in features.columns:
        values = features[name].to_numpy(dtype=np.float64)
        auc = float(roc_auc_score(target, values))
        rows[name] = {
            "auc": auc,
            "separation": abs(auc - 0.5) * 2,
            "source median": float(np.median(values[~target])),
            "target median": float(np.median(values[target])),
        }
    return pd.DataFrame(rows).T.sort_values("separation", ascending=False)


@dataclass
class DomainTest:
    """The result of :func:`domain_classifier_test`: the cross-validated ROC AUC of target vs source
    (``auc``) and its 95% interval, patients resampled; ``scores`` ``(n,)``, each image's out-of-fold
    probability of being a target image; ``fold_aucs`` the AUC within each fold."""

    auc: float
    ci_low: float
    ci_high: float
    scores: np.ndarray
    fold_aucs: list[float]


def domain_classifier_test(
    features: ArrayLike,
    is_target: ArrayLike,
    groups: ArrayLike,
    names: ArrayLike,
    *,
    folds: int = 5,
    seed: int = 0,
    n_boot: int = 1000,
) -> DomainTest:
    """Can a classifier tell target images from source images? A two-sample test by cross-validation.

    A gradient-boosted tree classifier (:class:`sklearn.ensemble.HistGradientBoostingClassifier`)
    learns "target or source" from ``features``; every image is scored by a model that
    never saw it nor any image of its patient (:class:`sklearn.model_selection.StratifiedGroupKFold`).
    The ROC AUC of those out-of-fold scores is 0.5 when the two collections are alike.

    ``features`` ``(n, d)``; ``is_target`` ``(n,)`` bool; ``groups`` the patient ids (all images
    of a patient fall into one fold); ``names`` the file names (:func:`cxr_utils.explore.label_free_order`):
    the folds are drawn from the sorted patient ids and the classifiers fitted on the images in
    the order of their names, so the result depends on the images alone, not on the order of
    the rows or the label folders. ``seed`` seeds the folds, the classifier and the bootstrap
    of ``n_boot`` resamples of whole patients. Raises ValueError for inputs of different
    lengths or a single collection.
    """
    x = np.asarray(features, dtype=np.float64)
    target = np.asarray(is_target, dtype=bool)
    groups = np.asarray(groups).astype(str)
    if not (len(x) == len(target) == len(groups) == len(names)):
        raise ValueError(
            f"features, is_target, groups and names differ in length: {len(x)}, {len(target)}, {len(groups)}, "
            f"{len(names)}"
        )
    if target.all() or not target.any():
        raise ValueError("is_target must mark some images as target and some as source")
    order = label_free_order(names)  # every step below runs on the rows in this order
    x, target, groups = x[order], target[order], np.unique(groups[order], return_inverse=True)[1].reshape(-1)
    scores = np.zeros(len(x))
    fold_aucs = []
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, held_out in splitter.split(x, target, groups):
        model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=seed)
        model.fit(x[train], target[train])
        scores[held_out] = model.predict_proba(x[held_out])[:, 1]
        fold_aucs.append(float(roc_auc_score(target[held_out], scores[held_out])))
    # the same patient-grouped percentile bootstrap as every interval of the course
    interval = bootstrap_ci(target.astype(int), scores, 0.5, n_boot=n_boot, seed=seed, groups=groups)
    auc, low, high = interval.loc["roc_auc", ["value", "ci_low", "ci_high"]]
    in_row_order = np.empty_like(scores)
    in_row_order[order] = scores
    return DomainTest(float(auc), float(low), float(high), in_row_order, fold_aucs)


def simulate_acquisition(images: np.ndarray, *, scale: float = 0.5, quality: int = 10) -> np.ndarray:
    """Images as a poorer acquisition would store them: fewer pixels, then heavy JPEG compression.

    Each image is shrunk by ``scale`` and enlarged back (detail lost), then re-encoded as
    JPEG at ``quality``: a known shift to try adaptation methods on where the labels are
    known (validation images). ``images``: uint8 ``(n, h, w)``; returns the same shape.
    """
    from PIL import Image

    from .training import recompress_jpeg

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"images must be uint8 of shape (n, h, w), got {images.dtype} {images.shape}")
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    height, width = images.shape[1:]
    small = (max(1, round(width * scale)), max(1, round(height * scale)))
    blurred = np.stack(
        [
            np.asarray(Image.fromarray(image).resize(small, Image.BILINEAR).resize((width, height), Image.BILINEAR))
            for image in images
        ]
    )
    return recompress_jpeg(blurred, quality)
