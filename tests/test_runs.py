"""Run folders: finish_run chooses the threshold on validation alone and writes every artefact; load_run reads them."""

import numpy as np
import pandas as pd

from cxr_utils.metrics import binary_metrics, choose_threshold
from cxr_utils.records import read_json
from cxr_utils.runs import _predictions as load_predictions
from cxr_utils.runs import finish_run


def _fixture(seed=0):
    rng = np.random.default_rng(seed)
    n = 120
    labels = np.where(np.arange(n) % 3 == 0, "NORMAL", "PNEUMONIA")
    index = pd.DataFrame(
        {
            "path": [f"x/{i}.jpeg" for i in range(n)],
            "split": ["train"] * 80 + ["test"] * 40,
            "label": labels,
            "patient_id": [f"p{i // 2}" for i in range(n)],
            "pathogen": ["none"] * n,
        }
    )
    splits = pd.Series(["train"] * 40 + ["validation"] * 40 + ["test"] * 40)
    y = (labels == "PNEUMONIA").astype(int)
    scores = np.clip(y * 0.4 + rng.uniform(0, 0.6, n), 0, 1)
    return index, splits, scores[40:80], scores[80:], y


def test_threshold_from_validation_and_artefacts(tmp_path):
    index, splits, validation_scores, test_scores, y = _fixture()
    result = finish_run(tmp_path, index, splits, validation_scores, test_scores, n_boot=100, parameters={"a": 1})
    assert result["threshold"] == choose_threshold(y[40:80], validation_scores)
    expected = binary_metrics(y[80:], test_scores, result["threshold"])
    assert result["test"].loc["accuracy", "value"] == expected["accuracy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json",
        "metrics.json",
        "predictions_test.csv",
        "predictions_validation.csv",
        "threshold.json",
    ]
    predictions = load_predictions(tmp_path / "predictions_test.csv")
    assert predictions["path"].tolist() == index["path"].iloc[80:].tolist()
    assert predictions["y_true"].tolist() == y[80:].tolist()
    np.testing.assert_allclose(predictions["score"], test_scores)
    metrics = read_json(tmp_path / "metrics.json")
    assert metrics["test"]["roc_auc"]["value"] == result["test"].loc["roc_auc", "value"]
    assert read_json(tmp_path / "config.json")["parameters"] == {"a": 1}


def test_test_scores_never_move_the_threshold(tmp_path):
    index, splits, validation_scores, test_scores, _ = _fixture()
    first = finish_run(tmp_path / "a", index, splits, validation_scores, test_scores, n_boot=50)
    second = finish_run(tmp_path / "b", index, splits, validation_scores, 1 - test_scores, n_boot=50)
    assert first["threshold"] == second["threshold"]


def test_run_reads_back_and_a_missing_run_names_its_notebook(tmp_path):
    import pytest

    from cxr_utils.runs import load_run

    index, splits, validation_scores, test_scores, _y = _fixture()
    result = finish_run(tmp_path / "demo", index, splits, validation_scores, test_scores, n_boot=50)
    run = load_run("demo", "notebooks/03_cnn_from_scratch.ipynb", root=tmp_path)
    assert run.threshold == result["threshold"]
    np.testing.assert_allclose(run.test["score"], test_scores)
    assert run.validation["path"].tolist() == index["path"].iloc[40:80].tolist()
    with pytest.raises(FileNotFoundError, match="saved no model"):
        run.load_model()
    with pytest.raises(FileNotFoundError, match=r"execute notebooks/04_transfer_learning\.ipynb first"):
        load_run("absent", "notebooks/04_transfer_learning.ipynb", root=tmp_path)


def test_run_folder_replace_deletes_an_earlier_run_and_says_so(tmp_path, capsys):
    from cxr_utils.runs import run_folder

    first = run_folder("03_exercise_wider", root=tmp_path)
    (first / "best.weights.h5").write_bytes(b"old model")
    assert (run_folder("03_exercise_wider", root=tmp_path) / "best.weights.h5").exists()  # kept by default
    again = run_folder("03_exercise_wider", root=tmp_path, replace=True)
    assert again == first and again.is_dir() and not any(again.iterdir())
    assert "Replaced the earlier run folder" in capsys.readouterr().out


def test_a_run_owns_its_tables_and_an_older_folder_is_refused(tmp_path):
    """Chapter 04's hand-off: its candidates' scores are inside the run's digests, its choice in measurements."""
    import json

    import pytest

    from cxr_utils.runs import RunFolderError, load_run

    index, splits, validation_scores, test_scores, _y = _fixture()
    candidates = pd.DataFrame({"path": index["path"].iloc[80:], "B": test_scores, "C": 1 - test_scores})
    choice = {"chosen": "B", "members": ["B"], "thresholds": {"B": 0.5, "C": 0.4}}
    folder = tmp_path / "04_transfer_learning"
    finish_run(
        folder,
        index,
        splits,
        validation_scores,
        test_scores,
        n_boot=20,
        measurements=choice,
        tables={"candidates_test": candidates},
    )
    run = load_run(folder.name, root=tmp_path)
    pd.testing.assert_frame_equal(run.table("candidates_test"), candidates.reset_index(drop=True))
    assert run.measurements["chosen"] == "B" and run.measurements["thresholds"]["C"] == 0.4
    with pytest.raises(RunFolderError, match="has no table 'candidates_validation'"):
        run.table("candidates_validation")
    (folder / "candidates_test.csv").write_text("path,B,C\nx/80.jpeg,1,0\n")  # a table edited or left by another run
    with pytest.raises(RunFolderError, match=r"candidates_test\.csv is not the file the run recorded"):
        load_run(folder.name, root=tmp_path)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("files")  # as written before run folders recorded their files' digests
    (folder / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RunFolderError, match=r"cannot be read.*execute chapter 04 again"):
        load_run(folder.name, root=tmp_path)
