"""Offline ImageNet weights: found locally, loaded without any download, clear error otherwise."""

import socket

import h5py
import numpy as np
import pytest

from cxr_utils.models import WeightsNotFoundError, _find_weights, _weights_file_name, build_backbone


def test_file_names_match_what_keras_downloads(keras_weights):
    names = {_weights_file_name("MobileNetV2", 0.5), _weights_file_name("MobileNetV2", 0.35)}
    assert names <= {p.name for p in keras_weights.glob("*.h5")}
    with pytest.raises(ValueError, match="unknown backbone"):
        _weights_file_name("AlexNet", 1.0)


def test_missing_weights_fail_at_once_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("CXR_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with pytest.raises(WeightsNotFoundError) as error:
        build_backbone("MobileNetV2", input_size=64, alpha=0.75, weights_dir=tmp_path)
    message = str(error.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.75_224_no_top.h5" in message
    assert "CXR_WEIGHTS_DIR" in message


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to download or open a connection fails the test."""
    import keras

    def refuse(*args, **kwargs):
        raise AssertionError(f"network or download attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(keras.utils, "get_file", refuse)
    import keras.src.utils.file_utils as file_utils

    monkeypatch.setattr(file_utils, "get_file", refuse)


def test_real_weights_load_without_download(keras_weights, no_network, monkeypatch):
    monkeypatch.setenv("CXR_WEIGHTS_DIR", str(keras_weights))
    backbone = build_backbone("MobileNetV2", input_size=224, alpha=0.5)
    path = _find_weights("MobileNetV2", 0.5)
    with h5py.File(path, "r") as h5:
        stored = h5["Conv1/Conv1/kernel:0"][()]
    loaded = backbone.get_layer("Conv1").get_weights()[0]
    assert loaded.shape == stored.shape == (3, 3, 3, 16)
    np.testing.assert_array_equal(loaded, stored)


def test_non_standard_input_size_uses_the_same_file(keras_weights, no_network):
    backbone = build_backbone("MobileNetV2", input_size=160, alpha=0.35, weights_dir=keras_weights)
    assert backbone.input_shape == (None, 160, 160, 3)


def test_allowed_download_fails_fast_when_the_server_cannot_be_reached(tmp_path, monkeypatch):
    import time

    from cxr_utils import models as weights

    monkeypatch.setattr(weights, "WEIGHTS_HOST", "127.0.0.1.invalid")  # never resolves
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("HOME", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(weights.WeightsNotFoundError, match="cannot be reached"):
        weights.build_backbone("MobileNetV2", alpha=0.35, weights_dir=tmp_path, allow_download=True)
    assert time.perf_counter() - start < 15
