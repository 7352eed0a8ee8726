"""Training with seeds, early stopping on validation ROC AUC, checkpoints, a CSV log, and resume.

:func:`fit` writes into a run folder:

``history.csv``       one row per epoch (loss, auc, accuracy, their ``val_`` twins, learning rate)
``best.weights.h5``   the weights of the epoch with the best validation ROC AUC
``backup/``           the state after the last finished epoch, while training runs

If the process is interrupted (a killed kernel, a CI timeout), calling :func:`fit`
again with the same run folder resumes after the last finished epoch, with the
weights, optimizer state and best score it had reached.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import pandas as pd

__all__ = ["set_seeds", "fit", "read_history"]

MONITOR = "val_auc"


def set_seeds(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend (weights, dropout, augmentation)."""
    keras.utils.set_random_seed(seed)


def read_history(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The epochs logged in ``run_dir/history.csv`` (empty frame when none)."""
    path = Path(run_dir) / "history.csv"
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    return pd.read_csv(path)


def fit(
    model: keras.Model,
    train: keras.utils.PyDataset,
    validation: keras.utils.PyDataset,
    *,
    run_dir: str | os.PathLike,
    epochs: int,
    class_weight: dict[int, float] | None = None,
    patience: int = 4,
    reduce_lr_patience: int | None = 2,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | str = "auto",
) -> pd.DataFrame:
    """Train ``model`` (compiled with an ``auc`` metric), keep its best epoch, log everything.

    Parameters
    ----------
    model : keras.Model
        Compiled, e.g. by :func:`cxr_utils.models.compile_binary`.
    train, validation : keras.utils.PyDataset
        Batches (see :class:`cxr_utils.pipeline.CachedBatches`).
    run_dir : path-like
        The run folder (created if needed). An unfinished run there is resumed.
    epochs : int
        Maximum number of epochs in all (a resumed run counts the epochs already done).
    class_weight : dict, optional
        ``{0: w, 1: w}`` loss weights (see :func:`cxr_utils.splits.class_weights`).
    patience : int
        Stop after this many epochs without a better validation ROC AUC.
    reduce_lr_patience : int or None
        Halve the learning rate after this many epochs without improvement (None: never).
    extra_callbacks : list, optional
        Run after the built-in ones.

    Returns
    -------
    pandas.DataFrame
        The whole history (all epochs, across resumes), one row per epoch. On return
        the model holds the weights of the best epoch.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    best_path = run_dir / "best.weights.h5"
    done = read_history(run_dir)
    best_so_far = float(done[MONITOR].max()) if MONITOR in done and len(done) else None
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), save_freq="epoch", delete_checkpoint=True),
        keras.callbacks.ModelCheckpoint(
            str(best_path),
            monitor=MONITOR,
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best_so_far,
        ),
        keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=patience, baseline=best_so_far),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]
    if reduce_lr_patience is not None:
        callbacks.insert(
            1,
            keras.callbacks.ReduceLROnPlateau(
                monitor=MONITOR, mode="max", factor=0.5, patience=reduce_lr_patience, min_lr=1e-5
            ),
        )
    model.fit(
        train,
        validation_data=validation,
        epochs=epochs,
        class_weight=class_weight,
        callbacks=callbacks + list(extra_callbacks or []),
        verbose=verbose,
    )
    if best_path.exists():
        model.load_weights(str(best_path))
    return read_history(run_dir)
