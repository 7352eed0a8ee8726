"""Decode every image once: resized uint8 arrays cached on disk, reused across runs.

Decoding a JPEG costs hundreds of times more than reading its header, and training
reads every image once per epoch. So each image is decoded, converted to one gray
channel, resized to a square by a policy (see :func:`cxr_utils.images.resize_image`)
and stored in a ``.npy`` file that is memory-mapped on later runs. The cache key
covers the dataset root, every file's path, size and modification time, the output
size and the policy: change any of them and the cache is rebuilt; otherwise it is
reused. Three-channel inputs for ImageNet backbones are made at batch time by
repeating the channel (:mod:`cxr_utils.pipeline`), so one cache serves every model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from . import config
from .dataset import DatasetIndex, binary_labels, index_dataset
from .images import RESIZE_POLICIES, load_grayscale, resize_image
from .parallel import map_with_progress

__all__ = ["ImageCache", "cache_images", "decode_resized"]

CACHE_FORMAT = 2  # bump when the array layout or the decoding changes

#: Decoding costs milliseconds per image, so worker processes pay off from a few dozen.
_PARALLEL_MIN_IMAGES = 64


@dataclass
class ImageCache:
    """Decoded images and the index rows they belong to.

    Attributes
    ----------
    images : numpy.ndarray
        Shape ``(n, size, size)``, dtype ``uint8``, gray levels 0..255; a read-only
        memory map of the cache file.
    index : pandas.DataFrame
        One row per image, in the same order (the usable rows of ``dataset.table``).
    dataset : DatasetIndex
        The indexed copy the images come from (its root, layout, every row).
    size : int
        Side of the square images in pixels.
    policy : str
        The resize policy used.
    path : Path
        The ``.npy`` file.
    built : bool
        True when this call decoded the images, False when it reused the cache.
    """

    images: np.ndarray
    index: pd.DataFrame
    dataset: DatasetIndex
    size: int
    policy: str
    path: Path
    built: bool

    @property
    def labels(self) -> np.ndarray:
        """Shape ``(n,)``, dtype ``int64``: 1 for PNEUMONIA, 0 for NORMAL."""
        return binary_labels(self.index["label"])


def decode_resized(path: str | os.PathLike, size: int, policy: str) -> np.ndarray:
    """Decode one image to gray and resize it: shape ``(size, size)``, dtype ``uint8``.

    JPEGs are decoded at the smallest libjpeg scale that keeps both sides at least
    ``size`` pixels (see :func:`cxr_utils.images.load_grayscale`), then resized.
    """
    return resize_image(load_grayscale(path, min_side=size), size, policy)


def _cache_key(root: Path, index: pd.DataFrame, size: int, policy: str) -> str:
    digest = hashlib.sha256()
    header = {"format": CACHE_FORMAT, "root": str(root), "size": size, "policy": policy}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for path in index["path"]:
        stat = (root / path).stat()
        digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def cache_images(
    dataset: str | os.PathLike | DatasetIndex,
    *,
    size: int = 224,
    policy: str = "squash",
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> ImageCache:
    """Decode, resize and cache every usable image of a dataset copy (or reuse the cache).

    Parameters
    ----------
    dataset : path-like or DatasetIndex
        The dataset root or a folder above it (indexed here with
        :func:`cxr_utils.dataset.index_dataset`), or an index already built, e.g.
        another cache's ``dataset``. Rows with a ``problem`` (unreadable images) are
        left out and counted in a printed note.
    size : int
        Output side in pixels.
    policy : {"squash", "pad", "crop"}
        How images become square.
    cache_dir : path-like, optional
        Default :func:`cxr_utils.config.cache_dir`.
    workers : int, optional
        Decoding processes (default: one per core).

    Returns
    -------
    ImageCache

    Raises
    ------
    ValueError
        For an unknown policy or a size below 8.
    """
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}; choose one of {RESIZE_POLICIES}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    if not isinstance(dataset, DatasetIndex):
        dataset = index_dataset(dataset, progress=progress)
    root, index = dataset.root, dataset.table
    bad = index[index["problem"].notna()]
    if len(bad):
        print(
            f"Leaving out {len(bad)} unreadable image(s): {', '.join(bad['path'].head(5))}"
            + (" ..." if len(bad) > 5 else "")
        )
    index = index[index["problem"].isna()].reset_index(drop=True)
    folder = Path(cache_dir) if cache_dir is not None else config.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    key = _cache_key(root, index, size, policy)
    array_path = folder / f"images-{size}-{policy}-{key}.npy"
    meta_path = array_path.with_suffix(".json")
    built = False
    if not (array_path.exists() and meta_path.exists()):
        _build(root, index, size, policy, array_path, workers, progress)
        meta = {"format": CACHE_FORMAT, "root": str(root), "size": size, "policy": policy, "n": len(index)}
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")  # written last: marks the cache complete
        built = True
    images = np.load(array_path, mmap_mode="r")
    return ImageCache(
        images=images, index=index, dataset=dataset, size=size, policy=policy, path=array_path, built=built
    )


def _build(root: Path, index: pd.DataFrame, size: int, policy: str, target: Path, workers: int | None, progress: bool):
    partial_path = target.with_name(target.name + ".partial")
    array = np.lib.format.open_memmap(partial_path, mode="w+", dtype=np.uint8, shape=(len(index), size, size))
    paths = [root / p for p in index["path"]]
    decode = partial(decode_resized, size=size, policy=policy)
    decoded = map_with_progress(
        decode,
        paths,
        desc=f"Decoding to {size}x{size} ({policy})",
        serial_below=_PARALLEL_MIN_IMAGES,
        workers=workers,
        progress=progress,
    )
    for number, pixels in enumerate(decoded):
        array[number] = pixels
    array.flush()
    del array
    os.replace(partial_path, target)
