"""Adapting a trained model to a new hospital's images without their labels, and cross-fitting it.

Each method uses the target images (never their labels):

- :func:`reestimate_batchnorm` (AdaBN; Li et al., 2016): a copy of the model whose batch
  normalization statistics are recomputed on the target images;
- :func:`estimate_prior_em` (Saerens, Latinne and Decaestecker, 2002): the target's share
  of PNEUMONIA estimated by EM from the predicted probabilities, and the probabilities
  corrected for it;
- :func:`match_histograms` gray levels of each target image mapped so that their
  histogram matches a reference (the training images'), a harmonisation of exposure and
  processing.

:func:`cross_fit` makes the use of the target images honest: it adapts on the images of
one half of the patients and scores the other half, then swaps, so that no image's
prediction was adapted on that image.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from numpy.typing import ArrayLike

from .explore import label_free_order

__all__ = [
    "reestimate_batchnorm",
    "estimate_prior_em",
    "correct_for_prior",
    "reference_histogram",
    "match_histograms",
    "patient_halves",
    "cross_fit",
]


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
