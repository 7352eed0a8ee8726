"""Metrics, bootstrap intervals and thresholds against scikit-learn and hand-computed values on fixed arrays."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from cxr_utils import metrics
from cxr_utils.metrics import METRICS, binary_metrics, bootstrap_ci, choose_threshold

from helpers import S, Y

# binary_metrics


def test_confusion_counts_by_hand():
    m = binary_metrics(Y, S, 0.5)
    # predicted PNEUMONIA: .8, .7, .9 (true) and .6 (false); .2 is a missed PNEUMONIA
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 1, 3, 1)
    assert (m["n"], m["n_positive"], m["n_negative"]) == (8, 4, 4)
    assert m["threshold"] == 0.5
    assert m["specificity"] == 3 / 4
    assert m["npv"] == 3 / 4
    assert m["accuracy"] == 6 / 8


def test_keys_and_types():
    m = binary_metrics(Y.tolist(), S.tolist(), 0.5)
    assert set(m) == set(METRICS) | {"threshold", "n", "n_positive", "n_negative", "tp", "fp", "tn", "fn"}
    assert list(m)[: len(METRICS)] == list(METRICS)
    assert all(type(m[k]) is int for k in ("n", "n_positive", "n_negative", "tp", "fp", "tn", "fn"))
    assert all(type(m[k]) is float for k in METRICS)


def test_threshold_is_inclusive():
    assert binary_metrics(Y, S, 0.6)["fp"] == 1  # the NORMAL image scored exactly 0.6
    assert binary_metrics(Y, S, 0.6000001)["fp"] == 0


@pytest.mark.parametrize("threshold", [0.0, 0.15, 0.3, 0.5, 0.65, 0.85, 0.95])
def test_threshold_metrics_equal_sklearn(threshold):
    m = binary_metrics(Y, S, threshold)
    pred = (threshold <= S).astype(int)
    expected = {
        "accuracy": accuracy_score(Y, pred),
        "sensitivity": recall_score(Y, pred, zero_division=np.nan),
        "specificity": recall_score(Y, pred, pos_label=0, zero_division=np.nan),
        "ppv": precision_score(Y, pred, zero_division=np.nan),
        "npv": precision_score(Y, pred, pos_label=0, zero_division=np.nan),
        "f1": f1_score(Y, pred, zero_division=np.nan),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(m[name], value, rtol=0, atol=1e-12, err_msg=name)


def test_undefined_ratios_are_nan():
    m = binary_metrics(Y, S, 0.95)  # nothing predicted PNEUMONIA
    assert np.isnan(m["ppv"])
    assert m["sensitivity"] == 0.0 and m["f1"] == 0.0 and m["specificity"] == 1.0


def test_aucs_equal_sklearn_and_hand_count():
    m = binary_metrics(Y, S, 0.5)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(Y, S), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(average_precision_score(Y, S), abs=1e-12)
    # 13 of the 16 (PNEUMONIA, NORMAL) pairs are ordered right: 4 + 4 + 4 for .9, .8, .7, 1 for .2
    assert m["roc_auc"] == pytest.approx(13 / 16, abs=1e-12)
    # average precision by hand: precision at each PNEUMONIA hit, ranks 1, 2, 3, 7
    assert m["pr_auc"] == pytest.approx((1 + 1 + 1 + 4 / 7) / 4, abs=1e-12)


def test_aucs_equal_sklearn_on_larger_data(scored):
    y, s = scored
    m = binary_metrics(y, s, 0.5)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_one_class_gives_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        positives = binary_metrics([1, 1, 1], [0.2, 0.7, 0.9], 0.5)
        negatives = binary_metrics([0, 0], [0.1, 0.3], 0.5)
    assert np.isnan(positives["roc_auc"]) and np.isnan(positives["pr_auc"])
    assert np.isnan(positives["specificity"])
    assert positives["sensitivity"] == 2 / 3 and positives["ppv"] == 1.0 and positives["npv"] == 0.0
    assert np.isnan(negatives["sensitivity"]) and np.isnan(negatives["ppv"]) and np.isnan(negatives["f1"])
    assert negatives["accuracy"] == 1.0 and negatives["specificity"] == 1.0 and negatives["npv"] == 1.0
    assert np.isnan(negatives["roc_auc"]) and np.isnan(negatives["pr_auc"])


@pytest.mark.parametrize(
    "y_true, scores, threshold, message",
    [
        ([0, 1, 1], [0.1, 0.9], 0.5, "differ in length"),
        ([], [], 0.5, "empty"),
        ([0, 1, 2], [0.1, 0.5, 0.9], 0.5, "only 0"),
        ([0, 0.5], [0.1, 0.9], 0.5, "only 0"),
        (["NORMAL", "PNEUMONIA"], [0.1, 0.9], 0.5, "only 0"),
        ([0, 1], [0.1, np.nan], 0.5, "finite"),
        ([0, 1], [0.1, 0.9], np.nan, "threshold"),
        ([[0, 1]], [[0.1, 0.9]], 0.5, "1-D"),
    ],
)
def test_binary_metrics_rejects_bad_input(y_true, scores, threshold, message):
    with pytest.raises(ValueError, match=message):
        binary_metrics(y_true, scores, threshold)


def test_boolean_labels_accepted():
    assert binary_metrics(Y.astype(bool), S, 0.5) == binary_metrics(Y, S, 0.5)


# choose_threshold


def test_youden_by_hand_and_against_roc_curve():
    threshold = choose_threshold(Y, S)
    assert threshold == 0.7  # tpr 3/4, fpr 0: J = 0.75
    fpr, tpr, thresholds = roc_curve(Y, S)
    assert threshold == thresholds[np.argmax(tpr - fpr)]
    m = binary_metrics(Y, S, threshold)
    assert m["sensitivity"] + m["specificity"] - 1 == pytest.approx(np.max(tpr - fpr))


def test_youden_on_larger_data(scored):
    y, s = scored
    threshold = choose_threshold(y, s, method="youden")
    fpr, tpr, thresholds = roc_curve(y, s)
    assert threshold == thresholds[np.argmax(tpr - fpr)]
    m = binary_metrics(y, s, threshold)
    best = m["sensitivity"] + m["specificity"] - 1
    assert best == pytest.approx(np.max(tpr - fpr), abs=1e-12)
    # no score used as a threshold does better (J counted directly, for every distinct score)
    t = np.unique(s)[:, None]
    j = (s[y == 1] >= t).mean(axis=1) + (s[y == 0] < t).mean(axis=1) - 1
    assert j.max() == pytest.approx(best, abs=1e-12)


def test_youden_never_returns_inf():
    y, s = np.array([1, 1, 0, 0]), np.array([0.1, 0.2, 0.8, 0.9])  # worse than chance: best is "none"
    threshold = choose_threshold(y, s)
    assert np.isfinite(threshold) and threshold > s.max()
    m = binary_metrics(y, s, threshold)
    assert m["tp"] + m["fp"] == 0  # the same as roc_curve's inf threshold


@pytest.mark.parametrize("target, expected", [(0.25, 0.9), (0.5, 0.8), (0.75, 0.7), (0.8, 0.2), (1.0, 0.2)])
def test_target_sensitivity_by_hand(target, expected):
    assert choose_threshold(Y, S, method="sensitivity", target_sensitivity=target) == expected


@pytest.mark.parametrize("target", [0.5, 0.9, 0.95, 0.99, 1.0])
def test_target_sensitivity_is_the_largest_reaching_it(scored, target):
    y, s = scored
    threshold = choose_threshold(y, s, method="sensitivity", target_sensitivity=target)
    assert binary_metrics(y, s, threshold)["sensitivity"] >= target
    larger = s[s > threshold]
    if larger.size:  # the next score up misses the target
        assert binary_metrics(y, s, larger.min())["sensitivity"] < target


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "f1"}, "unknown method"),
        ({"method": "sensitivity"}, "needs target_sensitivity"),
        ({"method": "sensitivity", "target_sensitivity": 0.0}, r"\(0, 1\]"),
        ({"method": "sensitivity", "target_sensitivity": 1.5}, r"\(0, 1\]"),
    ],
)
def test_choose_threshold_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        choose_threshold(Y, S, **kwargs)


def test_choose_threshold_needs_both_classes():
    with pytest.raises(ValueError, match="both"):
        choose_threshold([1, 1, 1], [0.2, 0.5, 0.9])


# bootstrap_ci


def test_bootstrap_frame_shape_and_point_values(scored, scored_frame):
    assert list(scored_frame.index) == list(METRICS)
    assert list(scored_frame.columns) == ["value", "ci_low", "ci_high"]
    point = binary_metrics(*scored, 0.5)
    for metric in METRICS:
        assert scored_frame.loc[metric, "value"] == point[metric]


def test_bootstrap_ci_contains_point_estimate(scored_frame):
    assert scored_frame.notna().all().all()
    assert (scored_frame["ci_low"] <= scored_frame["value"]).all()
    assert (scored_frame["value"] <= scored_frame["ci_high"]).all()
    assert (scored_frame["ci_high"] - scored_frame["ci_low"] > 0).all()
    assert ((scored_frame[["ci_low", "ci_high"]] >= 0) & (scored_frame[["ci_low", "ci_high"]] <= 1)).all().all()


def test_bootstrap_accuracy_width_matches_binomial_theory(scored, scored_frame):
    # a 95 % interval of a proportion is about 2 * 1.96 * sqrt(p (1 - p) / n) wide
    p, n = scored_frame.loc["accuracy", "value"], len(scored[0])
    expected = 2 * 1.96 * np.sqrt(p * (1 - p) / n)
    width = scored_frame.loc["accuracy", "ci_high"] - scored_frame.loc["accuracy", "ci_low"]
    assert 0.75 * expected < width < 1.25 * expected


def test_bootstrap_is_deterministic_for_a_seed(scored, scored_frame):
    pd.testing.assert_frame_equal(bootstrap_ci(*scored, 0.5, n_boot=200, seed=0), scored_frame)
    other = bootstrap_ci(*scored, 0.5, n_boot=200, seed=1)
    assert not np.allclose(other["ci_low"], scored_frame["ci_low"])
    pd.testing.assert_series_equal(other["value"], scored_frame["value"])


def test_bootstrap_narrower_with_more_data(scored, scored_frame):
    y, s = scored
    big = bootstrap_ci(np.tile(y, 4), np.tile(s, 4), 0.5, n_boot=200, seed=0)
    width = scored_frame["ci_high"] - scored_frame["ci_low"]
    big_width = big["ci_high"] - big["ci_low"]
    # four times the scored: about half the width
    assert (big_width < 0.75 * width).all()
    pd.testing.assert_series_equal(big["value"], scored_frame["value"], atol=1e-12)


def test_bootstrap_lower_confidence_is_nested(scored, scored_frame):
    narrow = bootstrap_ci(*scored, 0.5, n_boot=200, seed=0, confidence=0.5)
    assert (narrow["ci_low"] >= scored_frame["ci_low"]).all()
    assert (narrow["ci_high"] <= scored_frame["ci_high"]).all()
    assert (narrow["ci_high"] - narrow["ci_low"] < scored_frame["ci_high"] - scored_frame["ci_low"]).all()


def test_bootstrap_replicates_equal_binary_metrics_on_resampled_data():
    rng = np.random.default_rng(3)
    groups = np.array(["a", "a", "b", "c", "c", "c", "d", "e"])
    for codes in (np.arange(len(Y)), pd.factorize(groups)[0]):
        weights = metrics._resample_weights(rng, 20, codes)
        assert weights.shape == (20, len(Y))
        assert (weights.sum(axis=1) > 0).all()
        # all images of a group are drawn the same number of times
        assert all(len(set(row[codes == g])) == 1 for row in weights for g in np.unique(codes))
        replicates = metrics._replicates(Y, S, 0.5, weights)
        for row, w in zip(replicates, weights):
            expected = binary_metrics(np.repeat(Y, w), np.repeat(S, w), 0.5)
            np.testing.assert_allclose(row, [expected[m] for m in METRICS], rtol=0, atol=1e-12)


def test_bootstrap_aucs_equal_scikit_learn_with_ties_and_one_class_resamples():
    # scores with many ties, and resamples where a class is missing (both AUCs NaN there)
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) * 0.6 + 0.3 * y, 1)  # 10 distinct scores: ties in both classes
    weights = rng.poisson(1.0, size=(40, 300))
    weights[0] = np.where(y == 1, weights[0], 0)  # PNEUMONIA only
    weights[1] = np.where(y == 0, weights[1], 0)  # NORMAL only
    replicates = metrics._replicates(y, s, 0.5, weights)
    roc_auc, pr_auc = replicates[:, METRICS.index("roc_auc")], replicates[:, METRICS.index("pr_auc")]
    assert np.isnan(roc_auc[:2]).all() and np.isnan(pr_auc[:2]).all()
    for row, w in enumerate(weights[2:], start=2):
        keep = w > 0
        assert roc_auc[row] == pytest.approx(roc_auc_score(y[keep], s[keep], sample_weight=w[keep]), abs=1e-12)
        assert pr_auc[row] == pytest.approx(average_precision_score(y[keep], s[keep], sample_weight=w[keep]), abs=1e-12)


def test_bootstrap_skips_undefined_resamples():
    # perfectly separated: every resample with both classes has AUC 1; one-class ones are skipped
    y, s = np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])
    result = bootstrap_ci(y, s, 0.5, n_boot=200, seed=0)
    assert result.loc["roc_auc", "ci_low"] == 1.0 and result.loc["roc_auc", "ci_high"] == 1.0
    assert result.loc["accuracy", "ci_low"] == 1.0
    one_class = bootstrap_ci([1, 1, 1], [0.2, 0.7, 0.9], 0.5, n_boot=50)
    assert one_class.loc[["specificity", "roc_auc", "pr_auc"]].isna().all().all()
    assert one_class.loc["sensitivity"].notna().all()


def test_grouped_bootstrap_with_one_image_per_group_equals_image_bootstrap(scored, scored_frame):
    y, s = scored
    pd.testing.assert_frame_equal(bootstrap_ci(y, s, 0.5, n_boot=200, seed=0, groups=np.arange(len(y))), scored_frame)


def test_grouped_bootstrap_resamples_whole_clusters(scored, scored_frame):
    y, s = scored
    patients = [f"patient{i}" for i in np.repeat(np.arange(len(y)), 3)]  # three copies of each image
    y3, s3 = np.repeat(y, 3), np.repeat(s, 3)
    grouped = bootstrap_ci(y3, s3, 0.5, n_boot=200, seed=0, groups=patients)
    naive = bootstrap_ci(y3, s3, 0.5, n_boot=200, seed=0)
    # resampling patients is resampling the original images: the same intervals ...
    pd.testing.assert_frame_equal(grouped, scored_frame, atol=1e-12)
    # ... while treating copies as independent pretends to know more
    assert (grouped["ci_high"] - grouped["ci_low"] >= naive["ci_high"] - naive["ci_low"]).all()
    assert (grouped["ci_high"] - grouped["ci_low"]).mean() > 1.4 * (naive["ci_high"] - naive["ci_low"]).mean()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_boot": 0}, "n_boot"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.0}, "confidence"),
        ({"groups": [1, 2, 3]}, "groups"),
        ({"groups": ["a", "a", None, "b", "b", "c", "c", "d"]}, "missing"),
    ],
)
def test_bootstrap_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(Y, S, 0.5, **kwargs)
