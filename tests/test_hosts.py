"""Every chapter's first cell on Colab and Kaggle, simulated here (issue 35).

The fast checks read the cell: which host it recognises from which variables, and that on a local
machine it prints nothing. The slow ones execute chapters 01 and 03 in fast mode as each host would:

- the course as the host clones it: a snapshot of this working tree as a bare repository, the cell's
  `git clone` of the course's URL redirected to it (git's url.<base>.insteadOf, set in the environment);
- the host's Python: a venv with Colab's Jupyter versions (ipykernel 6.17.1, ipython 7.34.0,
  ipywidgets 7.7.1, jupyter-client 7.4.9, from tests/data/hosts/) over this venv's packages;
- the host's folders and variables: the kernel starts in a writable working folder (/kaggle/working,
  /content); Kaggle's dataset is mounted read-only at ../input/datasets/<owner>/<slug> in its zip's
  layout (the nested copy and __MACOSX/ included), by a read-only bind mount in an unprivileged
  namespace (`unshare -rm`: chmod does not stop root); Kaggle sets COLAB_RELEASE_TAG as well.

Each run checks that the chapter ran without an error, that the cell named its host, the clone and the
data, that the package's folders went into the clone, and that the `pip install` in the cell replaced
none of the host's packages. The simulations need uv and PyPI (Colab's Jupyter versions, the build of
the package); without them they skip, unless CXR_REQUIRE_PYPI=1.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import hosted
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = {p.name[:2]: p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
CELL = next(c for c in nbformat.read(CHAPTERS["01"], as_version=4).cells if c.cell_type == "code").source
URL = re.search(r'^COURSE_REPOSITORY = "([^"]+)"', CELL, re.M).group(1)
# Colab's kernel and the front-end packages it pins (the host's versions come from the freeze)
JUPYTER = ["ipykernel", "ipython", "ipywidgets", "jupyter-client", "jupyter-core", "traitlets", "tornado", "pyzmq"]
KAGGLE_ENV = {
    "KAGGLE_KERNEL_RUN_TYPE": "Interactive",
    "KAGGLE_URL_BASE": "https://www.kaggle.com",
    "KAGGLE_DATA_PROXY_URL": "http://127.0.0.1:9",
    "COLAB_RELEASE_TAG": "release-colab-external_20260514-060047_RC00",  # Kaggle's image is Colab's
}
COLAB_ENV = {"COLAB_RELEASE_TAG": "release-colab-external_20260819-060047_RC00", "COLAB_GPU": "0"}
HOST_VARIABLES = {*KAGGLE_ENV, *COLAB_ENV}


def _host_of(environ):
    """The cell's own HOST line, evaluated with ``environ`` as os.environ."""
    line = next(line for line in CELL.splitlines() if line.startswith("HOST = "))
    namespace = {"os": type("os", (), {"environ": environ})}
    exec(line, namespace)
    return namespace["HOST"]


def test_the_cell_tells_kaggle_colab_and_a_local_machine_apart():
    assert _host_of(KAGGLE_ENV) == "Kaggle"  # though COLAB_RELEASE_TAG is set there too
    assert _host_of(COLAB_ENV) == "Colab"
    assert _host_of({"HOME": "/home/me", "PATH": "/usr/bin"}) == ""


def test_on_a_local_machine_the_cell_does_nothing_visible(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in HOST_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", CELL], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done
    assert list(tmp_path.iterdir()) == []  # nothing cloned, nothing written


def _run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{command[:4]}: {done.stderr[-2000:]}"
    return done


def _skip_unless_pypi(reason):
    if os.environ.get("CXR_REQUIRE_PYPI"):
        pytest.fail(f"{reason}, and CXR_REQUIRE_PYPI is set")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """This working tree (tracked and new files, as they are now) as the bare repository the host clones."""
    src = tmp_path_factory.mktemp("origin") / "src"
    files = _run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    git = ["git", "-c", "user.name=sim", "-c", "user.email=sim@localhost", "-c", "init.defaultBranch=main"]
    _run([*git, "init", "-q"], cwd=src)
    _run([*git, "add", "-A"], cwd=src)
    _run([*git, "commit", "-q", "-m", "the course as the host clones it"], cwd=src)
    _run(["git", "clone", "-q", "--bare", str(src), str(src.parent / "origin.git")])
    return src.parent / "origin.git"


@pytest.fixture(scope="module")
def host_python(tmp_path_factory):
    """A venv with Colab's Jupyter versions on top of this venv's packages (TensorFlow and the rest)."""
    uv = hosted.find_uv()
    if uv is None:
        _skip_unless_pypi("uv is not installed (the test extra installs it)")
    venv = tmp_path_factory.mktemp("host") / "venv"
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([uv, "pip", "install", "-q", "--python", str(python), "pip"])  # the cell runs `python -m pip`
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    Path(site, "zz_course_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    colab = hosted.HOSTS["colab"].packages()
    pins = venv.parent / "colab-jupyter.txt"
    pins.write_text("".join(f"{name}=={colab[name]}\n" for name in JUPYTER))
    done = subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), "-r", str(pins)], capture_output=True, text=True
    )
    if done.returncode and hosted.unreachable(done.stderr):
        _skip_unless_pypi(f"PyPI cannot be reached: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    return python, site


def _freeze(python, site):
    return set(_run([str(python), "-m", "pip", "freeze", "--path", site]).stdout.splitlines())


def _kaggle_input(folder, originals):
    """The dataset as Kaggle mounts it: datasets/<owner>/<slug>/chest_xray/, its nested copy and __MACOSX/."""
    slug = folder / "datasets" / "paultimothymooney" / "chest-xray-pneumonia"
    for copy in (slug / "chest_xray", slug / "chest_xray" / "chest_xray"):
        shutil.copytree(originals, copy, copy_function=os.symlink, dirs_exist_ok=True)
    (slug / "__MACOSX" / "chest_xray").mkdir(parents=True)
    (slug / "__MACOSX" / "chest_xray" / "._train").write_bytes(b"\0")
    return slug


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, originals):
    """Per host: its working folder (shared by the chapters run there, as in one session) and variables."""
    base = tmp_path_factory.mktemp("hosts")
    kaggle_input = _kaggle_input(base / "kaggle-input", originals)
    (base / "kaggle" / "working").mkdir(parents=True)
    (base / "kaggle" / "input").mkdir()
    (base / "content").mkdir()
    return {
        "kaggle": (base / "kaggle" / "working", KAGGLE_ENV, base / "kaggle-input", kaggle_input),
        "colab": (base / "content", {**COLAB_ENV, "CXR_DATA_DIR": str(originals)}, None, Path(originals)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("chapter", ["01", "03"])
@pytest.mark.parametrize("host", ["kaggle", "colab"])
def test_a_chapter_runs_on_a_simulated_host(host, chapter, hosts, origin, host_python):
    work, variables, mount_source, data = hosts[host]
    python, site = host_python
    if host == "kaggle" and shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is needed to mount Kaggle's input read-only")
    notebook = shutil.copy(CHAPTERS[chapter], work)
    before = _freeze(python, site)
    drop = {"CXR_DATA_DIR", "CXR_CACHE_DIR", "MPLBACKEND", "VIRTUAL_ENV", "PYTHONPATH", *HOST_VARIABLES}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(variables, CXR_FAST="1", CXR_NO_DOWNLOAD="1", PATH=f"{python.parent}:{os.environ['PATH']}")
    env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0=f"url.file://{origin}.insteadOf", GIT_CONFIG_VALUE_0=URL)
    execute = [str(python), "-m", "nbconvert", "--to", "notebook", "--execute", "--inplace"]
    execute += ["--ExecutePreprocessor.timeout=900", str(notebook)]
    if mount_source is not None:  # Kaggle: ../input read-only; the script refuses to run if a write succeeds
        mount = (
            'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" || exit 3; '
            'touch "$2/written" 2>/dev/null && exit 4; cd "$3" && shift 3 && exec "$@"'
        )
        readonly = [str(mount_source), str(work.parent / "input"), str(work)]
        execute = ["unshare", "-rm", "sh", "-c", mount, "sh", *readonly, *execute]
    done = subprocess.run(execute, capture_output=True, text=True, env=env, cwd=work, timeout=1800)
    if done.returncode in (3, 4):
        pytest.skip(f"no read-only mount here (unshare -rm failed: {done.stderr.strip()[-300:]})")
    assert done.returncode == 0, done.stderr[-3000:]

    nb = nbformat.read(notebook, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    said = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    course = work / "cxr-course"
    expected_data = "../input/datasets/paultimothymooney/chest-xray-pneumonia" if host == "kaggle" else str(data)
    assert said.startswith(f"{host.capitalize()}: the course in {course}, the data in "), said
    assert expected_data.removeprefix("..") in said and "no GPU" in said, said
    assert (course / "cxr_utils.egg-info").is_dir()  # pip installed the clone, editable
    if chapter == "03":  # the kernel imported the clone: the run went into its runs/
        assert any((course / "runs").glob("03_cnn_from_scratch_fast*"))
    after = _freeze(python, site)
    changed = sorted(line for line in before ^ after if "cxr" not in line.lower() and not line.startswith(("#", "-e ")))
    assert not changed, f"the cell's pip install changed the host's packages: {changed}"
