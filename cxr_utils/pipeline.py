"""Batches for training and evaluation, from the decoded-image cache, and augmentation.

Batches come from a :class:`keras.utils.PyDataset` over the cached uint8 arrays, so
the same code runs with every Keras backend (TensorFlow here; JAX or PyTorch on a GPU
machine without TensorFlow). Pixel values stay in 0..255 (float32); each model
rescales them the way it needs (a ``Rescaling`` layer, or a backbone's own
``preprocess_input``).

Augmentation is a block of Keras preprocessing layers placed at the start of the
model: Keras runs them when training and skips them at inference, so validation and
test images are never altered.
"""

from __future__ import annotations

import math

import keras
import numpy as np

__all__ = ["CachedBatches", "augmentation_layers"]


class CachedBatches(keras.utils.PyDataset):
    """Batches of cached images and labels, optionally reshuffled every epoch.

    Parameters
    ----------
    images : numpy.ndarray
        Shape ``(n, size, size)``, dtype ``uint8`` (e.g. ``ImageCache.images``, a
        memory map, or a subset of it); or shape ``(n, h, w, c)`` of any dtype (e.g.
        cached backbone activations), served as float32 unchanged.
    labels : numpy.ndarray
        Shape ``(n,)``: 0 NORMAL, 1 PNEUMONIA.
    batch_size : int
    shuffle : bool
        Draw a new order every epoch (training); keep the given order otherwise.
    seed : int
        Seed of the shuffling: the same seed gives the same sequence of epochs.
    channels : {1, 3}
        For gray images: 3 repeats the gray channel for ImageNet backbones.

    Each item is ``(x, y)``: ``x`` of shape ``(batch, size, size, channels)``,
    float32 in 0..255 (or ``(batch, h, w, c)`` for 4-D inputs); ``y`` of shape
    ``(batch,)``, float32.
    """

    def __init__(self, images, labels, batch_size: int = 32, *, shuffle: bool = False, seed: int = 0,
                 channels: int = 1, **kwargs):
        super().__init__(**kwargs)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.images = np.asarray(images)  # reads a memory map into memory once
        self.labels = np.asarray(labels, dtype=np.float32)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.channels = channels
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(self.images)) if shuffle else np.arange(len(self.images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, number: int):
        rows = self._order[number * self.batch_size : (number + 1) * self.batch_size]
        if self.images.ndim == 4:
            return self.images[rows].astype(np.float32), self.labels[rows]
        batch = self.images[rows].astype(np.float32)[..., None]
        if self.channels == 3:
            batch = np.repeat(batch, 3, axis=-1)
        return batch, self.labels[rows]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(len(self.images))


def augmentation_layers(
    *,
    rotation_degrees: float = 10.0,
    zoom: float = 0.2,
    stretch: float = 0.3,
    translation: float = 0.1,
    brightness: float = 0.2,
    contrast: float = 0.3,
    seed: int = 0,
) -> keras.Sequential:
    """Random small rotations, zoom, shifts, brightness and contrast, for 0..255 inputs.

    No flips: a mirrored chest X-ray puts the heart on the wrong side and mirrors the
    burned-in side markers ("R", "L"), images the model never meets in practice.

    Parameters
    ----------
    rotation_degrees : float
        Up to this many degrees either way.
    zoom, translation : float
        Fractions of the image side.
    stretch : float
        Extra zoom range of the width alone: the aspect ratio changes by up to this
        fraction. Squashing made the aspect ratio a clue to the class (chapter 02:
        PNEUMONIA originals are wider), and random stretching takes that clue away.
    brightness : float
        Up to this fraction of the 0..255 range added or removed.
    contrast : float
        Contrast scaled by a factor in ``[1 - contrast, 1 + contrast]``.

    Returns
    -------
    keras.Sequential
        Active only when called with ``training=True`` (as ``fit`` does).
    """
    return keras.Sequential(
        [
            keras.layers.RandomRotation(rotation_degrees / 360.0, fill_mode="constant", seed=seed),
            keras.layers.RandomZoom(
                height_factor=(-zoom, zoom),
                width_factor=(-zoom - stretch, zoom + stretch) if stretch else None,
                fill_mode="constant",
                seed=seed + 1,
            ),
            keras.layers.RandomTranslation(translation, translation, fill_mode="constant", seed=seed + 2),
            keras.layers.RandomBrightness(brightness, value_range=(0, 255), seed=seed + 3),
            keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seed + 4),
        ],
        name="augmentation",
    )
