"""The CNN trained from scratch, the course's custom layers, and how every model is compiled and loaded.

Every model takes ``(size, size, channels)`` float inputs in 0..255 (what
:class:`cxr_utils.pipeline.CachedBatches` yields) and outputs one probability of
PNEUMONIA. The custom layers (:class:`PerImageStandardization`,
:class:`BackbonePreprocessing`) are registered with Keras under ``cxr_utils>``, so a saved
model finds them once this module is imported. :func:`build_cnn` and :func:`compile_binary`
are written out in chapter 03 (``notebooks/03_cnn_from_scratch.ipynb``) and saved here with
the same code (the chapter keeps the first line of their docstrings).
"""

from __future__ import annotations

import os
import re

import keras
import numpy as np

from .weights import preprocess_function

__all__ = [
    "PerImageStandardization",
    "BackbonePreprocessing",
    "ModelLoadError",
    "build_cnn",
    "compile_binary",
    "multiply_adds",
    "load_model",
]


@keras.saving.register_keras_serializable(package="cxr_utils")
class PerImageStandardization(keras.layers.Layer):
    """Scale each image to zero mean and unit standard deviation over its pixels.

    Removes differences of overall brightness and contrast between images (exposure,
    scanner, export settings), so the network sees anatomy rather than acquisition.
    Input and output shape ``(batch, height, width, channels)``.
    """

    def __init__(self, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs):
        mean = keras.ops.mean(inputs, axis=(1, 2, 3), keepdims=True)
        std = keras.ops.std(inputs, axis=(1, 2, 3), keepdims=True)
        return (inputs - mean) / (std + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="cxr_utils")
class BackbonePreprocessing(keras.layers.Layer):
    """A backbone's ``preprocess_input`` as a layer: RGB 0..255 in, the backbone's range out."""

    def __init__(self, architecture: str, **kwargs):
        super().__init__(**kwargs)
        self.architecture = architecture

    def call(self, inputs):
        return preprocess_function(self.architecture)(inputs)

    def get_config(self):
        return {**super().get_config(), "architecture": self.architecture}


# Saved from notebooks/03_cnn_from_scratch.ipynb: the chapter writes it out; keep both copies' code identical.
def build_cnn(
    input_size: int = 128,
    *,
    channels: int = 1,
    filters: tuple[int, ...] = (16, 32, 64, 128),
    convs_per_block: int = 2,
    dropout: float = 0.5,
    batchnorm_momentum: float = 0.99,
    standardize: bool = True,
    augmentation: keras.Layer | None = None,
    name: str = "scratch_cnn",
) -> keras.Model:
    """A small VGG-style CNN: blocks of 3x3 convolutions, batch norm, ReLU and max pooling.

    Input ``(batch, input_size, input_size, channels)`` in 0..255; output ``(batch, 1)``,
    the probability of PNEUMONIA. Each entry of ``filters`` is a block that halves the
    resolution (the first block has one convolution, the others ``convs_per_block``).
    ``batchnorm_momentum`` is how much of its running statistics batch normalization keeps
    per step. ``standardize`` scales each image to zero mean and unit variance instead of
    0..255 to 0..1. ``augmentation`` runs first, in training only.
    """
    inputs = keras.Input((input_size, input_size, channels), name="image")
    x = augmentation(inputs) if augmentation is not None else inputs
    if standardize:
        x = PerImageStandardization(name="standardize")(x)
    else:
        x = keras.layers.Rescaling(1 / 255.0, name="to_unit_range")(x)
    for block, width in enumerate(filters):
        for _ in range(1 if block == 0 else convs_per_block):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization(momentum=batchnorm_momentum)(x)
            x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="pneumonia")(x)
    return keras.Model(inputs, outputs, name=name)


# Saved from notebooks/03_cnn_from_scratch.ipynb: the chapter writes it out; keep both copies' code identical.
def compile_binary(
    model: keras.Model,
    learning_rate: float = 1e-3,
    label_smoothing: float = 0.0,
    ema_momentum: float | None = None,
) -> keras.Model:
    """Compile for NORMAL/PNEUMONIA: Adam, binary cross-entropy, ROC AUC and accuracy.

    The ROC AUC metric is named ``auc`` (``val_auc`` on validation data): early stopping
    and checkpoints (:func:`cxr_utils.training.fit_with_callbacks`) watch it. With ``ema_momentum``
    (e.g. 0.99) the optimizer also keeps an exponential moving average of the weights
    (Polyak averaging), which ``fit`` validates and keeps. Returns ``model``.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate, use_ema=ema_momentum is not None, ema_momentum=ema_momentum or 0.99
        ),
        loss=keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one image's forward pass: convolutions and dense layers, nested models included.

    Counted layer by layer from the built model's output shapes and kernels (a multiply-add
    is two floating-point operations; biases, normalisation and activations are left out).
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += multiply_adds(layer)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            positions = int(np.prod(layer.output.shape[1:-1]))  # output pixels (1 for a dense layer)
            total += positions * int(np.prod(layer.kernel.shape))  # kernel: (k, k, in, out) or (k, k, in, 1)
    return total


def _module_of(path: str, name: str) -> str | None:
    """The module a ``.keras`` file's config says the class ``name`` came from (None if unknown)."""
    import json
    import zipfile

    def walk(node):
        if isinstance(node, dict):
            if name in (node.get("class_name"), node.get("registered_name")) and "module" in node:
                return node["module"]
            node = list(node.values())
        if isinstance(node, list):
            return next((found for item in node if (found := walk(item)) is not None), None)
        return None

    try:
        with zipfile.ZipFile(path) as archive:
            return walk(json.loads(archive.read("config.json")))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


class ModelLoadError(TypeError):
    """A saved model names a custom class (layer, loss, ...) that is not registered in this process."""


def load_model(path: str | os.PathLike, *, custom_objects: dict | None = None, compile: bool = True) -> keras.Model:
    """Load a model the course saved (``runs/<run>/model.keras``), in any Python with ``cxr_utils`` installed.

    The course's custom layers (:class:`PerImageStandardization`,
    :class:`BackbonePreprocessing`) are defined here, so one call is enough
    (``cxr_utils.load_model(path)`` is the same function). Models saved before the layers
    were registered (bare class names) load too.

    Parameters
    ----------
    path : path-like
        A ``.keras`` file.
    custom_objects : dict, optional
        More classes the model needs (a layer of your own, from an exercise), by name.
    compile : bool
        Restore the optimizer, loss and metrics as saved (``False``: for prediction only).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelLoadError
        If the model names a class that is neither the course's nor in ``custom_objects``:
        the message names the class and the module the model says it came from, to import.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no saved model at {path}")
    known = {
        "PerImageStandardization": PerImageStandardization,  # models saved before registration
        "BackbonePreprocessing": BackbonePreprocessing,
        **(custom_objects or {}),
    }
    try:
        return keras.models.load_model(path, custom_objects=known, compile=compile)
    except TypeError as error:
        missing = re.search(r"Could not locate (?:class|function) '([^']+)'", str(error))
        if missing is None:
            raise
        name = missing.group(1)
        module = _module_of(path, name)
        where = f"import {module}" if module else "import the module that defines it"
        raise ModelLoadError(
            f"{path} needs the class {name!r}, which is not registered in this Python: {where} "
            "first, or pass it as load_model(path, custom_objects={...}). The course's own layers need only "
            "cxr_utils.load_model(path)."
        ) from error
