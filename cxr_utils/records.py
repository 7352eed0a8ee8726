"""Files written whole, JSON, fingerprints, the official manifest, and the test ledger ``runs/test_ledger.csv``."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from . import project_root, runs_dir
from .dataset import parse_name
from .metrics import PAPER

__all__ = ["write_json", "read_manifest", "index_manifest", "read_ledger", "scoring_counts", "summarise"]

LEDGER_FILE = "test_ledger.csv"
LEDGER_METRICS = (*PAPER, "pr_auc")
LEDGER_COLUMNS = (
    *("time_utc", "git_commit", "git_dirty", "run", "config_hash", "seed", "n_test", "threshold"),
    *LEDGER_METRICS,
    *("test_fingerprint", "official_test_paths"),
)


class RecordError(ValueError):
    """A file of the course's that is empty, cut short or not what it should be."""


def fingerprint(lines: Iterable[str]) -> str:
    """12 hex digits of the SHA-256 of ``lines`` joined by newlines."""
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


def writable_folder(folder: Path, hint: str) -> Path:
    """``folder``, created if needed, once a file could be written in it; else OSError naming it and ``hint``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        message = f"{folder} is not writable ({error.strerror or error}): {hint}"
        raise OSError(error.errno, message, str(folder)) from error
    return folder


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``, renamed to it when the block ends; removed if the block fails."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def locked(path: Path, timeout: float, busy: Exception) -> Iterator[None]:
    """Hold the file lock ``path`` (processes take turns); raise ``busy`` if another holds it ``timeout`` seconds."""
    lock = FileLock(path, timeout=timeout)
    try:
        lock.acquire()
    except Timeout as error:
        raise busy from error
    try:
        yield
    finally:
        lock.release()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return str(value) if isinstance(value, Path) else value


def write_json(path: str | os.PathLike, content: dict) -> Path:
    """Write a dict as indented JSON, whole or not at all (NaN as null, NumPy numbers as plain numbers)."""
    with atomic_path(Path(path)) as temporary:
        temporary.write_text(json.dumps(_jsonable(content), indent=2) + "\n", encoding="utf-8")
    return Path(path)


def read_json(path: str | os.PathLike) -> dict:
    """A JSON file; RecordError naming it if it is empty, cut short or not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RecordError(
            f"{path} is not valid JSON ({error}): it was cut short, perhaps by an interrupted run; "
            "execute the notebook that writes it again"
        ) from error


def configuration_hash(parameters: dict) -> str:
    """12 hex digits of the parameters as canonical JSON without ``seed`` (seeds replicate one configuration)."""
    kept = {k: v for k, v in parameters.items() if k != "seed"}
    return fingerprint([json.dumps(kept, sort_keys=True, default=str, separators=(",", ":"))])


def _git_state() -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the project's checkout (tracked files only); ``("unknown", None)`` without git."""
    try:
        commit, status = (
            subprocess.run(
                ["git", *args], cwd=project_root(), capture_output=True, text=True, timeout=10, check=True
            ).stdout
            for args in (["rev-parse", "HEAD"], ["status", "--porcelain", "--untracked-files=no"])
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return commit.strip(), bool(status.strip())


def official_manifest_path() -> Path:
    """The manifest shipped with the package: 5,856 rows of ``path<TAB>sha256<TAB>bytes``."""
    return Path(str(resources.files("cxr_utils") / "data" / "official_sha256.tsv"))


def read_manifest(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """A manifest (default the official one; lines ``path<TAB>sha256<TAB>bytes``) as ``path``, ``sha256``, ``bytes``.
    ValueError naming a malformed line, or one whose path is absolute or climbs out (``..``)."""
    path, rows = Path(path) if path is not None else official_manifest_path(), []
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 3 or not fields[2].isdigit():
                raise ValueError(f"{path}:{number}: expected path<TAB>sha256<TAB>bytes, got {line.rstrip()!r}")
            if fields[0].startswith("/") or ".." in fields[0].split("/"):
                raise ValueError(f"{path}:{number}: a path inside the copy expected, got {fields[0]!r}")
            rows.append((fields[0], fields[1].lower(), int(fields[2])))
    return pd.DataFrame(rows, columns=["path", "sha256", "bytes"])


def index_manifest(manifest: pd.DataFrame | str | os.PathLike | None = None) -> pd.DataFrame:
    """An index from a manifest's names alone (default the official one): ``split``, ``label``, ``patient_id``, ..."""
    frame = manifest.copy() if isinstance(manifest, pd.DataFrame) else read_manifest(manifest)
    parts = frame["path"].str.split("/")
    frame["split"], frame["label"], frame["name"] = parts.str[0].str.lower(), parts.str[1].str.upper(), parts.str[-1]
    names = [parse_name(name) for name in frame["name"]]
    frame["patient_id"], frame["pathogen"] = [n.patient_id for n in names], [n.pathogen for n in names]
    return frame


@functools.lru_cache(maxsize=1)
def _official_test_paths() -> frozenset[str]:
    paths = read_manifest()["path"]
    return frozenset(paths[paths.str.startswith("test/")])


def is_official_test_split(paths: list[str]) -> bool:
    """Whether ``paths`` (``test/<class>/<name>``) are exactly the official manifest's 624 test paths."""
    return len(paths) == len(set(paths)) and set(paths) == _official_test_paths()


def append_scoring(
    runs_root: str | os.PathLike,
    run: str,
    parameters: dict,
    test: pd.DataFrame,
    *,
    threshold: float,
    n_test: int | None = None,
    test_paths: Iterable[str] | None = None,
) -> dict:
    """Append one scoring (``test``: the bootstrap_ci frame at ``threshold``) to ``<runs_root>/test_ledger.csv`` and
    return the row. ValueError without ``n_test`` or ``test_paths``; ``filelock.Timeout`` after a minute's wait."""
    paths = None if test_paths is None else [str(p) for p in test_paths]
    if n_test is None and paths is None:
        raise ValueError("append_scoring needs n_test or test_paths")
    commit, dirty = _git_state()
    row = {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "run": run,
        "config_hash": configuration_hash(parameters),
        "seed": parameters.get("seed"),
        "n_test": n_test if n_test is not None else len(paths),
        "threshold": round(float(threshold), 6),
        **{m: round(float(test.loc[m, "value"]), 6) for m in LEDGER_METRICS},
        "test_fingerprint": None if paths is None else fingerprint(["test", *sorted(paths)]),
        "official_test_paths": None if paths is None else is_official_test_split(paths),
    }
    path = Path(runs_root) / LEDGER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # one append at a time, and the header only into an empty file, decided under the lock
    with FileLock(path.with_name(f".{path.name}.lock"), timeout=60), open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=LEDGER_COLUMNS)
        if f.seek(0, os.SEEK_END) == 0:
            writer.writeheader()
        writer.writerow(row)
    return row


def read_ledger(runs_root: str | os.PathLike | None = None) -> pd.DataFrame:
    """The ledger, one row per scoring (empty if none); rows of an older, shorter header get the new columns empty."""
    path = Path(runs_root if runs_root is not None else runs_dir()) / LEDGER_FILE
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=list(LEDGER_COLUMNS))
    header, *rows = path.read_text(encoding="utf-8").splitlines(keepends=True)
    columns = next(csv.reader([header]))
    if columns == list(LEDGER_COLUMNS[: len(columns)]):
        columns = list(LEDGER_COLUMNS)
    kinds = {"git_commit": str, "config_hash": str, "test_fingerprint": str, "official_test_paths": "boolean"}
    return pd.read_csv(io.StringIO("".join(r for r in rows if r != header)), names=columns, header=None, dtype=kinds)


def scoring_counts(ledger: pd.DataFrame) -> pd.DataFrame:
    """``scorings`` and distinct ``configurations`` of a :func:`read_ledger` table, by which test images."""
    official = ledger["official_test_paths"].astype("boolean")
    kinds = {"official": official.fillna(False), "other": (~official).fillna(False), "unknown": official.isna()}
    kinds["all"] = pd.Series(True, index=ledger.index)
    hashes = {kind: ledger.loc[rows.to_numpy(bool), "config_hash"] for kind, rows in kinds.items()}
    return pd.DataFrame(
        {kind: {"scorings": len(hashes[kind]), "configurations": hashes[kind].nunique()} for kind in kinds}
    ).T


def summarise(ledger: pd.DataFrame) -> str:
    """One sentence: how many scorings, of how many configurations, of the official test split and of others."""
    if ledger.empty:
        return "The test split has not been scored on this machine (the ledger is empty)."
    counts = scoring_counts(ledger)
    names = {
        "official": "the official test split",
        "other": "other test images (a subset, another copy, files moved between the class folders)",
        "unknown": "unknown test images (rows from before the ledger recorded them)",
    }
    kinds = [
        f"{what} {counts.loc[kind, 'scorings']} time(s), for {counts.loc[kind, 'configurations']}"
        for kind, what in names.items()
        if counts.loc[kind, "scorings"] or kind == "official"
    ]
    kinds[0] += " configuration(s)"
    dirty = int((ledger["git_dirty"].astype(str) == "True").sum())
    return (
        f"The test split was scored {len(ledger)} time(s) on this machine, for {counts.loc['all', 'configurations']} "
        f"distinct configuration(s), seeds not counted apart: {'; '.join(kinds)}. {dirty} of the scorings were "
        "made from a working tree with uncommitted changes."
    )
