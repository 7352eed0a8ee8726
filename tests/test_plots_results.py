"""The result figures of chapter 05 that were redrawn to be readable: threshold trade-off and reliability."""

import matplotlib
import numpy as np
import pytest

from cxr_utils.compare import reliability_table
from cxr_utils.plots_results import plot_reliability, plot_threshold_tradeoff

matplotlib.use("Agg")


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = 1 / (1 + np.exp(-(6 * (y - 0.5) + rng.normal(0, 2, 300))))
    return y, s


def test_threshold_tradeoff_uses_a_logit_axis_and_marks_the_threshold(scores):
    y, s = scores
    fig = plot_threshold_tradeoff({"validation": (y, s), "test": (y, s)}, 0.987)
    ax = fig.axes[0]
    assert ax.get_xscale() == "logit"
    low, high = ax.get_xlim()
    assert low < s.min() and high > s.max()  # every score's threshold is on the axis
    assert len(ax.get_lines()) == 5  # two curves per split and the threshold line
    assert any(line.get_xdata()[0] == 0.987 for line in ax.get_lines())
    assert any("0.987" in text.get_text() for text in ax.texts)
    labels = ax.xaxis.get_major_formatter().format_ticks(ax.xaxis.get_majorticklocs())
    assert "0.5" in labels and all(label[0].isdigit() for label in labels)  # probabilities, not log-odds
    # at the lowest threshold every image is PNEUMONIA: sensitivity 1, specificity 0
    sensitivity, specificity = ax.get_lines()[0].get_ydata(), ax.get_lines()[1].get_ydata()
    assert sensitivity[0] == 1 and specificity[0] == 0


def test_reliability_counts_are_bars_in_their_own_panel(scores):
    y, s = scores
    tables = {"a": reliability_table(y, s, 10), "b": reliability_table(y, s**2, 10)}
    fig = plot_reliability({"test": tables})
    curve_ax, counts_ax = fig.axes
    assert not curve_ax.texts  # no per-point numbers to crowd the curves
    heights = [patch.get_height() for patch in counts_ax.patches]
    assert len(heights) == 20
    assert heights[:10] == tables["a"]["count"].tolist()
    assert sum(heights[10:]) == len(y)


def test_score_shift_bins_span_the_scores_in_use(scores):
    from cxr_utils.plots_results import plot_score_shift

    y, s = scores
    narrow = 1 / (1 + np.exp(-(y - 0.5)))  # log-odds of +-0.5 only
    fig = plot_score_shift({"validation": (y, narrow), "test": (y, narrow)}, 0.5)
    low, high = fig.axes[0].get_xlim()
    assert -3 < low < -2 and 2 < high < 3  # zoomed to the scores, not the fixed -14..14
    fig = plot_score_shift({"validation": (y, s)}, 0.5)
    edges = [patch.get_x() for patch in fig.axes[0].patches]
    logits = np.log(s / (1 - s))
    assert min(edges) <= logits.min() and max(edges) + 1 >= logits.max()


def test_reliability_puts_validation_beside_test(scores):
    y, s = scores
    fig = plot_reliability({split: {"as trained": reliability_table(y, s, 10)} for split in ("validation", "test")})
    assert [ax.get_title() for ax in fig.axes[:2]] == ["Reliability, validation", "Reliability, test"]


def test_roc_curve_zooms_into_its_top_left_corner(scores):
    from cxr_utils.plots_results import plot_roc_pr

    y, s = scores
    fig = plot_roc_pr(y, {"a": (s, 0.5)})
    inset = fig.axes[0].child_axes[0]
    assert (
        inset.get_xlim() == (0, 0.3) and inset.get_ylim() == (0.7, 1.0) and len(inset.lines) == 3
    )  # curve, dot, paper
