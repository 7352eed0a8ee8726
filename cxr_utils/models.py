"""Model builders: a small CNN trained from scratch.

Every model takes ``(size, size, channels)`` float inputs in 0..255 (what
:class:`cxr_utils.pipeline.CachedBatches` yields) and outputs one probability of
PNEUMONIA.
"""

from __future__ import annotations

import keras

__all__ = ["build_cnn", "compile_binary"]


def build_cnn(
    input_size: int = 128,
    *,
    channels: int = 1,
    filters: tuple[int, ...] = (16, 32, 64, 128),
    convs_per_block: int = 2,
    dropout: float = 0.3,
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
