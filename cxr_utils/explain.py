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
regions to test what the heat hints at, are in :mod:`cxr_utils.regions`.

The class score is the logit (the input of a final sigmoid ``Dense`` layer)
where the model ends with one: gradients of a saturated probability vanish.
Gradients need the TensorFlow backend (the course's default).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from PIL import Image

__all__ = ["find_last_conv_layer", "grad_cam_batch", "grad_cam"]


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
