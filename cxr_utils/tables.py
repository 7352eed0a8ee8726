"""Results side by side: the course's models beside Kermany et al. and the always-PNEUMONIA floor, with 95%
intervals; as text, JSON and Markdown for run folders and summaries."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .metrics import PAPER, binary_metrics

__all__ = [
    "evaluation_table",
    "format_table",
    "format_interval",
    "versus_paper",
    "metrics_to_json",
    "table_to_markdown",
]

#: Metrics :func:`evaluation_table` shows (the ones :data:`cxr_utils.metrics.PAPER` reports).
_TABLE_METRICS = ("accuracy", "sensitivity", "specificity", "roc_auc")

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
    """Models side by side (``results``: name -> :func:`bootstrap_ci` frame), with the floor and the paper.

    ``rules`` names the rule that chose each model's threshold (one string for all, or one per
    model, e.g. a value of :data:`THRESHOLD_RULES`), shown in the column ``threshold rule``.
    ``include_paper`` adds the row ``"Kermany et al. 2018"`` with :data:`PAPER`; ``baseline``,
    the test set's true labels, adds ``"always PNEUMONIA"``: :func:`binary_metrics` of all
    scores 1 at threshold 0.5 (accuracy the share of PNEUMONIA, sensitivity 1, specificity 0,
    ROC AUC 0.5). Both without intervals (NaN).

    Returns a DataFrame indexed by model (named ``model``), in the order of ``results``, then
    the baseline and paper rows; the column ``threshold rule``, then for each of accuracy,
    sensitivity, specificity and roc_auc the float columns ``<metric>``, ``<metric>_ci_low``,
    ``<metric>_ci_high``; show it with :func:`format_table`. Raises ValueError if a frame lacks
    a metric or column, a model has no rule, or a model is named like an added row.
    """
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
    """``"0.913 [0.889, 0.934]"``; the value alone without both bounds; ``"n/a"`` without a value.

    A missing number is ``None`` or NaN.
    """

    def missing(number: float | None) -> bool:
        return number is None or bool(np.isnan(number))

    if missing(value):
        return "n/a"
    if missing(low) or missing(high):
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """An :func:`evaluation_table` as text: same index, one column of strings per metric.

    ``"0.912 [0.889, 0.934]"`` (value and interval, 3 decimals), ``"0.928"`` when the interval
    is NaN (paper and baseline rows), ``"n/a"`` when the value is NaN; the ``threshold rule``
    column as it is.
    """
    metrics = [c for c in table.columns if not c.endswith(("_ci_low", "_ci_high")) and c != "threshold rule"]
    text = table[["threshold rule"]].copy() if "threshold rule" in table else pd.DataFrame(index=table.index)
    for metric in metrics:
        low = table.get(f"{metric}_ci_low", pd.Series(np.nan, index=table.index))
        high = table.get(f"{metric}_ci_high", pd.Series(np.nan, index=table.index))
        text[metric] = [format_interval(v, lo, hi) for v, lo, hi in zip(table[metric], low, high)]
    return text


def metrics_to_json(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """A :func:`bootstrap_ci` frame as ``{metric: {"value": ..., "ci_low": ..., "ci_high": ...}}``, in its order,
    with Python floats and ``None`` for NaN (JSON-ready)."""

    def clean(value: float) -> float | None:
        value = float(value)
        return None if math.isnan(value) else value

    return {
        str(metric): {column: clean(frame.loc[metric, column]) for column in ("value", "ci_low", "ci_high")}
        for metric in frame.index
    }


def versus_paper(frame: pd.DataFrame) -> pd.DataFrame:
    """A :func:`bootstrap_ci` frame against :data:`PAPER`: is the paper's figure inside our interval?

    The paper publishes no per-image predictions, so no paired test is possible; an interval
    that excludes the paper's figure is the evidence of a difference. Returns one row per metric
    the paper reports: ``ours``, ``ci_low``, ``ci_high``, ``paper`` and ``verdict`` ("above the
    paper", "below the paper" or "no difference shown").
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
