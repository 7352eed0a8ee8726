import collections

import pytest

from cxr_utils.dataset import Name as _ParsedName
from cxr_utils.dataset import parse_name
from cxr_utils.records import read_manifest


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("person1_virus_6.jpeg", _ParsedName("person1", "virus")),
        ("person1000_bacteria_2931.jpeg", _ParsedName("person1000", "bacteria")),
        ("person447_virus_921_1.jpeg", _ParsedName("person447", "virus")),
        ("IM-0001-0001.jpeg", _ParsedName("IM-0001", "none")),
        ("IM-0117-0001-0002.jpeg", _ParsedName("IM-0117", "none")),
        ("NORMAL2-IM-0095-0001.jpeg", _ParsedName("NORMAL2-IM-0095", "none")),
        ("NORMAL2-IM-0173-0001-0002.jpeg", _ParsedName("NORMAL2-IM-0173", "none")),
        ("train/NORMAL/IM-0001-0001.JPEG", _ParsedName("IM-0001", "none")),
        ("person3_bacteria_11.jpg", _ParsedName("person3", "bacteria")),
    ],
)
def test_official_patterns(name, expected):
    assert parse_name(name) == expected


@pytest.mark.parametrize("name", ["scan.jpeg", "person_virus_1.jpeg", "IM-0001.jpeg", "person1_fungus_2.jpeg", ""])
def test_unknown_names_give_none(name):
    assert parse_name(name) == _ParsedName(None, None)


def test_every_official_name_gets_a_patient_id():
    manifest = read_manifest()
    assert len(manifest) == 5856
    parsed = [parse_name(path) for path in manifest["path"]]
    assert all(p.patient_id for p in parsed)
    pathogens = collections.Counter(p.pathogen for p in parsed)
    assert pathogens == {"bacteria": 2780, "virus": 1493, "none": 1583}
    labels = manifest["path"].str.split("/").str[1]
    for label, p in zip(labels, parsed):
        assert (p.pathogen == "none") == (label == "NORMAL")
