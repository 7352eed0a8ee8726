"""Model builders: a small CNN trained from scratch.

Every model takes ``(size, size, channels)`` float inputs in 0..255 (what
:class:`cxr_utils.pipeline.CachedBatches` yields) and outputs one probability of
PNEUMONIA.
"""

from __future__ import annotations

import keras

__all__ = ["PerImageStandardization", "build_cnn", "compile_binary"]


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


def build_cnn(
    input_size: int = 128,
    *,
    channels: int = 1,
    filters: tuple[int, ...] = (16, 32, 64, 128),
    convs_per_block: int = 2,
    dropout: float = 0.5,
    standardize: bool = True,
    augmentation: keras.Layer | None = None,
    name: str = "scratch_cnn",
) -> keras.Model:
    """A small VGG-style CNN: blocks of 3x3 convolutions, batch norm, ReLU and max pooling.

    Parameters
    ----------
    input_size : int
        Side of the square input in pixels.
    channels : int
        Input channels (1 for gray).
    filters : tuple of int
        Filters per block; each block halves the resolution.
    convs_per_block : int
        Convolutions per block (the first block always has one, to save time at
        full resolution).
    dropout : float
        Dropout before the output layer.
    standardize : bool
        Standardize each image (:class:`PerImageStandardization`) instead of only
        scaling 0..255 to 0..1.
    augmentation : keras.Layer, optional
        Applied first, in training only (see :func:`cxr_utils.pipeline.augmentation_layers`).

    Returns
    -------
    keras.Model
        Input ``(batch, input_size, input_size, channels)`` in 0..255; output
        ``(batch, 1)``, the probability of PNEUMONIA.
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
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="pneumonia")(x)
    return keras.Model(inputs, outputs, name=name)


def compile_binary(model: keras.Model, learning_rate: float = 1e-3, label_smoothing: float = 0.0) -> keras.Model:
    """Compile for NORMAL/PNEUMONIA: Adam, binary cross-entropy, ROC AUC and accuracy metrics.

    The ROC AUC metric is named ``auc`` (``val_auc`` on validation data), which
    early stopping and checkpoints in :mod:`cxr_utils.training` monitor.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model
