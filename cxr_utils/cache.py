"""Decoding images to gray, resizing them, and a ``.npy`` cache of every image of a copy, reused across runs."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

from . import _progress
from . import cache_dir as default_cache_dir
from .dataset import MAX_PIXELS, DatasetIndex, binary_labels, file_sha256, index_dataset
from .records import atomic_path, fingerprint, read_json, writable_folder, write_json

__all__ = ["RESIZE_POLICIES", "load_grayscale", "resize_image", "cache_images"]

RESIZE_POLICIES = ("squash", "pad", "crop")
CACHE_FORMAT = 5  # bump when the array layout, the decoding or the key changes


class ImageReadError(OSError):
    """An image file that cannot be decoded: empty, not an image, too large, truncated or corrupt."""


@contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Any failure to decode ``path`` as one ImageReadError naming it."""
    try:
        yield
    except ImageReadError:
        raise
    except UnidentifiedImageError as error:
        raise ImageReadError(f"{path}: not an image Pillow can read") from error
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"{path}: cannot decode ({error})") from error


def load_grayscale(path: str | os.PathLike, *, min_side: int | None = None) -> np.ndarray:
    """An image as one upright (EXIF) gray uint8 channel ``(height, width)``; ``min_side``: a JPEG decoded at a
    reduced scale keeping both sides at least that large. ImageReadError for an unreadable or damaged file."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    with _decoding(path), Image.open(path) as image:
        if image.width * image.height > MAX_PIXELS:
            raise ImageReadError(f"{path}: too many pixels: {image.width}x{image.height} (not decoded)")
        if min_side is not None and image.format == "JPEG":
            image.draft("L", (min_side, min_side))
        image.load()
        image = ImageOps.exif_transpose(image)
        if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
            return np.clip(np.asarray(image, dtype=np.int64) >> 8, 0, 255).astype(np.uint8)
        if image.mode == "F":
            return np.clip(np.asarray(image), 0, 255).astype(np.uint8)
        return np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.uint8)


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image as three upright 8-bit channels, ``(height, width, 3)`` uint8; ImageReadError as load_grayscale."""
    with _decoding(Path(path)), Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.uint8)


def resize_image(pixels: np.ndarray, size: int, policy: str = "squash") -> np.ndarray:
    """A gray uint8 image made ``(size, size)`` (bilinear) by ``policy``: ``"squash"`` each side, ``"pad"`` with
    black, ``"crop"`` the centre square. ValueError for an unknown policy, another shape or a size below 1."""
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}; choose one of {RESIZE_POLICIES}")
    if pixels.ndim != 2 or size < 1:
        raise ValueError(f"expected a (height, width) gray image and a size of at least 1, got {pixels.shape}, {size}")
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), "L")
    height, width = pixels.shape
    bilinear = Image.Resampling.BILINEAR
    if policy == "squash":
        return np.asarray(image.resize((size, size), bilinear))
    if policy == "pad":
        scale = size / max(width, height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        canvas = Image.new("L", (size, size), 0)
        canvas.paste(image.resize((new_w, new_h), bilinear), ((size - new_w) // 2, (size - new_h) // 2))
        return np.asarray(canvas)
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(image.resize((new_w, new_h), bilinear).crop((left, top, left + size, top + size)))


@dataclass
class ImageCache:
    """``images`` ``(n, size, size)`` uint8 (read-only), their ``index`` rows; ``built``: decoded by this call."""

    images: np.ndarray
    index: pd.DataFrame
    dataset: DatasetIndex
    size: int
    policy: str
    path: Path
    built: bool

    @property
    def labels(self) -> np.ndarray:
        """Shape ``(n,)``, int64: 1 for PNEUMONIA, 0 for NORMAL."""
        return binary_labels(self.index["label"])

    def positions(self, paths: Iterable[str]) -> np.ndarray:
        """Rows (int64) of the images at ``paths``, in that order; KeyError when one is not in this cache."""
        row_of = pd.Series(np.arange(len(self.index)), index=self.index["path"])
        paths = list(paths)
        if missing := [p for p in paths if p not in row_of.index]:
            raise KeyError(
                f"{len(missing)} of {len(paths)} paths are not in this cache ({missing[0]}, ...): "
                "they come from another copy of the data, or their images were left out"
            )
        return row_of.loc[paths].to_numpy(dtype=np.int64)


def _decode_resized(path: Path, size: int, policy: str) -> np.ndarray:
    """One image decoded to gray (a JPEG at a reduced scale where it can) and resized: ``(size, size)`` uint8."""
    return resize_image(load_grayscale(path, min_side=size), size, policy)


def _build(root: Path, paths: pd.Series, size: int, policy: str, target: Path, progress: bool) -> dict[str, str]:
    """Decode every image into the array file ``target``, written whole; return the paths left out, with why."""
    needed, free = len(paths) * size * size + 4096, shutil.disk_usage(target.parent).free
    if needed > free:
        raise OSError(
            errno.ENOSPC,
            f"the image cache needs {needed / 1e6:.0f} MB but only {free / 1e6:.0f} MB are free in {target.parent}: "
            "free some space, or set CXR_CACHE_DIR to a folder with room",
            str(target.parent),
        )
    images, left_out = np.zeros((len(paths), size, size), dtype=np.uint8), {}
    decoding = _progress(paths, desc=f"Decoding to {size}x{size} ({policy})", unit="img", disable=not progress)
    for number, path in enumerate(decoding):
        try:
            images[number] = _decode_resized(root / path, size, policy)
        except ImageReadError as error:
            left_out[path] = str(error).split(": ", 1)[-1]
    with atomic_path(target) as temporary, open(temporary, "wb") as handle:
        np.save(handle, images)
    return left_out


def cache_images(
    dataset: str | os.PathLike | DatasetIndex,
    *,
    size: int = 224,
    policy: str = "squash",
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> ImageCache:
    """Every usable image of a copy (a folder, or its index) decoded once, resized to ``size`` by ``policy``, cached.
    ValueError for bad arguments or no usable image, OSError when the cache folder is not writable or lacks room."""
    if policy not in RESIZE_POLICIES or size < 8:
        raise ValueError(f"need a policy of {RESIZE_POLICIES} and a size of at least 8 pixels, got {policy!r}, {size}")
    folder = writable_folder(
        Path(cache_dir) if cache_dir is not None else default_cache_dir(),
        "the image cache needs one: set CXR_CACHE_DIR to a folder you can write to",
    )
    if not isinstance(dataset, DatasetIndex):
        dataset = index_dataset(dataset, progress=progress)
    if dataset.unusable:
        raise ValueError(dataset.unusable)
    bad, index = dataset.table["problem"].notna(), dataset.table
    if bad.any():
        shown = ", ".join(index.loc[bad, "path"].head(5)) + (" ..." if bad.sum() > 5 else "")
        print(f"Leaving out {bad.sum()} unreadable image(s): {shown}")
    index = index[~bad].reset_index(drop=True)
    header = {"format": CACHE_FORMAT, "root": str(dataset.root), "size": size, "policy": policy}
    checking = _progress(index["path"], desc="Checking files", unit="img", disable=not progress)
    contents = [f"{path}\t{file_sha256(dataset.root / path)}" for path in checking]
    array_path = folder / f"images-{size}-{policy}-{fingerprint([json.dumps(header, sort_keys=True), *contents])}.npy"
    meta_path, meta = array_path.with_suffix(".json"), None
    if array_path.exists() and meta_path.exists():
        try:
            meta = read_json(meta_path)
        except (ValueError, OSError) as error:  # empty or cut short: a build killed while writing it
            print(f"The image cache's metadata {meta_path} cannot be read ({error}): rebuilding the cache.")
    if built := meta is None:
        meta = {
            **header,
            "n": len(index),
            "left_out": _build(dataset.root, index["path"], size, policy, array_path, progress),
        }
        write_json(meta_path, meta)  # written last, whole: it marks the cache complete
    if left_out := meta["left_out"]:
        shown = "; ".join(f"{path} ({problem})" for path, problem in list(left_out.items())[:5])
        shown += " ..." if len(left_out) > 5 else ""
        print(f"{len(left_out)} image(s) could not be decoded and are left out: {shown}")
    images = np.load(array_path, mmap_mode="r")
    if left_out:
        keep = ~index["path"].isin(left_out).to_numpy()
        images, index = np.asarray(images)[keep], index[keep].reset_index(drop=True)
    return ImageCache(images, index, dataset, size, policy, array_path, built)
