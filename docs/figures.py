"""The README's figures, taken from the executed chapters of a full-mode run (issue 35).

    make figures                       # = python docs/figures.py build
    python docs/figures.py BUILD_DIR [--commit C] [--date YYYY-MM-DD]

BUILD_DIR is the ``build/`` folder of a finished ``make course``: its ``executed/*.ipynb`` and the
``summary.json`` the runner wrote (a fast-mode run is refused: its figures are not the course's
results). Each figure is a PNG output of one chapter cell, found by a piece of the cell's source, saved
to ``docs/figures/<name>.png`` unchanged, or, when over 290 KB, in gray levels (a figure without colour)
or a 256-colour palette, narrower by tenths until it fits. The captions name the data copy
(``summary.json``), the commit and the date of the run: by default the commit checked out where
BUILD_DIR lies and the date ``summary.json`` was written. ``docs/figures.md`` gets every figure with its
caption, and README.md the block between its ``<!-- figures -->`` markers.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "figures"
MAX_BYTES = 290_000  # under the 300 KB the README promises per figure


@dataclass(frozen=True)
class Figure:
    name: str  # docs/figures/<name>.png
    notebook: str  # the executed chapter
    source: str  # a piece of the cell's source that finds the cell
    caption: str  # what it shows (the run's commit and date are appended)
    output: int = 0  # which of the cell's PNG outputs


FIGURES = [
    Figure(
        "01_samples",
        "01_dataset_exploration.ipynb",
        "cxr.plot_sample_grid(",
        "Chapter 01: a few films of each class, with their file names, sizes and modes.",
    ),
    Figure(
        "03_learning_curves",
        "03_cnn_from_scratch.ipynb",
        "cxr.plot_history(history)",
        "Chapter 03: the scratch CNN's loss and ROC AUC on training and validation, epoch by epoch.",
    ),
    Figure(
        "05_roc_pr",
        "05_error_analysis.ipynb",
        "cxr.plot_roc_pr(y_test, models)",
        "Chapter 05: ROC and precision-recall curves on the official test split, with each model's "
        "operating point and Kermany et al.'s (the star).",
    ),
    Figure(
        "05_gradcam",
        "05_error_analysis.ipynb",
        "cxr.plot_gradcam_gallery(",
        "Chapter 05: Grad-CAM heat maps of the most confident mistakes on the test split.",
    ),
]
MARKERS = ("<!-- figures: made by `make figures` (docs/figures.py); do not edit by hand -->", "<!-- /figures -->")


def _png(executed: Path, figure: Figure) -> bytes:
    nb = json.loads((executed / figure.notebook).read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and figure.source in "".join(c["source"])]
    if len(cells) != 1:
        raise SystemExit(f"{figure.notebook}: {len(cells)} cells contain {figure.source!r} (one expected)")
    pngs = [o["data"]["image/png"] for o in cells[0].get("outputs", []) if "image/png" in o.get("data", {})]
    if len(pngs) <= figure.output:
        raise SystemExit(f"{figure.notebook}: the cell with {figure.source!r} drew no figure {figure.output}")
    return base64.b64decode(pngs[figure.output])


def _small(png: bytes) -> bytes:
    """The PNG itself when it is at most MAX_BYTES; else the same image in gray levels (when it has no
    colour) or a 256-colour palette, made narrower by tenths until it fits."""
    if len(png) <= MAX_BYTES:
        return png
    from PIL import Image, ImageChops

    image = Image.open(io.BytesIO(png)).convert("RGB")
    red, green, blue = image.split()
    gray = not ImageChops.difference(red, green).getbbox() and not ImageChops.difference(red, blue).getbbox()
    while True:
        buffer = io.BytesIO()
        (image.convert("L") if gray else image.quantize(256)).save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES:
            return buffer.getvalue()
        image = image.resize((image.width * 9 // 10, image.height * 9 // 10), Image.LANCZOS)


def run_provenance(build: Path) -> tuple[str, str]:
    """(short commit checked out where ``build`` lies, the date its summary.json was written)."""
    command = ["git", "-C", str(build.parent), "rev-parse", "--short", "HEAD"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{build.parent} is not a git checkout: pass --commit")
    written = dt.datetime.fromtimestamp((build / "summary.json").stat().st_mtime, tz=dt.timezone.utc)
    return done.stdout.strip(), written.date().isoformat()


def caption(figure: Figure, run: str) -> str:
    return f"{figure.caption} {run}."


def figure_block(figures: list[Figure], run: str, prefix: str) -> str:
    """Markdown: each figure (relative to ``prefix``) and, under it, its caption in italics."""
    return "\n\n".join(f"![{f.name}]({prefix}{f.name}.png)\n*{caption(f, run)}*" for f in figures)


def replace_between_markers(text: str, block: str) -> str:
    start, end = (re.escape(m) for m in MARKERS)
    if not re.search(f"{start}.*?{end}", text, re.S):
        return text
    return re.sub(f"{start}.*?{end}", lambda _: f"{MARKERS[0]}\n{block}\n{MARKERS[1]}", text, flags=re.S)


def main(argv: list[str] | None = None, *, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", type=Path, help="the build/ folder of a full `make course`")
    parser.add_argument("--commit", help="the commit the course ran at (default: the checkout's HEAD)")
    parser.add_argument("--date", help="the run's date, YYYY-MM-DD (default: when summary.json was written)")
    args = parser.parse_args(argv)
    summary = args.build / "summary.json"
    if not summary.is_file():
        raise SystemExit(f"{summary} is missing: run `make course` to the end first")
    content = json.loads(summary.read_text(encoding="utf-8"))
    if content["fast"]:
        raise SystemExit(f"{summary} records a fast-mode run: the README shows a full run's figures")
    if args.commit and args.date:
        commit, date = args.commit, args.date
    else:
        found_commit, found_date = run_provenance(args.build)
        commit, date = args.commit or found_commit, args.date or found_date
    data = f" on {Path(content['data_dir']).name}" if content.get("data_dir") else ""
    run = f"Full-mode run{data} at commit {commit}, {date}"
    out = root / "docs" / "figures"
    out.mkdir(parents=True, exist_ok=True)
    for figure in FIGURES:
        png = _small(_png(args.build / "executed", figure))
        (out / f"{figure.name}.png").write_bytes(png)
        print(f"docs/figures/{figure.name}.png: {len(png) / 1000:.0f} KB, from {figure.notebook}")
    gallery = "# Figures from a full run\n\n" + figure_block(FIGURES, run, "figures/") + "\n"
    (root / "docs" / "figures.md").write_text(gallery, encoding="utf-8")
    readme = root / "README.md"
    block = figure_block(FIGURES, run, "docs/figures/")
    readme.write_text(replace_between_markers(readme.read_text(encoding="utf-8"), block), encoding="utf-8")
    print(f"docs/figures.md and README.md: captions end '{run}.'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
