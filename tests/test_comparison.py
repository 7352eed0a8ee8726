"""Paired tests of two models on the same images: McNemar by hand, DeLong against a bootstrap."""

import numpy as np
import pytest

from cxr_utils.comparison import compare_models, delong_test, mcnemar_test


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
    table = compare_models(y, models)
    assert list(zip(table["model_a"], table["model_b"])) == [("A", "B"), ("A", "C"), ("B", "C")]
    assert table[["mcnemar_p", "delong_p"]].apply(lambda c: c.between(0, 1)).all().all()
