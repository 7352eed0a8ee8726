"""The test ledger: one row for every time a test split was scored.

:func:`cxr_utils.runs.finish_run` is the one door to the test labels, and it appends a
row here each time it opens: when (UTC), on which commit (and whether the working tree
had uncommitted changes), which run, a hash of the run's configuration, the test metrics,
and which test images were scored: a fingerprint of their paths and whether those paths
are exactly the official test split's. The ledger lives beside the run folders
(``runs/test_ledger.csv``) and is never rewritten, only appended to, so it counts honestly
how often the official test split has been looked at and for how many distinct
configurations, apart from scorings of other test images (a subset, another copy, files
moved between the class folders). ``cxr ledger`` prints it.

What "official" means here: ``official_test_paths`` is True when the scored test images'
paths (``test/<class>/<file name>``, the class folder included) are exactly the 624 test
paths of the official manifest (``cxr_utils/data/official_sha256.tsv``). Only the paths are
compared, not the bytes: the course's resized 224-pixel copy, whose files differ from the
official ones in size but not in name or class, counts as the official test split; a copy
whose test files were moved between ``NORMAL/`` and ``PNEUMONIA/``, or a subset, does not.
Rows written before these two columns existed read back with them empty and are counted
as "unknown test images".

Any number of processes may score at once (two notebooks, a notebook and ``cxr course``):
appends are serialised by a file lock beside the ledger (``.test_ledger.csv.lock``), and the
header is written only into an empty file, so the ledger always parses with every row once.

The configuration hash covers the run's parameters except its seed: runs of one
configuration with several seeds share a hash (they are replicates, not new choices).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import subprocess
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from filelock import FileLock

from . import config

__all__ = [
    "LEDGER_FILE",
    "LEDGER_COLUMNS",
    "configuration_hash",
    "git_state",
    "append_scoring",
    "read_ledger",
    "scoring_counts",
    "summarise",
]

LEDGER_FILE = "test_ledger.csv"

#: Seconds an append waits for another process's append before giving up (appends take milliseconds).
_LOCK_TIMEOUT_S = 60

#: Metrics copied from the bootstrap frame into the ledger (point values).
_METRICS = ("accuracy", "sensitivity", "specificity", "roc_auc", "pr_auc")

LEDGER_COLUMNS = (
    "time_utc",
    "git_commit",
    "git_dirty",
    "run",
    "config_hash",
    "seed",
    "n_test",
    "threshold",
    *_METRICS,
    "test_fingerprint",
    "official_test_paths",
)

#: What :func:`scoring_counts` and :func:`summarise` call each kind of scoring.
_KINDS = {
    "official": "the official test split",
    "other": "other test images (a subset, another copy, files moved between the class folders)",
    "unknown": "unknown test images (rows from before the ledger recorded them)",
}


def configuration_hash(parameters: dict) -> str:
    """12 hex digits of the SHA-256 of the parameters as canonical JSON, the ``seed`` left out."""
    canonical = json.dumps(
        {k: v for k, v in parameters.items() if k != "seed"}, sort_keys=True, default=str, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def git_state(folder: str | os.PathLike | None = None) -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the git checkout holding ``folder`` (default: the project).

    ``("unknown", None)`` outside a checkout or without git. ``dirty`` is True when
    tracked files have uncommitted changes (untracked files do not count).
    """
    folder = Path(folder) if folder is not None else config.project_root()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return commit, bool(status.strip())


def _test_fingerprint(paths: Iterable[str]) -> str:
    """12 hex digits of the SHA-256 of the sorted test paths: which test images, filed in which class folders."""
    return hashlib.sha256("\n".join(["test", *sorted(paths)]).encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def _official_test_paths() -> frozenset[str]:
    """The official manifest's test paths (624, ``test/<class>/<file name>``)."""
    from .verification import read_manifest

    paths = read_manifest()["path"]
    return frozenset(paths[paths.str.startswith("test/")])


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
    """Append one scoring of the test split to ``<runs_root>/test_ledger.csv``; return the row.

    Parameters
    ----------
    runs_root : path-like
        The folder holding the run folders (the ledger is created there if missing).
    run : str
        The run's name (its folder's name).
    parameters : dict
        The run's configuration, hashed by :func:`configuration_hash`; its ``seed``
        (if any) is recorded in its own column.
    test : pandas.DataFrame
        The test metrics (:func:`cxr_utils.metrics.bootstrap_ci`): index metric, column ``value``.
    threshold : float
        The operating threshold the metrics were computed at.
    n_test : int, optional
        Test images scored (default: the number of ``test_paths``).
    test_paths : iterable of str, optional
        Their paths relative to the dataset root (``test/<class>/<file name>``), recorded as
        ``test_fingerprint`` (:func:`_test_fingerprint`) and ``official_test_paths`` (True when
        they are exactly the official manifest's test paths; see the module docstring).
        Without them both columns are left empty (unknown).

    Raises
    ------
    ValueError
        If neither ``n_test`` nor ``test_paths`` is given.
    filelock.Timeout
        If another process held the ledger's lock for more than a minute (an append takes
        milliseconds: that process is stuck; the lock file is ``.test_ledger.csv.lock``).
    """
    path = Path(runs_root) / LEDGER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    paths = None if test_paths is None else [str(p) for p in test_paths]
    if n_test is None and paths is None:
        raise ValueError("append_scoring needs n_test or test_paths")
    commit, dirty = git_state()
    row = {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "run": run,
        "config_hash": configuration_hash(parameters),
        "seed": parameters.get("seed"),
        "n_test": n_test if n_test is not None else len(paths),
        "threshold": round(float(threshold), 6),
        **{m: round(float(test.loc[m, "value"]), 6) for m in _METRICS},
        "test_fingerprint": None,
        "official_test_paths": None,
    }
    if paths is not None:
        row["test_fingerprint"] = _test_fingerprint(paths)
        row["official_test_paths"] = len(paths) == len(set(paths)) and set(paths) == _official_test_paths()
    # One append at a time; the header only into an empty file (decided under the lock, not before it).
    with (
        FileLock(path.with_name(f".{path.name}.lock"), timeout=_LOCK_TIMEOUT_S),
        open(path, "a", newline="", encoding="utf-8") as handle,  # append only: nothing is ever rewritten
    ):
        writer = csv.DictWriter(handle, fieldnames=LEDGER_COLUMNS)
        if handle.seek(0, os.SEEK_END) == 0:
            writer.writeheader()
        writer.writerow(row)
    return row


def read_ledger(runs_root: str | os.PathLike | None = None) -> pd.DataFrame:
    """The ledger as a table (empty, with the ledger's columns, when nothing was scored yet).

    ``runs_root`` defaults to :func:`cxr_utils.config.runs_dir`. A ledger begun by an older
    version (a header without the last columns) reads with those columns empty; a header
    line repeated inside the file (left by concurrent scorings before issue 20 was fixed) is
    not a scoring and is skipped.

    Returns
    -------
    pandas.DataFrame
        One row per scoring, the columns of :data:`LEDGER_COLUMNS`: ``n_test`` and ``seed``
        integers where known, the metrics and ``threshold`` floats, ``official_test_paths``
        True, False or missing (unknown).
    """
    path = Path(runs_root if runs_root is not None else config.runs_dir()) / LEDGER_FILE
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=list(LEDGER_COLUMNS))
    header, *rows = path.read_text(encoding="utf-8").splitlines(keepends=True)
    columns = next(csv.reader([header]))
    if columns == list(LEDGER_COLUMNS[: len(columns)]):  # this version's columns, or an older version's first ones
        columns = list(LEDGER_COLUMNS)
    return pd.read_csv(
        io.StringIO("".join(row for row in rows if row != header)),
        names=columns,
        header=None,
        dtype={"git_commit": str, "config_hash": str, "test_fingerprint": str, "official_test_paths": "boolean"},
    )


def scoring_counts(ledger: pd.DataFrame) -> pd.DataFrame:
    """Scorings and distinct configurations of the ledger, by which test images were scored.

    Parameters
    ----------
    ledger : pandas.DataFrame
        As :func:`read_ledger` returns it.

    Returns
    -------
    pandas.DataFrame
        Index ``official`` (the official test split: ``official_test_paths`` True),
        ``other`` (other test images: False), ``unknown`` (rows from before the ledger
        recorded it) and ``all``; integer columns ``scorings`` and ``configurations``
        (distinct configuration hashes, seeds not counted apart).
    """
    official = ledger.get("official_test_paths", pd.Series(pd.NA, index=ledger.index, dtype="boolean"))
    official = official.astype("boolean")
    kinds = {
        "official": official.fillna(False).to_numpy(dtype=bool),
        "other": (~official).fillna(False).to_numpy(dtype=bool),
        "unknown": official.isna().to_numpy(),
        "all": pd.Series(True, index=ledger.index).to_numpy(dtype=bool),
    }
    return pd.DataFrame(
        {
            kind: {"scorings": int(rows.sum()), "configurations": int(ledger.loc[rows, "config_hash"].nunique())}
            for kind, rows in kinds.items()
        }
    ).T


def summarise(ledger: pd.DataFrame) -> str:
    """One sentence: how many scorings, of how many configurations, of the official test split and of other images."""
    if ledger.empty:
        return "The test split has not been scored on this machine (the ledger is empty)."
    counts = scoring_counts(ledger)
    kinds = [
        f"{what} {counts.loc[kind, 'scorings']} time(s), for {counts.loc[kind, 'configurations']}"
        for kind, what in _KINDS.items()
        if counts.loc[kind, "scorings"] or kind == "official"
    ]
    kinds[0] += " configuration(s)"
    dirty = int((ledger["git_dirty"].astype(str) == "True").sum())
    return (
        f"The test split was scored {len(ledger)} time(s) on this machine, for {counts.loc['all', 'configurations']} "
        f"distinct configuration(s), seeds not counted apart: {'; '.join(kinds)}. {dirty} of the scorings were "
        "made from a working tree with uncommitted changes."
    )
