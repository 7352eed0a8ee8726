"""The seed spread the chapters show is a committed record of a measurement, refused once it no longer fits.

Chapters 05 and 06 and the model cards show the spread of the test metrics over every recorded
run from ``benchmarks/records/seed_variance.json`` (``python benchmarks/seed_variance.py --record``).
The record holds one row per model, seed and CPU kind, and for each measurement its command,
commit, CPU kind and date; it covers at least two CPU kinds, since the CPU changes the kernels
and so the results, with at least six runs of each chapter's model; and it names the
configuration hash of each model it measured. Chapters 03 and 04's configuration, computed here
from their ``parameters`` cell and the ``parameters = dict(...)`` they pass to ``finish_run`` (full mode, as the record
was measured), must still be the one measured: a chapter that trains differently makes the
record stale, and this test says so.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import nbformat
import pytest

import cxr_utils
from cxr_utils.records import configuration_hash
from cxr_utils.runs import SEED_RECORD, seed_spread

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / SEED_RECORD
CHAPTERS = {"CNN (03)": "03_cnn_from_scratch.ipynb", "chosen transfer candidate (04)": "04_transfer_learning.ipynb"}
#: One model of each chapter the record measures: 03, 04, and 06's adaptation of the CNN.
MODELS = [*CHAPTERS, "CNN, batch-norm statistics (06)"]


def chapter_configuration(notebook: Path) -> dict:
    """The ``parameters`` a chapter hands to ``finish_run`` in full mode, from its cells, nothing trained."""
    nb = nbformat.read(notebook, as_version=4)
    namespace = {"cxr": cxr_utils}
    tagged = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    previous = os.environ.pop("CXR_FAST", None)
    try:
        exec(tagged.source, namespace)  # the chapter's settings, in full mode
    finally:
        if previous is not None:
            os.environ["CXR_FAST"] = previous
    statements = [
        node
        for cell in nb.cells
        if cell.cell_type == "code" and "parameters = dict(" in cell.source
        for node in ast.parse(cell.source.replace("%matplotlib inline", "")).body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["parameters"]
    ]
    assert len(statements) == 1, f"{notebook.name}: expected one `parameters = dict(...)`"
    exec(compile(ast.Module(statements, []), notebook.name, "exec"), namespace)
    return namespace["parameters"]


def test_the_record_says_how_it_was_measured():
    if not RECORD.exists():  # until one is measured, the chapters show an empty table that names the command
        pytest.skip(f"no record yet: `python benchmarks/seed_variance.py --record` writes {SEED_RECORD}")
    record = json.loads(RECORD.read_text())
    assert record["data"].endswith("full mode"), "a spread of fast-mode runs says nothing about the chapters' results"
    for measurement in record["measurements"]:
        assert "python benchmarks/seed_variance.py" in measurement["command"]
        assert len(measurement["commit"]) == 40 and measurement["date"] and measurement["seeds"]
    kinds = {m["cpu_kind"] for m in record["measurements"]}
    assert {row["cpu_kind"] for row in record["runs"]} == kinds, "every run names a CPU kind the record measured on"
    spread = seed_spread(tuple(MODELS))
    assert not spread.empty and spread.attrs["record"].startswith("a record: seeds ")
    assert set(spread.attrs["cpu_kinds"]) == kinds


@pytest.mark.parametrize("model", MODELS)
def test_the_record_covers_seeds_and_machines(model):
    """At least six runs of each chapter's model, over at least two CPU kinds (AVX2 only, and AVX-512)."""
    if not RECORD.exists():
        pytest.skip(f"no record yet: {SEED_RECORD}")
    runs = [row for row in json.loads(RECORD.read_text())["runs"] if row["model"] == model]
    assert len(runs) >= 6, f"{model}: {len(runs)} recorded runs"
    assert len({row["cpu_kind"] for row in runs}) >= 2, f"{model}: runs on one CPU kind only"
    assert (seed_spread((model,))["runs"] == len(runs)).all()


@pytest.mark.parametrize("model", CHAPTERS)
def test_the_record_measured_the_chapters_as_they_are(model):
    if not RECORD.exists():
        pytest.skip(f"no record yet: {SEED_RECORD}")
    measured = json.loads(RECORD.read_text())["config_hashes"][model]
    parameters = chapter_configuration(ROOT / "notebooks" / CHAPTERS[model])
    assert configuration_hash(parameters) == measured, (
        f"{CHAPTERS[model]} now trains with {parameters}, not the configuration the seed record measured: "
        "run `python benchmarks/seed_variance.py --record` again and commit the record"
    )


def test_a_changed_chapter_is_caught(tmp_path):
    source = ROOT / "notebooks" / CHAPTERS["CNN (03)"]
    nb = nbformat.read(source, as_version=4)
    before = configuration_hash(chapter_configuration(source))
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = cell.source.replace("PATIENCE = 4", "PATIENCE = 5")
    nbformat.write(nb, tmp_path / source.name)
    assert configuration_hash(chapter_configuration(tmp_path / source.name)) != before
