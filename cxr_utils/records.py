"""A run's records on disk: JSON files, prediction tables, and the software that made them.

Every read names the file it could not read: a truncated or empty file (an interrupted
run) raises :class:`RecordError`, which says which file and what to do, never a bare
parser error.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .dataset import binary_labels

__all__ = [
    "RecordError",
    "software_versions",
    "cpu_kind",
    "tensorflow_onednn",
    "write_json",
    "read_json",
    "save_predictions",
    "load_predictions",
]

_PREDICTION_COLUMNS = ["path", "split", "label", "patient_id", "pathogen", "y_true", "score"]


class RecordError(ValueError):
    """A run's file is missing a part, is not what it should be, or does not match the rest of the run."""


def software_versions() -> dict[str, str]:
    """Python, the key packages, the Keras backend, the machine and the time (UTC)."""
    info = {"python": platform.python_version(), "machine": platform.machine(), "cpus": str(os.cpu_count())}
    info["cpu_kind"] = cpu_kind()
    if os.environ.get("ONEDNN_MAX_CPU_ISA"):
        info["onednn_max_cpu_isa"] = os.environ["ONEDNN_MAX_CPU_ISA"]
    for package in ("numpy", "pandas", "scikit-learn", "tensorflow", "keras", "jax", "torch", "cxr-utils"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            continue
    keras = sys.modules.get("keras")  # the backend Keras runs on (also set by keras.json), as the ledger hashes it
    info["keras_backend"] = keras.backend.backend() if keras else os.environ.get("KERAS_BACKEND", "tensorflow")
    if (onednn := tensorflow_onednn()) is not None:
        info["tensorflow_onednn"] = str(onednn)
    info["time_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return info


#: CPU flags that change which kernels TensorFlow and oneDNN run, hence the rounding of training.
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
#: The flags each value of oneDNN's ``ONEDNN_MAX_CPU_ISA`` leaves it (its kernels for newer instructions are off).
_ISA_CAPS = {"AVX2": KERNEL_FLAGS[:1], "AVX512_CORE": KERNEL_FLAGS[:2], "AVX512_CORE_VNNI": KERNEL_FLAGS[:3]}


def cpu_kind() -> str:
    """The CPU's model name and which of :data:`KERNEL_FLAGS` its kernels use, e.g. ``"AMD EPYC (avx2 avx512f)"``.

    Read from ``/proc/cpuinfo``; elsewhere the processor's name with ``(flags unknown)``. Where
    ``ONEDNN_MAX_CPU_ISA`` caps oneDNN's kernels (``AVX2``, ``AVX512_CORE``, ``AVX512_CORE_VNNI``),
    only the flags below the cap are named: such a run computes as a CPU without the others does.
    """
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.processor() or platform.machine()} (flags unknown)"
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    allowed = _ISA_CAPS.get(os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper(), KERNEL_FLAGS)
    return f"{fields.get('model name', platform.machine())} ({' '.join(f for f in allowed if f in flags)})"


def tensorflow_onednn() -> bool | None:
    """Whether TensorFlow runs its oneDNN kernels in this process; None when TensorFlow is not loaded.

    TensorFlow decides once, at import: ``TF_ENABLE_ONEDNN_OPTS`` (``1`` or ``0``), and where it is
    unset, on only on CPUs with AVX-512 VNNI, bfloat16 or AMX instructions. Its rounding differs
    from TensorFlow's own kernels, so runs with and without them give slightly different numbers.
    """
    if "tensorflow" not in sys.modules:
        return None
    from tensorflow.python.util import _pywrap_util_port  # TensorFlow's own test of the setting

    return bool(_pywrap_util_port.IsMklEnabled())


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
