"""What would `pip install` of the course add or replace on Colab or Kaggle? (issue 35)

The project's requirements (pyproject.toml, optionally with extras) are resolved with uv for the host's
Python and platform, preferring the versions of the host's published pip freeze
(googlecolab/backend-info, pip-freeze.txt, copied under tests/data/hosts/) the way pip keeps an
installed version that satisfies a requirement. Nothing is installed: uv reads package metadata from
PyPI (the only network access), for the packages in the dependency closure only. A second resolution
pins every Jupyter package to the host's version as a hard constraint: it succeeds exactly when an
install exists that keeps them all.

    python tests/hosted.py [PROJECT_DIR] [--host colab|kaggle] [--extra NAME ...]

prints the packages that would be added and those whose version would be replaced (Jupyter ones
marked); tests/test_hosted_install.py asserts on the same resolution.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOSTS_DIR = Path(__file__).resolve().parent / "data" / "hosts"
PLATFORM = "x86_64-manylinux_2_35"  # Ubuntu 22.04 (backend-info os-info.txt): glibc 2.35

# The kernel and its front-end plumbing. Colab's pip hook warns about ipython, ipykernel, tornado,
# prompt-toolkit and pyzmq, and google-colab pins ipykernel, ipython, jupyter-server and tornado
# (googlecolab/colabtools setup.py); replacing any of them can crash the hosted runtime.
JUPYTER = re.compile(
    r"^(jupyter.*|ipykernel|ipython|ipython-genutils|ipywidgets|widgetsnbextension|notebook|notebook-shim|"
    r"nbclient|nbconvert|nbformat|traitlets|tornado|comm|pyzmq|debugpy|prompt-toolkit|matplotlib-inline|"
    r"google-colab)$"
)

# Kaggle publishes no freeze. Its image is Colab's runtime of 2026-05-14 (Kaggle/docker-python 78aaa43,
# Dockerfile.tmpl) plus kaggle_requirements.txt, which pins these; nbconvert 6.4.5 needs nbclient<0.6 and
# mistune<2. The approximation: the last Colab freeze before that image, with these pins on top.
KAGGLE_PINS = {
    "ipywidgets": "8.1.5",
    "jupyter-lsp": "1.5.1",
    "jupyter-server": "2.12.5",
    "nbconvert": "6.4.5",
    "nbclient": "0.5.13",
    "mistune": "0.8.4",
}


@dataclass(frozen=True)
class Host:
    name: str
    freeze: Path
    python: str
    pins: dict[str, str] = field(default_factory=dict)

    def packages(self) -> dict[str, str]:
        """{canonical name: version} the host has installed (freeze lines, then the host's own pins)."""
        return read_pins(self.freeze.read_text()) | self.pins

    @property
    def commit(self) -> str:
        return self.freeze.stem.rsplit(".", 1)[-1]


HOSTS = {
    "colab": Host("Colab", HOSTS_DIR / "colab-pip-freeze.a724079.txt", "3.13"),
    "kaggle": Host("Kaggle (approximated)", HOSTS_DIR / "colab-pip-freeze.6f38803.txt", "3.12", KAGGLE_PINS),
}


def canonical(name: str) -> str:
    """PEP 503 normalised name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a pip freeze as {canonical name: version} (direct-URL lines are skipped)."""
    pins = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and " @ " not in line and "==" in line:
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip()
    return pins


def find_uv() -> str | None:
    """uv beside this Python (the test extra installs it in the venv), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


@dataclass
class Resolution:
    status: int
    resolved: dict[str, str]
    errors: str
    seconds: float


def compile_requirements(
    project: Path, extras: list[str], host: Host, uv: str, constraints: dict[str, str] | None = None
) -> Resolution:
    """``uv pip compile`` of ``project``'s pyproject.toml for ``host``, preferring the host's versions."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "resolved.txt")
        # uv prefers the versions already pinned in its output file: pip's "keep what is installed"
        out.write_text("".join(f"{n}=={v}\n" for n, v in sorted(host.packages().items())))
        command = [uv, "pip", "compile", str(project / "pyproject.toml"), "-o", str(out), "--no-python-downloads"]
        command += ["--python-version", host.python, "--python-platform", PLATFORM, "--no-header", "--no-annotate"]
        command += [f"--extra={extra}" for extra in extras]
        if constraints:
            pinned = Path(tmp, "constraints.txt")
            pinned.write_text("".join(f"{n}=={v}\n" for n, v in sorted(constraints.items())))
            command += ["--constraint", str(pinned)]
        done = subprocess.run(command, capture_output=True, text=True)
        resolved = read_pins(out.read_text()) if done.returncode == 0 else {}
    return Resolution(done.returncode, resolved, done.stderr, time.perf_counter() - start)


def unreachable(errors: str) -> bool:
    """uv's error says the package index could not be reached (no network, no DNS, a proxy)."""
    return any(
        s in errors for s in ("Failed to fetch", "dns error", "error sending request", "Could not connect", "offline")
    )


def changes(host: Host, resolution: Resolution) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """(added {name: version}, replaced {name: (host's version, new version)})."""
    have = host.packages()
    added = {n: v for n, v in resolution.resolved.items() if n not in have}
    replaced = {n: (have[n], v) for n, v in resolution.resolved.items() if n in have and have[n] != v}
    return added, replaced


def report(host: Host, extras: list[str], resolution: Resolution) -> str:
    """The closure, what is added and what is replaced, one package a line, Jupyter ones marked."""
    added, replaced = changes(host, resolution)
    jupyter = {n for n in (*added, *replaced) if JUPYTER.match(n)}
    install = f"pip install -e .{'[' + ','.join(extras) + ']' if extras else ''}"
    lines = [
        f"{host.name} (backend-info {host.commit}, Python {host.python}), `{install}`: "
        f"{len(resolution.resolved)} packages, {len(added)} added, {len(replaced)} replaced, "
        f"of them Jupyter: {', '.join(sorted(jupyter)) or 'none'} ({resolution.seconds:.1f} s)"
    ]
    lines += [f"  add      {n} {v}{'   <- Jupyter' if n in jupyter else ''}" for n, v in sorted(added.items())]
    lines += [
        f"  replace  {n} {old} -> {new}{'   <- Jupyter' if n in jupyter else ''}"
        for n, (old, new) in sorted(replaced.items())
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path, nargs="?", default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--host", choices=sorted(HOSTS), default="colab")
    parser.add_argument("--extra", action="append", default=[], help="an extra to install too (repeatable)")
    args = parser.parse_args(argv)
    uv = find_uv()
    if uv is None:
        print("uv is not installed (pip install uv, or the project's test extra)", file=sys.stderr)
        return 2
    host = HOSTS[args.host]
    resolution = compile_requirements(args.project, args.extra, host, uv)
    if resolution.status:
        print(resolution.errors, file=sys.stderr)
        return 2
    print(report(host, args.extra, resolution))
    _, replaced = changes(host, resolution)
    return 1 if any(JUPYTER.match(n) for n in replaced) else 0


if __name__ == "__main__":
    sys.exit(main())
