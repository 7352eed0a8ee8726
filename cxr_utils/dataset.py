"""The dataset on disk: find a copy, index its images (one row each); the official counts."""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from PIL import Image, UnidentifiedImageError

from . import _progress

__all__ = ["OFFICIAL_COUNTS", "DatasetLayoutError", "find_dataset", "index_dataset", "file_sha256"]

SPLITS = ("train", "val", "test")
LABELS = ("NORMAL", "PNEUMONIA")
IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png"})
MAX_PIXELS = 50_000_000  # about 7 times the largest official image: a larger file is a problem, never decoded
#: Images per (split, class) of the official Kaggle layout (Mendeley's train also holds the 16 val images).
OFFICIAL_COUNTS = {
    ("train", "NORMAL"): 1341,
    ("train", "PNEUMONIA"): 3875,
    ("val", "NORMAL"): 8,
    ("val", "PNEUMONIA"): 8,
    ("test", "NORMAL"): 234,
    ("test", "PNEUMONIA"): 390,
}
#: Why a file or folder was not indexed, by short name: the keys of ``DatasetIndex.skipped``.
SKIP = {
    "macos": "macOS metadata (__MACOSX/, ._*)",
    "hidden": "in a hidden folder (an unfinished download or extraction: .chest_xray-partial-*, .download/)",
    "copy": "in an ignored duplicate copy of the dataset",
    "not image": "not an image file (.DS_Store, text, ...)",
    "outside": "image outside the <split>/<class>/ folders",
    "unreadable": "unreadable folder (its images could not be listed: check its permissions)",
    "loop": "link to a folder already indexed (a loop), not followed",
}
EMPTY = "empty file (0 bytes)"
_NOT_UTF8 = "file name is not valid UTF-8 (unzipped from an archive made with another encoding?): rename it"
_PERSON = re.compile(r"(person\d+)_(bacteria|virus)_\d+(?:_\d+)?")
_NORMAL = re.compile(r"((?:NORMAL2-)?IM-\d+)-\d+(?:-\d+)?")


class DatasetLayoutError(ValueError):
    """The folder does not hold the dataset in a layout the course understands."""


class Name(NamedTuple):
    """What an official file name says; both ``None`` for a name of no official pattern."""

    patient_id: str | None
    pathogen: str | None


def parse_name(name: str) -> Name:
    """Patient id and pathogen of a file name: ``person10_virus_35.jpeg`` is ``person10``, ``virus``."""
    stem = re.sub(r"\.(?:jpeg|jpg|png)\Z", "", name.replace("\\", "/").rsplit("/", 1)[-1], flags=re.IGNORECASE)
    if match := _PERSON.fullmatch(stem):
        return Name(match[1], match[2])
    if match := _NORMAL.fullmatch(stem):
        return Name(match[1], "none")
    return Name(None, None)


def binary_labels(labels: ArrayLike) -> np.ndarray:
    """Class names as targets, shape ``(n,)`` int64: 1 for PNEUMONIA, 0 for NORMAL; ValueError for others."""
    values = np.asarray(labels, dtype=object)
    if unknown := sorted({str(v) for v in values.tolist()} - set(LABELS)):
        raise ValueError(f"labels must be NORMAL or PNEUMONIA, found {', '.join(unknown[:5])}")
    return (values == "PNEUMONIA").astype(np.int64)


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class _Layout:
    root: Path
    layout: str
    splits: tuple[str, ...]
    images: list[Path]
    skipped: dict[str, list[str]] = field(default_factory=dict)
    ignored_copies: list[Path] = field(default_factory=list)


def _named(folders: dict, parent: Path, names: tuple[str, ...], case) -> dict[str, Path]:
    """Name -> sub-folder of ``parent`` named one of ``names`` (in ``case``); DatasetLayoutError for two."""
    found: dict[str, Path] = {}
    for name in folders.get(parent, ([], []))[0]:
        if (key := case(name)) in names:
            if key in found:
                raise DatasetLayoutError(
                    f"{found[key]} and {parent / name} are two folders for one {key}: "
                    "merge their images into one folder, or remove one"
                )
            found[key] = parent / name
    return found


def _odd(parts: tuple[str, ...]) -> str | None:
    """``"macos"`` or ``"hidden"`` for a path through macOS metadata or a hidden folder (its last part a file)."""
    if any(part == "__MACOSX" or part.startswith("._") for part in parts):
        return "macos"
    return "hidden" if any(part.startswith(".") for part in parts[:-1]) else None


def find_dataset(path: str | os.PathLike) -> _Layout:
    """The shallowest dataset root in ``path`` or up to 3 levels below, its layout (``"kaggle"``, ``"mendeley"``) and
    image files. FileNotFoundError; DatasetLayoutError when no copy is found or two lie at the same depth."""
    base = Path(os.path.abspath(Path(path).expanduser()))
    if not base.is_dir():
        why = "is a file, not a dataset folder" if base.exists() else "does not exist"
        raise FileNotFoundError(
            f"dataset folder {base} {why}; set CXR_DATA_DIR to the folder holding train/ and test/ "
            "(or run `cxr download`)"
        )
    folders: dict[Path, tuple[list[str], list[str]]] = {}
    visited: set[str] = set()
    skipped: dict[str, list[str]] = {}

    def skip(reason: str, where: str | os.PathLike) -> None:
        skipped.setdefault(SKIP[reason], []).append(Path(os.path.relpath(where, base)).as_posix())

    for folder, subdirs, files in os.walk(base, followlinks=True, onerror=lambda e: skip("unreadable", e.filename)):
        visited.add(os.path.realpath(folder))
        subdirs.sort()
        for name in list(subdirs):
            if os.path.realpath(os.path.join(folder, name)) in visited:  # a link back up: not entered
                subdirs.remove(name)
                skip("loop", os.path.join(folder, name))
        folders[Path(folder)] = (list(subdirs), sorted(files))

    def splits_of(root: Path) -> dict[str, Path]:
        found = _named(folders, root, SPLITS, str.lower)
        return {split: f for split, f in found.items() if _named(folders, f, LABELS, str.upper)}

    roots = sorted(
        (len(parts), folder)
        for folder in folders
        if len(parts := folder.relative_to(base).parts) <= 3
        and not _odd((*parts, ""))
        and {"train", "test"} <= set(splits_of(folder))
    )
    if not roots:
        raise DatasetLayoutError(_missing(base, folders, skipped))
    (depth, root), ignored = roots[0], [folder for _, folder in roots[1:]]
    if same_depth := [str(folder) for d, folder in roots[1:] if d == depth]:
        raise DatasetLayoutError(
            f"several dataset copies at the same depth under {base}: {root} and {', '.join(same_depth)}; "
            "pass the one to use"
        )
    splits = splits_of(root)
    classes = {c.resolve() for s in splits.values() for c in _named(folders, s, LABELS, str.upper).values()}
    copies = [c.resolve() for c in ignored]
    images = []
    for folder, (_, files) in folders.items():
        real = folder.resolve()
        for name in files:
            reason = _odd((folder / name).relative_to(base).parts)
            if reason is None and any(real.is_relative_to(c) for c in copies):
                reason = "copy"
            if reason is None and Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                reason = "not image"
            if reason is None and real in classes:
                images.append(folder / name)
            else:
                skip(reason or "outside", folder / name)
    layout = "kaggle" if "val" in splits else "mendeley"
    return _Layout(root, layout, tuple(s for s in SPLITS if s in splits), images, skipped, ignored)


def _missing(base: Path, folders: dict, skipped: dict) -> str:
    """Why no dataset was found under ``base``, with a hint from what it holds."""
    subdirs, files = folders.get(base, ([], []))
    children = sorted([*subdirs, *files])[:12]
    hint = ""
    if any(c.startswith(".chest_xray-partial-") for c in children):
        hint = " It holds an unfinished extraction, which is never used: run `cxr download` again, which removes it."
    elif {c.upper() for c in children} & set(LABELS):
        hint = " It holds class folders but no split folders: put them under train/ and test/."
    elif any(c.lower() in SPLITS for c in children):
        hint = " It has split folders, but train/ and test/ each need NORMAL/ and PNEUMONIA/ inside."
    if unreadable := skipped.get(SKIP["unreadable"]):
        hint += f" Folders that could not be read: {', '.join(unreadable[:3])}."
    return (
        f"no chest X-ray dataset found under {base}: expected <root>/{{train,test}}[/val]/{{NORMAL,PNEUMONIA}}/*.jpeg, "
        f"up to 3 levels down. Found: {children or 'an empty folder'}.{hint}"
    )


@dataclass(frozen=True)
class DatasetIndex:
    """A dataset copy: ``table`` (one row per image, paths relative to ``root``), its ``layout``, and what was
    ``skipped`` (reason -> paths) or ignored (``ignored_copies``, Kaggle's nested duplicate)."""

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
        """The rows whose image cannot be used: ``path``, ``split``, ``label``, ``bytes``, ``problem``."""
        bad = self.table[self.table["problem"].notna()]
        return bad[["path", "split", "label", "bytes", "problem"]].reset_index(drop=True)

    @property
    def unusable(self) -> str | None:
        """One line naming the copy when it holds images but none of them can be used, else ``None``."""
        problems = self.table["problem"]
        if self.table.empty or problems.isna().any():
            return None
        why = "every one is an empty file (0 bytes): cloud 'online-only' placeholders? download the files first"
        if not (problems == EMPTY).all():
            why = f"every one has a problem (the first: {self.table['path'].iloc[0]}: {problems.iloc[0]})"
        return f"none of the {len(problems)} images in {self.root} can be read: {why}"


def _inspect(path: Path, headers: bool, sha256: bool) -> dict:
    """The columns of one file that need its bytes, and its problem; never raises for a bad or unreadable file."""
    row = {"bytes": pd.NA, "problem": None}
    if headers:
        row |= {"width": pd.NA, "height": pd.NA, "mode": None, "format": None, "exif_orientation": pd.NA}
    try:
        row["bytes"] = path.stat().st_size
        if row["bytes"] == 0:
            row["problem"] = EMPTY
        elif headers:
            row["problem"] = _read_header(path, row)
        if sha256:
            row["sha256"] = file_sha256(path)
    except OSError as error:
        row["problem"] = f"unreadable ({error.strerror or error})"
    return row


def _read_header(path: Path, row: dict) -> str | None:
    """Fill ``row``'s size, mode, format and EXIF orientation from the file's header; return its problem, if any."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as image:
            orientation = int(image.getexif().get(0x0112, 1) or 1)
            row.update(width=image.width, height=image.height, mode=image.mode, format=str(image.format))
            row["exif_orientation"] = orientation
    except UnidentifiedImageError:
        return "not an image Pillow can read"
    except (OSError, SyntaxError, ValueError) as error:
        return f"damaged header ({error})"
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    if (pixels := row["width"] * row["height"]) > MAX_PIXELS:
        return (
            f"too many pixels: {row['width']}x{row['height']} is {pixels / 1e6:.0f} million, over the limit of "
            f"{MAX_PIXELS / 1e6:.0f} million (not decoded)"
        )
    return None


def index_dataset(
    root: str | os.PathLike, *, read_headers: bool = True, sha256: bool = False, progress: bool = True
) -> DatasetIndex:
    """One row per image of the copy in ``root`` (``path``, ``split``, ``label``, ``name``, ``patient_id``,
    ``pathogen``, ``bytes``, ``problem``, header columns, ``sha256``); test rows in file-name order."""
    layout = find_dataset(root)
    if not layout.images:
        others = Counter(Path(p).suffix.lower() or Path(p).name for p in layout.skipped.get(SKIP["not image"], []))
        found = ", ".join(f"{count} {kind}" for kind, count in others.most_common(5)) or "nothing"
        raise DatasetLayoutError(
            f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the class folders of {layout.root}: they hold "
            f"{sum(others.values())} other file(s) ({found}); convert the images to JPEG or PNG"
        )
    rows = []
    for path in _progress(layout.images, desc="Indexing images", unit="img", disable=not progress):
        relative = path.relative_to(layout.root).as_posix()
        shown = _printable(relative)
        split, label, name = shown.split("/")[0].lower(), shown.split("/")[1].upper(), shown.rsplit("/", 1)[-1]
        row = {"path": shown, "split": split, "label": label, "name": name, **parse_name(name)._asdict()}
        row |= _inspect(path, read_headers, sha256)
        if shown != relative:
            row["problem"] = _NOT_UTF8
        rows.append(row)
    table = pd.DataFrame(rows)
    if read_headers:
        table = table.astype({"width": "Int64", "height": "Int64", "exif_orientation": "Int64"})
    key = table["path"].where(table["split"] != "test", table["path"].str.split("/").str[0] + "/" + table["name"])
    table = table.assign(_key=key).sort_values("_key", kind="stable", ignore_index=True).drop(columns="_key")
    skipped = {reason: [_printable(p) for p in paths] for reason, paths in layout.skipped.items()}
    return DatasetIndex(layout.root, layout.layout, table, skipped, layout.ignored_copies)


def _printable(name: str) -> str:
    """``name`` with bytes that are not UTF-8 written ``\\xNN`` (``caf\\xe9.jpeg``): text every table can hold."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
