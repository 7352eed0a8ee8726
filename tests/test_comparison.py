"""Paired tests of two models on the same images (McNemar by hand, DeLong against a bootstrap); subgroup errors."""

import numpy as np
import pandas as pd
import pytest

from cxr_utils.compare import compare_models, confident_calls, delong_test, mcnemar_test, subgroup_table


def test_mcnemar_exact_p_value_by_hand():
    # 10 images only A gets right, 2 only B: p = 2 * P(X <= 2), X ~ Binomial(12, 1/2)
    y = np.ones(20, dtype=int)
    a = np.r_[np.ones(10), np.zeros(2), np.ones(5), np.zeros(3)]
    b = np.r_[np.zeros(10), np.ones(2), np.ones(5), np.zeros(3)]
    result = mcnemar_test(y, a, b)
    assert (result["a_only"], result["b_only"]) == (10, 2)
    assert result["p_value"] == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert mcnemar_test(y, a, a)["p_value"] == 1.0


def test_delong_aucs_and_variance_against_a_paired_bootstrap():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(150, dtype=int), np.ones(250, dtype=int)]
    shared = rng.normal(size=y.size)
    a = y * 1.2 + shared + rng.normal(0, 0.5, y.size)
    b = np.round(y * 0.9 + shared + rng.normal(0, 0.5, y.size), 1)  # rounding makes ties
    result = delong_test(y, a, b)
    assert result["auc_a"] == pytest.approx(roc_auc_score(y, a))
    assert result["auc_b"] == pytest.approx(roc_auc_score(y, b))
    differences = []
    for _ in range(2000):
        pick = np.r_[rng.choice(150, 150), 150 + rng.choice(250, 250)]  # stratified, as DeLong conditions on counts
        differences.append(roc_auc_score(y[pick], a[pick]) - roc_auc_score(y[pick], b[pick]))
    assert result["se"] == pytest.approx(np.std(differences), rel=0.15)
    assert result["ci_low"] < result["difference"] < result["ci_high"]
    assert delong_test(y, a, a)["p_value"] == 1.0
    assert delong_test(y, a, -a)["p_value"] < 1e-6


def test_compare_models_runs_every_pair():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    models = {name: (np.clip(y * 0.3 + rng.uniform(0, 0.7, 200), 0, 1), 0.5) for name in "ABC"}
    table = compare_models(y, models, rule="a rule")
    assert list(zip(table["model_a"], table["model_b"])) == [("A", "B"), ("A", "C"), ("B", "C")]
    assert (table["threshold rule"] == "a rule").all()
    with pytest.raises(TypeError, match="rule"):
        compare_models(y, models)  # accuracies are compared at one named rule, or not at all
    assert table[["mcnemar_p", "delong_p"]].apply(lambda c: c.between(0, 1)).all().all()


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


def test_confident_calls_are_ordered_by_confidence():
    predictions = pd.DataFrame(
        {"path": list("abcdefg"), "y_true": [0, 0, 0, 1, 1, 1, 0], "score": [0.9, 0.6, 0.1, 0.2, 0.45, 0.8, 0.99]}
    )
    errors = confident_calls(predictions, 0.5, n=2)
    assert errors["path"].tolist() == ["g", "a", "d", "e"]
    assert errors["call"].tolist() == ["false positive"] * 2 + ["false negative"] * 2
    assert len(confident_calls(predictions, 0.5, n=5)) == 5  # b is the third false positive
    correct = confident_calls(predictions, 0.5, n=1, calls=("true positive", "true negative"))
    assert correct["path"].tolist() == ["f", "c"] and correct["call"].tolist() == ["true positive", "true negative"]
    with pytest.raises(ValueError, match="unknown calls"):
        confident_calls(predictions, 0.5, calls=("false alarm",))
