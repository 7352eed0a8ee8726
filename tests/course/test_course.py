"""The course runner: data resolution and notebook execution."""

import json

import nbformat
import pytest

from cxr_course import runner as course
from cxr_course.runner import CourseError, _resolve_dataset, execute_notebook, list_notebooks

from helpers import make_dataset

FILES = {
    "train/NORMAL/IM-0001-0001.jpeg": None,
    "train/PNEUMONIA/person1_virus_6.jpeg": None,
    "test/NORMAL/IM-0003-0001.jpeg": None,
    "test/PNEUMONIA/person1_bacteria_1.jpeg": None,
}


def test_explicit_folder_without_data_fails_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "download_dataset", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(CourseError, match="holds no usable dataset"):
        _resolve_dataset(tmp_path)


def test_default_folder_without_data_and_no_download(tmp_path, monkeypatch):
    monkeypatch.delenv("CXR_DATA_DIR", raising=False)
    monkeypatch.setattr(course, "KAGGLE_INPUT", tmp_path / "not on Kaggle")
    monkeypatch.setattr(course.cxr_utils, "data_dir", lambda: tmp_path)
    with pytest.raises(CourseError, match="downloading is switched off"):
        _resolve_dataset(download=False)


def test_default_folder_without_data_downloads(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CXR_DATA_DIR", raising=False)
    monkeypatch.setattr(course, "KAGGLE_INPUT", tmp_path / "not on Kaggle")
    monkeypatch.setattr(course.cxr_utils, "data_dir", lambda: tmp_path)
    calls = []

    def fake_download(folder):
        calls.append(folder)
        make_dataset(folder / "chest_xray", FILES)
        from cxr_course.verify import verify_dataset
        from cxr_utils.dataset import index_dataset

        manifest = index_dataset(folder / "chest_xray", sha256=True, progress=False).table[["path", "sha256", "bytes"]]
        return verify_dataset(folder / "chest_xray", manifest, progress=False)  # as the real download does

    monkeypatch.setattr(course, "download_dataset", fake_download)
    assert _resolve_dataset().root == tmp_path / "chest_xray"
    assert calls == [tmp_path]
    assert "downloading ChestXRay2017.zip" in capsys.readouterr().out


def test_a_copy_kaggle_mounted_is_found_before_any_download(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CXR_DATA_DIR", raising=False)
    data = tmp_path / "project" / "data"
    make_dataset(data, {"README.md": b"where the dataset goes"})  # a clone's data/: no dataset
    monkeypatch.setattr(course.cxr_utils, "data_dir", lambda: data)
    monkeypatch.setattr(course, "download_dataset", lambda *a, **k: pytest.fail("must not download"))
    kaggle = tmp_path / "kaggle" / "input"  # a stand-in for /kaggle/input
    make_dataset(kaggle / "another-dataset" / "train" / "images", {"0001.png": None})  # attached too, not ours
    mounted = kaggle / "chest-xray-pneumonia" / "chest_xray"
    make_dataset(mounted, FILES | {f"chest_xray/{k}": None for k in FILES} | {"__MACOSX/._train": b"\0"})
    monkeypatch.setattr(course, "KAGGLE_INPUT", kaggle)
    assert _resolve_dataset().root == mounted
    assert f"using the copy mounted at {mounted}" in capsys.readouterr().out
    assert _resolve_dataset(download=False).root == mounted
    monkeypatch.setattr(course, "KAGGLE_INPUT", tmp_path / "not on Kaggle")
    with pytest.raises(CourseError, match="downloading is switched off"):
        _resolve_dataset(download=False)


def test_existing_copy_is_used_and_walked_once(tmp_path, monkeypatch):
    """The course finds, indexes and verifies the copy with one walk of its folders."""
    from cxr_course.verify import verify_dataset
    from cxr_utils import dataset

    make_dataset(tmp_path / "chest_xray", FILES)
    walks = []
    walk = dataset.find_dataset
    monkeypatch.setattr(dataset, "find_dataset", lambda path: walks.append(path) or walk(path))
    index = _resolve_dataset(tmp_path)
    report = verify_dataset(index, progress=False)  # what run_course does next
    assert index.root == tmp_path / "chest_xray" and len(walks) == 1
    assert sum(report.counts["found"]) == len(FILES)


def _notebook(tmp_path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(nb, path)
    return path


def test_execute_notebook_writes_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_DATA_DIR", "/some/where")
    path = _notebook(tmp_path, "import os\nprint(os.environ['CXR_DATA_DIR'])", "6 * 7")
    out = tmp_path / "build" / "01_demo.ipynb"
    seconds = execute_notebook(path, out)
    executed = nbformat.read(out, as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "/some/where\n"
    assert executed.cells[1].outputs[0]["data"]["text/plain"] == "42"
    assert seconds > 0
    assert list_notebooks(tmp_path) == [path]


def test_failing_cell_is_named(tmp_path):
    path = _notebook(tmp_path, "x = 1", "raise ValueError('bad cell')")
    out = tmp_path / "build" / "01_demo.ipynb"
    with pytest.raises(CourseError, match=r"01_demo.ipynb: cell 1 failed with ValueError: bad cell"):
        execute_notebook(path, out)
    assert out.exists()  # the executed copy keeps the traceback


def test_html_and_summary_quote_the_results_table(tmp_path):
    from cxr_course.runner import NotebookRun, _render_html, _write_summary
    from cxr_utils.records import write_json

    path = _notebook(tmp_path, "print('hello')")
    executed = tmp_path / "build" / "executed" / "01_demo.ipynb"
    seconds = execute_notebook(path, executed)
    html = _render_html(executed, tmp_path / "build" / "html")
    assert html.name == "01_demo.html" and "hello" in html.read_text()
    runs_dir = tmp_path / "runs"
    results = runs_dir / "05_error_analysis_fast"
    results.mkdir(parents=True)
    (results / "results.md").write_text("| model | accuracy |\n|---|---|\n| A | 0.912 [0.889, 0.934] |\n")
    write_json(results / "results.json", {"results": {"A": {"accuracy": 0.912}}})
    runs = [NotebookRun(path, executed, seconds)]
    markdown, summary = _write_summary(runs, tmp_path / "build", data_dir="/data", fast=True, runs_dir=runs_dir)
    text = markdown.read_text()
    assert "| 01_demo.ipynb |" in text and "| A | 0.912 [0.889, 0.934] |" in text and "fast" in text
    assert "by the rule its row names (`threshold rule`): compare models only in rows of one rule" in text
    content = json.loads(summary.read_text())
    assert content["results"]["results"]["A"]["accuracy"] == 0.912 and content["notebooks"][0]["seconds"] == seconds
    markdown, _ = _write_summary(runs, tmp_path / "build", data_dir="/data", fast=False, runs_dir=runs_dir)
    assert "05_error_analysis/results.md is missing" in markdown.read_text()


@pytest.mark.parametrize("value", ["1", "on", "TRUE", "Yes"])
def test_cxr_course_never_downloads_when_the_flag_is_on(tmp_path, monkeypatch, capsys, value):
    """`CXR_NO_DOWNLOAD=on cxr course` once started the 1.2 GB download: the CLI parsed the flag itself."""
    from cxr_course import cli

    monkeypatch.delenv("CXR_DATA_DIR", raising=False)
    monkeypatch.setenv("CXR_NO_DOWNLOAD", value)
    monkeypatch.setattr(course.cxr_utils, "data_dir", lambda: tmp_path)  # an empty default data/ folder
    monkeypatch.setattr(course, "download_dataset", lambda *a, **k: pytest.fail("must not download"))
    assert cli.main(["course"]) == 1
    assert "downloading is switched off" in capsys.readouterr().err
