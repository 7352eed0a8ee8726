"""Run the course end to end: find (or download) the data, verify it, execute the notebooks.

This is what the README's main command (``make course``, i.e. ``cxr course``) does.
Notebooks are executed in order with nbclient (nbconvert's executor) into
``build/executed/``; the first failing cell stops the run and is named. After chapters 03 and 04
the model card of their run is written beside its model (``cxr card``). Each executed
notebook is rendered to ``build/html/``, and ``build/summary.md`` / ``build/summary.json``
record the time each notebook took and the results table of notebook 05.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import cxr_utils
from cxr_utils.dataset import DatasetIndex, DatasetLayoutError, index_dataset
from cxr_utils.runs import run_name

from . import build_dir
from .fetch import download_dataset
from .model_card import CARDS
from .verify import verify_dataset

__all__ = ["CourseError", "NotebookRun", "list_notebooks", "execute_notebook", "run_course"]

#: The run folder whose results table the summary quotes (``_fast`` appended in fast mode).
RESULTS_RUN = "05_error_analysis"

#: Where Kaggle mounts the datasets attached to a notebook, read-only (the course's is
#: ``chest-xray-pneumonia/chest_xray``): searched when ``data/`` holds no dataset, before downloading.
KAGGLE_INPUT = Path("/kaggle/input")
_KAGGLE_DATASET = "chest-xray-pneumonia"


class CourseError(RuntimeError):
    """The course cannot run: no data, or a notebook failed."""


@dataclass(frozen=True)
class NotebookRun:
    """One executed notebook: where its executed copy is and how long it took (seconds)."""

    notebook: Path
    executed: Path
    seconds: float


def _resolve_dataset(data_dir: str | os.PathLike | None = None, *, download: bool = True) -> DatasetIndex:
    """The index (with header reads) of the dataset in ``data_dir`` (default :func:`cxr_utils.data_dir`),
    downloaded there if needed: the folder is walked once, and the index is what verification reads.

    With ``download``, the dataset is downloaded when the default ``data/`` folder holds none
    and no copy is mounted under :data:`KAGGLE_INPUT` (a Kaggle notebook with the dataset
    attached: that copy is used as it is, read-only). A folder named explicitly (argument or
    ``$CXR_DATA_DIR``) is never downloaded into: a mistyped path should fail, not start a
    1.2 GB download. Raises :class:`CourseError` if no dataset is found and none may be downloaded.
    """
    explicit = data_dir is not None or bool(os.environ.get("CXR_DATA_DIR", "").strip())
    folder = Path(data_dir) if data_dir is not None else cxr_utils.data_dir()
    try:
        return index_dataset(folder, read_headers=True)
    except (FileNotFoundError, DatasetLayoutError) as error:
        if explicit:
            raise CourseError(
                f"CXR_DATA_DIR / --data names {folder}, which holds no usable dataset: {error}"
            ) from error
        mounted = _kaggle_copy()
        if mounted is not None:
            print(
                f"No dataset in {folder}: using the copy mounted at {mounted.root} "
                "(read-only; nothing is written there)."
            )
            return mounted
        if not download:
            raise CourseError(
                f"no dataset in {folder} and downloading is switched off. Point CXR_DATA_DIR at a copy "
                "(see data/README.md) or run `cxr download`."
            ) from error
    print(
        f"No dataset in {folder}: downloading ChestXRay2017.zip (about 1.2 GB) from Mendeley Data.\n"
        "To use a copy you already have, set CXR_DATA_DIR; to never download, pass --no-download "
        "(or set CXR_NO_DOWNLOAD=1).",
        flush=True,
    )
    report = download_dataset(folder)
    print(report, flush=True)
    if not report.matches_manifest:  # a download is the official dataset, exactly, or it is not used
        raise CourseError(
            f"the downloaded dataset failed verification (see the report above): {len(report.missing)} missing, "
            f"{len(report.extra)} extra, {len(report.altered)} altered, {len(report.misplaced)} misplaced files, "
            f"{len(report.problems)} unreadable images. Remove {report.root} and run the course again."
        )
    return index_dataset(report.root, read_headers=True)


def _kaggle_copy() -> DatasetIndex | None:
    """The index of a copy under :data:`KAGGLE_INPUT` (the course's dataset searched first), or ``None``."""
    try:
        attached = sorted(p for p in KAGGLE_INPUT.iterdir() if p.is_dir())
    except OSError:  # not on Kaggle
        return None
    for folder in sorted(attached, key=lambda p: p.name != _KAGGLE_DATASET):
        try:
            return index_dataset(folder, read_headers=True)
        except (OSError, DatasetLayoutError):
            continue
    return None


def list_notebooks(notebooks_dir: str | os.PathLike | None = None) -> list[Path]:
    """The course's numbered notebooks (``NN_*.ipynb``), in order."""
    folder = Path(notebooks_dir) if notebooks_dir is not None else cxr_utils.project_root() / "notebooks"
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.is_file())


def execute_notebook(
    notebook: str | os.PathLike,
    executed: str | os.PathLike,
    *,
    parameters: dict | None = None,
    cell_timeout: int | None = None,
) -> float:
    """Execute every cell of a notebook and write the executed copy; return the wall time in seconds.

    The kernel runs in the notebook's folder and inherits this process's environment
    (``CXR_DATA_DIR``, ``CXR_FAST`` ...). The executed copy is written even when a cell fails,
    so that the error can be read in it. ``cell_timeout`` (seconds) stops a cell that runs
    longer; by default none does (a chapter trains several times longer on a busy machine).
    ``parameters`` (e.g. ``{"SEED": 1}``) are assigned in a cell tagged ``injected-parameters``
    after the cell tagged ``parameters``, as papermill does. Raises :class:`CourseError` naming
    the notebook, the failing cell's number and its error.
    """
    notebook, executed = Path(notebook), Path(executed)
    nb = nbformat.read(notebook, as_version=4)
    if parameters:
        tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
        if not tagged:
            raise CourseError(f"{notebook.name} has no cell tagged 'parameters' to inject {sorted(parameters)} after")
        injected = nbformat.v4.new_code_cell("\n".join(f"{name} = {value!r}" for name, value in parameters.items()))
        injected.metadata["tags"] = ["injected-parameters"]
        nb.cells.insert(tagged[0] + 1, injected)
    # IPC (Unix sockets in a temporary folder) rather than TCP on localhost: ipykernel warns,
    # for every notebook, that a TCP kernel is not encrypted.
    sockets = tempfile.TemporaryDirectory(prefix="cxr-kernel-")
    kernel = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets.name) / "kernel"))
    client = NotebookClient(
        nb,
        km=kernel,
        timeout=cell_timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
        coalesce_streams=True,  # one output per stream, with carriage returns applied: a bar keeps its last state
    )
    executed.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        client.execute(cleanup_kc=True)  # shut the kernel down here (this manager is ours, not the client's)
    except CellExecutionError as error:
        failed = next(
            (
                i
                for i, cell in enumerate(nb.cells)
                if any(o.get("output_type") == "error" for o in cell.get("outputs", []))
            ),
            None,
        )
        summary = f"{error.ename}: {error.evalue}" if getattr(error, "ename", None) else str(error).splitlines()[-1]
        raise CourseError(
            f"{notebook.name}: cell {failed} failed with {summary} (executed copy: {executed})"
        ) from error
    finally:
        nbformat.write(nb, executed)
        sockets.cleanup()
    return time.perf_counter() - start


def run_course(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    fast: bool | None = None,
) -> list[NotebookRun]:
    """Find or download the data, verify it, and execute every notebook in order.

    ``data_dir`` and ``download`` are as :func:`_resolve_dataset`'s; ``fast`` sets fast mode
    (``CXR_FAST=1``) for the notebooks (default: the current ``$CXR_FAST``). The executed copies
    go to ``<project>/build/executed``. Raises :class:`CourseError` for no data or a failed
    notebook (the run stops there).
    """
    dataset = _resolve_dataset(data_dir, download=download)
    report = verify_dataset(dataset)  # reads the index: no file is read twice
    root = dataset.root
    print(report, flush=True)
    print(f"The course runs on {root}: {report.verdict}", flush=True)
    if not report.counts_official:
        print(
            "Note: this copy does not hold the official number of images (a subset?). The notebooks "
            "run on it, but their numbers will differ from a run on the full dataset.",
            flush=True,
        )
    os.environ["CXR_DATA_DIR"] = str(root)
    if not download:
        os.environ["CXR_NO_DOWNLOAD"] = "1"  # the notebooks download no weights either
    if fast is not None:
        os.environ["CXR_FAST"] = "1" if fast else "0"
    out = build_dir() / "executed"
    html_dir = out.parent / "html"
    notebooks = list_notebooks()
    if not notebooks:
        print("No notebooks to execute yet (notebooks/NN_*.ipynb).", flush=True)
    runs = []
    for number, notebook in enumerate(notebooks, start=1):
        print(f"[{number}/{len(notebooks)}] executing {notebook.name} ...", flush=True)
        seconds = execute_notebook(notebook, out / notebook.name)
        runs.append(NotebookRun(notebook, out / notebook.name, seconds))
        html = _render_html(out / notebook.name, html_dir)
        print(
            f"[{number}/{len(notebooks)}] {notebook.name} done in {seconds:.0f} s -> {out / notebook.name}, {html}",
            flush=True,
        )
        if notebook.stem in CARDS:  # its model card, in a process of its own (Keras loads the saved model)
            card = [sys.executable, "-m", "cxr_course.cli", "card", run_name(notebook.stem, fast=cxr_utils.fast_mode())]
            subprocess.run(card, check=True)
    summary_md, _ = _write_summary(runs, out.parent, data_dir=root, fast=cxr_utils.fast_mode(), verdict=report.verdict)
    print(f"Summary: {summary_md}", flush=True)
    return runs


def _render_html(executed: str | os.PathLike, html_dir: str | os.PathLike) -> Path:
    """Render an executed notebook to ``<html_dir>/<name>.html`` with nbconvert (figures embedded)."""
    from nbconvert import HTMLExporter

    executed, html_dir = Path(executed), Path(html_dir)
    html_dir.mkdir(parents=True, exist_ok=True)
    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    target = html_dir / executed.with_suffix(".html").name
    target.write_text(body, encoding="utf-8")
    return target


def _write_summary(
    runs: list[NotebookRun],
    build_dir: str | os.PathLike,
    *,
    data_dir: str | os.PathLike,
    fast: bool,
    verdict: str | None = None,
    runs_dir: str | os.PathLike | None = None,
) -> tuple[Path, Path]:
    """Write ``summary.md`` and ``summary.json`` into ``build_dir``; return both paths.

    They hold the data folder, the mode, each notebook's wall time, how often the test ledger
    says a test split was scored, for how many configurations, the official test split apart
    (:func:`cxr_utils.records.scoring_counts`), and the results table notebook 05 saved in
    ``<runs>/05_error_analysis[_fast]/results.{md,json}``, copied unchanged (or a line saying
    it is missing).
    """
    from cxr_utils.records import read_ledger, scoring_counts, summarise, write_json

    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    runs_root = Path(runs_dir) if runs_dir is not None else cxr_utils.runs_dir()
    results_dir = runs_root / run_name(RESULTS_RUN, fast=fast)
    results_md, results_json = results_dir / "results.md", results_dir / "results.json"
    mode = "fast (CXR_FAST=1)" if fast else "full"
    lines = [
        "# Course run summary",
        "",
        f"- data: `{data_dir}`" + (f" ({verdict})" if verdict else ""),
        f"- mode: {mode}",
        f"- notebooks: {len(runs)}, {sum(r.seconds for r in runs) / 60:.1f} min in all",
        "",
        "| notebook | minutes | executed copy |",
        "|---|---|---|",
    ]
    lines += [f"| {r.notebook.name} | {r.seconds / 60:.1f} | `{r.executed}` |" for r in runs]
    lines += ["", "## Results on the test split of this copy (from notebook 05)", ""]
    if results_md.exists():
        lines.append(results_md.read_text(encoding="utf-8").rstrip("\n"))
        lines += [
            "",
            "Brackets: 95% bootstrap intervals. Every threshold was chosen on validation, by the rule its row names "
            "(`threshold rule`): compare models only in rows of one rule.",
        ]
    else:
        lines.append(f"No results table: {results_md} is missing (notebook 05 did not run).")
    ledger = read_ledger(runs_root)
    lines += ["", "## The test ledger", "", summarise(ledger) + f" (`cxr ledger`, `{runs_root / 'test_ledger.csv'}`)"]
    markdown = build_dir / "summary.md"
    markdown.write_text("\n".join(lines) + "\n", encoding="utf-8")
    content = {
        "data_dir": str(data_dir),
        "data_verdict": verdict,
        "fast": fast,
        "notebooks": [{"notebook": r.notebook.name, "seconds": r.seconds, "executed": str(r.executed)} for r in runs],
        "results": json.loads(results_json.read_text(encoding="utf-8")) if results_json.exists() else None,
        "test_ledger": {
            "scorings": len(ledger),
            "configurations": int(ledger["config_hash"].nunique()),
            # official: the official test split's paths exactly; other: other test images; unknown: older rows
            "by_test_images": scoring_counts(ledger).drop("all").to_dict(orient="index"),
        },
        "software": cxr_utils.software_versions(),
    }
    return markdown, write_json(build_dir / "summary.json", content)
