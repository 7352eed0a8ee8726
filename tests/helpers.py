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
