"""Environment variables: relative paths mean the same from the shell and from a notebook."""

from pathlib import Path

import cxr_utils as config


def test_relative_paths_are_taken_from_the_project_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a notebook kernel runs in notebooks/, a user anywhere
    monkeypatch.setenv("CXR_DATA_DIR", "../shared/data/chest_xray_224")
    monkeypatch.setenv("CXR_WEIGHTS_DIR", "../shared/weights/keras")
    monkeypatch.setenv("CXR_CACHE_DIR", "cache-elsewhere")
    root = config.project_root()
    assert config.data_dir() == (root.parent / "shared" / "data" / "chest_xray_224")
    assert config.weights_dir() == (root.parent / "shared" / "weights" / "keras")
    assert config.cache_dir() == root / "cache-elsewhere"


def test_absolute_paths_and_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("CXR_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path
    for name in ("CXR_DATA_DIR", "CXR_WEIGHTS_DIR", "CXR_FAST"):
        monkeypatch.delenv(name, raising=False)
    assert config.data_dir() == config.project_root() / "data"
    assert config.weights_dir() is None
    assert config.fast_mode() is False
    monkeypatch.setenv("CXR_FAST", "1")
    assert config.fast_mode() is True
    assert isinstance(config.runs_dir(), Path) and config.runs_dir().name == "runs"


def test_flags_are_parsed_in_one_place_case_blind(monkeypatch):
    for value, on in [
        ("1", True),
        ("on", True),
        ("TRUE", True),
        (" Yes ", True),
        ("0", False),
        ("off", False),
        ("", False),
    ]:
        monkeypatch.setenv("CXR_NO_DOWNLOAD", value)
        monkeypatch.setenv("CXR_FAST", value)
        assert config._flag("CXR_NO_DOWNLOAD") is on
        assert config.downloads_allowed() is not on and config.fast_mode() is on


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("CXR_DATA_DIR", raising=False)
    assert config._path_from_env("CXR_DATA_DIR") is None
    monkeypatch.setenv("CXR_DATA_DIR", "  ")
    assert config._path_from_env("CXR_DATA_DIR") is None
    monkeypatch.setenv("CXR_DATA_DIR", str(tmp_path))
    assert config._path_from_env("CXR_DATA_DIR") == tmp_path
