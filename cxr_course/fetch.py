"""Download the dataset (Mendeley's ChestXRay2017.zip), extract it, verify it.

The archive is about 1.2 GB and needs no login. The download goes through
`pooch <https://www.fatiando.org/pooch>`_: the bytes stream into a temporary file
beside the target and are renamed to ``ChestXRay2017.zip`` only once complete (and,
when a SHA-256 is given, only if it matches), so an interrupted download never leaves
a file that looks complete. Extraction also goes to a temporary folder that is
renamed into place at the end. A corrupt archive is deleted, so that a rerun
downloads it again.

The Kaggle copy (``paultimothymooney/chest-xray-pneumonia``) needs Kaggle
credentials; ``data/README.md`` describes that route.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import pandas as pd
import pooch
import requests
from tqdm import tqdm

from cxr_utils import data_dir as default_data_dir
from cxr_utils.dataset import DatasetLayoutError, file_sha256, find_dataset
from cxr_utils.records import official_manifest_path

from .verify import VerificationReport, verify_dataset

__all__ = ["MENDELEY_URL", "DownloadError", "ArchiveError", "extract_archive", "download_dataset"]

MENDELEY_URL = (
    "https://data.mendeley.com/public-files/datasets/rscbjbr9sj/files/"
    "f12eaf6d-6023-432f-acc9-80c9d7393433/file_downloaded"
)
ARCHIVE_NAME = "ChestXRay2017.zip"
_EXTRACTED_NAME = "chest_xray"

#: Where an archive is downloaded before it is complete; whatever is left there by a killed
#: download is removed by the next one.
DOWNLOAD_FOLDER = ".download"
#: Extraction happens in a folder with this prefix, renamed into place when complete; one left
#: by a killed extraction is removed by the next, and never taken for data.
PARTIAL_PREFIX = ".chest_xray-partial-"
#: Limits on what an archive may expand to: the official archive holds about 1.2 GB of JPEGs,
#: which barely compress (ratio about 1). A member that expands more than MAX_RATIO times, or
#: an archive of more than MAX_EXTRACTED_BYTES in all, is refused before anything is written.
MAX_EXTRACTED_BYTES = 4_000_000_000
MAX_RATIO = 100
#: Seconds to wait for the server to connect or to send more bytes.
_TIMEOUT_S = 60.0


class DownloadError(RuntimeError):
    """The archive could not be downloaded (network error, cut connection, wrong hash)."""


class ArchiveError(RuntimeError):
    """The downloaded archive is corrupt or does not hold the dataset."""


def _download_archive(
    dest_dir: str | os.PathLike, url: str = MENDELEY_URL, *, sha256: str | None = None, progress: bool = True
) -> Path:
    """Download the dataset archive from ``url`` to ``dest_dir/ChestXRay2017.zip`` (created if needed); return it.

    An existing complete archive there is reused (checked against ``sha256``, 64 hex digits,
    when given). The download is atomic: on any failure no file named ``ChestXRay2017.zip`` is
    left behind. Raises :class:`DownloadError` on a network error, an incomplete transfer, or a
    hash mismatch.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / ARCHIVE_NAME
    if target.exists() and (sha256 is None or file_sha256(target) == sha256.lower()):
        return target  # complete: it only ever gets its name when it is
    target.unlink(missing_ok=True)
    staging = dest_dir / DOWNLOAD_FOLDER
    shutil.rmtree(staging, ignore_errors=True)  # whatever a killed download left
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=_TIMEOUT_S)
    known_hash = f"sha256:{sha256.lower()}" if sha256 else None
    if progress:
        print(f"Downloading {url}\n  -> {target}", file=sys.stderr, flush=True)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # pooch's own notes speak of its API, not of this command
    try:
        path = pooch.retrieve(url, known_hash=known_hash, fname=ARCHIVE_NAME, path=staging, downloader=downloader)
        os.replace(path, target)
    except requests.RequestException as error:
        raise DownloadError(
            f"downloading {url} failed: {error}. Nothing named {ARCHIVE_NAME} was kept in {dest_dir}; "
            "run the command again to retry."
        ) from error
    except ValueError as error:  # pooch's hash mismatch
        raise DownloadError(f"the file from {url} does not match the expected SHA-256: {error}") from error
    finally:
        logger.setLevel(level)
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _macos_metadata(name: str) -> bool:
    """``__MACOSX/`` folders and ``._*`` files: macOS's metadata, never images."""
    return any(part == "__MACOSX" or part.startswith("._") for part in name.split("/"))


def _check_members(members: list[zipfile.ZipInfo]) -> None:
    """Refuse, before writing anything, an archive that repeats a name or would expand beyond the limits."""
    names = [m.filename for m in members]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise zipfile.BadZipFile(f"it holds {', '.join(repeated[:3])} twice: one copy would overwrite the other")
    total = sum(m.file_size for m in members)
    if total > MAX_EXTRACTED_BYTES:
        raise zipfile.BadZipFile(
            f"it would expand to {total / 1e9:.1f} GB, over the limit of {MAX_EXTRACTED_BYTES / 1e9:.0f} GB"
        )
    for member in members:
        if member.file_size > 1_000_000 and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise zipfile.BadZipFile(
                f"{member.filename} expands {member.file_size / max(member.compress_size, 1):.0f} times "
                f"(a compression ratio over {MAX_RATIO}: a zip bomb, not an X-ray)"
            )


def extract_archive(archive: str | os.PathLike, dest_dir: str | os.PathLike, *, progress: bool = True) -> Path:
    """Extract the dataset from a zip into ``dest_dir/chest_xray``, the dataset root returned.

    ``__MACOSX/`` entries are left out, and of two copies (Kaggle's nested
    ``chest_xray/chest_xray``) only the shallower one is kept. Members are CRC-checked as they
    are read, into a temporary folder renamed into place at the end, so ``dest_dir/chest_xray``
    appears complete or not at all. Raises FileExistsError if it exists already, and
    :class:`ArchiveError` if the zip is corrupt or holds no dataset (the archive is then
    deleted, so that a rerun downloads it again).
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    target = dest_dir / _EXTRACTED_NAME
    if target.exists():
        raise FileExistsError(f"{target} already exists; remove it to extract again")
    dest_dir.mkdir(parents=True, exist_ok=True)
    for stale in dest_dir.glob(PARTIAL_PREFIX + "*"):  # left by a killed extraction
        shutil.rmtree(stale, ignore_errors=True)
    partial = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=dest_dir))
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.infolist() if not (m.is_dir() or _macos_metadata(m.filename))]
            _check_members(members)
            for member in tqdm(members, desc="Extracting", unit="file", disable=not progress):
                bundle.extract(member, partial)
        root = find_dataset(partial).root
        os.replace(root, target)
    except (zipfile.BadZipFile, zlib.error, EOFError, DatasetLayoutError) as error:
        archive.unlink(missing_ok=True)
        raise ArchiveError(
            f"{archive} is not a usable dataset archive ({error}). It was deleted and nothing was "
            "extracted; run the command again to download it anew."
        ) from error
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def download_dataset(
    data_dir: str | os.PathLike | None = None,
    url: str = MENDELEY_URL,
    *,
    sha256: str | None = None,
    manifest: str | os.PathLike | pd.DataFrame | None = None,
    keep_archive: bool = False,
    progress: bool = True,
) -> VerificationReport:
    """Download, extract and verify the dataset into ``data_dir/chest_xray``; return the verification report.

    ``data_dir`` defaults to :func:`cxr_utils.data_dir`. When ``chest_xray`` exists there
    already (a finished earlier run), nothing is downloaded and it is verified. ``url`` and
    ``sha256`` are as :func:`_download_archive`'s; ``manifest`` (default the official one) is
    what the files are verified against; ``keep_archive`` keeps ``ChestXRay2017.zip`` after a
    successful extraction. Raises :class:`DownloadError` and :class:`ArchiveError` as the
    download and the extraction do.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    root = data_dir / _EXTRACTED_NAME
    if root.exists():  # extraction is atomic: an existing folder is a finished one
        print(f"{root} already exists: verifying it instead of downloading again.", file=sys.stderr, flush=True)
    else:
        archive = _download_archive(data_dir, url, sha256=sha256, progress=progress)
        extract_archive(archive, data_dir, progress=progress)
        if not keep_archive:
            archive.unlink()
    return verify_dataset(root, manifest if manifest is not None else official_manifest_path(), progress=progress)
