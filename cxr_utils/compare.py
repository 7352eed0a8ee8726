"""Models compared: beside the paper and the floor, paired tests, subgroups, confident mistakes, calibration."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import binomtest, norm, rankdata
from sklearn.metrics import brier_score_loss, log_loss

from .metrics import PAPER, binary_metrics, check_labels_scores, check_threshold, ratio_or_nan

__all__ = [
    "evaluation_table",
    "format_table",
    "versus_paper",
    "table_to_markdown",
    "compare_models",
    "subgroup_table",
    "confident_calls",
    "reliability_table",
    "calibration_summary",
]


#: Metrics :func:`evaluation_table` shows (the ones :data:`cxr_utils.metrics.PAPER` reports).
_TABLE_METRICS = tuple(PAPER)


_PAPER_ROW = "Kermany et al. 2018"


_BASELINE_ROW = "always PNEUMONIA"


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
    *,
    rules: str | Mapping[str, str],
) -> pd.DataFrame:
    """Models side by side (name -> :func:`bootstrap_ci` frame) with their threshold ``rules``, the always-PNEUMONIA
    floor (``baseline``: the true labels) and the paper's row; show it with :func:`format_table`.
    ValueError if a frame lacks a metric or column, a model has no rule, or is named like an added row."""
    rules = {model: rules for model in results} if isinstance(rules, str) else dict(rules)
    if set(results) - set(rules):
        raise ValueError(f"no threshold rule for {sorted(set(results) - set(rules))}: name the rule of every model")
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
    named = {**rules, _BASELINE_ROW: "none: every image PNEUMONIA", _PAPER_ROW: "not published"}
    table.insert(0, "threshold rule", [named[model] for model in table.index])
    table.index.name = "model"
    return table


def format_interval(value: float | None, low: float | None = None, high: float | None = None) -> str:
    """``"0.913 [0.889, 0.934]"``; the value alone without both bounds; ``"n/a"`` without a value (None or NaN)."""

    def missing(number: float | None) -> bool:
        return number is None or bool(np.isnan(number))

    if missing(value):
        return "n/a"
    if missing(low) or missing(high):
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """An :func:`evaluation_table` as text: ``"0.912 [0.889, 0.934]"``, ``"0.928"`` without interval, ``"n/a"``."""
    metrics = [c for c in table.columns if not c.endswith(("_ci_low", "_ci_high")) and c != "threshold rule"]
    text = table[["threshold rule"]].copy() if "threshold rule" in table else pd.DataFrame(index=table.index)
    for metric in metrics:
        low = table.get(f"{metric}_ci_low", pd.Series(np.nan, index=table.index))
        high = table.get(f"{metric}_ci_high", pd.Series(np.nan, index=table.index))
        text[metric] = [format_interval(v, lo, hi) for v, lo, hi in zip(table[metric], low, high)]
    return text


def versus_paper(frame: pd.DataFrame) -> pd.DataFrame:
    """A :func:`bootstrap_ci` frame against :data:`PAPER`: ``ours``, interval, ``paper``, a ``verdict`` per metric."""
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


def mcnemar_test(y_true: ArrayLike, predicted_a: ArrayLike, predicted_b: ArrayLike) -> dict[str, float]:
    """McNemar's exact test on two models' 0/1 predictions: ``a_only``, ``b_only``, ``accuracy_a``, ``p_value``, ..."""
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
    """AUCs and their DeLong covariance for ``scores`` ``(k models, n images)``, with midranks (Sun & Xu, 2014)."""
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
    """DeLong's test for two correlated ROC AUCs: ``auc_a``, ``auc_b``, ``difference``, interval, ``p_value``."""
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
    """McNemar on accuracy and DeLong on ROC AUC of every pair of ``models`` (name -> ``(scores, threshold)``)."""
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
    """Counts, errors, error rate, sensitivity and specificity at ``threshold`` per subgroup (``groups``)."""
    y, s = check_labels_scores(y_true, scores)
    threshold = check_threshold(threshold)
    groups = pd.Series(groups).reset_index(drop=True)  # a Categorical keeps its order
    if len(groups) != len(y):
        raise ValueError(f"groups must have one entry per image: {len(groups)} != {len(y)}")
    predicted = s >= threshold
    frame = pd.DataFrame({"group": groups, "y": y, "fp": (y == 0) & predicted, "fn": (y == 1) & ~predicted})
    table = frame.groupby("group", sort=True, observed=True).agg(
        images=("y", "size"), pneumonia=("y", "sum"), false_positives=("fp", "sum"), false_negatives=("fn", "sum")
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
    """Up to ``n`` most confident calls of each kind of ``calls`` from a prediction frame (``y_true``, ``score``),
    with a column ``call``: PNEUMONIA calls highest score first, NORMAL calls lowest first."""
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


def reliability_table(y_true: ArrayLike, scores: ArrayLike, n_bins: int = 10) -> pd.DataFrame:
    """Observed share of PNEUMONIA against the mean score in ``n_bins`` equal bins of 0..1 (empty bins kept):
    ``bin_low``, ``bin_high``, ``count``, ``mean_score``, ``observed``, ``gap``. ValueError for scores outside 0..1."""
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
    """ECE: the count-weighted mean of ``|observed - mean_score|`` over the bins of :func:`reliability_table`."""
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
