"""Figures of the course. Each function returns a :class:`matplotlib.figure.Figure`.

Figures are made without pyplot, so a notebook shows each one exactly once (as the
cell's value) and tests can render them headless and inspect their content. The
functions live in one module per part of the course and are all available here:

``plots.data``       chapters 01-02: counts, patients, sizes, intensities, resize policies
``plots.training``   chapters 03-04: augmented samples, training history
``plots.results``    chapter 05: confusion matrices, ROC/PR, thresholds, shift, calibration, Grad-CAM
``plots.shift``      chapter 06: distributions of collections side by side, image grids
``plots.style``      the colours and figure factory they share
"""

from . import data, results, shift, training
from .data import *  # noqa: F403
from .results import *  # noqa: F403
from .shift import *  # noqa: F403
from .style import CLASS_COLOURS, MODEL_COLOURS
from .training import *  # noqa: F403

__all__ = ["CLASS_COLOURS", "MODEL_COLOURS", *data.__all__, *training.__all__, *results.__all__, *shift.__all__]
