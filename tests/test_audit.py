"""Patients and identical files across splits: by hand, and on the official names."""

import pandas as pd
import pytest

from cxr_utils.explore import duplicate_files, shared_patients
from cxr_utils.records import index_manifest


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
    assert not shared["same_pathogen_in_two_splits"].any()  # documented in cxr_utils.dataset.parse_name
    dups = duplicate_files(index)
    assert (len(dups), dups["group"].nunique(), int(dups["cross_split"].sum())) == (62, 30, 0)
