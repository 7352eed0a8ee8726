"""Small synthetic files for edge-case tests (the real data is in conftest.py's fixtures)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxr_utils.dataset import file_sha256

ARCHIVE_NAME = "ChestXRay2017.zip"


def build_cnn(*args, **kwargs):
    """Chapter 03's CNN, as its cell defines it (the package keeps no copy)."""
    from cxr_course.chapters import saved

    return saved("build_cnn")(*args, **kwargs)


def build_top_classifier(*args, **kwargs):
    """Chapter 04's fine-tuned top with its head, as its cell defines it."""
    from cxr_course.chapters import saved

    return saved("build_top_classifier")(*args, **kwargs)


def jpeg_bytes(width: int = 40, height: int = 30, mode: str = "L", **save_args) -> bytes:
    """A small JPEG with a gradient, in the given Pillow mode."""
    ramp = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, axis=0)
    image = Image.fromarray(ramp, "L")
    if mode != "L":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **save_args)
    return buffer.getvalue()


def write_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_dataset(root: Path, files: dict[str, bytes | None]) -> Path:
    """Write a dataset tree: relative path -> bytes (None: a small grayscale JPEG)."""
    for relative, data in files.items():
        write_file(root / relative, jpeg_bytes() if data is None else data)
    return root


#: Eight labels and scores to count metrics by hand.
#: Sorted by score: .9(1) .8(1) .7(1) .6(0) .4(0) .35(0) .2(1) .1(0).
Y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
S = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.2, 0.9, 0.6])


def synthetic(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Labels (about 60 % PNEUMONIA) and informative but imperfect scores in [0, 1]."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.6).astype(int)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    return y, s


def run_inputs(seed: int) -> tuple[pd.DataFrame, pd.Series, np.ndarray, np.ndarray]:
    """``finish_run``'s inputs for 60 made-up images: index, splits (20 train, 20 validation, 20 test), scores."""
    rng = np.random.default_rng(seed)
    labels = np.where(np.arange(60) % 3 == 0, "NORMAL", "PNEUMONIA")
    index = pd.DataFrame(
        {"path": [f"x/{i}.jpeg" for i in range(60)], "split": ["train"] * 40 + ["test"] * 20, "label": labels}
    ).assign(patient_id=[f"p{i}" for i in range(60)], pathogen="none")
    splits = pd.Series(["train"] * 20 + ["validation"] * 20 + ["test"] * 20)
    scores = np.clip((labels == "PNEUMONIA") * 0.4 + rng.uniform(0, 0.6, 60), 0, 1)
    return index, splits, scores[20:40], scores[40:]


def score_repeatedly(run_dir: str, seed: int, scorings: int, start, *, whole_run: bool) -> None:
    """What the end of a chapter does, ``scorings`` times over, for the concurrency soak.

    ``whole_run``: ``finish_run`` into ``run_dir`` (scores, a ledger row, the run's files);
    otherwise only the ledger row (``append_scoring`` beside ``run_dir``, as run ``run_dir``'s
    name). Run in a process of its own (kept here, not in the test module, so that such a
    process imports little); it waits at the barrier ``start`` first.
    """
    from cxr_utils.metrics import bootstrap_ci
    from cxr_utils.records import append_scoring
    from cxr_utils.runs import finish_run

    index, splits, validation, test = run_inputs(seed)
    test_rows = index[(splits == "test").to_numpy()]
    metrics = bootstrap_ci((test_rows["label"] == "PNEUMONIA").astype(int), test, 0.5, n_boot=2)
    start.wait(timeout=120)
    for _ in range(scorings):
        if whole_run:
            finish_run(run_dir, index, splits, validation, test, n_boot=20, parameters={"seed": seed})
        else:
            folder = Path(run_dir)
            append_scoring(
                folder.parent,
                folder.name,
                {"seed": seed},
                metrics,
                threshold=0.5,
                n_test=20,
                test_paths=test_rows["path"],
            )


#: A tiny dataset in the Kaggle layout (None: a small grayscale JPEG; see :func:`make_dataset`).
KAGGLE_FILES = {
    "train/NORMAL/IM-0001-0001.jpeg": None,
    "train/NORMAL/IM-0002-0001.jpeg": None,
    "train/PNEUMONIA/person1_virus_6.jpeg": None,
    "train/PNEUMONIA/person1_virus_7.jpeg": None,
    "val/NORMAL/NORMAL2-IM-1427-0001.jpeg": None,
    "val/PNEUMONIA/person1946_bacteria_4874.jpeg": None,
    "test/NORMAL/IM-0003-0001.jpeg": None,
    "test/PNEUMONIA/person1_bacteria_1.jpeg": None,
}


class ArchiveServer:
    """Serves one payload at /ChestXRay2017.zip; ``mode`` picks how."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.mode = "ok"
        self.requests = 0
        self.sent = 0  # bytes sent in "slow" mode
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_GET(self):
                server.requests += 1
                body = server.payload
                if server.mode == "corrupt":
                    middle = len(body) // 2
                    body = body[:middle] + bytes(b ^ 0xFF for b in body[middle : middle + 4096]) + body[middle + 4096 :]
                elif server.mode == "html":
                    body = b"<html><body>Please log in</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "slow":  # 16 kB every 20 ms, counted, so that a test can kill the client midway
                    for start in range(0, len(body), 16384):
                        self.wfile.write(body[start : start + 16384])
                        self.wfile.flush()
                        server.sent = start + 16384
                        time.sleep(0.02)
                    return
                if server.mode == "cut":  # announce the full size, send 40%, hang up
                    self.wfile.write(body[: len(body) * 2 // 5])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{ARCHIVE_NAME}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def build_archive(originals: Path) -> tuple[bytes, pd.DataFrame]:
    """A Mendeley-style zip of two real images per split and class, and their Kaggle-layout manifest."""
    sample = [
        path.relative_to(originals).as_posix()
        for folder in sorted(originals.glob("*/*"))
        for path in sorted(folder.glob("*.jpeg"))[:2]
    ]
    buffer = io.BytesIO()
    rows = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as bundle:
        for relative in sample:
            source = originals / relative
            split, label, name = relative.split("/")
            mendeley_split = "train" if split == "val" else split
            bundle.write(source, f"chest_xray/{mendeley_split}/{label}/{name}")
            bundle.writestr(f"__MACOSX/chest_xray/{mendeley_split}/{label}/._{name}", b"\x00\x05\x16\x07")
            rows.append((relative, file_sha256(source), source.stat().st_size))
        bundle.writestr("chest_xray/train/NORMAL/.DS_Store", b"\x00\x00\x00\x01Bud1")
    return buffer.getvalue(), pd.DataFrame(rows, columns=["path", "sha256", "bytes"])


def browser_or_skip(test: str) -> tuple[str, str]:
    """Paths of Chromium and chromedriver; skip ``test`` (a few words naming it) without them.

    With ``CXR_REQUIRE_BROWSER=1`` (set by CI once it has installed them) a missing browser
    fails the test instead.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        driver = None
    if chromium and driver:
        return chromium, driver
    reason = f"{test} needs Chromium, chromedriver and selenium (apt-get install chromium chromium-driver)"
    if os.environ.get("CXR_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + "; CXR_REQUIRE_BROWSER=1 makes this a failure")
    pytest.skip(reason)
