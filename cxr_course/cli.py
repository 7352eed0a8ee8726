"""The ``cxr`` command line: the course's long jobs without a notebook.

``cxr index ROOT``      index a dataset copy (sizes and modes from headers, problems)
``cxr verify ROOT``     official counts per split and class; ``--manifest`` compares hashes
``cxr audit [ROOT]``    patient ids shared between splits and byte-identical files
``cxr download``        fetch, extract and verify ChestXRay2017.zip into ``data/``
``cxr course``          find or download the data, verify it, execute every notebook
``cxr ledger``          every scoring of a test split on this machine, the official one counted apart
``cxr card RUN``        a finished run's model card, ``model_card.md`` beside its model (chapters 03 and 04)

Exit status: 0 on success, 1 when a verification or a download fails, 2 on bad input (a
missing or unreadable file, a malformed manifest or run folder): every error is one line
that names the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from cxr_utils import downloads_allowed

__all__ = ["main"]


def _manifest_argument(value: str | None) -> Path | None:
    if value is None:
        return None
    from cxr_utils.records import official_manifest_path

    return official_manifest_path() if value == "official" else Path(value)


def _cmd_index(args: argparse.Namespace) -> int:
    from cxr_utils.dataset import index_dataset

    from .verify import inspect

    out = _output_path(args.out)
    dataset = index_dataset(args.root, read_headers=not args.no_headers, sha256=args.sha256)
    if not args.no_headers:  # truncated files too, and with --decode every image decoded
        dataset = inspect(dataset, decode=args.decode)
    index = dataset.table
    print(f"{len(index)} images in {dataset.root} ({dataset.layout} layout)")
    print(pd.crosstab(index["split"], index["label"], margins=True, margins_name="total").to_string())
    if "mode" in index:
        modes = index["mode"].fillna("unreadable").value_counts()
        print("modes: " + ", ".join(f"{mode} {count}" for mode, count in modes.items()))
        if index["width"].notna().any():
            width, height = int(index["width"].median()), int(index["height"].median())
            print(f"median size: {width} x {height} pixels (width x height)")
        else:
            print("median size: none (no image header could be read)")
    problems = dataset.problems
    print(f"problems: {len(problems)}")
    if not problems.empty:
        print(problems.to_string(index=False))
    for reason, count in sorted(dataset.skipped_counts.items()):
        print(f"skipped: {count} file(s), {reason}")
    for copy in dataset.ignored_copies:
        print(f"ignored duplicate copy: {copy}")
    if out:
        index.to_csv(out, index=False)
        print(f"index written to {out}")
    if dataset.unusable:
        raise ValueError(dataset.unusable)
    return 0


def _output_path(value: str | None) -> Path | None:
    """An output file's path, checked before the work starts: its folder must exist."""
    if value is None:
        return None
    path = Path(value)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    return path


def _cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify_dataset

    json_path = _output_path(args.json)
    report = verify_dataset(args.root, _manifest_argument(args.manifest), decode=not args.no_decode)
    print(report)
    if json_path:
        json_path.write_text(report.to_json() + "\n", encoding="utf-8")
        print(f"machine-readable result written to {args.json}")
    return 0 if report.ok else 1


def _cmd_audit(args: argparse.Namespace) -> int:
    from cxr_utils.dataset import index_dataset
    from cxr_utils.explore import duplicate_files, shared_patients
    from cxr_utils.records import index_manifest

    if args.root:
        dataset = index_dataset(args.root, read_headers=False, sha256=True)
        index, source = dataset.table, str(dataset.root)
    else:
        manifest = _manifest_argument(args.manifest or "official")
        index = index_manifest(manifest)
        source = f"manifest {manifest}"
    unparsed = index[index["patient_id"].isna()]
    shared = shared_patients(index)
    duplicates = duplicate_files(index)
    print(f"{len(index)} file names from {source}")
    print(f"names without a patient id: {len(unparsed)}")
    for path in unparsed["path"]:
        print(f"  {path}")
    print(f"patient ids: {index['patient_id'].nunique()}; in more than one split: {len(shared)}")
    if not shared.empty:
        print(shared.groupby("splits").size().rename("patient ids").to_string())
        print(shared.to_string(index=False, max_rows=args.max_rows))
    groups = duplicates["group"].nunique() if not duplicates.empty else 0
    cross = duplicates.loc[duplicates["cross_split"], "group"].nunique() if not duplicates.empty else 0
    patients = duplicates.loc[duplicates["cross_patient"], "group"].nunique() if not duplicates.empty else 0
    print(
        f"byte-identical files: {len(duplicates)} files in {groups} groups "
        f"({cross} groups span two splits, {patients} span two patient ids)"
    )
    if not duplicates.empty:
        print(duplicates.drop(columns="sha256").to_string(index=False, max_rows=args.max_rows))
    if args.json:
        result = {
            "source": source,
            "files": len(index),
            "unparsed": unparsed["path"].tolist(),
            "shared_patients": shared.to_dict(orient="records"),
            "duplicates": duplicates.to_dict(orient="records"),
        }
        Path(args.json).write_text(json.dumps(result, indent=2, default=int) + "\n", encoding="utf-8")
        print(f"machine-readable result written to {args.json}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .fetch import download_dataset

    report = download_dataset(
        args.dest,
        args.url,
        sha256=args.sha256,
        manifest=_manifest_argument(args.manifest),
        keep_archive=args.keep_archive,
    )
    print(report)
    return 0 if report.matches_manifest else 1


def _cmd_course(args: argparse.Namespace) -> int:
    from .runner import run_course

    allowed = downloads_allowed() and not args.no_download
    runs = run_course(args.data, download=allowed, fast=True if args.fast else None)
    total = sum(run.seconds for run in runs)
    print(f"Course done: {len(runs)} notebook(s) executed in {total:.0f} s.")
    return 0


def _cmd_ledger(args: argparse.Namespace) -> int:
    from cxr_utils.records import read_ledger, scoring_counts, summarise

    ledger = read_ledger(args.runs)
    if not ledger.empty:
        with pd.option_context("display.width", 250, "display.max_columns", None):
            print(ledger.to_string(index=False))
        test_images = ledger["official_test_paths"].map({True: "official", False: "other"}).fillna("unknown")
        by_configuration = ledger.groupby([test_images.rename("test images"), "run", "config_hash"]).size()
        print()
        print(by_configuration.rename("scorings").to_frame().to_string())
        print()
        print(scoring_counts(ledger).rename_axis("test images").to_string())
    print(summarise(ledger))
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from .model_card import write_model_card

    print(f"model card written to {write_model_card(args.name, args.runs)}")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cxr``."""
    parser = argparse.ArgumentParser(prog="cxr", description="Pediatric chest X-ray course tools.")
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="index a dataset copy")
    index.add_argument("root", help="dataset root or a folder above it")
    index.add_argument("--sha256", action="store_true", help="also hash every file")
    index.add_argument("--no-headers", action="store_true", help="names only: do not open the files")
    index.add_argument("--decode", action="store_true", help="also decode every image (finds damaged bytes)")
    index.add_argument("--out", help="write the index as CSV")
    index.set_defaults(run=_cmd_index)

    verify = commands.add_parser("verify", help="check counts (and hashes) against the official dataset")
    verify.add_argument("root", help="dataset root or a folder above it")
    verify.add_argument(
        "--manifest",
        nargs="?",
        const="official",
        default=None,
        help="compare files with a manifest (path<TAB>sha256<TAB>bytes); without a value, the official one",
    )
    verify.add_argument("--json", help="also write the result as JSON to this file")
    verify.add_argument(
        "--no-decode", action="store_true", help="do not decode the images (faster; damaged bytes go unnoticed)"
    )
    verify.set_defaults(run=_cmd_verify)

    audit = commands.add_parser("audit", help="patients shared between splits, identical files")
    audit.add_argument("root", nargs="?", help="dataset copy to hash (default: the official manifest's names)")
    audit.add_argument("--manifest", help="manifest to read instead of the official one")
    audit.add_argument("--json", help="also write the result as JSON to this file")
    audit.add_argument("--max-rows", type=int, default=20, help="rows shown per table (default 20)")
    audit.set_defaults(run=_cmd_audit)

    download = commands.add_parser("download", help="download, extract and verify ChestXRay2017.zip")
    download.add_argument("--dest", type=Path, default=None, help="data folder (default: $CXR_DATA_DIR or data/)")
    download.add_argument("--url", default=None, help="archive URL (default: Mendeley Data)")
    download.add_argument("--sha256", help="expected SHA-256 of the archive")
    download.add_argument("--manifest", help="verify against this manifest (default: the official one)")
    download.add_argument("--keep-archive", action="store_true", help="keep the zip after extracting")
    download.set_defaults(run=_cmd_download)

    course = commands.add_parser("course", help="run the whole course")
    course.add_argument("--data", type=Path, default=None, help="dataset folder (default: $CXR_DATA_DIR or data/)")
    course.add_argument("--no-download", action="store_true", help="never download (also CXR_NO_DOWNLOAD=1)")
    course.add_argument("--fast", action="store_true", help="fast mode, as CXR_FAST=1")
    course.set_defaults(run=_cmd_course)

    ledger = commands.add_parser(
        "ledger", help="every scoring of a test split, the official one counted apart (runs/test_ledger.csv)"
    )
    ledger.add_argument("--runs", type=Path, default=None, help="the runs folder (default: the project's runs/)")
    ledger.set_defaults(run=_cmd_ledger)

    card = commands.add_parser("card", help="write a finished run's model card (chapters 03 and 04)")
    card.add_argument("name", metavar="RUN", help="the run's folder, e.g. 03_cnn_from_scratch (_fast in fast mode)")
    card.add_argument("--runs", type=Path, default=None, help="the runs folder (default: the project's runs/)")
    card.set_defaults(run=_cmd_card)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cxr``; returns the exit status."""
    args = _build_parser().parse_args(argv)
    if getattr(args, "url", "unset") is None:
        from .fetch import MENDELEY_URL

        args.url = MENDELEY_URL
    from .fetch import ArchiveError, DownloadError
    from .runner import CourseError

    try:
        return args.run(args)
    except (CourseError, DownloadError, ArchiveError) as error:
        print(f"cxr {args.command}: {_one_line(error)}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as error:  # missing, unreadable or malformed input (DatasetLayoutError too)
        print(f"cxr {args.command}: {_one_line(error)}", file=sys.stderr)
        return 2


def _one_line(error: BaseException) -> str:
    """An error as one line; an OSError names its file."""
    text = str(error)
    if isinstance(error, OSError) and error.filename and str(error.filename) not in text:
        text = f"{error.filename}: {error.strerror or text}"
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
