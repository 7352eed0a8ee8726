"""The citation file, the changelog and the licences (issue 35).

CITATION.cff is valid against the Citation File Format 1.2.0 schema (tests/data/cff-schema-1.2.0.json:
https://citation-file-format.github.io/1.2.0/schema.json, from citation-file-format/citation-file-format),
names pyproject.toml's version, and cites the data with the DOIs data/README.md gives.
"""

import json
import re
import sys
from pathlib import Path

import jsonschema
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (the test extra installs it there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _citation():
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_citation_file_is_valid_cff():
    schema = json.loads((ROOT / "tests" / "data" / "cff-schema-1.2.0.json").read_text())
    jsonschema.validate(_citation(), schema)


def test_citation_names_the_package_version_and_the_data_readme_dois():
    citation = _citation()
    assert str(citation["version"]) == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    dois = {reference["type"]: reference["doi"] for reference in citation["references"]}
    assert dois == {"article": "10.1016/j.cell.2018.02.010", "data": "10.17632/rscbjbr9sj.2"}
    data_readme = (ROOT / "data" / "README.md").read_text()
    assert all(f"doi:{doi}" in data_readme for doi in dois.values())
    data = next(r for r in citation["references"] if r["type"] == "data")
    # the title of the version the DOI names (v3, rscbjbr9sj.3, has another)
    assert f'"{data["title"]}", Mendeley Data, v2' in " ".join(data_readme.split())


def test_changelog_and_licences():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and "Keep a Changelog" in changelog
    content = (ROOT / "LICENSE-CONTENT").read_text()
    assert "Creative Commons Attribution 4.0 International Public License" in content
    assert content.rstrip().endswith("Creative Commons may be contacted at creativecommons.org.")
    assert re.search(r"\bMIT\b", (ROOT / "LICENSE").read_text())
