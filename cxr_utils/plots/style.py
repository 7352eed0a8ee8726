"""What every figure shares: the class and model colours, and a figure without pyplot."""

from __future__ import annotations

from matplotlib.figure import Figure

__all__ = ["CLASS_COLOURS", "MODEL_COLOURS", "figure"]

#: One colour per class, used by every figure.
CLASS_COLOURS = {"NORMAL": "#4C72B0", "PNEUMONIA": "#DD8452"}

#: Colours of the models compared in one figure, in order.
MODEL_COLOURS = ("#55A868", "#8172B3", "#C44E52", "#937860", "#DA8BC3")


def figure(width: float, height: float) -> Figure:
    """A :class:`~matplotlib.figure.Figure` of ``width`` x ``height`` inches with a constrained layout.

    Made without pyplot, so a notebook shows it exactly once (as the cell's value) and
    tests can render it headless.
    """
    return Figure(figsize=(width, height), layout="constrained")
