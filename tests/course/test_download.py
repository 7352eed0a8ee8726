"""The download code against a local HTTP server (127.0.0.1) serving a zip of real images.

The zip is built from images in ../shared in the Mendeley layout (chest_xray/{train,test},
with one of Kaggle's val images under train, as in ChestXRay2017.zip) plus __MACOSX junk.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cxr_course import cli
from cxr_course.fetch import ARCHIVE_NAME, ArchiveError, DownloadError, download_dataset

from helpers import ArchiveServer, build_archive


@pytest.fixture
def served(originals):
    payload, manifest = build_archive(originals)
    with ArchiveServer(payload) as server:
        yield server, manifest


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_extract_verify(served, tmp_path):
    server, manifest = served
    report = download_dataset(tmp_path, server.url, manifest=manifest, progress=False)
    assert (report.missing, report.extra, report.altered, report.misplaced) == ([], [], [], [])
    assert report.layout == "mendeley" and report.problems.empty
    assert leftovers(tmp_path) == ["chest_xray"]  # archive deleted, no partial folders
    assert not (tmp_path / "chest_xray" / "__MACOSX").exists()
    val_names = [Path(p).name for p in manifest["path"] if p.startswith("val/")]
    assert len(val_names) == 4  # Kaggle's val images sit in Mendeley's train
    assert all(next((tmp_path / "chest_xray/train").glob(f"*/{name}"), None) for name in val_names)


def test_keep_archive_and_no_second_download(served, tmp_path):
    server, manifest = served
    download_dataset(tmp_path, server.url, manifest=manifest, keep_archive=True, progress=False)
    assert sorted(leftovers(tmp_path)) == [ARCHIVE_NAME, "chest_xray"]
    report = download_dataset(tmp_path, server.url, manifest=manifest, progress=False)
    assert server.requests == 1 and report.missing == [] and report.altered == []


def test_cut_connection_leaves_nothing_and_rerun_succeeds(served, tmp_path):
    server, manifest = served
    server.mode = "cut"
    with pytest.raises(DownloadError, match="run the command again"):
        download_dataset(tmp_path, server.url, manifest=manifest, progress=False)
    assert leftovers(tmp_path) == []  # no partial file, nothing that looks complete
    server.mode = "ok"
    report = download_dataset(tmp_path, server.url, manifest=manifest, progress=False)
    assert report.missing == [] and report.altered == []


@pytest.mark.parametrize("mode", ["corrupt", "html"])
def test_corrupt_archive_is_deleted_and_rerun_succeeds(served, tmp_path, mode):
    server, manifest = served
    server.mode = mode
    with pytest.raises(ArchiveError, match="It was deleted"):
        download_dataset(tmp_path, server.url, manifest=manifest, progress=False)
    assert leftovers(tmp_path) == []  # archive removed, no partial extraction
    server.mode = "ok"
    report = download_dataset(tmp_path, server.url, manifest=manifest, progress=False)
    assert report.missing == [] and report.altered == []
    assert server.requests == 2  # the rerun downloaded again instead of reusing the bad zip


def test_wrong_sha256_is_refused(served, tmp_path):
    server, manifest = served
    with pytest.raises(DownloadError, match="SHA-256"):
        download_dataset(tmp_path, server.url, sha256="0" * 64, manifest=manifest, progress=False)
    assert leftovers(tmp_path) == []


def test_unreachable_server_is_a_clear_error(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="failed"):
        download_dataset(tmp_path, f"http://127.0.0.1:{port}/{ARCHIVE_NAME}", progress=False)
    assert leftovers(tmp_path) == []


def test_cli_download(served, tmp_path, capsys):
    server, manifest = served
    manifest_path = tmp_path / "manifest.tsv"
    manifest.to_csv(manifest_path, sep="\t", header=False, index=False)
    status = cli.main(
        ["download", "--dest", str(tmp_path / "data"), "--url", server.url, "--manifest", str(manifest_path)]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "mendeley layout" in out and "altered       0" in out
