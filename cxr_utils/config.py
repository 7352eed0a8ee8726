"""Where things live: the course's environment variables and default folders, read in one place.

``CXR_DATA_DIR``
    The dataset root used by notebooks and commands (default: the project's ``data/``).
``CXR_FAST``
    ``1`` selects fast mode (few images, one or two epochs) for CI.
``CXR_NO_DOWNLOAD``
    ``1``: nothing is downloaded (neither the dataset nor ImageNet weights).
``CXR_TEST_DATA``
    Where tests find the real data (default: ``../shared/data`` beside the project).
``CXR_WEIGHTS_DIR``
    A folder of Keras weight files to use offline.
``CXR_CACHE_DIR``
    Where decoded, resized image arrays are cached (default: the project's ``cache/``).

A relative path is taken relative to the project root, so notebooks, which run in
``notebooks/``, read it as the shell did. A flag (``CXR_FAST``, ``CXR_NO_DOWNLOAD``) is on
when set to ``1``, ``true``, ``yes`` or ``on``, in any case, and off otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "project_root",
    "data_dir",
    "test_data_dir",
    "weights_dir",
    "fast_mode",
    "build_dir",
    "runs_dir",
    "downloads_allowed",
    "cache_dir",
]

#: The values that switch a flag on (compared case-blind, surrounding spaces ignored).
_TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


def _env_flag(name: str) -> bool:
    """True when the environment variable ``name`` holds one of :data:`_TRUE_VALUES`."""
    return os.environ.get(name, "").strip().lower() in _TRUE_VALUES


def project_root() -> Path:
    """The folder above the package when it holds ``pyproject.toml`` (a checkout), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def _path_from_env(name: str) -> Path | None:
    """``$name`` as an absolute path (a relative one from the project root), ``None`` when unset or blank."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    return Path(os.path.abspath(path if path.is_absolute() else project_root() / path))


def data_dir() -> Path:
    """The dataset root: ``$CXR_DATA_DIR``, else ``<project>/data``."""
    return _path_from_env("CXR_DATA_DIR") or project_root() / "data"


def test_data_dir() -> Path:
    """The real data for tests: ``$CXR_TEST_DATA``, else ``<project>/../shared/data``."""
    return _path_from_env("CXR_TEST_DATA") or (project_root() / ".." / "shared" / "data").resolve()


def weights_dir() -> Path | None:
    """The folder ``$CXR_WEIGHTS_DIR`` names, or ``None`` when it is unset."""
    return _path_from_env("CXR_WEIGHTS_DIR")


def fast_mode() -> bool:
    """True when the flag ``$CXR_FAST`` is on."""
    return _env_flag("CXR_FAST")


def downloads_allowed() -> bool:
    """False when the flag ``$CXR_NO_DOWNLOAD`` is on: nothing is downloaded."""
    return not _env_flag("CXR_NO_DOWNLOAD")


def build_dir() -> Path:
    """Where build products go (executed notebooks, HTML): ``<project>/build``."""
    return project_root() / "build"


def runs_dir() -> Path:
    """Where run artefacts go (models, predictions, metrics): ``<project>/runs``."""
    return project_root() / "runs"


def cache_dir() -> Path:
    """Where decoded image arrays are cached: ``$CXR_CACHE_DIR``, else ``<project>/cache``."""
    return _path_from_env("CXR_CACHE_DIR") or project_root() / "cache"
