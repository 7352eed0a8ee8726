"""Check and record the versions a notebook runs with.

The required ranges are read from the installed package's own metadata (the
``dependencies`` and ``requires-python`` of ``pyproject.toml``), so they are written in
one place only.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, metadata, requires, version

import pandas as pd
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from . import __version__

__all__ = ["check_versions"]


def check_versions(packages: list[str] | None = None, *, show: bool = True) -> pd.DataFrame:
    """Compare installed versions with the ranges the project requires (metadata only: nothing is imported).

    ``packages`` are distribution names (default: every runtime dependency); ``show`` prints
    one line, ``Versions: python 3.11.7, numpy 2.4.6, ...``, so that an executed notebook
    records what it ran with. Returns one row per package, ``python`` first: ``package``,
    ``required``, ``installed``, ``ok``. Raises RuntimeError if a package is missing or outside
    its range, saying what to run (``make env``) to fix it.
    """
    wanted = {}
    for spec in requires("cxr-utils") or []:
        requirement = Requirement(spec)
        if requirement.marker is None:  # extras (tests) carry a marker
            wanted[requirement.name.lower()] = requirement
    names = [name.lower() for name in packages] if packages is not None else list(wanted)
    python_range = SpecifierSet(metadata("cxr-utils")["Requires-Python"] or "")
    python = platform.python_version()
    rows = [{"package": "python", "required": str(python_range), "installed": python, "ok": python in python_range}]
    for name in names:
        requirement = wanted.get(name)
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        ok = installed is not None and (
            requirement is None or requirement.specifier.contains(installed, prereleases=True)
        )
        rows.append(
            {
                "package": name,
                "required": str(requirement.specifier) if requirement else "",
                "installed": installed or "missing",
                "ok": ok,
            }
        )
    table = pd.DataFrame(rows)
    bad = table[~table["ok"]]
    if not bad.empty:
        listing = ", ".join(f"{r.package} {r.installed} (needs {r.required})" for r in bad.itertuples())
        raise RuntimeError(
            f"wrong versions: {listing}. Run `make env` (or reinstall with pip install -e .) and restart the kernel."
        )
    if show:
        print(
            "Versions: "
            + ", ".join(f"{r.package} {r.installed}" for r in table.itertuples())
            + f" (cxr-utils {__version__})"
        )
    return table
