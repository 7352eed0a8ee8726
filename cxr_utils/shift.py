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

from collections.abc import Callable
from dataclasses import dataclass

import keras
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
    "reestimate_batchnorm",
    "estimate_prior_em",
    "correct_for_prior",
    "reference_histogram",
    "match_histograms",
    "patient_halves",
    "cross_fit",
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


def reestimate_batchnorm(
    model: keras.Model, images: np.ndarray, *, batch_size: int = 64, into: keras.Model | None = None
) -> keras.Model:
    """A copy of ``model`` whose BatchNormalization layers normalise with the statistics of ``images``.

    The layers are visited in order; each one's moving mean and variance become the
    per-channel mean and (population) variance of its inputs over all ``images``, with
    the layers before it already adapted. Everything else (weights, the original model)
    is unchanged, and augmentation layers stay off.

    Parameters
    ----------
    model : keras.Model
        A functional model whose BatchNormalization layers sit at its top level (the
        course's CNN, :func:`cxr_utils.models.build_cnn`). Its statistics must come from
        its own training data: a pretrained backbone's ImageNet statistics are not that,
        and re-estimating them would change what the layers above were trained on.
    images : numpy.ndarray
        Shape ``(n, ...)``: unlabeled target images, as the model takes them.
    into : keras.Model, optional
        A copy of ``model`` (:func:`keras.models.clone_model`) to write into, reused across
        calls so that Keras builds its prediction function once; default a new copy.

    Raises
    ------
    ValueError
        If the model has no BatchNormalization layer at its top level.
    """
    adapted = into if into is not None else keras.models.clone_model(model)
    adapted.set_weights(model.get_weights())
    layers = [layer for layer in adapted.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        raise ValueError(f"model {model.name!r} has no BatchNormalization layer at its top level")
    for layer in layers:
        probe = keras.Model(adapted.input, layer.input)
        total, total_sq, count = 0.0, 0.0, 0
        for start in range(0, len(images), batch_size):
            x = keras.ops.convert_to_numpy(probe(images[start : start + batch_size], training=False))
            x = x.reshape(-1, x.shape[-1]).astype(np.float64)
            total, total_sq, count = total + x.sum(axis=0), total_sq + (x**2).sum(axis=0), count + len(x)
        mean = total / count
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(np.maximum(total_sq / count - mean**2, 0).astype(np.float32))
    return adapted


def estimate_prior_em(
    scores: ArrayLike, source_prior: float, *, max_iter: int = 1000, tol: float = 1e-8
) -> tuple[float, np.ndarray]:
    """The target's share of PNEUMONIA, and the probabilities corrected for it, by EM.

    If a model's probabilities are calibrated for a share ``source_prior`` of PNEUMONIA and
    the target differs only in that share (label shift), Bayes' rule gives the corrected
    probabilities, and the target's share is their mean: EM alternates the two until the
    share settles (Saerens et al., Neural Computation 14, 2002). The probabilities must be
    calibrated for ``source_prior``: calibrate them first on data whose share is known
    (e.g. temperature scaling on validation, then ``source_prior`` is validation's share;
    Alexandari et al., ICML 2020). The estimate is kept within ``[0.001, 0.999]``, so that
    a runaway estimate cannot make every probability 0 or 1.

    Returns
    -------
    (float, numpy.ndarray)
        The estimated share, and the corrected probabilities, shape ``(n,)``.

    Raises
    ------
    ValueError
        If ``source_prior`` is not strictly between 0 and 1.
    """
    if not 0 < source_prior < 1:
        raise ValueError(f"source_prior must be strictly between 0 and 1, got {source_prior}")
    p = np.clip(np.asarray(scores, dtype=np.float64), 1e-7, 1 - 1e-7)
    prior, corrected = source_prior, p
    for _ in range(max_iter):
        corrected = correct_for_prior(p, prior, source_prior)
        new_prior = min(max(float(corrected.mean()), 0.001), 0.999)
        if abs(new_prior - prior) < tol:
            prior = new_prior
            break
        prior = new_prior
    return prior, corrected


def correct_for_prior(scores: ArrayLike, prior: float, source_prior: float) -> np.ndarray:
    """Bayes' rule: probabilities calibrated for a share ``source_prior`` of PNEUMONIA, moved to a share ``prior``.

    Each probability's odds are multiplied by the ratio of the two priors' odds. Returns
    an array of the shape of ``scores``.
    """
    p = np.clip(np.asarray(scores, dtype=np.float64), 1e-7, 1 - 1e-7)
    positive = prior / source_prior * p
    return positive / (positive + (1 - prior) / (1 - source_prior) * (1 - p))


def reference_histogram(images: np.ndarray) -> np.ndarray:
    """The mean cumulative gray-level distribution of uint8 images: shape ``(256,)``, from about 0 to 1."""
    images = np.asarray(images)
    counts = np.stack([np.bincount(image.ravel(), minlength=256) for image in images]).astype(np.float64)
    return np.cumsum(counts.sum(axis=0)) / counts.sum()


def match_histograms(images: np.ndarray, reference_cdf: np.ndarray) -> np.ndarray:
    """Map each image's gray levels so that its histogram matches ``reference_cdf``.

    Each gray level goes to the reference level at the same cumulative share (a monotone
    map: brighter stays brighter). Parameters: ``images`` uint8 ``(n, h, w)``;
    ``reference_cdf`` from :func:`reference_histogram`. Returns uint8 ``(n, h, w)``.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"images must be uint8 of shape (n, h, w), got {images.dtype} {images.shape}")
    levels = np.arange(256)
    out = np.empty_like(images)
    for number, image in enumerate(images):
        cdf = np.cumsum(np.bincount(image.ravel(), minlength=256)) / image.size
        mapping = np.interp(cdf, reference_cdf, levels)
        out[number] = np.clip(np.round(mapping[image]), 0, 255).astype(np.uint8)
    return out


def patient_halves(groups: ArrayLike, *, seed: int = 0) -> np.ndarray:
    """0 or 1 per image: two halves of the patients, drawn at random (all images of a patient together).

    The seeded draw permutes the patient ids *sorted*, so an image's half depends on the set
    of ids and the seed alone, never on the order of the rows (a dataset index lists a split
    by label folder: an order of first appearance would let the labels choose the halves).
    Labels are not used, so the halves are not stratified by class.
    """
    uniques, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    half_of_group = np.random.default_rng(seed).permutation(len(uniques)) % 2
    return half_of_group[codes.reshape(-1)]


def cross_fit(
    adapt_and_score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    groups: ArrayLike,
    names: ArrayLike,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Scores of every target image from a model adapted on the *other* half of the patients.

    Parameters
    ----------
    adapt_and_score : callable
        ``adapt_and_score(adapt_on, score)`` adapts on the target images at the indices
        ``adapt_on`` and returns the scores of the images at ``score``, shape ``(len(score),)``.
        Both index arrays list their images in the order of their names.
    groups : array-like of shape (n,)
        Patient ids of the target images (:func:`patient_halves`).
    names : array-like of str, shape (n,)
        File names of the target images (:func:`label_free_order`): with the halves drawn
        from the sorted ids, the scores depend on the images alone, not on the order of the
        rows nor on the label folders they were filed in.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``, in the order of the rows.
    """
    halves = patient_halves(groups, seed=seed)
    order = label_free_order(names)
    if len(order) != len(halves):
        raise ValueError(f"groups and names differ in length: {len(halves)} != {len(order)}")
    scores = np.full(len(halves), np.nan)
    for half in (0, 1):
        adapt_on, score = order[halves[order] != half], order[halves[order] == half]
        scores[score] = np.asarray(adapt_and_score(adapt_on, score), dtype=np.float64).reshape(-1)
    return scores
