"""What the official file names say: patient id and pathogen.

The 5,856 official names follow these patterns (checked against every row of the
official manifest, ``cxr_utils/data/official_sha256.tsv``):

======================================  ====================  =========  =====
name                                    patient id            pathogen   count
======================================  ====================  =========  =====
``person<N>_bacteria_<k>.jpeg``         ``person<N>``         bacteria   2,780
``person<N>_virus_<k>.jpeg``            ``person<N>``         virus      1,492
``person<N>_virus_<k>_<j>.jpeg``        ``person<N>``         virus          1
``IM-<N>-<k>.jpeg``                     ``IM-<N>``            none         582
``IM-<N>-<k>-<j>.jpeg``                 ``IM-<N>``            none          84
``NORMAL2-IM-<N>-<k>.jpeg``             ``NORMAL2-IM-<N>``    none         858
``NORMAL2-IM-<N>-<k>-<j>.jpeg``         ``NORMAL2-IM-<N>``    none          59
======================================  ====================  =========  =====

(The one ``person<N>_virus_<k>_<j>`` name is ``train/PNEUMONIA/person447_virus_921_1.jpeg``.)

The rule: the patient id is the name up to the image counters. ``<N>`` keeps its
zero padding (``IM-0001``). ``IM-`` and ``NORMAL2-IM-`` are treated as two separate
numbering schemes (two batches of normal images), so ``IM-0001`` and
``NORMAL2-IM-0001`` are different patients. ``person<N>`` ignores the pathogen:
``person10_bacteria_43`` and ``person10_virus_35`` get the same id. That groups
conservatively (it may merge two people, never split one), which is the safe side
for a patient-grouped validation split.

What names cannot tell: whether the same number in two splits is the same person.
Of the 170 ``person<N>`` ids found in both train and test, none has the same
pathogen in both splits. Within the training split alone, 808 of the 1,635
``person<N>`` ids carry both a bacterial and a viral image, so bacterial and viral
images look like two numbering series that share numbers, and the shared train/test
ids may well be different children; notebook 01 discusses this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["parse_name"]

_PERSON = re.compile(r"(?P<patient>person\d+)_(?P<pathogen>bacteria|virus)_\d+(?:_\d+)?")
_NORMAL = re.compile(r"(?P<patient>(?:NORMAL2-)?IM-\d+)-\d+(?:-\d+)?")
_SUFFIX = re.compile(r"\.(?:jpeg|jpg|png)\Z", re.IGNORECASE)


@dataclass(frozen=True)
class _ParsedName:
    """Patient id and pathogen of one file name; both ``None`` when it follows no official pattern."""

    patient_id: str | None
    pathogen: str | None


def parse_name(name: str) -> _ParsedName:
    """Patient id and pathogen of an official file name, or a path ending in one (the folders are ignored).

    The suffix may be ``.jpeg``, ``.jpg`` or ``.png``, any case. ``pathogen`` is ``"bacteria"`` or
    ``"virus"`` for ``person`` names and ``"none"`` for the ``IM-`` names of normal images; both
    fields are ``None`` for a name that matches no official pattern (nothing is raised):
    ``NORMAL2-IM-0173-0001-0002.jpeg`` is patient ``NORMAL2-IM-0173``, pathogen ``"none"``.
    """
    stem = _SUFFIX.sub("", name.replace("\\", "/").rsplit("/", 1)[-1])
    if match := _PERSON.fullmatch(stem):
        return _ParsedName(match["patient"], match["pathogen"])
    if match := _NORMAL.fullmatch(stem):
        return _ParsedName(match["patient"], "none")
    return _ParsedName(None, None)
