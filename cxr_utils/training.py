"""Batches from the cache, augmentation, prediction, training with early stopping, checkpoints, log and resume."""

from __future__ import annotations

import io
import math
import os
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from PIL import Image

__all__ = [
    "CachedBatches",
    "augmentation_layers",
    "recompress_jpeg",
    "predict_scores",
    "set_seeds",
    "epoch_progress",
    "read_history",
    "resume_or_start",
    "restore_best",
    "fit_with_callbacks",
]

HISTORY_FILE = "history.csv"
BEST_WEIGHTS_FILE = "best.weights.h5"


class CachedBatches(keras.utils.PyDataset):
    """Batches ``(x, y)`` of cached images (gray repeated to ``channels``; 4-d activations unchanged) as float32 in
    0..255 and labels (0 NORMAL, 1 PNEUMONIA); ``shuffle`` draws a new order every epoch, seeded by ``seed``."""

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
    Rotations in degrees, zoom and shifts in fractions of the side, ``stretch`` of the width, brightness as a fraction
    of 0..255, contrast as a factor 1 +- ``contrast``. Active only with ``training=True`` (as in ``fit``)."""
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
    """Gray uint8 images ``(n, h, w)`` encoded as JPEG at ``quality`` (1..95, scalar or per image), decoded again."""
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
    """A model's outputs for every batch as ``(n,)`` float64; the short last batch padded (one traced shape)."""
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


def set_seeds(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend (weights, dropout, augmentation)."""
    keras.utils.set_random_seed(seed)


def epoch_progress(epochs: int) -> keras.callbacks.Callback:
    """A text progress bar over the epochs of ``model.fit`` (tqdm's Keras callback), to stdout in a notebook."""
    from tqdm.keras import TqdmCallback
    from tqdm.std import tqdm

    return TqdmCallback(
        epochs=epochs, verbose=0, tqdm_class=tqdm, file=sys.stdout if "ipykernel" in sys.modules else sys.stderr
    )


def read_history(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The epochs logged in ``run_dir/history.csv`` (an empty frame when there are none)."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    return pd.read_csv(path)


def resume_or_start(run_dir: str | os.PathLike) -> float | None:
    """Prepare ``run_dir`` for training; return the best validation ROC AUC of an interrupted run to resume, else None
    (a finished run's log and weights are renamed ``previous.*``, never taken for the new run's)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "backup").exists():  # the backup exists only while a run is unfinished
        for name in (HISTORY_FILE, BEST_WEIGHTS_FILE):
            if (run_dir / name).exists():
                os.replace(run_dir / name, run_dir / f"previous.{name}")
    done = read_history(run_dir)  # the epochs an interrupted run finished
    return float(done["val_auc"].max()) if "val_auc" in done and len(done) else None


def restore_best(model: keras.Model, run_dir: str | os.PathLike) -> pd.DataFrame:
    """Give ``model`` the weights of its best epoch (when a checkpoint was saved); the history, one row per epoch."""
    if (Path(run_dir) / BEST_WEIGHTS_FILE).exists():
        model.load_weights(str(Path(run_dir) / BEST_WEIGHTS_FILE))
    return read_history(run_dir)


# Saved from notebooks/03_cnn_from_scratch.ipynb: the chapter writes it out; keep both copies' code identical.
def course_callbacks(
    run_dir: str | os.PathLike,
    *,
    patience: int = 4,
    reduce_lr_patience: int = 2,
    resume_from: float | None = None,
    averaged: bool = False,
) -> list[keras.callbacks.Callback]:
    """The callbacks of the course's training; all watch validation ROC AUC (``val_auc``).
    ``resume_from``: an interrupted run's best ``val_auc`` (None for a new run); ``averaged``: the optimizer keeps a
    moving average of the weights, which is validated and checkpointed."""
    callbacks = [
        # the state after every epoch: a rerun after a crash continues from there
        keras.callbacks.BackupAndRestore(f"{run_dir}/backup", save_freq="epoch", delete_checkpoint=True),
        # halve the learning rate when validation ROC AUC stalls
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_auc", mode="max", factor=0.5, patience=reduce_lr_patience, min_lr=1e-5
        ),
        # the weights of the best epoch so far
        keras.callbacks.ModelCheckpoint(
            f"{run_dir}/best.weights.h5",
            monitor="val_auc",
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=resume_from,
        ),
        # stop when validation ROC AUC has not improved for `patience` epochs
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience, baseline=resume_from),
        # one row per epoch in history.csv
        keras.callbacks.CSVLogger(f"{run_dir}/history.csv", append=True),
    ]
    if averaged:  # swap the averaged weights in for validation and checkpoints (after the backup)
        callbacks.insert(1, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    return callbacks


def fit_with_callbacks(
    model: keras.Model,
    train: keras.utils.PyDataset,
    validation: keras.utils.PyDataset,
    *,
    run_dir: str | os.PathLike,
    epochs: int,
    class_weight: dict[int, float] | None = None,
    patience: int = 4,
    reduce_lr_patience: int = 2,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | str = 0,
) -> pd.DataFrame:
    """``model.fit`` (compiled with an ``auc`` metric) with :func:`course_callbacks`, logged in ``run_dir``; returns the
    history (``epochs`` counts a resumed run's too), the model holding its best epoch's weights."""
    resume_from = resume_or_start(run_dir)  # resume an interrupted run, set a finished one aside
    callbacks = course_callbacks(
        run_dir,
        patience=patience,
        reduce_lr_patience=reduce_lr_patience,
        resume_from=resume_from,
        averaged=model.optimizer.use_ema,
    )
    model.fit(
        train,
        validation_data=validation,
        epochs=epochs,
        class_weight=class_weight,
        callbacks=[*callbacks, epoch_progress(epochs), *(extra_callbacks or [])],
        verbose=verbose,
    )
    return restore_best(model, run_dir)
