"""The package's shape: every module documented, in layers without cycles, every public name exported, no module
too long, and ``cxr.<name>`` giving each chapter helper without loading TensorFlow."""

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cxr_utils

PACKAGE = Path(cxr_utils.__file__).parent
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py") if path.name != "__init__.py")  # one flat package
LAYERS = re.findall(r"^``([\w.]+)``", cxr_utils.__doc__, re.M)  # the docstring's list, lowest layer first
MAX_LINES = 350


def test_the_package_docstring_lists_every_module():
    assert set(LAYERS) == set(MODULES), (
        f"listed but absent: {set(LAYERS) - set(MODULES)}; absent from the list: {set(MODULES) - set(LAYERS)}"
    )


def _layer(dotted: str) -> str | None:
    """The layer of ``cxr_utils.x.y`` (``x``), None for the package itself."""
    parts = dotted.split(".")[1:]
    return parts[0] if parts else None


def imports_of(path: Path, dotted: str) -> set[str]:
    """The layers the module ``dotted`` (at ``path``) imports, at its top or inside functions.

    Relative and absolute imports count; what comes from the package's own ``__init__``
    (the environment, the version) does not.
    """
    package = dotted.split(".") if path.name == "__init__.py" else dotted.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = ".".join(package[: len(package) - node.level + 1])
            targets = [f"{base}.{node.module}"] if node.module else [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            targets = [node.module or ""]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        found |= {_layer(t) for t in targets if t.split(".")[0] == "cxr_utils"}
    return (found & set(MODULES)) - {_layer(dotted)}  # names the package itself defines are no layer


@pytest.mark.parametrize(
    "path", sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py"), ids=lambda p: str(p.name)
)
def test_a_module_imports_only_the_layers_below_it(path):
    """The import contract: no cycle, and nothing from a higher layer, not even inside a function."""
    dotted = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    own = _layer(dotted)
    above = imports_of(path, dotted) - set(LAYERS[: LAYERS.index(own)])
    assert not above, f"{path.relative_to(PACKAGE)} ({own}) imports {sorted(above)}, listed above it in cxr_utils"


def test_the_import_contract_sees_imports_inside_functions(tmp_path):
    fake = tmp_path / "names.py"
    fake.write_text("import numpy\nfrom .cache import load_grayscale\n\n\ndef f():\n    from .runs import load_run\n")
    assert imports_of(fake, "cxr_utils.names") == {"cache", "runs"}
    (tmp_path / "__init__.py").write_text("from .. import records\n")
    assert imports_of(tmp_path / "__init__.py", "cxr_utils.plots") == {"records"}


def test_cxr_gives_every_chapter_helper_without_loading_tensorflow():
    for name in cxr_utils.__all__:
        assert getattr(cxr_utils, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'no_such_helper'"):
        cxr_utils.no_such_helper  # noqa: B018
    light = "import sys, cxr_utils as cxr; cxr.index_dataset; cxr.plot_split_counts; print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", light], capture_output=True, text=True, check=True).stdout == "False\n"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_too_long(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines: split it by concern"


@pytest.mark.parametrize("name", MODULES)
def test_all_names_only_what_the_module_defines(name):
    module = importlib.import_module(f"cxr_utils.{name}")
    exported = set(getattr(module, "__all__", ()))
    assert all(hasattr(module, n) for n in exported), f"cxr_utils.{name}.__all__ names what it does not define"
