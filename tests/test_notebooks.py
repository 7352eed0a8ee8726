"""The notebooks: committed clean, shaped like a chapter, and executed end to end with nbconvert.

Execution runs every notebook in fast mode (CXR_FAST=1) on the 416 original-resolution
images, fails on any error, checks that every figure rendered, and keeps the executed
copies under build/executed/ (not committed).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cxr_course import build_dir

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXECUTED = build_dir() / "executed"


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:2] == ["01_dataset_exploration.ipynb", "02_resolution_histograms.ipynb"]


def _hosted_cell() -> str:
    """Chapter 01's first code cell, which every chapter opens with: on Colab or Kaggle it fetches the course."""
    first = next(c for c in nbformat.read(NOTEBOOKS[0], as_version=4).cells if c.cell_type == "code")
    assert '"KAGGLE_KERNEL_RUN_TYPE" in os.environ' in first.source and "COLAB_RELEASE_TAG" in first.source
    assert first.metadata.get("tags") == ["hide-input"]  # folded on the website
    return first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_and_shaped_like_a_chapter(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs before committing"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "you will" in nb.cells[0].source.lower()  # says what the learner will be able to do
    assert code[0].source == _hosted_cell()  # Colab and Kaggle: tests/test_hosts.py
    assert any("check_versions(" in c.source for c in code[:3])  # the setup cell checks versions
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "CXR_DATA_DIR" in tagged[0].source and "fast_mode()" in tagged[0].source
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Summary" in markdown and "## Exercises" in markdown


TENSORFLOW_NOISE = re.compile(r"cuInit|oneDNN custom operations|TF_ENABLE_ONEDNN_OPTS|E0000|W0000")


def _output_lines(nb) -> list[str]:
    """Every line of text a notebook's code cells printed or displayed."""
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            texts.append(output.get("text", ""))
            texts.append(output.get("data", {}).get("text/plain", ""))
            texts.extend(output.get("traceback", []))
    return "\n".join(texts).splitlines()


def _figure_cells(nb) -> list[int]:
    """Code cells whose value is a figure of the course's (``cxr.plot_...``)."""
    return [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and c.source.strip().splitlines()[-1].startswith("cxr.plot_")
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_with_every_figure_rendered(path, originals, request):
    env = dict(os.environ, CXR_DATA_DIR=str(originals), CXR_FAST="1", CXR_NO_DOWNLOAD="1")
    if "transfer" in path.name:  # needs the real ImageNet weights, offline
        env["CXR_WEIGHTS_DIR"] = str(request.getfixturevalue("keras_weights"))
    env.pop("MPLBACKEND", None)  # keep the kernel's inline backend
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=900",
            "--output-dir",
            str(EXECUTED),
            str(path),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=path.parent,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    nb = nbformat.read(EXECUTED / path.name, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    stderr_text = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("name") == "stderr"
    )
    assert "Traceback" not in stderr_text and "Warning" not in stderr_text, stderr_text
    setup = next(c for c in nb.cells if c.cell_type == "code" and "check_versions(" in c.source)
    assert "Versions: python 3." in "".join(o.get("text", "") for o in setup.outputs), (
        "the executed copy does not record the versions it ran with"
    )
    noise = [line for line in _output_lines(nb) if TENSORFLOW_NOISE.search(line)]
    assert not noise, "TensorFlow's start-up log reached the notebook:\n" + "\n".join(noise)
    for i in _figure_cells(nb):
        assert any("image/png" in o.get("data", {}) for o in nb.cells[i].outputs), f"cell {i} drew no figure"
    assert _figure_cells(nb), "a chapter without a single figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_chapter_reaches_the_package_through_one_name(path):
    """``import cxr_utils as cxr`` once: ``cxr.`` reads as the course's helper, ``keras.`` as the lesson.

    Every ``cxr.<name>`` the chapter uses, solutions included, is a helper the namespace gives.
    """
    import cxr_utils

    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    imports = re.findall(r"^\s*(?:from cxr_utils\S*|import cxr_utils\S*).*$", source, re.M)
    assert imports == ["import cxr_utils as cxr"], imports
    used = set(re.findall(r"\bcxr\.(\w+)", source))
    assert used, "the chapter uses no helper of the course"
    assert used <= set(cxr_utils.__all__), f"not in cxr_utils' namespace: {sorted(used - set(cxr_utils.__all__))}"


MAX_CELL_LINES = 40


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_is_short(path):
    """One idea per cell, read in one look: at most 40 lines, solutions included."""
    cells = nbformat.read(path, as_version=4).cells
    long = {i: len(c.source.splitlines()) for i, c in enumerate(cells) if c.cell_type == "code"}
    long = {i: n for i, n in long.items() if n > MAX_CELL_LINES}
    assert not long, f"cells over {MAX_CELL_LINES} lines (cell: lines): {long}"
