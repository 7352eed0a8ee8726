"""The split backbone: bottom + top equals the whole, activations cached, only the top trains."""

from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest

import cxr_utils as cxr
from cxr_course.chapters import split_backbone
from cxr_utils.models import bottom_activations, build_backbone, compile_binary, pooled_features

from helpers import build_top_classifier


@pytest.fixture(scope="module")
def split(keras_weights):
    return split_backbone("MobileNetV2", input_size=96, alpha=0.35, weights_dir=keras_weights)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (6, 96, 96), dtype=np.uint8)


def test_bottom_then_top_equals_the_whole_backbone(split, images, keras_weights):
    whole = build_backbone("MobileNetV2", input_size=96, alpha=0.35, weights_dir=keras_weights)
    rgb = np.repeat(images[..., None].astype("float32"), 3, axis=-1)
    expected = np.asarray(whole(split.preprocess(rgb), training=False))
    activations = bottom_activations(split, images, progress=False)
    assert activations.shape == (6, 6, 6, 32) and activations.dtype == np.float16  # 96 / 16 = 6
    got = np.asarray(split.top(activations.astype("float32"), training=False))
    np.testing.assert_allclose(got, expected, atol=0.05)  # float16 storage of the activations
    features = pooled_features(split, activations)
    np.testing.assert_allclose(features, expected.mean(axis=(1, 2)), atol=0.05)


def chapter_04_cut() -> str:
    """The lines of chapter 04's cell that cut the backbone (``cut = ...`` to ``split = cxr.SplitBackbone(...)``)."""
    nb = nbformat.read(Path(__file__).resolve().parent.parent / "notebooks" / "04_transfer_learning.ipynb", 4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "backbone.get_layer(" in c.source)
    lines = cell.source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("cut = "))
    end = next(i for i, line in enumerate(lines) if line.startswith("split = cxr.SplitBackbone("))
    return "\n".join(lines[start : end + 1])


def test_chapter_04_cuts_the_backbone_as_split_backbone_does(split, images, keras_weights):
    """The chapter writes the cut in its cell (the lesson); ``cxr_course.chapters.split_backbone``, which tests and
    benchmarks use, must do the same."""
    backbone = build_backbone("MobileNetV2", input_size=96, alpha=0.35, weights_dir=keras_weights)
    cell = {
        "backbone": backbone,
        "ARCHITECTURE": "MobileNetV2",
        "ALPHA": 0.35,
        "IMAGE_SIZE": 96,
        "cxr": cxr,
        "keras": keras,
    }
    exec(chapter_04_cut(), cell)
    chapters = cell["split"]
    assert (chapters.architecture, chapters.alpha, chapters.input_size, chapters.cut_layer) == (
        split.architecture,
        split.alpha,
        split.input_size,
        split.cut_layer,
    )
    for mine, theirs in ((chapters.bottom, split.bottom), (chapters.top, split.top)):
        assert [layer.name for layer in mine.layers[1:]] == [layer.name for layer in theirs.layers[1:]]
        assert mine.trainable == theirs.trainable and len(mine.trainable_weights) == len(theirs.trainable_weights)
    rgb = split.preprocess(np.repeat(images[..., None].astype("float32"), 3, axis=-1))
    np.testing.assert_array_equal(
        np.asarray(chapters.top(chapters.bottom(rgb), training=False)), np.asarray(split.top(split.bottom(rgb)))
    )


def test_augmented_views_differ_and_repeat_by_seed(split, images):
    first = bottom_activations(split, images, view_seed=5, progress=False)
    again = bottom_activations(split, images, view_seed=5, progress=False)
    other = bottom_activations(split, images, view_seed=6, progress=False)
    plain = bottom_activations(split, images, progress=False)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other) and not np.array_equal(first, plain)


def test_only_the_top_and_head_train_and_batch_norm_stays_frozen(split, images):
    import keras

    activations = bottom_activations(split, images, progress=False).astype("float32")
    model = compile_binary(build_top_classifier(split, dropout=0.0), learning_rate=0.01)
    top = next(layer for layer in model.layers if isinstance(layer, keras.Model))  # the classifier's own copy
    bottom_before = [w.copy() for w in split.bottom.get_weights()]
    shared_before = [w.copy() for w in split.top.get_weights()]
    bn = next(layer for layer in top.layers if layer.__class__.__name__ == "BatchNormalization")
    moving_mean = np.asarray(bn.moving_mean).copy()
    kernel = next(layer for layer in top.layers if layer.__class__.__name__ == "Conv2D")
    kernel_before = np.asarray(kernel.kernel).copy()
    model.fit(activations, np.array([0, 1, 0, 1, 0, 1], "float32"), epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(bottom_before, split.bottom.get_weights()))
    np.testing.assert_array_equal(np.asarray(bn.moving_mean), moving_mean)  # inference-mode BN
    assert not np.array_equal(np.asarray(kernel.kernel), kernel_before)  # the top did train
    assert all(np.array_equal(a, b) for a, b in zip(shared_before, split.top.get_weights()))  # its own copy
    frozen = build_top_classifier(split, trainable_top=False)
    assert len(frozen.trainable_weights) == 2  # the head's kernel and bias


def test_a_top_fine_tuned_on_cached_views_logs_its_epochs_and_scores(split, images, tmp_path):
    """Chapter 04's candidate B in small: two views of the activations, ``fit_with_callbacks``, ``top_scores``."""
    from cxr_utils.models import top_scores
    from cxr_utils.training import CachedBatches, fit_with_callbacks

    activations = bottom_activations(split, images, progress=False)
    labels = np.array([0, 1, 0, 1, 0, 1])
    classifier = compile_binary(build_top_classifier(split), learning_rate=3e-4)
    views = CachedBatches(np.concatenate([activations] * 2), np.tile(labels, 2), 4, shuffle=True, seed=0)
    validation = CachedBatches(activations, labels, 8)
    history = fit_with_callbacks(classifier, views, validation, run_dir=tmp_path, epochs=2, patience=3)
    assert len(history) == 2 and (tmp_path / "history.csv").exists()
    scores = top_scores(classifier, activations)
    assert scores.shape == (6,) and np.all((scores >= 0) & (scores <= 1))


def test_logistic_head_picks_c_on_validation():
    from cxr_utils.models import fit_logistic_head

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    features = rng.normal(size=(200, 5)) + y[:, None] * np.array([2.0, 0, 0, 0, 0])
    head = fit_logistic_head(features[:120], y[:120], features[120:], y[120:], Cs=(0.001, 1.0))
    assert set(head.validation_auc_by_c) == {0.001, 1.0}
    assert head.validation_auc_by_c[head.C] == max(head.validation_auc_by_c.values())
    assert head.predict_proba(features[120:]).shape == (80, 2)
