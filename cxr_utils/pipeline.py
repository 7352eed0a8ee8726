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

import io
import math

import keras
import numpy as np
from PIL import Image

__all__ = [
    "CachedBatches",
    "augmentation_layers",
    "recompress_jpeg",
    "predict_batches",
    "predict_scores",
]


class CachedBatches(keras.utils.PyDataset):
    """Batches of cached images and labels (shape ``(n,)``: 0 NORMAL, 1 PNEUMONIA).

    ``images`` are ``(n, size, size)`` ``uint8`` (``ImageCache.images``, a memory map, or a
    subset of it), or ``(n, h, w, c)`` of any dtype (cached backbone activations), served as
    float32 unchanged. ``shuffle`` draws a new order every epoch (training), seeded by
    ``seed``; ``channels=3`` repeats the gray channel for ImageNet backbones. Each item is
    ``(x, y)``: ``x`` of shape ``(batch, size, size, channels)`` (or ``(batch, h, w, c)``),
    float32 in 0..255; ``y`` of shape ``(batch,)``, float32.
    """

    def __init__(
        self, images, labels, batch_size: int = 32, *, shuffle: bool = False, seed: int = 0, channels: int = 1, **kwargs
    ):
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


# Saved from notebooks/03_cnn_from_scratch.ipynb: the chapter writes it out; keep both copies' code identical.
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
    """Random rotations, zoom, shifts, stretching, brightness and contrast for 0..255 images; no flips.

    Rotations in degrees either way, zoom and shifts in fractions of the side, stretching of
    the width (the aspect ratio changes by up to ``stretch``), brightness as a fraction of
    0..255 and contrast scaled by 1 +- ``contrast``.

    No flips: a mirrored chest X-ray puts the heart on the wrong side and mirrors the
    burned-in side markers ("R", "L"). Returns a ``keras.Sequential`` that acts only when
    called with ``training=True`` (as ``fit`` does).
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


def recompress_jpeg(images: np.ndarray, quality: int | np.ndarray) -> np.ndarray:
    """Gray ``uint8`` images ``(n, h, w)`` encoded as JPEG at ``quality`` and decoded again: same shape and dtype.

    ``quality`` is 1..95 (Pillow's scale), one for all images or one per image. In this dataset
    PNEUMONIA originals carry far fewer bytes per pixel than NORMAL ones (chapter 02), so
    compression artefacts can become a clue to the label: this simulates other compression
    levels, for augmentation and for stress tests.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 of shape (n, h, w), got {images.dtype} {images.shape}")
    qualities = np.broadcast_to(np.asarray(quality, dtype=int), (len(images),))
    if qualities.min(initial=1) < 1 or qualities.max(initial=95) > 95:
        raise ValueError("JPEG quality must be in 1..95")
    out = np.empty_like(images)
    for number, (image, level) in enumerate(zip(images, qualities)):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(level))
        buffer.seek(0)
        out[number] = np.asarray(Image.open(buffer).convert("L"))
    return out


def predict_batches(model: keras.Model, batches: CachedBatches) -> np.ndarray:
    """``model``'s outputs for every batch, flattened to shape ``(n,)`` (float64).

    The last, shorter batch is padded to full size and the padding dropped, so the
    model's predict function is traced for one input shape only (``model.predict``
    retraces for every new batch shape, and TensorFlow warns about it).
    """
    outputs = []
    for number in range(len(batches)):
        x, _ = batches[number]
        short = batches.batch_size - len(x)
        if short > 0:
            x = np.concatenate([x, np.zeros((short, *x.shape[1:]), dtype=x.dtype)])
        result = np.asarray(model.predict_on_batch(x), dtype=np.float64).reshape(len(x), -1)
        outputs.append(result[: len(x) - max(short, 0)])
    return np.concatenate(outputs).reshape(-1)


def predict_scores(model: keras.Model, images: np.ndarray, *, batch_size: int = 64, channels: int = 1) -> np.ndarray:
    """Probabilities of PNEUMONIA for cached images ``(n, size, size)`` uint8: shape ``(n,)``, float64 in 0..1."""
    return predict_batches(model, CachedBatches(images, np.zeros(len(images)), batch_size, channels=channels))
