"""A shift between two collections of images measured without labels, and adapting a model to it, cross-fitted."""

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
    "domain_classifier_test",
    "simulate_acquisition",
    "reestimate_batchnorm",
    "estimate_prior_em",
    "correct_for_prior",
    "reference_histogram",
    "match_histograms",
    "cross_fit",
]


def acquisition_features(images: np.ndarray, *, extra: dict[str, ArrayLike] | None = None) -> pd.DataFrame:
    """Label-free numbers per uint8 image ``(n, size, size)``: gray levels, border, corners, sharpness, ``extra``."""
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
    """How well each feature alone tells target from source: ``auc``, ``separation``, both medians; strongest first."""
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
    """:func:`domain_classifier_test`'s ROC AUC of target vs source (``auc``) with its 95% interval, each image's
    out-of-fold probability of being a target image (``scores``) and the AUC within each fold (``fold_aucs``)."""

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
    """Can a classifier tell target from source images? Out-of-fold ROC AUC (0.5: alike) with a bootstrap interval;
    folds grouped by patient (``groups``), rows ordered by ``names``. ValueError: unequal lengths, one collection."""
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
    """uint8 images ``(n, h, w)`` shrunk by ``scale``, enlarged back and re-encoded as JPEG at ``quality``."""
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
    """A copy of ``model`` (or ``into``) whose BatchNormalization statistics come from ``images``."""
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
    """The target's share of PNEUMONIA by EM (Saerens et al., 2002) and the scores (calibrated for ``source_prior``)
    corrected for it: ``(share in [0.001, 0.999], corrected (n,))``."""
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
    """Probabilities calibrated for a share ``source_prior`` of PNEUMONIA moved to a share ``prior`` (Bayes' rule)."""
    p = np.clip(np.asarray(scores, dtype=np.float64), 1e-7, 1 - 1e-7)
    positive = prior / source_prior * p
    return positive / (positive + (1 - prior) / (1 - source_prior) * (1 - p))


def reference_histogram(images: np.ndarray) -> np.ndarray:
    """The mean cumulative gray-level distribution of uint8 images: shape ``(256,)``, from about 0 to 1."""
    images = np.asarray(images)
    counts = np.stack([np.bincount(image.ravel(), minlength=256) for image in images]).astype(np.float64)
    return np.cumsum(counts.sum(axis=0)) / counts.sum()


def match_histograms(images: np.ndarray, reference_cdf: np.ndarray) -> np.ndarray:
    """uint8 images ``(n, h, w)`` mapped monotonically so that each histogram matches ``reference_cdf``."""
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
    """0 or 1 per image: two halves of the patients, drawn by ``seed`` from the sorted ids."""
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
    """Scores ``(n,)`` of every target image by ``adapt_and_score`` adapted on the other half of the patients."""
    halves = patient_halves(groups, seed=seed)
    order = label_free_order(names)
    if len(order) != len(halves):
        raise ValueError(f"groups and names differ in length: {len(halves)} != {len(order)}")
    scores = np.full(len(halves), np.nan)
    for half in (0, 1):
        adapt_on, score = order[halves[order] != half], order[halves[order] == half]
        scores[score] = np.asarray(adapt_and_score(adapt_on, score), dtype=np.float64).reshape(-1)
    return scores
