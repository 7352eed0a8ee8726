"""The project's set-up files agree with each other and with the README."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _requirements(specs):
    return {canonicalize_name(r.name): str(r.specifier) for r in map(Requirement, specs)}


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _requirements(project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_specs = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_specs = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    python = next(s for s in conda_specs if s.startswith("python"))
    assert Requirement(python).specifier == Requirement("python" + project["requires-python"]).specifier
    listed = _requirements([s for s in conda_specs if not s.startswith(("python", "pip"))] + pip_specs)
    assert listed == wanted


def test_tensorflow_and_keras_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _requirements(project["dependencies"])
    assert "2.21.0" in Requirement("tensorflow" + pins["tensorflow"]).specifier
    assert "3.15.1" in Requirement("keras" + pins["keras"]).specifier


def test_readme_shows_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(commands) == 2, commands
    test_command = commands[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci
