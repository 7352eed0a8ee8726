"""Grad-CAM: where in an image a convolutional model looked when it scored PNEUMONIA.

Grad-CAM (Selvaraju et al., ICCV 2017) weights each channel of a convolutional
layer's output by the mean gradient of the class score over that channel, sums
the weighted channels, keeps the positive part and upsamples the map to the
input size. This module computes it for any Keras model whose output is the
probability of PNEUMONIA, including models with nested sub-models such as the
transfer models of chapter 04 (preprocessing -> frozen bottom -> fine-tuned top
-> head):

- :func:`find_last_conv_layer` the path to the last layer with a spatial
  (4-D) output, looking inside nested models;
- :func:`grad_cam_batch` the core of the method for one batch, written out with
  ``GradientTape`` in chapter 05 (``notebooks/05_error_analysis.ipynb``) and saved here;
- :func:`grad_cam` heatmaps in 0..1, shape ``(n, height, width)``, for any model.

Where a heatmap's heat lies (the corners, the border, the lung fields), and covering those
regions to test what the heat hints at, are in :mod:`cxr_utils.explain`.

The class score is the logit (the input of a final sigmoid ``Dense`` layer)
where the model ends with one: gradients of a saturated probability vanish.
Gradients need the TensorFlow backend (the course's default).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from PIL import Image

__all__ = [
    "find_last_conv_layer",
    "grad_cam_batch",
    "grad_cam",
    "CORNERS",
    "OCCLUDED_REGIONS",
    "occlude",
    "heatmap_regions",
]


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
    """The path of layer names to the last layer with a 4-D ``(batch, h, w, c)`` output.

    Pooling and dropout layers are passed over, so for the course's CNN this is the
    activation of its last convolution (before the last max pooling).

    Nested models are searched from the end, so for a transfer model the path runs
    through the classifier and the backbone's top to its last activation, e.g.
    ``["MobileNetV2_finetuned_top", "top_block_13_expand", "out_relu"]``.

    Returns
    -------
    list of str
        Layer names, outermost first; ``model.get_layer(path[0]).get_layer(path[1])...``
        is the layer.

    Raises
    ------
    ValueError
        If the model has no layer with a 4-D output.
    """
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
    """A function ``x -> (activations at path, class score)``, and whether the score is a logit.

    Built once per :func:`grad_cam` call. Where the layer sits directly in ``model``, it
    is a two-output view of the model's own graph; where it sits in a nested model,
    ``model`` runs as the chain of its layers, with the nested one replaced by its own
    forward function.
    """
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

    ``forward(images)`` returns ``(features, scores)``: the feature maps of a convolutional
    layer ``(n, h, w, c)`` and the class score computed from them ``(n, 1)`` (a logit, so
    that its gradient does not vanish). Each channel is weighted by the mean gradient of
    the score over the map, the weighted channels are summed, and the positive part is
    kept (the evidence *for* ``target``, "PNEUMONIA" or "NORMAL"). Returns ``(n, h, w)``
    float32 maps, each divided by its maximum (an all-zero map stays zero).
    """
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
    """Grad-CAM heatmaps of a binary (PNEUMONIA probability) Keras model.

    Parameters
    ----------
    model : keras.Model
        Output ``(batch, 1)``: the probability of PNEUMONIA. Nested sub-models are
        allowed; a model that contains the chosen layer inside a nested model must
        otherwise be a chain of layers (as :func:`cxr_utils.models.image_model`
        and :func:`cxr_utils.models.build_cnn` are), which is checked.
    images : numpy.ndarray
        Shape ``(n, height, width, channels)``, the model's input (0..255).
    layer : str or sequence of str, optional
        The convolutional layer: a name in ``model``, or a path of names into nested
        models. Default: :func:`find_last_conv_layer`.
    target : {"PNEUMONIA", "NORMAL"}
        Explain the PNEUMONIA score, or its opposite (the evidence for NORMAL).
    batch_size : int
        Images per gradient computation.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, height, width)``, float32 in 0..1: each map divided by its own
        maximum (an all-zero map stays zero: no positive evidence at that layer).

    Raises
    ------
    ValueError
        For a wrong image shape, an unknown target or layer, or a model that cannot
        be run as a chain around a nested layer.
    NotImplementedError
        With a Keras backend other than TensorFlow.
    """
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
    """A copy of ``images`` with the four corner squares, or the outer border band, set to one grey level.

    Side markers and burned-in text sit there: if a model's scores move when they are
    covered, the scores used what was there. The corner squares are those
    :func:`heatmap_regions` measures (with ``corner=size``).

    Parameters
    ----------
    images : numpy.ndarray
        Shape ``(n, height, width)`` or ``(n, height, width, channels)``, any dtype (e.g. the
        image cache's uint8 in 0..255).
    region : {"corners", "border"}
        The four squares of side ``size`` (a fraction of each side) in the image's corners, or
        the band ``size`` of each side wide along all four edges.
    size : float
        In ``(0, 0.5)``.
    fill : float, optional
        The grey level written (in the images' units). Default: each image's median over the
        pixels left visible, so that the covered part carries no structure and no new
        brightness.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``images``; ``images`` is not changed.

    Raises
    ------
    ValueError
        For an image array that is not 3-D or 4-D, an unknown ``region`` or a ``size`` out of range.
    """
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
    """Where each heatmap's evidence lies: the corners and the outer border, or the lung fields.

    Side markers (the radiographer's lead *R* or *L*) and burned-in text sit near the edges
    of a film, in any corner or along a side; the lung fields fill the inside, either side of
    the mediastinum (heart, great vessels, spine) down the middle. For each map this measures
    the mean heat in its hottest corner square (of ``corners``) against the mean heat in the
    lung fields (inside the border, without a central band), the share of the map's mass in
    the outer border beside the share of the image the border covers (what a uniform map
    would put there), and the region where the peak lies. The regions are fixed fractions of
    the image, not segmented anatomy.

    Parameters
    ----------
    heatmaps : numpy.ndarray
        Shape ``(n, height, width)``, non-negative (e.g. from :func:`cxr_utils.explain.grad_cam`).
    border : float
        Width of the outer border as a fraction of each side, in ``(0, 0.5)``; the centre is
        the rest.
    corner : float
        Side of each corner square as a fraction of each side, in ``(0, 0.5]``.
    corners : sequence of str
        The corners measured, of "top left", "top right", "bottom left" and "bottom right"
        (as the image is shown). Default: all four.
    mediastinum : float
        Width of the central band left out of the lung fields, as a fraction of the width, in ``[0, 1)``.

    Returns
    -------
    pandas.DataFrame
        One row per map: ``corner_heat`` (mean of the map in its hottest corner square, 0..1
        for maps in 0..1), ``hottest_corner`` (which of ``corners``), ``lung_heat`` (mean in the
        lung fields), ``corner_to_lungs`` (their ratio; NaN where the lung fields are all
        zero), ``border_share`` (fraction of the map's mass in the border, 0..1; NaN for an
        all-zero map), ``border_area`` (fraction of the image the border covers),
        ``peak_region`` (where the map's maximum lies: the name of one of ``corners``, else
        "border", "lung fields" or "mediastinum"; "none" for an all-zero map), and the
        booleans ``peak_in_border`` (anywhere in the border, corners included) and
        ``peak_in_corners`` (in one of ``corners``).

    Raises
    ------
    ValueError
        For maps that are not 3-D or have negative values, fractions out of range, or an
        unknown or empty ``corners``.
    """
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
