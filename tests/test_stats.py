"""Statistics against hand-computed values, on real files and on small made-up tables."""

import glob
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxr_utils import explore as stats
from cxr_utils.cache import resize_image
from cxr_utils.dataset import DatasetIndex, index_dataset


@pytest.fixture(scope="module")
def originals_index(originals):
    return index_dataset(originals, sha256=True, progress=False).table


def test_split_class_table_on_originals(originals_index):
    table = stats.split_class_table(originals_index)
    assert table.loc[["train", "val", "test"], ["NORMAL", "PNEUMONIA"]].values.tolist() == [[90, 270], [6, 4], [27, 19]]
    assert table.loc["total", "total"] == 416
    assert table.loc["test", "pneumonia_share"] == pytest.approx(19 / 46)  # the always-PNEUMONIA accuracy


def test_images_per_patient_counts_names(originals, originals_index):
    per_patient = stats.images_per_patient(originals_index).set_index("patient_id")
    person1 = [p for p in glob.glob(str(originals / "*/PNEUMONIA/person1_*.jpeg"))]
    assert per_patient.loc["person1", "n_images"] == len(person1)
    assert per_patient["n_images"].sum() == 416
    assert per_patient["n_images"].is_monotonic_decreasing


def test_pathogen_table_counts_names(originals, originals_index):
    table = stats.pathogen_table(originals_index)
    names = Counter(
        p.split(os.sep)[-3] + (("_virus" in p and "virus") or ("_bacteria" in p and "bacteria") or "none")
        for p in glob.glob(str(originals / "*/*/*.jpeg"))
    )
    assert table.loc["train", "virus"] == names["trainvirus"]
    assert table.loc["test", "bacteria"] == names["testbacteria"]
    assert table.loc["total"].sum() == 416


def test_rgb_files_hold_no_colour_but_a_coloured_file_is_found(originals, originals_index, tmp_path):
    rgb = list(originals_index.loc[originals_index["mode"] == "RGB", "path"])
    checked = stats.colour_check(originals, rgb)
    assert len(checked) == 24 and not checked["has_colour"].any()
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    pixels[:4, :, 0] = 200  # the top half red
    Image.fromarray(pixels).save(tmp_path / "red.png")
    red = stats.colour_check(tmp_path, ["red.png"]).iloc[0]
    assert red["has_colour"] and red["max_channel_difference"] == 200 and red["coloured_fraction"] == 0.5


def test_intensity_histograms_hand_computed(tmp_path):
    Image.fromarray(np.array([[0, 0, 255, 255]], dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.array([[0, 128, 128, 128]], dtype=np.uint8)).save(tmp_path / "b.png")
    sample = pd.DataFrame({"path": ["a.png", "b.png"], "label": ["NORMAL", "NORMAL"]})
    hist = stats.intensity_histograms(tmp_path, sample, bins=4)
    # a: half in bin 0, half in bin 3; b: a quarter in bin 0, three quarters in bin 2
    assert hist["share"].round(6).tolist() == [0.375, 0.0, 0.375, 0.25]
    assert hist["bin_left"].tolist() == [0, 64, 128, 192] and set(hist["n_images"]) == {2}


def test_resize_policies_on_a_wide_image():
    wide = np.full((50, 100), 255, dtype=np.uint8)
    wide[:, :20] = 0  # a black left fifth
    squashed = resize_image(wide, 20, "squash")
    padded = resize_image(wide, 20, "pad")
    cropped = resize_image(wide, 20, "crop")
    assert squashed.shape == padded.shape == cropped.shape == (20, 20)
    assert (squashed[:, :3] == 0).all() and (squashed[:, 5:] == 255).all()
    assert (padded[:5] == 0).all() and (padded[-5:] == 0).all() and (padded[6:14, 10:] == 255).all()
    assert (cropped == 255).all()  # the centre square misses the black fifth
    with pytest.raises(ValueError, match="unknown resize policy"):
        resize_image(wide, 20, "stretch")
    with pytest.raises(ValueError, match="gray image"):
        resize_image(np.zeros((4, 4, 3), np.uint8), 2)


def test_sample_per_class_is_seeded(originals_index):
    first = stats.sample_per_class(originals_index, 3, seed=1)
    again = stats.sample_per_class(originals_index, 3, seed=1)
    assert first["path"].tolist() == again["path"].tolist()
    assert first["label"].value_counts().to_dict() == {"NORMAL": 3, "PNEUMONIA": 3}


def test_check_copy_knows_the_originals(originals):
    dataset = index_dataset(originals, progress=False)
    check = stats.check_copy(dataset)
    sizes = set(zip(dataset.table["width"], dataset.table["height"]))
    assert (check.n_images, check.n_sizes, check.n_listed, check.n_official_bytes) == (416, len(sizes), 416, 416)
    assert check.originals and not check.one_size and not check.counts_official  # a subset of the originals
    counts = check.counts.set_index(["split", "label"])
    assert counts.loc[("train", "NORMAL"), ["found", "official", "difference"]].tolist() == [90, 1341, -1251]
    summary = check.summary()
    assert summary["images"] == 416 and summary["official images"] == 5856 and summary["original files"]


def test_check_copy_finds_the_resized_copy(resized_224):
    check = stats.check_copy(index_dataset(resized_224, progress=False))
    assert check.one_size and check.common_size == (224, 224) and not check.originals and check.counts_official
    assert (check.n_listed, check.n_official_bytes) == (5856, 0)
    assert check.summary()["commonest size"] == "224x224"


def test_check_copy_on_made_up_indexes():
    manifest = pd.DataFrame(
        {
            "path": ["train/NORMAL/a.jpeg", "train/PNEUMONIA/b.jpeg", "test/NORMAL/c.jpeg"],
            "sha256": ["0", "1", "2"],
            "bytes": [1000, 2000, 3000],
        }
    )
    index = pd.DataFrame(
        {
            "split": ["train", "train", "test"],
            "label": ["NORMAL", "PNEUMONIA", "NORMAL"],
            "name": ["a.jpeg", "b.jpeg", "c.jpeg"],
            "bytes": [1000, 2000, 2999],  # c was re-encoded, at its own size
            "width": [100, 200, 300],
            "height": [100, 100, 100],
        }
    )

    def check(table, layout="kaggle"):
        return stats.check_copy(DatasetIndex(Path("."), layout, table, {}, []), manifest)

    re_encoded = check(index)
    assert not re_encoded.one_size and re_encoded.n_official_bytes == 2 and not re_encoded.originals
    untouched = check(index.assign(bytes=[1000, 2000, 3000]))
    assert untouched.originals and untouched.n_official_bytes == 3
    unknown = check(index.assign(name=["x.jpeg", "y.jpeg", "z.jpeg"]))
    assert unknown.n_listed == 0 and unknown.originals  # judged by its sizes alone
    square = check(index.assign(width=64, height=64, name=["x.jpeg", "y.jpeg", "z.jpeg"]))
    assert square.one_size and not square.originals and square.common_size == (64, 64)
    assert not check(index.head(1)).one_size  # one image is not "all one size"
    mendeley = check(index, layout="mendeley").counts.set_index(["split", "label"])["official"]
    assert mendeley[("train", "NORMAL")] == 1349 and ("val", "NORMAL") not in mendeley.index
