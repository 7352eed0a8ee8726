"""The fault suite: what a careless or hostile user did, one test per row of the issue, and what they should get.

Each test reproduces the fault as it was done (a killed download, a decompression bomb, a
corrupted JPEG, two builds at once, a full disk, an interrupted rerun ...) on synthetic files
or on copies of the real images, and checks the behaviour a user expects: nothing wrong is
used silently, nothing is lost, and every error says in one line what and where.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from filelock import FileLock

from cxr_course import cli
from cxr_course import runner as course
from cxr_course.fetch import ArchiveError, download_dataset, extract_archive
from cxr_course.verify import inspect
from cxr_utils import cache as cache_module
from cxr_utils import runs as runs_module
from cxr_utils.cache import cache_images
from cxr_utils.dataset import DatasetLayoutError, find_dataset, index_dataset
from cxr_utils.runs import finish_run, load_run

from helpers import KAGGLE_FILES, ArchiveServer, build_archive, jpeg_bytes, make_dataset, run_inputs, score_repeatedly

# ----------------------------------------------------------------------------- helpers


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small, valid JPEG whose frame header (SOF0) claims ``width`` x ``height`` pixels."""
    data = bytearray(jpeg_bytes(16, 16))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def black_png(width: int, height: int, bit_depth: int = 16) -> bytes:
    """A genuine, all-black gray PNG of ``width`` x ``height`` pixels, written row by row (never held in memory)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, parts = zlib.compressobj(9), []
    row = bytes(1 + width * bit_depth // 8)  # filter byte 0, then the pixels
    for _ in range(height):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def corrupt_middle(path: Path) -> None:
    """Flip 4 kB in the middle of a file, keeping its size and its modification time."""
    stat = path.stat()
    data = path.read_bytes()
    middle = len(data) // 2
    path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 4096]) + data[middle + 4096 :])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def small_copy(originals: Path, folder: Path, per_class: int = 6) -> Path:
    """A copy of a few real originals per split and class (official names and bytes)."""
    for source in sorted(originals.glob("*/*")):
        for path in sorted(source.glob("*.jpeg"))[:per_class]:
            target = folder / path.relative_to(originals)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return folder


def cli_lines(capsys) -> tuple[str, list[str]]:
    """The command's standard output, and the lines of its standard error that are not progress bars."""
    captured = capsys.readouterr()
    lines = re.split(r"[\r\n]+", captured.err)
    return captured.out, [line for line in lines if line.strip() and not re.search(r"\d+%\|", line)]


@pytest.fixture
def served(originals):
    payload, manifest = build_archive(originals)
    with ArchiveServer(payload) as server:
        yield server, manifest


# ----------------------------------------------------------------------------- 1. a killed extraction


def test_row01_a_half_extracted_download_is_never_taken_for_data_and_is_cleaned_up(tmp_path, monkeypatch, served):
    data = tmp_path / "data"
    make_dataset(data / ".chest_xray-partial-k1ll3d" / "chest_xray", KAGGLE_FILES)  # what a killed extraction leaves
    with pytest.raises(DatasetLayoutError, match="unfinished"):
        find_dataset(data)
    monkeypatch.delenv("CXR_DATA_DIR", raising=False)
    monkeypatch.setattr(course.cxr_utils, "data_dir", lambda: data)
    monkeypatch.setattr(course, "KAGGLE_INPUT", tmp_path / "not on Kaggle")
    with pytest.raises(course.CourseError, match="downloading is switched off"):
        course._resolve_dataset(download=False)
    server, manifest = served
    report = download_dataset(data, server.url, manifest=manifest, progress=False)
    assert report.matches_manifest and sorted(p.name for p in data.iterdir()) == ["chest_xray"]


# ----------------------------------------------------------------------------- 2. an archive that is not the dataset


def test_row02_a_download_with_an_extra_image_fails_verification(originals, tmp_path, monkeypatch, capsys):
    payload, manifest = build_archive(originals)
    intruder = next((originals / "train" / "PNEUMONIA").glob("*.jpeg"))
    buffer = io.BytesIO(payload)
    with zipfile.ZipFile(buffer, "a") as bundle:  # a PNEUMONIA image put under NORMAL
        bundle.write(intruder, f"chest_xray/train/NORMAL/{intruder.name}")
    payload = buffer.getvalue()
    manifest_path = tmp_path / "manifest.tsv"
    manifest.to_csv(manifest_path, sep="\t", header=False, index=False)
    with ArchiveServer(payload) as server:
        status = cli.main(
            ["download", "--dest", str(tmp_path / "a"), "--url", server.url, "--manifest", str(manifest_path)]
        )
        out, _ = cli_lines(capsys)
        assert status == 1 and "extra" in out
        monkeypatch.delenv("CXR_DATA_DIR", raising=False)
        monkeypatch.setattr(course.cxr_utils, "data_dir", lambda: tmp_path / "b")
        monkeypatch.setattr(course, "KAGGLE_INPUT", tmp_path / "not on Kaggle")
        monkeypatch.setattr(
            course,
            "download_dataset",
            lambda folder: download_dataset(folder, server.url, manifest=manifest, progress=False),
        )
        with pytest.raises(course.CourseError, match="failed verification"):
            course._resolve_dataset()


# ----------------------------------------------------------------------------- 3. and 4. too many pixels


def test_row03_a_decompression_bomb_is_a_problem_not_a_traceback(tmp_path, capsys):
    make_dataset(tmp_path, KAGGLE_FILES | {"train/NORMAL/IM-0099-0001.jpeg": jpeg_claiming(30000, 30000)})
    problems = index_dataset(tmp_path, progress=False).problems.set_index("path")["problem"]
    assert "30000x30000" in problems["train/NORMAL/IM-0099-0001.jpeg"]
    assert cli.main(["verify", str(tmp_path)]) == 1
    out, errors = cli_lines(capsys)
    assert "30000x30000" in out and not errors


def test_row04_a_huge_16_bit_png_is_flagged_and_never_decoded(tmp_path, monkeypatch):
    make_dataset(tmp_path, KAGGLE_FILES | {"train/NORMAL/IM-0098-0001.png": black_png(13000, 13000)})
    dataset = index_dataset(tmp_path, progress=False)
    problem = dataset.problems.set_index("path")["problem"].get("train/NORMAL/IM-0098-0001.png")
    assert problem is not None, "a 169-megapixel image was not flagged"
    from cxr_utils.dataset import MAX_PIXELS

    assert "13000x13000" in problem and f"{MAX_PIXELS / 1e6:.0f} million" in problem
    real = cache_module._decode_resized
    monkeypatch.setattr(
        cache_module, "_decode_resized", lambda p, *a, **k: real(p, *a, **k) if "0098" not in str(p) else 1 / 0
    )
    cache = cache_images(dataset, size=16, cache_dir=tmp_path / "cache", progress=False)
    assert len(cache.images) == 8


# ----------------------------------------------------------------------------- 5. a corrupted JPEG


def test_row05_a_corrupted_jpeg_is_reported_skipped_and_never_served_stale(originals, tmp_path, capsys):
    data = small_copy(originals, tmp_path / "data")
    victim = sorted((data / "train" / "NORMAL").glob("*.jpeg"))[0]
    first = cache_images(data, size=32, cache_dir=tmp_path / "cache", progress=False)
    assert first.built and len(first.images) == len(first.index)
    corrupt_middle(victim)  # same size, same modification time: only the content changed
    again = cache_images(data, size=32, cache_dir=tmp_path / "cache", progress=False)
    assert again.built, "the cache reused pixels of a file whose content changed"
    assert victim.relative_to(data).as_posix() not in set(again.index["path"])
    assert len(again.index) == len(first.index) - 1 and "left out" in capsys.readouterr().out
    assert not list((tmp_path / "cache").glob("*.partial"))
    checked = inspect(index_dataset(data, progress=False), decode=True, progress=False)  # cxr verify's decoding
    problems = checked.problems.set_index("path")["problem"]
    assert "cannot be decoded" in problems[victim.relative_to(data).as_posix()]


# ----------------------------------------------------------------------------- 6. links and unreadable folders


def test_row06_symlinked_folders_are_followed_and_unreadable_ones_reported(tmp_path, monkeypatch, capsys):
    elsewhere = make_dataset(tmp_path / "elsewhere", {k: v for k, v in KAGGLE_FILES.items() if k.startswith("test/")})
    data = make_dataset(tmp_path / "data", {k: v for k, v in KAGGLE_FILES.items() if not k.startswith("test/")})
    (data / "test").symlink_to(elsewhere / "test", target_is_directory=True)
    (data / "train" / "NORMAL" / "loop").symlink_to(data, target_is_directory=True)  # a link back up: a loop
    dataset = index_dataset(data, progress=False)
    assert len(dataset) == 8 and set(dataset.table["split"]) == {"train", "val", "test"}

    unreadable = data / "val" / "PNEUMONIA"
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    dataset = index_dataset(data, progress=False)
    assert any("unreadable" in reason for reason in dataset.skipped)
    assert cli.main(["verify", str(data)]) == 1
    out, _ = cli_lines(capsys)
    assert "unreadable" in out and "val/PNEUMONIA" in out
    monkeypatch.undo()

    import cxr_utils.dataset

    real_hash = cxr_utils.dataset.file_sha256

    def refuse(path, *args):
        if Path(path).name == "IM-0003-0001.jpeg":
            raise PermissionError(13, "Permission denied", str(path))
        return real_hash(path, *args)

    monkeypatch.setattr(cxr_utils.dataset, "file_sha256", refuse)
    assert cli.main(["verify", str(data), "--manifest"]) == 1
    out, errors = cli_lines(capsys)
    assert "IM-0003-0001.jpeg" in out and "unreadable" in out and not errors


# ----------------------------------------------------------------------------- 7. NORMAL and normal


def test_row07_case_variant_class_folders_are_an_error_naming_both(tmp_path):
    make_dataset(tmp_path, KAGGLE_FILES | {"train/normal/IM-0042-0001.jpeg": None})
    with pytest.raises(DatasetLayoutError, match=r"train/NORMAL.*train/normal|train/normal.*train/NORMAL"):
        find_dataset(tmp_path)


# ----------------------------------------------------------------------------- 8. two builds at once


def _build(data: str, cache_dir: str, queue) -> None:
    try:
        cache = cache_images(data, size=24, cache_dir=cache_dir, progress=False)
        queue.put(("ok", float(np.asarray(cache.images, dtype=np.float64).sum())))
    except BaseException as error:  # report anything, the test decides
        queue.put(("error", repr(error)))


def test_row08_concurrent_cache_builds_both_end_with_the_same_complete_cache(originals, tmp_path):
    data = small_copy(originals, tmp_path / "data", per_class=10)
    context = multiprocessing.get_context("spawn")
    for attempt in range(3):
        queue = context.Queue()
        builders = [
            context.Process(target=_build, args=(str(data), str(tmp_path / f"cache{attempt}"), queue)) for _ in range(2)
        ]
        for process in builders:
            process.start()
        results = [queue.get(timeout=300) for _ in builders]
        for process in builders:
            process.join(timeout=60)
        assert [status for status, _ in results] == ["ok", "ok"], results
        assert results[0][1] == results[1][1] and all(p.exitcode == 0 for p in builders)


# ----------------------------------------------------------------------------- 9. a full disk


def test_row09_a_full_disk_gives_one_clear_message_before_writing(originals, tmp_path, monkeypatch):
    data = small_copy(originals, tmp_path / "data", per_class=2)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(OSError, match=r"needs .* MB .* free"):
        cache_images(data, size=64, cache_dir=tmp_path / "cache", progress=False)
    assert not list((tmp_path / "cache").glob("*.npy*")) and not list((tmp_path / "cache").glob("*.json"))
    monkeypatch.undo()

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", no_space)  # the disk fills while the array is written
    with pytest.raises(OSError, match="No space left"):
        cache_images(data, size=64, cache_dir=tmp_path / "cache", progress=False)
    assert not list((tmp_path / "cache").glob("*.npy*"))


# ----------------------------------------------------------------------------- 10. an interrupted rerun


_run_inputs = run_inputs  # finish_run's inputs for 60 made-up images (helpers.py)


def test_row10_an_interrupted_rerun_keeps_the_complete_old_run(tmp_path, monkeypatch):
    folder = tmp_path / "runs" / "demo"
    index, splits, validation, test = _run_inputs(0)
    old = finish_run(folder, index, splits, validation, test, n_boot=20)
    _, _, validation_b, test_b = _run_inputs(1)
    real_write = runs_module.write_json

    def killed_at_metrics(path, content):
        if Path(path).name == "metrics.json":
            raise KeyboardInterrupt  # the kernel is stopped here
        return real_write(path, content)

    monkeypatch.setattr(runs_module, "write_json", killed_at_metrics)
    with pytest.raises(KeyboardInterrupt):
        finish_run(folder, index, splits, validation_b, test_b, n_boot=20)
    monkeypatch.undo()
    run = load_run("demo", "notebooks/03_cnn_from_scratch.ipynb", root=tmp_path / "runs")
    assert run.threshold == old["threshold"]
    np.testing.assert_allclose(run.test["score"], test)  # the old run, whole
    (folder / "predictions_test.csv").write_text((folder / "predictions_test.csv").read_text().replace("x/4", "x/9"))
    with pytest.raises(runs_module.RunFolderError, match=r"predictions_test\.csv"):
        load_run("demo", "notebooks/03_cnn_from_scratch.ipynb", root=tmp_path / "runs")


# ----------------------------------------------------------------------------- 11. broken files, one line each


def test_row11_broken_files_give_one_line_errors_naming_the_file(tmp_path, capsys):
    folder = tmp_path / "runs" / "demo"
    index, splits, validation, test = _run_inputs(0)
    finish_run(folder, index, splits, validation, test, n_boot=20)
    (folder / "threshold.json").write_text('{"threshold": 0.')  # truncated
    with pytest.raises(Exception) as failure:
        load_run("demo", "notebooks/03_cnn_from_scratch.ipynb", root=tmp_path / "runs")
    assert "threshold.json" in str(failure.value), f"the error does not name the file: {failure.value!r}"
    make_dataset(tmp_path / "data", KAGGLE_FILES)
    bad = tmp_path / "bad.tsv"
    bad.write_text("train/NORMAL/IM-0001-0001.jpeg only-two-fields\n")
    assert cli.main(["verify", str(tmp_path / "data"), "--manifest", str(bad)]) == 2
    _, errors = cli_lines(capsys)
    assert len(errors) == 1 and "bad.tsv" in errors[0]
    assert cli.main(["index", str(tmp_path / "data"), "--out", str(tmp_path / "missing" / "index.csv")]) == 2
    _, errors = cli_lines(capsys)
    assert len(errors) == 1 and "missing" in errors[0]


# ----------------------------------------------------------------------------- 12. zip bombs


def test_row12_zip_bombs_and_duplicate_members_are_refused(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for relative in KAGGLE_FILES:
            bundle.writestr(f"chest_xray/{relative}", jpeg_bytes())
        bundle.writestr("chest_xray/train/NORMAL/IM-0500-0001.jpeg", bytes(50_000_000))  # 50 MB of zeros
    with pytest.raises(ArchiveError, match="ratio"):
        extract_archive(bomb, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

    twice = tmp_path / "twice.zip"
    with zipfile.ZipFile(twice, "w") as bundle:
        for relative in KAGGLE_FILES:
            bundle.writestr(f"chest_xray/{relative}", jpeg_bytes())
        with pytest.warns(UserWarning, match="Duplicate name"):
            bundle.writestr("chest_xray/train/NORMAL/IM-0001-0001.jpeg", jpeg_bytes(41, 30))
    with pytest.raises(ArchiveError, match="twice"):
        extract_archive(twice, tmp_path / "out2", progress=False)


# ----------------------------------------------------------------------------- 13. a killed download


def test_row13_a_download_killed_with_sigkill_is_cleaned_up_by_the_next(served, tmp_path):
    server, manifest = served
    server.mode = "slow"
    manifest_path = tmp_path / "manifest.tsv"
    manifest.to_csv(manifest_path, sep="\t", header=False, index=False)
    dest = tmp_path / "data"
    command = [sys.executable, "-m", "cxr_course.cli", "download", "--dest", str(dest), "--url", server.url]
    process = subprocess.Popen(
        [*command, "--manifest", str(manifest_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while server.sent < len(server.payload) // 4 and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    server.mode = "ok"
    report = download_dataset(dest, server.url, manifest=manifest, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == ["chest_xray"] and report.matches_manifest


# ----------------------------------------------------------------------------- 14. runs made on another copy


def test_row14_a_run_made_on_another_copy_of_the_data_is_named(tmp_path):
    index, splits, validation, test = _run_inputs(0)
    finish_run(tmp_path / "runs" / "03_cnn_from_scratch", index, splits, validation, test, n_boot=20)
    run = load_run("03_cnn_from_scratch", "notebooks/03_cnn_from_scratch.ipynb", root=tmp_path / "runs")
    test_paths = index.loc[(splits == "test").to_numpy(), "path"]
    other_paths = test_paths.str.replace("x/", "y/")  # the same images in another copy, under other names
    with pytest.raises(KeyError):  # what chapter 04 did: look the other copy's paths up in the run
        run.test.set_index("path")["score"].loc[other_paths]
    np.testing.assert_array_equal(run.scores("test", test_paths), test)
    with pytest.raises(runs_module.RunFolderError, match=r"another copy.*execute notebooks/03_cnn_from_scratch\.ipynb"):
        run.scores("test", other_paths)


# ----------------------------------------------------------------------------- and: a rerun reloading old weights


def test_rerunning_a_finished_training_never_loads_the_old_runs_weights(tmp_path):
    import keras

    from cxr_utils.models import compile_binary
    from cxr_utils.training import CachedBatches, fit_with_callbacks, read_history

    from helpers import build_cnn

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 16, 16)).astype(np.uint8)
    labels = (np.arange(64) % 2).astype("float32")
    images[labels == 1, 4:12, 4:12] = 255  # a learnable square
    train, validation = CachedBatches(images, labels, 16, shuffle=True), CachedBatches(images, labels, 32)
    keras.utils.set_random_seed(0)
    first = compile_binary(build_cnn(16, filters=(4, 8), dropout=0.0))
    fit_with_callbacks(first, train, validation, run_dir=tmp_path, epochs=4, verbose=0)
    keras.utils.set_random_seed(1)
    second = compile_binary(build_cnn(16, filters=(4, 8), dropout=0.0), learning_rate=0.0)  # cannot improve
    own = [w.numpy().copy() for w in second.trainable_weights]
    history = fit_with_callbacks(second, train, validation, run_dir=tmp_path, epochs=1, verbose=0)
    assert len(history) == 1, "the second run's history holds the first run's epochs"
    for before, after in zip(own, (w.numpy() for w in second.trainable_weights)):
        np.testing.assert_allclose(before, after, atol=1e-6)  # its own (untrained) weights, not the first run's
    assert len(read_history(tmp_path)) == 1


def _handful(originals: Path, per_class: int = 8, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``2 * per_class`` real training images (gray, ``size`` x ``size``) and their labels (1 = PNEUMONIA)."""
    from cxr_utils.cache import load_grayscale, resize_image

    images, labels = [], []
    for label, folder in enumerate(("NORMAL", "PNEUMONIA")):
        for path in sorted((originals / "train" / folder).glob("*.jpeg"))[:per_class]:
            images.append(resize_image(load_grayscale(path), size))
            labels.append(label)
    return np.stack(images), np.array(labels, dtype="float32")


def _exercise_run(originals: Path, root: Path, seed: int, *, replace: bool):
    """What an exercise solution does: its own run folder, then ``fit`` on a tiny CNN, validation only."""
    import keras

    from cxr_utils.models import compile_binary
    from cxr_utils.runs import run_folder
    from cxr_utils.training import CachedBatches, fit_with_callbacks, predict_scores, set_seeds

    from helpers import build_cnn

    x, y = _handful(originals)
    set_seeds(seed)
    model = compile_binary(build_cnn(32, filters=(4 + 4 * seed,), dropout=0.0, name=f"seed{seed}"))
    folder = run_folder("03_cnn_from_scratch_exercise_demo", root=root, replace=replace)
    order = np.random.default_rng(seed).permutation(len(x))  # another seed: other training images
    train, validation = order[:10], order[10:]
    fit_with_callbacks(
        model,
        CachedBatches(x[train], y[train], 5, shuffle=True, seed=seed),
        CachedBatches(x[validation], y[validation], 8),
        run_dir=folder,
        epochs=2,
        patience=5,
        verbose=0,
    )
    return folder, model, predict_scores(model, x[validation]), keras


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # loading into the wrong model, on purpose
def test_row15_rerunning_an_exercise_scores_the_second_model_not_the_first(originals, tmp_path, capsys):
    """Two runs of an exercise in one folder (run_folder(..., replace=True) + fit), with other seeds and data."""
    first_folder, first, _, keras = _exercise_run(originals, tmp_path, seed=0, replace=True)
    first_weights = (first_folder / "best.weights.h5").read_bytes()
    second_folder, second, _, _ = _exercise_run(originals, tmp_path, seed=1, replace=True)
    assert second_folder == first_folder
    assert "Replaced the earlier run folder" in capsys.readouterr().out
    assert sorted(p.name for p in second_folder.iterdir()) == ["best.weights.h5", "history.csv"]  # no previous.*
    assert (second_folder / "best.weights.h5").read_bytes() != first_weights
    # the saved best weights are the second model's: they load into its architecture, not the first's
    reloaded = keras.models.clone_model(second)
    reloaded.load_weights(second_folder / "best.weights.h5")
    for saved, kept in zip(reloaded.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(saved, kept)
    with pytest.raises(ValueError):
        keras.models.clone_model(first).load_weights(second_folder / "best.weights.h5")
    assert len(pd.read_csv(second_folder / "history.csv")) == 2  # its own two epochs, not four


def test_row16_without_replace_a_finished_exercise_run_is_set_aside_never_scored(originals, tmp_path):
    """fit's own guard: a finished run's log and weights become previous.*, and the new model starts afresh."""
    folder, _, _, _ = _exercise_run(originals, tmp_path, seed=0, replace=True)
    first_weights = (folder / "best.weights.h5").read_bytes()
    first_history = (folder / "history.csv").read_text()
    _, second, _, _ = _exercise_run(originals, tmp_path, seed=0, replace=False)  # same architecture: loadable
    assert (folder / "previous.best.weights.h5").read_bytes() == first_weights
    assert (folder / "previous.history.csv").read_text() == first_history
    assert len(pd.read_csv(folder / "history.csv")) == 2  # the new run logged its own epochs only
    import keras

    reloaded = keras.models.clone_model(second)
    reloaded.load_weights(folder / "best.weights.h5")
    for saved, kept in zip(reloaded.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(saved, kept)


# ============================================================================= issue 20: two runs at once, odd inputs


def _metrics_frame(value: float) -> pd.DataFrame:
    """A bootstrap frame (index metric, column ``value``) as the ledger reads it."""
    return pd.DataFrame({"value": [value] * 5}, index=["accuracy", "sensitivity", "specificity", "roc_auc", "pr_auc"])


def _run_together(jobs: list, timeout: float = 120) -> list:
    """Run every ``(function, args)`` in its own thread, all released at once; their results or errors, in order."""
    import threading

    start, results = threading.Barrier(len(jobs)), [None] * len(jobs)

    def work(number, function, args):
        start.wait()
        try:
            results[number] = ("ok", function(*args))
        except BaseException as error:  # reported, the test decides
            results[number] = ("error", f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=work, args=(n, f, a)) for n, (f, a) in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results


def test_issue20_row1_concurrent_scorings_into_a_new_ledger_leave_one_header_and_every_row(
    tmp_path, capsys, monkeypatch
):
    from cxr_utils import records as ledger_module
    from cxr_utils.records import LEDGER_FILE, append_scoring, read_ledger

    monkeypatch.setattr(ledger_module, "_git_state", lambda: ("0" * 40, False))  # no git subprocesses: more appends

    def score_many(worker: int, runs: Path) -> None:
        for _ in range(20):
            append_scoring(runs, f"w{worker}", {"worker": worker}, _metrics_frame(0.5), threshold=0.5, n_test=624)

    for attempt in range(5):  # the issue's 16 processes x 20 scorings, 5 tries (threads here: the same race)
        runs = tmp_path / f"runs{attempt}"
        results = _run_together([(score_many, (worker, runs)) for worker in range(16)])
        assert all(status == "ok" for status, _ in results), results
        lines = (runs / LEDGER_FILE).read_text().splitlines()
        assert sum(line.startswith("time_utc,") for line in lines) == 1, f"try {attempt}: a second header line"
        ledger = read_ledger(runs)
        assert len(ledger) == 16 * 20 and ledger["n_test"].dtype.kind == "i" and ledger["roc_auc"].dtype.kind == "f"
        assert cli.main(["ledger", "--runs", str(runs)]) == 0
        assert "320 time(s)" in capsys.readouterr().out


def test_issue20_row2_concurrent_finishes_of_one_run_folder_leave_one_complete_run(tmp_path, monkeypatch):
    folder = tmp_path / "runs" / "03_cnn_from_scratch"
    inputs = [_run_inputs(seed) for seed in range(4)]  # four different runs of one chapter
    for attempt in range(3):
        finish = partial(finish_run, n_boot=20)
        results = _run_together([(finish, (folder, *inputs[seed])) for seed in range(4)])
        errors = [message for status, message in results if status == "error"]
        assert not errors, errors  # each waits for the one before, then replaces it
        run = load_run(folder.name, "notebooks/03_cnn_from_scratch.ipynb", root=tmp_path / "runs")
        assert any(np.allclose(run.test["score"], test) for *_, test in inputs), f"try {attempt}: no single run"
        assert sorted(p.name for p in folder.iterdir()) == sorted(runs_module.RUN_FILES)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    ledger_before = (tmp_path / "runs" / "test_ledger.csv").read_text()
    monkeypatch.setattr(runs_module, "_FINISH_TIMEOUT_S", 0.5)
    stuck = FileLock(tmp_path / "runs" / ".03_cnn_from_scratch.finishing.lock")  # a finish that does not end
    with stuck, pytest.raises(runs_module.RunFolderError) as refused:
        finish_run(folder, *inputs[0], n_boot=20)
    assert "another process" in str(refused.value) and "\n" not in str(refused.value)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # untouched, and not scored
    assert (tmp_path / "runs" / "test_ledger.csv").read_text() == ledger_before


def test_issue20_row3_class_folders_without_images_are_one_line_naming_the_folder(tmp_path, capsys):
    only_other_files = {
        f"{split}/{label}/{name}": b"\x00" * 8
        for split in ("train", "test")
        for label in ("NORMAL", "PNEUMONIA")
        for name in (".DS_Store", "IM-0001-0001.dcm", "IM-0002-0001.bmp")
    }
    data = make_dataset(tmp_path / "data", only_other_files)
    for command in (["index", str(data)], ["verify", str(data)]):
        assert cli.main(command) == 2, command
        _, errors = cli_lines(capsys)
        assert len(errors) == 1 and str(data) in errors[0] and "no image" in errors[0], errors
        assert ".dcm" in errors[0] and "12" in errors[0]  # what it found instead
    with pytest.raises(ValueError, match=re.escape(str(data))):
        cache_images(data, size=16, cache_dir=tmp_path / "cache", progress=False)


def test_issue20_row4_a_copy_of_empty_placeholders_is_reported_then_one_line(tmp_path, capsys):
    data = make_dataset(tmp_path / "data", dict.fromkeys(KAGGLE_FILES, b""))  # cloud "online-only" placeholders
    assert cli.main(["index", str(data), "--out", str(tmp_path / "index.csv")]) == 2
    out, errors = cli_lines(capsys)
    assert "8 images" in out and out.count("empty file (0 bytes)") == 8  # what it could read is still reported
    assert len(errors) == 1 and str(data) in errors[0] and "0 bytes" in errors[0], errors
    assert len(pd.read_csv(tmp_path / "index.csv")) == 8
    with pytest.raises(ValueError, match=re.escape(str(data))):
        cache_images(data, size=16, cache_dir=tmp_path / "cache", progress=False)


def test_issue20_row5_a_manifest_saved_with_a_byte_order_mark_is_read(tmp_path, capsys):
    from cxr_utils.dataset import file_sha256

    data = make_dataset(tmp_path / "data", KAGGLE_FILES)
    rows = [f"{path}\t{file_sha256(data / path)}\t{(data / path).stat().st_size}" for path in sorted(KAGGLE_FILES)]
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8-sig")  # as Excel and Windows editors save TSV
    assert cli.main(["verify", str(data), "--manifest", str(manifest)]) == 1  # 8 images: not the official counts
    out, errors = cli_lines(capsys)
    assert not errors and re.search(r"misplaced\s+0", out) and re.search(r"missing\s+0", out), out
    from cxr_course.verify import verify_dataset

    assert verify_dataset(data, manifest, progress=False).matches_manifest


def test_issue20_row6_a_file_name_that_is_not_utf8_is_a_problem_of_that_file(tmp_path, capsys):
    data = make_dataset(tmp_path / "data", KAGGLE_FILES)
    latin1 = os.fsdecode(b"IM-0050-0001-caf\xe9.jpeg")  # what unzip leaves of a Latin-1 name: not UTF-8
    (data / "train" / "NORMAL" / latin1).write_bytes(jpeg_bytes())
    cache = cache_images(data, size=16, cache_dir=tmp_path / "cache", progress=False)
    assert len(cache.images) == 8 and "caf\\xe9" in capsys.readouterr().out  # left out, with a note naming it
    problems = index_dataset(data, progress=False).problems.set_index("path")["problem"]
    assert problems.to_dict() == {
        "train/NORMAL/IM-0050-0001-caf\\xe9.jpeg": "file name is not valid UTF-8 (unzipped from an archive made "
        "with another encoding?): rename it"
    }
    assert cli.main(["index", str(data), "--out", str(tmp_path / "index.csv")]) == 0
    out, errors = cli_lines(capsys)
    assert not errors and "not valid UTF-8" in out and len(pd.read_csv(tmp_path / "index.csv")) == 9


def test_issue20_row7_a_cache_whose_metadata_cannot_be_read_is_rebuilt_with_a_note(tmp_path, capsys):
    data = make_dataset(tmp_path / "data", KAGGLE_FILES)
    first = cache_images(data, size=16, cache_dir=tmp_path / "cache", progress=False)
    meta = first.path.with_suffix(".json")
    for damaged in ("", '{"format": 4, "n": '):  # killed between open and write; cut short
        meta.write_text(damaged)
        capsys.readouterr()
        again = cache_images(data, size=16, cache_dir=tmp_path / "cache", progress=False)
        note = capsys.readouterr().out
        assert again.built and str(meta) in note and "rebuil" in note, note
        np.testing.assert_array_equal(again.images, first.images)
    assert not cache_images(data, size=16, cache_dir=tmp_path / "cache", progress=False).built


def test_issue20_row8_bytes_after_the_end_of_image_marker_are_not_truncation(tmp_path, capsys):
    from cxr_course.verify import decode_problem, find_integrity_problem

    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    buffer = io.BytesIO()
    from PIL import Image

    Image.fromarray(noise, "L").save(buffer, format="JPEG")
    plain = buffer.getvalue()
    trailer = b"SEFH" + bytes(range(256)) * 8  # a phone's or a PACS viewer's data after the image
    thumbnail = b"\xff\xe2" + struct.pack(">H", len(jpeg_bytes(8, 8)) + 2) + jpeg_bytes(8, 8)  # FF D9 inside
    with_thumbnail = plain[:2] + thumbnail + plain[2:]
    data = make_dataset(
        tmp_path / "data",
        KAGGLE_FILES
        | {
            "train/NORMAL/IM-0060-0001.jpeg": plain + trailer,
            "train/NORMAL/IM-0061-0001.jpeg": with_thumbnail + trailer,
            "train/NORMAL/IM-0062-0001.jpeg": with_thumbnail[: len(with_thumbnail) * 2 // 3],  # really cut short
        },
    )
    problems = inspect(index_dataset(data, progress=False), progress=False).problems.set_index("path")["problem"]
    assert problems.to_dict() == {
        "train/NORMAL/IM-0062-0001.jpeg": "truncated: the JPEG end-of-image marker (FF D9) is missing"
    }
    for name in ("IM-0060-0001.jpeg", "IM-0061-0001.jpeg"):
        assert decode_problem(data / "train/NORMAL" / name) is None  # it decodes: it is not truncated
        assert find_integrity_problem(data / "train/NORMAL" / name, "JPEG") is None
    cache = cache_images(data, size=16, cache_dir=tmp_path / "cache", progress=False)
    assert len(cache.images) == 10 and "IM-0060" not in capsys.readouterr().out


def test_issue20_row9_a_read_only_cache_folder_is_one_line_before_any_work(tmp_path, monkeypatch):
    import errno

    data = make_dataset(tmp_path / "data", KAGGLE_FILES)
    read_only = tmp_path / "mounted read-only"
    read_only.mkdir()
    real_open, work = os.open, []

    def open_on_a_read_only_mount(path, flags, *args, **kwargs):
        if str(path).startswith(str(read_only)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_on_a_read_only_mount)
    real_hash, real_index = cache_module.file_sha256, cache_module.index_dataset
    monkeypatch.setattr(cache_module, "file_sha256", lambda *a: work.append("hash") or real_hash(*a))
    monkeypatch.setattr(cache_module, "index_dataset", lambda *a, **k: work.append("index") or real_index(*a, **k))
    with pytest.raises(OSError, match="Read-only file system") as refused:
        cache_images(data, size=16, cache_dir=read_only, progress=False)
    assert not work, f"the cache folder was checked only after: {sorted(set(work))}"
    message = cli._one_line(refused.value)
    assert str(read_only) in message and "CXR_CACHE_DIR" in message, message


def _scoring_inputs(index: pd.DataFrame, seed: int = 0):
    """``finish_run``'s inputs for an index of a whole copy: its test rows, 100 validation rows, made-up scores."""
    splits = pd.Series(np.where(index["split"] == "test", "test", "train"))
    splits[splits.index[splits == "train"][::40][:100]] = "validation"
    rng = np.random.default_rng(seed)
    scores = np.clip((index["label"] == "PNEUMONIA").to_numpy() * 0.3 + rng.uniform(0, 0.7, len(index)), 0, 1)
    return index, splits, scores[(splits == "validation").to_numpy()], scores[(splits == "test").to_numpy()]


def test_issue20_row10_the_ledger_counts_scorings_of_the_official_test_split_apart(resized_224, tmp_path, capsys):
    from cxr_course.runner import _write_summary
    from cxr_utils.records import read_ledger

    runs = tmp_path / "runs"
    runs.mkdir()
    old_header = "time_utc,git_commit,git_dirty,run,config_hash,seed,n_test,threshold,accuracy,sensitivity,"
    (runs / "test_ledger.csv").write_text(  # a ledger written before it recorded which images were scored
        old_header + "specificity,roc_auc,pr_auc\r\n"
        "2025-01-01T00:00:00+00:00,abc,False,03_cnn_from_scratch,0123456789ab,0,624,0.5,0.9,0.9,0.9,0.95,0.96\r\n"
    )
    official = index_dataset(resized_224, read_headers=False, progress=False).table  # 224-px copy: official paths
    parameters = {"epochs": 2, "fast": True, "seed": 0}
    finish_run(runs / "03_cnn_from_scratch", *_scoring_inputs(official), n_boot=20, parameters=parameters)
    rearranged = official.copy()  # test files moved between the class folders
    moved = rearranged.index[rearranged["split"] == "test"][::50]
    rearranged.loc[moved, "label"] = np.where(rearranged.loc[moved, "label"] == "NORMAL", "PNEUMONIA", "NORMAL")
    rearranged.loc[moved, "path"] = "test/" + rearranged.loc[moved, "label"] + "/" + rearranged.loc[moved, "name"]
    for chapter in ("03_cnn_from_scratch_fast", "04_transfer_learning_fast", "06_domain_shift_prior_fast"):
        finish_run(runs / chapter, *_scoring_inputs(rearranged), n_boot=20, parameters={**parameters, "run": chapter})

    assert cli.main(["ledger", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "the official test split 1 time(s), for 1 configuration(s); other test images" in out, out
    assert "moved between the class folders) 3 time(s), for 3; unknown test images" in out
    ledger = read_ledger(runs)
    assert len(ledger) == 5 and ledger["n_test"].dtype.kind == "i"
    assert ledger["official_test_paths"].tolist()[1:] == [True, False, False, False]
    assert pd.isna(ledger.loc[0, "official_test_paths"]) and pd.isna(ledger.loc[0, "test_fingerprint"])
    assert ledger.loc[1, "test_fingerprint"] != ledger.loc[2, "test_fingerprint"] == ledger.loc[4, "test_fingerprint"]
    _, summary = _write_summary([], tmp_path / "build", data_dir="d", fast=True, runs_dir=runs)
    counts = __import__("json").loads(summary.read_text())["test_ledger"]
    assert counts["scorings"] == 5 and counts["by_test_images"]["official"] == {"scorings": 1, "configurations": 1}
    assert "the official test split 1 time(s)" in (tmp_path / "build" / "summary.md").read_text()


def test_issue20_concurrency_soak_processes_scoring_and_finishing_at_once(tmp_path, capsys):
    """8 processes x 10 scorings into a fresh ledger, and 3 processes finishing one run folder, all at once."""
    from cxr_utils.records import LEDGER_FILE, read_ledger

    # forkserver: one process imports the package once, each worker is a fork of it (spawn where it is missing)
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["helpers", "cxr_utils.runs"])
    scorers, scorings, finishers = 8, 10, 3
    for attempt in range(2):
        runs = tmp_path / f"runs{attempt}"
        jobs = [(str(runs / f"scorer{n}"), n, scorings, False) for n in range(scorers)]
        jobs += [(str(runs / "03_cnn_from_scratch"), 100 + n, 1, True) for n in range(finishers)]
        start = context.Barrier(len(jobs))
        processes = [
            context.Process(target=score_repeatedly, args=(*job[:3], start), kwargs={"whole_run": job[3]})
            for job in jobs
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=240)
        assert [p.exitcode for p in processes] == [0] * len(jobs), f"try {attempt}: a process failed (see stderr)"
        lines = (runs / LEDGER_FILE).read_text().splitlines()
        written = scorers * scorings + finishers
        assert sum(line.startswith("time_utc,") for line in lines) == 1 and len(lines) == 1 + written
        ledger = read_ledger(runs)
        assert ledger["run"].value_counts().to_dict() == {
            **{f"scorer{n}": scorings for n in range(scorers)},
            "03_cnn_from_scratch": finishers,
        }
        assert cli.main(["ledger", "--runs", str(runs)]) == 0  # seeds of one configuration: one configuration
        assert f"scored {written} time(s) on this machine, for 1 distinct configuration" in capsys.readouterr().out
        run = load_run("03_cnn_from_scratch", "notebooks/03_cnn_from_scratch.ipynb", root=runs)  # one complete run
        assert run.config["parameters"]["seed"] in {100 + n for n in range(finishers)}
        np.testing.assert_array_equal(run.test["score"], run_inputs(run.config["parameters"]["seed"])[3])
        with capsys.disabled():
            print(
                f"\nsoak try {attempt}: {len(jobs)} processes, {written} ledger rows written, {len(ledger)} read back"
            )
