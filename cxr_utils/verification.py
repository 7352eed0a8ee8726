"""Is this copy the official dataset? Counts per split and class, and the manifest of hashes
(``path<TAB>sha256<TAB>bytes``) shipped with the package."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from .dataset import DatasetIndex, index_dataset
from .images import file_sha256
from .layout import SKIP_LOOP, SKIP_UNREADABLE
from .names import parse_name
from .parallel import map_with_progress

__all__ = [
    "OFFICIAL_COUNTS",
    "MENDELEY_COUNTS",
    "official_manifest_path",
    "read_manifest",
    "index_manifest",
    "VerificationReport",
    "verify_dataset",
]

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

#: Hashing reads every byte; below this many files one process is as fast as two.
_PARALLEL_HASH_FILES = 200


def official_manifest_path() -> Path:
    """The official manifest shipped with the package: 5,856 rows of ``path, sha256, bytes``."""
    return Path(str(resources.files("cxr_utils") / "data" / "official_sha256.tsv"))


def read_manifest(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """A manifest (default the official one) as columns ``path``, ``sha256``, ``bytes``.

    The file holds ``relative/path<TAB>sha256<TAB>bytes`` per line, no header; UTF-8, with or
    without a byte-order mark; line ends ``\\n`` or ``\\r\\n``. Raises ValueError naming the
    line if one does not have three tab-separated fields.
    """
    path = Path(path) if path is not None else official_manifest_path()
    rows = []
    with open(path, encoding="utf-8-sig") as handle:  # a byte-order mark (Excel, Windows editors) is not the path
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
    """An index from a manifest's names alone (no image files needed): the manifest's columns plus
    ``split``, ``label``, ``name``, ``patient_id`` and ``pathogen``, as in :func:`index_dataset`."""
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

    ``counts`` has per split and class ``found``, ``expected`` (official) and ``difference``;
    ``problems`` the unreadable, truncated or empty images (``DatasetIndex.problems``);
    ``skipped`` reason -> the paths skipped while indexing; ``ignored_copies`` the duplicate
    copies not counted. With a ``manifest``: ``missing`` its files not found, ``extra`` files
    it does not list, ``altered`` files whose size or SHA-256 differs, ``misplaced`` files
    found under another split or class than it says.
    """

    root: str
    layout: str
    counts: pd.DataFrame
    problems: pd.DataFrame
    skipped: dict[str, list[str]]
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
    def unreadable_folders(self) -> list[str]:
        """Folders whose images could not even be listed."""
        return self.skipped.get(SKIP_UNREADABLE, [])

    @property
    def _files_sound(self) -> bool:
        """Every image readable, every folder listed, and no file missing, extra, altered or misplaced."""
        return (
            self.problems.empty
            and not self.unreadable_folders
            and not (self.missing or self.extra or self.altered or self.misplaced)
        )

    @property
    def matches_manifest(self) -> bool:
        """True when a manifest was given and the copy holds exactly its files, every one readable."""
        return self.manifest is not None and self._files_sound

    @property
    def ok(self) -> bool:
        """True for a complete, unaltered copy: official counts, no problems, the manifest (if any) matched."""
        return self.counts_official and self._files_sound

    @property
    def verdict(self) -> str:
        """One sentence: is this the complete official dataset, and what was checked."""
        if not self.ok:
            return "NOT the complete official dataset."
        if self.manifest is None:
            return "official counts, no unreadable images (contents not hashed: pass a manifest)."
        return "complete and unaltered."

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the machine-readable form)."""
        return {
            "root": self.root,
            "layout": self.layout,
            "ok": self.ok,
            "verdict": self.verdict,
            "counts_official": self.counts_official,
            "counts": self.counts.to_dict(orient="records"),
            "problems": self.problems.to_dict(orient="records"),
            "skipped": {reason: len(paths) for reason, paths in self.skipped.items()},
            "unreadable_folders": self.unreadable_folders,
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
        for reason, paths in sorted(self.skipped.items()):
            lines.append(f"Skipped: {len(paths)} file(s) or folder(s), {reason}")
            if reason in (SKIP_UNREADABLE, SKIP_LOOP):
                lines.extend(f"  {path}" for path in paths[:10])
        for copy in self.ignored_copies:
            lines.append(f"Ignored duplicate copy of the dataset: {copy}")
        if self.manifest is not None:
            lines.append(f"Against manifest {self.manifest}:")
            for title in ("missing", "extra", "altered", "misplaced"):
                paths = getattr(self, title)
                shown = ", ".join(paths[:5]) + (", ..." if len(paths) > 5 else "")
                lines.append(f"  {title:<9} {len(paths):>5}" + (f"  ({shown})" if paths else ""))
        lines.append("")
        lines.append(f"Verdict: {self.verdict}")
        return "\n".join(lines)


def verify_dataset(
    dataset: str | os.PathLike | DatasetIndex,
    manifest: str | os.PathLike | pd.DataFrame | None = None,
    *,
    decode: bool = False,
    progress: bool = True,
) -> VerificationReport:
    """Check a dataset copy against the official counts and, optionally, a manifest.

    ``dataset`` is the dataset root or a folder above it, indexed here with header reads (and
    with ``decode``, every image decoded), or an index already built, so no file is read twice.
    Given a ``manifest`` (``path<TAB>sha256<TAB>bytes`` rows with Kaggle-layout paths, like
    :func:`official_manifest_path`), every file is hashed (unless the index holds a ``sha256``
    column) and compared, matched by class and name (unique in the dataset), so a Mendeley
    copy, whose train holds Kaggle's val images, is compared correctly.

    Returns a :class:`VerificationReport`: counts per split and class against
    :data:`OFFICIAL_COUNTS` (Kaggle layout) or :data:`MENDELEY_COUNTS`, unreadable images,
    skipped files, the manifest comparison. Raises as :func:`cxr_utils.layout.find_dataset`.
    """
    if not isinstance(dataset, DatasetIndex):
        dataset = index_dataset(
            dataset, read_headers=True, sha256=manifest is not None, decode=decode, progress=progress
        )
    table = dataset.table
    expected = OFFICIAL_COUNTS if dataset.layout == "kaggle" else MENDELEY_COUNTS
    found = Counter(zip(table["split"], table["label"]))
    counts = pd.DataFrame(
        [
            {"split": split, "label": label, "found": found.get((split, label), 0), "expected": number}
            for (split, label), number in expected.items()
        ]
    )
    counts["difference"] = counts["found"] - counts["expected"]
    report = VerificationReport(
        root=str(dataset.root),
        layout=dataset.layout,
        counts=counts,
        problems=dataset.problems,
        skipped={reason: list(paths) for reason, paths in dataset.skipped.items()},
        ignored_copies=[str(p) for p in dataset.ignored_copies],
    )
    if manifest is not None:
        if "sha256" not in table:
            hashes = map_with_progress(
                _sha256_or_none,
                [dataset.root / p for p in table["path"]],
                desc="Hashing images",
                serial_below=_PARALLEL_HASH_FILES,
                progress=progress,
            )
            table = table.assign(sha256=list(hashes))
        _compare_with_manifest(report, table, manifest)
    return report


def _sha256_or_none(path: Path) -> str | None:
    """The file's SHA-256, or None when it cannot be read (it is then reported as altered)."""
    try:
        return file_sha256(path)
    except OSError:
        return None


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
