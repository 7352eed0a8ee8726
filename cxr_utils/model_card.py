"""A run's model card: ``model_card.md`` beside ``model.keras``, written from the run's own files.

Every number in the card is read from what the run recorded (``metrics.json``,
``threshold.json``, ``config.json``), from the index and splits it was trained on, from
the model, and from the committed record of the seed benchmark (:func:`seed_spread`);
nothing is typed by hand. Chapters 03 and 04 write one with :func:`write_model_card`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from .dataset import OFFICIAL_COUNTS
from .metrics import PAPER
from .runs import CONFIG_FILE, METRICS_FILE, MODEL_FILE, THRESHOLD_FILE, seed_spread
from .tables import format_interval

__all__ = ["dataset_verdict", "model_card", "write_model_card"]

MODEL_CARD_FILE = "model_card.md"

#: Where the course answers "why is our specificity below the paper's?" (linked from every card).
SPECIFICITY_SECTION = (
    "[chapter 05, section 9](../../notebooks/05_error_analysis.ipynb#9.-Why-is-our-specificity-below-the-paper's?)"
)


#: What the course found these models get wrong (chapters 05 and 06), in every run's card.
KNOWN_FAILURE_MODES = (
    '**Shortcuts.** The burned-in side markers ("R", "L", in the top corners) and the image borders tell '
    "how an image was made, not the disease; chapter 05's Grad-CAM measures how much of the model's heat sits "
    "there against the lungs. Check it before trusting a score.",
    "**Acquisition shift.** Trained on one hospital's pediatric images (Guangzhou Women and Children's "
    "Medical Center); other hospitals, scanners, adults and other compression will shift the scores "
    "(chapter 06 measures a shift between collections and what adaptation recovers).",
)

_METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "roc_auc", "pr_auc")


def dataset_verdict(index: pd.DataFrame) -> str:
    """One sentence: do the index's images per official split and class match the published counts?

    ``index`` has ``split`` (official) and ``label`` columns. Only counts are compared
    (chapter 01 verifies the file hashes).
    """
    found = index.groupby(["split", "label"]).size().to_dict()
    mendeley = {key: n for key, n in OFFICIAL_COUNTS.items() if key[0] != "val"}  # train holds the val images
    for label in ("NORMAL", "PNEUMONIA"):
        mendeley[("train", label)] += OFFICIAL_COUNTS[("val", label)]
    for name, expected in (("official Kaggle", OFFICIAL_COUNTS), ("Mendeley", mendeley)):
        if all(found.get(key, 0) == number for key, number in expected.items()) and len(index) == sum(
            expected.values()
        ):
            return f"the {name} layout's published counts ({len(index):,} images)"
    return (
        f"not the published counts ({len(index):,} images: a subset or another copy), "
        "so its metrics are not comparable with the paper's"
    )


def _read(folder: Path, name: str) -> dict:
    path = folder / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: finish the run (finish_run) before writing its card")
    return json.loads(path.read_text(encoding="utf-8"))


def _interval(row: dict) -> str:
    return format_interval(row.get("value"), row.get("ci_low"), row.get("ci_high"))


def _failure_modes(test: dict) -> list[str]:
    """:data:`KNOWN_FAILURE_MODES`, with this run's specificity beside the paper's."""
    specificity, paper = test["specificity"]["value"], PAPER["specificity"]
    gap = (
        f"**Specificity against the paper's.** On the official test split this model's specificity is "
        f"{specificity:.3f}, Kermany et al.'s {paper:.3f}. Why the course's models flag more NORMAL children than "
        f"the paper reports, what can and cannot be known about it, and what would settle it: {SPECIFICITY_SECTION}."
    )
    return [KNOWN_FAILURE_MODES[0], gap, *KNOWN_FAILURE_MODES[1:]]


def _seed_section(seed_model: str | None, config_hash: str | None, test: dict) -> str:
    spread = seed_spread((seed_model,)) if seed_model else seed_spread(())
    if spread.empty:
        return f"Not measured for this model ({spread.attrs['record']})."
    measured = spread.attrs["config_hashes"].get(seed_model)
    if measured is not None and measured != config_hash:  # a fast run, or other settings than the record's runs
        return (
            f"Not measured for this configuration: the record measured `{measured}`, this run is `{config_hash}` "
            f"({spread.attrs['record']})."
        )
    lines = [
        "| metric | this run | mean | standard deviation | min | max | runs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (_, metric), row in spread.iterrows():
        values = " | ".join(f"{row[column]:.4f}" for column in ("mean", "sd", "min", "max"))
        lines.append(f"| {metric} | {test[metric]['value']:.4f} | {values} | {row['runs']:.0f} |")
    kinds = len(spread.attrs["cpu_kinds"])
    return (
        f"This run's test metrics beside every recorded run of this configuration, over seeds and {kinds} CPU "
        f"kind(s) ({spread.attrs['record']}). The CPU changes the kernels' rounding, hence the training path and "
        f"the threshold chosen on validation.\n\n" + "\n".join(lines)
    )


def _shown_model_file(runs: Path, run: str) -> str:
    """``runs/<run>/model.keras``: a run's saved model as the card shows it, relative to the project."""
    return Path(runs.name, run, MODEL_FILE).as_posix()


def _ensemble_note(members: list[str], member_runs: dict[str, str], runs: Path) -> str:
    """For an ensemble (more than one member): whose metrics these are, and where its members are saved."""
    if len(members) < 2:
        return ""
    elsewhere = "".join(
        f"; {m} is `{_shown_model_file(runs, member_runs[m])}`" for m in members[1:] if m in member_runs
    )
    ensemble = " + ".join(members)
    return f" The test metrics are the ensemble's ({ensemble}); `model.keras` is its first member{elsewhere}."


def model_card(
    run_dir: str | os.PathLike,
    *,
    title: str,
    notebook: str,
    architecture: str,
    n_parameters: int,
    index: pd.DataFrame,
    splits: pd.Series,
    seed_variance_model: str | None = None,
    member_runs: dict[str, str] | None = None,
) -> str:
    """The Markdown of a finished run's model card.

    Parameters
    ----------
    run_dir : path-like
        A run folder finished by :func:`cxr_utils.runs.finish_run` (``metrics.json``,
        ``threshold.json``, ``config.json``; ``model.keras`` for the loading section).
    title, notebook, architecture : str
        The model's name, the notebook that trains it, and a one-line description of
        the network (e.g. ``model.name`` and what it is made of).
    n_parameters : int
        The saved model's weights (``model.count_params()``).
    index, splits : pandas.DataFrame, pandas.Series
        The cached images' index (``split``, ``label`` columns) and each row's course split
        (:func:`cxr_utils.splits.course_splits`): the card counts images per split and class.
    seed_variance_model : str, optional
        This model's label in the seed benchmark's record (:func:`seed_spread`: ``"CNN (03)"``,
        ``"chosen transfer candidate (04)"``); without it, without a record, or when the record
        measured another configuration hash than this run's (a fast run, other settings), the
        card says the spread over seeds was not measured.
    member_runs : dict, optional
        The run folders (in the same ``runs`` folder) that saved an ensemble's other members, by
        member name (e.g. ``{"C: CNN from scratch (chapter 03)": "03_cnn_from_scratch"}``). When
        the run's ``measurements`` name more than one member (the run is an ensemble), the card
        says that its test metrics are the ensemble's, that ``model.keras`` is the first member,
        and where the ``model.keras`` of each other member listed here is.

    Raises
    ------
    FileNotFoundError
        If the run is not finished (a file of ``finish_run`` is missing).
    """
    folder = Path(run_dir)
    metrics, threshold, run_config = (_read(folder, n) for n in (METRICS_FILE, THRESHOLD_FILE, CONFIG_FILE))
    parameters = run_config.get("parameters", {})
    counts = pd.crosstab(splits.to_numpy(), index["label"].to_numpy())
    split_rows = [
        f"| {split} | {counts.loc[split].get('NORMAL', 0):,} | {counts.loc[split].get('PNEUMONIA', 0):,} | "
        f"{int(counts.loc[split].sum()):,} |"
        for split in ("train", "validation", "test")
        if split in counts.index
    ]
    metric_rows = [f"| {m} | {_interval(metrics['test'][m])} |" for m in _METRICS if m in metrics["test"]]
    rule = threshold["method"] + (
        f" (target sensitivity {threshold['target_sensitivity']})" if threshold.get("target_sensitivity") else ""
    )
    settings = ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in parameters.items() if k != "data_dir"
    )
    model_file = folder / MODEL_FILE
    shown_file = _shown_model_file(folder.parent, folder.name)
    data_dir = run_config.get("measurements", {}).get("data_dir") or parameters.get("data_dir", "a copy not recorded")
    sections = [
        f"# Model card: {title}",
        f"Run folder `{folder.name}`, trained by `{notebook}` ({settings}).",
        "## Intended use\n\n"
        "Teaching: how a chest X-ray classifier is trained, chosen on validation and evaluated once. "
        "**Not for diagnosis, triage or any clinical decision; not a medical device.** It outputs one number, "
        "the probability of PNEUMONIA, for a pediatric frontal chest X-ray.",
        "## Data and splits\n\n"
        f"Kermany et al. (2018) pediatric chest X-rays, read from `{data_dir}`: "
        f"{dataset_verdict(index)}. Validation is carved from the official train and val images, grouped "
        "by patient; test is the official test split, scored once.\n\n"
        "| split | NORMAL | PNEUMONIA | images |\n| --- | --- | --- | --- |\n" + "\n".join(split_rows),
        f"## Model\n\n{architecture}: {n_parameters:,} weights. Input: images in 0..255 as the notebook's "
        "batches serve them; output `(batch, 1)`, the probability of PNEUMONIA."
        + _ensemble_note(run_config.get("measurements", {}).get("members", []), member_runs or {}, folder.parent),
        f"## Test metrics (threshold {threshold['threshold']:.3f})\n\n"
        f"95% bootstrap intervals over the {metrics.get('n_test', '?')} test images "
        f"({metrics.get('bootstrap_resamples', '?')} resamples).\n\n"
        "| metric | value [95% interval] |\n| --- | --- |\n" + "\n".join(metric_rows),
        "## Spread over seeds and machines\n\n"
        + _seed_section(seed_variance_model, run_config.get("config_hash"), metrics["test"]),
        f"## Threshold\n\n{threshold['threshold']:.4f}, chosen by the {rule} rule on "
        f"{threshold.get('chosen_on', 'validation')}; never on test.",
        "## Known failure modes\n\n" + "\n".join(f"- {line}" for line in _failure_modes(metrics["test"])),
        "## How to load it\n\n"
        + (
            f"```python\nimport cxr_utils\n\nmodel = cxr_utils.load_model({shown_file!r})\n```\n\n"
            "One call in any Python with `cxr_utils` installed (the path is relative to the project folder): it "
            "registers the course's custom layers first; plain `keras.models.load_model` does not know them."
            if model_file.exists()
            else "This run saved no model file."
        ),
    ]
    return "\n\n".join(sections) + "\n"


def write_model_card(run_dir: str | os.PathLike, **kwargs) -> Path:
    """Write :func:`model_card` (same arguments) to ``<run_dir>/model_card.md`` and return its path."""
    path = Path(run_dir) / MODEL_CARD_FILE
    path.write_text(model_card(run_dir, **kwargs), encoding="utf-8")
    return path
