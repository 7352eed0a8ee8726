"""Where the errors fall: counts and rates per subgroup, and the most confident mistakes."""

from __future__ import annotations

import pandas as pd
from numpy.typing import ArrayLike

from .metrics import check_labels_scores, check_threshold, ratio_or_nan

__all__ = ["subgroup_table", "confident_errors"]


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


def confident_errors(predictions: pd.DataFrame, threshold: float, n: int = 4) -> pd.DataFrame:
    """The most confident mistakes: up to ``n`` false positives and ``n`` false negatives.

    Parameters
    ----------
    predictions : pandas.DataFrame
        With ``y_true`` (1 = PNEUMONIA) and ``score`` columns (a run's prediction file).
    threshold : float
        The operating threshold: ``score >= threshold`` is PNEUMONIA.
    n : int
        Most rows of each kind.

    Returns
    -------
    pandas.DataFrame
        The rows, false positives first (highest score first), then false negatives
        (lowest score first), with a column ``error`` ("false positive" or "false negative").
    """
    predicted = predictions["score"] >= threshold
    positives = predictions[(predictions["y_true"] == 0) & predicted].nlargest(n, "score")
    negatives = predictions[(predictions["y_true"] == 1) & ~predicted].nsmallest(n, "score")
    return pd.concat([positives.assign(error="false positive"), negatives.assign(error="false negative")])
