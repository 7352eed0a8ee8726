"""ImageNet weights for ``keras.applications`` backbones, found on disk before any download.

Keras downloads a backbone's weights into ``$KERAS_HOME/models`` (``~/.keras/models``)
the first time it is built with ``weights="imagenet"``. Machines without internet (CI,
a hospital network) cannot, and a download attempt there may hang. So the course
always looks for the exact file Keras would fetch, in this order:

1. the folder ``weights_dir`` passed in, else ``$CXR_WEIGHTS_DIR``;
2. ``$KERAS_HOME/models`` or ``~/.keras/models`` (where earlier downloads went);

and builds the backbone from that file (``weights=<path>``), which never touches the
network. Only when no file is found *and* ``allow_download=True`` does Keras download.
Otherwise :class:`WeightsNotFoundError` names the file and the fix at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import weights_dir as default_weights_dir

__all__ = ["WeightsNotFoundError", "build_backbone", "preprocess_function"]

#: Architectures the course knows, with the preprocessing module of keras.applications.
BACKBONES = {
    "MobileNetV2": "mobilenet_v2",
    "MobileNet": "mobilenet",
    "EfficientNetB0": "efficientnet",
    "DenseNet121": "densenet",
    "ResNet50": "resnet",
}


class WeightsNotFoundError(FileNotFoundError):
    """No local copy of a backbone's ImageNet weights, and downloading is not allowed."""


def _weights_file_name(architecture: str, alpha: float = 1.0) -> str:
    """The file name Keras gives a backbone's ImageNet weights without the top layers (``alpha``: MobileNets only).

    Raises ValueError for an architecture not in :data:`BACKBONES`.
    """
    if architecture == "MobileNetV2":
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_224_no_top.h5"
    if architecture == "MobileNet":
        alpha_text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}.get(float(alpha))
        if alpha_text is None:
            raise ValueError(f"MobileNet has ImageNet weights for alpha 0.25, 0.5, 0.75 or 1.0, not {alpha}")
        return f"mobilenet_{alpha_text}_224_tf_no_top.h5"
    names = {
        "EfficientNetB0": "efficientnetb0_notop.h5",
        "DenseNet121": "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "ResNet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    }
    if architecture not in names:
        raise ValueError(f"unknown backbone {architecture!r}; choose one of {sorted(BACKBONES)}")
    return names[architecture]


def _search_folders(weights_dir: str | os.PathLike | None) -> list[Path]:
    first = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return [folder for folder in (first, keras_home / "models") if folder is not None]


def _find_weights(architecture: str, alpha: float = 1.0, weights_dir: str | os.PathLike | None = None) -> Path:
    """The local file of a backbone's ImageNet weights; else WeightsNotFoundError naming it, the folders, the fix."""
    name = _weights_file_name(architecture, alpha)
    folders = _search_folders(weights_dir)
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise WeightsNotFoundError(
        f"ImageNet weights for {architecture} (alpha {alpha:g}) not found: no {name} in "
        f"{', '.join(map(str, folders))}. Fix: put that file (as Keras downloads it) in a folder and set "
        "CXR_WEIGHTS_DIR to it, or, on a machine with internet, pass allow_download=True once."
    )


#: Where ``keras.applications`` downloads ImageNet weights from.
WEIGHTS_HOST = "storage.googleapis.com"


def _reachable(host: str, port: int = 443, timeout: float = 5.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
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
):
    """A ``keras.applications`` backbone (one of :data:`BACKBONES`) without its classifier, with ImageNet weights.

    ``alpha`` is the width multiplier of MobileNet / MobileNetV2 (ignored otherwise);
    ``weights_dir`` where to look first (default ``$CXR_WEIGHTS_DIR``); ``allow_download`` lets
    Keras download the weights when no local file exists. The model's input is
    ``(batch, input_size, input_size, 3)`` *already preprocessed* for this architecture (see
    :func:`preprocess_function`); its output the last feature map.

    Raises :class:`WeightsNotFoundError` when there are no local weights and ``allow_download``
    is False (before any network use), or when Keras's weight server cannot be reached within
    a few seconds (an offline machine fails at once instead of hanging).
    """
    import keras

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
    constructor = getattr(keras.applications, architecture)
    kwargs = {"alpha": alpha} if architecture in ("MobileNet", "MobileNetV2") else {}
    return constructor(include_top=False, weights=weights, input_shape=(input_size, input_size, 3), **kwargs)


def preprocess_function(architecture: str):
    """The ``preprocess_input`` of a backbone's ``keras.applications`` module (0..255 RGB in)."""
    import keras

    if architecture not in BACKBONES:
        raise ValueError(f"unknown backbone {architecture!r}; choose one of {sorted(BACKBONES)}")
    return getattr(keras.applications, BACKBONES[architecture]).preprocess_input
