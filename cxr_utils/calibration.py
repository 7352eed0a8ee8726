"""Calibration: does a score of 0.9 mean 90%? How far probabilities are from observed frequencies,
temperature and Platt scaling to fix them, and log-odds that stay finite, for ensembles."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit
from sklearn.metrics import brier_score_loss, log_loss

from .metrics import check_labels_scores

__all__ = [
    "reliability_table",
    "calibration_summary",
    "clipped_logit",
    "mean_logit",
    "fit_temperature",
    "apply_temperature",
    "fit_platt",
    "apply_platt",
]


def reliability_table(y_true: ArrayLike, scores: ArrayLike, n_bins: int = 10) -> pd.DataFrame:
    """Observed share of PNEUMONIA against the mean predicted probability, per score bin.

    The bins split 0..1 into ``n_bins`` equal widths (the last one closed); empty bins are
    kept with ``count`` 0 and NaN means, so tables of two models line up. Returns one row per
    bin: ``bin_low``, ``bin_high``, ``count``, ``mean_score``, ``observed`` (share of PNEUMONIA)
    and ``gap`` (``observed - mean_score``). Raises ValueError as :func:`binary_metrics`, or
    for scores outside 0..1 or ``n_bins < 1``.
    """
    y, s = check_labels_scores(y_true, scores)
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if s.min() < 0 or s.max() > 1:
        raise ValueError("scores must be probabilities in 0..1 for a reliability table")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(bins, weights=s, minlength=n_bins) / count
        observed = np.bincount(bins, weights=y, minlength=n_bins) / count
    return pd.DataFrame(
        {
            "bin_low": edges[:-1],
            "bin_high": edges[1:],
            "count": count,
            "mean_score": mean_score,
            "observed": observed,
            "gap": observed - mean_score,
        }
    )


def _expected_calibration_error(y_true: ArrayLike, scores: ArrayLike, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean of ``|observed - mean_score|`` over the bins of
    :func:`reliability_table` (0 = perfectly calibrated; same units as a probability)."""
    table = reliability_table(y_true, scores, n_bins)
    used = table["count"] > 0
    return float((table.loc[used, "count"] * table.loc[used, "gap"].abs()).sum() / table["count"].sum())


def calibration_summary(y_true: ArrayLike, scores: ArrayLike, n_bins: int = 10) -> dict[str, float]:
    """Brier score (mean squared error of the probabilities), log loss and ECE."""
    y, s = check_labels_scores(y_true, scores)
    return {
        "brier": float(brier_score_loss(y, s)),
        "log_loss": float(log_loss(y, np.clip(s, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "ece": _expected_calibration_error(y, s, n_bins),
    }


def clipped_logit(scores: ArrayLike, eps: float = 1e-7) -> np.ndarray:
    """Log-odds of probabilities clipped to ``[eps, 1 - eps]``, so 0 and 1 stay finite."""
    return logit(np.clip(np.asarray(scores, dtype=np.float64), eps, 1 - eps))


def mean_logit(*scores: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Several models' probabilities of PNEUMONIA, each ``(n,)``, ensembled by averaging their log-odds: ``(n,)``."""
    return expit(np.mean([clipped_logit(s, eps) for s in scores], axis=0))


def fit_temperature(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Temperature scaling (Guo et al., 2017) fitted on validation predictions.

    Finds ``T > 0`` minimising the log loss of ``sigmoid(logit(score) / T)``. ``T > 1``
    softens an over-confident model, ``T < 1`` sharpens an under-confident one. The
    ranking of images, hence the ROC AUC, does not change; a threshold does move, so
    apply :func:`apply_temperature` to the threshold too. Returns ``T``, searched in ``[0.05, 20]``.
    """
    y, s = check_labels_scores(y_true, scores)
    z = clipped_logit(s)

    def loss(log_t: float) -> float:
        p = np.clip(expit(z / np.exp(log_t)), 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))

    result = minimize_scalar(loss, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def apply_temperature(scores: ArrayLike, temperature: float) -> np.ndarray:
    """``sigmoid(logit(scores) / temperature)``: same shape as ``scores``."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return expit(clipped_logit(scores) / temperature)


def fit_platt(y_true: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """Platt scaling on the log-odds, fitted on validation: ``sigmoid(slope * logit(score) + intercept)``.

    Temperature scaling fixes the slope alone (``intercept = 0``); the intercept also moves
    the probabilities' level. A model trained with balanced class weights needs it before
    its probabilities can be read for the validation's share of PNEUMONIA, e.g. by the EM
    estimate of a new share (:func:`cxr_utils.adapt.estimate_prior_em`; "bias-corrected
    temperature scaling", Alexandari et al., ICML 2020). Maximum likelihood, no penalty.
    Returns ``(slope, intercept)``.
    """
    from sklearn.linear_model import LogisticRegression

    y, s = check_labels_scores(y_true, scores)
    model = LogisticRegression(C=1e12, max_iter=1000).fit(clipped_logit(s)[:, None], y)  # no penalty, in practice
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def apply_platt(scores: ArrayLike, slope: float, intercept: float) -> np.ndarray:
    """``sigmoid(slope * logit(scores) + intercept)``: same shape as ``scores``."""
    return expit(slope * clipped_logit(scores) + intercept)
