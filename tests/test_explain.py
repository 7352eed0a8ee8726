"""Grad-CAM: a model that keys on a planted bright square is shown to look at the square."""

import keras
import numpy as np
import pytest

from cxr_utils.explain import find_last_conv_layer, grad_cam
from cxr_utils.models import build_cnn

SIZE, SQUARE = 32, 6


def planted_squares(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise images; the positive half carry a bright square at a random place.

    Returns images ``(n, 32, 32, 1)`` in 0..255, labels ``(n,)`` and the squares' top-left corners ``(n, 2)``.
    """
    rng = np.random.default_rng(seed)
    images = rng.normal(100, 20, (n, SIZE, SIZE, 1)).clip(0, 255)
    labels = np.arange(n) % 2
    corners = rng.integers(2, SIZE - SQUARE - 2, (n, 2))
    for image, label, (row, col) in zip(images, labels, corners):
        if label:
            image[row : row + SQUARE, col : col + SQUARE] = 250
    return images.astype("float32"), labels.astype("float32"), corners


@pytest.fixture(scope="module")
def square_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs, name="square_finder")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    images, labels, _ = planted_squares(512, seed=0)
    model.fit(images, labels, epochs=15, batch_size=32, verbose=0)
    return model


def test_heatmap_peaks_on_the_planted_square(square_model):
    images, labels, corners = planted_squares(40, seed=1)
    scores = square_model.predict(images, verbose=0)[:, 0]
    assert ((scores > 0.5) == labels).mean() == 1.0  # the model learned the square
    assert find_last_conv_layer(square_model) == ["last_conv"]
    positives = labels == 1
    maps = grad_cam(square_model, images[positives])
    assert maps.shape == (positives.sum(), SIZE, SIZE) and maps.min() >= 0 and maps.max() <= 1
    for heatmap, (row, col) in zip(maps, corners[positives]):
        peak_row, peak_col = np.unravel_index(heatmap.argmax(), heatmap.shape)
        assert row - 1 <= peak_row <= row + SQUARE and col - 1 <= peak_col <= col + SQUARE
        inside = heatmap[row : row + SQUARE, col : col + SQUARE].mean()
        assert (
            inside
            > 2
            * np.delete(
                heatmap.ravel(),
                np.ravel_multi_index(np.mgrid[row : row + SQUARE, col : col + SQUARE].reshape(2, -1), heatmap.shape),
            ).mean()
        )


def test_nested_model_gives_the_same_maps_as_the_inner_one(square_model):
    images, _labels, _ = planted_squares(8, seed=2)
    inputs = keras.Input((SIZE, SIZE, 1))
    outer = keras.Model(inputs, square_model(keras.layers.Identity()(inputs)), name="outer")
    assert find_last_conv_layer(outer) == ["square_finder", "last_conv"]
    np.testing.assert_allclose(grad_cam(outer, images), grad_cam(square_model, images), atol=1e-5)


def test_normal_target_is_the_opposite_evidence(square_model):
    images, labels, corners = planted_squares(8, seed=3)
    positive = images[labels == 1][:1]
    pneumonia = grad_cam(square_model, positive)
    normal = grad_cam(square_model, positive, target="NORMAL")
    row, col = corners[labels == 1][0]
    assert (
        normal[0, row : row + SQUARE, col : col + SQUARE].mean()
        < pneumonia[0, row : row + SQUARE, col : col + SQUARE].mean()
    )


def test_course_cnn_and_errors():
    keras.utils.set_random_seed(0)
    model = build_cnn(64, filters=(8, 16))
    path = find_last_conv_layer(model)
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 1)).astype("float32")
    assert grad_cam(model, images).shape == (3, 64, 64)
    assert grad_cam(model, images, layer=path).shape == (3, 64, 64)
    with pytest.raises(ValueError, match="shape"):
        grad_cam(model, images[0])
    with pytest.raises(ValueError):
        grad_cam(model, images, layer="no_such_layer")
    with pytest.raises(ValueError, match="target"):
        grad_cam(model, images, target="virus")
    dense_only = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    with pytest.raises(ValueError, match="4-D"):
        find_last_conv_layer(dense_only)


def test_transfer_image_model(keras_weights):
    from cxr_utils.transfer import build_top_classifier, image_model, split_backbone

    split = split_backbone("MobileNetV2", input_size=96, alpha=0.35, weights_dir=keras_weights)
    model = image_model(split, build_top_classifier(split))
    path = find_last_conv_layer(model)
    assert path[-1] == "out_relu" and len(path) == 3
    images = np.random.default_rng(0).integers(0, 256, (2, 96, 96, 3)).astype("float32")
    maps = grad_cam(model, images)
    assert maps.shape == (2, 96, 96) and np.isfinite(maps).all()


def test_heatmap_regions_measures_corner_and_border_heat():
    from cxr_utils.explain import CORNERS, heatmap_regions

    maps = np.zeros((3, 20, 20))
    maps[0, 1, 18] = 1.0  # top-right corner: in the border and in a corner
    maps[0, 10, 5] = 0.5  # and some heat in a lung field
    maps[1, 10, 10] = 1.0  # the mediastinum only: no heat in the lungs, nor in the border
    maps[2] = 1.0  # uniform: corners as hot as the lungs, border share equals its area
    regions = heatmap_regions(maps, border=0.15, corner=0.15)
    assert regions["peak_in_border"].tolist() == [True, False, True]
    assert regions["peak_in_corners"].tolist() == [True, False, True]
    assert regions.loc[0, "hottest_corner"] == "top right"
    assert regions.loc[0, "corner_heat"] == pytest.approx(1 / 9)  # one pixel of a 3 x 3 corner
    lungs = 14 * (14 - 4)  # inside the 3-pixel border, without the 4 central columns
    assert regions.loc[0, "lung_heat"] == pytest.approx(0.5 / lungs)
    assert regions.loc[0, "corner_to_lungs"] == pytest.approx((1 / 9) / (0.5 / lungs))
    assert regions.loc[1, "lung_heat"] == 0 and np.isnan(regions.loc[1, "corner_to_lungs"])
    assert regions.loc[0, "border_share"] == pytest.approx(1 / 1.5)
    assert regions.loc[1, "corner_heat"] == 0 and regions.loc[1, "border_share"] == 0
    assert regions.loc[2, "corner_to_lungs"] == pytest.approx(1.0)
    assert regions.loc[2, "border_share"] == pytest.approx(1 - (14 / 20) ** 2)
    assert regions.loc[2, "border_share"] == pytest.approx(regions.loc[2, "border_area"])
    bottom = np.zeros((1, 20, 20))
    bottom[0, 19, 0] = 1.0
    assert heatmap_regions(bottom).loc[0, "corner_heat"] == 0  # the top corners by default
    assert not heatmap_regions(bottom).loc[0, "peak_in_corners"]
    assert heatmap_regions(bottom, corners=CORNERS).loc[0, "hottest_corner"] == "bottom left"
    with pytest.raises(ValueError):
        heatmap_regions(bottom, corners=("middle",))
    empty = heatmap_regions(np.zeros((1, 8, 8)))
    assert np.isnan(empty.loc[0, "border_share"]) and np.isnan(empty.loc[0, "corner_to_lungs"])
    assert not empty.loc[0, "peak_in_border"]
    with pytest.raises(ValueError):
        heatmap_regions(np.zeros((8, 8)))
    with pytest.raises(ValueError):
        heatmap_regions(-np.ones((1, 8, 8)))
    with pytest.raises(ValueError):
        heatmap_regions(np.zeros((1, 8, 8)), border=0.6)
