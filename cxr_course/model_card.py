"""A finished run's model card, ``model_card.md`` beside ``model.keras``, every number read from the run's files.

``make course`` writes the cards of chapters 03 and 04 after each of them; ``cxr card RUN`` writes one.
"""

from __future__ import annotations

import os
from pathlib import Path

from cxr_utils import runs_dir, start_keras
from cxr_utils.compare import format_interval
from cxr_utils.dataset import OFFICIAL_COUNTS
from cxr_utils.metrics import METRICS, PAPER
from cxr_utils.records import read_json
from cxr_utils.runs import load_run, seed_spread

MODEL_CARD_FILE = "model_card.md"
#: By the run's base name: title, notebook, what the network is, and its label in the seed record.
CARDS = {
    "03_cnn_from_scratch": (
        "CNN from scratch (chapter 03)",
        "notebooks/03_cnn_from_scratch.ipynb",
        "a VGG-style CNN (`build_cnn`)",
        "CNN (03)",
    ),
    "04_transfer_learning": (
        "{chosen} (chapter 04)",
        "notebooks/04_transfer_learning.ipynb",
        "ImageNet {architecture} (alpha {alpha}), frozen up to `{cut}`, its top fine-tuned with a new head "
        "(candidate B)",
        "chosen transfer candidate (04)",
    ),
}
_METRICS = tuple(m for m in METRICS if m != "f1")
_SPECIFICITY = (
    "[chapter 05, section 9](../../notebooks/05_error_analysis.ipynb#9.-Why-is-our-specificity-below-the-paper's?)"
)
_USE = (
    "Teaching: how a chest X-ray classifier is trained, chosen on validation and evaluated once. **Not for "
    "diagnosis, triage or any clinical decision; not a medical device.** It outputs one number, the probability of "
    "PNEUMONIA, for a pediatric frontal chest X-ray."
)
_SHORTCUTS = (
    '**Shortcuts.** The burned-in side markers ("R", "L", in the top corners) and the image borders tell how an '
    "image was made, not the disease; chapter 05's Grad-CAM measures how much of the model's heat sits there "
    "against the lungs. Check it before trusting a score."
)
_SHIFT = (
    "**Acquisition shift.** Trained on one hospital's pediatric images (Guangzhou Women and Children's Medical "
    "Center); other hospitals, scanners, adults and other compression will shift the scores (chapter 06 measures a "
    "shift between collections and what adaptation recovers)."
)


def _data(counts: dict) -> tuple[str, list[str]]:
    """Whether the run's images hold the published counts (train + validation: the official train and val), and
    one table row per course split."""
    labels = ("NORMAL", "PNEUMONIA")
    pooled = {c: sum(counts.get(s, {}).get(c, 0) for s in ("train", "validation")) for c in labels}
    official = all(
        pooled[c] == OFFICIAL_COUNTS[("train", c)] + OFFICIAL_COUNTS[("val", c)]
        and counts.get("test", {}).get(c) == OFFICIAL_COUNTS[("test", c)]
        for c in labels
    )
    total = sum(sum(row.values()) for row in counts.values())
    verdict = (
        f"the published counts ({total:,} images)"
        if official
        else (
            f"not the published counts ({total:,} images: a subset or another copy), so its metrics are not comparable "
            "with the paper's"
        )
    )
    rows = [
        f"| {split} | {counts[split]['NORMAL']:,} | {counts[split]['PNEUMONIA']:,} | {sum(counts[split].values()):,} |"
        for split in ("train", "validation", "test")
        if split in counts
    ]
    return verdict, rows


def _seed_section(label: str, config_hash: str, test: dict) -> str:
    spread = seed_spread((label,))
    if spread.empty:
        return f"Not measured for this model ({spread.attrs['record']})."
    measured = spread.attrs["config_hashes"].get(label)
    if measured is not None and measured != config_hash:  # a fast run, or other settings than the record's
        return (
            f"Not measured for this configuration: the record measured `{measured}`, this run is `{config_hash}` "
            f"({spread.attrs['record']})."
        )
    lines = ["| metric | this run | mean | standard deviation | min | max | runs |", "|" + " --- |" * 7]
    for (_, metric), row in spread.iterrows():
        values = " | ".join(f"{row[column]:.4f}" for column in ("mean", "sd", "min", "max"))
        lines.append(f"| {metric} | {test[metric]['value']:.4f} | {values} | {row['runs']:.0f} |")
    return (
        f"This run's test metrics beside every recorded run of this configuration, over seeds and "
        f"{len(spread.attrs['cpu_kinds'])} CPU kind(s) ({spread.attrs['record']}). The CPU changes the kernels' "
        "rounding, hence the training path and the threshold chosen on validation.\n\n" + "\n".join(lines)
    )


def model_card(run: str, runs_root: str | os.PathLike | None = None) -> str:
    """The Markdown card of chapter 03's or 04's finished run ``run`` (``_fast``, ``_seed<N>`` variants too).

    Raises KeyError for another chapter's run, and FileNotFoundError or RunFolderError for an unfinished one.
    """
    base = next((name for name in CARDS if run.startswith(name)), None)
    if base is None:
        raise KeyError(f"no model card for run {run!r}: cards are for {', '.join(CARDS)}")
    title, notebook, description, seed_label = CARDS[base]
    finished = load_run(run, notebook, root=runs_root)
    parameters, measurements, metrics = finished.config["parameters"], finished.measurements, finished.metrics
    settings = ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in parameters.items() if k != "data_dir"
    )
    verdict, split_rows = _data(metrics.get("counts", {}))
    model_file = Path(finished.folder.parent.name, run, "model.keras").as_posix()
    if (finished.folder / "model.keras").exists():
        start_keras()
        from cxr_utils.models import CUT_LAYERS, load_model

        model = load_model(finished.folder / "model.keras", compile=False)
        cut = CUT_LAYERS.get(parameters.get("architecture", ""), "")
        what = description.format(cut=cut, **parameters)
        network = f"`{model.name}`: {what}, input {model.input_shape[1:]}: {model.count_params():,} weights."
        loading = (
            f"```python\nimport cxr_utils\n\nmodel = cxr_utils.load_model({model_file!r})\n```\n\nOne call in any "
            "Python with `cxr_utils` installed (the path is relative to the project folder): it registers the "
            "course's custom layers first; plain `keras.models.load_model` does not know them."
        )
    else:
        network, loading = (
            f"{description.format(cut='its cut', **parameters)} (no saved model).",
            "This run saved no model file.",
        )
    members = measurements.get("members", [])
    if len(members) > 1:  # an ensemble: model.keras is its first member, chapter 03's run saved the CNN (C)
        scratch = Path(finished.folder.parent.name, run.replace(base, "03_cnn_from_scratch"), "model.keras")
        elsewhere = "".join(f"; {m} is `{scratch.as_posix()}`" for m in members[1:] if m.startswith("C:"))
        network += f" The test metrics are the ensemble's ({' + '.join(members)}); `model.keras` is its first member"
        network += f"{elsewhere}."
    threshold = read_json(finished.folder / "threshold.json")
    rule = threshold["method"] + (
        f" (target sensitivity {threshold['target_sensitivity']})" if threshold.get("target_sensitivity") else ""
    )
    specificity = (
        f"**Specificity against the paper's.** On the official test split this model's specificity is "
        f"{metrics['test']['specificity']['value']:.3f}, Kermany et al.'s {PAPER['specificity']:.3f}. Why the "
        "course's models flag more NORMAL children than the paper reports, what can and cannot be known about it, "
        f"and what would settle it: {_SPECIFICITY}."
    )
    data_dir = measurements.get("data_dir") or parameters.get("data_dir", "a copy not recorded")
    metric_rows = [
        f"| {m} | {format_interval(*(metrics['test'][m].get(c) for c in ('value', 'ci_low', 'ci_high')))} |"
        for m in _METRICS
        if m in metrics["test"]
    ]
    sections = [
        f"# Model card: {title.format(**measurements)}",
        f"Run folder `{run}`, trained by `{notebook}` ({settings}).",
        f"## Intended use\n\n{_USE}",
        f"## Data and splits\n\nKermany et al. (2018) pediatric chest X-rays, read from `{data_dir}`: {verdict}. "
        "Validation is carved from the official train and val images, grouped by patient; test is the official "
        "test split, scored once.\n\n| split | NORMAL | PNEUMONIA | images |\n| --- | --- | --- | --- |\n"
        + "\n".join(split_rows),
        f"## Model\n\n{network} Input: images in 0..255 as the notebook's batches serve them; output `(batch, 1)`, "
        "the probability of PNEUMONIA.",
        f"## Test metrics (threshold {finished.threshold:.3f})\n\n95% bootstrap intervals over the "
        f"{metrics.get('n_test', '?')} test images ({metrics.get('bootstrap_resamples', '?')} resamples).\n\n"
        "| metric | value [95% interval] |\n| --- | --- |\n" + "\n".join(metric_rows),
        "## Spread over seeds and machines\n\n"
        + _seed_section(seed_label, finished.config.get("config_hash"), metrics["test"]),
        f"## Threshold\n\n{finished.threshold:.4f}, chosen by the {rule} rule on "
        f"{threshold.get('chosen_on', 'validation')}; never on test.",
        "## Known failure modes\n\n" + "\n".join(f"- {line}" for line in (_SHORTCUTS, specificity, _SHIFT)),
        f"## How to load it\n\n{loading}",
    ]
    return "\n\n".join(sections) + "\n"


def write_model_card(run: str, runs_root: str | os.PathLike | None = None) -> Path:
    """Write :func:`model_card` to ``<runs>/<run>/model_card.md`` and return its path."""
    path = Path(runs_root if runs_root is not None else runs_dir()) / run / MODEL_CARD_FILE
    path.write_text(model_card(run, runs_root), encoding="utf-8")
    return path
