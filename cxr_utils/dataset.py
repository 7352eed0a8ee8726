"""Find and index a copy of the chest X-ray dataset.

Layouts accepted (``<root>`` is the folder you pass, or one found under it):

* Kaggle: ``<root>/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg``
  (``paultimothymooney/chest-xray-pneumonia``; its zip also holds a nested
  duplicate ``chest_xray/chest_xray/`` and ``__MACOSX/`` folders);
* Mendeley: ``<root>/{train,test}/{NORMAL,PNEUMONIA}/*.jpeg`` (``ChestXRay2017.zip``,
  whose train split includes Kaggle's 16 val images);
* either of them one or two levels down, e.g. ``data/chest_xray/...``.

When several copies are found (the nested duplicate), the shallowest is indexed and
the others are reported as ignored copies: no image is counted twice. Files that are
not images (``.DS_Store``), macOS metadata (``__MACOSX/``, ``._*``) and images
outside the split/class folders are skipped and counted, never silently dropped.
Images that cannot be read (empty, truncated, corrupt) stay in the index with their
problem named in the ``problem`` column.

:func:`index_dataset` returns a :class:`DatasetIndex`: the table of images and the
copy it describes (its root, layout, and what was skipped), in one object.
Checking a copy against the official dataset is :mod:`cxr_utils.verification`;
patients and duplicates across splits are :mod:`cxr_utils.audit`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .images import ImageReadError, file_sha256, find_integrity_problem, read_header
from .names import parse_name
from .parallel import map_with_progress

__all__ = [
    "SPLITS",
    "LABELS",
    "DatasetLayoutError",
    "DatasetLayout",
    "DatasetIndex",
    "find_dataset",
    "index_dataset",
    "index_problems",
    "binary_labels",
]

SPLITS = ("train", "val", "test")
LABELS = ("NORMAL", "PNEUMONIA")
IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png"})

# Why a file was skipped, as reported in DatasetLayout.skipped and DatasetIndex.skipped.
SKIP_MACOS = "macOS metadata (__MACOSX/, ._*)"
SKIP_NOT_IMAGE = "not an image file (.DS_Store, text, ...)"
SKIP_COPY = "in an ignored duplicate copy of the dataset"
SKIP_OUTSIDE = "image outside the <split>/<class>/ folders"

#: Below this many files, reading headers in this process beats starting worker
#: processes (benchmarks/header_reads.py: about 12,000 headers/s serial on 2 cores).
PARALLEL_MIN_FILES = 1000


def binary_labels(labels: ArrayLike) -> np.ndarray:
    """Class names as the model's targets: 1 for ``"PNEUMONIA"``, 0 for ``"NORMAL"``.

    Parameters
    ----------
    labels : array-like of str, shape (n,)
        E.g. an index's ``label`` column.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``, dtype ``int64``.

    Raises
    ------
    ValueError
        If a label is neither ``"NORMAL"`` nor ``"PNEUMONIA"``.
    """
    values = np.asarray(labels, dtype=object)
    unknown = sorted({str(v) for v in values.tolist()} - set(LABELS))
    if unknown:
        raise ValueError(f"labels must be NORMAL or PNEUMONIA, found {', '.join(unknown[:5])}")
    return (values == "PNEUMONIA").astype(np.int64)


class DatasetLayoutError(ValueError):
    """The folder does not hold the dataset in a layout this package understands."""


@dataclass
class DatasetLayout:
    """Where a dataset copy's images are, and what was skipped on the way.

    Attributes
    ----------
    root : Path
        The folder holding the split folders.
    layout : str
        ``"kaggle"`` (train/val/test) or ``"mendeley"`` (train/test).
    splits : tuple of str
        The split folders present, in the order train, val, test.
    images : list of Path
        Every image file under ``root/<split>/<class>/``, sorted.
    skipped : dict
        Reason -> paths (relative to the folder searched) of files not indexed.
    ignored_copies : list of Path
        Other dataset roots found (the nested ``chest_xray/chest_xray``), not indexed.
    """

    root: Path
    layout: str
    splits: tuple[str, ...]
    images: list[Path]
    skipped: dict[str, list[str]] = field(default_factory=dict)
    ignored_copies: list[Path] = field(default_factory=list)

    @property
    def skipped_counts(self) -> dict[str, int]:
        """Reason -> number of files skipped for it."""
        return {reason: len(paths) for reason, paths in self.skipped.items()}


@dataclass(frozen=True)
class DatasetIndex:
    """An indexed dataset copy: one row per image, and the copy the rows belong to.

    Attributes
    ----------
    root : Path
        The folder holding the split folders; every ``path`` in ``table`` is relative to it.
    layout : str
        ``"kaggle"`` (train/val/test) or ``"mendeley"`` (train/test).
    table : pandas.DataFrame
        One row per image (columns: see :func:`index_dataset`), sorted by path.
    skipped : dict
        Reason -> number of files not indexed for it.
    ignored_copies : list of Path
        Other dataset roots found (the nested ``chest_xray/chest_xray``), not indexed.
    """

    root: Path
    layout: str
    table: pd.DataFrame
    skipped: dict[str, int]
    ignored_copies: list[Path]

    def __len__(self) -> int:
        return len(self.table)

    @property
    def problems(self) -> pd.DataFrame:
        """The rows whose image is unusable (:func:`index_problems`)."""
        return index_problems(self.table)


def _is_macos_metadata(parts: Iterable[str]) -> bool:
    return any(part == "__MACOSX" or part.startswith("._") for part in parts)


def _walk(base: Path) -> dict[Path, tuple[list[str], list[str]]]:
    """Every folder under ``base`` (itself included) -> its sub-folder and file names, sorted.

    One pass over the tree: finding the dataset root and listing its files both read it.
    Symbolic links to folders are listed, not followed.
    """
    tree = {}
    for folder, subdirs, files in os.walk(base):
        subdirs.sort()
        tree[Path(folder)] = (list(subdirs), sorted(files))
    return tree


def _class_dirs(tree: dict, split_dir: Path) -> dict[str, Path]:
    """Label -> folder for the class folders under one split (names matched case-blind)."""
    subdirs = tree.get(split_dir, ((), ()))[0]
    return {name.upper(): split_dir / name for name in subdirs if name.upper() in LABELS}


def _split_dirs(tree: dict, root: Path) -> dict[str, Path]:
    """Split -> folder for the split folders under a candidate root that hold class folders."""
    subdirs = tree.get(root, ((), ()))[0]
    return {name.lower(): root / name for name in subdirs if name.lower() in SPLITS and _class_dirs(tree, root / name)}


def find_dataset(path: str | os.PathLike, max_depth: int = 3) -> DatasetLayout:
    """Locate the dataset under ``path`` and list its images.

    Parameters
    ----------
    path : str or path-like
        The dataset root, or a folder up to ``max_depth`` levels above it.
    max_depth : int
        How deep to look for a folder holding ``train/`` and ``test/``.

    Returns
    -------
    DatasetLayout

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or is not a folder.
    DatasetLayoutError
        If no folder with ``train/`` and ``test/`` class folders is found, or two
        copies are found at the same depth (ambiguous: pass the one you mean).
    """
    base = Path(os.path.abspath(Path(path).expanduser()))
    if not base.exists():
        raise FileNotFoundError(
            f"dataset folder {base} does not exist; set CXR_DATA_DIR to the folder holding "
            "train/ and test/ (or run `cxr download`)"
        )
    if not base.is_dir():
        raise FileNotFoundError(f"{base} is a file, not a dataset folder")

    tree = _walk(base)
    candidates: list[tuple[int, Path]] = []
    for folder in tree:
        relative = folder.relative_to(base).parts
        splits = _split_dirs(tree, folder)
        if len(relative) <= max_depth and not _is_macos_metadata(relative) and {"train", "test"} <= set(splits):
            candidates.append((len(relative), folder))
    if not candidates:
        raise DatasetLayoutError(_describe_missing_layout(base))
    candidates.sort(key=lambda item: (item[0], str(item[1])))
    depth, root = candidates[0]
    same_depth = [c for d, c in candidates[1:] if d == depth]
    if same_depth:
        raise DatasetLayoutError(
            f"several dataset copies at the same depth under {base}: {root} and "
            f"{', '.join(map(str, same_depth))}; pass the one to use"
        )
    ignored = [c for _, c in candidates[1:]]

    splits = _split_dirs(tree, root)
    indexed_dirs = {
        class_dir.resolve() for split_dir in splits.values() for class_dir in _class_dirs(tree, split_dir).values()
    }
    ignored_resolved = [c.resolve() for c in ignored]
    images: list[Path] = []
    skipped: dict[str, list[str]] = {}
    for folder, (_subdirs, files) in tree.items():
        resolved_folder = folder.resolve()
        for name in files:
            file_path = folder / name
            relative = file_path.relative_to(base)
            if _is_macos_metadata(relative.parts):
                reason = SKIP_MACOS
            elif any(resolved_folder.is_relative_to(c) for c in ignored_resolved):
                reason = SKIP_COPY
            elif file_path.suffix.lower() not in IMAGE_SUFFIXES:
                reason = SKIP_NOT_IMAGE
            elif resolved_folder in indexed_dirs:
                images.append(file_path)
                continue
            else:
                reason = SKIP_OUTSIDE
            skipped.setdefault(reason, []).append(relative.as_posix())
    return DatasetLayout(
        root=root,
        layout="kaggle" if "val" in splits else "mendeley",
        splits=tuple(s for s in SPLITS if s in splits),
        images=images,
        skipped=skipped,
        ignored_copies=ignored,
    )


def _describe_missing_layout(base: Path) -> str:
    children = sorted(p.name for p in base.iterdir())[:12]
    hint = ""
    if {c.upper() for c in children} & set(LABELS):
        hint = " It holds class folders but no split folders: put them under train/ and test/."
    elif any(c.lower() in SPLITS for c in children):
        hint = " It has split folders, but train/ and test/ each need NORMAL/ and PNEUMONIA/ inside."
    return (
        f"no chest X-ray dataset found under {base}: expected <root>/{{train,test}}[/val]/"
        f"{{NORMAL,PNEUMONIA}}/*.jpeg, up to 3 levels down. Found: {children or 'an empty folder'}." + hint
    )


def _inspect_file(path: Path, read_headers: bool, sha256: bool) -> dict[str, Any]:
    """Index columns of one file that need its bytes; never raises for a bad image."""
    row: dict[str, Any] = {"bytes": path.stat().st_size, "problem": None}
    if read_headers:
        row.update(width=pd.NA, height=pd.NA, mode=None, format=None, exif_orientation=pd.NA)
        try:
            header = read_header(path)
        except ImageReadError as error:
            row["problem"] = str(error).split(": ", 1)[-1]
        else:
            row.update(
                width=header.width,
                height=header.height,
                mode=header.mode,
                format=header.format,
                exif_orientation=header.exif_orientation,
            )
            row["problem"] = find_integrity_problem(path, header.format)
    elif row["bytes"] == 0:
        row["problem"] = "empty file (0 bytes)"
    if sha256:
        row["sha256"] = file_sha256(path)
    return row


def index_dataset(
    root: str | os.PathLike,
    *,
    read_headers: bool = True,
    sha256: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> DatasetIndex:
    """One row per image of a dataset copy, with what its name and header say.

    Parameters
    ----------
    root : str or path-like
        The dataset root or a folder above it (see :func:`find_dataset`).
    read_headers : bool
        Read width, height, mode, format and EXIF orientation from each file's
        header (pixels are not decoded) and check that the file is complete.
    sha256 : bool
        Hash every file (reads all bytes).
    workers : int, optional
        Worker processes reading files in parallel (default: one per core); lists
        shorter than ``PARALLEL_MIN_FILES`` are read in this process, which is faster.
    progress : bool
        Show a progress bar.

    Returns
    -------
    DatasetIndex
        Its ``table`` has the columns ``path`` (relative to the dataset root,
        ``/``-separated), ``split``, ``label``, ``name``, ``patient_id``, ``pathogen``
        (bacteria, virus, none), ``bytes``, ``problem`` (None, or why the image is
        unusable), then with ``read_headers`` ``width``, ``height`` (pixels), ``mode``,
        ``format``, ``exif_orientation``, and with ``sha256`` a ``sha256`` column.
        Rows are sorted by path.

    Raises
    ------
    FileNotFoundError, DatasetLayoutError
        As :func:`find_dataset`.
    """
    layout = find_dataset(root)
    rows = []
    for path in layout.images:
        relative = path.relative_to(layout.root)
        parsed = parse_name(path.name)
        rows.append(
            {
                "path": relative.as_posix(),
                "split": relative.parts[0].lower(),
                "label": relative.parts[1].upper(),
                "name": path.name,
                "patient_id": parsed.patient_id,
                "pathogen": parsed.pathogen,
            }
        )
    inspect = partial(_inspect_file, read_headers=read_headers, sha256=sha256)
    details = map_with_progress(
        inspect,
        layout.images,
        desc="Indexing images",
        serial_below=PARALLEL_MIN_FILES,
        workers=workers,
        progress=progress,
    )
    table = pd.DataFrame([{**row, **extra} for row, extra in zip(rows, details)])
    if table.empty:
        table = pd.DataFrame(columns=["path", "split", "label", "name", "patient_id", "pathogen", "bytes", "problem"])
    if read_headers:
        for column in ("width", "height", "exif_orientation"):
            table[column] = table[column].astype("Int64")
    return DatasetIndex(
        root=layout.root,
        layout=layout.layout,
        table=table.sort_values("path", ignore_index=True),
        skipped=layout.skipped_counts,
        ignored_copies=list(layout.ignored_copies),
    )


def index_problems(index: pd.DataFrame) -> pd.DataFrame:
    """The rows of an index whose image is unusable, with the ``problem`` column."""
    return index.loc[index["problem"].notna(), ["path", "split", "label", "bytes", "problem"]].reset_index(drop=True)
