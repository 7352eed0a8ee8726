"""The end of every training chapter: predict, choose the threshold on validation, test once, save.

:func:`finish_run` is the single place where a model meets the official test split:
the threshold is chosen on validation predictions only, then applied unchanged to
the test predictions, and everything is written to the run folder (see
:mod:`cxr_utils.runs`) for notebook 05.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from scipy.special import expit

from .evaluate import bootstrap_ci, choose_threshold, clipped_logit, metrics_to_json
from .pipeline import CachedBatches, predict_batches
from .runs import save_predictions, software_versions, write_json

__all__ = ["predict_scores", "mean_logit", "finish_run", "confident_errors"]


def predict_scores(model: keras.Model, images: np.ndarray, *, batch_size: int = 64, channels: int = 1) -> np.ndarray:
    """Probabilities of PNEUMONIA for cached images.

    Parameters
    ----------
    images : numpy.ndarray
        Shape ``(n, size, size)``, uint8.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``, float64 in 0..1.
    """
    return predict_batches(model, CachedBatches(images, np.zeros(len(images)), batch_size, channels=channels))


def mean_logit(*scores: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Ensemble probabilities by averaging their log-odds (then back to a probability).

    Parameters
    ----------
    *scores : numpy.ndarray
        Probabilities of PNEUMONIA from several models, each shape ``(n,)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``.
    """
    return expit(np.mean([clipped_logit(s, eps) for s in scores], axis=0))


def finish_run(
    run_dir: str | os.PathLike,
    index: pd.DataFrame,
    splits: pd.Series,
    validation_scores: np.ndarray,
    test_scores: np.ndarray,
    *,
    model: keras.Model | None = None,
    threshold_method: str = "youden",
    target_sensitivity: float | None = None,
    threshold_data: tuple[np.ndarray, np.ndarray] | None = None,
    threshold_note: str = "validation (patient-grouped, carved from official train + val)",
    n_boot: int = 2000,
    seed: int = 0,
    parameters: dict | None = None,
) -> dict:
    """Choose the threshold on validation, evaluate on test with 95% CIs, save the artefacts.

    Parameters
    ----------
    run_dir : path-like
        The run folder.
    index : pandas.DataFrame
        The cached images' index rows (``ImageCache.index``).
    splits : pandas.Series
        Course split of each row (:func:`cxr_utils.splits.course_splits`).
    validation_scores, test_scores : numpy.ndarray
        Predicted probabilities for the ``validation`` and ``test`` rows, in index order.
    model : keras.Model, optional
        Saved as ``model.keras`` when given.
    threshold_method, target_sensitivity :
        As :func:`cxr_utils.evaluate.choose_threshold`.
    threshold_data : (labels, scores), optional
        Validation data to choose the threshold on instead of the validation rows'
        predictions (e.g. validation plus stressed copies of it). Never test data.
    threshold_note : str
        What the threshold was chosen on, written to ``threshold.json``.
    n_boot : int
        Bootstrap resamples for the intervals (validation resamples whole patients).
    parameters : dict, optional
        Written to ``config.json`` with the software versions.

    Returns
    -------
    dict
        ``threshold``, ``validation`` and ``test``: bootstrap frames (index: metric;
        columns ``value``, ``ci_low``, ``ci_high``).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    validation_rows = index[(splits == "validation").to_numpy()]
    test_rows = index[(splits == "test").to_numpy()]
    y_validation = (validation_rows["label"] == "PNEUMONIA").to_numpy(dtype=int)
    y_test = (test_rows["label"] == "PNEUMONIA").to_numpy(dtype=int)

    y_choose, s_choose = threshold_data if threshold_data is not None else (y_validation, validation_scores)
    threshold = choose_threshold(y_choose, s_choose, method=threshold_method, target_sensitivity=target_sensitivity)
    validation = bootstrap_ci(
        y_validation, validation_scores, threshold, n_boot=n_boot, seed=seed, groups=validation_rows["patient_id"]
    )
    test = bootstrap_ci(y_test, test_scores, threshold, n_boot=n_boot, seed=seed)

    save_predictions(run_dir / "predictions_validation.csv", validation_rows, validation_scores)
    save_predictions(run_dir / "predictions_test.csv", test_rows, test_scores)
    write_json(
        run_dir / "threshold.json",
        {
            "threshold": threshold,
            "method": threshold_method,
            "target_sensitivity": target_sensitivity,
            "chosen_on": threshold_note,
        },
    )
    write_json(
        run_dir / "metrics.json",
        {
            "threshold": threshold,
            "validation": metrics_to_json(validation),
            "test": metrics_to_json(test),
            "n_validation": len(y_validation),
            "n_test": len(y_test),
            "bootstrap_resamples": n_boot,
        },
    )
    write_json(run_dir / "config.json", {"parameters": parameters or {}, "software": software_versions()})
    if model is not None:
        model.save(run_dir / "model.keras")
    return {"threshold": threshold, "validation": validation, "test": test}


def confident_errors(predictions: pd.DataFrame, threshold: float, n: int = 4) -> pd.DataFrame:
    """The most confident mistakes: up to ``n`` false positives and ``n`` false negatives.

    Parameters
    ----------
    predictions : pandas.DataFrame
        With ``y_true`` (1 = PNEUMONIA) and ``score`` columns (a run's prediction file).
    threshold : float
        The operating threshold: ``score >= threshold`` is PNEUMONIA.
    n : int
        Most rows of each kind.

    Returns
    -------
    pandas.DataFrame
        The rows, false positives first (highest score first), then false negatives
        (lowest score first), with a column ``error`` ("false positive" or "false negative").
    """
    predicted = predictions["score"] >= threshold
    positives = predictions[(predictions["y_true"] == 0) & predicted].nlargest(n, "score")
    negatives = predictions[(predictions["y_true"] == 1) & ~predicted].nsmallest(n, "score")
    return pd.concat([positives.assign(error="false positive"), negatives.assign(error="false negative")])
