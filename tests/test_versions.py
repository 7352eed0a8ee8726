"""check_versions: the ranges come from the installed package's metadata, and a version outside them stops."""

from importlib.metadata import metadata, requires

import pytest
from packaging.requirements import Requirement

import cxr_utils as versions
from cxr_utils import check_versions


def _runtime_requirements() -> dict[str, Requirement]:
    return {r.name.lower(): r for r in map(Requirement, requires("cxr-utils")) if r.marker is None}


def test_this_environment_is_in_range_and_printed(capsys):
    table = check_versions()
    printed = capsys.readouterr().out
    assert printed.startswith("Versions: python 3.") and "tensorflow " in printed and "keras " in printed
    assert table["package"].tolist() == ["python", *_runtime_requirements()]
    assert table["ok"].all()
    assert table.loc[0, "required"] == str(Requirement("python" + metadata("cxr-utils")["Requires-Python"]).specifier)


def test_the_ranges_are_the_declared_ones():
    table = check_versions(["tensorflow", "keras"], show=False).set_index("package")
    for name in ("tensorflow", "keras"):
        assert table.loc[name, "required"] == str(_runtime_requirements()[name].specifier)


@pytest.mark.parametrize(("installed", "shown"), [("2.15.1", "tensorflow 2.15.1 (needs"), (None, "tensorflow missing")])
def test_a_version_outside_its_range_or_missing_stops_with_its_name(monkeypatch, installed, shown):
    real_version = versions.version

    def fake_version(name):
        if name != "tensorflow":
            return real_version(name)
        if installed is None:
            raise versions.PackageNotFoundError(name)
        return installed

    monkeypatch.setattr(versions, "version", fake_version)
    with pytest.raises(RuntimeError, match="make env") as error:
        check_versions(["tensorflow", "keras"], show=False)
    assert shown in str(error.value) and "keras" not in str(error.value)
