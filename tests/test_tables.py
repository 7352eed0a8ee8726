"""Result tables: models beside the paper and the baseline, text and Markdown."""

import numpy as np
import pandas as pd
import pytest

from cxr_utils.compare import evaluation_table, format_table, table_to_markdown, versus_paper
from cxr_utils.metrics import PAPER

from helpers import Y


def test_evaluation_table_rows_and_numbers(scored, scored_frame):
    y, _ = scored
    table = evaluation_table({"cnn": scored_frame}, baseline=y, rules="a rule")
    assert list(table.index) == ["cnn", "always PNEUMONIA", "Kermany et al. 2018"]
    metrics = ["accuracy", "sensitivity", "specificity", "roc_auc"]
    columns = ["threshold rule", *(c for m in metrics for c in (m, f"{m}_ci_low", f"{m}_ci_high"))]
    assert list(table.columns) == columns
    assert table["threshold rule"].tolist() == ["a rule", "none: every image PNEUMONIA", "not published"]
    for m in metrics:
        assert table.loc["cnn", m] == scored_frame.loc[m, "value"]
        assert table.loc["cnn", f"{m}_ci_low"] == scored_frame.loc[m, "ci_low"]
        assert table.loc["cnn", f"{m}_ci_high"] == scored_frame.loc[m, "ci_high"]
        assert table.loc["Kermany et al. 2018", m] == PAPER[m]
    baseline = table.loc["always PNEUMONIA"]
    assert baseline["accuracy"] == pytest.approx(y.mean())
    assert (baseline["sensitivity"], baseline["specificity"], baseline["roc_auc"]) == (1.0, 0.0, 0.5)
    extra_rows = table.loc[["always PNEUMONIA", "Kermany et al. 2018"]]
    assert extra_rows.filter(like="_ci_").isna().all().all()


def test_evaluation_table_options(scored_frame):
    two = evaluation_table({"a": scored_frame, "b": scored_frame}, include_paper=False, rules={"a": "x", "b": "y"})
    assert list(two.index) == ["a", "b"] and two["threshold rule"].tolist() == ["x", "y"]
    assert list(evaluation_table({}, baseline=Y, rules="x").index) == ["always PNEUMONIA", "Kermany et al. 2018"]
    assert evaluation_table({}, baseline=Y, rules="x").loc["always PNEUMONIA", "accuracy"] == 0.5
    with pytest.raises(ValueError, match="clash"):
        evaluation_table({"Kermany et al. 2018": scored_frame}, rules="x")
    with pytest.raises(ValueError, match="roc_auc"):
        evaluation_table({"a": scored_frame.drop(index="roc_auc")}, rules="x")
    with pytest.raises(ValueError, match="no threshold rule for \\['b'\\]"):
        evaluation_table({"a": scored_frame, "b": scored_frame}, rules={"a": "x"})
    with pytest.raises(TypeError, match="rules"):
        evaluation_table({"a": scored_frame})  # a comparison always names its thresholds' rule


def test_format_table_text():
    frame = pd.DataFrame(
        {
            "value": [0.9123, np.nan, 0.5, 0.97],
            "ci_low": [0.8891, np.nan, 0.4, 0.95],
            "ci_high": [0.9344, np.nan, 0.6, 0.99],
        },
        index=["accuracy", "sensitivity", "specificity", "roc_auc"],
    )
    text = format_table(evaluation_table({"cnn": frame}, baseline=Y, rules="x"))
    assert list(text.columns) == ["threshold rule", "accuracy", "sensitivity", "specificity", "roc_auc"]
    assert text.loc["cnn", "accuracy"] == "0.912 [0.889, 0.934]"
    assert text.loc["cnn", "sensitivity"] == "n/a"
    assert text.loc["Kermany et al. 2018"].tolist()[1:] == ["0.928", "0.932", "0.901", "0.968"]
    assert text.loc["always PNEUMONIA"].tolist()[1:] == ["0.500", "1.000", "0.000", "0.500"]


def test_versus_paper_verdicts_and_markdown():
    frame = pd.DataFrame(
        {"value": [0.95, 0.99, 0.80, 0.97], "ci_low": [0.94, 0.98, 0.75, 0.95], "ci_high": [0.96, 1.0, 0.85, 0.99]},
        index=["accuracy", "sensitivity", "specificity", "roc_auc"],
    )
    table = versus_paper(frame)
    assert table["verdict"].tolist() == ["above the paper", "above the paper", "below the paper", "no difference shown"]
    assert table["paper"].to_dict() == PAPER
    text = table_to_markdown(table[["ours", "verdict"]])
    assert text.splitlines()[0] == "|  | ours | verdict |" and "| accuracy | 0.95 | above the paper |" in text


def test_format_interval_takes_none_or_nan_for_a_missing_number():
    from cxr_utils.compare import format_interval

    assert format_interval(0.9134, 0.8891, 0.9342) == "0.913 [0.889, 0.934]"
    assert format_interval(0.9134, None, 0.93) == format_interval(0.9134, float("nan"), 0.93) == "0.913"
    assert format_interval(None) == format_interval(float("nan"), 0.1, 0.2) == "n/a"
