"""The test ledger: one row for every time a test split was scored.

:func:`cxr_utils.runs.finish_run`, the one door to the test labels, appends a row here each
time it opens: when (UTC), on which commit (and whether the working tree had uncommitted
changes), which run, a hash of the run's configuration without its seed (runs of several
seeds are replicates, not new choices), the test metrics, and which test images were scored:
a fingerprint of their paths and whether they are exactly the official test split's. The
ledger (``runs/test_ledger.csv``, printed by ``cxr ledger``) is only ever appended to, so it
counts honestly how often the official test split was looked at, and for how many
configurations, apart from scorings of other test images.

``official_test_paths`` is True when the scored paths (``test/<class>/<file name>``) are
exactly the 624 test paths of the official manifest: only paths are compared, not bytes, so
the course's resized 224-pixel copy counts as the official test split; a subset, or a copy
whose test files were moved between ``NORMAL/`` and ``PNEUMONIA/``, does not. Rows written
before these two columns existed read back with them empty: "unknown test images".

Any number of processes may score at once: appends are serialised by a file lock beside the
ledger (``.test_ledger.csv.lock``), and the header is written only into an empty file.
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

from . import project_root, runs_dir

__all__ = ["append_scoring", "read_ledger", "scoring_counts", "summarise"]

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


def _configuration_hash(parameters: dict) -> str:
    """12 hex digits of the SHA-256 of the parameters as canonical JSON, the ``seed`` left out."""
    canonical = json.dumps(
        {k: v for k, v in parameters.items() if k != "seed"}, sort_keys=True, default=str, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _with_backend(parameters: dict) -> dict:
    """``parameters`` with ``keras_backend`` added when Keras runs on a backend other than TensorFlow.

    The same settings give other numbers on another backend, so its runs are another
    configuration in the ledger. TensorFlow, the course's backend, stays implicit: its runs keep
    the configuration hashes they had before backends were told apart.
    """
    import keras

    backend = keras.backend.backend()
    return parameters if backend == "tensorflow" else {**parameters, "keras_backend": backend}


def _git_state() -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the project's git checkout, ``("unknown", None)`` outside one or without git.

    ``dirty`` is True when tracked files have uncommitted changes (untracked files do not count).
    """
    root = project_root()
    git = functools.partial(subprocess.run, cwd=root, capture_output=True, text=True, timeout=10, check=True)
    try:
        commit = git(["git", "rev-parse", "HEAD"]).stdout.strip()
        status = git(["git", "status", "--porcelain", "--untracked-files=no"]).stdout
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
    """Append one scoring of the test split to ``<runs_root>/test_ledger.csv`` (created if missing); return the row.

    ``run`` is the run folder's name; ``parameters`` its configuration, hashed without its
    ``seed``, which gets its own column; ``test`` its :func:`cxr_utils.metrics.bootstrap_ci`
    frame at ``threshold``. ``n_test`` test images were scored (default: the number of
    ``test_paths``); ``test_paths`` (``test/<class>/<file name>``) give ``test_fingerprint`` and
    ``official_test_paths`` (see the module docstring), left empty without them.

    Raises ValueError if neither ``n_test`` nor ``test_paths`` is given, and ``filelock.Timeout``
    if another process held the ledger's lock for more than a minute (it is stuck).
    """
    path = Path(runs_root) / LEDGER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    paths = None if test_paths is None else [str(p) for p in test_paths]
    if n_test is None and paths is None:
        raise ValueError("append_scoring needs n_test or test_paths")
    commit, dirty = _git_state()
    row = {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "run": run,
        "config_hash": _configuration_hash(parameters),
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

    ``runs_root`` defaults to :func:`cxr_utils.runs_dir`. A ledger begun by an older
    version (a header without the last columns) reads with those columns empty; a header
    line repeated inside the file (left by concurrent scorings before issue 20 was fixed) is
    not a scoring and is skipped.

    Returns one row per scoring, the columns of :data:`LEDGER_COLUMNS`: ``n_test`` and ``seed``
    integers where known, the metrics and ``threshold`` floats, ``official_test_paths`` True,
    False or missing (unknown).
    """
    path = Path(runs_root if runs_root is not None else runs_dir()) / LEDGER_FILE
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
    """Scorings and distinct configurations of a :func:`read_ledger` table, by which test images were scored.

    Index ``official`` (``official_test_paths`` True), ``other`` (False), ``unknown`` (rows from
    before the ledger recorded it) and ``all``; integer columns ``scorings`` and
    ``configurations`` (distinct configuration hashes, seeds not counted apart).
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
