"""Find, index and verify a copy of the chest X-ray dataset.

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
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from .images import ImageReadError, file_sha256, find_integrity_problem, read_header
from .names import parse_name

__all__ = [
    "SPLITS",
    "LABELS",
    "OFFICIAL_COUNTS",
    "MENDELEY_COUNTS",
    "DatasetLayoutError",
    "DatasetLayout",
    "find_dataset",
    "index_dataset",
    "index_problems",
    "shared_patients",
    "duplicate_files",
    "official_manifest_path",
    "read_manifest",
    "index_manifest",
    "VerificationReport",
    "verify_dataset",
]

SPLITS = ("train", "val", "test")
LABELS = ("NORMAL", "PNEUMONIA")
IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png"})

#: Images per (split, label) in the official Kaggle layout: 5,856 in all.
OFFICIAL_COUNTS: dict[tuple[str, str], int] = {
    ("train", "NORMAL"): 1341,
    ("train", "PNEUMONIA"): 3875,
    ("val", "NORMAL"): 8,
    ("val", "PNEUMONIA"): 8,
    ("test", "NORMAL"): 234,
    ("test", "PNEUMONIA"): 390,
}
#: The same images in the Mendeley layout, where train includes Kaggle's val.
MENDELEY_COUNTS: dict[tuple[str, str], int] = {
    ("train", "NORMAL"): 1349,
    ("train", "PNEUMONIA"): 3883,
    ("test", "NORMAL"): 234,
    ("test", "PNEUMONIA"): 390,
}

# Why a file was skipped, as reported in DatasetLayout.skipped and the index's attrs.
SKIP_MACOS = "macOS metadata (__MACOSX/, ._*)"
SKIP_NOT_IMAGE = "not an image file (.DS_Store, text, ...)"
SKIP_COPY = "in an ignored duplicate copy of the dataset"
SKIP_OUTSIDE = "image outside the <split>/<class>/ folders"


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


def _is_macos_metadata(parts: Iterable[str]) -> bool:
    return any(part == "__MACOSX" or part.startswith("._") for part in parts)


def _class_dirs(split_dir: Path) -> dict[str, Path]:
    """Label -> folder for the class folders under one split (names matched case-blind)."""
    found = {}
    if split_dir.is_dir():
        for child in split_dir.iterdir():
            if child.is_dir() and child.name.upper() in LABELS:
                found[child.name.upper()] = child
    return found


def _split_dirs(root: Path) -> dict[str, Path]:
    """Split -> folder for the split folders under a candidate root that hold class folders."""
    found = {}
    if root.is_dir():
        for child in root.iterdir():
            if child.is_dir() and child.name.lower() in SPLITS and _class_dirs(child):
                found[child.name.lower()] = child
    return found


def _is_dataset_root(path: Path) -> bool:
    splits = _split_dirs(path)
    return "train" in splits and "test" in splits


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

    candidates: list[tuple[int, Path]] = []
    for folder, subdirs, _files in os.walk(base):
        folder_path = Path(folder)
        depth = len(folder_path.relative_to(base).parts)
        subdirs[:] = sorted(d for d in subdirs if not _is_macos_metadata([d]))
        if depth > max_depth:
            subdirs[:] = []
            continue
        if _is_dataset_root(folder_path):
            candidates.append((depth, folder_path))
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

    splits = _split_dirs(root)
    split_names = tuple(s for s in SPLITS if s in splits)
    layout = "kaggle" if "val" in splits else "mendeley"
    indexed_dirs = {
        class_dir.resolve() for split_dir in splits.values() for class_dir in _class_dirs(split_dir).values()
    }
    ignored_resolved = [c.resolve() for c in ignored]

    images: list[Path] = []
    skipped: dict[str, list[str]] = {}
    for folder, subdirs, files in os.walk(base):
        folder_path = Path(folder)
        subdirs.sort()
        for name in sorted(files):
            file_path = folder_path / name
            relative = file_path.relative_to(base)
            resolved_parent = folder_path.resolve()
            if _is_macos_metadata(relative.parts):
                reason = SKIP_MACOS
            elif any(resolved_parent.is_relative_to(c) for c in ignored_resolved):
                reason = SKIP_COPY
            elif file_path.suffix.lower() not in IMAGE_SUFFIXES:
                reason = SKIP_NOT_IMAGE
            elif resolved_parent in indexed_dirs:
                images.append(file_path)
                continue
            else:
                reason = SKIP_OUTSIDE
            skipped.setdefault(reason, []).append(relative.as_posix())
    return DatasetLayout(
        root=root,
        layout=layout,
        splits=split_names,
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


#: Below this many files, reading in this process beats starting worker processes
#: (measured with benchmarks/header_reads.py: about 12,000 headers/s serial on 2 cores).
PARALLEL_MIN_FILES = 1000


def _map_files(function, paths: list[Path], workers: int | None, progress: bool, desc: str) -> list:
    """``[function(p) for p in paths]``, in worker processes for long lists, with a progress bar.

    Header parsing is Python code holding the GIL, so threads slow it down; processes
    do not (1.5x faster than one process on 2 cores for 5,856 files).
    """
    workers = workers or os.cpu_count() or 1
    bar = dict(total=len(paths), desc=desc, unit="img", disable=not progress)
    if workers == 1 or len(paths) < PARALLEL_MIN_FILES:
        return [function(p) for p in tqdm(paths, **bar)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        chunksize = max(1, len(paths) // (8 * workers))
        return list(tqdm(pool.map(function, paths, chunksize=chunksize), **bar))


def index_dataset(
    root: str | os.PathLike,
    *,
    read_headers: bool = True,
    sha256: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
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
    pandas.DataFrame
        Columns ``path`` (relative to the dataset root, ``/``-separated), ``split``,
        ``label``, ``name``, ``patient_id``, ``pathogen`` (bacteria, virus, none),
        ``bytes``, ``problem`` (None, or why the image is unusable), then with
        ``read_headers`` ``width``, ``height`` (pixels), ``mode``, ``format``,
        ``exif_orientation``, and with ``sha256`` a ``sha256`` column. Rows are
        sorted by path. ``df.attrs`` holds ``root``, ``layout``, ``skipped``
        (reason -> count) and ``ignored_copies``.

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
    details = _map_files(inspect, layout.images, workers, progress, "Indexing images")
    frame = pd.DataFrame([{**row, **extra} for row, extra in zip(rows, details)])
    if frame.empty:
        frame = pd.DataFrame(columns=["path", "split", "label", "name", "patient_id", "pathogen", "bytes", "problem"])
    if read_headers:
        for column in ("width", "height", "exif_orientation"):
            frame[column] = frame[column].astype("Int64")
    frame = frame.sort_values("path", ignore_index=True)
    frame.attrs.update(
        root=str(layout.root),
        layout=layout.layout,
        skipped=layout.skipped_counts,
        ignored_copies=[str(p) for p in layout.ignored_copies],
    )
    return frame


def index_problems(index: pd.DataFrame) -> pd.DataFrame:
    """The rows of an index whose image is unusable, with the ``problem`` column."""
    return index.loc[index["problem"].notna(), ["path", "split", "label", "bytes", "problem"]].reset_index(drop=True)


def shared_patients(index: pd.DataFrame) -> pd.DataFrame:
    """Patient ids that occur in more than one split.

    Parameters
    ----------
    index : pandas.DataFrame
        An index with ``split`` and ``patient_id`` columns (from :func:`index_dataset`
        or :func:`index_manifest`).

    Returns
    -------
    pandas.DataFrame
        One row per shared patient id: ``patient_id``, ``splits`` (comma-joined, in
        train/val/test order), ``pathogens`` (comma-joined),
        ``same_pathogen_in_two_splits`` (True when one pathogen occurs under this id
        in two splits) and one image-count column per split ``n_<split>``. Sorted
        by patient id. Names only: see :mod:`cxr_utils.names` for what a shared id
        can and cannot mean.
    """
    known = index.dropna(subset=["patient_id"])
    counts = pd.crosstab(known["patient_id"], known["split"])
    counts = counts[[s for s in SPLITS if s in counts.columns]]
    shared = counts[(counts > 0).sum(axis=1) > 1]
    pathogens = known.groupby("patient_id")["pathogen"].agg(lambda v: ",".join(sorted(set(v))))
    # a pathogen seen in two splits under the same id (a hint that it may be one person)
    splits_per_pathogen = known.groupby(["patient_id", "pathogen"])["split"].nunique()
    same_pathogen = (splits_per_pathogen > 1).groupby(level="patient_id").any()
    result = pd.DataFrame(
        {
            "patient_id": shared.index,
            "splits": [",".join(s for s in counts.columns if row[s] > 0) for _, row in shared.iterrows()],
            "pathogens": pathogens.loc[shared.index].to_numpy(),
            "same_pathogen_in_two_splits": same_pathogen.loc[shared.index].to_numpy(),
        }
    )
    for split in counts.columns:
        result[f"n_{split}"] = shared[split].to_numpy()
    return result.sort_values("patient_id", ignore_index=True)


def duplicate_files(index: pd.DataFrame) -> pd.DataFrame:
    """Groups of byte-identical files, from the ``sha256`` column.

    Returns
    -------
    pandas.DataFrame
        One row per file that shares its hash with another: ``group`` (0, 1, ...),
        ``sha256``, ``path``, ``split``, ``label``, ``patient_id``, and
        ``cross_split`` (True when the group spans two splits, which would leak
        training images into evaluation) and ``cross_patient`` (True when the
        copies carry different patient ids).

    Raises
    ------
    KeyError
        If the index has no ``sha256`` column (index with ``sha256=True``).
    """
    if "sha256" not in index.columns:
        raise KeyError("the index has no sha256 column: build it with index_dataset(..., sha256=True)")
    repeated = index[index.duplicated("sha256", keep=False)].sort_values(["sha256", "path"])
    groups = {digest: number for number, digest in enumerate(repeated["sha256"].unique())}
    result = repeated[["sha256", "path", "split", "label", "patient_id"]].copy()
    result.insert(0, "group", result["sha256"].map(groups))
    result["cross_split"] = result.groupby("sha256")["split"].transform("nunique") > 1
    result["cross_patient"] = result.groupby("sha256")["patient_id"].transform("nunique") > 1
    return result.sort_values(["group", "path"], ignore_index=True)


def official_manifest_path() -> Path:
    """The official manifest shipped with the package: 5,856 rows of ``path, sha256, bytes``."""
    return Path(str(resources.files("cxr_utils") / "data" / "official_sha256.tsv"))


def read_manifest(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read a manifest file: ``relative/path<TAB>sha256<TAB>bytes`` per line, no header.

    Parameters
    ----------
    path : str or path-like, optional
        The manifest; default the official one (:func:`official_manifest_path`).

    Returns
    -------
    pandas.DataFrame
        Columns ``path``, ``sha256``, ``bytes``.

    Raises
    ------
    ValueError
        If a line does not have three tab-separated fields.
    """
    path = Path(path) if path is not None else official_manifest_path()
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 3 or not fields[2].isdigit():
                raise ValueError(f"{path}:{number}: expected path<TAB>sha256<TAB>bytes, got {line!r}")
            rows.append((fields[0], fields[1].lower(), int(fields[2])))
    return pd.DataFrame(rows, columns=["path", "sha256", "bytes"])


def index_manifest(manifest: pd.DataFrame | str | os.PathLike | None = None) -> pd.DataFrame:
    """An index built from a manifest's names alone (no image files needed).

    Returns
    -------
    pandas.DataFrame
        The manifest's columns plus ``split``, ``label``, ``name``, ``patient_id``
        and ``pathogen``, as in :func:`index_dataset`.
    """
    frame = manifest.copy() if isinstance(manifest, pd.DataFrame) else read_manifest(manifest)
    parts = frame["path"].str.split("/")
    frame["split"] = parts.str[0].str.lower()
    frame["label"] = parts.str[1].str.upper()
    frame["name"] = parts.str[-1]
    parsed = [parse_name(name) for name in frame["name"]]
    frame["patient_id"] = [p.patient_id for p in parsed]
    frame["pathogen"] = [p.pathogen for p in parsed]
    return frame


@dataclass
class VerificationReport:
    """The result of :func:`verify_dataset`; ``str(report)`` is the human-readable form.

    Attributes
    ----------
    root : str
        The dataset root checked.
    layout : str
        ``"kaggle"`` or ``"mendeley"``.
    counts : pandas.DataFrame
        Per split and class: ``found``, ``expected`` (official), ``difference``.
    problems : pandas.DataFrame
        Unreadable, truncated or empty images (see :func:`index_problems`).
    skipped : dict
        Reason -> number of files skipped while indexing.
    ignored_copies : list of str
        Duplicate dataset copies found and not counted.
    manifest : str or None
        The manifest compared against, if any.
    missing, extra, altered, misplaced : list of str
        With a manifest: its files not found; files found that it does not list;
        files whose bytes differ from it (size or SHA-256); files found under
        another split or class than it says.
    """

    root: str
    layout: str
    counts: pd.DataFrame
    problems: pd.DataFrame
    skipped: dict[str, int]
    ignored_copies: list[str]
    manifest: str | None = None
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    misplaced: list[str] = field(default_factory=list)

    @property
    def counts_official(self) -> bool:
        """True when every split and class holds exactly its official number of images."""
        return bool((self.counts["difference"] == 0).all())

    @property
    def ok(self) -> bool:
        """True for a complete, unaltered copy: official counts, no problems, manifest matched."""
        return (
            self.counts_official
            and self.problems.empty
            and not (self.missing or self.extra or self.altered or self.misplaced)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the machine-readable form)."""
        return {
            "root": self.root,
            "layout": self.layout,
            "ok": self.ok,
            "counts_official": self.counts_official,
            "counts": self.counts.to_dict(orient="records"),
            "problems": self.problems.to_dict(orient="records"),
            "skipped": self.skipped,
            "ignored_copies": self.ignored_copies,
            "manifest": self.manifest,
            "missing": self.missing,
            "extra": self.extra,
            "altered": self.altered,
            "misplaced": self.misplaced,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, default=int)

    def __str__(self) -> str:
        lines = [f"Dataset at {self.root} ({self.layout} layout)", ""]
        lines.append(f"{'split':<6} {'class':<10} {'found':>6} {'official':>8} {'status':<12}")
        for row in self.counts.itertuples():
            if row.difference == 0:
                status = "ok"
            elif row.difference < 0:
                status = f"{-row.difference} short"
            else:
                status = f"{row.difference} extra"
            lines.append(f"{row.split:<6} {row.label:<10} {row.found:>6} {row.expected:>8} {status:<12}")
        total_found, total_expected = int(self.counts["found"].sum()), int(self.counts["expected"].sum())
        lines.append(f"{'total':<17} {total_found:>6} {total_expected:>8}")
        lines.append("")
        lines.append(
            "Counts: all official."
            if self.counts_official
            else f"Counts: NOT official ({total_expected - total_found} images short of {total_expected} in all)."
        )
        lines.append(f"Unreadable images: {len(self.problems)}")
        for row in self.problems.itertuples():
            lines.append(f"  {row.path}: {row.problem}")
        for reason, count in sorted(self.skipped.items()):
            lines.append(f"Skipped: {count} file(s), {reason}")
        for copy in self.ignored_copies:
            lines.append(f"Ignored duplicate copy of the dataset: {copy}")
        if self.manifest is not None:
            lines.append(f"Against manifest {self.manifest}:")
            for title, paths in (
                ("missing", self.missing),
                ("extra", self.extra),
                ("altered", self.altered),
                ("misplaced", self.misplaced),
            ):
                shown = ", ".join(paths[:5]) + (", ..." if len(paths) > 5 else "")
                lines.append(f"  {title:<9} {len(paths):>5}" + (f"  ({shown})" if paths else ""))
        lines.append("")
        if not self.ok:
            lines.append("Verdict: NOT the complete official dataset.")
        elif self.manifest is None:
            lines.append("Verdict: official counts, no unreadable images (contents not hashed: pass a manifest).")
        else:
            lines.append("Verdict: complete and unaltered.")
        return "\n".join(lines)


def verify_dataset(
    root: str | os.PathLike,
    manifest: str | os.PathLike | pd.DataFrame | None = None,
    *,
    progress: bool = True,
) -> VerificationReport:
    """Check a dataset copy against the official counts and, optionally, a manifest.

    Parameters
    ----------
    root : str or path-like
        The dataset root or a folder above it.
    manifest : path or DataFrame, optional
        ``path<TAB>sha256<TAB>bytes`` rows with Kaggle-layout paths (like
        :func:`official_manifest_path`). Given one, every file is hashed and
        compared. Files are matched by class and name (names are unique in the
        dataset), so a Mendeley copy, whose train holds Kaggle's val images, is
        compared correctly.

    Returns
    -------
    VerificationReport
        Counts per split and class against :data:`OFFICIAL_COUNTS` (Kaggle layout)
        or :data:`MENDELEY_COUNTS`, unreadable images, skipped files, and the
        manifest comparison.

    Raises
    ------
    FileNotFoundError, DatasetLayoutError
        As :func:`find_dataset`.
    """
    index = index_dataset(root, read_headers=True, sha256=manifest is not None, progress=progress)
    layout = index.attrs["layout"]
    expected = OFFICIAL_COUNTS if layout == "kaggle" else MENDELEY_COUNTS
    found = Counter(zip(index["split"], index["label"]))
    counts = pd.DataFrame(
        [
            {"split": split, "label": label, "found": found.get((split, label), 0), "expected": number}
            for (split, label), number in expected.items()
        ]
    )
    counts["difference"] = counts["found"] - counts["expected"]
    report = VerificationReport(
        root=index.attrs["root"],
        layout=layout,
        counts=counts,
        problems=index_problems(index),
        skipped=index.attrs["skipped"],
        ignored_copies=index.attrs["ignored_copies"],
    )
    if manifest is not None:
        _compare_with_manifest(report, index, manifest)
    return report


def _compare_with_manifest(
    report: VerificationReport, index: pd.DataFrame, manifest: str | os.PathLike | pd.DataFrame
) -> None:
    expected = index_manifest(manifest)
    report.manifest = "<DataFrame>" if isinstance(manifest, pd.DataFrame) else str(manifest)
    if report.layout == "mendeley":  # Mendeley's train holds Kaggle's val
        expected["split"] = expected["split"].replace({"val": "train"})
    merged = index.merge(expected, on=["label", "name"], how="outer", suffixes=("_found", "_expected"), indicator=True)
    report.missing = sorted(merged.loc[merged["_merge"] == "right_only", "path_expected"])
    report.extra = sorted(merged.loc[merged["_merge"] == "left_only", "path_found"])
    both = merged[merged["_merge"] == "both"]
    altered = (both["sha256_found"] != both["sha256_expected"]) | (both["bytes_found"] != both["bytes_expected"])
    report.altered = sorted(both.loc[altered, "path_found"])
    report.misplaced = sorted(both.loc[both["split_found"] != both["split_expected"], "path_found"])
