"""Where the errors fall: subgroup tables and the most confident mistakes."""

import numpy as np
import pandas as pd
import pytest

from cxr_utils.errors import confident_errors, subgroup_table


def test_subgroup_table_by_hand():
    y = [0, 0, 1, 1, 1, 0]
    s = [0.9, 0.1, 0.2, 0.8, 0.7, 0.6]
    groups = ["none", "none", "virus", "virus", "bacteria", "none"]
    table = subgroup_table(y, s, 0.5, groups)
    assert table.index.tolist() == ["bacteria", "none", "virus"]
    assert table.loc["none", ["images", "normal", "pneumonia", "false_positives", "false_negatives"]].tolist() == [
        3,
        3,
        0,
        2,
        0,
    ]
    assert table.loc["virus", "sensitivity"] == 0.5 and np.isnan(table.loc["virus", "specificity"])
    assert table.loc["none", "error_rate"] == pytest.approx(2 / 3)
    assert table["images"].sum() == 6


def test_confident_errors_are_ordered_by_confidence():
    predictions = pd.DataFrame(
        {"path": list("abcdefg"), "y_true": [0, 0, 0, 1, 1, 1, 0], "score": [0.9, 0.6, 0.1, 0.2, 0.45, 0.8, 0.99]}
    )
    errors = confident_errors(predictions, 0.5, n=2)
    assert errors["path"].tolist() == ["g", "a", "d", "e"]
    assert errors["error"].tolist() == ["false positive"] * 2 + ["false negative"] * 2
    assert len(confident_errors(predictions, 0.5, n=5)) == 5  # b is the third false positive
