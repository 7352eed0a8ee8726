"""Keras starts without TensorFlow's start-up log (cxr_utils.start_keras)."""

import os
import re
import subprocess
import sys

from cxr_utils import _silenced_stderr

# TensorFlow's start-up log: its C++ log lines ("2026-11-29 15:37:15.223753: I external/...",
# "W0000 00:00:1700000000.123 ..."), and words of the messages that differ between versions and CPUs.
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |[IWEF]\d{4} )", re.MULTILINE)
NOISE = ("cuInit", "oneDNN", "TF_ENABLE", "absl::InitializeLog", "cuda drivers", "cpu_feature_guard", "TF-TRT")


# what a fresh shell has: another test may have called start_keras in this process, which sets TF_CPP_MIN_LOG_LEVEL
FRESH = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}


def tensorflow_log(stderr: str) -> list[str]:
    """The pieces of TensorFlow's start-up log in ``stderr``: log lines and known message words."""
    return LOG_LINE.findall(stderr) + [word for word in NOISE if word in stderr]


def test_start_keras_prints_one_line_and_no_tensorflow_log():
    code = "from cxr_utils import start_keras; print(start_keras())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=FRESH)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Keras 3.") and (" GPU" in result.stdout), result.stdout
    assert not tensorflow_log(result.stderr), result.stderr


def test_start_keras_turns_onednn_on_unless_told_otherwise_and_says_which():
    """oneDNN's kernels trained chapter 03's CNN 1.9-3.3 times as fast on an AVX2 CPU, where TensorFlow leaves
    them off; a learner's TF_ENABLE_ONEDNN_OPTS=0 is kept, and both the first line and config.json say which."""
    code = (
        "from cxr_utils import software_versions, start_keras;"
        "print(start_keras()); print(software_versions()['tensorflow_onednn'])"
    )
    lines = {}
    for setting in ("", "0"):
        env = dict(FRESH, **({"TF_ENABLE_ONEDNN_OPTS": setting} if setting else {}))
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr
        lines[setting] = result.stdout.splitlines()[-2:]
    assert "oneDNN kernels, one inter-op thread" in lines[""][0] and lines[""][1] == "True", lines
    assert "TensorFlow's own kernels (oneDNN's are off)" in lines["0"][0] and lines["0"][1] == "False", lines


def test_plain_import_of_tensorflow_is_noisy_so_the_test_above_means_something():
    """Without start_keras the same interpreter prints the log (on a machine without a GPU)."""
    result = subprocess.run(
        [sys.executable, "-c", "import keras"], capture_output=True, text=True, timeout=300, env=FRESH
    )
    assert result.returncode == 0
    assert tensorflow_log(result.stderr), result.stderr


def test_silenced_stderr_restores_the_descriptor_and_lets_exceptions_through(capfd):
    import os

    try:
        with _silenced_stderr():
            os.write(2, b"hidden\n")
            raise ValueError("seen")
    except ValueError as error:
        assert str(error) == "seen"
    os.write(2, b"shown\n")
    captured = capfd.readouterr()
    assert "hidden" not in captured.err and "shown" in captured.err
