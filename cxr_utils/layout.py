"""Find a copy of the chest X-ray dataset on disk: its root, its layout, its image files.

Layouts accepted (``<root>`` is the folder you pass, or one found under it):

* Kaggle: ``<root>/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg``
  (``paultimothymooney/chest-xray-pneumonia``; its zip also holds a nested
  duplicate ``chest_xray/chest_xray/`` and ``__MACOSX/`` folders);
* Mendeley: ``<root>/{train,test}/{NORMAL,PNEUMONIA}/*.jpeg`` (``ChestXRay2017.zip``,
  whose train split includes Kaggle's 16 val images);
* either of them one or two levels down, e.g. ``data/chest_xray/...``.

The tree is read once (:func:`find_dataset`). When several copies are found (the nested
duplicate), the shallowest is used and the others are reported as ignored copies: no
image is counted twice. Links to folders are followed, each real folder once (a link
back up is a loop and is reported). Files that are not images (``.DS_Store``), macOS
metadata (``__MACOSX/``, ``._*``), hidden folders (an unfinished extraction
``.chest_xray-partial-*`` is never taken for data), images outside the split/class
folders and folders that cannot be read are skipped and counted, never silently dropped.
Two folders for one class that differ only in case (``NORMAL`` and ``normal``) are an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SPLITS", "LABELS", "IMAGE_SUFFIXES", "DatasetLayoutError", "find_dataset"]

SPLITS = ("train", "val", "test")
LABELS = ("NORMAL", "PNEUMONIA")
IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png"})
_MAX_DEPTH = 3  # how far below the folder given a dataset root is looked for

# Why a file was skipped, as reported in _DatasetLayout.skipped and DatasetIndex.skipped.
SKIP_MACOS = "macOS metadata (__MACOSX/, ._*)"
SKIP_NOT_IMAGE = "not an image file (.DS_Store, text, ...)"
SKIP_COPY = "in an ignored duplicate copy of the dataset"
SKIP_OUTSIDE = "image outside the <split>/<class>/ folders"
SKIP_HIDDEN = "in a hidden folder (an unfinished download or extraction: .chest_xray-partial-*, .download/)"
SKIP_UNREADABLE = "unreadable folder (its images could not be listed: check its permissions)"
SKIP_LOOP = "link to a folder already indexed (a loop), not followed"


class DatasetLayoutError(ValueError):
    """The folder does not hold the dataset in a layout this package understands."""


@dataclass
class _DatasetLayout:
    """Where a dataset copy's images are, and what was skipped on the way.

    ``root`` holds the split folders; ``layout`` is ``"kaggle"`` (train/val/test) or
    ``"mendeley"`` (train/test); ``splits`` the split folders present, in the order train,
    val, test; ``images`` every image file under ``root/<split>/<class>/``, sorted;
    ``skipped`` reason -> paths (relative to the folder searched) of files not indexed;
    ``ignored_copies`` other dataset roots found (the nested ``chest_xray/chest_xray``).
    """

    root: Path
    layout: str
    splits: tuple[str, ...]
    images: list[Path]
    skipped: dict[str, list[str]] = field(default_factory=dict)
    ignored_copies: list[Path] = field(default_factory=list)


def _is_macos_metadata(parts: Iterable[str]) -> bool:
    return any(part == "__MACOSX" or part.startswith("._") for part in parts)


class _Tree:
    """A folder tree read in one pass: sub-folders and files of every folder, and what could not be read."""

    def __init__(self, base: Path):
        self.folders: dict[Path, tuple[list[str], list[str]]] = {}
        self.unreadable: list[Path] = []
        self.loops: list[Path] = []
        visited: set[str] = set()

        def unreadable(error: OSError) -> None:
            self.unreadable.append(Path(error.filename))

        # Links to folders are followed (a split kept elsewhere is part of the copy), each real
        # folder once: a link back to a folder already seen is a loop and is not entered.
        for folder, subdirs, files in os.walk(base, followlinks=True, onerror=unreadable):
            visited.add(os.path.realpath(folder))
            subdirs.sort()
            for name in list(subdirs):
                if os.path.realpath(os.path.join(folder, name)) in visited:
                    subdirs.remove(name)
                    self.loops.append(Path(folder) / name)
            self.folders[Path(folder)] = (list(subdirs), sorted(files))

    def subdirs(self, folder: Path) -> list[str]:
        return self.folders.get(folder, ((), ()))[0]


def _matching(tree: _Tree, folder: Path, names: Iterable[str], case) -> dict[str, Path]:
    """Name -> sub-folder of ``folder`` whose name, in ``case``, is one of ``names``.

    Raises
    ------
    DatasetLayoutError
        When two sub-folders differ only in case (``NORMAL`` and ``normal``): which one is
        meant cannot be guessed, and dropping either would lose images.
    """
    found: dict[str, Path] = {}
    for name in tree.subdirs(folder):
        key = case(name)
        if key in names:
            if key in found:
                raise DatasetLayoutError(
                    f"{found[key]} and {folder / name} are two folders for one {key}: "
                    "merge their images into one folder, or remove one"
                )
            found[key] = folder / name
    return found


def _class_dirs(tree: _Tree, split_dir: Path) -> dict[str, Path]:
    """Label -> folder for the class folders under one split (names matched case-blind)."""
    return _matching(tree, split_dir, LABELS, str.upper)


def _split_dirs(tree: _Tree, root: Path) -> dict[str, Path]:
    """Split -> folder for the split folders under a candidate root that hold class folders."""
    return {
        split: folder for split, folder in _matching(tree, root, SPLITS, str.lower).items() if _class_dirs(tree, folder)
    }


def _is_hidden(folders: Iterable[str]) -> bool:
    """A path through a hidden folder: an unfinished extraction (``.chest_xray-partial-*``), a download in progress."""
    return any(part.startswith(".") and part not in (".", "..") for part in folders)


def find_dataset(path: str | os.PathLike) -> _DatasetLayout:
    """Locate the dataset in ``path``, its root or a folder up to 3 levels above it, and list its images.

    Raises FileNotFoundError if ``path`` does not exist or is not a folder, and
    :class:`DatasetLayoutError` if no folder with ``train/`` and ``test/`` class folders is
    found, or two copies are found at the same depth (ambiguous: pass the one you mean).
    """
    base = Path(os.path.abspath(Path(path).expanduser()))
    if not base.exists():
        raise FileNotFoundError(
            f"dataset folder {base} does not exist; set CXR_DATA_DIR to the folder holding "
            "train/ and test/ (or run `cxr download`)"
        )
    if not base.is_dir():
        raise FileNotFoundError(f"{base} is a file, not a dataset folder")

    tree = _Tree(base)
    candidates: list[tuple[int, Path]] = []
    for folder in tree.folders:
        relative = folder.relative_to(base).parts
        if len(relative) > _MAX_DEPTH or _is_macos_metadata(relative) or _is_hidden(relative):
            continue
        if {"train", "test"} <= set(_split_dirs(tree, folder)):
            candidates.append((len(relative), folder))
    if not candidates:
        raise DatasetLayoutError(_describe_missing_layout(base, tree))
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
    for folder, (_subdirs, files) in tree.folders.items():
        resolved_folder = folder.resolve()
        for name in files:
            file_path = folder / name
            relative = file_path.relative_to(base)
            if _is_macos_metadata(relative.parts):
                reason = SKIP_MACOS
            elif _is_hidden(relative.parts[:-1]):
                reason = SKIP_HIDDEN
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
    for folder in tree.unreadable:
        skipped.setdefault(SKIP_UNREADABLE, []).append(folder.relative_to(base).as_posix())
    for folder in tree.loops:
        skipped.setdefault(SKIP_LOOP, []).append(folder.relative_to(base).as_posix())
    return _DatasetLayout(
        root=root,
        layout="kaggle" if "val" in splits else "mendeley",
        splits=tuple(s for s in SPLITS if s in splits),
        images=images,
        skipped=skipped,
        ignored_copies=ignored,
    )


def _describe_missing_layout(base: Path, tree: _Tree) -> str:
    children = sorted(tree.subdirs(base) + tree.folders.get(base, ((), ()))[1])[:12]
    hint = ""
    unfinished = [c for c in children if c.startswith(".chest_xray-partial-")]
    if unfinished:
        hint = (
            f" It holds an unfinished extraction ({', '.join(unfinished)}), which is never used: "
            "run `cxr download` again, which removes it."
        )
    elif {c.upper() for c in children} & set(LABELS):
        hint = " It holds class folders but no split folders: put them under train/ and test/."
    elif any(c.lower() in SPLITS for c in children):
        hint = " It has split folders, but train/ and test/ each need NORMAL/ and PNEUMONIA/ inside."
    if tree.unreadable:
        hint += f" Folders that could not be read: {', '.join(str(p) for p in tree.unreadable[:3])}."
    return (
        f"no chest X-ray dataset found under {base}: expected <root>/{{train,test}}[/val]/"
        f"{{NORMAL,PNEUMONIA}}/*.jpeg, up to {_MAX_DEPTH} levels down. Found: {children or 'an empty folder'}." + hint
    )
