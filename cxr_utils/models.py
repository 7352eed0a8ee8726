"""Models (0..255 in, P(PNEUMONIA) out): custom layers, compiling, loading, offline backbones, transfer learning."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from . import _progress
from . import weights_dir as default_weights_dir
from .training import CachedBatches, augmentation_layers, predict_batches

__all__ = [
    "PerImageStandardization",
    "BackbonePreprocessing",
    "compile_binary",
    "multiply_adds",
    "load_model",
    "build_backbone",
    "CANDIDATES",
    "CUT_LAYERS",
    "SplitBackbone",
    "bottom_activations",
    "pooled_features",
    "image_model",
    "fit_logistic_head",
    "top_scores",
]


@keras.saving.register_keras_serializable(package="cxr_utils")
class PerImageStandardization(keras.layers.Layer):
    """Scale each image to zero mean and unit standard deviation over its pixels (``(batch, h, w, c)`` in and out)."""

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
def compile_binary(
    model: keras.Model, learning_rate: float = 1e-3, label_smoothing: float = 0.0, ema_momentum: float | None = None
) -> keras.Model:
    """Compile for NORMAL/PNEUMONIA: Adam, binary cross-entropy, ROC AUC and accuracy.
    The ROC AUC metric is named ``auc`` (``val_auc`` on validation: early stopping and checkpoints watch it). With
    ``ema_momentum`` the optimizer keeps a moving average of the weights, which ``fit`` validates. Returns ``model``."""
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate, use_ema=ema_momentum is not None, ema_momentum=ema_momentum or 0.99
        ),
        loss=keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one image's forward pass through convolutions and dense layers, nested models included."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += multiply_adds(layer)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            positions = int(np.prod(layer.output.shape[1:-1]))  # output pixels (1 for a dense layer)
            total += positions * int(np.prod(layer.kernel.shape))  # kernel: (k, k, in, out) or (k, k, in, 1)
    return total


def load_model(path: str | os.PathLike, *, custom_objects: dict | None = None, compile: bool = True) -> keras.Model:
    """A model the course saved (``runs/<run>/model.keras``), its custom layers known; ``custom_objects`` adds
    classes of your own. Keras's safe mode stays on: a file whose layers hold code (``Lambda``) is refused."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no saved model at {path}")
    known = {"PerImageStandardization": PerImageStandardization, "BackbonePreprocessing": BackbonePreprocessing}
    return keras.models.load_model(path, custom_objects={**known, **(custom_objects or {})}, compile=compile)


class WeightsNotFoundError(FileNotFoundError):
    """No local copy of a backbone's ImageNet weights, and downloading is not allowed."""


def _weights_file_name(architecture: str, alpha: float) -> str:
    """The file Keras downloads for a backbone's ImageNet weights without the top (MobileNetV2 only)."""
    if architecture != "MobileNetV2":
        raise ValueError(f"unknown backbone {architecture!r}: the course uses MobileNetV2")
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_224_no_top.h5"


def _find_weights(architecture: str, alpha: float, weights_dir: str | os.PathLike | None = None) -> Path:
    """The local weights file; WeightsNotFoundError naming it, the folders searched and the fix."""
    name = _weights_file_name(architecture, alpha)
    first = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    folders = [f for f in (first, Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models") if f]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise WeightsNotFoundError(
        f"ImageNet weights for {architecture} (alpha {alpha:g}) not found: no {name} in "
        f"{', '.join(map(str, folders))}. Fix: put that file (as Keras downloads it) in a folder and set "
        "CXR_WEIGHTS_DIR to it, or, on a machine with internet, pass allow_download=True once."
    )


WEIGHTS_HOST = "storage.googleapis.com"  # where keras.applications downloads ImageNet weights from


def _reachable(host: str, port: int = 443, timeout: float = 5.0) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def build_backbone(
    architecture: str = "MobileNetV2",
    *,
    input_size: int = 224,
    alpha: float = 0.5,
    weights_dir: str | os.PathLike | None = None,
    allow_download: bool = False,
) -> keras.Model:
    """MobileNetV2 (width ``alpha``) without its classifier, ImageNet weights from ``weights_dir``, then
    ``$KERAS_HOME/models``; WeightsNotFoundError when none is there and downloading is off or unreachable."""
    try:
        weights = str(_find_weights(architecture, alpha, weights_dir))
    except WeightsNotFoundError as error:
        if not allow_download:
            raise
        if not _reachable(WEIGHTS_HOST):
            raise WeightsNotFoundError(
                f"{error} (Downloading was allowed, but {WEIGHTS_HOST} cannot be reached.)"
            ) from None
        weights = "imagenet"
    return keras.applications.MobileNetV2(
        include_top=False, weights=weights, input_shape=(input_size, input_size, 3), alpha=alpha
    )


def preprocess_function(architecture: str):
    """The backbone's ``preprocess_input`` (RGB 0..255 in, its range out)."""
    if architecture != "MobileNetV2":
        raise ValueError(f"unknown backbone {architecture!r}: the course uses MobileNetV2")
    return keras.applications.mobilenet_v2.preprocess_input


#: Chapter 04's candidates by letter, named as its run folder records them (chapters 05 and 06 read them).
CANDIDATES = {
    "A": "A: frozen features + logistic regression",
    "B": "B: fine-tuned top",
    "C": "C: CNN from scratch (chapter 03)",
    "D": "D: ensemble of B and C",
}

#: Where each architecture is cut by default: the fine-tuned top is what follows.
CUT_LAYERS = {
    "MobileNetV2": "block_12_add"  # top: blocks 13-16 and the last 1x1 convolution (7x7 resolution)
}


@dataclass
class SplitBackbone:
    """A backbone cut in two. ``bottom``: images (preprocessed) -> activations; ``top``: -> feature map."""

    architecture: str
    alpha: float
    input_size: int
    cut_layer: str
    bottom: keras.Model
    top: keras.Model

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """RGB 0..255 float images -> the backbone's input range."""
        return preprocess_function(self.architecture)(images)


def bottom_activations(
    split: SplitBackbone,
    images: np.ndarray,
    *,
    view_seed: int | None = None,
    augmentation_options: dict | None = None,
    batch_size: int = 64,
    progress: bool = True,
    desc: str = "Bottom activations",
) -> np.ndarray:
    """The frozen bottom's float16 activations for cached gray images ``(n, size, size)`` uint8; ``view_seed``: one
    augmented view of each image (with ``augmentation_options``), None: the images as they are."""
    if images.shape[1:] != (split.input_size, split.input_size):
        raise ValueError(f"images are {images.shape[1:]}, the backbone takes {split.input_size}x{split.input_size}")
    augmentation = None
    if view_seed is not None:
        augmentation = augmentation_layers(seed=view_seed, **(augmentation_options or {}))
    batches = CachedBatches(images, np.zeros(len(images)), batch_size, channels=3)
    chunks = []
    for number in _progress(range(len(batches)), desc=desc, unit="batch", disable=not progress):
        x, _ = batches[number]
        if augmentation is not None:
            x = keras.ops.convert_to_numpy(augmentation(x, training=True))
        chunks.append(keras.ops.convert_to_numpy(split.bottom(split.preprocess(x), training=False)).astype(np.float16))
    return np.concatenate(chunks)


def pooled_features(split: SplitBackbone, activations: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The frozen top's global-average-pooled features of cached bottom activations: ``(n, channels)`` float32."""
    pooled = []
    for start in range(0, len(activations), batch_size):
        maps = split.top(activations[start : start + batch_size].astype(np.float32), training=False)
        pooled.append(keras.ops.convert_to_numpy(keras.ops.mean(maps, axis=(1, 2))))
    return np.concatenate(pooled)


def image_model(split: SplitBackbone, classifier: keras.Model) -> keras.Model:
    """One model from images in 0..255 to P(PNEUMONIA): preprocessing, frozen bottom, ``classifier``; to save."""
    inputs = keras.Input((split.input_size, split.input_size, 3), name="image")
    x = BackbonePreprocessing(split.architecture, name="preprocess")(inputs)
    x = split.bottom(x, training=False)
    outputs = classifier(x)
    return keras.Model(inputs, outputs, name=f"{split.architecture}_transfer")


@dataclass
class LogisticHead:
    """A logistic regression on frozen features (``model``), its ``C`` chosen on validation (``validation_auc_by_c``)"""

    model: object
    C: float
    validation_auc_by_c: dict

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Shape ``(n, 2)``: probabilities of NORMAL and PNEUMONIA."""
        return self.model.predict_proba(features)


def fit_logistic_head(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    validation_features: np.ndarray,
    validation_labels: np.ndarray,
    Cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0),
) -> LogisticHead:
    """A logistic regression (standardised features, balanced weights) per ``C``; the best on validation ROC AUC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fitted, aucs = {}, {}
    for c in Cs:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=3000))
        model.fit(train_features, train_labels)
        fitted[c] = model
        aucs[c] = round(float(roc_auc_score(validation_labels, model.predict_proba(validation_features)[:, 1])), 5)
    best = max(Cs, key=lambda c: aucs[c])
    return LogisticHead(fitted[best], best, aucs)


def top_scores(classifier: keras.Model, activations: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """A fine-tuned top's probabilities of PNEUMONIA for cached activations: shape ``(n,)``."""
    return predict_batches(classifier, CachedBatches(activations, np.zeros(len(activations)), batch_size))
