"""A run's records on disk: JSON files and prediction tables.

Every read names the file it could not read: a truncated or empty file (an interrupted
run) raises :class:`RecordError`, which says which file and what to do, never a bare
parser error.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .dataset import binary_labels

__all__ = [
    "RecordError",
    "write_json",
    "read_json",
    "save_predictions",
    "load_predictions",
]

_PREDICTION_COLUMNS = ["path", "split", "label", "patient_id", "pathogen", "y_true", "score"]


class RecordError(ValueError):
    """A run's file is missing a part, is not what it should be, or does not match the rest of the run."""


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
    """A JSON file written by :func:`write_json`; :class:`RecordError` naming it if it is empty, cut or not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RecordError(
            f"{path} is not valid JSON ({error}): it was cut short, perhaps by an interrupted run; "
            "execute the notebook that writes it again"
        ) from error


def save_predictions(path: str | os.PathLike, index: pd.DataFrame, scores: np.ndarray) -> Path:
    """Write one row per image of ``index``: its index columns, ``y_true`` (1 = PNEUMONIA) and ``score``.

    ``scores``, shape ``(n,)`` or ``(n, 1)``, are the predicted probabilities of PNEUMONIA, in the rows' order.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(index):
        raise ValueError(f"{len(scores)} scores for {len(index)} images")
    frame = index.reset_index(drop=True).assign(y_true=binary_labels(index["label"]), score=scores)
    columns = [c for c in _PREDICTION_COLUMNS if c in frame.columns]
    frame[columns].to_csv(path, index=False)
    return Path(path)


def load_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """A predictions file written by :func:`save_predictions`; :class:`RecordError` naming it if empty or incomplete."""
    try:
        # Python's float() reads back exactly the score written, on every pandas (pandas 2's own parser may
        # differ by 1 ulp; its float_precision="round_trip" is deprecated in pandas 3)
        frame = pd.read_csv(path, converters={"score": float})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise RecordError(f"{path} is not a predictions table ({error})") from error
    missing = [c for c in ("path", "y_true", "score") if c not in frame]
    if missing:
        raise RecordError(f"{path} lacks the column(s) {', '.join(missing)}")
    return frame
