"""A model the course saves loads in a fresh Python by one call: ``cxr_utils.load_model(path)``."""

import json
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _fresh_python(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a new interpreter (nothing of this test process imported)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


SAVE = """
    import sys
    import numpy as np
    import keras
    from cxr_course.chapters import saved

    build_cnn = saved("build_cnn")  # chapter 03's

    keras.utils.set_random_seed(0)
    model = build_cnn(32, filters=(4,), name="tiny")
    model.save(sys.argv[1])
    x = np.full((2, 32, 32, 1), 100.0, "float32") + np.arange(2)[:, None, None, None]
    np.save(sys.argv[2], model.predict(x, verbose=0))
"""

LOAD = """
    import sys
    import numpy as np
    import cxr_utils

    model = cxr_utils.load_model(sys.argv[1])
    x = np.full((2, 32, 32, 1), 100.0, "float32") + np.arange(2)[:, None, None, None]
    np.testing.assert_allclose(model.predict(x, verbose=0), np.load(sys.argv[2]), rtol=1e-5)
    print("loaded", model.name, type(model.get_layer("standardize")).__module__)
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, Path]:
    """A small CNN of chapter 03's builder, saved by a separate Python, and its predictions."""
    folder = tmp_path_factory.mktemp("saved")
    model, scores = folder / "model.keras", folder / "scores.npy"
    done = _fresh_python(SAVE, str(model), str(scores))
    assert done.returncode == 0, done.stderr[-2000:]
    return model, scores


def test_a_saved_model_loads_in_a_fresh_python_by_one_call(saved):
    done = _fresh_python(LOAD, *map(str, saved))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "loaded tiny cxr_utils.models" in done.stdout


def test_plain_keras_without_the_package_imported_fails_which_is_why_the_call_exists(saved):
    done = _fresh_python("import sys, keras; keras.models.load_model(sys.argv[1])", str(saved[0]))
    assert done.returncode != 0 and "PerImageStandardization" in done.stderr


def _rewrite_config(source: Path, target: Path, old: str, new: str) -> None:
    """Copy a ``.keras`` zip with ``old`` replaced by ``new`` in its config.json."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                data = data.decode().replace(old, new).encode()
            zout.writestr(item, data)


def test_a_model_saved_before_the_layer_was_registered_still_loads(saved, tmp_path):
    """Older saves name the class bare (``PerImageStandardization``, not ``cxr_utils>...``)."""
    legacy = tmp_path / "legacy.keras"
    _rewrite_config(saved[0], legacy, '"cxr_utils>PerImageStandardization"', '"PerImageStandardization"')
    assert "cxr_utils>" not in zipfile.ZipFile(legacy).read("config.json").decode()
    done = _fresh_python(LOAD, str(legacy), str(saved[1]))
    assert done.returncode == 0, done.stderr[-2000:]


def test_an_unknown_custom_class_is_named(saved, tmp_path):
    unknown = tmp_path / "unknown.keras"
    _rewrite_config(saved[0], unknown, "PerImageStandardization", "MyOwnLayer")
    done = _fresh_python("import sys, cxr_utils; cxr_utils.load_model(sys.argv[1])", str(unknown))
    assert done.returncode != 0 and "MyOwnLayer" in done.stderr.splitlines()[-1], done.stderr[-2000:]


def test_a_saved_model_whose_layers_hold_code_is_refused(tmp_path):
    """A ``Lambda`` layer stores Python code: Keras's safe mode, which load_model keeps, refuses to run it."""
    import keras

    import cxr_utils

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(tmp_path / "code.keras")
    with pytest.raises(ValueError, match="Lambda"):
        cxr_utils.load_model(tmp_path / "code.keras")


def test_a_missing_file_is_named(tmp_path):
    import cxr_utils

    with pytest.raises(FileNotFoundError, match="no saved model"):
        cxr_utils.load_model(tmp_path / "absent.keras")


@pytest.mark.parametrize("run", ["03_cnn_from_scratch", "04_transfer_learning"])
def test_the_course_s_own_saved_models_load_in_a_fresh_python(run, tmp_path):
    path = ROOT / "runs" / run / "model.keras"
    if not path.exists():
        pytest.skip(f"{path} does not exist: execute the chapter (make course) to save it")
    copy = tmp_path / "model.keras"  # a copy: loading never touches the run folder
    shutil.copy(path, copy)
    names = json.loads(zipfile.ZipFile(copy).read("config.json"))
    custom = {name for name in json.dumps(names).split('"') if name.startswith("cxr_utils>")}
    assert custom, "the saved model has no custom layer of the course: nothing to register?"
    done = _fresh_python(
        """
        import sys, cxr_utils
        model = cxr_utils.load_model(sys.argv[1], compile=False)
        print("loaded", model.name, model.input_shape, model.output_shape)
        """,
        str(copy),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "loaded" in done.stdout and "(None, 1)" in done.stdout
