"""The package's shape: every module documented, every public name exported, no module too long."""

import ast
import importlib
import re
from pathlib import Path

import pytest

import cxr_utils

PACKAGE = Path(cxr_utils.__file__).parent
# Modules by dotted name below cxr_utils; plots is a package of figure modules, listed as one.
MODULES = sorted(
    ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    for path in PACKAGE.rglob("*.py")
    if path.name != "__init__.py" and path.parent.name != "plots"
)
MODULES.append("plots")
MAX_LINES = 400


def test_the_package_docstring_lists_every_module():
    listed = set(re.findall(r"^``([\w.]+)``", cxr_utils.__doc__, re.M))
    assert listed == set(MODULES), (
        f"listed but absent: {listed - set(MODULES)}; absent from the list: {set(MODULES) - listed}"
    )


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_too_long(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines: split it by concern"


@pytest.mark.parametrize("name", MODULES)
def test_all_names_every_public_definition(name):
    module = importlib.import_module(f"cxr_utils.{name}")
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    public = {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
    }
    exported = set(getattr(module, "__all__", ()))
    assert public <= exported, f"cxr_utils.{name}.__all__ misses {sorted(public - exported)}"
    assert all(hasattr(module, n) for n in exported), f"cxr_utils.{name}.__all__ names what it does not define"
