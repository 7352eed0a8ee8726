"""The course as a website: the executed notebooks built into HTML with Jupyter Book 1.x (Sphinx).

``make site`` runs ``python -m cxr_course.site``. Nothing is executed here: the pages
show the outputs of the executed copies in ``build/executed/``, which ``make course`` (the
full course), ``make fast`` (fast mode) or the test suite (fast mode) write. When a chapter has
no executed copy, or its copy was made from other cells than the committed notebook's, the
build stops and names the commands that make one: it never executes a chapter itself, and
the landing page says how the copies were made (see :func:`execution_note`).

The build stages a Jupyter Book in ``build/site-src/``: the configuration and landing page of
``site/``, the chapters' executed copies (worked solutions collapsed, as in JupyterLab), and
``data/README.md`` as the page on the dataset and its licence; then Sphinx writes the HTML,
with navigation between the chapters and a search page, into ``build/site/``. The landing
page's chapter table is the README's, with each notebook's name linked to its page.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat

from cxr_utils import project_root

from . import build_dir
from .runner import list_notebooks

__all__ = ["SiteError", "stale_copies", "chapter_table", "execution_note", "stage_site", "main"]

#: What to run to get executed copies of every chapter, as the errors say it.
_MAKE_COPIES = "run `make course` (the full course) or `make fast` (every chapter in fast mode, a few minutes) first"
_WIDGET = "application/vnd.jupyter.widget-view+json"


class SiteError(RuntimeError):
    """The site cannot be built: an executed copy is missing or stale, or the build failed."""


def _cells(nb) -> list[tuple[str, str]]:
    """(type, source) of a notebook's cells, without the cell ``execute_notebook`` injects."""
    return [
        (c.cell_type, c.source.strip())
        for c in nb.cells
        if "injected-parameters" not in c.get("metadata", {}).get("tags", [])
    ]


def stale_copies(notebooks: list[Path], executed_dir: str | os.PathLike) -> list[str]:
    """Names of the chapters whose executed copy's cell types or sources differ from the committed notebook's.

    The cell injected with parameters is ignored, outputs are not compared. Raises
    :class:`SiteError` if a chapter has no executed copy in ``executed_dir``.
    """
    executed_dir = Path(executed_dir)
    missing = [p.name for p in notebooks if not (executed_dir / p.name).is_file()]
    if missing:
        raise SiteError(f"no executed copy of {', '.join(missing)} in {executed_dir}: {_MAKE_COPIES}.")
    return [
        p.name
        for p in notebooks
        if _cells(nbformat.read(p, as_version=4)) != _cells(nbformat.read(executed_dir / p.name, as_version=4))
    ]


def chapter_table(readme: str, chapters: list[str]) -> str:
    """The README's table of chapters (``## The chapters``), each notebook's name linked to its page.

    ``chapters`` are the notebooks' file names; rows naming another notebook are dropped.
    Raises :class:`SiteError` if the README's Markdown has no such table.
    """
    lines = readme.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "## The chapters")
    except StopIteration:
        raise SiteError("README.md has no '## The chapters' section to take the chapter table from") from None
    table = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    if len(table) < 3:
        raise SiteError("README.md's '## The chapters' section holds no table")
    rows = table[:2]
    for row in table[2:]:
        name = row.split("|")[1].strip().strip("`")
        if name in chapters:
            rows.append(row.replace(f"`{name}`", f"[{Path(name).stem}]({name})", 1))
    return "\n".join(rows)


def execution_note(executed_dir: str | os.PathLike) -> str:
    """A MyST admonition saying how the executed copies were made, for the landing page.

    ``build/summary.json`` (written by ``make course`` and ``make fast`` after the last
    chapter) tells the mode when no copy is newer than it; otherwise the note says which
    commands write the copies.
    """
    executed_dir = Path(executed_dir)
    summary = executed_dir.parent / "summary.json"
    copies = list(executed_dir.glob("[0-9][0-9]_*.ipynb"))
    if summary.is_file() and all(c.stat().st_mtime <= summary.stat().st_mtime for c in copies):
        info = json.loads(summary.read_text(encoding="utf-8"))
        if info.get("fast"):
            return (
                ":::{warning}\nThese pages were executed in fast mode (`make fast`, `CXR_FAST=1`): few images "
                "and one or two epochs, so their numbers are not the course's results. `make course` "
                "followed by `make site` publishes the full course.\n:::"
            )
        verdict = info.get("data_verdict") or "a copy of the dataset"
        return f":::{{note}}\nThese pages were executed by `make course` (the full course) on {verdict}.\n:::"
    return (
        ":::{note}\nThese pages show the executed copies in `build/executed/`, written by `make course` "
        "(the full course), or by `make fast` or the test suite (fast mode: few images, one or two epochs, "
        "numbers that are not the course's results).\n:::"
    )


def _for_the_site(nb):
    """An executed notebook as the site shows it: hidden sources collapsed, no widget outputs.

    Cells JupyterLab shows collapsed (``metadata.jupyter.source_hidden``, the worked solutions)
    get Jupyter Book's ``hide-input`` tag (``outputs_hidden``: ``hide-output``). Jupyter widget
    outputs (progress bars of older copies) are dropped: a static page would need a CDN to draw
    them, and their text fallback shows the bar's first state.
    """
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        hidden = cell.get("metadata", {}).get("jupyter", {})
        tags = list(cell.get("metadata", {}).get("tags", []))
        for flag, tag in (("source_hidden", "hide-input"), ("outputs_hidden", "hide-output")):
            if hidden.get(flag) and tag not in tags:
                tags.append(tag)
        if tags:
            cell.metadata["tags"] = tags
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if _WIDGET not in o.get("data", {})]
    return nb


def stage_site(
    executed_dir: str | os.PathLike,
    stage_dir: str | os.PathLike,
    *,
    notebooks: list[Path] | None = None,
) -> Path:
    """Lay out the book's sources in ``stage_dir`` (emptied first) and return it.

    It holds ``_config.yml`` and ``index.md`` from ``<project>/site``,
    the landing page's placeholders ``{{ execution_note }}`` and ``{{ chapter_table }}`` filled
    in, each chapter's executed copy (see :func:`_for_the_site`), ``data.md`` (the project's
    ``data/README.md``) and ``_toc.yml``: the landing page, the chapters in order, the data page.
    """
    root = project_root()
    notebooks = list_notebooks() if notebooks is None else notebooks
    executed_dir, stage_dir = Path(executed_dir), Path(stage_dir)
    site_dir = root / "site"
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    shutil.copy(site_dir / "_config.yml", stage_dir / "_config.yml")
    index = (site_dir / "index.md").read_text(encoding="utf-8")
    names = [p.name for p in notebooks]
    index = index.replace("{{ execution_note }}", execution_note(executed_dir))
    index = index.replace("{{ chapter_table }}", chapter_table((root / "README.md").read_text("utf-8"), names))
    (stage_dir / "index.md").write_text(index, encoding="utf-8")
    shutil.copy(root / "data" / "README.md", stage_dir / "data.md")
    for name in names:
        nbformat.write(_for_the_site(nbformat.read(executed_dir / name, as_version=4)), stage_dir / name)
    toc = ["format: jb-book", "root: index", "chapters:"]
    toc += [f"  - file: {Path(name).stem}" for name in names] + ["  - file: data"]
    (stage_dir / "_toc.yml").write_text("\n".join(toc) + "\n", encoding="utf-8")
    return stage_dir


def _build_site(
    executed_dir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    allow_stale: bool = False,
    quiet: bool = True,
) -> Path:
    """Build the website from the executed notebooks, without executing them; return its ``index.html``.

    ``executed_dir`` defaults to ``<build>/executed``; ``out_dir`` (emptied first) to
    ``<build>/site``, its sources staged in ``<out_dir>-src``. ``allow_stale`` builds even when a
    copy's cells differ from the committed notebook's, with a warning; ``quiet`` hides Sphinx's
    progress lines. Raises :class:`SiteError` if Jupyter Book is not installed, a chapter has no
    executed copy, a copy is stale (unless ``allow_stale``) or Sphinx fails.
    """
    try:
        from jupyter_book.sphinx import build_sphinx
    except ImportError as error:
        raise SiteError(
            "the site needs Jupyter Book 1.x: pip install -e '.[site]' (the Makefile's environment has it)"
        ) from error
    executed_dir = Path(executed_dir) if executed_dir is not None else build_dir() / "executed"
    out_dir = Path(out_dir) if out_dir is not None else build_dir() / "site"
    notebooks = list_notebooks()
    if not notebooks:
        raise SiteError("no notebooks (notebooks/NN_*.ipynb) to publish")
    stale = stale_copies(notebooks, executed_dir)
    if stale:
        message = f"the executed copies of {', '.join(stale)} in {executed_dir} were made from other cells than the "
        message += "committed notebooks"
        if not allow_stale:
            raise SiteError(f"{message}: {_MAKE_COPIES} (or pass --allow-stale to publish them as they are).")
        print(f"Warning: {message}; publishing them as they are.", file=sys.stderr, flush=True)
    stage = stage_site(executed_dir, out_dir.with_name(out_dir.name + "-src"), notebooks=notebooks)
    html = stage / "_build" / "html"  # myst-nb writes its copies of the outputs beside it, in the stage
    result = build_sphinx(
        str(stage),
        str(html),
        noconfig=True,
        path_config=str(stage / "_config.yml"),
        confoverrides={"external_toc_path": (stage / "_toc.yml").as_posix(), "latex_individualpages": False},
        doctreedir=str(stage / ".doctrees"),
        freshenv=True,
        quiet=quiet,
    )
    if result != 0:
        raise SiteError(f"Sphinx could not build the site from {stage}: {result}")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.move(html, out_dir)
    return out_dir / "index.html"


def main(argv: list[str] | None = None) -> int:
    """``python -m cxr_course.site [--executed DIR] [--out DIR] [--allow-stale]`` (``make site``)."""
    parser = argparse.ArgumentParser(prog="python -m cxr_course.site", description=__doc__.splitlines()[0])
    parser.add_argument("--executed", help="the executed notebooks (default: build/executed)")
    parser.add_argument("--out", help="the site's folder (default: build/site)")
    parser.add_argument("--allow-stale", action="store_true", help="publish executed copies of older cells")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        index = _build_site(args.executed, args.out, allow_stale=args.allow_stale)
    except SiteError as error:
        print(f"make site: {error}", file=sys.stderr)
        return 2
    pages = len(list(index.parent.glob("*.html")))
    print(f"Site: {index} ({pages} pages) built in {time.perf_counter() - start:.0f} s.")
    print(f"To read it: python -m http.server --directory {index.parent} --bind 127.0.0.1, then open the address.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
