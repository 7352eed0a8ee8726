"""Transfer learning from an ImageNet backbone, fast on a CPU: freeze the bottom, cache it.

A backbone (``keras.applications``) is cut in two at a layer:

* the **bottom** (input to the cut) stays frozen. Its output for every image (the
  *activations*) is computed once and kept in memory, for a few augmented views of
  each training image as well;
* the **top** (the cut to the last feature map) is small. Frozen, its pooled output
  gives the classic "frozen features" for a linear classifier; trainable, it is
  fine-tuned with a new head on the cached activations, so an epoch costs only the
  layers that train.

Batch normalization layers of the backbone always run in inference mode (their
ImageNet statistics are kept), also while the top is fine-tuned.

:func:`build_top_classifier` is written out in chapter 04
(``notebooks/04_transfer_learning.ipynb``) and saved here with the same code; the chapter
also cuts the backbone and fine-tunes the top in its cells, as :func:`split_backbone` and
:func:`cxr_utils.training.fit_with_callbacks` do here.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from . import _progress
from .models import BackbonePreprocessing
from .pipeline import CachedBatches, augmentation_layers, predict_batches
from .weights import build_backbone, preprocess_function

__all__ = [
    "CANDIDATES",
    "CUT_LAYERS",
    "SplitBackbone",
    "split_backbone",
    "bottom_activations",
    "pooled_features",
    "build_top_classifier",
    "image_model",
    "LogisticHead",
    "fit_logistic_head",
    "top_scores",
]

#: Chapter 04's candidates by letter, named as its run folder records them (chapters 05 and 06 read them).
CANDIDATES = {
    "A": "A: frozen features + logistic regression",
    "B": "B: fine-tuned top",
    "C": "C: CNN from scratch (chapter 03)",
    "D": "D: ensemble of B and C",
}

#: Where each architecture is cut by default: the fine-tuned top is what follows.
CUT_LAYERS = {
    "MobileNetV2": "block_12_add",  # top: blocks 13-16 and the last 1x1 convolution (7x7 resolution)
    "MobileNet": "conv_pw_11_relu",
    "EfficientNetB0": "block6a_expand_activation",
    "DenseNet121": "pool4_relu",
    "ResNet50": "conv4_block6_out",
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


def split_backbone(
    architecture: str = "MobileNetV2",
    *,
    input_size: int = 224,
    alpha: float = 0.5,
    cut_layer: str | None = None,
    weights_dir=None,
    allow_download: bool = False,
) -> SplitBackbone:
    """Build a backbone with ImageNet weights and cut it at ``cut_layer`` (default: :data:`CUT_LAYERS`).

    The bottom (input to the cut) is frozen; the top (the cut to the last feature map)
    can be trained. Raises :class:`cxr_utils.weights.WeightsNotFoundError` when no local
    weight file is found and ``allow_download`` is False.
    """
    backbone = build_backbone(
        architecture, input_size=input_size, alpha=alpha, weights_dir=weights_dir, allow_download=allow_download
    )
    cut_layer = cut_layer or CUT_LAYERS[architecture]
    cut = backbone.get_layer(cut_layer).output
    bottom = keras.Model(backbone.input, cut, name=f"{architecture}_bottom")
    top = keras.Model(cut, backbone.output, name=f"{architecture}_top")
    bottom.trainable = False
    return SplitBackbone(architecture, alpha, input_size, cut_layer, bottom, top)


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
    """Run the frozen bottom over cached gray images (repeated to RGB), optionally augmented.

    Parameters
    ----------
    images : numpy.ndarray
        Shape ``(n, size, size)``, uint8, with ``size == split.input_size``.
    view_seed : int, optional
        None: the images as they are. An int: one randomly augmented view of each
        image (:func:`cxr_utils.pipeline.augmentation_layers`, seeded with it, so
        the same seed gives the same view).
    augmentation_options : dict, optional
        Keyword arguments for :func:`cxr_utils.pipeline.augmentation_layers`.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, h, w, c)`` (the cut layer's output), float16 to halve memory.
    """
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
    """The frozen backbone's global-average-pooled features from cached bottom activations.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, channels of the last feature map)``, float32.
    """
    pooled = []
    for start in range(0, len(activations), batch_size):
        maps = split.top(activations[start : start + batch_size].astype(np.float32), training=False)
        pooled.append(keras.ops.convert_to_numpy(keras.ops.mean(maps, axis=(1, 2))))
    return np.concatenate(pooled)


# Saved from notebooks/04_transfer_learning.ipynb: the chapter writes it out; keep both copies' code identical.
def build_top_classifier(split: SplitBackbone, *, dropout: float = 0.3, trainable_top: bool = True) -> keras.Model:
    """The backbone's top with a new head, on cached activations.

    Input ``(batch, h, w, c)`` activations; output ``(batch, 1)`` probability of
    PNEUMONIA. The top is a copy with the ImageNet weights, so training one classifier
    leaves ``split.top`` (and every other classifier) unchanged. Its batch
    normalization stays in inference mode.
    """
    top = keras.models.clone_model(split.top)  # each classifier trains its own copy of the ImageNet top
    top.set_weights(split.top.get_weights())  # as NumPy arrays: the copy shares no buffer with the original
    top.trainable = trainable_top
    for layer in top.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # Keras runs a non-trainable BatchNormalization in inference mode; a
            # training=False call argument alone is overridden inside nested models.
            layer.trainable = False
    inputs = keras.Input(split.bottom.output_shape[1:], name="activations")
    x = top(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="pneumonia")(x)
    return keras.Model(inputs, outputs, name=f"{split.architecture}_finetuned_top")


def image_model(split: SplitBackbone, classifier: keras.Model) -> keras.Model:
    """One model from images to probability: preprocessing, the frozen bottom, the trained top and head.

    This is the model to save, to predict on new images, and to explain with
    Grad-CAM (chapter 05).

    Returns
    -------
    keras.Model
        Input ``(batch, size, size, 3)`` RGB in 0..255 (gray repeated); output
        ``(batch, 1)``, the probability of PNEUMONIA.
    """
    inputs = keras.Input((split.input_size, split.input_size, 3), name="image")
    x = BackbonePreprocessing(split.architecture, name="preprocess")(inputs)
    x = split.bottom(x, training=False)
    outputs = classifier(x)
    return keras.Model(inputs, outputs, name=f"{split.architecture}_transfer")


@dataclass
class LogisticHead:
    """A logistic regression on frozen features, its regularisation chosen on validation.

    Attributes
    ----------
    model : sklearn.pipeline.Pipeline
        Standardisation then logistic regression (balanced class weights).
    C : float
        The chosen inverse regularisation strength.
    validation_auc_by_c : dict
        Validation ROC AUC of every ``C`` tried.
    """

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
    """Fit a logistic regression per ``C`` on training features; keep the best on validation ROC AUC.

    Parameters
    ----------
    train_features, validation_features : numpy.ndarray
        Shape ``(n, d)`` pooled features (:func:`pooled_features`).
    train_labels, validation_labels : numpy.ndarray
        Shape ``(n,)``, 0 or 1.
    """
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
