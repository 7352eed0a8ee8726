"""Figures render headless and show the numbers they are given (content, not pixel hashes)."""

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

import cxr_utils as plots
from cxr_utils import explore as stats
from cxr_utils import plots_data
from cxr_utils.dataset import index_dataset


def render(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    assert buffer.getvalue().startswith(b"\x89PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def index(originals):
    table = index_dataset(originals, progress=False).table
    width, height = table["width"].astype("float64"), table["height"].astype("float64")
    return table.assign(aspect_ratio=width / height, megapixels=width * height / 1e6)  # as chapter 02 does


def bar_heights(ax):
    return [patch.get_height() for patch in ax.patches]


def test_split_counts_bars_show_the_table(index):
    table = stats.split_class_table(index)
    fig = plots.plot_split_counts(table)
    render(fig)
    ax = fig.axes[0]
    assert bar_heights(ax) == [90, 6, 27, 270, 4, 19]  # NORMAL bars, then PNEUMONIA bars
    assert [t.get_text() for t in ax.get_xticklabels()] == ["train", "val", "test"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("split", "images")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["NORMAL", "PNEUMONIA"]
    assert "270" in [t.get_text() for t in ax.texts]


def test_course_flow_draws_every_step_in_order_with_an_arrow_between():
    from matplotlib.patches import FancyBboxPatch

    fig = plots.plot_course_flow()
    render(fig)
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    steps, readers = plots_data._COURSE_FLOW, plots_data._COURSE_READERS
    assert len(boxes) == len(steps) + len(readers)
    titles = [t.get_text() for t in ax.texts if t.get_fontweight() == "bold"]
    assert titles == [step for step, _, _ in steps] + [chapter for chapter, _ in readers]
    assert [step for step, _, _ in steps][:4] == ["Files", "Index", "Cache", "Splits"]
    assert [chapter for chapter, _ in readers] == ["Chapter 05", "Chapter 06"]
    arrows = [t for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    assert len(arrows) == len(steps) - 1 + len(readers)
    tops = [box.get_y() for box in boxes[: len(steps)]]
    assert tops == sorted(tops, reverse=True)  # top to bottom in the order given
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    figure_box = fig.bbox
    for text in ax.texts:  # readable: no text runs off the figure
        extent = text.get_window_extent(renderer)
        assert extent.x0 >= figure_box.x0 - 1 and extent.x1 <= figure_box.x1 + 1, text.get_text()


def test_images_per_patient_panels(index):
    per_patient = stats.images_per_patient(index)
    fig = plots.plot_images_per_patient(per_patient)
    render(fig)
    assert len(fig.axes) == 2
    normal_ids = (per_patient["label"] == "NORMAL").sum()
    assert fig.axes[0].get_title() == f"NORMAL: {normal_ids} patient ids"
    assert sum(bar_heights(fig.axes[0])) == normal_ids
    pneumonia = fig.axes[1]
    written = [int(t.get_text()) for t in pneumonia.texts if t.get_text()]
    assert 1 in written  # a bar of one patient id is labelled, not left invisible
    ticks = [t for t in pneumonia.get_xticks() if pneumonia.get_xlim()[0] <= t <= pneumonia.get_xlim()[1]]
    assert all(float(t).is_integer() for t in ticks), ticks


def test_pathogen_bars_are_shares_with_counts_written_on(index):
    table = stats.pathogen_table(index)
    fig = plots.plot_pathogen_counts(table)
    render(fig)
    ax = fig.axes[0]
    widths = np.array([patch.get_width() for patch in ax.patches]).reshape(3, -1)  # bacteria, virus, NORMAL x splits
    np.testing.assert_allclose(widths.sum(axis=0), 1.0)  # every split, even val's 10 images, fills the axis
    expected = table.loc[["train", "val", "test"], ["bacteria", "virus", "none"]].to_numpy().T
    np.testing.assert_allclose(widths, expected / expected.sum(axis=0))
    texts = [t.get_text() for t in ax.texts]
    assert [t for t in texts if t.startswith("n = ")] == ["n = 360", "n = 10", "n = 46"]
    written = {t.get_text() for t in ax.texts}
    assert {"175", "95", "90", "6"} <= written  # segments of 5% or more carry their count
    assert "1" not in written  # test's one bacterial image (2%) is too narrow for a label
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "bacterial pneumonia",
        "viral pneumonia",
        "NORMAL (no pathogen)",
    ]
    position = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert position["train"] > position["val"] > position["test"]  # read top to bottom, like the table


def test_sample_grid_shows_real_images_with_names(originals, index):
    sample = stats.sample_per_class(index, 3, seed=0)
    fig = plots.plot_sample_grid(originals, sample, per_row=3)
    render(fig)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 6
    titles = " ".join(ax.get_title() for ax in shown)
    assert all(name in titles for name in sample["name"])
    first = shown[0].images[0].get_array()
    assert first.shape == (sample.iloc[0]["height"], sample.iloc[0]["width"])


@pytest.mark.parametrize("column", ["width", "height", "aspect_ratio", "megapixels"])
def test_size_histograms_per_split(index, column):
    fig = plots.plot_size_histograms(index, column, log=column == "megapixels")
    render(fig)
    assert [ax.get_title() for ax in fig.axes] == [f"{s}: {column}" for s in ("train", "val", "test")]
    assert all(ax.get_xlabel() == column for ax in fig.axes)
    train = fig.axes[0]
    assert sum(bar_heights(train)) == (index["split"] == "train").sum()  # every image in one bar
    assert sum(bar_heights(fig.axes[2])) == 46
    assert [t.get_text() for t in train.get_legend().get_texts()] == ["NORMAL", "PNEUMONIA"]
    assert all(ax.get_legend() is None for ax in fig.axes[1:])  # one legend, never over a small split's bars
    val = fig.axes[1]
    assert all(float(t).is_integer() for t in val.get_yticks())  # counts of images
    if column == "megapixels":
        labels = [t.get_text() for t in train.get_xticklabels() if t.get_text()]
        assert labels and all(float(label) > 0 for label in labels), labels


def test_size_scatter_plots_every_image(index):
    fig = plots.plot_size_scatter(index)
    render(fig)
    points = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    offsets = np.concatenate([c.get_offsets() for c in points])
    assert len(offsets) == 416
    assert sorted(offsets[:, 0].tolist()) == sorted(index["width"].astype(float).tolist())
    assert fig.axes[0].get_xlabel() == "width (pixels)"


def test_file_sizes_log_axis_reads_as_plain_numbers(index):
    from cxr_utils.records import index_manifest

    both = plots.plot_file_sizes(index, index_manifest())
    render(both)
    ax = both.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "file size (kB)"
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(float(label) > 0 for label in labels), labels  # "50", "100": never "4x10^0" or "$10^{2}$"
    assert [ax.get_title() for ax in both.axes] == [
        "File sizes: this copy (416 files)",
        "File sizes: official files, from the manifest (5,856)",
    ]
    manifest_labels = [t.get_text() for t in both.axes[1].get_xticklabels() if t.get_text()]
    assert {"10", "100", "1000"} <= set(manifest_labels), manifest_labels  # 5 kB to 2.4 MB, in plain numbers


def test_a_narrow_log_axis_still_gets_plain_ticks():
    from cxr_utils.plots_data import _readable_log_axis

    narrow = pd.DataFrame({"label": ["NORMAL", "PNEUMONIA"] * 50, "bytes": np.linspace(3600, 9000, 100)})
    fig = plots.plot_file_sizes(narrow, narrow)
    render(fig)
    ax = fig.axes[0]
    _readable_log_axis(ax.xaxis)
    low, high = ax.get_xlim()
    shown = [float(t.get_text()) for t in ax.get_xticklabels() if t.get_text() and low <= float(t.get_text()) <= high]
    assert len(shown) >= 3, shown  # within one decade every integer is a tick: 4, 5, 6, 7, 8, 9


def test_intensity_histogram_lines_carry_the_shares():
    histograms = pd.DataFrame(
        {
            "label": ["NORMAL"] * 2 + ["PNEUMONIA"] * 2,
            "bin_left": [0, 128] * 2,
            "bin_right": [128, 256] * 2,
            "share": [0.3, 0.7, 0.6, 0.4],
            "n_images": [5, 5, 7, 7],
        }
    )
    fig = plots.plot_intensity_histograms(histograms)
    render(fig)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["NORMAL (5 images)", "PNEUMONIA (7 images)"]
    assert lines[1].get_ydata().tolist() == [0.6, 0.4]
    assert lines[0].get_xdata().tolist() == [64, 192]


def test_resize_policies_grid(originals, index):
    from cxr_utils.cache import load_grayscale

    row = index.iloc[0]
    fig = plots.plot_resize_policies({row["name"]: load_grayscale(originals / row["path"])}, 32)
    render(fig)
    assert len(fig.axes) == 4
    assert [ax.images[0].get_array().shape for ax in fig.axes[1:]] == [(32, 32)] * 3
    assert [ax.get_title() for ax in fig.axes[1:]] == ["squash -> 32x32", "pad -> 32x32", "crop -> 32x32"]


def test_history_curves():
    history = pd.DataFrame(
        {
            "epoch": [0, 1, 2],
            "loss": [0.6, 0.4, 0.3],
            "val_loss": [0.7, 0.5, 0.6],
            "auc": [0.8, 0.9, 0.95],
            "val_auc": [0.75, 0.88, 0.86],
        }
    )
    fig = plots.plot_history(history)
    render(fig)
    loss_ax, auc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["training", "validation"]
    assert auc_ax.get_lines()[1].get_ydata().tolist() == [0.75, 0.88, 0.86]
    assert auc_ax.get_lines()[0].get_xdata().tolist() == [1, 2, 3]
    assert list(auc_ax.get_lines()[2].get_xdata()) == [2, 2]  # best validation epoch marked


def test_augmented_samples_grid():
    from cxr_utils.training import augmentation_layers

    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32), dtype=np.uint8)
    fig = plots.plot_augmented_samples(images, augmentation_layers(seed=0), variants=3)
    render(fig)
    assert len(fig.axes) == 8
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), images[0])
    assert not np.array_equal(fig.axes[1].images[0].get_array(), images[0])
    assert [ax.get_title() for ax in fig.axes[:4]] == ["as cached", "augmented 1", "augmented 2", "augmented 3"]


# --- chapter 05 figures -------------------------------------------------------------


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(40, dtype=int), np.ones(60, dtype=int)]
    return y, {
        "A": (np.clip(0.35 * y + rng.uniform(0, 0.65, 100), 0, 1), 0.5),
        "B": (np.clip(0.2 * y + rng.uniform(0, 0.8, 100), 0, 1), 0.4),
    }


def test_confusion_matrices_show_the_counts(scored):
    from sklearn.metrics import confusion_matrix

    y, models = scored
    fig = plots.plot_confusion_matrices(y, models)
    render(fig)
    assert len(fig.axes) == 2
    for ax, (scores, threshold) in zip(fig.axes, models.values()):
        counts = [int(t.get_text().split("\n")[0]) for t in ax.texts]
        assert counts == confusion_matrix(y, scores >= threshold).ravel().tolist()
        assert sum(counts) == 100


def test_roc_pr_curves_and_operating_points(scored):
    from sklearn.metrics import roc_auc_score

    y, models = scored
    fig = plots.plot_roc_pr(y, models)
    render(fig)
    roc_ax = fig.axes[0]
    labels = roc_ax.get_legend().get_texts()
    assert f"{roc_auc_score(y, models['A'][0]):.3f}" in labels[0].get_text()
    scores, threshold = models["A"]
    point = roc_ax.lines[1].get_xydata()[0]
    np.testing.assert_allclose(point, [(scores[y == 0] >= threshold).mean(), (scores[y == 1] >= threshold).mean()])
    star = next(line for line in roc_ax.lines if line.get_label().startswith("Kermany et al."))
    np.testing.assert_allclose(star.get_xydata()[0], [1 - 0.901, 0.932])  # the paper's published operating point


def test_threshold_tradeoff_curves_end_where_they_must(scored):
    y, models = scored
    fig = plots.plot_threshold_tradeoff({"validation": (y, models["A"][0]), "test": (y, models["B"][0])}, 0.5)
    render(fig)
    lines = [line for line in fig.axes[0].lines if len(line.get_xdata()) == 201]
    assert len(lines) == 4
    sensitivity = lines[0].get_ydata()
    assert sensitivity[0] == 1.0 and np.all(np.diff(sensitivity) <= 0)


def test_score_shift_panels_hold_every_image(scored):
    y, models = scored
    fig = plots.plot_score_shift({"validation": (y, models["A"][0]), "test": (y, models["B"][0])}, 0.5)
    render(fig)
    assert [ax.get_title() for ax in fig.axes] == ["validation", "test"]
    for ax in fig.axes:
        heights = [sum(p.get_height() for p in container) for container in ax.containers]
        np.testing.assert_allclose(heights, [1.0, 1.0])  # shares of each class, none clipped off the axis


def test_reliability_points_are_the_table(scored):
    from cxr_utils.compare import reliability_table

    y, models = scored
    table = reliability_table(y, models["A"][0], n_bins=5)
    fig = plots.plot_reliability({"test": {"A": table}})
    render(fig)
    used = table[table["count"] > 0]
    np.testing.assert_allclose(fig.axes[0].lines[1].get_xydata(), used[["mean_score", "observed"]].to_numpy())


def test_gradcam_gallery(originals, index):
    from cxr_utils.cache import load_grayscale, resize_image

    rows = index.head(3)
    images = np.stack([resize_image(load_grayscale(originals / p), 64) for p in rows["path"]])
    heatmaps = np.random.default_rng(0).uniform(size=(3, 64, 64))
    fig = plots.plot_gradcam_gallery(images, heatmaps, [p.split("/")[-1] for p in rows["path"]], per_row=2)
    render(fig)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 3 and all(len(ax.images) == 2 for ax in shown)
    assert shown[0].get_title() == rows["path"].iloc[0].split("/")[-1]
    assert "Grad-CAM evidence" in fig.axes[-1].get_ylabel()  # a colour bar says what the colours mean
    with pytest.raises(ValueError):
        plots.plot_gradcam_gallery(images, heatmaps[:2], ["a", "b", "c"])


def test_distributions_normalise_each_group_and_name_its_size():
    rng = np.random.default_rng(0)
    fig = plots.plot_distributions(
        {"small": rng.lognormal(3, 0.3, 50), "large": rng.lognormal(6, 0.3, 500)}, xlabel="kB", title="t", log=True
    )
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_legend().get_texts()] == [
        "small (50)",
        "large (500)",
    ]
    assert ax.get_ylabel() == "share per log10 unit (density)"
    for patch in ax.patches:  # each curve encloses an area of 1 on the axis as drawn: per log10 unit
        density, edges, _ = patch.get_data()
        assert np.sum(density * np.diff(np.log10(edges))) == pytest.approx(1)
    with pytest.raises(ValueError):
        plots.plot_distributions({"empty": []}, xlabel="x", title="t")


def test_image_grid_shows_every_image_with_its_title():
    images = np.stack([np.full((8, 8), v, np.uint8) for v in (0, 100, 200)])
    fig = plots.plot_image_grid(images, ["a", "b", "c"], per_row=2)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == ["a", "b", "c"] and len(fig.axes) == 4
