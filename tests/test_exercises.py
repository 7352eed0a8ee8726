"""Every chapter's exercises can be finished: a hint each, and a worked solution that runs.

The shape, in every notebook: a markdown cell ``## Exercises``, then for each exercise a
markdown cell starting ``### Exercise <n>: <title>`` that holds a hint (in a
``<details><summary>Hint</summary>`` block), followed by its worked solution: one or more
code cells tagged ``solution`` whose source is collapsed in JupyterLab
(``metadata.jupyter.source_hidden``) and whose first line is ``# Solution to exercise <n>``.
The solutions run with the chapter, so tests/test_notebooks.py executes them in fast mode.
Each training chapter has at least one exercise whose solution writes Keras.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TRAINING_CHAPTERS = ("03_", "04_", "05_")
HEADING = re.compile(r"^### Exercise (\d+): \S")


def _exercises(nb) -> list[tuple[int, str, list]]:
    """(number, markdown, solution cells) for each exercise after the ``## Exercises`` cell."""
    start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "## Exercises" in c.source)
    exercises = []
    for cell in nb.cells[start + 1 :]:
        heading = HEADING.match(cell.source) if cell.cell_type == "markdown" else None
        if heading:
            exercises.append((int(heading.group(1)), cell.source, []))
        elif cell.cell_type == "code" and exercises:
            exercises[-1][2].append(cell)
    return exercises


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_a_hint_and_a_collapsed_worked_solution(path):
    nb = nbformat.read(path, as_version=4)
    exercises = _exercises(nb)
    assert len(exercises) >= 2, "fewer than two exercises (### Exercise <n>: <title>)"
    assert [number for number, _, _ in exercises] == list(range(1, len(exercises) + 1))
    for number, markdown, solutions in exercises:
        assert "<summary>Hint</summary>" in markdown, f"exercise {number} has no hint"
        assert solutions, f"exercise {number} has no solution cell"
        assert solutions[0].source.startswith(f"# Solution to exercise {number}"), solutions[0].source[:80]
        for cell in solutions:
            assert "solution" in cell.metadata.get("tags", []), f"exercise {number}: solution cell not tagged"
            assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, f"exercise {number}: not collapsed"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name.startswith(TRAINING_CHAPTERS)], ids=lambda p: p.name)
def test_a_training_chapter_asks_for_keras_code(path):
    nb = nbformat.read(path, as_version=4)
    solutions = "\n".join(cell.source for _, _, cells in _exercises(nb) for cell in cells)
    assert "keras." in solutions or "tf.GradientTape" in solutions


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solutions_never_score_the_test_split_or_reuse_a_run_folder(path):
    """An exercise trains in a folder of its own, replaced on a rerun, and is scored on validation."""
    nb = nbformat.read(path, as_version=4)
    for number, _, cells in _exercises(nb):
        source = "\n".join(cell.source for cell in cells)
        assert "finish_run(" not in source, f"exercise {number} scores the test split"
        if "fit(" in source:
            assert "replace=True" in source, f"exercise {number} trains without its own, replaced run folder"
