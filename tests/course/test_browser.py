"""JupyterLab in a real browser: notebook 01, and chapter 05's threshold explorer, run through the UI in
headless Chromium.

The test starts ``jupyter lab`` on 127.0.0.1 with a token, serving a temporary copy of
notebook 01 (so that nothing is written into the committed notebook), opens it in
headless Chromium driven by Selenium, clicks Run > Run All Cells, waits for the kernel,
saves through File > Save Notebook, and checks the saved file: every code cell executed,
no error output, at least one figure. The page shows at least one rendered figure, and
a screenshot of it goes to ``build/browser/``. The explorer's test serves chapter 05's two explorer
cells after a setup cell of synthetic scores, drags the slider and checks that the table and the figure
were redrawn with the counts of the slider's threshold (screenshot: ``build/browser/05_threshold_explorer.png``).

It needs Chromium and its driver (Debian: ``apt-get install chromium chromium-driver``;
``.ci/run`` installs them). Without them it is skipped, unless ``CXR_REQUIRE_BROWSER=1``
(set by CI) makes that a failure.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from cxr_course import build_dir

from helpers import browser_or_skip

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "01_dataset_exploration.ipynb"
SCREENSHOTS = build_dir() / "browser"
TOKEN = "cxr-browser-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _api(port: int, path: str):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def _lab_server(tmp_path, workdir, originals):
    """``jupyter lab`` serving ``workdir`` on a free port of 127.0.0.1; yields the port."""
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Render every cell (JupyterLab 4 otherwise renders only the visible ones).
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    notifications = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    notifications.mkdir(parents=True)
    (notifications / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port = _free_port()
    env = dict(
        os.environ,
        CXR_DATA_DIR=str(originals),
        CXR_FAST="1",
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
    )
    env.pop("MPLBACKEND", None)
    log = open(tmp_path / "lab.log", "w")  # noqa: SIM115 (closed when the server stops, below)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={workdir}",
            "--ServerApp.open_browser=False",
            "--LabApp.news_url=",
            "--LabApp.extension_manager=readonly",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                _api(port, "/api/status")
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    log_text = (tmp_path / "lab.log").read_text()[-3000:]
                    raise RuntimeError("jupyter lab did not start:\n" + log_text) from None
                time.sleep(0.5)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def jupyter_lab(tmp_path, originals):
    workdir = tmp_path / "lab"
    workdir.mkdir()
    shutil.copy(NOTEBOOK, workdir / NOTEBOOK.name)
    with _lab_server(tmp_path, workdir, originals) as port:
        yield port, workdir


def _click_menu(driver, menu: str, item: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 30)
    wait.until(
        ec.element_to_be_clickable((By.XPATH, f"//div[contains(@class,'lm-MenuBar-itemLabel') and text()='{menu}']"))
    ).click()
    wait.until(
        ec.element_to_be_clickable((By.XPATH, f"//div[contains(@class,'lm-Menu-itemLabel') and text()='{item}']"))
    ).click()


def _wait_until_idle(port: int, driver, timeout: float) -> None:
    """Wait for the notebook's kernel to go idle with no cell left queued or running."""
    deadline = time.time() + timeout
    quiet_since = None
    while time.time() < deadline:
        kernels = _api(port, "/api/kernels")
        busy = any(k["execution_state"] != "idle" for k in kernels)
        prompts = [p.text for p in driver.find_elements("css selector", ".jp-CodeCell .jp-InputArea-prompt")]
        running = any("*" in p for p in prompts)
        if kernels and not busy and not running:
            quiet_since = quiet_since or time.time()
            if time.time() - quiet_since > 3:
                return
        else:
            quiet_since = None
        time.sleep(1)
    raise TimeoutError(f"the notebook was still running after {timeout:.0f} s")


def _headless_chromium():
    """A Selenium driver of headless Chromium (the test is skipped without one, as browser_or_skip says)."""
    chromium, chromedriver = browser_or_skip("headless browser test")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(chromedriver), options=options)


@pytest.mark.slow
def test_notebook_01_runs_in_jupyterlab_in_headless_chromium(jupyter_lab):
    driver = _headless_chromium()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    port, workdir = jupyter_lab
    saved = workdir / NOTEBOOK.name
    before = saved.stat().st_mtime_ns
    try:
        driver.get(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={TOKEN}")
        wait = WebDriverWait(driver, 90)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell")))
        wait.until(lambda d: _api(port, "/api/kernels"))  # the kernel has started
        _wait_until_idle(port, driver, timeout=60)
        _click_menu(driver, "Run", "Run All Cells")
        time.sleep(2)
        _wait_until_idle(port, driver, timeout=600)

        figures = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")
        assert figures, "no rendered figure in the page"
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", figures[0])
        time.sleep(1)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        screenshot = SCREENSHOTS / "01_dataset_exploration.png"
        driver.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 20_000  # a real page, not a blank one

        _click_menu(driver, "File", "Save Notebook")
        deadline = time.time() + 30
        while saved.stat().st_mtime_ns == before and time.time() < deadline:
            time.sleep(0.5)
        assert saved.stat().st_mtime_ns != before, "the notebook was not saved through the UI"
    finally:
        driver.quit()

    nb = nbformat.read(saved, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a code cell did not run"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert sum("image/png" in o.get("data", {}) for c in code for o in c.outputs) >= 1


CHAPTER_05 = ROOT / "notebooks" / "05_error_analysis.ipynb"
EXPLORER_SETUP = """%matplotlib inline
import numpy as np
import pandas as pd

import cxr_utils as cxr

scores = np.load("scores.npz")  # synthetic labels and scores, standing for chapter 04's run
y_validation, s_validation, y_test, s_test = (scores[k] for k in ("y_validation", "s_validation", "y_test", "s_test"))


class transfer:  # stands for cxr.load_run(TRANSFER_RUN)
    threshold = cxr.choose_threshold(y_validation, s_validation)


CHOSEN = "chosen"
results = {CHOSEN: cxr.bootstrap_ci(y_test, s_test, transfer.threshold, n_boot=50, seed=0)}"""


def _explorer_cells():
    """Chapter 05's two explorer cells: the view of one threshold, and the slider."""
    cells = nbformat.read(CHAPTER_05, as_version=4).cells
    view = next(c for c in cells if c.cell_type == "code" and "def threshold_view(" in c.source)
    slider = next(c for c in cells if c.cell_type == "code" and "SelectionSlider(" in c.source)
    return view.source, slider.source


def _explorer_grid(s_validation, s_test, threshold):
    """The slider's thresholds, as its cell computes them (checked against the cell's source below)."""
    import numpy as np

    from cxr_utils import clipped_logit

    logits = clipped_logit(np.concatenate([s_validation, s_test]), eps=1e-6)
    grid = 1 / (1 + np.exp(-np.linspace(logits.min() - 0.5, logits.max() + 0.5, 201)))
    return sorted({*grid.round(6).tolist(), float(threshold)})


def _table_row(driver):
    """The explorer's table as {column: text}."""
    table = driver.find_element("css selector", ".jp-OutputArea-output table.dataframe")
    header = [th.text for th in table.find_elements("css selector", "thead th")][1:]
    return dict(zip(header, [td.text for td in table.find_elements("css selector", "tbody td")]))


def _images(driver):
    """The sources of the figures on the page (data URIs of PNGs)."""
    return [img.get_attribute("src") for img in driver.find_elements("css selector", ".jp-OutputArea-output img")]


@pytest.mark.slow
def test_the_threshold_explorer_redraws_in_jupyterlab(tmp_path, originals):
    import numpy as np

    from cxr_utils import binary_metrics, choose_threshold

    from helpers import synthetic

    view, slider = _explorer_cells()
    assert "np.linspace(logits.min() - 0.5, logits.max() + 0.5, 201)" in slider  # the grid rebuilt below
    workdir = tmp_path / "lab"
    workdir.mkdir()
    (y_validation, s_validation), (y_test, s_test) = synthetic(300, seed=3), synthetic(200, seed=4)
    np.savez(workdir / "scores.npz", y_validation=y_validation, s_validation=s_validation, y_test=y_test, s_test=s_test)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (EXPLORER_SETUP, view, slider)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, workdir / "explorer.ipynb")
    chosen = choose_threshold(y_validation, s_validation)
    options = {f"{t:.4g}": t for t in _explorer_grid(s_validation, s_test, chosen)}

    driver = _headless_chromium()
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    with _lab_server(tmp_path, workdir, originals) as port:
        try:
            driver.get(f"http://127.0.0.1:{port}/lab/tree/explorer.ipynb?token={TOKEN}")
            wait = WebDriverWait(driver, 90)
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell")))
            wait.until(lambda d: _api(port, "/api/kernels"))
            _wait_until_idle(port, driver, timeout=60)
            _click_menu(driver, "Run", "Run All Cells")
            time.sleep(2)
            _wait_until_idle(port, driver, timeout=120)
            handle = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".widget-slider .noUi-handle")))
            readout = driver.find_element(By.CSS_SELECTOR, ".widget-readout")
            before, image_before = (
                _table_row(driver),
                driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img"),
            )
            assert readout.text == f"{chosen:.4g}" and float(before["threshold"]) == round(chosen, 4), before
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
            ActionChains(driver).click_and_hold(handle).move_by_offset(-80, 0).release().perform()
            redrawn = WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,))
            redrawn.until(lambda d: _table_row(d)["threshold"] != before["threshold"])
            _wait_until_idle(port, driver, timeout=30)
            time.sleep(1)  # the figure's update follows the table's
            readout = driver.find_element(By.CSS_SELECTOR, ".widget-readout")
            after, moved_to = _table_row(driver), options[readout.text]
            image_after = _images(driver)
            moved = driver.find_element(By.CSS_SELECTOR, ".widget-slider")
            driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", moved)
            time.sleep(1)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            screenshot = SCREENSHOTS / "05_threshold_explorer.png"
            driver.save_screenshot(str(screenshot))
            assert screenshot.stat().st_size > 20_000
        finally:
            driver.quit()

    expected = binary_metrics(y_validation, s_validation, moved_to)
    assert moved_to < chosen and float(after["threshold"]) == round(moved_to, 4), (after, moved_to)
    assert {k: int(after[k]) for k in ("tn", "fp", "fn", "tp")} == {k: expected[k] for k in ("tn", "fp", "fn", "tp")}
    assert int(after["fp"]) >= int(before["fp"]) and int(after["fn"]) <= int(before["fn"])  # a lower threshold
    assert len(image_before) == len(image_after) == 1 and image_before != image_after  # redrawn in place
