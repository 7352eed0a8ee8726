"""The model card: every number comes from the run's files, the index and the seed benchmark."""

import json

import numpy as np
import pandas as pd
import pytest

from cxr_utils.dataset import OFFICIAL_COUNTS
from cxr_utils.metrics import PAPER
from cxr_utils.model_card import MODEL_CARD_FILE, dataset_verdict, model_card, write_model_card
from cxr_utils.runs import finish_run


def _finished_run(folder):
    """A run finished by ``finish_run`` on 60 made-up rows (20 train, 20 validation, 20 test)."""
    rng = np.random.default_rng(0)
    labels = np.array(["NORMAL", "PNEUMONIA"] * 30)
    index = pd.DataFrame(
        {"path": [f"x/{i}.jpeg" for i in range(60)], "split": ["train"] * 40 + ["test"] * 20, "label": labels}
    ).assign(patient_id=[f"p{i}" for i in range(60)], pathogen="none")
    splits = pd.Series(["train"] * 20 + ["validation"] * 20 + ["test"] * 20)
    scores = np.clip((labels == "PNEUMONIA") * 0.4 + rng.uniform(0, 0.6, 60), 0, 1)
    finish_run(
        folder,
        index,
        splits,
        scores[20:40],
        scores[40:],
        n_boot=50,
        parameters={"seed": 3, "epochs": 2},
        measurements={"data_dir": "/data/copy"},
    )
    return index, splits


CARD = dict(
    title="Tiny", notebook="notebooks/03_cnn_from_scratch.ipynb", architecture="tiny: one conv", n_parameters=1234
)


def test_the_card_reads_its_numbers_from_the_run(tmp_path):
    folder = tmp_path / "runs" / "demo"
    index, splits = _finished_run(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    threshold = json.loads((folder / "threshold.json").read_text())
    card = model_card(folder, index=index, splits=splits, **CARD)

    assert "Not for diagnosis" in card and "not a medical device" in card
    assert "| train | 10 | 10 | 20 |" in card and "| test | 10 | 10 | 20 |" in card
    assert "not the published counts (60 images" in card
    assert "read from `/data/copy`" in card
    assert "1,234 weights" in card and "seed=3, epochs=2" in card
    roc = metrics["test"]["roc_auc"]
    assert f"| roc_auc | {roc['value']:.3f} [{roc['ci_low']:.3f}, {roc['ci_high']:.3f}] |" in card
    assert f"over the {metrics['n_test']} test images (50 resamples)" in card
    assert f"{threshold['threshold']:.4f}, chosen by the youden rule on validation" in card
    specificity = metrics["test"]["specificity"]["value"]
    assert f"specificity is {specificity:.3f}, Kermany et al.'s {PAPER['specificity']:.3f}" in card
    assert "05_error_analysis.ipynb#9.-Why-is-our-specificity-below-the-paper's?" in card
    assert "side markers" in card and "other hospitals" in card
    assert "Spread over seeds and machines\n\nNot measured" in card
    assert "This run saved no model file." in card  # finish_run was given no model


def test_an_ensemble_card_says_whose_metrics_and_where_its_members_are(tmp_path):
    index, splits = _finished_run(tmp_path / "single")
    single = model_card(tmp_path / "single", index=index, splits=splits, **CARD)
    assert "ensemble" not in single  # one member (none recorded): no ensemble sentence
    folder = tmp_path / "runs" / "ensemble"  # beside its member runs, in a runs folder
    _finished_run(folder)
    config = json.loads((folder / "config.json").read_text())
    config["measurements"]["members"] = ["B: top", "C: CNN"]
    (folder / "config.json").write_text(json.dumps(config))
    card = model_card(folder, index=index, splits=splits, member_runs={"C: CNN": "03_cnn_from_scratch"}, **CARD)
    assert (
        "The test metrics are the ensemble's (B: top + C: CNN); `model.keras` is its first member; "
        "C: CNN is `runs/03_cnn_from_scratch/model.keras`." in card
    )


def _write_record(root, runs, **fields):
    """A seed record under ``root`` (a project folder): ``runs`` rows, measured at a made-up commit on two CPUs."""
    from cxr_utils.runs import SEED_RECORD

    measured = {"command": "python benchmarks/seed_variance.py --record", "commit": "0123456789abcdef" * 2}
    record = {
        "command": "python benchmarks/seed_variance.py --seeds <seeds> --record",
        "data": "chest_xray_224, full mode",
        "measurements": [
            {**measured, "cpu_kind": "cpu A (avx2)", "seeds": [0, 1], "date": "2026-11-29"},
            {**measured, "cpu_kind": "cpu B (avx2 avx512f)", "seeds": [0], "date": "2026-12-07"},
        ],
        "runs": runs,
        **fields,
    }
    (root / SEED_RECORD).parent.mkdir(parents=True, exist_ok=True)
    (root / SEED_RECORD).write_text(json.dumps(record))


#: Three runs of the CNN (accuracy 0.88, 0.90, 0.92: mean 0.9, sd 0.02) on two CPU kinds, and one of another model.
RUNS = [
    {"model": "CNN (03)", "seed": 0, "cpu_kind": "cpu A (avx2)", "accuracy": 0.88},
    {"model": "CNN (03)", "seed": 1, "cpu_kind": "cpu A (avx2)", "accuracy": 0.92},
    {"model": "CNN (03)", "seed": 0, "cpu_kind": "cpu B (avx2 avx512f)", "accuracy": 0.90},
    {"model": "other", "seed": 0, "cpu_kind": "cpu A (avx2)", "accuracy": 0.5},
]


def test_the_spread_over_runs_comes_from_the_committed_record(tmp_path, monkeypatch):
    from cxr_utils import runs as model_card_module
    from cxr_utils.runs import seed_spread

    folder = tmp_path / "runs" / "demo"
    index, splits = _finished_run(folder)
    own = json.loads((folder / "metrics.json").read_text())["test"]["accuracy"]["value"]
    monkeypatch.setattr(model_card_module, "project_root", lambda: tmp_path)
    assert seed_spread().empty and "--record" in seed_spread().attrs["record"]
    _write_record(tmp_path, RUNS)
    card = model_card(folder, index=index, splits=splits, seed_variance_model="CNN (03)", **CARD)
    assert f"| accuracy | {own:.4f} | 0.9000 | 0.0200 | 0.8800 | 0.9200 | 3 |" in card and "0.5000" not in card
    assert "seeds 0, 1 on cpu A (avx2) at 0123456789 (2026-11-29); seeds 0 on cpu B (avx2 avx512f)" in card
    assert "over seeds and 2 CPU kind(s)" in card
    spread = seed_spread(("CNN (03)",))
    assert spread.loc[("CNN (03)", "accuracy"), "sd"] == pytest.approx(0.02)
    assert spread.attrs["cpu_kinds"] == ["cpu A (avx2)", "cpu B (avx2 avx512f)"]
    frame = pd.DataFrame({"value": [0.95]}, index=["accuracy"])
    compared = seed_spread(("CNN (03)",), this_run={"CNN (03)": frame})
    assert compared.loc[("CNN (03)", "accuracy"), "this run"] == 0.95
    assert not compared.loc[("CNN (03)", "accuracy"), "inside the range"]  # above the highest recorded run
    # a model the record did not measure: said so, not a KeyError
    unmeasured = "chosen transfer candidate (04)"
    assert seed_spread((unmeasured,)).empty and seed_spread(()).empty
    card = model_card(folder, index=index, splits=splits, seed_variance_model=unmeasured, **CARD)
    assert "Spread over seeds and machines\n\nNot measured for this model (a record: seeds 0, 1 on cpu A" in card


def test_a_run_of_another_configuration_is_not_given_the_records_spread(tmp_path, monkeypatch):
    """A fast run (or changed settings) has another configuration hash than the runs the record measured."""
    from cxr_utils import runs as model_card_module

    folder = tmp_path / "runs" / "demo"
    index, splits = _finished_run(folder)
    own_hash = json.loads((folder / "config.json").read_text())["config_hash"]
    monkeypatch.setattr(model_card_module, "project_root", lambda: tmp_path)
    _write_record(tmp_path, RUNS, config_hashes={"CNN (03)": "f00f00f00f00"})
    card = model_card(folder, index=index, splits=splits, seed_variance_model="CNN (03)", **CARD)
    assert "0.0200" not in card
    assert f"Not measured for this configuration: the record measured `f00f00f00f00`, this run is `{own_hash}`" in card
    _write_record(tmp_path, RUNS, config_hashes={"CNN (03)": own_hash})
    card = model_card(folder, index=index, splits=splits, seed_variance_model="CNN (03)", **CARD)
    assert "| 0.9000 | 0.0200 | 0.8800 | 0.9200 | 3 |" in card


def test_write_puts_the_card_beside_the_model_and_names_the_load_call(tmp_path):
    folder = tmp_path / "runs" / "demo"
    index, splits = _finished_run(folder)
    (folder / "model.keras").write_bytes(b"")  # the card only names the file
    path = write_model_card(folder, index=index, splits=splits, **CARD)
    assert path == folder / MODEL_CARD_FILE
    assert "cxr_utils.load_model('runs/demo/model.keras')" in path.read_text()


def test_an_unfinished_run_has_no_card(tmp_path):
    index = pd.DataFrame({"split": ["train"], "label": ["NORMAL"]})
    with pytest.raises(FileNotFoundError, match="finish the run"):
        model_card(tmp_path, index=index, splits=pd.Series(["train"]), **CARD)


def test_the_dataset_verdict_compares_the_counts_with_the_official_ones():
    rows = [(split, label) for (split, label), n in OFFICIAL_COUNTS.items() for _ in range(n)]
    official = pd.DataFrame(rows, columns=["split", "label"])
    assert dataset_verdict(official).startswith("the official Kaggle layout's published counts (5,856 images)")
    assert dataset_verdict(official.iloc[1:]).startswith("not the published counts (5,855 images")
