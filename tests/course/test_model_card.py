"""The model card: every number comes from the run's files and the seed benchmark's record."""

import json

import numpy as np
import pandas as pd
import pytest

from cxr_course import cli
from cxr_course.model_card import MODEL_CARD_FILE, _data, model_card, write_model_card
from cxr_utils import runs as runs_module
from cxr_utils.dataset import LABELS, OFFICIAL_COUNTS
from cxr_utils.metrics import PAPER
from cxr_utils.runs import SEED_RECORD, finish_run, seed_spread


def _finished_run(folder, model=None, **measurements):
    """A run finished by ``finish_run`` on 60 made-up rows (20 train, 20 validation, 20 test)."""
    rng = np.random.default_rng(0)
    labels = np.array(["NORMAL", "PNEUMONIA"] * 30)
    index = pd.DataFrame(
        {"path": [f"x/{i}.jpeg" for i in range(60)], "split": ["train"] * 40 + ["test"] * 20, "label": labels}
    ).assign(patient_id=[f"p{i}" for i in range(60)], pathogen="none")
    splits = pd.Series(["train"] * 20 + ["validation"] * 20 + ["test"] * 20)
    scores = np.clip((labels == "PNEUMONIA") * 0.4 + rng.uniform(0, 0.6, 60), 0, 1)
    parameters = {"seed": 3, "epochs": 2, "architecture": "MobileNetV2", "alpha": 0.5}
    measurements = {"data_dir": "/data/copy", **measurements}
    finish_run(
        folder,
        index,
        splits,
        scores[20:40],
        scores[40:],
        model=model,
        n_boot=50,
        parameters=parameters,
        measurements=measurements,
    )


def test_the_card_reads_its_numbers_from_the_run(tmp_path):
    runs = tmp_path / "runs"
    _finished_run(runs / "03_cnn_from_scratch_fast")
    metrics = json.loads((runs / "03_cnn_from_scratch_fast" / "metrics.json").read_text())
    threshold = json.loads((runs / "03_cnn_from_scratch_fast" / "threshold.json").read_text())
    card = model_card("03_cnn_from_scratch_fast", runs)
    assert card.startswith("# Model card: CNN from scratch (chapter 03)")
    assert "Not for diagnosis" in card and "not a medical device" in card
    assert "| train | 10 | 10 | 20 |" in card and "| test | 10 | 10 | 20 |" in card
    assert "not the published counts (60 images" in card and "read from `/data/copy`" in card
    assert "seed=3, epochs=2" in card
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


def test_the_card_describes_the_saved_model_and_names_the_load_call(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 1))
    model = keras.Model(
        inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inputs)), name="tiny"
    )
    runs = tmp_path / "runs"
    _finished_run(runs / "03_cnn_from_scratch", model=model)
    path = write_model_card("03_cnn_from_scratch", runs)
    card = path.read_text()
    assert path == runs / "03_cnn_from_scratch" / MODEL_CARD_FILE
    assert "`tiny`: a VGG-style CNN (`build_cnn`), input (8, 8, 1): 65 weights." in card
    assert "cxr_utils.load_model('runs/03_cnn_from_scratch/model.keras')" in card


def test_an_ensemble_card_says_whose_metrics_and_where_its_members_are(tmp_path):
    runs = tmp_path / "runs"
    _finished_run(runs / "04_transfer_learning", chosen="D: ensemble", members=["B: top", "C: CNN"])
    card = model_card("04_transfer_learning", runs)
    assert card.startswith("# Model card: D: ensemble (chapter 04)")
    assert "ImageNet MobileNetV2 (alpha 0.5)" in card
    assert (
        "The test metrics are the ensemble's (B: top + C: CNN); `model.keras` is its first member; "
        "C: CNN is `runs/03_cnn_from_scratch/model.keras`." in card
    )
    _finished_run(runs / "04_transfer_learning_fast", chosen="B: top", members=["B: top"])
    assert "ensemble" not in model_card("04_transfer_learning_fast", runs)  # one member: no ensemble sentence


def _write_record(root, runs, **fields):
    """A seed record under ``root`` (a project folder): ``runs`` rows, measured at a made-up commit on two CPUs."""
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
    runs = tmp_path / "runs"
    _finished_run(runs / "03_cnn_from_scratch")
    own = json.loads((runs / "03_cnn_from_scratch" / "metrics.json").read_text())["test"]["accuracy"]["value"]
    monkeypatch.setattr(runs_module, "project_root", lambda: tmp_path)
    assert seed_spread().empty and "--record" in seed_spread().attrs["record"]
    _write_record(tmp_path, RUNS)
    card = model_card("03_cnn_from_scratch", runs)
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
    assert seed_spread(("chosen transfer candidate (04)",)).empty and seed_spread(()).empty
    _finished_run(runs / "04_transfer_learning", chosen="B: top", members=["B: top"])
    card = model_card("04_transfer_learning", runs)
    assert "Spread over seeds and machines\n\nNot measured for this model (a record: seeds 0, 1 on cpu A" in card


def test_a_run_of_another_configuration_is_not_given_the_records_spread(tmp_path, monkeypatch):
    """A fast run (or changed settings) has another configuration hash than the runs the record measured."""
    runs = tmp_path / "runs"
    _finished_run(runs / "03_cnn_from_scratch")
    own_hash = json.loads((runs / "03_cnn_from_scratch" / "config.json").read_text())["config_hash"]
    monkeypatch.setattr(runs_module, "project_root", lambda: tmp_path)
    _write_record(tmp_path, RUNS, config_hashes={"CNN (03)": "f00f00f00f00"})
    card = model_card("03_cnn_from_scratch", runs)
    assert "0.0200" not in card
    assert f"Not measured for this configuration: the record measured `f00f00f00f00`, this run is `{own_hash}`" in card
    _write_record(tmp_path, RUNS, config_hashes={"CNN (03)": own_hash})
    assert "| 0.9000 | 0.0200 | 0.8800 | 0.9200 | 3 |" in model_card("03_cnn_from_scratch", runs)


def test_an_unfinished_run_or_another_chapter_has_no_card(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match=r"execute notebooks/03_cnn_from_scratch\.ipynb first"):
        model_card("03_cnn_from_scratch", tmp_path)
    assert cli.main(["card", "05_error_analysis", "--runs", str(tmp_path)]) == 2
    assert "no model card for run '05_error_analysis'" in capsys.readouterr().err


def test_cxr_card_writes_the_card(tmp_path, capsys):
    _finished_run(tmp_path / "03_cnn_from_scratch_fast")
    assert cli.main(["card", "03_cnn_from_scratch_fast", "--runs", str(tmp_path)]) == 0
    assert "model card written to" in capsys.readouterr().out
    assert (tmp_path / "03_cnn_from_scratch_fast" / MODEL_CARD_FILE).is_file()


def test_the_data_verdict_compares_the_counts_with_the_official_ones():
    counts = {
        "train": {
            c: OFFICIAL_COUNTS[("train", c)] + OFFICIAL_COUNTS[("val", c)] - 300 for c in ("NORMAL", "PNEUMONIA")
        },
        "validation": {"NORMAL": 300, "PNEUMONIA": 300},
        "test": {c: OFFICIAL_COUNTS[("test", c)] for c in LABELS},
    }
    assert _data(counts)[0] == "the published counts (5,856 images)"
    counts["test"]["NORMAL"] -= 1
    assert _data(counts)[0].startswith("not the published counts (5,855 images")
