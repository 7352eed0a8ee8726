"""Two models on the same images, and where one model's errors fall.

- :func:`mcnemar_test` accuracy at their thresholds (the discordant images);
- :func:`delong_test` ROC AUC, with the correlation of the two models taken into account;
- :func:`compare_models` both, for every pair of several models;
- :func:`subgroup_table` errors and rates per subgroup (pathogen, size band) at one threshold;
- :func:`confident_calls` the most confident mistakes (and correct calls to compare), for a gallery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import binomtest, norm, rankdata

from .metrics import check_labels_scores, check_threshold, ratio_or_nan

__all__ = ["mcnemar_test", "delong_test", "compare_models", "subgroup_table", "confident_calls"]


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
    y, a = check_labels_scores(y_true, scores_a)
    _, b = check_labels_scores(y_true, scores_b)
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


def compare_models(y_true: ArrayLike, models: Mapping[str, tuple[ArrayLike, float]], *, rule: str) -> pd.DataFrame:
    """Every pair of models on the same images: McNemar on accuracy, DeLong on ROC AUC.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    models : mapping of str to (scores, threshold)
        Each model's scores on the same images, in the same order, and its threshold.
    rule : str
        The one rule that chose every model's threshold (e.g. a value of
        :data:`cxr_utils.metrics.THRESHOLD_RULES`): accuracies compared at thresholds chosen by
        different rules would compare the rules as much as the models.

    Returns
    -------
    pandas.DataFrame
        One row per pair ``(model_a, model_b)``: ``threshold rule``, accuracies, ``mcnemar_p``,
        AUCs, the AUC difference with its 95% interval and ``delong_p``.
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
                    "threshold rule": rule,
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
    y, s = check_labels_scores(y_true, scores)
    threshold = check_threshold(threshold)
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
    table["sensitivity"] = ratio_or_nan(table["pneumonia"] - table["false_negatives"], table["pneumonia"])
    table["specificity"] = ratio_or_nan(table["normal"] - table["false_positives"], table["normal"])
    table.index.name = None
    return table


def confident_calls(
    predictions: pd.DataFrame,
    threshold: float,
    n: int = 4,
    calls: tuple[str, ...] = ("false positive", "false negative"),
) -> pd.DataFrame:
    """The most confident calls of each kind: the mistakes, and correct calls to compare them with.

    Parameters
    ----------
    predictions : pandas.DataFrame
        With ``y_true`` (1 = PNEUMONIA) and ``score`` columns (a run's prediction file).
    threshold : float
        The operating threshold: ``score >= threshold`` is PNEUMONIA.
    n : int
        Most rows of each kind.
    calls : tuple of str
        The kinds, in order, of "false positive", "false negative", "true positive" and
        "true negative".

    Returns
    -------
    pandas.DataFrame
        Up to ``n`` rows per kind, with a column ``call``: calls of PNEUMONIA (positives)
        highest score first, calls of NORMAL lowest score first.
    """
    predicted = predictions["score"] >= threshold
    normal = predictions["y_true"] == 0
    rows = {
        "false positive": predictions[normal & predicted].nlargest(n, "score"),
        "false negative": predictions[~normal & ~predicted].nsmallest(n, "score"),
        "true positive": predictions[~normal & predicted].nlargest(n, "score"),
        "true negative": predictions[normal & ~predicted].nsmallest(n, "score"),
    }
    unknown = set(calls) - set(rows)
    if unknown:
        raise ValueError(f"unknown calls {sorted(unknown)}: use some of {list(rows)}")
    return pd.concat([rows[call].assign(call=call) for call in calls])
