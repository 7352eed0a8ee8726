"""The project's set-up files agree with each other and with the README."""

import re
import sys
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (the test extra installs it there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


CONDA_NAMES = {"nbconvert-core": "nbconvert"}  # conda-forge's light build of nbconvert (no pandoc)
EDITABLE = "--editable ."  # the course's own package, from the clone (not a requirement: skipped below)


def _requirements(specs):
    return {canonicalize_name(r.name): str(r.specifier) for r in map(Requirement, specs)}


def _environment(name):
    """(the file, its Python spec, its pip list, {package: version range}) of a conda environment file."""
    env = yaml.safe_load((ROOT / name).read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    python = next(s for s in conda if s.startswith("python"))
    packages = [s for s in conda if not s.startswith(("python", "pip"))] + [s for s in pip if s != EDITABLE]
    named = {CONDA_NAMES.get(canonicalize_name(Requirement(s).name), Requirement(s).name): s for s in packages}
    return env, python, pip, {canonicalize_name(n): str(Requirement(s).specifier) for n, s in named.items()}


def _python_versions(spec):
    """The minor versions 3.9-3.14 a conda spec (python=3.12, python>=3.10,<3.14) admits."""
    spec = spec.removeprefix("python")
    spec = "==" + spec[1:] + ".*" if spec.startswith("=") and not spec.startswith("==") else spec
    return [v for v in ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14") if f"{v}.0" in SpecifierSet(spec)]


def test_learner_environment_is_the_course_without_the_tools():
    """environment.yml: what the chapters import, JupyterLab and the runner, the package itself; no test tools."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    env, python, pip, listed = _environment("environment.yml")
    assert listed == _requirements(project["dependencies"] + extras["lab"] + extras["course"])
    assert env["channels"] == ["conda-forge", "nodefaults"]
    assert pip[-1] == EDITABLE
    assert set(_python_versions(python)) <= set(_python_versions("python" + project["requires-python"]))


def test_developer_environment_adds_the_test_and_site_tools():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = project["dependencies"] + extras["lab"] + extras["course"] + extras["test"] + extras["site"]
    wanted = [w for w in wanted if "python_version < '3.11'" not in w]  # tomli: not needed on conda's Python
    env, python, pip, listed = _environment("environment-dev.yml")
    assert listed == _requirements(wanted)
    assert env["channels"] == ["conda-forge", "nodefaults"] and pip[-1] == EDITABLE
    assert python == _environment("environment.yml")[1]


def test_python_tensorflow_and_keras_ranges():
    """The declared ranges hold both ends CI tests: the lowest versions (make test-lowest, on Python
    3.10) and the newest ones (make test); nothing below the floors the code was found to need."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    python = SpecifierSet(project["requires-python"])
    supported = [v for v in ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14") if v in python]
    assert supported == ["3.10", "3.11", "3.12", "3.13"], python
    pins = {name: SpecifierSet(spec) for name, spec in _requirements(project["dependencies"]).items()}
    # TensorFlow 2.16 is the first with Keras 3; Keras 3.8 the first whose RandomContrast takes value_range,
    # 3.9 the first that loads a .keras file without importing the modules its config names (CVE-2025-1550),
    # 3.10 the first that takes a tensor, without a warning, in a model built on a list of one input (model.inputs),
    # 3.11 the first whose saved single-input model loads with one input, not a list (NumPy input, no warning)
    for name, lowest, newest, below, above in [
        ("tensorflow", "2.16.1", "2.21.0", "2.15.1", "2.22.0"),
        ("keras", "3.11.0", "3.15.1", "3.10.0", "3.16.0"),
    ]:
        assert lowest in pins[name] and newest in pins[name], (name, pins[name])
        assert below not in pins[name] and above not in pins[name], (name, pins[name])


def test_makefile_tests_the_lowest_python():
    """make test-lowest runs on the lowest Python that requires-python allows."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lowest = re.search(r">=\s*(3\.\d+)", project["requires-python"]).group(1)
    makefile = (ROOT / "Makefile").read_text()
    assert "test-lowest:" in makefile and f"python{lowest}" in makefile
    assert "--resolution lowest-direct" in makefile
    assert "make test-lowest" in (ROOT / ".ci" / "run").read_text()


def test_ci_runs_make_test_on_the_newest_python():
    """.ci/run's make lint and make test run on the newest Python that requires-python allows (3.13), found by name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    below = re.search(r"<\s*3\.(\d+)", project["requires-python"]).group(1)
    newest = f"3.{int(below) - 1}"
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"find_python {newest})" in ci
    assert 'make test PYTHON="$PYTHON_NEWEST"' in ci and 'make lint PYTHON="$PYTHON_NEWEST"' in ci


def test_readme_shows_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(commands) == 2, commands
    test_command = commands[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci
