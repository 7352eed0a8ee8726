"""Calibration (reliability, Brier, ECE, temperature) and log-odds ensembles, by hand and against scikit-learn."""

import numpy as np
import pytest

from cxr_utils.compare import _expected_calibration_error, calibration_summary, reliability_table
from cxr_utils.metrics import apply_temperature, fit_temperature, mean_logit


def test_reliability_table_by_hand():
    y = [0, 0, 1, 1, 1]
    s = [0.05, 0.15, 0.15, 0.95, 1.0]
    table = reliability_table(y, s, n_bins=2)
    assert table["count"].tolist() == [3, 2]
    np.testing.assert_allclose(table["mean_score"], [(0.05 + 0.15 + 0.15) / 3, 0.975])
    np.testing.assert_allclose(table["observed"], [1 / 3, 1.0])
    ece = (3 * abs(1 / 3 - 0.35 / 3) + 2 * abs(1 - 0.975)) / 5
    assert _expected_calibration_error(y, s, n_bins=2) == pytest.approx(ece)
    assert reliability_table(y, s, n_bins=10)["count"].sum() == 5  # empty bins kept, nothing lost
    with pytest.raises(ValueError, match=r"0\.\.1"):
        reliability_table([0, 1], [-0.1, 0.5])


def test_calibration_summary_matches_scikit_learn():
    from sklearn.metrics import brier_score_loss, log_loss

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = rng.uniform(0.01, 0.99, 300)
    summary = calibration_summary(y, s)
    assert summary["brier"] == pytest.approx(brier_score_loss(y, s))
    assert summary["log_loss"] == pytest.approx(log_loss(y, s))


def test_temperature_recovers_overconfidence_and_keeps_the_ranking():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, 4000)
    y = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-z))).astype(int)  # calibrated on z
    overconfident = 1 / (1 + np.exp(-3 * z))
    temperature = fit_temperature(y, overconfident)
    assert temperature == pytest.approx(3.0, rel=0.15)
    fixed = apply_temperature(overconfident, temperature)
    assert _expected_calibration_error(y, fixed) < _expected_calibration_error(y, overconfident) / 2
    assert np.all(np.diff(fixed[np.argsort(overconfident)]) >= 0)  # a monotone map: the ranking is kept
    with pytest.raises(ValueError):
        apply_temperature(fixed, 0.0)


def test_mean_logit_averages_log_odds():
    np.testing.assert_allclose(mean_logit(np.array([0.5, 0.9]), np.array([0.5, 0.1])), [0.5, 0.5])
    # logit(0.8) = log 4, logit(0.5) = 0: the mean log-odds is log 2, i.e. probability 2/3
    np.testing.assert_allclose(mean_logit(np.array([0.8]), np.array([0.5])), [2 / 3])


def test_platt_recovers_slope_and_level_and_keeps_the_ranking():
    from cxr_utils.metrics import apply_platt, fit_platt

    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, 6000)
    y = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-z))).astype(int)  # calibrated on z
    shifted = 1 / (1 + np.exp(-(0.5 * z - 1.0)))  # too flat and too low: logit = 0.5 z - 1
    slope, intercept = fit_platt(y, shifted)
    assert slope == pytest.approx(2.0, rel=0.1) and intercept == pytest.approx(2.0, rel=0.15)
    fixed = apply_platt(shifted, slope, intercept)
    assert _expected_calibration_error(y, fixed) < 0.02 and fixed.mean() == pytest.approx(y.mean(), abs=0.01)
    assert np.all(np.diff(fixed[np.argsort(shifted)]) >= 0)
