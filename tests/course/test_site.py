"""The course's website (``make site``): built from the executed notebooks, read in headless Chromium.

The site needs an executed copy of every chapter in ``build/executed/``. The test suite's
notebook test (``tests/test_notebooks.py``) writes fast-mode copies there; the fixture below
does not count on it having run first: it executes in fast mode, on the 416 original-resolution
images, every chapter from the first one whose copy is missing or stale (later chapters read
the run folders of earlier ones), and reuses the others. Then the site is built into
``build/site/``, served on 127.0.0.1, and chapter 03's page is opened in headless Chromium: its
figures load, the navigation links to every other chapter, the search page finds the chapter,
and screenshots go to ``build/site-screenshots/``.

Without Chromium, chromedriver or selenium the browser test is skipped, unless
``CXR_REQUIRE_BROWSER=1`` (set by CI once it has installed them) makes that a failure.
"""

import functools
import json
import os
import re
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest
import yaml

from cxr_course import build_dir
from cxr_course.runner import execute_notebook, list_notebooks
from cxr_course.site import SiteError, chapter_table, execution_note, stage_site, stale_copies
from cxr_course.site import main as site_main

from helpers import browser_or_skip

# sphinx-jupyterbook-latex, which Jupyter Book 1 loads, still calls docutils' Node.traverse().
pytestmark = pytest.mark.filterwarnings("ignore:nodes.Node.traverse:PendingDeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
EXECUTED = build_dir() / "executed"
SCREENSHOTS = build_dir() / "site-screenshots"
CHAPTER = "03_cnn_from_scratch"


def _figures(nb) -> int:
    """How many figures (PNG outputs) a notebook's code cells hold."""
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def _prose_words(markdown: str) -> set[str]:
    """Words of six letters or more in Markdown's prose (no HTML tags, code, math or links' targets)."""
    prose = re.sub(r"<[^>]+>|`[^`]*`|\$[^$]*\$|\]\([^)]*\)", " ", markdown)
    return set(re.findall(r"[a-z]{6,}", prose.lower()))


def _search_word(chapter: str) -> str:
    """The longest word of a chapter's Markdown cells that no other page's text holds."""

    def markdown(path: Path) -> str:
        return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")

    others = set()
    for path in list_notebooks():
        if path.stem != chapter:
            others |= set(re.findall(r"[a-z]+", path.read_text(encoding="utf-8").lower()))
    for text in ("README.md", "data/README.md", "site/index.md"):
        others |= set(re.findall(r"[a-z]+", (ROOT / text).read_text(encoding="utf-8").lower()))
    own = _prose_words(markdown(ROOT / "notebooks" / f"{chapter}.ipynb")) - others
    assert own, f"every word of {chapter}'s prose is on another page too"
    return max(sorted(own), key=len)


def test_readme_chapter_table_links_every_chapter():
    names = [p.name for p in list_notebooks()]
    table = chapter_table((ROOT / "README.md").read_text(encoding="utf-8"), names)
    for name in names:
        assert f"[{Path(name).stem}]({name})" in table, f"the landing page's table has no row for {name}"
    with pytest.raises(SiteError, match="The chapters"):
        chapter_table("# A README without chapters\n", names)


def test_a_missing_copy_names_the_command_that_makes_it(tmp_path):
    with pytest.raises(SiteError, match=r"no executed copy of 01_dataset_exploration\.ipynb.*make course.*make fast"):
        stale_copies(list_notebooks()[:1], tmp_path)


def test_a_copy_of_other_cells_is_stale_and_injected_parameters_are_not(tmp_path):
    first, second = list_notebooks()[:2]
    nb = nbformat.read(first, as_version=4)
    injected = nbformat.v4.new_code_cell("SEED = 1")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(2, injected)
    nbformat.write(nb, tmp_path / first.name)
    nb = nbformat.read(second, as_version=4)
    nb.cells[0].source += "\nA sentence added after the run."
    nbformat.write(nb, tmp_path / second.name)
    assert stale_copies([first, second], tmp_path) == [second.name]


def test_the_landing_page_says_how_the_copies_were_made(tmp_path):
    executed = tmp_path / "executed"
    executed.mkdir()
    copy = executed / "01_dataset_exploration.ipynb"
    copy.write_text("{}")
    assert "written by `make course`" in execution_note(executed)  # no summary: who may have written them
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"fast": True}))
    assert "fast mode" in execution_note(executed) and ":::{warning}" in execution_note(executed)
    summary.write_text(json.dumps({"fast": False, "data_verdict": "the official dataset"}))
    assert "the full course) on the official dataset" in execution_note(executed)
    os.utime(copy, (summary.stat().st_mtime + 10,) * 2)  # a copy written after that run (by the test suite)
    assert "written by `make course`" in execution_note(executed)


def test_staged_book_lists_every_chapter_and_collapses_the_solutions(tmp_path):
    notebooks = list_notebooks()
    stage = stage_site(ROOT / "notebooks", tmp_path / "src", notebooks=notebooks)  # committed copies as "executed"
    toc = yaml.safe_load((stage / "_toc.yml").read_text())
    assert toc["root"] == "index"
    assert [c["file"] for c in toc["chapters"]] == [p.stem for p in notebooks] + ["data"]
    index = (stage / "index.md").read_text()
    assert "{{" not in index and "CC BY 4.0" in index
    assert (stage / "data.md").read_text() == (ROOT / "data" / "README.md").read_text()
    for path in notebooks:
        staged = nbformat.read(stage / path.name, as_version=4)
        for cell in staged.cells:
            if cell.metadata.get("jupyter", {}).get("source_hidden"):
                assert "hide-input" in cell.metadata["tags"], f"{path.name}: a hidden cell shows on the site"
        assert [c.source for c in staged.cells] == [c.source for c in nbformat.read(path, as_version=4).cells]


@pytest.fixture(scope="module")
def executed_copies(request) -> Path:
    """``build/executed/`` with a current copy of every chapter, made in fast mode where needed."""
    pytest.importorskip("jupyter_book", reason="the site needs Jupyter Book 1: pip install -e '.[site]'")
    notebooks = list_notebooks()
    current = [(EXECUTED / p.name).is_file() and not stale_copies([p], EXECUTED) for p in notebooks]
    first = current.index(False) if False in current else None  # later chapters read earlier ones' runs
    if first is not None:
        env = {"CXR_DATA_DIR": str(request.getfixturevalue("originals")), "CXR_FAST": "1", "CXR_NO_DOWNLOAD": "1"}
        if any("transfer" in p.name for p in notebooks[first:]):
            env["CXR_WEIGHTS_DIR"] = str(request.getfixturevalue("keras_weights"))
        saved = {name: os.environ.get(name) for name in [*env, "MPLBACKEND"]}
        os.environ.update(env)
        os.environ.pop("MPLBACKEND", None)  # keep the kernel's inline backend
        try:
            for path in notebooks[first:]:
                execute_notebook(path, EXECUTED / path.name)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return EXECUTED


@pytest.fixture(scope="module")
def site(executed_copies) -> Path:
    """The site built as ``make site`` builds it, beside the executed copies (``build/site/``)."""
    out = executed_copies.parent / "site"
    assert site_main(["--executed", str(executed_copies), "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_site_has_every_chapter_with_its_figures_and_a_search_index(site, executed_copies):
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "creativecommons.org/licenses/by/4.0" in index and "Kermany" in index
    for path in list_notebooks():
        page = site / f"{path.stem}.html"
        assert page.is_file(), f"no page for {path.name}"
        assert f'href="{page.name}"' in index, f"the landing page does not link to {page.name}"
        figures = _figures(nbformat.read(executed_copies / path.name, as_version=4))
        images = re.findall(r'<img[^>]+src="(_images/[^"]+)"', page.read_text(encoding="utf-8"))
        assert len(images) >= figures, f"{page.name}: {len(images)} images for {figures} figures"
        assert all((site / src).is_file() for src in images)
    assert (site / "search.html").is_file() and (site / "searchindex.js").is_file()
    assert (site / "data.html").is_file()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no line per request in the test output
        pass


@pytest.fixture
def served(site):
    """The site served over HTTP on 127.0.0.1 (Sphinx's search needs HTTP, not file://): its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_chapter_03_page_in_headless_chromium(served, executed_copies):
    chromium, chromedriver = browser_or_skip("the site's browser test")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    executed = nbformat.read(executed_copies / f"{CHAPTER}.ipynb", as_version=4)
    figures = _figures(executed)
    word = _search_word(CHAPTER)  # a word of chapter 03's prose that no other page has
    others = [p.stem for p in list_notebooks() if p.stem != CHAPTER]

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        wait = WebDriverWait(driver, 30)
        driver.get(f"{served}/{CHAPTER}.html")
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
        wait.until(lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete)"))
        widths = driver.execute_script(
            "return Array.from(document.querySelectorAll('.cell_output img')).map(i => i.naturalWidth)"
        )
        loaded = [w for w in widths if w > 0]
        assert len(loaded) >= figures > 0, (
            f"{len(loaded)} of {len(widths)} output images loaded; the notebook has {figures} figures"
        )

        links = driver.execute_script(
            "return Array.from(document.querySelectorAll('nav.bd-links a')).map(a => a.getAttribute('href'))"
        )
        for stem in others:
            assert f"{stem}.html" in links, f"the navigation has no link to {stem}: {links}"
        neighbours = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, ".prev-next-area a")]
        assert any(h.endswith(f"{others[1]}.html") for h in neighbours), neighbours  # previous: chapter 02
        assert any(h.endswith(f"{others[2]}.html") for h in neighbours), neighbours  # next: chapter 04

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        top = SCREENSHOTS / f"{CHAPTER}.png"
        driver.save_screenshot(str(top))
        figure = driver.find_element(By.CSS_SELECTOR, ".cell_output img")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", figure)
        time.sleep(0.5)
        with_figure = SCREENSHOTS / f"{CHAPTER}_figure.png"
        driver.save_screenshot(str(with_figure))
        assert top.stat().st_size > 20_000 and with_figure.stat().st_size > 20_000  # real pages, not blank ones

        # Sphinx's search runs in the page's JavaScript, over searchindex.js.
        driver.get(f"{served}/search.html?q={word}")
        wait.until(lambda d: "Search finished" in (d.execute_script("return document.body.innerText") or ""))
        results = driver.execute_script(
            "return Array.from(document.querySelectorAll('#search-results li a')).map(a => a.getAttribute('href'))"
        )
        assert any(h.split("#")[0].split("?")[0] == f"{CHAPTER}.html" for h in results), (
            f"searching {word!r} did not find chapter 03: {results}"
        )
        driver.save_screenshot(str(SCREENSHOTS / "search.png"))
    finally:
        driver.quit()
