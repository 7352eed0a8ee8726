"""Finding, indexing and verifying dataset copies: synthetic layouts, then the real data."""

import shutil

import pandas as pd
import pytest
from helpers import jpeg_bytes, make_dataset
from PIL import ImageFile

from cxr_utils.dataset import (
    OFFICIAL_COUNTS,
    SKIP_COPY,
    SKIP_MACOS,
    SKIP_NOT_IMAGE,
    SKIP_OUTSIDE,
    DatasetLayoutError,
    duplicate_files,
    find_dataset,
    index_dataset,
    index_manifest,
    index_problems,
    read_manifest,
    shared_patients,
    verify_dataset,
)
from cxr_utils.images import file_sha256

KAGGLE_FILES = {
    "train/NORMAL/IM-0001-0001.jpeg": None,
    "train/NORMAL/IM-0002-0001.jpeg": None,
    "train/PNEUMONIA/person1_virus_6.jpeg": None,
    "train/PNEUMONIA/person1_virus_7.jpeg": None,
    "val/NORMAL/NORMAL2-IM-1427-0001.jpeg": None,
    "val/PNEUMONIA/person1946_bacteria_4874.jpeg": None,
    "test/NORMAL/IM-0003-0001.jpeg": None,
    "test/PNEUMONIA/person1_bacteria_1.jpeg": None,
}


# ---------------------------------------------------------------- layouts


def test_kaggle_layout(tmp_path):
    make_dataset(tmp_path, KAGGLE_FILES)
    layout = find_dataset(tmp_path)
    assert (layout.root, layout.layout, layout.splits) == (tmp_path, "kaggle", ("train", "val", "test"))
    assert len(layout.images) == 8 and layout.skipped == {} and layout.ignored_copies == []


def test_mendeley_layout_one_level_up(tmp_path):
    files = {k: v for k, v in KAGGLE_FILES.items() if not k.startswith("val/")}
    make_dataset(tmp_path / "chest_xray", files)
    layout = find_dataset(tmp_path)
    assert layout.root == tmp_path / "chest_xray"
    assert (layout.layout, layout.splits, len(layout.images)) == ("mendeley", ("train", "test"), 6)


def test_kaggle_zip_with_nested_copy_and_macos_junk_counts_each_image_once(tmp_path):
    top = tmp_path / "chest_xray"
    make_dataset(top, KAGGLE_FILES)
    make_dataset(top / "chest_xray", KAGGLE_FILES)  # the nested duplicate
    make_dataset(tmp_path / "__MACOSX" / "chest_xray", {"train/NORMAL/._IM-0001-0001.jpeg": b"\x00\x05"})
    make_dataset(top, {"train/NORMAL/.DS_Store": b"\x00", "train/.DS_Store": b"\x00", "README.txt": b"hi"})
    make_dataset(top, {"train/stray.jpeg": None})
    index = index_dataset(tmp_path, progress=False)
    assert len(index) == 8
    assert index["path"].is_unique
    assert index.attrs["root"] == str(top)
    assert index.attrs["ignored_copies"] == [str(top / "chest_xray")]
    assert index.attrs["skipped"] == {SKIP_COPY: 8, SKIP_MACOS: 1, SKIP_NOT_IMAGE: 3, SKIP_OUTSIDE: 1}


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist.*CXR_DATA_DIR"):
        find_dataset(tmp_path / "nope")


def test_class_folders_without_splits_are_explained(tmp_path):
    make_dataset(tmp_path, {"NORMAL/IM-0001-0001.jpeg": None, "PNEUMONIA/person1_virus_6.jpeg": None})
    with pytest.raises(DatasetLayoutError, match="no split folders"):
        find_dataset(tmp_path)


def test_splits_without_class_folders_are_explained(tmp_path):
    make_dataset(tmp_path, {"train/IM-0001-0001.jpeg": None, "test/IM-0002-0001.jpeg": None})
    with pytest.raises(DatasetLayoutError, match="NORMAL/ and PNEUMONIA/"):
        find_dataset(tmp_path)


def test_two_copies_side_by_side_are_ambiguous(tmp_path):
    make_dataset(tmp_path / "a", KAGGLE_FILES)
    make_dataset(tmp_path / "b", KAGGLE_FILES)
    with pytest.raises(DatasetLayoutError, match="several dataset copies"):
        find_dataset(tmp_path)


# ---------------------------------------------------------------- index


def test_index_columns_from_names_and_headers(tmp_path):
    make_dataset(tmp_path, KAGGLE_FILES | {"train/PNEUMONIA/person2_bacteria_3.jpeg": jpeg_bytes(60, 20, "RGB")})
    index = index_dataset(tmp_path, sha256=True, progress=False)
    row = index.set_index("path").loc["train/PNEUMONIA/person2_bacteria_3.jpeg"]
    assert (row.split, row.label, row.patient_id, row.pathogen) == ("train", "PNEUMONIA", "person2", "bacteria")
    assert (row.width, row.height, row["mode"], row.format, row.exif_orientation) == (60, 20, "RGB", "JPEG", 1)
    assert row.bytes == (tmp_path / row.name).stat().st_size
    assert row.sha256 == file_sha256(tmp_path / row.name)
    assert index["problem"].isna().all()
    assert list(index["path"]) == sorted(index["path"])


def test_index_without_headers_reads_names_only(tmp_path):
    make_dataset(tmp_path, KAGGLE_FILES)
    index = index_dataset(tmp_path, read_headers=False, progress=False)
    assert "width" not in index and "mode" not in index
    assert set(index["pathogen"]) == {"none", "virus", "bacteria"}


def test_bad_files_are_listed_as_problems_not_dropped(tmp_path):
    noise_jpeg = jpeg_bytes(300, 300, quality=100)
    make_dataset(
        tmp_path,
        KAGGLE_FILES
        | {
            "train/NORMAL/IM-0009-0001.jpeg": b"",
            "train/NORMAL/IM-0010-0001.jpeg": noise_jpeg[: len(noise_jpeg) * 2 // 3],
            "test/NORMAL/IM-0011-0001.jpeg": b"<html>not found</html>",
        },
    )
    index = index_dataset(tmp_path, progress=False)
    assert len(index) == 11
    problems = index_problems(index).set_index("path")["problem"]
    assert problems.to_dict() == {
        "test/NORMAL/IM-0011-0001.jpeg": "not an image Pillow can read",
        "train/NORMAL/IM-0009-0001.jpeg": "empty file (0 bytes)",
        "train/NORMAL/IM-0010-0001.jpeg": "truncated: the JPEG end-of-image marker (FF D9) is missing",
    }


# ---------------------------------------------------------------- patients and duplicates


def test_shared_patients_hand_computed():
    index = pd.DataFrame(
        {
            "path": ["a", "b", "c", "d", "e", "f"],
            "split": ["train", "train", "test", "val", "test", "train"],
            "patient_id": ["person1", "person1", "person1", "IM-0001", "IM-0001", "person2"],
            "pathogen": ["virus", "virus", "bacteria", "none", "none", "virus"],
        }
    )
    shared = shared_patients(index)
    assert shared.to_dict(orient="records") == [
        {
            "patient_id": "IM-0001",
            "splits": "val,test",
            "pathogens": "none",
            "same_pathogen_in_two_splits": True,
            "n_train": 0,
            "n_val": 1,
            "n_test": 1,
        },
        {
            "patient_id": "person1",
            "splits": "train,test",
            "pathogens": "bacteria,virus",
            "same_pathogen_in_two_splits": False,
            "n_train": 2,
            "n_val": 0,
            "n_test": 1,
        },
    ]


def test_duplicate_files_hand_computed():
    index = pd.DataFrame(
        {
            "path": ["t/a", "t/b", "s/c", "t/d", "t/e"],
            "split": ["train", "train", "test", "train", "train"],
            "label": ["NORMAL"] * 5,
            "patient_id": ["p1", "p1", "p2", "p3", "p4"],
            "sha256": ["x", "y", "x", "z", "y"],
        }
    )
    dups = duplicate_files(index)
    assert dups[["group", "path", "cross_split", "cross_patient"]].values.tolist() == [
        [0, "s/c", True, True],
        [0, "t/a", True, True],
        [1, "t/b", False, True],
        [1, "t/e", False, True],
    ]
    with pytest.raises(KeyError, match="sha256=True"):
        duplicate_files(index.drop(columns="sha256"))


def test_official_manifest_shared_patients_and_duplicates():
    index = index_manifest()
    assert len(index) == 5856 and index["patient_id"].notna().all()
    shared = shared_patients(index)
    assert len(shared) == 170 and set(shared["splits"]) == {"train,test"}
    assert not shared["same_pathogen_in_two_splits"].any()  # documented in cxr_utils.names
    dups = duplicate_files(index)
    assert (len(dups), dups["group"].nunique(), int(dups["cross_split"].sum())) == (62, 30, 0)


# ---------------------------------------------------------------- verification, synthetic


def test_verify_against_manifest_finds_missing_extra_altered_misplaced(tmp_path):
    make_dataset(tmp_path, KAGGLE_FILES)
    manifest = index_dataset(tmp_path, sha256=True, progress=False)[["path", "sha256", "bytes"]]
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
    manifest = index_dataset(tmp_path, sha256=True, progress=False)[["path", "sha256", "bytes"]]
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


# ---------------------------------------------------------------- the real data


@pytest.fixture
def no_decoding(monkeypatch):
    def refuse(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_originals_index_has_sizes_and_modes_without_decoding(originals, no_decoding):
    index = index_dataset(originals, progress=False)
    assert len(index) == 416
    assert index["width"].notna().all() and index["height"].notna().all()
    assert set(index["mode"]) == {"L", "RGB"}
    assert (index.loc[index["mode"] == "RGB", "path"].str.startswith("train/PNEUMONIA/")).all()
    assert index["problem"].isna().all() and index["patient_id"].notna().all()
    assert pd.crosstab(index["split"], index["label"]).loc["train"].tolist() == [90, 270]


def test_originals_header_sizes_equal_decoded_sizes(originals):
    from PIL import Image

    index = index_dataset(originals, progress=False).sample(12, random_state=0)
    for row in index.itertuples():
        with Image.open(originals / row.path) as image:
            image.load()
            assert (image.width, image.height, image.mode) == (row.width, row.height, row.mode)


def test_copy_with_truncated_and_zero_byte_files_lists_both(originals, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(originals, copy)
    truncated = copy / "test/NORMAL/IM-0001-0001.jpeg"
    truncated.write_bytes(truncated.read_bytes()[:50_000])
    empty = copy / "train/PNEUMONIA"
    empty = sorted(empty.iterdir())[0]
    empty.write_bytes(b"")
    index = index_dataset(copy, progress=False)
    assert len(index) == 416
    problems = index_problems(index).set_index("path")["problem"]
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
