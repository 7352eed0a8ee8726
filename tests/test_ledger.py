"""The test ledger: every call of finish_run, the one door to the test labels, leaves a row."""

import numpy as np
import pandas as pd

from cxr_course import cli
from cxr_utils.records import (
    LEDGER_COLUMNS,
    LEDGER_FILE,
    _git_state,
    configuration_hash,
    read_json,
    read_ledger,
    summarise,
)
from cxr_utils.runs import finish_run


def _fixture(seed=0):
    rng = np.random.default_rng(seed)
    n = 90
    labels = np.where(np.arange(n) % 3 == 0, "NORMAL", "PNEUMONIA")
    index = pd.DataFrame(
        {"path": [f"x/{i}.jpeg" for i in range(n)], "split": ["train"] * 60 + ["test"] * 30, "label": labels}
    ).assign(patient_id=[f"p{i}" for i in range(n)], pathogen="none")
    splits = pd.Series(["train"] * 30 + ["validation"] * 30 + ["test"] * 30)
    scores = np.clip((labels == "PNEUMONIA") * 0.4 + rng.uniform(0, 0.6, n), 0, 1)
    return index, splits, scores[30:60], scores[60:]


def test_every_scoring_appends_one_row(tmp_path):
    index, splits, validation, test = _fixture()
    runs = tmp_path / "runs"
    assert read_ledger(runs).empty and list(read_ledger(runs).columns) == list(LEDGER_COLUMNS)
    first = finish_run(runs / "a", index, splits, validation, test, n_boot=20, parameters={"lr": 1e-3, "seed": 0})
    finish_run(runs / "a", index, splits, validation, test, n_boot=20, parameters={"lr": 1e-3, "seed": 1})
    finish_run(runs / "b", index, splits, validation, 1 - test, n_boot=20, parameters={"lr": 1e-4, "seed": 0})
    ledger = read_ledger(runs)
    assert len(ledger) == 3 and (runs / LEDGER_FILE).exists()
    assert ledger["run"].tolist() == ["a", "a", "b"] and ledger["seed"].tolist() == [0, 1, 0]
    assert ledger.loc[0, "config_hash"] == ledger.loc[1, "config_hash"] != ledger.loc[2, "config_hash"]
    assert ledger.loc[0, "accuracy"] == round(first["test"].loc["accuracy", "value"], 6)
    assert ledger.loc[0, "threshold"] == round(first["threshold"], 6) and ledger.loc[0, "n_test"] == 30
    commit, dirty = _git_state()
    assert ledger.loc[0, "git_commit"] == commit and str(ledger.loc[0, "git_dirty"]) == str(dirty)
    assert read_json(runs / "a" / "config.json")["config_hash"] == ledger.loc[0, "config_hash"]
    assert "3 time(s)" in summarise(ledger) and "2 distinct configuration(s)" in summarise(ledger)


def test_the_hash_ignores_the_seed_and_the_measurements(tmp_path):
    assert configuration_hash({"lr": 1e-3, "seed": 0}) == configuration_hash({"seed": 5, "lr": 1e-3})
    assert configuration_hash({"lr": 1e-3}) != configuration_hash({"lr": 1e-4})
    index, splits, validation, test = _fixture()
    for minutes in (1.0, 2.0):
        finish_run(
            tmp_path / "r",
            index,
            splits,
            validation,
            test,
            n_boot=20,
            parameters={"lr": 1},
            measurements={"min": minutes},
        )
    assert read_ledger(tmp_path)["config_hash"].nunique() == 1
    assert read_json(tmp_path / "r" / "config.json")["measurements"] == {"min": 2.0}


def test_another_keras_backend_is_another_configuration(tmp_path, monkeypatch):
    import keras

    index, splits, validation, test = _fixture()
    finish_run(tmp_path / "tf", index, splits, validation, test, n_boot=20, parameters={"lr": 1, "seed": 0})
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    finish_run(tmp_path / "torch", index, splits, validation, test, n_boot=20, parameters={"lr": 1, "seed": 0})
    tensorflow, torch = read_ledger(tmp_path)["config_hash"]
    assert tensorflow == configuration_hash({"lr": 1})  # TensorFlow's runs keep their hashes
    assert torch != tensorflow
    assert read_json(tmp_path / "torch" / "config.json")["parameters"] == {"lr": 1, "seed": 0, "keras_backend": "torch"}
    assert read_json(tmp_path / "torch" / "config.json")["software"]["keras_backend"] == "torch"  # one answer


def test_cxr_ledger_prints_every_scoring(tmp_path, capsys):
    assert cli.main(["ledger", "--runs", str(tmp_path)]) == 0
    assert "has not been scored" in capsys.readouterr().out
    index, splits, validation, test = _fixture()
    finish_run(tmp_path / "cnn", index, splits, validation, test, n_boot=20, parameters={"seed": 0})
    assert cli.main(["ledger", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cnn" in out and "scored 1 time(s) on this machine, for 1 distinct configuration(s)" in out


def test_the_course_summary_states_the_ledger(tmp_path):
    from cxr_course.runner import _write_summary

    index, splits, validation, test = _fixture()
    finish_run(tmp_path / "runs" / "cnn", index, splits, validation, test, n_boot=20, parameters={"seed": 0})
    markdown, summary_json = _write_summary([], tmp_path / "build", data_dir="d", fast=True, runs_dir=tmp_path / "runs")
    assert "scored 1 time(s) on this machine, for 1 distinct configuration(s)" in markdown.read_text()
    assert read_json(summary_json)["test_ledger"] == {
        "scorings": 1,
        "configurations": 1,
        "by_test_images": {
            "official": {"scorings": 0, "configurations": 0},  # made-up paths are not the official test split
            "other": {"scorings": 1, "configurations": 1},
            "unknown": {"scorings": 0, "configurations": 0},
        },
    }


def test_a_ledger_from_an_older_version_reads_with_every_row_once(tmp_path):
    """Older headers lack the test-image columns; the old race could repeat the header inside the file."""
    old = "time_utc,git_commit,git_dirty,run,config_hash,seed,n_test,threshold,accuracy,sensitivity,specificity,"
    old += "roc_auc,pr_auc\r\n"
    row = "2025-01-01T00:00:00+00:00,abc,False,cnn,0123456789ab,0,624,0.5,0.9,0.9,0.9,0.95,0.96\r\n"
    (tmp_path / LEDGER_FILE).write_text(old + row + old + row)
    index, splits, validation, test = _fixture()
    finish_run(tmp_path / "cnn", index, splits, validation, test, n_boot=20, parameters={"seed": 0})
    ledger = read_ledger(tmp_path)
    assert len(ledger) == 3 and list(ledger.columns) == list(LEDGER_COLUMNS)
    assert ledger["n_test"].tolist() == [624, 624, 30] and ledger["roc_auc"].dtype.kind == "f"
    assert ledger["official_test_paths"].isna().tolist() == [True, True, False]
    assert "unknown test images (rows from before the ledger recorded them) 2 time(s)" in summarise(ledger)
