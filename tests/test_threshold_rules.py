"""Every comparison of models in chapters 04 to 06 names the rule of its thresholds, one of the course's.

A table that puts models side by side (``evaluation_table``) names each row's rule; a paired
comparison (``compare_models``) takes one rule for all its models. Both refuse to run without
one (tests/test_tables.py, tests/test_comparison.py); here each call in the chapters is read and
its rule must come from ``cxr.THRESHOLD_RULES``, so that two chapters cannot name one rule two ways.
The summary of a course run quotes chapter 05's table with its ``threshold rule`` column
(tests/test_course.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("0[3-6]_*.ipynb"))
COMPARISONS = {"evaluation_table": "rules", "compare_models": "rule"}


def comparison_calls(path: Path) -> list[tuple[int, str, ast.Call]]:
    """(cell, function, call) for every ``cxr.evaluation_table(...)`` and ``cxr.compare_models(...)`` of a chapter."""
    calls = []
    for number, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        tree = ast.parse("\n".join(line for line in cell.source.splitlines() if not line.startswith("%")))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in COMPARISONS:
                calls.append((number, node.func.attr, node))
    return calls


def names_a_course_rule(value: ast.AST, cell_source: str) -> bool:
    """The argument reads ``cxr.THRESHOLD_RULES`` directly, or a name the cell built from it."""
    text = ast.unparse(value)
    return "cxr.THRESHOLD_RULES[" in text or (isinstance(value, ast.Name) and "cxr.THRESHOLD_RULES[" in cell_source)


@pytest.mark.parametrize("path", [p for p in CHAPTERS if p.name[:2] in ("04", "05", "06")], ids=lambda p: p.name)
def test_every_comparison_names_a_course_rule(path):
    calls = comparison_calls(path)
    assert calls, f"{path.name} compares no models"
    cells = nbformat.read(path, as_version=4).cells
    for number, function, call in calls:
        keyword = next((k for k in call.keywords if k.arg == COMPARISONS[function]), None)
        assert keyword is not None, f"{path.name}, cell {number}: {function} without {COMPARISONS[function]}="
        assert names_a_course_rule(keyword.value, cells[number].source), (
            f"{path.name}, cell {number}: {function}'s {keyword.arg} does not come from cxr.THRESHOLD_RULES"
        )


def test_a_comparison_without_a_rule_is_caught(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("cxr.compare_models(y, models)"),
        nbformat.v4.new_code_cell('cxr.evaluation_table(rows, rules="mine")'),
    ]
    nbformat.write(nb, tmp_path / "04_x.ipynb")
    (first, _, call), (second, _, other) = comparison_calls(tmp_path / "04_x.ipynb")
    assert (first, second) == (0, 1) and not call.keywords
    assert not names_a_course_rule(other.keywords[0].value, nb.cells[1].source)
