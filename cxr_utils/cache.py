"""Decode every image once: resized uint8 arrays cached on disk, reused across runs.

Decoding a JPEG costs hundreds of times more than reading its header, and training
reads every image once per epoch. So each image is decoded, converted to one gray
channel, resized to a square by a policy (see :func:`cxr_utils.images.resize_image`)
and stored in a ``.npy`` file that is memory-mapped on later runs. The cache key
covers the dataset root, every file's path and content (a digest of its bytes, so a
file changed in place is noticed even with its old size and date), the output size and
the policy: change any of them and the cache is rebuilt; otherwise it is reused.
Three-channel inputs for ImageNet backbones are made at batch time by repeating the
channel (:mod:`cxr_utils.pipeline`), so one cache serves every model.

A build is safe to interrupt or to run twice at once: the array is written to a
``.partial`` file renamed into place when complete (removed on failure), builds of one
cache wait for each other (a file lock), the disk space is checked and reserved before
anything is written (and the folder's writability before any work), and an image that
cannot be decoded is left out with a note instead of stopping the build. A cache whose
metadata (the ``.json`` beside the ``.npy``) cannot be read is rebuilt, with a note naming
the file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from . import cache_dir as default_cache_dir
from .dataset import DatasetIndex, _none_usable, binary_labels, index_dataset
from .images import RESIZE_POLICIES, ImageReadError, file_sha256, load_grayscale, resize_image
from .parallel import map_with_progress

__all__ = ["ImageCache", "cache_images"]

CACHE_FORMAT = 4  # bump when the array layout, the decoding or the key changes

#: Decoding costs milliseconds per image, so worker processes pay off from a few dozen.
_PARALLEL_MIN_IMAGES = 64


@dataclass
class ImageCache:
    """Decoded images and the index rows they belong to.

    ``images``: shape ``(n, size, size)``, dtype ``uint8``, gray levels 0..255, a read-only
    memory map of the ``.npy`` file at ``path``; ``index``: one row per image, in the same
    order (the usable rows of ``dataset.table``); ``dataset``: the indexed copy they come
    from; ``size``: their side in pixels; ``policy``: the resize policy; ``built``: True when
    this call decoded the images, False when it reused the cache.
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

    def positions(self, paths: Iterable[str]) -> np.ndarray:
        """Row numbers (``int64``) in ``images`` and ``index`` of the images at ``paths``, in the order given.

        ``paths`` are relative to the dataset root, as in ``index["path"]`` (a run's prediction
        table, another cache's index). Raises KeyError if one is not in this cache.
        """
        row_of = pd.Series(np.arange(len(self.index)), index=self.index["path"])
        paths = list(paths)
        missing = [p for p in paths if p not in row_of.index]
        if missing:
            raise KeyError(
                f"{len(missing)} of {len(paths)} paths are not in this cache ({missing[0]}, ...): "
                "they come from another copy of the data, or their images were left out"
            )
        return row_of.loc[paths].to_numpy(dtype=np.int64)


def _decode_resized(path: str | os.PathLike, size: int, policy: str) -> np.ndarray:
    """One image decoded to gray (a JPEG at a reduced scale where it can) and resized: ``(size, size)`` ``uint8``."""
    return resize_image(load_grayscale(path, min_side=size), size, policy)


def _cache_key(root: Path, index: pd.DataFrame, header: dict, progress: bool) -> str:
    """What the cache's pixels depend on: every file's path and content, and the ``header`` (format, size, policy)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(header, sort_keys=True).encode())
    contents = map_with_progress(
        file_sha256,
        [root / p for p in index["path"]],
        desc="Checking files",
        serial_below=_PARALLEL_MIN_IMAGES,
        progress=progress,
    )
    for path, content in zip(index["path"], contents, strict=True):
        digest.update(f"{path}\t{content}\n".encode())
    return digest.hexdigest()[:20]


def _decode_or_problem(path: Path, size: int, policy: str) -> np.ndarray | str:
    """The resized pixels, or, when the file cannot be decoded, the problem in one line."""
    try:
        return _decode_resized(path, size, policy)
    except ImageReadError as error:
        return str(error).split(": ", 1)[-1]


def cache_images(
    dataset: str | os.PathLike | DatasetIndex,
    *,
    size: int = 224,
    policy: str = "squash",
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> ImageCache:
    """Decode every usable image of a dataset copy, resize it to ``size`` x ``size`` by ``policy``, and cache it.

    ``dataset`` is the dataset root or a folder above it (indexed here), or an index already
    built, e.g. another cache's ``dataset``; rows with a ``problem`` are left out and counted in
    a printed note. ``cache_dir`` defaults to :func:`cxr_utils.cache_dir`; ``workers``
    decoding processes (default one per core). An existing cache of the same key is reused.

    Raises ValueError for an unknown policy, a size below 8, or a copy none of whose images can
    be read (one line naming it); OSError, one line naming the folder, if the cache folder
    cannot be written (checked before any file is read) or the disk lacks room for the cache.
    """
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}; choose one of {RESIZE_POLICIES}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    folder = _writable_folder(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    if not isinstance(dataset, DatasetIndex):
        dataset = index_dataset(dataset, progress=progress)
    if unusable := _none_usable(dataset):
        raise ValueError(unusable)
    root, index = dataset.root, dataset.table
    bad = index[index["problem"].notna()]
    if len(bad):
        print(
            f"Leaving out {len(bad)} unreadable image(s): {', '.join(bad['path'].head(5))}"
            + (" ..." if len(bad) > 5 else "")
        )
    index = index[index["problem"].isna()].reset_index(drop=True)
    header = {"format": CACHE_FORMAT, "root": str(root), "size": size, "policy": policy}
    key = _cache_key(root, index, header, progress)
    array_path = folder / f"images-{size}-{policy}-{key}.npy"
    meta_path = array_path.with_suffix(".json")
    built = False
    # One build at a time: a second process waits here, then finds the cache complete.
    with FileLock(array_path.with_suffix(".lock")):
        meta = _read_meta(meta_path) if array_path.exists() else None
        if meta is None:
            left_out = _build(root, index, size, policy, array_path, workers, progress)
            meta = {**header, "n": len(index), "left_out": left_out}
            partial_meta = meta_path.with_name(meta_path.name + ".partial")
            partial_meta.write_text(json.dumps(meta, indent=2) + "\n")
            os.replace(partial_meta, meta_path)  # written last, whole: marks the cache complete
            built = True
    left_out = meta.get("left_out", {})
    images = np.load(array_path, mmap_mode="r")
    if left_out:
        print(
            f"{len(left_out)} image(s) could not be decoded and are left out: "
            + "; ".join(f"{path} ({problem})" for path, problem in list(left_out.items())[:5])
            + (" ..." if len(left_out) > 5 else "")
        )
        keep = ~index["path"].isin(left_out).to_numpy()
        images, index = np.asarray(images)[keep], index[keep].reset_index(drop=True)
    return ImageCache(
        images=images, index=index, dataset=dataset, size=size, policy=policy, path=array_path, built=built
    )


def _writable_folder(folder: Path) -> Path:
    """``folder``, created if needed, once a file could be written in it; else OSError, one line naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OSError(
            error.errno,
            f"the image cache folder {folder} is not writable ({error.strerror or error}): set CXR_CACHE_DIR "
            "to a folder you can write to",
            str(folder),
        ) from error
    return folder


def _read_meta(path: Path) -> dict | None:
    """A cache's metadata (``.json`` beside its ``.npy``); ``None`` when it is absent, or, with a note, unreadable."""
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(meta, dict):
            return meta
        problem = "not a JSON object"
    except (ValueError, OSError) as error:  # empty or cut short (a kill while writing), unreadable
        problem = str(error)
    print(f"The image cache's metadata {path} cannot be read ({problem}): rebuilding the cache.")
    return None


def _build(
    root: Path, index: pd.DataFrame, size: int, policy: str, target: Path, workers: int | None, progress: bool
) -> dict[str, str]:
    """Decode every image into ``target``; return the images that could not be decoded, with their problem.

    The array goes to a ``.partial`` file, allocated in full first (a full disk is a clear
    error before any writing), renamed to ``target`` once complete and removed on any failure.
    """
    shape = (len(index), size, size)
    needed, free = int(np.prod(shape)) + 4096, shutil.disk_usage(target.parent).free
    if needed > free:
        raise OSError(
            errno.ENOSPC,
            f"the image cache needs {needed / 1e6:.0f} MB but only {free / 1e6:.0f} MB are free in {target.parent}: "
            "free some space, or set CXR_CACHE_DIR to a folder with room",
            str(target.parent),
        )
    partial_path = target.with_name(target.name + ".partial")
    try:
        array = np.lib.format.open_memmap(partial_path, mode="w+", dtype=np.uint8, shape=shape)
        if hasattr(os, "posix_fallocate"):  # reserve the blocks now: writing into a sparse file on a full disk crashes
            with open(partial_path, "rb+") as handle:
                os.posix_fallocate(handle.fileno(), 0, os.path.getsize(partial_path))
        left_out = {}
        decoded = map_with_progress(
            partial(_decode_or_problem, size=size, policy=policy),
            [root / p for p in index["path"]],
            desc=f"Decoding to {size}x{size} ({policy})",
            serial_below=_PARALLEL_MIN_IMAGES,
            workers=workers,
            progress=progress,
        )
        for number, (path, pixels) in enumerate(zip(index["path"], decoded, strict=True)):
            if isinstance(pixels, str):
                left_out[path] = pixels
            else:
                array[number] = pixels
        array.flush()
        del array
        os.replace(partial_path, target)
    except BaseException:
        partial_path.unlink(missing_ok=True)
        raise
    return left_out
