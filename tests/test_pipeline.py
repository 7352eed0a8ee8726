"""Decode-once cache, patient-grouped splits, batches and augmentation."""

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from cxr_utils.cache import _decode_resized, cache_images
from cxr_utils.dataset import index_dataset
from cxr_utils.explore import class_weights, course_splits, patients_in_two_splits


@pytest.fixture(scope="module")
def originals_copy(originals, tmp_path_factory):
    """A private copy of the originals (a test below changes a file)."""
    copy = tmp_path_factory.mktemp("data") / "chest_xray"
    shutil.copytree(originals, copy)
    return copy


def test_cache_is_built_once_then_reused(originals_copy, tmp_path):
    first = cache_images(originals_copy, size=32, cache_dir=tmp_path, progress=False)
    again = cache_images(originals_copy, size=32, cache_dir=tmp_path, progress=False)
    assert first.built and not again.built
    assert first.images.shape == (416, 32, 32) and first.images.dtype == np.uint8
    assert again.path == first.path and again.index["path"].tolist() == first.index["path"].tolist()
    row = 17
    expected = _decode_resized(originals_copy / first.index.loc[row, "path"], 32, "squash")
    np.testing.assert_array_equal(again.images[row], expected)
    assert first.labels.sum() == (first.index["label"] == "PNEUMONIA").sum() == 293
    paths = first.index["path"].iloc[[5, 0, 17]]
    np.testing.assert_array_equal(first.positions(paths), [5, 0, 17])
    with pytest.raises(KeyError, match="1 of 2 paths are not in this cache"):
        first.positions([paths.iloc[0], "test/NORMAL/not-here.jpeg"])


def test_cache_is_rebuilt_when_settings_or_files_change(originals_copy, tmp_path):
    base = cache_images(originals_copy, size=32, cache_dir=tmp_path, progress=False)
    padded = cache_images(originals_copy, size=32, policy="pad", cache_dir=tmp_path, progress=False)
    bigger = cache_images(originals_copy, size=40, cache_dir=tmp_path, progress=False)
    assert padded.built and bigger.built and len({base.path, padded.path, bigger.path}) == 3
    touched = originals_copy / base.index.loc[0, "path"]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    # a new date, the same bytes: the same pixels (a change of content is tests/test_faults.py, row 5)
    assert not cache_images(originals_copy, size=32, cache_dir=tmp_path, progress=False).built


def test_unreadable_images_are_left_out_and_counted(originals_copy, tmp_path, capsys):
    dataset = index_dataset(originals_copy, progress=False)
    index = dataset.table
    index.loc[3, "problem"] = "truncated: pretend"
    cache = cache_images(dataset, size=16, cache_dir=tmp_path, progress=False)
    assert len(cache.index) == 415 and index.loc[3, "path"] not in set(cache.index["path"])
    assert "Leaving out 1 unreadable image(s)" in capsys.readouterr().out


def test_course_splits_group_patients_on_the_real_data(resized_224):
    index = index_dataset(resized_224, read_headers=False, progress=False).table
    splits = course_splits(index, seed=0)
    assert patients_in_two_splits(index, splits) == []
    assert (splits[index["split"] == "test"] == "test").all()
    assert set(splits[index["split"] != "test"]) == {"train", "validation"}
    validation = splits == "validation"
    share = validation.sum() / (index["split"] != "test").sum()
    assert 0.15 < share < 0.25
    pneumonia_share = (index.loc[validation, "label"] == "PNEUMONIA").mean()
    pool_share = (index.loc[index["split"] != "test", "label"] == "PNEUMONIA").mean()
    assert abs(pneumonia_share - pool_share) < 0.03  # stratified
    assert course_splits(index, seed=0).equals(splits)
    assert not course_splits(index, seed=1).equals(splits)


def test_course_splits_keep_a_patients_images_together():
    index = pd.DataFrame(
        {
            "split": ["train"] * 12 + ["test"] * 2,
            "label": ["NORMAL", "PNEUMONIA"] * 7,
            "patient_id": [f"p{i // 2}" for i in range(12)] + ["q1", "q2"],
        }
    )
    splits = course_splits(index, validation_fraction=0.5, seed=3)
    assert patients_in_two_splits(index, splits) == []
    assert splits.iloc[-2:].tolist() == ["test", "test"]
    with pytest.raises(ValueError, match="validation_fraction"):
        course_splits(index, validation_fraction=0.9)


def test_class_weights_balance_the_loss():
    weights = class_weights(np.array([0, 1, 1, 1]))
    assert weights == {0: 2.0, 1: pytest.approx(2 / 3)}
    assert weights[0] * 1 == pytest.approx(weights[1] * 3)


def test_batches_shapes_order_and_shuffling():
    from cxr_utils.training import CachedBatches

    images = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4)
    labels = np.array([0, 1] * 5)
    ordered = CachedBatches(images, labels, batch_size=4)
    assert len(ordered) == 3
    x, y = ordered[2]
    assert x.shape == (2, 4, 4, 1) and x.dtype == np.float32 and y.tolist() == [0, 1]
    np.testing.assert_array_equal(x[0, ..., 0], images[8])
    rgb = CachedBatches(images, labels, batch_size=4, channels=3)[0][0]
    assert rgb.shape == (4, 4, 4, 3) and (rgb[..., 0] == rgb[..., 2]).all()
    shuffled = CachedBatches(images, labels, batch_size=10, shuffle=True, seed=1)
    first = shuffled[0][0][:, 0, 0, 0].tolist()
    shuffled.on_epoch_end()
    second = shuffled[0][0][:, 0, 0, 0].tolist()
    assert sorted(first) == sorted(second) == sorted(images[:, 0, 0].tolist()) and first != second
    again = CachedBatches(images, labels, batch_size=10, shuffle=True, seed=1)
    assert again[0][0][:, 0, 0, 0].tolist() == first
    with pytest.raises(ValueError, match="labels"):
        CachedBatches(images, labels[:3])


def test_augmentation_only_in_training():
    from cxr_utils.training import augmentation_layers

    augment = augmentation_layers(seed=0)
    batch = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(augment(batch, training=False)), batch)
    changed = np.asarray(augment(batch, training=True))
    assert changed.shape == batch.shape and not np.allclose(changed, batch)
    assert "RandomFlip" not in [type(layer).__name__ for layer in augment.layers]


def test_jpeg_recompression_degrades_with_lower_quality(resized_224):
    from PIL import Image

    from cxr_utils.training import recompress_jpeg

    paths = sorted((resized_224 / "test" / "NORMAL").glob("*.jpeg"))[:6]
    images = np.stack([np.asarray(Image.open(p).convert("L")) for p in paths])
    errors = [np.abs(recompress_jpeg(images, q).astype(int) - images).mean() for q in (90, 50, 10)]
    assert 0 < errors[0] < errors[1] < errors[2]  # lower quality, larger artefacts
    assert recompress_jpeg(images, 50).shape == images.shape and recompress_jpeg(images, 50).dtype == np.uint8
    varied = recompress_jpeg(images, np.array([10, 30, 50, 70, 90, 95]))  # a quality per image
    assert all(np.array_equal(varied[i], recompress_jpeg(images[i : i + 1], q)[0]) for i, q in ((0, 10), (4, 90)))
    with pytest.raises(ValueError):
        recompress_jpeg(images, 0)
    with pytest.raises(ValueError):
        recompress_jpeg(images.astype(np.float32), 50)


def test_predict_batches_pads_the_last_batch_and_matches_predict():
    import keras

    from cxr_utils.training import CachedBatches, predict_batches

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")]
    )
    images = np.random.default_rng(0).integers(0, 256, (70, 8, 8), dtype=np.uint8)
    batches = CachedBatches(images, np.zeros(70), 32)
    got = predict_batches(model, batches)
    assert got.shape == (70,)
    np.testing.assert_allclose(got, model.predict(batches, verbose=0).reshape(-1), rtol=1e-5, atol=1e-6)
