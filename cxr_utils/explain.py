"""Grad-CAM (nested models included), where a heatmap's heat lies, and occlusion. Gradients need TensorFlow."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from PIL import Image

__all__ = ["find_last_conv_layer", "grad_cam", "occlude", "heatmap_regions"]


#: Layers passed over when looking for the last convolutional layer: pooling halves the
#: map's resolution and dropout changes nothing at inference.
_SKIPPED = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
)


def _is_model(layer: keras.Layer) -> bool:
    return isinstance(layer, keras.Model)


def find_last_conv_layer(model: keras.Model) -> list[str]:
    """The path of layer names, outermost first, to the last layer with a 4-D output; ValueError if none."""
    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if _is_model(layer):
            try:
                return [layer.name, *find_last_conv_layer(layer)]
            except ValueError:
                continue
        if isinstance(layer, _SKIPPED):
            continue
        shape = getattr(layer, "output", None)
        if shape is not None and len(shape.shape) == 4:
            return [layer.name]
    raise ValueError(f"model {model.name!r} has no layer with a 4-D (batch, height, width, channels) output")


def _linear_part(dense: keras.layers.Dense, x):
    """The pre-activation of a Dense layer: ``x @ kernel + bias``."""
    z = keras.ops.matmul(x, dense.kernel)
    return z + dense.bias if dense.use_bias else z


def _is_sigmoid_dense(layer: keras.Layer) -> bool:
    return isinstance(layer, keras.layers.Dense) and layer.activation is keras.activations.sigmoid


def _build_forward(model: keras.Model, path: Sequence[str], logits: bool):
    """``x -> (activations at path, class score)``, and whether the score is a logit."""
    if len(path) == 1:
        layer = model.get_layer(path[0])
        last = model.layers[-1]
        if layer is last:  # e.g. a backbone's top, which ends in its last activation

            def features_only(x):
                features = model(x, training=False)
                return features, features

            return features_only, False
        if logits and _is_sigmoid_dense(last):
            probe = keras.Model(model.inputs, [layer.output, last.input])

            def to_logit(x):
                features, hidden = probe(x, training=False)
                return features, _linear_part(last, hidden)

            return to_logit, True
        probe = keras.Model(model.inputs, [layer.output, model.outputs[0]])
        return (lambda x: probe(x, training=False)), False
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    steps, is_logit = [], False
    for number, layer in enumerate(layers):
        last = number == len(layers) - 1
        if layer.name == path[0]:
            nested, is_logit = _build_forward(layer, path[1:], logits and last)
            steps.append(("nested", nested))
        elif last and logits and _is_sigmoid_dense(layer):
            steps.append(("logit", layer))
            is_logit = True
        else:
            steps.append(("layer", layer))
            is_logit = False

    def chain(x):
        features = None
        for kind, step in steps:
            if kind == "nested":
                features, x = step(x)
            elif kind == "logit":
                x = _linear_part(step, x)
            else:
                x = step(x, training=False)
        return features, x

    return chain, is_logit


# Saved from notebooks/05_error_analysis.ipynb: the chapter writes it out; keep both copies' code identical.
def grad_cam_batch(forward, images, target: str = "PNEUMONIA") -> np.ndarray:
    """Grad-CAM maps of one batch, at the resolution of the feature maps.
    ``forward(images)`` gives ``(features (n, h, w, c), logits (n, 1))``; returns ``(n, h, w)`` float32, the positive
    evidence for ``target`` ("PNEUMONIA" or "NORMAL"), each map divided by its maximum."""
    import tensorflow as tf  # gradients of any Python function: TensorFlow's GradientTape

    images = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        features, scores = forward(images)
        evidence = scores[:, 0] if target == "PNEUMONIA" else -scores[:, 0]
    gradients = tape.gradient(evidence, features)  # (n, h, w, c)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)  # (n, 1, 1, c)
    cam = tf.nn.relu(tf.reduce_sum(channel_weights * features, axis=-1)).numpy()  # (n, h, w)
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)


def _resize_maps(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.stack(
        [
            np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize((width, height), Image.BILINEAR))
            for m in maps
        ]
    )


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    *,
    layer: str | Sequence[str] | None = None,
    target: str = "PNEUMONIA",
    batch_size: int = 16,
) -> np.ndarray:
    """Grad-CAM heatmaps ``(n, h, w)`` float32 in 0..1 of ``images`` ``(n, h, w, c)`` in 0..255; ``layer`` a name or a
    path into nested models (default :func:`find_last_conv_layer`). NotImplementedError off TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        raise NotImplementedError(
            f"grad_cam needs the TensorFlow backend (gradients through tf.GradientTape); "
            f"this process runs Keras on {keras.backend.backend()!r}"
        )
    if target not in ("PNEUMONIA", "NORMAL"):
        raise ValueError(f"target must be 'PNEUMONIA' or 'NORMAL', got {target!r}")
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (n, height, width, channels), got {images.shape}")
    path = list(find_last_conv_layer(model) if layer is None else [layer] if isinstance(layer, str) else layer)
    node = model
    for name in path:
        node = node.get_layer(name)  # raises ValueError for an unknown name
    forward, is_logit = _build_forward(model, path, logits=True)
    _check_chain(model, images[:batch_size], forward, is_logit)
    maps = [
        grad_cam_batch(forward, images[start : start + batch_size], target)
        for start in range(0, len(images), batch_size)
    ]
    return _resize_maps(np.concatenate(maps), images.shape[1], images.shape[2]).clip(0, 1)


def _check_chain(model: keras.Model, batch: np.ndarray, forward, is_logit: bool) -> None:
    """The (chained) forward pass must give the model's own probabilities."""
    batch = keras.ops.convert_to_tensor(batch)
    expected = keras.ops.convert_to_numpy(model(batch, training=False))[:, 0]
    _, score = forward(batch)
    score = keras.ops.convert_to_numpy(keras.ops.sigmoid(score) if is_logit else score)[:, 0]
    if not np.allclose(expected, score, atol=1e-4):
        raise ValueError(
            f"cannot run {model.name!r} as a chain of layers around the nested layer "
            "(it has branches at the outer level): pass the nested model itself"
        )


#: The corner squares, named as the image is shown.
CORNERS = ("top left", "top right", "bottom left", "bottom right")


#: What :func:`occlude` can cover: the four corner squares, or the outer border band.
OCCLUDED_REGIONS = ("corners", "border")


def _corner_squares(height: int, width: int, corner: float) -> dict[str, tuple[slice, slice]]:
    """The four corner squares, each ``corner`` of each side (at least one pixel), by name."""
    ch, cw = max(1, round(corner * height)), max(1, round(corner * width))
    return {
        "top left": (slice(0, ch), slice(0, cw)),
        "top right": (slice(0, ch), slice(width - cw, width)),
        "bottom left": (slice(height - ch, height), slice(0, cw)),
        "bottom right": (slice(height - ch, height), slice(width - cw, width)),
    }


def _border_mask(height: int, width: int, border: float) -> np.ndarray:
    """``(height, width)`` bool: True in the outer band ``border`` of each side wide (at least one pixel)."""
    bh, bw = max(1, round(border * height)), max(1, round(border * width))
    in_border = np.ones((height, width), dtype=bool)
    in_border[bh : height - bh, bw : width - bw] = False
    return in_border


def occlude(images: np.ndarray, region: str, *, size: float = 0.15, fill: float | None = None) -> np.ndarray:
    """A copy of ``images`` (``(n, h, w)`` or ``(n, h, w, c)``, any dtype) with the four corner squares or the border
    band (``region`` "corners" or "border", ``size`` a fraction of each side in (0, 0.5)) set to ``fill`` (default
    each image's median over the visible pixels). ValueError for another shape, region or size."""
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (n, height, width[, channels]), got {images.shape}")
    if region not in OCCLUDED_REGIONS:
        raise ValueError(f"region must be one of {OCCLUDED_REGIONS}, got {region!r}")
    if not 0 < size < 0.5:
        raise ValueError(f"need 0 < size < 0.5, got {size}")
    height, width = images.shape[1:3]
    if region == "border":
        covered = _border_mask(height, width, size)
    else:
        covered = np.zeros((height, width), dtype=bool)
        for rows, cols in _corner_squares(height, width, size).values():
            covered[rows, cols] = True
    out = images.copy()
    if fill is None:
        levels = np.median(images[:, ~covered].reshape(len(images), -1), axis=1)
        if np.issubdtype(images.dtype, np.integer):
            levels = np.round(levels)
        out[:, covered] = levels.astype(images.dtype).reshape(-1, *([1] * (images.ndim - 2)))
    else:
        out[:, covered] = fill
    return out


def heatmap_regions(
    heatmaps: np.ndarray,
    border: float = 0.15,
    corner: float = 0.15,
    corners: Sequence[str] = CORNERS,
    mediastinum: float = 0.2,
):
    """Where each heatmap ``(n, h, w)`` puts its heat, one row per map: corners, lungs (inside ``border`` without
    the ``mediastinum`` band), border, and where the peak lies. Fractions are of each side."""
    import pandas as pd

    maps = np.asarray(heatmaps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"heatmaps must have shape (n, height, width), got {maps.shape}")
    if (maps < 0).any():
        raise ValueError("heatmaps must be non-negative")
    if not 0 < border < 0.5 or not 0 < corner <= 0.5 or not 0 <= mediastinum < 1:
        raise ValueError(
            f"need 0 < border < 0.5, 0 < corner <= 0.5, 0 <= mediastinum < 1: {border}, {corner}, {mediastinum}"
        )
    if not corners or set(corners) - set(CORNERS):
        raise ValueError(f"corners must be some of {CORNERS}, got {corners!r}")
    height, width = maps.shape[1:]
    in_border = _border_mask(height, width, border)
    squares = {name: square for name, square in _corner_squares(height, width, corner).items() if name in corners}
    in_lungs = ~in_border
    band = round(mediastinum * width / 2)
    in_lungs[:, width // 2 - band : width - width // 2 + band] = False
    # each pixel's region, the corner squares first (they may reach beyond a narrow border)
    region = np.where(in_border, "border", np.where(in_lungs, "lung fields", "mediastinum")).astype(object)
    for name, (rows, cols) in squares.items():
        region[rows, cols] = name
    heat = np.stack([maps[:, rows, cols].mean(axis=(1, 2)) for rows, cols in squares.values()], axis=1)
    corner_heat = heat.max(axis=1)
    lung_heat = maps[:, in_lungs].mean(axis=1)
    total = maps.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        border_share = np.where(total > 0, (maps * in_border).sum(axis=(1, 2)) / total, np.nan)
        ratio = np.where(lung_heat > 0, corner_heat / lung_heat, np.nan)
    peaks = maps.reshape(len(maps), -1).argmax(axis=1)
    peak_rows, peak_cols = np.unravel_index(peaks, (height, width))
    peak_region = np.where(total > 0, region[peak_rows, peak_cols], "none")
    return pd.DataFrame(
        {
            "corner_heat": corner_heat,
            "hottest_corner": np.array(list(squares))[heat.argmax(axis=1)],
            "lung_heat": lung_heat,
            "corner_to_lungs": ratio,
            "border_share": border_share,
            "border_area": in_border.mean(),
            "peak_region": peak_region,
            "peak_in_border": in_border[peak_rows, peak_cols] & (total > 0),
            "peak_in_corners": np.isin(peak_region, list(squares)),
        }
    )
