"""README.md: short, its first screen answers the newcomer's questions, every link resolves (issue 35)."""

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")
HOSTED = ("https://colab.research.google.com/github/", "https://kaggle.com/kernels/welcome?src=https://github.com/")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_is_short_and_its_first_screen_answers_the_questions():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, len(lines)
    first = "\n".join(lines[:40])
    assert "you learn" in first.lower()  # what you will learn
    assert "make course" in first and "make test" in first  # the two commands
    assert "1.2 GB" in first and re.search(r"no\s+account", first) and "CXR_DATA_DIR" in first  # the data
    assert re.search(r"\d+-\d+ min", first) and "fast mode" in first and "2 CPU cores" in first  # how long, on what
    # a line per chapter: what it teaches, its full and fast time (the website's landing page shows this table)
    assert "## The chapters" in first
    rows = re.findall(r"^\| `(0[1-6]_\w+\.ipynb)` \|[^|]+\|[^|]+\|[^|]+\|$", first, re.M)
    assert rows == [p.name for p in CHAPTERS]


def test_every_link_resolves_to_a_file_in_the_repository():
    text = README.read_text(encoding="utf-8")
    anchors = {_slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}
    missing = []
    for target in LINK.findall(text):
        if target.startswith("#"):
            if target[1:] not in anchors:
                missing.append(target)
            continue
        if target.startswith(HOSTED):  # a chapter on Colab or Kaggle: it must name a committed notebook
            target = re.sub(r"^.*?/blob/[^/]+/", "", target)
        elif re.match(r"[a-z]+:", target):  # other web addresses are not files of the repository
            continue
        path = (README.parent / target.split("#")[0]).resolve()
        if not path.exists() or ROOT.resolve() not in (path, *path.parents):
            missing.append(target)
    assert not missing, missing
    hosted = [t for t in LINK.findall(text) if t.startswith(HOSTED)]
    assert len(hosted) == 2 * len(CHAPTERS)  # every chapter on both hosts


def test_the_readme_shows_the_chapters_first_cell_exactly():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    first = next(c for c in nbformat.read(CHAPTERS[0], as_version=4).cells if c.cell_type == "code").source
    assert first.rstrip("\n") + "\n" in blocks
