"""Metrics (a zero denominator gives NaN), bootstrap intervals, thresholds chosen on validation, calibration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score, roc_curve

__all__ = [
    "PAPER",
    "THRESHOLD_RULES",
    "binary_metrics",
    "bootstrap_ci",
    "choose_threshold",
    "clipped_logit",
    "mean_logit",
    "fit_temperature",
    "apply_temperature",
    "fit_platt",
    "apply_platt",
]

#: Chest X-ray results of Kermany et al., "Identifying Medical Diagnoses and Treatable
#: Diseases by Image-Based Deep Learning", Cell 172(5):1122-1131.e9, 2018
#: (doi:10.1016/j.cell.2018.02.010): PNEUMONIA vs NORMAL on the 624-image test set
#: (390 PNEUMONIA, 234 NORMAL). Shares between 0 and 1; the paper gives no intervals.
PAPER: dict[str, float] = {"accuracy": 0.928, "sensitivity": 0.932, "specificity": 0.901, "roc_auc": 0.968}

#: The rules by which the chapters choose a threshold on validation, by the chapter that sets them: a table
#: that compares models names the rule of their thresholds, and compares them only at one rule.
THRESHOLD_RULES: dict[str, str] = {
    "03": "Youden's J on validation",
    "04": "Youden's J on validation + JPEG-stressed copies",
}

#: The metrics :func:`binary_metrics` and :func:`bootstrap_ci` report, in this order.
METRICS: tuple[str, ...] = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "roc_auc", "pr_auc")

_THRESHOLD_METRICS = METRICS[:6]
_CHUNK = 256  # bootstrap resamples drawn and counted at once (bounds memory)


def check_labels_scores(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert: labels to a 0/1 int array, scores to a float array, both 1-D."""
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"y_true and scores must be 1-D, got shapes {y.shape} and {s.shape}")
    if y.shape[0] != s.shape[0]:
        raise ValueError(f"y_true and scores differ in length: {y.shape[0]} != {s.shape[0]}")
    if y.shape[0] == 0:
        raise ValueError("y_true and scores are empty")
    valid = np.isin(y, (0, 1)) if y.dtype.kind in "biuf" else np.zeros(y.shape, dtype=bool)
    if not valid.all():
        bad = sorted({repr(v) for v in y[~valid].tolist()})[:5]
        raise ValueError(f"y_true must hold only 0 (NORMAL) and 1 (PNEUMONIA), found {', '.join(bad)}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite (no NaN or inf)")
    return y.astype(np.int64), s


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float; ValueError when it is NaN."""
    threshold = float(threshold)
    if math.isnan(threshold):
        raise ValueError("threshold is NaN")
    return threshold


def ratio_or_nan(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def _count_metrics(tp: ArrayLike, fp: ArrayLike, tn: ArrayLike, fn: ArrayLike) -> dict[str, np.ndarray]:
    """The threshold metrics from confusion counts (scalars or arrays of equal shape)."""
    tp, fp, tn, fn = (np.asarray(c, dtype=np.float64) for c in (tp, fp, tn, fn))
    return {
        "accuracy": ratio_or_nan(tp + tn, tp + fp + tn + fn),
        "sensitivity": ratio_or_nan(tp, tp + fn),
        "specificity": ratio_or_nan(tn, tn + fp),
        "ppv": ratio_or_nan(tp, tp + fp),
        "npv": ratio_or_nan(tn, tn + fn),
        "f1": ratio_or_nan(2 * tp, 2 * tp + fp + fn),
    }


def _score_metrics(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """ROC AUC and average precision, NaN when ``y`` holds one class only."""
    if np.unique(y).size < 2:
        return math.nan, math.nan
    return float(roc_auc_score(y, s)), float(average_precision_score(y, s))


def binary_metrics(y_true: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, float]:
    """Every metric of :data:`METRICS` at ``threshold`` (PNEUMONIA when ``score >= threshold``), plus the threshold
    and the counts ``n``, ``n_positive``, ``n_negative``, ``tp``, ``fp``, ``tn``, ``fn``.
    ValueError for unequal or empty inputs, labels other than 0/1, a score not finite or a NaN threshold."""
    y, s = check_labels_scores(y_true, scores)
    threshold = check_threshold(threshold)
    predicted = (s >= threshold).astype(np.int64)
    tn, fp, fn, tp = (int(c) for c in confusion_matrix(y, predicted, labels=[0, 1]).ravel())
    result: dict[str, float] = {name: float(value) for name, value in _count_metrics(tp, fp, tn, fn).items()}
    result["roc_auc"], result["pr_auc"] = _score_metrics(y, s)
    result = {name: result[name] for name in METRICS}
    n_positive = int(y.sum())
    result.update(
        threshold=threshold,
        n=int(y.size),
        n_positive=n_positive,
        n_negative=int(y.size) - n_positive,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
    )
    return result


def _group_codes(groups: ArrayLike | None, n: int) -> np.ndarray:
    """Integer codes 0..n_groups-1 (in order of first appearance); one group per image if None."""
    if groups is None:
        return np.arange(n)
    values = np.asarray(groups, dtype=object)
    if values.ndim != 1 or values.shape[0] != n:
        raise ValueError(f"groups must be 1-D with one id per image ({n}), got shape {values.shape}")
    codes, _ = pd.factorize(values)
    if (codes < 0).any():
        raise ValueError("groups holds missing ids (None or NaN)")
    return codes


def _resample_weights(rng: np.random.Generator, size: int, codes: np.ndarray) -> np.ndarray:
    """Times each image is drawn in ``size`` resamples of all groups, with replacement: ints ``(size, n_images)``."""
    n_groups = int(codes.max()) + 1
    group_counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=size)
    return group_counts[:, codes]


def _replicates(y: np.ndarray, s: np.ndarray, threshold: float, weights: np.ndarray) -> np.ndarray:
    """:func:`binary_metrics` of every resample at once: ``weights`` ``(n_resamples, n_images)``."""
    positive, predicted = y == 1, s >= threshold
    w = weights.astype(np.float64)
    tp, fp = w @ (positive & predicted), w @ (~positive & predicted)
    fn, tn = w @ (positive & ~predicted), w @ (~positive & ~predicted)
    counted = _count_metrics(tp, fp, tn, fn)
    out = np.empty((w.shape[0], len(METRICS)))
    for column, name in enumerate(_THRESHOLD_METRICS):
        out[:, column] = counted[name]
    out[:, len(_THRESHOLD_METRICS)], out[:, len(_THRESHOLD_METRICS) + 1] = _weighted_aucs(y, s, w)
    return out


def _weighted_aucs(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC and average precision of every resample at once, as scikit-learn computes them with weights."""
    order = np.argsort(s, kind="mergesort")[::-1]  # high to low, as scikit-learn sorts
    last_of_each_score = np.r_[np.flatnonzero(np.diff(s[order])), s.size - 1]
    is_positive, w_sorted = y[order] == 1, w[:, order]  # the weights reordered once: a copy of the whole matrix
    tps = np.cumsum(w_sorted * is_positive, axis=1)[:, last_of_each_score]
    fps = np.cumsum(w_sorted * ~is_positive, axis=1)[:, last_of_each_score]
    new_tps, new_fps = np.diff(tps, axis=1, prepend=0.0), np.diff(fps, axis=1, prepend=0.0)
    n_positive, n_negative = tps[:, -1], fps[:, -1]
    area = (new_fps * (2 * tps - new_tps)).sum(axis=1) / 2  # trapezoids: width x (height before + after) / 2
    called = tps + fps
    precision = np.divide(tps, called, out=np.zeros_like(tps), where=called > 0)
    roc_auc = ratio_or_nan(area, n_positive * n_negative)  # NaN where a class is missing
    pr_auc = np.where(np.isnan(roc_auc), np.nan, ratio_or_nan((new_tps * precision).sum(axis=1), n_positive))
    return roc_auc, pr_auc


def bootstrap_ci(
    y_true: ArrayLike,
    scores: ArrayLike,
    threshold: float,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    groups: ArrayLike | None = None,
) -> pd.DataFrame:
    """Percentile bootstrap intervals of every metric of :data:`METRICS`: columns ``value``, ``ci_low``, ``ci_high``.
    Resamples images, or whole ``groups`` (e.g. patients); the same ``seed`` gives the same frame. ValueError for the
    inputs :func:`binary_metrics` refuses, ``n_boot < 1``, ``confidence`` outside (0, 1) or bad ``groups``."""
    y, s = check_labels_scores(y_true, scores)
    point = binary_metrics(y, s, threshold)
    n_boot = int(n_boot)
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")
    codes = _group_codes(groups, y.size)
    rng = np.random.default_rng(seed)
    samples = np.concatenate(
        [
            _replicates(y, s, point["threshold"], _resample_weights(rng, min(_CHUNK, n_boot - start), codes))
            for start in range(0, n_boot, _CHUNK)
        ]
    )
    tail = 100 * (1 - confidence) / 2
    rows = []
    for column, name in enumerate(METRICS):
        values = samples[:, column]
        values = values[~np.isnan(values)]
        low, high = np.percentile(values, [tail, 100 - tail]) if values.size else (np.nan, np.nan)
        rows.append({"value": point[name], "ci_low": float(low), "ci_high": float(high)})
    return pd.DataFrame(rows, index=pd.Index(METRICS, name="metric"))


def choose_threshold(
    y_true: ArrayLike, scores: ArrayLike, *, method: str = "youden", target_sensitivity: float | None = None
) -> float:
    """A threshold chosen on validation: ``"youden"`` maximises sensitivity + specificity - 1, ``"sensitivity"``
    takes the largest threshold reaching ``target_sensitivity``. ValueError for a bad method, target or labels."""
    if method not in ("youden", "sensitivity"):
        raise ValueError(f"unknown method {method!r}: use 'youden' or 'sensitivity'")
    if method == "sensitivity":
        if target_sensitivity is None:
            raise ValueError("method='sensitivity' needs target_sensitivity")
        if not 0 < target_sensitivity <= 1:
            raise ValueError(f"target_sensitivity must be in (0, 1], got {target_sensitivity}")
    y, s = check_labels_scores(y_true, scores)
    if np.unique(y).size < 2:
        raise ValueError("choosing a threshold needs both NORMAL (0) and PNEUMONIA (1) examples")
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)  # thresholds from high to low
    # Youden: the largest J; sensitivity: the first (largest) threshold reaching the target
    best = int(np.argmax(tpr - fpr if method == "youden" else tpr >= target_sensitivity))
    threshold = float(thresholds[best])
    if not np.isfinite(threshold):
        threshold = float(np.nextafter(s.max(), np.inf))
    return threshold


def clipped_logit(scores: ArrayLike, eps: float = 1e-7) -> np.ndarray:
    """Log-odds of probabilities clipped to ``[eps, 1 - eps]``, so 0 and 1 stay finite."""
    return logit(np.clip(np.asarray(scores, dtype=np.float64), eps, 1 - eps))


def mean_logit(*scores: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Several models' probabilities of PNEUMONIA, each ``(n,)``, ensembled by averaging their log-odds: ``(n,)``."""
    return expit(np.mean([clipped_logit(s, eps) for s in scores], axis=0))


def fit_temperature(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Temperature ``T`` in [0.05, 20] minimising the log loss of ``sigmoid(logit(score) / T)`` (Guo et al., 2017)."""
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
    """``(slope, intercept)`` of ``sigmoid(slope * logit(score) + intercept)`` fitted by maximum likelihood."""
    from sklearn.linear_model import LogisticRegression

    y, s = check_labels_scores(y_true, scores)
    model = LogisticRegression(C=1e12, max_iter=1000).fit(clipped_logit(s)[:, None], y)  # no penalty, in practice
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def apply_platt(scores: ArrayLike, slope: float, intercept: float) -> np.ndarray:
    """``sigmoid(slope * logit(scores) + intercept)``: same shape as ``scores``."""
    return expit(slope * clipped_logit(scores) + intercept)
