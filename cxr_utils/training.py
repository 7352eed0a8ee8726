"""Training with seeds, early stopping on validation ROC AUC, checkpoints, a CSV log, and resume.

:func:`course_callbacks` is written out in chapter 03 (``notebooks/03_cnn_from_scratch.ipynb``),
where a learner reads and edits it, and saved here with the same code; the chapter's training
cell is those callbacks and ``model.fit``, between :func:`resume_or_start` and
:func:`restore_best`, which :func:`fit_with_callbacks` does in one call for chapter 04, the
exercises and scripts. It writes into a run folder:

``history.csv``       one row per epoch (loss, auc, accuracy, their ``val_`` twins, learning rate)
``best.weights.h5``   the weights of the epoch with the best validation ROC AUC
``backup/``           the state after the last finished epoch, while training runs

If the process is interrupted (a killed kernel, a CI timeout), calling
:func:`fit_with_callbacks` again with the same run folder resumes after the last finished
epoch, with the weights, optimizer state and best score it had reached. Calling it again on
a finished run starts a new run: the old log and weights are kept as
``previous.history.csv`` and ``previous.best.weights.h5``, and the new model never loads them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import keras
import pandas as pd

__all__ = [
    "HISTORY_FILE",
    "set_seeds",
    "epoch_progress",
    "read_history",
    "resume_or_start",
    "restore_best",
    "course_callbacks",
    "fit_with_callbacks",
]

HISTORY_FILE = "history.csv"
BEST_WEIGHTS_FILE = "best.weights.h5"


def set_seeds(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend (weights, dropout, augmentation)."""
    keras.utils.set_random_seed(seed)


def epoch_progress(epochs: int) -> keras.callbacks.Callback:
    """A text progress bar over the epochs of ``model.fit``: the last epoch's metrics and the time left.

    tqdm's Keras callback, with its text bar (an executed notebook keeps its last state) on
    standard output inside a Jupyter kernel, like every progress bar of the course.
    """
    from tqdm.keras import TqdmCallback
    from tqdm.std import tqdm

    return TqdmCallback(
        epochs=epochs, verbose=0, tqdm_class=tqdm, file=sys.stdout if "ipykernel" in sys.modules else sys.stderr
    )


def read_history(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The epochs logged in ``run_dir/history.csv`` (an empty frame when there are none)."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    return pd.read_csv(path)


def resume_or_start(run_dir: str | os.PathLike) -> float | None:
    """Prepare ``run_dir`` for training: resume an interrupted run, set a finished one aside.

    An interrupted run (its ``backup/`` folder is there) keeps its log and best weights,
    and its best validation ROC AUC so far is returned, for the checkpoint and early
    stopping to start from. Otherwise the run is new: a finished run's log and weights are
    renamed ``previous.*``, never taken for the new run's, and ``None`` is returned.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "backup").exists():  # the backup exists only while a run is unfinished
        for name in (HISTORY_FILE, BEST_WEIGHTS_FILE):
            if (run_dir / name).exists():
                os.replace(run_dir / name, run_dir / f"previous.{name}")
    done = read_history(run_dir)  # the epochs an interrupted run finished
    return float(done["val_auc"].max()) if "val_auc" in done and len(done) else None


def restore_best(model: keras.Model, run_dir: str | os.PathLike) -> pd.DataFrame:
    """Give ``model`` the weights of its best epoch (when a checkpoint was saved); the history, one row per epoch."""
    if (Path(run_dir) / BEST_WEIGHTS_FILE).exists():
        model.load_weights(str(Path(run_dir) / BEST_WEIGHTS_FILE))
    return read_history(run_dir)


# Saved from notebooks/03_cnn_from_scratch.ipynb: the chapter writes it out; keep both copies' code identical.
def course_callbacks(
    run_dir: str | os.PathLike,
    *,
    patience: int = 4,
    reduce_lr_patience: int = 2,
    resume_from: float | None = None,
    averaged: bool = False,
) -> list[keras.callbacks.Callback]:
    """The callbacks of the course's training; all watch validation ROC AUC (``val_auc``).

    ``resume_from``: the best validation ROC AUC an interrupted run reached (None for a new
    run). ``averaged``: the optimizer keeps an average of the weights (``use_ema``), which is
    what is validated and checkpointed.
    """
    callbacks = [
        # the state after every epoch: a rerun after a crash continues from there
        keras.callbacks.BackupAndRestore(f"{run_dir}/backup", save_freq="epoch", delete_checkpoint=True),
        # halve the learning rate when validation ROC AUC stalls
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_auc", mode="max", factor=0.5, patience=reduce_lr_patience, min_lr=1e-5
        ),
        # the weights of the best epoch so far
        keras.callbacks.ModelCheckpoint(
            f"{run_dir}/best.weights.h5",
            monitor="val_auc",
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=resume_from,
        ),
        # stop when validation ROC AUC has not improved for `patience` epochs
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience, baseline=resume_from),
        # one row per epoch in history.csv
        keras.callbacks.CSVLogger(f"{run_dir}/history.csv", append=True),
    ]
    if averaged:  # swap the averaged weights in for validation and checkpoints (after the backup)
        callbacks.insert(1, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    return callbacks


def fit_with_callbacks(
    model: keras.Model,
    train: keras.utils.PyDataset,
    validation: keras.utils.PyDataset,
    *,
    run_dir: str | os.PathLike,
    epochs: int,
    class_weight: dict[int, float] | None = None,
    patience: int = 4,
    reduce_lr_patience: int = 2,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | str = 0,
) -> pd.DataFrame:
    """``model.fit`` with :func:`course_callbacks`: the best epoch by validation ROC AUC kept, every epoch logged.

    ``model`` is compiled with an ``auc`` metric; ``train`` and ``validation`` are batches;
    ``class_weight`` is ``{0: w, 1: w}``; ``epochs`` counts a resumed run's epochs too.
    A text bar shows the epochs, the last one's metrics and the time left (``verbose=2`` adds
    Keras's line per epoch). Returns the history, one row per epoch; the model then holds its
    best epoch's weights.
    """
    resume_from = resume_or_start(run_dir)  # resume an interrupted run, set a finished one aside
    callbacks = course_callbacks(
        run_dir,
        patience=patience,
        reduce_lr_patience=reduce_lr_patience,
        resume_from=resume_from,
        averaged=model.optimizer.use_ema,
    )
    model.fit(
        train,
        validation_data=validation,
        epochs=epochs,
        class_weight=class_weight,
        callbacks=[*callbacks, epoch_progress(epochs), *(extra_callbacks or [])],
        verbose=verbose,
    )
    return restore_best(model, run_dir)
