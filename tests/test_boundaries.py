"""The package's size and boundaries (issue 34): ``cxr_utils`` stays small, and neither it nor the chapters import
the course's machinery, ``cxr_course``. Lower a limit when the package shrinks; never raise one to fit a change."""

import ast
import importlib
import json
from pathlib import Path

import pytest

import cxr_utils

ROOT = Path(cxr_utils.__file__).resolve().parent.parent
PACKAGE = ROOT / "cxr_utils"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES, MAX_FILES, MAX_MODULE_LINES, MAX_PUBLIC_NAMES = 3822, 14, 350, 120
COURSE_MAX_LINES = 2300  # cxr_course, the course's machinery


def lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def public_names() -> set[str]:
    """Every name a module of the package lists in ``__all__``, and the package's own."""
    names = set(cxr_utils.__all__)
    for path in MODULES:
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        names |= set(getattr(importlib.import_module(dotted), "__all__", ()))
    return names


def test_the_package_keeps_its_line_budget():
    total = sum(lines(path) for path in MODULES)
    assert total <= MAX_LINES, f"cxr_utils has {total} lines, over its budget of {MAX_LINES}"
    assert len(MODULES) <= MAX_FILES, f"cxr_utils has {len(MODULES)} files, over {MAX_FILES}"
    longest = max(MODULES, key=lines)
    assert lines(longest) <= MAX_MODULE_LINES, f"{longest.name} has {lines(longest)} lines, over {MAX_MODULE_LINES}"
    assert len(public_names()) <= MAX_PUBLIC_NAMES, f"{len(public_names())} public names, over {MAX_PUBLIC_NAMES}"


def test_the_course_machinery_keeps_its_line_budget():
    total = sum(lines(path) for path in (ROOT / "cxr_course").rglob("*.py"))
    assert total <= COURSE_MAX_LINES, f"cxr_course has {total} lines, over its budget of {COURSE_MAX_LINES}"


def test_the_course_machinery_uses_no_private_name_of_the_package():
    private = set()
    for path in sorted((ROOT / "cxr_course").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "cxr_utils":
                private |= {f"{path.name}: {alias.name}" for alias in node.names if alias.name.startswith("_")}
    assert not private, f"cxr_course imports private names of cxr_utils: {sorted(private)}"


def imported_modules(source: str) -> set[str]:
    """Every module an import statement names in ``source``, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_package_never_imports_the_course_machinery(path):
    names = imported_modules(path.read_text(encoding="utf-8"))
    assert not {n for n in names if n.split(".")[0] == "cxr_course"}, f"{path.name} imports cxr_course"


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_the_chapters_never_import_the_course_machinery(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert not [c for c in code if "cxr_course" in c], f"{path.name} names cxr_course in a code cell"


def test_the_import_check_sees_imports_inside_functions():
    source = "import numpy\n\n\ndef f():\n    from cxr_course.cli import main\n    import cxr_course\n"
    assert imported_modules(source) == {"numpy", "cxr_course.cli", "cxr_course"}
