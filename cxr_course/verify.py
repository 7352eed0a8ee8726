"""The thorough check of a dataset copy: every file complete (and decodable), counts, and every byte against a
manifest of hashes (``cxr verify``)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from cxr_utils.cache import ImageReadError, load_grayscale
from cxr_utils.dataset import SKIP, DatasetIndex, file_sha256, index_dataset
from cxr_utils.explore import check_copy
from cxr_utils.records import index_manifest

_JPEG_END, _PNG_END = b"\xff\xd9", b"IEND\xaeB`\x82"


def decode_problem(path: str | os.PathLike) -> str | None:
    """Decode an image fully; a one-line problem when that fails, else None."""
    try:
        load_grayscale(path)
    except ImageReadError as error:
        return f"cannot be decoded: {str(error).split(': ', 1)[-1]}"
    return None


def find_integrity_problem(path: str | os.PathLike, image_format: str) -> str | None:
    """A one-line problem when a JPEG or PNG file is cut short, else None.

    A JPEG must hold its end-of-image marker ``FF D9`` after its image data: as its last bytes (zero padding
    allowed), or after the start of its first scan (a phone's or a viewer's data may follow it); a JPEG without one
    that still decodes is not called truncated. A PNG must end with its ``IEND`` chunk.
    """
    with open(path, "rb") as handle:
        handle.seek(max(0, handle.seek(0, os.SEEK_END) - 64))
        tail = handle.read()
    if image_format == "JPEG" and not tail.rstrip(b"\x00").endswith(_JPEG_END):
        if _jpeg_end_after_scan(Path(path).read_bytes()) or decode_problem(path) is None:
            return None
        return "truncated: the JPEG end-of-image marker (FF D9) is missing"
    if image_format == "PNG" and not tail.endswith(_PNG_END):
        return "truncated: the PNG IEND chunk is missing"
    return None


def _jpeg_end_after_scan(data: bytes) -> bool:
    """Whether a JPEG holds ``FF D9`` after the start of its first scan: segments are skipped by their lengths (a
    thumbnail, with its own ``FF D9``, is inside one) up to ``FF DA``."""
    position = 2  # after FF D8
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # a fill byte before a marker
            position += 1
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDA:
            return data.find(_JPEG_END, position + 2 + length) != -1
        position += 2 + length
    return False


def inspect(dataset: DatasetIndex, *, decode: bool = False, progress: bool = True) -> DatasetIndex:
    """The index with every readable image also checked for truncation (and, with ``decode``, decoded): a damaged
    file gets its ``problem``."""
    table = dataset.table.copy()
    rows = table.index[table["problem"].isna()]
    for row in tqdm(rows, desc="Checking images", unit="img", disable=not (progress and len(rows))):
        path = dataset.root / table.at[row, "path"]
        try:
            problem = find_integrity_problem(path, table.at[row, "format"] if "format" in table else "")
            table.at[row, "problem"] = problem or (decode_problem(path) if decode else None)
        except OSError as error:
            table.at[row, "problem"] = f"unreadable ({error.strerror or error})"
    return dataclasses.replace(dataset, table=table)


@dataclass
class VerificationReport:
    """:func:`verify_dataset`'s result (``str(report)`` reads it): ``counts`` per split and class against the
    official ones, ``problems`` (unreadable images), what was ``skipped``; with a manifest, its files ``missing``,
    ``extra`` files, ``altered`` ones (size or SHA-256) and ``misplaced`` ones (another split or class)."""

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
        """Every split and class holds exactly its official number of images."""
        return bool((self.counts["difference"] == 0).all())

    @property
    def unreadable_folders(self) -> list[str]:
        return self.skipped.get(SKIP["unreadable"], [])

    @property
    def _files_sound(self) -> bool:
        return self.problems.empty and not (
            self.unreadable_folders or self.missing or self.extra or self.altered or self.misplaced
        )

    @property
    def matches_manifest(self) -> bool:
        """A manifest was given, and the copy holds exactly its files, every one readable."""
        return self.manifest is not None and self._files_sound

    @property
    def ok(self) -> bool:
        """Official counts, no problem, and the manifest (if any) matched."""
        return self.counts_official and self._files_sound

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "NOT the complete official dataset."
        if self.manifest is None:
            return "official counts, no unreadable images (contents not hashed: pass a manifest)."
        return "complete and unaltered."

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        result = {"root": self.root, "layout": self.layout, "ok": self.ok, "verdict": self.verdict}
        result |= {"counts_official": self.counts_official, "counts": self.counts.to_dict(orient="records")}
        result |= {"problems": self.problems.to_dict(orient="records"), "skipped": self.skipped_counts}
        result |= {"unreadable_folders": self.unreadable_folders, "ignored_copies": self.ignored_copies}
        return result | {name: getattr(self, name) for name in ("manifest", "missing", "extra", "altered", "misplaced")}

    @property
    def skipped_counts(self) -> dict[str, int]:
        return {reason: len(paths) for reason, paths in self.skipped.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=int)

    def __str__(self) -> str:
        lines = [f"Dataset at {self.root} ({self.layout} layout)", ""]
        lines.append(f"{'split':<6} {'class':<10} {'found':>6} {'official':>8} {'status':<12}")
        for row in self.counts.itertuples():
            status = "ok" if row.difference == 0 else f"{-row.difference} short" if row.difference < 0 else ""
            status = status or f"{row.difference} extra"
            lines.append(f"{row.split:<6} {row.label:<10} {row.found:>6} {row.official:>8} {status:<12}")
        found, official = int(self.counts["found"].sum()), int(self.counts["official"].sum())
        lines += [f"{'total':<17} {found:>6} {official:>8}", ""]
        if self.counts_official:
            lines.append("Counts: all official.")
        else:
            lines.append(f"Counts: NOT official ({official - found} images short of {official} in all).")
        lines.append(f"Unreadable images: {len(self.problems)}")
        lines += [f"  {row.path}: {row.problem}" for row in self.problems.itertuples()]
        for reason, paths in sorted(self.skipped.items()):
            lines.append(f"Skipped: {len(paths)} file(s) or folder(s), {reason}")
            if reason in (SKIP["unreadable"], SKIP["loop"]):
                lines += [f"  {path}" for path in paths[:10]]
        lines += [f"Ignored duplicate copy of the dataset: {copy}" for copy in self.ignored_copies]
        if self.manifest is not None:
            lines.append(f"Against manifest {self.manifest}:")
            for title in ("missing", "extra", "altered", "misplaced"):
                paths = getattr(self, title)
                shown = ", ".join(paths[:5]) + (", ..." if len(paths) > 5 else "")
                lines.append(f"  {title:<9} {len(paths):>5}" + (f"  ({shown})" if paths else ""))
        return "\n".join([*lines, "", f"Verdict: {self.verdict}"])


def verify_dataset(
    dataset: str | os.PathLike | DatasetIndex,
    manifest: str | os.PathLike | pd.DataFrame | None = None,
    *,
    decode: bool = False,
    progress: bool = True,
) -> VerificationReport:
    """Check a copy (a folder, or its index: no header is read twice) against the official counts, every image for
    truncation (with ``decode``, decoded), and with a ``manifest`` every file's size and SHA-256, matched by class
    and name (so a Mendeley copy, whose train holds the val images, compares correctly)."""
    if not isinstance(dataset, DatasetIndex):
        dataset = index_dataset(dataset, sha256=manifest is not None, progress=progress)
    dataset = inspect(dataset, decode=decode, progress=progress)
    report = VerificationReport(
        root=str(dataset.root),
        layout=dataset.layout,
        counts=check_copy(dataset).counts,
        problems=dataset.problems,
        skipped={reason: list(paths) for reason, paths in dataset.skipped.items()},
        ignored_copies=[str(p) for p in dataset.ignored_copies],
    )
    if manifest is not None:
        table = dataset.table
        if "sha256" not in table:
            hashing = tqdm(table["path"], desc="Hashing images", unit="img", disable=not progress)
            table = table.assign(sha256=[_sha256_or_none(dataset.root / path) for path in hashing])
        _compare_with_manifest(report, table, manifest)
    return report


def _sha256_or_none(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:  # reported as altered
        return None


def _compare_with_manifest(report: VerificationReport, index: pd.DataFrame, manifest) -> None:
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
