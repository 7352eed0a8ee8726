"""Run folders: where a training run leaves its artefacts for later notebooks.

A run folder (``runs/<name>/`` by default, outside git) holds:

``model.keras``                  the trained model (best epoch)
``history.csv``                  per-epoch log (written by :func:`cxr_utils.training.fit`)
``predictions_validation.csv``   one row per validation image: path, label, y_true, score, ...
``predictions_test.csv``         the same for the official test split
``threshold.json``               the operating threshold and how it was chosen on validation
``metrics.json``                 test (and validation) metrics with 95% confidence intervals
``config.json``                  the run's parameters, seed and software versions
"""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import config

__all__ = [
    "run_folder",
    "software_versions",
    "write_json",
    "read_json",
    "save_predictions",
    "load_predictions",
    "Run",
    "load_run",
]

PREDICTION_COLUMNS = ["path", "split", "label", "patient_id", "pathogen", "y_true", "score"]


def run_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """``<runs>/<name>``, created if needed (``runs/`` in the project by default)."""
    folder = (Path(root) if root is not None else config.runs_dir()) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def software_versions() -> dict[str, str]:
    """Python, the key packages, the Keras backend, the machine and the time (UTC)."""
    info = {"python": platform.python_version(), "machine": platform.machine(), "cpus": str(os.cpu_count())}
    for package in ("numpy", "pandas", "scikit-learn", "tensorflow", "keras", "jax", "torch", "cxr-utils"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            continue
    info["keras_backend"] = os.environ.get("KERAS_BACKEND", "tensorflow")
    info["time_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    return info


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, content: dict) -> Path:
    """Write a dict as indented JSON (NaN as null, NumPy numbers as plain numbers)."""
    path = Path(path)
    path.write_text(json.dumps(_jsonable(content), indent=2) + "\n", encoding="utf-8")
    return path


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_predictions(path: str | os.PathLike, index: pd.DataFrame, scores: np.ndarray) -> Path:
    """Write one row per image: its index columns, ``y_true`` (1 = PNEUMONIA) and ``score``.

    Parameters
    ----------
    index : pandas.DataFrame
        The rows predicted, in the order of ``scores``.
    scores : numpy.ndarray
        Shape ``(n,)`` or ``(n, 1)``: predicted probabilities of PNEUMONIA.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(index):
        raise ValueError(f"{len(scores)} scores for {len(index)} images")
    frame = index.reset_index(drop=True).assign(
        y_true=(index["label"].to_numpy() == "PNEUMONIA").astype(int), score=scores
    )
    columns = [c for c in PREDICTION_COLUMNS if c in frame.columns]
    frame[columns].to_csv(path, index=False)
    return Path(path)


def load_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Read a predictions file written by :func:`save_predictions`."""
    return pd.read_csv(path)


@dataclass
class Run:
    """A finished run folder, read back (see the module docstring for the files).

    Attributes
    ----------
    name : str
    folder : pathlib.Path
    validation, test : pandas.DataFrame
        The prediction files: one row per image with ``path``, ``label``, ``y_true``, ``score``, ...
    threshold : float
        The operating threshold, chosen on validation.
    metrics, config : dict
        ``metrics.json`` and ``config.json``.
    """

    name: str
    folder: Path
    validation: pd.DataFrame
    test: pd.DataFrame
    threshold: float
    metrics: dict
    config: dict

    @property
    def model_path(self) -> Path:
        """``model.keras`` in the folder (it may be missing: see :meth:`load_model`)."""
        return self.folder / "model.keras"

    def load_model(self):
        """The saved Keras model, with the course's custom layers registered.

        Raises
        ------
        FileNotFoundError
            If the run saved no model.
        """
        import keras

        from . import models, transfer  # noqa: F401  (registers the custom layers for deserialisation)

        if not self.model_path.exists():
            raise FileNotFoundError(f"run {self.name!r} saved no model ({self.model_path} is missing)")
        return keras.models.load_model(self.model_path)


RUN_FILES = ("predictions_validation.csv", "predictions_test.csv", "threshold.json", "metrics.json", "config.json")


def load_run(name: str, notebook: str, root: str | os.PathLike | None = None) -> Run:
    """Read the run folder ``<runs>/<name>`` written by a training notebook.

    Parameters
    ----------
    name : str
        The run's name, e.g. ``"04_transfer_learning"`` (``..._fast`` in fast mode).
    notebook : str
        The notebook that writes it, named in the error when the run is missing.
    root : path-like, optional
        Default :func:`cxr_utils.config.runs_dir`.

    Raises
    ------
    FileNotFoundError
        If a file of the run is missing: the message says which notebook to execute.
    """
    folder = (Path(root) if root is not None else config.runs_dir()) / name
    missing = [f for f in RUN_FILES if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(
            f"run {name!r} is missing {', '.join(missing)} in {folder}: execute {notebook} first, "
            f"with the same CXR_FAST and CXR_DATA_DIR settings, to make it"
        )
    return Run(
        name=name,
        folder=folder,
        validation=load_predictions(folder / "predictions_validation.csv"),
        test=load_predictions(folder / "predictions_test.csv"),
        threshold=float(read_json(folder / "threshold.json")["threshold"]),
        metrics=read_json(folder / "metrics.json"),
        config=read_json(folder / "config.json"),
    )
