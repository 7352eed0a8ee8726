"""Finding and indexing dataset copies: synthetic layouts, then the real data."""

import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFile

from cxr_utils.cache import cache_images
from cxr_utils.dataset import SKIP, DatasetLayoutError, binary_labels, file_sha256, find_dataset, index_dataset

from helpers import KAGGLE_FILES, jpeg_bytes, make_dataset

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
    dataset = index_dataset(tmp_path, progress=False)
    assert len(dataset) == len(dataset.table) == 8
    assert dataset.table["path"].is_unique
    assert (dataset.root, dataset.layout) == (top, "kaggle")
    assert dataset.ignored_copies == [top / "chest_xray"]
    skip = {key: SKIP[key] for key in ("copy", "macos", "not image", "outside")}
    assert dataset.skipped_counts == {skip["copy"]: 8, skip["macos"]: 1, skip["not image"]: 3, skip["outside"]: 1}
    assert dataset.skipped[skip["outside"]] == ["chest_xray/train/stray.jpeg"]


def test_the_tree_is_walked_once(tmp_path, monkeypatch):
    import os

    make_dataset(tmp_path / "chest_xray", KAGGLE_FILES)
    walks = []
    real_walk = os.walk
    monkeypatch.setattr(os, "walk", lambda top, *a, **k: walks.append(top) or real_walk(top, *a, **k))
    assert len(find_dataset(tmp_path).images) == 8
    assert walks == [tmp_path]


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
    index = index_dataset(tmp_path, sha256=True, progress=False).table
    row = index.set_index("path").loc["train/PNEUMONIA/person2_bacteria_3.jpeg"]
    assert (row.split, row.label, row.patient_id, row.pathogen) == ("train", "PNEUMONIA", "person2", "bacteria")
    assert (row.width, row.height, row["mode"], row.format, row.exif_orientation) == (60, 20, "RGB", "JPEG", 1)
    assert row.bytes == (tmp_path / row.name).stat().st_size
    assert row.sha256 == file_sha256(tmp_path / row.name)
    assert index["problem"].isna().all()
    assert list(index["path"]) == sorted(index["path"])


def test_index_without_headers_reads_names_only(tmp_path):
    make_dataset(tmp_path, KAGGLE_FILES)
    index = index_dataset(tmp_path, read_headers=False, progress=False).table
    assert "width" not in index and "mode" not in index
    assert set(index["pathogen"]) == {"none", "virus", "bacteria"}


def test_progress_bars_end_at_their_totals(tmp_path, capsys):
    # a bar left at "7/8" reads as one image skipped: each bar's last state must count every file
    make_dataset(tmp_path / "data", KAGGLE_FILES)
    cache_images(tmp_path / "data", size=16, cache_dir=tmp_path / "cache", progress=True)
    printed = capsys.readouterr()  # the bars go to standard output once ipykernel is imported (as in a chapter)
    bars = {}
    for desc, done, total in re.findall(r"([A-Z][\w ()x]+): +\d+%\|[^|]*\| (\d+)/(\d+)", printed.out + printed.err):
        bars[desc] = (done, total)
    assert {"Indexing images", "Checking files", "Decoding to 16x16 (squash)"} <= set(bars)
    assert all(done == total == str(len(KAGGLE_FILES)) for done, total in bars.values()), bars


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
    dataset = index_dataset(tmp_path, progress=False)
    assert len(dataset) == 11
    problems = dataset.problems.set_index("path")["problem"]
    assert problems.to_dict() == {
        "test/NORMAL/IM-0011-0001.jpeg": "not an image Pillow can read",
        "train/NORMAL/IM-0009-0001.jpeg": "empty file (0 bytes)",
    }
    # a file cut short keeps its header: cxr verify finds it, and the cache leaves it out when it fails to decode
    from cxr_course.verify import inspect

    checked = inspect(dataset, progress=False).problems.set_index("path")["problem"]
    assert checked["train/NORMAL/IM-0010-0001.jpeg"] == "truncated: the JPEG end-of-image marker (FF D9) is missing"
    assert len(checked) == 3


def test_binary_labels():
    np.testing.assert_array_equal(binary_labels(["NORMAL", "PNEUMONIA", "PNEUMONIA"]), [0, 1, 1])
    assert binary_labels(pd.Series(["PNEUMONIA"])).dtype == np.int64
    with pytest.raises(ValueError, match="normal"):
        binary_labels(["NORMAL", "normal"])


# ---------------------------------------------------------------- the real data


@pytest.fixture
def no_decoding(monkeypatch):
    def refuse(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_originals_index_has_sizes_and_modes_without_decoding(originals, no_decoding):
    index = index_dataset(originals, progress=False).table
    assert len(index) == 416
    assert index["width"].notna().all() and index["height"].notna().all()
    assert set(index["mode"]) == {"L", "RGB"}
    assert (index.loc[index["mode"] == "RGB", "path"].str.startswith("train/PNEUMONIA/")).all()
    assert index["problem"].isna().all() and index["patient_id"].notna().all()
    assert pd.crosstab(index["split"], index["label"]).loc["train"].tolist() == [90, 270]


def test_originals_header_sizes_equal_decoded_sizes(originals):
    from PIL import Image

    index = index_dataset(originals, progress=False).table.sample(12, random_state=0)
    for row in index.itertuples():
        with Image.open(originals / row.path) as image:
            image.load()
            assert (image.width, image.height, image.mode) == (row.width, row.height, row.mode)


@pytest.mark.real_data
def test_test_rows_are_in_the_same_places_however_they_are_filed(resized_224, tmp_path):
    """Issue 21: a test image's row, so its batch and its position there, never depends on its label folder.

    The same real images are copied twice, the second time with a random half of the test files
    moved to the other label folder (names unchanged); a model scores the test rows in batches of 8
    in index order, as the chapters do. Each image must keep its row, and its score bit for bit.
    """
    import shutil

    import keras

    from cxr_utils.training import predict_scores

    from helpers import build_cnn

    chosen = [
        path
        for split, count in (("train", 4), ("val", 2), ("test", 12))
        for label in ("NORMAL", "PNEUMONIA")
        for path in sorted((resized_224 / split / label).glob("*.jpeg"))[:count]
    ]
    other = {"NORMAL": "PNEUMONIA", "PNEUMONIA": "NORMAL"}
    moved = np.random.default_rng(0).random(len(chosen)) < 0.5
    keras.utils.set_random_seed(0)
    model = build_cnn(32, filters=(4,))
    tables, scores = [], []
    for copy, refile in (("as_filed", False), ("refiled", True)):
        for path, move in zip(chosen, moved):
            split, label = path.parent.parent.name, path.parent.name
            folder = tmp_path / copy / split / (other[label] if refile and move and split == "test" else label)
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / path.name)
        table = index_dataset(tmp_path / copy, progress=False).table
        test = table[table["split"] == "test"]
        files = [tmp_path / copy / path for path in test["path"]]
        images = np.stack([np.asarray(Image.open(file).convert("L").resize((32, 32))) for file in files])
        tables.append(table)
        scores.append(predict_scores(model, images, batch_size=8))

    labels = [table.set_index("name")["label"] for table in tables]
    assert (labels[0] != labels[1][labels[0].index]).sum() > 5  # test images filed under the other label
    pd.testing.assert_series_equal(tables[0]["name"], tables[1]["name"])
    pd.testing.assert_series_equal(tables[0]["split"], tables[1]["split"])
    training = tables[0]["split"] != "test"
    pd.testing.assert_frame_equal(tables[0][training], tables[1][training])
    np.testing.assert_array_equal(scores[0], scores[1])
