"""Keras starts without TensorFlow's start-up log (cxr_utils.tools.quiet)."""

import subprocess
import sys

from cxr_utils.tools.quiet import _silenced_stderr

NOISE = ("cuInit", "oneDNN", "TF_ENABLE", "E0000", "W0000", "I0000", "absl::InitializeLog")


def test_start_keras_prints_one_line_and_no_tensorflow_log():
    code = "from cxr_utils.tools.quiet import start_keras; print(start_keras())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Keras 3.") and (" GPU" in result.stdout), result.stdout
    assert not [word for word in NOISE if word in result.stderr], result.stderr


def test_plain_import_of_tensorflow_is_noisy_so_the_test_above_means_something():
    """Without start_keras the same interpreter prints the log (on a machine without a GPU)."""
    result = subprocess.run([sys.executable, "-c", "import keras"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0
    assert [word for word in NOISE if word in result.stderr], result.stderr


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
