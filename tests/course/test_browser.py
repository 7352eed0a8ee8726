"""JupyterLab in a real browser: notebook 01 run through the UI in headless Chromium.

The test starts ``jupyter lab`` on 127.0.0.1 with a token, serving a temporary copy of
notebook 01 (so that nothing is written into the committed notebook), opens it in
headless Chromium driven by Selenium, clicks Run > Run All Cells, waits for the kernel,
saves through File > Save Notebook, and checks the saved file: every code cell executed,
no error output, at least one figure. The page shows at least one rendered figure, and
a screenshot of it goes to ``build/browser/``.

It needs Chromium and its driver (Debian: ``apt-get install chromium chromium-driver``;
``.ci/run`` installs them). Without them it is skipped, unless ``CXR_REQUIRE_BROWSER=1``
(set by CI) makes that a failure.
"""

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


@pytest.fixture
def jupyter_lab(tmp_path, originals):
    workdir = tmp_path / "lab"
    workdir.mkdir()
    shutil.copy(NOTEBOOK, workdir / NOTEBOOK.name)
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
        yield port, workdir
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


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


@pytest.mark.slow
def test_notebook_01_runs_in_jupyterlab_in_headless_chromium(jupyter_lab):
    chromium, chromedriver = browser_or_skip("headless browser test")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    port, workdir = jupyter_lab
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
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
