"""Measuring a shift without labels: acquisition features, univariate AUCs, the domain classifier."""

import numpy as np
import pandas as pd
import pytest

from cxr_utils.shift import acquisition_features, domain_classifier_test, univariate_shift


def _names(n: int) -> list[str]:
    return [f"image{i:04d}.jpeg" for i in range(n)]


def test_acquisition_features_by_hand():
    images = np.zeros((2, 48, 48), dtype=np.uint8)
    images[0, 8:40, 8:40] = 200  # a bright square inside a black frame
    images[1] = 100
    images[1, :4, :4] = 255  # a burned-in mark in a corner
    features = acquisition_features(images, extra={"kB": [1.5, 2.5]})
    assert features.loc[1, "mean"] == pytest.approx((100 * (48 * 48 - 16) + 255 * 16) / (48 * 48))
    assert features.loc[0, "border mean"] == 0 and features.loc[1, "border mean"] > 100
    assert features.loc[0, "dark share"] == pytest.approx(1 - 32 * 32 / 48**2)
    assert features.loc[1, "corner marks"] == 255 and features.loc[0, "corner marks"] == 0
    assert features.loc[0, "sharpness"] > 0 and features["kB"].tolist() == [1.5, 2.5]
    with pytest.raises(ValueError, match="shape"):
        acquisition_features(images[0])


def test_univariate_shift_direction_and_order():
    features = pd.DataFrame({"same": [1, 2, 3, 1, 2, 3], "higher": [1, 2, 3, 7, 8, 9], "lower": [5, 6, 4, 1, 2, 3]})
    table = univariate_shift(features, [0, 0, 0, 1, 1, 1])
    assert table.loc["higher", "auc"] == 1.0 and table.loc["lower", "auc"] < 0.1 and table.loc["same", "auc"] == 0.5
    assert table.index[-1] == "same" and table.loc["higher", "target median"] == 8
    with pytest.raises(ValueError, match="some images"):
        univariate_shift(features, [1] * 6)


def test_domain_classifier_separates_shifted_collections_and_not_alike_ones():
    rng = np.random.default_rng(0)
    n = 400
    groups = np.repeat(np.arange(n // 2), 2)  # two images per patient
    target = np.tile([False, True], n // 2)
    alike = rng.normal(size=(n, 3))
    shifted = alike + target[:, None] * np.array([3.0, 0, 0])  # Bayes AUC: Phi(3 / sqrt 2) = 0.983
    strong = domain_classifier_test(shifted, target, groups, _names(n), n_boot=200)
    null = domain_classifier_test(alike, target, groups, _names(n), n_boot=200)
    assert strong.auc > 0.93 and strong.ci_low > 0.9
    assert null.ci_low < 0.5 < null.ci_high and abs(null.auc - 0.5) < 0.1
    assert strong.scores.shape == (n,) and len(strong.fold_aucs) == 5
    assert strong.scores[target].mean() > strong.scores[~target].mean()


def test_domain_classifier_keeps_each_patient_in_one_fold():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(60, 2))
    groups = np.repeat(np.arange(20), 3)
    # a feature that identifies the patient: a classifier that saw the patient would score it perfectly
    features[:, 0] = groups
    target = np.isin(groups, rng.choice(20, 10, replace=False))
    result = domain_classifier_test(features, target, groups, _names(60), n_boot=100)
    assert result.auc < 0.8  # patient identity does not leak across folds
    with pytest.raises(ValueError, match="differ in length"):
        domain_classifier_test(features[:-1], target, groups, _names(60))


def test_simulated_acquisition_loses_detail_and_keeps_the_shape():
    from cxr_utils.shift import simulate_acquisition

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32)).astype(np.uint8)  # all detail
    degraded = simulate_acquisition(images, scale=0.5, quality=10)
    assert degraded.shape == images.shape and degraded.dtype == np.uint8
    sharpness = lambda a: np.abs(np.diff(a.astype(float), axis=2)).mean()  # noqa: E731
    assert sharpness(degraded) < sharpness(images) / 2
    assert np.array_equal(
        simulate_acquisition(np.full((1, 8, 8), 128, np.uint8), scale=1.0, quality=95)[0], np.full((8, 8), 128)
    )
    with pytest.raises(ValueError, match="scale"):
        simulate_acquisition(images, scale=0)
