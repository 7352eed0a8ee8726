"""`pip install` of the course into Colab or Kaggle keeps the host's Jupyter (issue 35).

The course is resolved, without installing anything, against the package list the host publishes
(tests/data/hosts/, with the commit in each file's name; tests/hosted.py says how). What every
chapter's first cell installs on a host (`pip install -e .`, no extra) must add or replace no Jupyter
package; the host's TensorFlow, Keras, NumPy and pandas must lie inside the project's ranges. The
resolutions need uv (the test extra) and PyPI: without them these tests skip, unless
CXR_REQUIRE_PYPI=1 (.ci/run sets it when PyPI answers).
"""

import os
import sys
from pathlib import Path

import hosted
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (the test extra installs it there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
UV = hosted.find_uv()


def _core_requirements():
    return [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]


def _resolve(host, extras=(), constraints=None):
    if UV is None:
        if os.environ.get("CXR_REQUIRE_PYPI"):
            pytest.fail("uv is not installed, and CXR_REQUIRE_PYPI is set")
        pytest.skip("uv is not installed (the test extra installs it)")
    resolution = hosted.compile_requirements(ROOT, list(extras), host, UV, constraints)
    if resolution.status and hosted.unreachable(resolution.errors) and not os.environ.get("CXR_REQUIRE_PYPI"):
        pytest.skip(f"PyPI cannot be reached: {resolution.errors.strip().splitlines()[-1]}")
    assert resolution.status == 0, resolution.errors
    return resolution


@pytest.mark.parametrize("key", sorted(hosted.HOSTS))
def test_the_hosts_versions_are_inside_the_project_ranges(key):
    """Offline: every required package is already on the host, at a version in range, so pip keeps it."""
    have = hosted.HOSTS[key].packages()
    checked = {}
    for requirement in _core_requirements():
        version = have.get(hosted.canonical(requirement.name))
        assert version is not None, f"{key} has no {requirement.name}: pip would add it"
        assert Version(version) in requirement.specifier, f"{requirement.name} {version} not in {requirement.specifier}"
        checked[requirement.name] = version
    assert {"tensorflow", "keras", "numpy", "pandas"} <= checked.keys()


@pytest.mark.parametrize("key", sorted(hosted.HOSTS))
def test_pip_install_on_a_host_adds_or_replaces_no_jupyter_package(key):
    host = hosted.HOSTS[key]
    resolution = _resolve(host)
    print("\n" + hosted.report(host, [], resolution))
    assert {"tensorflow", "keras", "numpy"} <= resolution.resolved.keys()  # it reached the real requirements
    added, replaced = hosted.changes(host, resolution)
    assert not [n for n in (*added, *replaced) if hosted.JUPYTER.match(n)], (added, replaced)
    # and an install exists that keeps every Jupyter package of the host exactly
    jupyter = {n: v for n, v in host.packages().items() if hosted.JUPYTER.match(n)}
    _resolve(host, constraints=jupyter)


def test_the_lab_extra_would_replace_colabs_kernel_and_widgets():
    """The check can fail: core + lab + course (the requirements before issue 35) replaces them on Colab."""
    host = hosted.HOSTS["colab"]
    resolution = _resolve(host, extras=["lab", "course"])
    print("\n" + hosted.report(host, ["lab", "course"], resolution))
    _, replaced = hosted.changes(host, resolution)
    assert {"ipykernel", "ipywidgets"} <= replaced.keys(), replaced
