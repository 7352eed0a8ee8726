"""Definitions a chapter writes out and the package keeps too (d2l's ``#@save``) must not drift apart.

A code cell whose first line is ``# @save cxr_utils.<module>`` holds definitions (functions,
classes) that ``cxr_utils/<module>.py`` holds as well (those the package calls itself; the others
stay in their chapter, loaded from it by ``cxr_course.chapters``), each marked there by a comment
``# Saved from notebooks/<chapter>.ipynb``. The two copies' code is compared after parsing (so
formatting, comments and docstrings do not count; names, defaults and code do). The docstrings
are compared apart: the chapter's is the package's summary (the markdown around the cell explains
the rest), so the package's docstring starts with the chapter's and goes on with shapes and details.
"""

from __future__ import annotations

import ast
import copy
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MARKER = re.compile(r"^# @save (cxr_utils(?:\.\w+)+)\s*$")
PACKAGE_MARK = re.compile(r"^# Saved from (notebooks/\S+\.ipynb)")


@dataclass(frozen=True)
class Definition:
    """A top-level function or class, and where it is written."""

    name: str
    node: ast.AST
    place: str  # "notebooks/03_x.ipynb, cell 12" or "cxr_utils/models.py:42"


class _CodeOnly(ast.NodeTransformer):
    """``cxr.<name>`` (a chapter reaching the package) read as ``<name>`` (the package's own name for it), and
    the docstrings of functions and classes dropped (:func:`docstring_drift` compares those)."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.value, ast.Name) and node.value.id == "cxr":
            return ast.Name(id=node.attr, ctx=node.ctx)
        return self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> ast.AST:
        if ast.get_docstring(node) is not None:
            node.body = node.body[1:] or [ast.Pass()]
        return self.generic_visit(node)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef


def normalised(node: ast.AST) -> str:
    """The definition's syntax tree without positions, docstrings and ``cxr.`` prefixes: equal for equal code."""
    return ast.dump(_CodeOnly().visit(copy.deepcopy(node)), include_attributes=False)


def docstring_drift(chapter: Definition, package: Definition) -> str | None:
    """``None`` when the package's docstring starts with the chapter's (its summary), else a message."""
    short, full = (ast.get_docstring(d.node) or "" for d in (chapter, package))
    if short and full.startswith(short):
        return None
    return (
        f"`{chapter.name}`: the docstring in {chapter.place} must be the start (the summary) of the one in "
        f"{package.place}\n  chapter: {short!r}\n  package: {full.splitlines()[0] if full else ''!r}"
    )


def saved_cells(path: Path) -> list[tuple[int, str, str]]:
    """``(cell number, module, source)`` of every ``# @save`` cell of a notebook."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for number, cell in enumerate(nb.cells):
        first = cell.source.splitlines()[0] if cell.cell_type == "code" and cell.source else ""
        match = MARKER.match(first)
        if match:
            cells.append((number, match.group(1), cell.source))
    return cells


def notebook_definitions(path: Path) -> list[tuple[str, Definition]]:
    """``(module, definition)`` for every definition in the notebook's ``# @save`` cells."""
    found = []
    for number, module, source in saved_cells(path):
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                place = f"{path.relative_to(ROOT)}, cell {number}"
                found.append((module, Definition(node.name, node, place)))
    return found


def package_definitions(module: str) -> dict[str, Definition]:
    """The top-level definitions of ``cxr_utils.<...>`` by name."""
    path = ROOT / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name: Definition(node.name, node, f"{path.relative_to(ROOT)}:{node.lineno}")
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
    }


def drift(chapter: Definition, package: Definition) -> str | None:
    """``None`` when the two copies are the same code, else a message naming both places and the difference."""
    if normalised(chapter.node) == normalised(package.node):
        return None
    diff = difflib.unified_diff(
        ast.unparse(package.node).splitlines(),
        ast.unparse(chapter.node).splitlines(),
        package.place,
        chapter.place,
        lineterm="",
    )
    return (
        f"`{chapter.name}` differs between {chapter.place} and {package.place}: edit both copies "
        "(or neither)\n" + "\n".join(diff)
    )


SAVED = [(module, definition) for path in NOTEBOOKS for module, definition in notebook_definitions(path)]


def test_the_chapters_save_their_lesson_code():
    names = {definition.name for _, definition in SAVED}
    lesson = {"augmentation_layers", "compile_binary", "course_callbacks", "grad_cam_batch"}  # chapters 03, 05
    assert lesson <= names, f"not written out in a chapter: {sorted(lesson - names)}"


@pytest.mark.parametrize("name", ["build_cnn", "build_top_classifier"])
def test_a_chapter_only_definition_has_no_package_copy_and_loads_from_its_chapter(name):
    """Chapter 03's CNN and chapter 04's head are written only in their chapter; tests, benchmarks and scripts load
    them from there (``cxr_course.chapters.saved``)."""
    from cxr_course.chapters import saved

    copies = [path.name for path in (ROOT / "cxr_utils").rglob("*.py") if f"def {name}(" in path.read_text()]
    assert not copies, f"{name} is kept in the package too: {copies}"
    assert callable(saved(name)) and saved(name).__name__ == name


def lesson_calls(chapter: str) -> set[str]:
    """The calls a chapter's code cells make, as written (``model.fit``, ``keras.Model``), solutions aside."""
    nb = nbformat.read(ROOT / "notebooks" / chapter, as_version=4)
    calls = set()
    for cell in nb.cells:
        if cell.cell_type != "code" or "solution" in cell.metadata.get("tags", []):
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
        calls |= {ast.unparse(node.func) for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)}
    return calls


def test_the_chapters_train_cut_and_threshold_in_their_cells():
    """Not saved, written in the cells: chapter 03's callbacks and ``model.fit`` and its Youden threshold off the
    ROC curve; chapter 04's cut of the backbone into two functional-API models and candidate B's fit."""
    chapter_03 = lesson_calls("03_cnn_from_scratch.ipynb")
    assert {"course_callbacks", "model.fit", "roc_curve", "np.argmax"} <= chapter_03, sorted(chapter_03)
    chapter_04 = lesson_calls("04_transfer_learning.ipynb")
    assert {"backbone.get_layer", "keras.Model", "build_top_classifier", "cxr.fit_with_callbacks"} <= chapter_04


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_cells_hold_definitions_only(path):
    for number, module, source in saved_cells(path):
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), f"{path.name} cell {number}: no module {module}"
        others = [
            type(node).__name__
            for node in ast.parse(source).body
            if not isinstance(node, (ast.FunctionDef, ast.ClassDef))
        ]
        assert not others, f"{path.name} cell {number}: a saved cell holds definitions only, found {others}"


@pytest.mark.parametrize(("module", "chapter"), SAVED, ids=[f"{m}.{d.name}" for m, d in SAVED])
def test_chapter_and_package_copies_are_identical(module, chapter):
    package = package_definitions(module)
    assert chapter.name in package, f"{chapter.place} saves `{chapter.name}`, which {module} does not define"
    message = drift(chapter, package[chapter.name]) or docstring_drift(chapter, package[chapter.name])
    assert message is None, message


def test_every_package_copy_names_its_chapter():
    """A package definition marked ``# Saved from <notebook>`` has its copy in that notebook."""
    saved = {(str(ROOT / d.place.split(",")[0]), module, d.name) for module, d in SAVED}
    for path in sorted((ROOT / "cxr_utils").rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.parse("\n".join(lines)).body:
            if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                continue
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            match = PACKAGE_MARK.match(lines[start - 2]) if start >= 2 else None
            if match:
                assert (str(ROOT / match.group(1)), module, node.name) in saved, (
                    f"{path.relative_to(ROOT)}:{node.lineno} says `{node.name}` is saved from {match.group(1)}, "
                    "which has no `# @save` copy of it"
                )


def test_drift_is_caught_and_names_both_places():
    chapter = Definition("f", ast.parse("def f(x):\n    return x + 1").body[0], "notebooks/03_x.ipynb, cell 7")
    same = Definition("f", ast.parse("def f(x):  # a comment\n    return (x + 1)").body[0], "cxr_utils/m.py:3")
    prefixed = Definition("f", ast.parse("def f(x):\n    return cxr.g(x)").body[0], "notebooks/03_x.ipynb, cell 7")
    assert drift(prefixed, Definition("f", ast.parse("def f(x):\n    return g(x)").body[0], "m.py:3")) is None
    edited = Definition("f", ast.parse("def f(x):\n    return x + 2").body[0], "cxr_utils/m.py:3")
    assert drift(chapter, same) is None
    message = drift(chapter, edited)
    assert "notebooks/03_x.ipynb, cell 7" in message and "cxr_utils/m.py:3" in message
    assert "-    return x + 2" in message and "+    return x + 1" in message


def test_docstrings_are_compared_apart_the_chapter_keeping_the_summary():
    def f(doc: str, body: str = "return x") -> Definition:
        return Definition("f", ast.parse(f'def f(x):\n    """{doc}"""\n    {body}').body[0], "here")

    full = f("Add one.\n\n    ``x``: an array of any shape; returns the same shape.")
    assert drift(f("Add one."), full) is None and docstring_drift(f("Add one."), full) is None
    assert "must be the start" in docstring_drift(f("Add two."), full)
    assert drift(f("Add one.", "return x + 1"), full) is not None  # the code still counts
