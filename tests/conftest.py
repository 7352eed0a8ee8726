"""Shared fixtures: the real data under CXR_TEST_DATA and the real ImageNet weights (skipped when absent).

Helpers that build small synthetic files for edge cases are in ``helpers.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cxr_course import test_data_dir
from cxr_utils import weights_dir

from helpers import synthetic


def _real_data_or_skip(*parts: str) -> Path:
    path = test_data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real data not found at {path}: set CXR_TEST_DATA to the folder holding "
            "chest_xray_originals/, chest_xray_224/ and official_sha256.tsv"
        )
    return path


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real-data folder (``../shared/data`` by default)."""
    return _real_data_or_skip()


@pytest.fixture(scope="session")
def originals() -> Path:
    """416 original-resolution images in the official layout."""
    return _real_data_or_skip("chest_xray_originals")


@pytest.fixture(scope="session")
def resized_224() -> Path:
    """All 5,856 official images resized to 224x224."""
    return _real_data_or_skip("chest_xray_224")


@pytest.fixture(scope="session")
def real_manifest() -> Path:
    """The official manifest beside the real data."""
    return _real_data_or_skip("official_sha256.tsv")


@pytest.fixture(scope="session")
def keras_weights() -> Path:
    """The folder of real ImageNet weight files (CXR_WEIGHTS_DIR, else ../shared/weights/keras)."""
    path = weights_dir() or (test_data_dir().parent / "weights" / "keras")
    if not path.is_dir():
        pytest.skip(f"ImageNet weights not found at {path}: set CXR_WEIGHTS_DIR")
    return path


@pytest.fixture(scope="session")
def scored():
    """Labels and scores of 200 synthetic images (``helpers.synthetic``)."""
    return synthetic(200)


@pytest.fixture(scope="session")
def scored_frame(scored):
    """``bootstrap_ci`` of :func:`scored` at threshold 0.5 (200 resamples, seed 0)."""
    from cxr_utils.metrics import bootstrap_ci

    return bootstrap_ci(*scored, 0.5, n_boot=200, seed=0)
