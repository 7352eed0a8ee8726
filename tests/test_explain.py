"""Grad-CAM: a model that keys on a planted bright square is shown to look at the square; the film's regions
(``cxr_utils.explain``): where a heatmap's heat lies, and covering the corners or the border."""

import keras
import numpy as np
import pytest

from cxr_utils.explain import find_last_conv_layer, grad_cam

from helpers import build_cnn

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
    from cxr_course.chapters import split_backbone
    from cxr_utils.models import image_model

    from helpers import build_top_classifier

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
    assert regions["peak_region"].tolist() == ["top right", "mediastinum", "top left"]  # ties: the first pixel
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
    bottom = np.zeros((4, 20, 20))
    bottom[0, 19, 0] = 1.0  # bottom-left corner
    bottom[1, 19, 19] = 1.0  # bottom-right corner
    bottom[2, 10, 0] = 1.0  # the left edge, between the corners
    bottom[3, 10, 4] = 1.0  # a lung field
    every = heatmap_regions(bottom)  # all four corners by default
    assert every["hottest_corner"].tolist()[:2] == ["bottom left", "bottom right"]
    assert every["peak_region"].tolist() == ["bottom left", "bottom right", "border", "lung fields"]
    assert every["peak_in_corners"].tolist() == [True, True, False, False]
    assert every["peak_in_border"].tolist() == [True, True, True, False]
    assert every.loc[1, "corner_heat"] == pytest.approx(1 / 9)
    top = heatmap_regions(bottom, corners=("top left", "top right"))  # only the corners asked for
    assert top.loc[0, "corner_heat"] == 0 and not top.loc[0, "peak_in_corners"]
    assert top.loc[0, "peak_region"] == "border"  # a corner not measured is part of the border
    assert set(heatmap_regions(bottom, corners=CORNERS)["hottest_corner"]) <= set(CORNERS)
    with pytest.raises(ValueError):
        heatmap_regions(bottom, corners=("middle",))
    empty = heatmap_regions(np.zeros((1, 8, 8)))
    assert np.isnan(empty.loc[0, "border_share"]) and np.isnan(empty.loc[0, "corner_to_lungs"])
    assert not empty.loc[0, "peak_in_border"] and not empty.loc[0, "peak_in_corners"]
    assert empty.loc[0, "peak_region"] == "none"
    with pytest.raises(ValueError):
        heatmap_regions(np.zeros((8, 8)))
    with pytest.raises(ValueError):
        heatmap_regions(-np.ones((1, 8, 8)))
    with pytest.raises(ValueError):
        heatmap_regions(np.zeros((1, 8, 8)), border=0.6)


def test_heatmap_regions_corner_wider_than_border():
    from cxr_utils.explain import heatmap_regions

    maps = np.zeros((1, 20, 20))
    maps[0, 4, 4] = 1.0  # inside a 5-pixel corner square, beyond a 2-pixel border
    regions = heatmap_regions(maps, border=0.1, corner=0.25)
    assert regions.loc[0, "peak_region"] == "top left" and not regions.loc[0, "peak_in_border"]


def test_occlude_covers_the_burned_in_text_of_a_real_film(resized_224):
    from PIL import Image

    from cxr_utils.explain import occlude

    # a NORMAL2- test film with burned-in text ("KV59") in its bottom-right corner, 224 x 224
    film = Image.open(resized_224 / "test" / "NORMAL" / "NORMAL2-IM-0233-0001.jpeg").convert("L")
    images = np.asarray(film)[None]
    before = images.copy()
    side = round(0.15 * 224)  # 34 pixels
    text = images[0, 224 - side :, 224 - side :]
    assert text.std() > 10  # the corner holds structure (the text and the film's edge)
    corners = occlude(images, "corners")
    assert corners.shape == images.shape and corners.dtype == np.uint8
    np.testing.assert_array_equal(images, before)  # the input is not changed
    visible = np.ones((224, 224), dtype=bool)
    for rows in (slice(0, side), slice(224 - side, 224)):
        for cols in (slice(0, side), slice(224 - side, 224)):
            visible[rows, cols] = False
    level = round(float(np.median(images[0][visible])))
    assert (corners[0][~visible] == level).all()  # one grey level: the image's median of what is left
    np.testing.assert_array_equal(corners[0][visible], images[0][visible])  # only the corner squares change
    assert corners[0, 224 - side :, 224 - side :].std() == 0  # the text is gone
    band = round(0.1 * 224)
    border = occlude(images, "border", size=0.1, fill=0)
    assert (border[0, :band] == 0).all() and (border[0, :, -band:] == 0).all()
    np.testing.assert_array_equal(border[0, band:-band, band:-band], images[0, band:-band, band:-band])


def test_occlude_shapes_fill_and_errors():
    from cxr_utils.explain import occlude

    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 255, (2, 20, 20, 3)).astype("float32")
    out = occlude(rgb, "border", size=0.1)
    assert out.shape == rgb.shape and out.dtype == np.float32
    for image, original in zip(out, rgb):
        np.testing.assert_array_equal(image[2:18, 2:18], original[2:18, 2:18])
        assert np.unique(image[0]).size == 1  # every channel of the band, one level per image
        assert image[0, 0, 0] == pytest.approx(np.median(original[2:18, 2:18]))
    assert out[0, 0, 0, 0] != out[1, 0, 0, 0]
    tiny = occlude(np.full((1, 4, 4), 9, dtype=np.uint8), "corners", size=0.1, fill=0)
    assert tiny[0].tolist() == [[0, 9, 9, 0], [9, 9, 9, 9], [9, 9, 9, 9], [0, 9, 9, 0]]  # at least one pixel
    with pytest.raises(ValueError, match="region"):
        occlude(rgb, "lungs")
    with pytest.raises(ValueError, match="size"):
        occlude(rgb, "corners", size=0.5)
    with pytest.raises(ValueError, match="shape"):
        occlude(rgb[0, :, :, 0], "corners")
