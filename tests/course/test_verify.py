"""cxr verify: copies against the official counts and a manifest of hashes, and damaged files: synthetic, then real."""

import shutil

import pytest

from cxr_course.verify import inspect, verify_dataset
from cxr_utils.dataset import OFFICIAL_COUNTS, index_dataset
from cxr_utils.records import read_manifest

from helpers import KAGGLE_FILES, jpeg_bytes, make_dataset


def test_verify_against_manifest_finds_missing_extra_altered_misplaced(tmp_path):
    make_dataset(tmp_path, KAGGLE_FILES)
    manifest = index_dataset(tmp_path, sha256=True, progress=False).table[["path", "sha256", "bytes"]]
    (tmp_path / "train/NORMAL/IM-0002-0001.jpeg").unlink()  # missing
    make_dataset(tmp_path, {"train/NORMAL/IM-0099-0001.jpeg": None})  # extra
    (tmp_path / "test/NORMAL/IM-0003-0001.jpeg").write_bytes(jpeg_bytes(41, 30))  # altered
    shutil.move(tmp_path / "val/NORMAL/NORMAL2-IM-1427-0001.jpeg", tmp_path / "train/NORMAL/")  # misplaced
    report = verify_dataset(tmp_path, manifest, progress=False)
    assert report.missing == ["train/NORMAL/IM-0002-0001.jpeg"]
    assert report.extra == ["train/NORMAL/IM-0099-0001.jpeg"]
    assert report.altered == ["test/NORMAL/IM-0003-0001.jpeg"]
    assert report.misplaced == ["train/NORMAL/NORMAL2-IM-1427-0001.jpeg"]
    assert not report.ok
    result = report.to_dict()
    assert result["altered"] == ["test/NORMAL/IM-0003-0001.jpeg"] and result["ok"] is False


def test_verify_mendeley_copy_against_kaggle_manifest(tmp_path):
    make_dataset(tmp_path, KAGGLE_FILES)
    manifest = index_dataset(tmp_path, sha256=True, progress=False).table[["path", "sha256", "bytes"]]
    for label in ("NORMAL", "PNEUMONIA"):
        for path in (tmp_path / "val" / label).iterdir():
            shutil.move(path, tmp_path / "train" / label / path.name)
    shutil.rmtree(tmp_path / "val")
    report = verify_dataset(tmp_path, manifest, progress=False)
    assert report.layout == "mendeley"
    assert (report.missing, report.extra, report.altered, report.misplaced) == ([], [], [], [])
    assert list(report.counts["split"]) == ["train", "train", "test", "test"]


def test_read_manifest_rejects_malformed_lines(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("train/NORMAL/a.jpeg\tabc\t12\ntrain/NORMAL/b.jpeg abc 12\n")
    with pytest.raises(ValueError, match=r"m\.tsv:2"):
        read_manifest(path)


def test_verify_an_index_already_built_reads_no_header_again(tmp_path, monkeypatch):
    import cxr_utils.dataset

    make_dataset(tmp_path, KAGGLE_FILES)
    manifest = index_dataset(tmp_path, sha256=True, progress=False).table[["path", "sha256", "bytes"]]
    expected = str(verify_dataset(tmp_path, manifest, progress=False))
    dataset = index_dataset(tmp_path, progress=False)  # headers, no hashes

    def refuse(*args):
        raise AssertionError("a header was read twice")

    monkeypatch.setattr(cxr_utils.dataset, "_read_header", refuse)
    report = verify_dataset(dataset, manifest, progress=False)  # hashes what the index lacks
    assert report.root == str(tmp_path) and len(report.problems) == 0
    assert (report.missing, report.extra, report.altered, report.misplaced) == ([], [], [], [])
    assert str(report) == expected


def test_copy_with_truncated_and_zero_byte_files_lists_both(originals, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(originals, copy)
    truncated = copy / "test/NORMAL/IM-0001-0001.jpeg"
    truncated.write_bytes(truncated.read_bytes()[:50_000])
    empty = copy / "train/PNEUMONIA"
    empty = sorted(empty.iterdir())[0]
    empty.write_bytes(b"")
    dataset = index_dataset(copy, progress=False)
    assert len(dataset) == 416
    problems = inspect(dataset, progress=False).problems.set_index("path")["problem"]
    assert problems.to_dict() == {
        "test/NORMAL/IM-0001-0001.jpeg": "truncated: the JPEG end-of-image marker (FF D9) is missing",
        f"train/PNEUMONIA/{empty.name}": "empty file (0 bytes)",
    }
    report = verify_dataset(copy, read_manifest(), progress=False)
    assert sorted(report.altered) == sorted(problems.index)
    assert len(report.problems) == 2


def test_verify_224_copy_has_all_official_counts(resized_224):
    report = verify_dataset(resized_224, progress=False)
    assert report.counts_official and report.ok
    assert dict(zip(zip(report.counts["split"], report.counts["label"]), report.counts["found"])) == OFFICIAL_COUNTS
    assert "Counts: all official." in str(report)


def test_verify_originals_reports_shortfall_and_no_altered_file(originals, real_manifest):
    report = verify_dataset(originals, real_manifest, progress=False)
    shortfall = dict(zip(zip(report.counts["split"], report.counts["label"]), -report.counts["difference"]))
    assert shortfall == {
        ("train", "NORMAL"): 1341 - 90,
        ("train", "PNEUMONIA"): 3875 - 270,
        ("val", "NORMAL"): 8 - 6,
        ("val", "PNEUMONIA"): 8 - 4,
        ("test", "NORMAL"): 234 - 27,
        ("test", "PNEUMONIA"): 390 - 19,
    }
    assert report.altered == [] and report.extra == [] and report.misplaced == []
    assert len(report.missing) == 5856 - 416
    text = str(report)
    assert "1251 short" in text and "altered       0" in text


def test_packaged_manifest_equals_the_shared_one(real_manifest):
    assert read_manifest().equals(read_manifest(real_manifest))
