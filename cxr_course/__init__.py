"""cxr_course: the course's machinery, apart from the learner's helpers (``cxr_utils``).

The ``cxr`` command line (``cli``), the course runner (``runner``, ``make course``), the website (``site``,
``make site``) and the download (``fetch``). Chapters and ``cxr_utils`` never import it.
"""

import os
from pathlib import Path

from cxr_utils import project_root


def build_dir() -> Path:
    """Where build products go (executed notebooks, HTML, the site): ``<project>/build``."""
    return project_root() / "build"


def test_data_dir() -> Path:
    """The real data for tests and benchmarks: ``$CXR_TEST_DATA``, else ``<project>/../shared/data``."""
    value = os.environ.get("CXR_TEST_DATA", "").strip()
    path = Path(value).expanduser() if value else project_root() / ".." / "shared" / "data"
    return Path(os.path.abspath(path if path.is_absolute() else project_root() / path))
