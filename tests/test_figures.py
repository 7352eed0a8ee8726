"""The README's figures: docs/figures.py takes them from a full run's executed chapters (issue 35)."""

import base64
import importlib.util
import io
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("docs_figures", ROOT / "docs" / "figures.py")
figures = sys.modules["docs_figures"] = importlib.util.module_from_spec(spec)  # dataclasses look it up
spec.loader.exec_module(figures)


def _png(colour, size=(60, 40)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _build(tmp_path, fast=False):
    """A build/ folder holding executed chapters with one figure cell each, and the runner's summary."""
    build = tmp_path / "build"
    (build / "executed").mkdir(parents=True)
    for i, figure in enumerate(figures.FIGURES):
        path = build / "executed" / figure.notebook
        nb = nbformat.read(path, as_version=4) if path.exists() else nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell(f"x = 1\n{figure.source}...)")
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png((40 * i, 80, 120))})]
        nb.cells.append(cell)
        nbformat.write(nb, path)
    (build / "summary.json").write_text(json.dumps({"fast": fast, "data_dir": "/data/chest_xray_224"}))
    return build


def test_figures_are_taken_from_the_executed_chapters_with_commit_and_date(tmp_path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "README.md").write_text(f"# Course\n\n{figures.MARKERS[0]}\nSTALE\n{figures.MARKERS[1]}\n\nmore\n")
    build = _build(tmp_path)
    assert figures.main([str(build), "--commit", "abc1234", "--date", "2026-12-07"], root=root) == 0
    written = sorted(p.name for p in (root / "docs" / "figures").iterdir())
    assert written == sorted(f"{f.name}.png" for f in figures.FIGURES)
    readme = (root / "README.md").read_text()
    assert "STALE" not in readme and readme.endswith("\n\nmore\n")
    for figure in figures.FIGURES:
        assert f"![{figure.name}](docs/figures/{figure.name}.png)" in readme
    captions = re.findall(r"^\*(.*)\*$", readme, re.M)
    assert len(captions) == len(figures.FIGURES)
    assert all(c.endswith("Full-mode run on chest_xray_224 at commit abc1234, 2026-12-07.") for c in captions)
    assert "](figures/" in (root / "docs" / "figures.md").read_text()


def test_a_fast_run_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="fast-mode"):
        figures.main([str(_build(tmp_path, fast=True)), "--commit", "abc1234", "--date", "2026-12-07"])


def test_a_large_figure_is_reduced_under_the_limit():
    noise = Image.effect_noise((900, 700), 80).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    assert len(buffer.getvalue()) > figures.MAX_BYTES
    assert len(figures._small(buffer.getvalue())) <= figures.MAX_BYTES
    gray = Image.effect_noise((1200, 900), 80).convert("RGB")  # gray levels in three channels
    buffer = io.BytesIO()
    gray.save(buffer, format="PNG")
    small = figures._small(buffer.getvalue())
    assert len(small) <= figures.MAX_BYTES and Image.open(io.BytesIO(small)).mode == "L"


def test_the_committed_figures_are_small_and_captioned():
    folder = ROOT / "docs" / "figures"
    if not folder.is_dir():
        pytest.skip("no figures committed yet: run `make figures` after a full `make course`")
    for figure in figures.FIGURES:
        png = folder / f"{figure.name}.png"
        assert png.stat().st_size < 300_000, png
    gallery = (ROOT / "docs" / "figures.md").read_text()
    assert all(
        re.search(r"Full-mode run( on \S+)? at commit [0-9a-f]{7,}, \d{4}-\d\d-\d\d\.", line)
        for line in re.findall(r"^\*.*\*$", gallery, re.M)
    )
