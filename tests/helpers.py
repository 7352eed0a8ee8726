"""Small synthetic files for edge-case tests (the real data is in conftest.py's fixtures)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def jpeg_bytes(width: int = 40, height: int = 30, mode: str = "L", **save_args) -> bytes:
    """A small JPEG with a gradient, in the given Pillow mode."""
    ramp = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, axis=0)
    image = Image.fromarray(ramp, "L")
    if mode != "L":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **save_args)
    return buffer.getvalue()


def write_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_dataset(root: Path, files: dict[str, bytes | None]) -> Path:
    """Write a dataset tree: relative path -> bytes (None: a small grayscale JPEG)."""
    for relative, data in files.items():
        write_file(root / relative, jpeg_bytes() if data is None else data)
    return root


#: Eight labels and scores to count metrics by hand.
#: Sorted by score: .9(1) .8(1) .7(1) .6(0) .4(0) .35(0) .2(1) .1(0).
Y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
S = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.2, 0.9, 0.6])


def synthetic(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Labels (about 60 % PNEUMONIA) and informative but imperfect scores in [0, 1]."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.6).astype(int)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    return y, s


#: A tiny dataset in the Kaggle layout (None: a small grayscale JPEG; see :func:`make_dataset`).
KAGGLE_FILES = {
    "train/NORMAL/IM-0001-0001.jpeg": None,
    "train/NORMAL/IM-0002-0001.jpeg": None,
    "train/PNEUMONIA/person1_virus_6.jpeg": None,
    "train/PNEUMONIA/person1_virus_7.jpeg": None,
    "val/NORMAL/NORMAL2-IM-1427-0001.jpeg": None,
    "val/PNEUMONIA/person1946_bacteria_4874.jpeg": None,
    "test/NORMAL/IM-0003-0001.jpeg": None,
    "test/PNEUMONIA/person1_bacteria_1.jpeg": None,
}
