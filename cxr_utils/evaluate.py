"""Test-set evaluation of a NORMAL (0) vs PNEUMONIA (1) classifier, with bootstrap intervals.

Every function takes the true labels (``1`` = PNEUMONIA, the positive class) and
the model's scores (higher = more likely PNEUMONIA, e.g. probabilities), and
returns plain numbers or small DataFrames a notebook shows:

- :func:`binary_metrics` the metrics of :data:`METRICS` at one threshold;
- :func:`bootstrap_ci` percentile bootstrap intervals, per image or per patient;
- :func:`choose_threshold` a threshold picked on *validation* predictions;
- :func:`evaluation_table` and :func:`format_table` models side by side with the
  paper and the always-PNEUMONIA floor;
- :func:`metrics_to_json` a bootstrap frame as JSON-ready data;
- :func:`reliability_table`, :func:`expected_calibration_error`,
  :func:`calibration_summary` how far probabilities are from observed frequencies,
  and :func:`fit_temperature` / :func:`apply_temperature` a one-parameter fix;
- :func:`mcnemar_test`, :func:`delong_test`, :func:`compare_models` two models on
  the same images: accuracy and ROC AUC differences and their p-values;
- :func:`subgroup_table` where the errors fall.

Ratios whose denominator is zero (e.g. the PPV of a model that predicts no
PNEUMONIA) are NaN, never errors; so are the AUCs when only one class is present.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit
from scipy.stats import binomtest, norm, rankdata
from sklearn.metrics import (
    auc,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    log_loss,
    roc_auc_score,
    roc_curve,
)

__all__ = [
    "PAPER",
    "METRICS",
    "binary_metrics",
    "bootstrap_ci",
    "choose_threshold",
    "evaluation_table",
    "format_table",
    "metrics_to_json",
    "reliability_table",
    "expected_calibration_error",
    "calibration_summary",
    "clipped_logit",
    "fit_temperature",
    "apply_temperature",
    "mcnemar_test",
    "delong_test",
    "compare_models",
    "subgroup_table",
    "versus_paper",
    "table_to_markdown",
]

#: Chest X-ray results of Kermany et al., "Identifying Medical Diagnoses and Treatable
#: Diseases by Image-Based Deep Learning", Cell 172(5):1122-1131.e9, 2018
#: (doi:10.1016/j.cell.2018.02.010): PNEUMONIA vs NORMAL on the 624-image test set
#: (390 PNEUMONIA, 234 NORMAL). Shares between 0 and 1; the paper gives no intervals.
PAPER: dict[str, float] = {"accuracy": 0.928, "sensitivity": 0.932, "specificity": 0.901, "roc_auc": 0.968}

#: The metrics :func:`binary_metrics` and :func:`bootstrap_ci` report, in this order.
METRICS: tuple[str, ...] = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "roc_auc", "pr_auc")

#: Metrics :func:`evaluation_table` shows (the ones :data:`PAPER` reports).
_TABLE_METRICS = ("accuracy", "sensitivity", "specificity", "roc_auc")

_PAPER_ROW = "Kermany et al. 2018"
_BASELINE_ROW = "always PNEUMONIA"

_THRESHOLD_METRICS = METRICS[:6]
_CHUNK = 256  # bootstrap resamples drawn and counted at once (bounds memory)


def _check_labels_scores(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
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


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if math.isnan(threshold):
        raise ValueError("threshold is NaN")
    return threshold


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def _count_metrics(tp: ArrayLike, fp: ArrayLike, tn: ArrayLike, fn: ArrayLike) -> dict[str, np.ndarray]:
    """The threshold metrics from confusion counts (scalars or arrays of equal shape)."""
    tp, fp, tn, fn = (np.asarray(c, dtype=np.float64) for c in (tp, fp, tn, fn))
    return {
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def _score_metrics(y: np.ndarray, s: np.ndarray, weight: np.ndarray | None = None) -> tuple[float, float]:
    """ROC AUC and average precision, NaN when a class has no (weighted) sample."""
    positive = y == 1
    w = np.ones(y.shape) if weight is None else weight
    if not (w[positive].sum() > 0 and w[~positive].sum() > 0):
        return math.nan, math.nan
    if weight is None:
        return float(roc_auc_score(y, s)), float(average_precision_score(y, s))
    # Resamples: roc_curve + auc is what roc_auc_score computes for binary labels,
    # without its label checks (half the time); zero weights are dropped first.
    keep = weight > 0
    y, s, weight = y[keep], s[keep], weight[keep]
    fpr, tpr, _ = roc_curve(y, s, sample_weight=weight)
    return float(auc(fpr, tpr)), float(average_precision_score(y, s, sample_weight=weight))


def binary_metrics(y_true: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, float]:
    """Accuracy, sensitivity, specificity, PPV, NPV, F1 and the two AUCs of one model.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels: 0 = NORMAL, 1 = PNEUMONIA (the positive class).
    scores : array-like of shape (n_samples,)
        Finite scores, higher = more likely PNEUMONIA (e.g. probabilities).
    threshold : float
        An image is predicted PNEUMONIA when ``score >= threshold``.

    Returns
    -------
    dict
        Every key of :data:`METRICS` (floats between 0 and 1): ``sensitivity`` is the
        recall of PNEUMONIA, ``specificity`` tn / (tn + fp), ``ppv`` the precision,
        ``npv`` tn / (tn + fn), ``roc_auc`` :func:`sklearn.metrics.roc_auc_score` and
        ``pr_auc`` :func:`sklearn.metrics.average_precision_score` of the scores. A
        ratio with a zero denominator is NaN, and so are both AUCs when ``y_true``
        holds one class only. Also ``threshold`` (float) and the counts ``n``,
        ``n_positive``, ``n_negative``, ``tp``, ``fp``, ``tn``, ``fn`` (ints).

    Raises
    ------
    ValueError
        If ``y_true`` and ``scores`` differ in length or are empty, if ``y_true``
        holds anything but 0 and 1, if a score is not finite or the threshold is NaN.
    """
    y, s = _check_labels_scores(y_true, scores)
    threshold = _check_threshold(threshold)
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
    """How many times each image is drawn in ``size`` bootstrap resamples of whole groups.

    Returns
    -------
    numpy.ndarray of shape (size, n_images)
        Integer counts; each row draws ``n_groups`` groups with replacement.
    """
    n_groups = int(codes.max()) + 1
    group_counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=size)
    return group_counts[:, codes]


def _replicates(y: np.ndarray, s: np.ndarray, threshold: float, weights: np.ndarray) -> np.ndarray:
    """The metrics of :data:`METRICS` on resamples given as weights.

    Parameters
    ----------
    weights : numpy.ndarray of shape (n_resamples, n_images)
        How many times each image appears in each resample.

    Returns
    -------
    numpy.ndarray of shape (n_resamples, len(METRICS))
        Row ``b`` equals :func:`binary_metrics` on the images repeated ``weights[b]`` times.
    """
    positive, predicted = y == 1, s >= threshold
    w = weights.astype(np.float64)
    tp, fp = w @ (positive & predicted), w @ (~positive & predicted)
    fn, tn = w @ (positive & ~predicted), w @ (~positive & ~predicted)
    counted = _count_metrics(tp, fp, tn, fn)
    out = np.empty((w.shape[0], len(METRICS)))
    for column, name in enumerate(_THRESHOLD_METRICS):
        out[:, column] = counted[name]
    for row in range(w.shape[0]):
        out[row, len(_THRESHOLD_METRICS) :] = _score_metrics(y, s, w[row])
    return out


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
    """Percentile bootstrap confidence intervals of every metric of :data:`METRICS`.

    Each resample draws as many images as there are, with replacement; with
    ``groups``, it draws as many groups (e.g. patients) as there are, with
    replacement, and takes all the images of each group drawn, so that images of
    one patient are never treated as independent. A resample where a metric is
    undefined (e.g. only one class, for the AUCs) is left out for that metric.

    Parameters
    ----------
    y_true, scores, threshold
        As in :func:`binary_metrics`.
    n_boot : int
        Number of resamples (at least 1).
    confidence : float
        Coverage of the interval, strictly between 0 and 1: 0.95 takes the 2.5th
        and 97.5th percentiles of the resampled values.
    seed : int or None
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same frame.
    groups : array-like of shape (n_samples,), optional
        A group id per image (e.g. patient ids); no id may be missing. One group
        per image gives the same result as no groups.

    Returns
    -------
    pandas.DataFrame
        Index: :data:`METRICS` (named ``metric``). Columns ``value`` (the metric on
        all the data, from :func:`binary_metrics`), ``ci_low`` and ``ci_high`` (NaN
        when the metric is undefined in every resample).

    Raises
    ------
    ValueError
        For the inputs :func:`binary_metrics` refuses, ``n_boot < 1``, a
        ``confidence`` outside (0, 1), or ``groups`` of the wrong length or with a
        missing id.
    """
    y, s = _check_labels_scores(y_true, scores)
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
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    method: str = "youden",
    target_sensitivity: float | None = None,
) -> float:
    """A decision threshold chosen on validation predictions (never on the test set).

    The candidates are the thresholds of :func:`sklearn.metrics.roc_curve` (with
    ``drop_intermediate=False``), i.e. the distinct scores; an image is then
    predicted PNEUMONIA when ``score >= threshold``.

    Parameters
    ----------
    y_true, scores
        As in :func:`binary_metrics`; both classes must be present.
    method : {"youden", "sensitivity"}
        ``"youden"``: maximise Youden's J = sensitivity + specificity - 1 (the first,
        i.e. largest, threshold if several tie). ``"sensitivity"``: the largest
        threshold whose sensitivity is at least ``target_sensitivity``.
    target_sensitivity : float, optional
        Required for ``method="sensitivity"``, in (0, 1].

    Returns
    -------
    float
        The threshold, always finite. Where the best choice is roc_curve's first
        threshold (``inf``, predict no PNEUMONIA), the next float above the highest
        score is returned instead, which predicts the same.

    Raises
    ------
    ValueError
        For an unknown method, a missing or out-of-range ``target_sensitivity``,
        a single class in ``y_true``, or inputs :func:`binary_metrics` refuses.
    """
    if method not in ("youden", "sensitivity"):
        raise ValueError(f"unknown method {method!r}: use 'youden' or 'sensitivity'")
    if method == "sensitivity":
        if target_sensitivity is None:
            raise ValueError("method='sensitivity' needs target_sensitivity")
        if not 0 < target_sensitivity <= 1:
            raise ValueError(f"target_sensitivity must be in (0, 1], got {target_sensitivity}")
    y, s = _check_labels_scores(y_true, scores)
    if np.unique(y).size < 2:
        raise ValueError("choosing a threshold needs both NORMAL (0) and PNEUMONIA (1) examples")
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    # Youden: the largest J; sensitivity: the first (largest) threshold reaching the
    # target (tpr rises to 1, so one exists)
    best = int(np.argmax(tpr - fpr if method == "youden" else tpr >= target_sensitivity))
    threshold = float(thresholds[best])
    if not np.isfinite(threshold):
        threshold = float(np.nextafter(s.max(), np.inf))
    return threshold


def _frame_row(frame: pd.DataFrame, model: str) -> dict[str, float]:
    missing = [m for m in _TABLE_METRICS if m not in frame.index]
    missing += [c for c in ("value", "ci_low", "ci_high") if c not in frame.columns]
    if missing:
        raise ValueError(f"results[{model!r}] is not a bootstrap_ci frame: missing {', '.join(missing)}")
    row = {}
    for metric in _TABLE_METRICS:
        row[metric] = float(frame.loc[metric, "value"])
        row[f"{metric}_ci_low"] = float(frame.loc[metric, "ci_low"])
        row[f"{metric}_ci_high"] = float(frame.loc[metric, "ci_high"])
    return row


def evaluation_table(
    results: Mapping[str, pd.DataFrame],
    include_paper: bool = True,
    baseline: ArrayLike | None = None,
) -> pd.DataFrame:
    """Models side by side, with the always-PNEUMONIA floor and the paper's results.

    Parameters
    ----------
    results : mapping of str to pandas.DataFrame
        Model name to its :func:`bootstrap_ci` frame.
    include_paper : bool
        Add the row ``"Kermany et al. 2018"`` with :data:`PAPER` (intervals NaN).
    baseline : array-like of shape (n_samples,), optional
        The test set's true labels: adds the row ``"always PNEUMONIA"``, the metrics
        of a model predicting PNEUMONIA for every image (:func:`binary_metrics` with
        all scores 1 at threshold 0.5): its accuracy is the share of PNEUMONIA, its
        sensitivity 1, its specificity 0 and its ROC AUC 0.5. Intervals NaN.

    Returns
    -------
    pandas.DataFrame
        Index: model names (named ``model``), in the order of ``results``, then the
        baseline and paper rows. For each of accuracy, sensitivity, specificity and
        roc_auc: columns ``<metric>``, ``<metric>_ci_low``, ``<metric>_ci_high``
        (floats). Show it with :func:`format_table`.

    Raises
    ------
    ValueError
        If a frame lacks a metric or column, or a model is named like an added row.
    """
    reserved = {_BASELINE_ROW} if baseline is not None else set()
    reserved |= {_PAPER_ROW} if include_paper else set()
    clash = reserved.intersection(results)
    if clash:
        raise ValueError(f"model name(s) {sorted(clash)} clash with rows evaluation_table adds")
    rows = {model: _frame_row(frame, model) for model, frame in results.items()}
    if baseline is not None:
        labels = np.asarray(baseline)
        metrics = binary_metrics(labels, np.ones(labels.shape), 0.5)
        rows[_BASELINE_ROW] = {m: metrics[m] for m in _TABLE_METRICS}
    if include_paper:
        rows[_PAPER_ROW] = dict(PAPER)
    columns = [c for m in _TABLE_METRICS for c in (m, f"{m}_ci_low", f"{m}_ci_high")]
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns).astype(np.float64)
    table.index.name = "model"
    return table


def _format_cell(value: float, low: float, high: float) -> str:
    if np.isnan(value):
        return "n/a"
    if np.isnan(low) or np.isnan(high):
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The text version of an :func:`evaluation_table` for display.

    Returns
    -------
    pandas.DataFrame
        Same index; one column of strings per metric: ``"0.912 [0.889, 0.934]"``
        (value and interval, 3 decimals), ``"0.928"`` when the interval is NaN
        (paper and baseline rows) and ``"n/a"`` when the value is NaN.
    """
    metrics = [c for c in table.columns if not c.endswith(("_ci_low", "_ci_high"))]
    text = pd.DataFrame(index=table.index)
    for metric in metrics:
        low = table.get(f"{metric}_ci_low", pd.Series(np.nan, index=table.index))
        high = table.get(f"{metric}_ci_high", pd.Series(np.nan, index=table.index))
        text[metric] = [_format_cell(v, lo, hi) for v, lo, hi in zip(table[metric], low, high)]
    return text


def metrics_to_json(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """A :func:`bootstrap_ci` frame as nested, JSON-ready data.

    Returns
    -------
    dict
        ``{metric: {"value": ..., "ci_low": ..., "ci_high": ...}}`` in the frame's
        order, with Python floats and ``None`` for NaN (``json.dumps`` takes it).
    """

    def clean(value: float) -> float | None:
        value = float(value)
        return None if math.isnan(value) else value

    return {
        str(metric): {column: clean(frame.loc[metric, column]) for column in ("value", "ci_low", "ci_high")}
        for metric in frame.index
    }


# --- Calibration -------------------------------------------------------------------


def reliability_table(y_true: ArrayLike, scores: ArrayLike, n_bins: int = 10) -> pd.DataFrame:
    """Observed share of PNEUMONIA against the mean predicted probability, per score bin.

    The bins split 0..1 into ``n_bins`` equal widths (the last one closed); empty bins
    are kept with ``count`` 0 and NaN means, so tables of two models line up.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``bin_low``, ``bin_high``, ``count``, ``mean_score``,
        ``observed`` (share of PNEUMONIA among the bin's images) and ``gap``
        (``observed - mean_score``).

    Raises
    ------
    ValueError
        As :func:`binary_metrics`, or for scores outside 0..1 or ``n_bins < 1``.
    """
    y, s = _check_labels_scores(y_true, scores)
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


def expected_calibration_error(y_true: ArrayLike, scores: ArrayLike, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean of ``|observed - mean_score|`` over the bins of
    :func:`reliability_table` (0 = perfectly calibrated; same units as a probability)."""
    table = reliability_table(y_true, scores, n_bins)
    used = table["count"] > 0
    return float((table.loc[used, "count"] * table.loc[used, "gap"].abs()).sum() / table["count"].sum())


def calibration_summary(y_true: ArrayLike, scores: ArrayLike, n_bins: int = 10) -> dict[str, float]:
    """Brier score (mean squared error of the probabilities), log loss and ECE."""
    y, s = _check_labels_scores(y_true, scores)
    return {
        "brier": float(brier_score_loss(y, s)),
        "log_loss": float(log_loss(y, np.clip(s, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "ece": expected_calibration_error(y, s, n_bins),
    }


def clipped_logit(scores: ArrayLike, eps: float = 1e-7) -> np.ndarray:
    """Log-odds of probabilities clipped to ``[eps, 1 - eps]``, so 0 and 1 stay finite."""
    return logit(np.clip(np.asarray(scores, dtype=np.float64), eps, 1 - eps))


def fit_temperature(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Temperature scaling (Guo et al., 2017) fitted on validation predictions.

    Finds ``T > 0`` minimising the log loss of ``sigmoid(logit(score) / T)``. ``T > 1``
    softens an over-confident model, ``T < 1`` sharpens an under-confident one. The
    ranking of images, hence the ROC AUC, does not change; a threshold does move, so
    apply :func:`apply_temperature` to the threshold too.

    Returns
    -------
    float
        The temperature, searched in ``[0.05, 20]``.
    """
    y, s = _check_labels_scores(y_true, scores)
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


# --- Comparing two models on the same images ---------------------------------------


def mcnemar_test(y_true: ArrayLike, predicted_a: ArrayLike, predicted_b: ArrayLike) -> dict[str, float]:
    """McNemar's exact test: do two classifiers' accuracies differ on the same images?

    Only the discordant images count: ``a_only`` (A right, B wrong) and ``b_only``.
    Under the null hypothesis each discordant image is a fair coin; the p-value is the
    two-sided exact binomial one (1 when there is no discordant image).

    Parameters
    ----------
    y_true, predicted_a, predicted_b : array-like of 0/1, shape (n_samples,)

    Returns
    -------
    dict
        ``a_only``, ``b_only``, ``accuracy_a``, ``accuracy_b`` and ``p_value``.
    """
    y = np.asarray(y_true).astype(int)
    a, b = np.asarray(predicted_a).astype(int), np.asarray(predicted_b).astype(int)
    if not (y.shape == a.shape == b.shape) or y.ndim != 1:
        raise ValueError(f"labels and predictions must be 1-D of one length, got {y.shape}, {a.shape}, {b.shape}")
    right_a, right_b = a == y, b == y
    a_only, b_only = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    p_value = 1.0 if a_only + b_only == 0 else float(binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return {
        "a_only": a_only,
        "b_only": b_only,
        "accuracy_a": float(right_a.mean()),
        "accuracy_b": float(right_b.mean()),
        "p_value": p_value,
    }


def _delong_covariance(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and their DeLong covariance for ``scores`` of shape (k models, n images).

    The structural components are computed with midranks (Sun & Xu, IEEE Signal
    Processing Letters 21(11), 2014), so ties count one half as in the AUC itself.
    """
    positive = y == 1
    m, n = int(positive.sum()), int((~positive).sum())
    aucs, v_pos, v_neg = [], [], []
    for row in scores:
        pos, neg = row[positive], row[~positive]
        ranks_all = rankdata(np.concatenate([pos, neg]))
        ranks_pos, ranks_neg = rankdata(pos), rankdata(neg)
        aucs.append((ranks_all[:m].sum() / m - (m + 1) / 2) / n)
        v_pos.append((ranks_all[:m] - ranks_pos) / n)  # share of negatives below each positive
        v_neg.append(1 - (ranks_all[m:] - ranks_neg) / m)  # share of positives above each negative
    covariance = np.atleast_2d(np.cov(np.array(v_pos))) / m + np.atleast_2d(np.cov(np.array(v_neg))) / n
    return np.array(aucs), covariance


def delong_test(y_true: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike) -> dict[str, float]:
    """DeLong's test for two correlated ROC AUCs (DeLong et al., Biometrics 44, 1988).

    Returns
    -------
    dict
        ``auc_a``, ``auc_b``, ``difference`` (A - B), its standard error ``se``, its 95%
        interval ``ci_low``/``ci_high`` (normal approximation), ``z`` and the
        two-sided ``p_value`` (1 when the two score vectors rank identically).

    Raises
    ------
    ValueError
        As :func:`binary_metrics`, or when a class is missing.
    """
    y, a = _check_labels_scores(y_true, scores_a)
    _, b = _check_labels_scores(y_true, scores_b)
    if np.unique(y).size < 2:
        raise ValueError("an AUC comparison needs both NORMAL (0) and PNEUMONIA (1) examples")
    aucs, covariance = _delong_covariance(y, np.vstack([a, b]))
    difference = float(aucs[0] - aucs[1])
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    se = math.sqrt(max(variance, 0.0))
    if se == 0:
        z, p_value = 0.0, 1.0
    else:
        z = difference / se
        p_value = float(2 * norm.sf(abs(z)))
    return {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "difference": difference,
        "se": se,
        "ci_low": difference - 1.959964 * se,
        "ci_high": difference + 1.959964 * se,
        "z": z,
        "p_value": p_value,
    }


def compare_models(y_true: ArrayLike, models: Mapping[str, tuple[ArrayLike, float]]) -> pd.DataFrame:
    """Every pair of models on the same images: McNemar on accuracy, DeLong on ROC AUC.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    models : mapping of str to (scores, threshold)
        Each model's scores on the same images, in the same order, and its threshold.

    Returns
    -------
    pandas.DataFrame
        One row per pair ``(model_a, model_b)``: accuracies, ``mcnemar_p``, AUCs, the
        AUC difference with its 95% interval and ``delong_p``.
    """
    names = list(models)
    rows = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            (sa, ta), (sb, tb) = models[first], models[second]
            mc = mcnemar_test(y_true, np.asarray(sa) >= ta, np.asarray(sb) >= tb)
            dl = delong_test(y_true, sa, sb)
            rows.append(
                {
                    "model_a": first,
                    "model_b": second,
                    "accuracy_a": mc["accuracy_a"],
                    "accuracy_b": mc["accuracy_b"],
                    "a_right_b_wrong": mc["a_only"],
                    "b_right_a_wrong": mc["b_only"],
                    "mcnemar_p": mc["p_value"],
                    "auc_a": dl["auc_a"],
                    "auc_b": dl["auc_b"],
                    "auc_difference": dl["difference"],
                    "auc_difference_ci_low": dl["ci_low"],
                    "auc_difference_ci_high": dl["ci_high"],
                    "delong_p": dl["p_value"],
                }
            )
    return pd.DataFrame(rows)


# --- Errors by subgroup --------------------------------------------------------------


def subgroup_table(y_true: ArrayLike, scores: ArrayLike, threshold: float, groups: ArrayLike) -> pd.DataFrame:
    """Where the errors fall: counts and rates per subgroup at one threshold.

    Parameters
    ----------
    y_true, scores, threshold
        As :func:`binary_metrics`.
    groups : array-like of shape (n_samples,)
        A subgroup label per image (e.g. pathogen, size band).

    Returns
    -------
    pandas.DataFrame
        Index: the groups, sorted (in category order for a pandas Categorical, e.g.
        the bands of :func:`pandas.qcut`; empty categories are left out). Columns ``images``, ``normal``, ``pneumonia``,
        ``false_positives``, ``false_negatives``, ``error_rate``, ``sensitivity`` and
        ``specificity`` (NaN where the group has no image of that class).
    """
    y, s = _check_labels_scores(y_true, scores)
    threshold = _check_threshold(threshold)
    groups = pd.Series(groups).reset_index(drop=True)  # a Categorical keeps its order
    if len(groups) != len(y):
        raise ValueError(f"groups must have one entry per image: {len(groups)} != {len(y)}")
    predicted = s >= threshold
    frame = pd.DataFrame({"group": groups, "y": y, "fp": (y == 0) & predicted, "fn": (y == 1) & ~predicted})
    table = frame.groupby("group", sort=True, observed=True).agg(
        images=("y", "size"),
        pneumonia=("y", "sum"),
        false_positives=("fp", "sum"),
        false_negatives=("fn", "sum"),
    )
    table.insert(1, "normal", table["images"] - table["pneumonia"])
    table["error_rate"] = (table["false_positives"] + table["false_negatives"]) / table["images"]
    table["sensitivity"] = _ratio(table["pneumonia"] - table["false_negatives"], table["pneumonia"])
    table["specificity"] = _ratio(table["normal"] - table["false_positives"], table["normal"])
    table.index.name = None
    return table


def versus_paper(frame: pd.DataFrame) -> pd.DataFrame:
    """A :func:`bootstrap_ci` frame against :data:`PAPER`: is the paper's figure inside our interval?

    The paper publishes no per-image predictions, so no paired test is possible; an
    interval that excludes the paper's figure is the evidence of a difference.

    Returns
    -------
    pandas.DataFrame
        Index: the metrics the paper reports. Columns ``ours``, ``ci_low``, ``ci_high``,
        ``paper`` and ``verdict`` ("above the paper", "below the paper" or "no difference shown").
    """
    rows = {}
    for metric, paper in PAPER.items():
        value, low, high = (float(frame.loc[metric, c]) for c in ("value", "ci_low", "ci_high"))
        verdict = "above the paper" if low > paper else "below the paper" if high < paper else "no difference shown"
        rows[metric] = {"ours": value, "ci_low": low, "ci_high": high, "paper": paper, "verdict": verdict}
    return pd.DataFrame.from_dict(rows, orient="index")


def table_to_markdown(table: pd.DataFrame) -> str:
    """A small DataFrame (e.g. :func:`format_table`'s) as a GitHub Markdown table, index first."""
    header = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in table.iterrows():
        lines.append("| " + " | ".join([str(name)] + [str(v) for v in row]) + " |")
    return "\n".join(lines) + "\n"
