"""finish_run: the threshold comes from validation alone; artefacts are complete."""

import numpy as np
import pandas as pd

from cxr_utils.evaluate import binary_metrics, choose_threshold
from cxr_utils.experiment import finish_run
from cxr_utils.runs import load_predictions, read_json


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


def test_mean_logit_averages_log_odds():
    from cxr_utils.experiment import mean_logit

    np.testing.assert_allclose(mean_logit(np.array([0.5, 0.9]), np.array([0.5, 0.1])), [0.5, 0.5])
    # logit(0.8) = log 4, logit(0.5) = 0: the mean log-odds is log 2, i.e. probability 2/3
    np.testing.assert_allclose(mean_logit(np.array([0.8]), np.array([0.5])), [2 / 3])


def test_logistic_head_picks_c_on_validation():
    from cxr_utils.transfer import fit_logistic_head

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    features = rng.normal(size=(200, 5)) + y[:, None] * np.array([2.0, 0, 0, 0, 0])
    head = fit_logistic_head(features[:120], y[:120], features[120:], y[120:], Cs=(0.001, 1.0))
    assert set(head.validation_auc_by_c) == {0.001, 1.0}
    assert head.validation_auc_by_c[head.C] == max(head.validation_auc_by_c.values())
    assert head.predict_proba(features[120:]).shape == (80, 2)


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


def test_confident_errors_are_ordered_by_confidence():
    from cxr_utils.experiment import confident_errors

    predictions = pd.DataFrame(
        {"path": list("abcdefg"), "y_true": [0, 0, 0, 1, 1, 1, 0], "score": [0.9, 0.6, 0.1, 0.2, 0.45, 0.8, 0.99]}
    )
    errors = confident_errors(predictions, 0.5, n=2)
    assert errors["path"].tolist() == ["g", "a", "d", "e"]
    assert errors["error"].tolist() == ["false positive"] * 2 + ["false negative"] * 2
    assert len(confident_errors(predictions, 0.5, n=5)) == 5  # b is the third false positive


def test_versus_paper_verdicts_and_markdown():
    from cxr_utils.evaluate import PAPER, table_to_markdown, versus_paper

    frame = pd.DataFrame(
        {"value": [0.95, 0.99, 0.80, 0.97], "ci_low": [0.94, 0.98, 0.75, 0.95], "ci_high": [0.96, 1.0, 0.85, 0.99]},
        index=["accuracy", "sensitivity", "specificity", "roc_auc"],
    )
    table = versus_paper(frame)
    assert table["verdict"].tolist() == ["above the paper", "above the paper", "below the paper", "no difference shown"]
    assert table["paper"].to_dict() == PAPER
    text = table_to_markdown(table[["ours", "verdict"]])
    assert text.splitlines()[0] == "|  | ours | verdict |" and "| accuracy | 0.95 | above the paper |" in text
