"""Index a copy of the chest X-ray dataset: one row per image, with what its name and header say.

:func:`index_dataset` finds the copy (:func:`cxr_utils.layout.find_dataset`) and returns a
:class:`DatasetIndex`: the table of images and the copy it describes (its root, layout, and
what was skipped), in one object. Images that cannot be read (empty, truncated, corrupt,
too large, unreadable) stay in the table with their problem named in the ``problem``
column. Checking a copy against the official dataset is :mod:`cxr_utils.verification`;
patients and duplicates across splits are :mod:`cxr_utils.audit`.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .images import ImageReadError, decode_problem, file_sha256, find_integrity_problem, pixel_problem, read_header
from .layout import IMAGE_SUFFIXES, LABELS, SKIP_NOT_IMAGE, DatasetLayoutError, find_dataset
from .names import parse_name
from .parallel import map_with_progress

__all__ = ["DatasetIndex", "index_dataset", "binary_labels"]

#: The problem of a file whose name holds bytes that are not UTF-8 (Python keeps them as surrogates).
_NOT_UTF8 = "file name is not valid UTF-8 (unzipped from an archive made with another encoding?): rename it"

#: Below this many files, reading headers in this process beats starting worker
#: processes (benchmarks/header_reads.py: about 12,000 headers/s serial on 2 cores).
PARALLEL_MIN_FILES = 1000


def binary_labels(labels: ArrayLike) -> np.ndarray:
    """Class names (shape ``(n,)``, e.g. an index's ``label`` column) as the model's targets.

    Returns shape ``(n,)``, dtype ``int64``: 1 for ``"PNEUMONIA"``, 0 for ``"NORMAL"``. Raises
    ValueError if a label is neither.
    """
    values = np.asarray(labels, dtype=object)
    unknown = sorted({str(v) for v in values.tolist()} - set(LABELS))
    if unknown:
        raise ValueError(f"labels must be NORMAL or PNEUMONIA, found {', '.join(unknown[:5])}")
    return (values == "PNEUMONIA").astype(np.int64)


@dataclass(frozen=True)
class DatasetIndex:
    """An indexed dataset copy: one row per image, and the copy the rows belong to.

    ``root`` holds the split folders (every ``path`` of ``table`` is relative to it);
    ``layout`` is ``"kaggle"`` (train/val/test) or ``"mendeley"`` (train/test); ``table`` has
    one row per image (columns: see :func:`index_dataset`), in the order of :func:`index_dataset`; ``skipped`` maps a
    reason to the paths (relative to the folder searched) of the files and folders not indexed
    for it; ``ignored_copies`` are other dataset roots found (the nested ``chest_xray/chest_xray``).
    """

    root: Path
    layout: str
    table: pd.DataFrame
    skipped: dict[str, list[str]]
    ignored_copies: list[Path]

    def __len__(self) -> int:
        return len(self.table)

    @property
    def skipped_counts(self) -> dict[str, int]:
        """Reason -> how many files or folders were skipped for it."""
        return {reason: len(paths) for reason, paths in self.skipped.items()}

    @property
    def problems(self) -> pd.DataFrame:
        """The rows whose image is unusable: ``path``, ``split``, ``label``, ``bytes``, ``problem``."""
        bad = self.table[self.table["problem"].notna()]
        return bad[["path", "split", "label", "bytes", "problem"]].reset_index(drop=True)


def _printable(name: str) -> str:
    """``name`` with any byte that is not UTF-8 written as ``\\xNN`` (``caf\\xe9.jpeg``): text every table can hold."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _inspect_file(path: Path, read_headers: bool, sha256: bool, decode: bool) -> dict[str, Any]:
    """Index columns of one file that need its bytes; never raises for a bad or unreadable file."""
    row: dict[str, Any] = {"bytes": pd.NA, "problem": None}
    if read_headers:
        row.update(width=pd.NA, height=pd.NA, mode=None, format=None, exif_orientation=pd.NA)
    if sha256:
        row["sha256"] = None
    try:
        row["bytes"] = path.stat().st_size
        if read_headers:
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
                row["problem"] = pixel_problem(header.width, header.height) or find_integrity_problem(
                    path, header.format
                )
        elif row["bytes"] == 0:
            row["problem"] = "empty file (0 bytes)"
        if decode and row["problem"] is None:
            row["problem"] = decode_problem(path)
        if sha256:
            row["sha256"] = file_sha256(path)
    except OSError as error:  # a file that cannot be read at all: listed, never a traceback
        row["problem"] = f"unreadable ({error.strerror or error})"
    return row


def index_dataset(
    root: str | os.PathLike,
    *,
    read_headers: bool = True,
    sha256: bool = False,
    decode: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> DatasetIndex:
    """One row per image of a dataset copy (``root``, or a folder above it), with what its name and header say.

    ``read_headers`` reads width, height, mode, format and EXIF orientation from each file's
    header (pixels are not decoded) and checks that the file is complete; ``sha256`` hashes
    every file; ``decode`` decodes every image, so that one damaged inside (header and end
    intact) is a problem too. ``workers`` processes read the files (default one per core;
    lists shorter than ``PARALLEL_MIN_FILES`` are read in this process).

    Returns a :class:`DatasetIndex` whose ``table`` has the columns ``path`` (relative to the
    dataset root, ``/``-separated), ``split``, ``label``, ``name``, ``patient_id``,
    ``pathogen`` (bacteria, virus, none), ``bytes``, ``problem`` (None, or why the image is
    unusable), with ``read_headers`` ``width``, ``height`` (pixels), ``mode``, ``format``,
    ``exif_orientation``, and with ``sha256`` a ``sha256`` column. Rows are sorted by path, except
    that test rows are sorted by file name: a test image's place in the table (and so in every
    batch it is scored in) does not depend on the label folder it was filed under. A file
    whose name is not valid UTF-8 (``unzip`` of an archive made with another encoding) is a
    problem: its ``path`` and ``name`` show the odd bytes as ``\\xNN``, and it is never opened.

    Raises FileNotFoundError and :class:`DatasetLayoutError` as :func:`find_dataset`; the
    latter too when the class folders hold no image file at all (only ``.DS_Store``, ``.dcm``
    or ``.bmp`` files, say), in one line naming the folder and what it holds instead.
    """
    layout = find_dataset(root)
    if not layout.images:
        others = Counter(Path(p).suffix.lower() or Path(p).name for p in layout.skipped.get(SKIP_NOT_IMAGE, []))
        found = ", ".join(f"{count} {kind}" for kind, count in others.most_common(5)) or "nothing"
        raise DatasetLayoutError(
            f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the class folders of {layout.root}: they hold "
            f"{sum(others.values())} other file(s) ({found}); convert the images to JPEG or PNG"
        )
    rows = []
    for path in layout.images:
        relative = path.relative_to(layout.root)
        name = _printable(path.name)
        parsed = parse_name(name)
        rows.append(
            {
                "path": _printable(relative.as_posix()),
                "split": relative.parts[0].lower(),
                "label": relative.parts[1].upper(),
                "name": name,
                "patient_id": parsed.patient_id,
                "pathogen": parsed.pathogen,
            }
        )
    inspect = partial(_inspect_file, read_headers=read_headers, sha256=sha256, decode=decode)
    details = map_with_progress(
        inspect,
        layout.images,
        desc="Indexing images",
        serial_below=PARALLEL_MIN_FILES,
        workers=workers,
        progress=progress,
    )
    table = pd.DataFrame([{**row, **extra} for row, extra in zip(rows, details, strict=True)])
    renamed = table["path"] != [image.relative_to(layout.root).as_posix() for image in layout.images]
    table.loc[renamed, "problem"] = _NOT_UTF8
    if read_headers:
        for column in ("width", "height", "exif_orientation"):
            table[column] = table[column].astype("Int64")
    return DatasetIndex(
        root=layout.root,
        layout=layout.layout,
        table=_in_label_free_order(table),
        skipped={reason: [_printable(p) for p in paths] for reason, paths in layout.skipped.items()},
        ignored_copies=list(layout.ignored_copies),
    )


def _none_usable(dataset: DatasetIndex) -> str | None:
    """One line naming the copy when it holds images but not one of them is usable, else ``None``."""
    problems = dataset.table["problem"]
    if dataset.table.empty or problems.isna().any():
        return None
    if (problems == "empty file (0 bytes)").all():
        why = "every one is an empty file (0 bytes): cloud 'online-only' placeholders? download the files first"
    else:
        why = f"every one has a problem (the first: {dataset.table['path'].iloc[0]}: {problems.iloc[0]})"
    return f"none of the {len(problems)} images in {dataset.root} can be read: {why}"


def _in_label_free_order(table: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by path, except that the test rows are sorted by file name among themselves.

    A test image's row, and so its place in every batch a model scores it in, then does not depend
    on the label folder it was filed under (float32 results can depend on an image's position in
    its batch); training and validation rows keep their path order and their positions.
    """
    key = table["path"].where(table["split"] != "test", table["path"].str.split("/").str[0] + "/" + table["name"])
    return table.assign(_key=key).sort_values("_key", kind="stable", ignore_index=True).drop(columns="_key")
