"""The test ledger: one row for every time the official test split was scored.

:func:`cxr_utils.runs.finish_run` is the one door to the test labels, and it appends a
row here each time it opens: when (UTC), on which commit (and whether the working tree
had uncommitted changes), which run, a hash of the run's configuration, and the test
metrics. The ledger lives beside the run folders (``runs/test_ledger.csv``) and is never
rewritten, only appended to, so it counts honestly how often the test split has been
looked at and for how many distinct configurations. ``cxr ledger`` prints it.

Any number of processes may score at once (two notebooks, a notebook and ``cxr course``):
appends are serialised by a file lock beside the ledger (``.test_ledger.csv.lock``), and the
header is written only into an empty file, so the ledger always parses with every row once.

The configuration hash covers the run's parameters except its seed: runs of one
configuration with several seeds share a hash (they are replicates, not new choices).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
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
)


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


def append_scoring(
    runs_root: str | os.PathLike,
    run: str,
    parameters: dict,
    test: pd.DataFrame,
    *,
    threshold: float,
    n_test: int,
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
    n_test : int
        Test images scored.

    Raises
    ------
    filelock.Timeout
        If another process held the ledger's lock for more than a minute (an append takes
        milliseconds: that process is stuck; the lock file is ``.test_ledger.csv.lock``).
    """
    path = Path(runs_root) / LEDGER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    commit, dirty = git_state()
    row = {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "run": run,
        "config_hash": configuration_hash(parameters),
        "seed": parameters.get("seed"),
        "n_test": n_test,
        "threshold": round(float(threshold), 6),
        **{m: round(float(test.loc[m, "value"]), 6) for m in _METRICS},
    }
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

    ``runs_root`` defaults to :func:`cxr_utils.config.runs_dir`.
    """
    path = Path(runs_root if runs_root is not None else config.runs_dir()) / LEDGER_FILE
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=list(LEDGER_COLUMNS))
    return pd.read_csv(path, dtype={"git_commit": str, "config_hash": str})


def summarise(ledger: pd.DataFrame) -> str:
    """One sentence: how many scorings of the test split, of how many distinct configurations (hashes)."""
    if ledger.empty:
        return "The test split has not been scored on this machine (the ledger is empty)."
    configurations = ledger["config_hash"].nunique()  # seeds of one configuration share its hash
    dirty = int((ledger["git_dirty"].astype(str) == "True").sum())
    return (
        f"The official test split was scored {len(ledger)} time(s) on this machine, for {configurations} "
        f"distinct configuration(s), seeds not counted apart ({dirty} of the scorings from a working tree "
        "with uncommitted changes)."
    )
