"""Unlabeled adaptation: batch-norm statistics, the class prior by EM, histogram matching, cross-fitting."""

import keras
import numpy as np
import pytest

from cxr_utils.adapt import (
    cross_fit,
    estimate_prior_em,
    match_histograms,
    patient_halves,
    reestimate_batchnorm,
    reference_histogram,
)
from cxr_utils.models import build_cnn


def test_batchnorm_statistics_become_the_targets_and_the_original_is_kept():
    keras.utils.set_random_seed(0)
    model = build_cnn(16, filters=(4, 8), standardize=False)
    original = [w.copy() for w in model.get_weights()]
    rng = np.random.default_rng(0)
    target = rng.uniform(100, 200, (40, 16, 16, 1)).astype("float32")
    adapted = reestimate_batchnorm(model, target, batch_size=16)
    first = next(layer for layer in adapted.layers if isinstance(layer, keras.layers.BatchNormalization))
    inputs = keras.ops.convert_to_numpy(keras.Model(adapted.input, first.input)(target)).reshape(-1, 4)
    np.testing.assert_allclose(first.moving_mean.numpy(), inputs.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(first.moving_variance.numpy(), inputs.var(axis=0), rtol=1e-3)
    # every later layer sees normalised inputs: its statistics are those after the first is adapted
    last = [layer for layer in adapted.layers if isinstance(layer, keras.layers.BatchNormalization)][-1]
    later = keras.ops.convert_to_numpy(keras.Model(adapted.input, last.input)(target))
    np.testing.assert_allclose(last.moving_mean.numpy(), later.reshape(-1, later.shape[-1]).mean(axis=0), rtol=1e-3)
    for before, after in zip(original, model.get_weights()):
        np.testing.assert_array_equal(before, after)  # the model passed in is unchanged
    with pytest.raises(ValueError, match="no BatchNormalization"):
        reestimate_batchnorm(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]), np.zeros((2, 3)))


def test_em_recovers_a_changed_class_prior():
    rng = np.random.default_rng(0)
    n = 20000
    # a calibrated model for a balanced source: p(y=1|x) = sigmoid(2x) with x ~ N(+-1, 1)
    y = rng.uniform(size=n) < 0.8  # the target has 80% PNEUMONIA
    x = rng.normal(np.where(y, 1.0, -1.0), 1.0)
    scores = 1 / (1 + np.exp(-2 * x))
    prior, corrected = estimate_prior_em(scores, 0.5)
    assert prior == pytest.approx(0.8, abs=0.02)
    assert corrected.mean() == pytest.approx(prior) and np.all(corrected >= scores - 1e-12)
    balanced = scores[np.r_[np.flatnonzero(y)[:3000], np.flatnonzero(~y)[:3000]]]
    assert estimate_prior_em(balanced, 0.5)[0] == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError):
        estimate_prior_em(scores, 1.0)


def test_histogram_matching_takes_the_reference_shape_and_keeps_the_order():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 256, (5, 32, 32)).astype(np.uint8)  # roughly uniform
    dark = (rng.beta(2, 8, (3, 32, 32)) * 255).astype(np.uint8)
    matched = match_histograms(dark, reference_histogram(reference))
    assert matched.dtype == np.uint8 and matched.shape == dark.shape
    assert abs(np.median(matched) - 128) < 12 and np.median(dark) < 60
    order = np.argsort(dark[0].ravel(), kind="stable")
    assert np.all(np.diff(matched[0].ravel()[order].astype(int)) >= 0)  # brighter stays brighter
    with pytest.raises(ValueError, match="uint8"):
        match_histograms(dark.astype(np.float32), reference_histogram(reference))


def test_cross_fit_never_adapts_an_image_on_itself():
    groups = np.repeat([f"p{i}" for i in range(30)], 2)
    halves = patient_halves(groups, seed=3)
    assert set(halves) == {0, 1} and all(len(set(halves[groups == g])) == 1 for g in set(groups))
    calls = []

    def adapt_and_score(adapt_on, score):
        calls.append((adapt_on, score))
        assert not set(groups[adapt_on]) & set(groups[score])  # no patient on both sides
        return np.full(len(score), float(len(adapt_on)))

    scores = cross_fit(adapt_and_score, groups, seed=3)
    assert len(calls) == 2 and not np.isnan(scores).any()
    assert sorted(np.concatenate([c[1] for c in calls]).tolist()) == list(range(60))


def test_prior_correction_by_hand():
    from cxr_utils.adapt import correct_for_prior

    # odds 1 (p = 0.5) calibrated for a 50% share, moved to a 80% share: odds 4, p = 0.8
    np.testing.assert_allclose(correct_for_prior([0.5, 0.2], 0.8, 0.5), [0.8, 0.5])
    np.testing.assert_allclose(correct_for_prior([0.3, 0.9], 0.5, 0.5), [0.3, 0.9])


def test_em_estimate_stays_inside_the_open_interval():
    prior, corrected = estimate_prior_em(np.full(50, 0.999999), 0.5)
    assert prior == 0.999 and np.all(corrected < 1)


def test_batchnorm_can_write_into_a_reused_copy():
    keras.utils.set_random_seed(0)
    model = build_cnn(16, filters=(4,), standardize=False)
    copy = keras.models.clone_model(model)
    rng = np.random.default_rng(1)
    first = reestimate_batchnorm(model, rng.uniform(0, 50, (8, 16, 16, 1)).astype("float32"), into=copy)
    expected = reestimate_batchnorm(model, rng.uniform(100, 200, (8, 16, 16, 1)).astype("float32"))
    rng = np.random.default_rng(1)
    rng.uniform(0, 50, (8, 16, 16, 1))
    second = reestimate_batchnorm(model, rng.uniform(100, 200, (8, 16, 16, 1)).astype("float32"), into=copy)
    assert first is second is copy
    for a, b in zip(second.get_weights(), expected.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5)
