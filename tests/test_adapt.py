"""Unlabeled adaptation: batch-norm statistics, the class prior by EM, histogram matching, cross-fitting."""

import keras
import numpy as np
import pytest

from cxr_utils.shift import (
    correct_for_prior,
    cross_fit,
    estimate_prior_em,
    match_histograms,
    patient_halves,
    reestimate_batchnorm,
    reference_histogram,
)

from helpers import build_cnn


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

    scores = cross_fit(adapt_and_score, groups, [f"{g}_{i}.jpeg" for i, g in enumerate(groups)], seed=3)
    assert len(calls) == 2 and not np.isnan(scores).any()
    assert sorted(np.concatenate([c[1] for c in calls]).tolist()) == list(range(60))


def test_prior_correction_by_hand():
    from cxr_utils.shift import correct_for_prior

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


def _filed(files: dict[str, str]) -> dict[str, np.ndarray]:
    """Rows sorted by path, so by label folder (the order an older index gave): names and patient ids."""
    from cxr_utils.dataset import parse_name

    paths = sorted(f"test/{label}/{name}" for name, label in files.items())
    names = np.array([path.rsplit("/", 1)[1] for path in paths])
    return {"names": names, "groups": np.array([parse_name(name).patient_id for name in names])}


@pytest.mark.real_data
def test_halves_and_adapted_scores_do_not_depend_on_the_label_folders(resized_224):
    """Chapter 06's promise: test labels never shape a prediction, not even through the order of the rows.

    The same real test images, filed as they are and with a random half moved to the other
    label folder (names unchanged), must get the same halves, the same cross-fitted
    batch-norm and EM scores, and the same domain-classifier scores, image by image.
    """
    from PIL import Image

    from cxr_utils.shift import acquisition_features, domain_classifier_test
    from cxr_utils.training import predict_scores

    folder = resized_224 / "test"
    chosen = sorted(folder.glob("NORMAL/*.jpeg"))[:14] + sorted(folder.glob("PNEUMONIA/person1*.jpeg"))[:22]
    as_filed = {path.name: path.parent.name for path in chosen}
    moved = np.random.default_rng(0).random(len(chosen)) < 0.5
    refiled = {
        name: ({"NORMAL": "PNEUMONIA", "PNEUMONIA": "NORMAL"}[label] if move else label)
        for (name, label), move in zip(as_filed.items(), moved)
    }
    pixels = {path.name: np.asarray(Image.open(path).convert("L").resize((32, 32))) for path in chosen}
    training = sorted(resized_224.glob("train/*/*"))[::400]
    source = [np.asarray(Image.open(path).convert("L").resize((32, 32))) for path in training]
    keras.utils.set_random_seed(0)
    model = build_cnn(32, filters=(4, 8))
    copy = keras.models.clone_model(model)

    results = []
    for files in (as_filed, refiled):
        rows = _filed(files)
        images = np.stack([pixels[name] for name in rows["names"]])
        inputs = images[..., None].astype("float32")

        def batchnorm(adapt_on, score, images=images, inputs=inputs):
            return predict_scores(reestimate_batchnorm(model, inputs[adapt_on], batch_size=8, into=copy), images[score])

        adapted = cross_fit(batchnorm, rows["groups"], rows["names"])
        prior = cross_fit(
            lambda adapt_on, score, s=adapted: correct_for_prior(s[score], estimate_prior_em(s[adapt_on], 0.5)[0], 0.5),
            rows["groups"],
            rows["names"],
        )
        features = acquisition_features(np.concatenate([np.stack(source), images])).to_numpy()
        is_target = np.r_[np.zeros(len(source), bool), np.ones(len(images), bool)]
        domain = domain_classifier_test(
            features,
            is_target,
            np.r_[[f"source{i}" for i in range(len(source))], rows["groups"]],
            np.r_[[f"source{i}.jpeg" for i in range(len(source))], rows["names"]],
            folds=3,
            n_boot=50,
        )
        per_name = {
            "half": patient_halves(rows["groups"]),
            "batch-norm": adapted,
            "EM": prior,
            "domain": domain.scores[is_target],
        }
        results.append({key: dict(zip(rows["names"], values)) for key, values in per_name.items()})

    assert moved.sum() > 10 and len(set(results[0]["half"].values())) == 2
    for key in results[0]:
        assert results[0][key] == results[1][key], f"{key}: the filing changed the scores"
