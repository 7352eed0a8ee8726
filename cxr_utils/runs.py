"""Run folders: the end of every training chapter, and where later chapters read it back.

:func:`finish_run` is the single place where a model meets the official test split:
the threshold is chosen on validation predictions only, then applied unchanged to the
test predictions, the scoring is logged in the ledger (:mod:`cxr_utils.ledger`), and the
results are written to the run folder. :func:`load_run` reads the folder back. A run folder
(``runs/<name>/`` by default, outside git) holds the files named by the constants below:

``model.keras``                  the trained model (best epoch)
``history.csv``, ``best.weights.h5``  the training log and best weights (:mod:`cxr_utils.training`)
``predictions_validation.csv``   one row per validation image: path, label, y_true, score, ...
``predictions_test.csv``         the same for the official test split
``threshold.json``               the operating threshold and how it was chosen on validation
``config.json``                  the run's parameters, measurements and software versions
``<table>.csv``                  the run's extra tables, e.g. chapter 04's candidates' scores
``metrics.json``                 test and validation metrics with 95% intervals, the run
                                 folder's format, and the SHA-256 of every other result file

A rerun never leaves a mixture of two runs: results are staged and moved into place when
complete, ``metrics.json`` last, and :func:`load_run` checks every file against its digests.
Two finishes of one run take turns (a file lock, ``<runs>/.<name>.finishing.lock``). A folder
of an older format (:data:`RUN_FORMAT`) is refused, naming the chapter to execute again.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from . import runs_dir, software_versions
from .dataset import binary_labels
from .images import file_sha256
from .ledger import _with_backend, append_scoring
from .metrics import bootstrap_ci, choose_threshold
from .records import RecordError, load_predictions, read_json, save_predictions, write_json
from .tables import metrics_to_json

if TYPE_CHECKING:  # keras loads only when a model is saved or loaded
    import keras

__all__ = [
    "RunFolderError",
    "run_name",
    "run_folder",
    "finish_run",
    "Run",
    "load_run",
]

MODEL_FILE = "model.keras"
VALIDATION_PREDICTIONS_FILE = "predictions_validation.csv"
TEST_PREDICTIONS_FILE = "predictions_test.csv"
THRESHOLD_FILE = "threshold.json"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.json"

RUN_FORMAT = 2  # the layout of a run folder (2: extra tables in the digests); load_run refuses others

#: The files every finished run has (the model is optional).
RUN_FILES = (VALIDATION_PREDICTIONS_FILE, TEST_PREDICTIONS_FILE, THRESHOLD_FILE, METRICS_FILE, CONFIG_FILE)

_STAGING = ".finishing"  # where finish_run writes a run's results before moving them into place
_FINISH_TIMEOUT_S = 600  # seconds a finish waits while another process finishes the same run folder


class RunFolderError(RecordError):
    """A run folder that cannot be used as it is: incomplete, inconsistent, or made on other images."""


def run_name(base: str, *, fast: bool = False, seed: int = 0) -> str:
    """A run's folder name: ``base``, then ``_fast`` in fast mode and ``_seed<N>`` for a seed other than 0.

    Chapters name their runs this way, so that a chapter finds the run of an earlier
    one made in the same mode with the same seed (``run_name("03_cnn_from_scratch",
    seed=2)`` is ``"03_cnn_from_scratch_seed2"``).
    """
    return base + ("_fast" if fast else "") + (f"_seed{seed}" if seed else "")


def run_folder(name: str, root: str | os.PathLike | None = None, *, replace: bool = False) -> Path:
    """``<runs>/<name>``, created if needed (``runs/`` in the project by default).

    With ``replace=True`` a folder already there is deleted first, and a line says so: an
    exercise that is run again then trains and scores a new model, never the one an earlier
    run left behind (without it, :func:`cxr_utils.training.fit_with_callbacks` resumes an
    unfinished run and keeps a finished run's files as ``previous.*``).
    """
    folder = (Path(root) if root is not None else runs_dir()) / name
    if replace and folder.exists():
        shutil.rmtree(folder)
        print(f"Replaced the earlier run folder {folder} (its model and scores are deleted).")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _images_fingerprint(validation: pd.Series, test: pd.Series) -> str:
    """12 hex digits identifying the validation and test images by their paths (which copy, which split)."""
    return hashlib.sha256("\n".join(["validation", *validation, "test", *test]).encode()).hexdigest()[:12]


def _one_finish_at_a_time(finish):
    """``finish_run`` holding ``<runs>/.<name>.finishing.lock``: a second finish of a run waits for the first."""

    @functools.wraps(finish)
    def locked(run_dir: str | os.PathLike, *args, **kwargs) -> dict:
        folder = Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(folder.parent / f".{folder.name}.finishing.lock", timeout=_FINISH_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout as error:
            raise RunFolderError(
                f"another process has been finishing the run {folder} for {_FINISH_TIMEOUT_S} s (it holds "
                f"{lock.lock_file}): let it end, or stop it, then run this cell again"
            ) from error
        try:
            return finish(run_dir, *args, **kwargs)
        finally:
            lock.release()

    return locked


@_one_finish_at_a_time
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
    measurements: dict | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
) -> dict:
    """Choose the threshold on validation, evaluate on test with 95% CIs, log it, save the artefacts.

    Every call appends a row to the test ledger beside the run folder
    (``<run_dir>/../test_ledger.csv``, :mod:`cxr_utils.ledger`): the test split has been
    looked at once more. The results are written to ``<run_dir>/.finishing/`` first and
    moved into place once all are written, so an interruption leaves the previous run whole.

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
        As :func:`cxr_utils.metrics.choose_threshold`.
    threshold_data : (labels, scores), optional
        Validation data to choose the threshold on instead of the validation rows'
        predictions (e.g. validation plus stressed copies of it). Never test data.
    threshold_note : str
        What the threshold was chosen on, written to ``threshold.json``.
    n_boot : int
        Bootstrap resamples for the intervals (validation resamples whole patients).
    parameters : dict, optional
        The run's configuration (hyperparameters, seed, choices fixed beforehand), written
        to ``config.json`` with the software versions; the ledger hashes it. On a Keras
        backend other than TensorFlow, ``keras_backend`` joins it (:func:`cxr_utils.ledger._with_backend`).
    measurements : dict, optional
        What the run measured or chose on validation (epochs trained, minutes, the chosen
        candidate), written to ``config.json`` but not hashed.
    tables : dict of str to pandas.DataFrame, optional
        Extra tables of the run (e.g. ``{"candidates_test": ...}``), each written as
        ``<name>.csv`` with the run's other files and inside its digests; read back with
        :meth:`Run.table`.

    Returns
    -------
    dict
        ``threshold``, ``validation`` and ``test``: bootstrap frames (index: metric;
        columns ``value``, ``ci_low``, ``ci_high``).

    Raises
    ------
    RunFolderError
        If another process kept finishing the same run folder for 10 minutes (nothing is scored).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    validation_rows = index[(splits == "validation").to_numpy()]
    test_rows = index[(splits == "test").to_numpy()]
    y_validation = binary_labels(validation_rows["label"])
    y_test = binary_labels(test_rows["label"])

    y_choose, s_choose = threshold_data if threshold_data is not None else (y_validation, validation_scores)
    threshold = choose_threshold(y_choose, s_choose, method=threshold_method, target_sensitivity=target_sensitivity)
    validation = bootstrap_ci(
        y_validation, validation_scores, threshold, n_boot=n_boot, seed=seed, groups=validation_rows["patient_id"]
    )
    test = bootstrap_ci(y_test, test_scores, threshold, n_boot=n_boot, seed=seed)
    parameters = _with_backend(parameters or {})
    ledger_row = append_scoring(
        run_dir.parent, run_dir.name, parameters, test, threshold=threshold, test_paths=test_rows["path"]
    )

    staging = run_dir / _STAGING
    shutil.rmtree(staging, ignore_errors=True)  # left by an earlier interrupted call
    staging.mkdir()
    save_predictions(staging / VALIDATION_PREDICTIONS_FILE, validation_rows, validation_scores)
    save_predictions(staging / TEST_PREDICTIONS_FILE, test_rows, test_scores)
    rule = {"method": threshold_method, "target_sensitivity": target_sensitivity, "chosen_on": threshold_note}
    write_json(staging / THRESHOLD_FILE, {"threshold": threshold, **rule})
    hashed = {"parameters": parameters, "config_hash": ledger_row["config_hash"]}
    write_json(staging / CONFIG_FILE, {**hashed, "measurements": measurements or {}, "software": software_versions()})
    if model is not None:
        model.save(staging / MODEL_FILE)
    for name, table in (tables or {}).items():
        table.to_csv(staging / f"{name}.csv", index=False)
    extra = [f"{name}.csv" for name in tables or {}]
    written = [f for f in (*RUN_FILES, MODEL_FILE, *extra) if (staging / f).exists() and f != METRICS_FILE]
    write_json(
        staging / METRICS_FILE,
        {
            "format": RUN_FORMAT,
            "threshold": threshold,
            "validation": metrics_to_json(validation),
            "test": metrics_to_json(test),
            "n_validation": len(y_validation),
            "n_test": len(y_test),
            "bootstrap_resamples": n_boot,
            "images": _images_fingerprint(validation_rows["path"], test_rows["path"]),
            "files": {name: file_sha256(staging / name) for name in written},
        },
    )
    for name in [*written, METRICS_FILE]:  # metrics.json last: its digests describe the files before it
        os.replace(staging / name, run_dir / name)
    if model is None:
        (run_dir / MODEL_FILE).unlink(missing_ok=True)  # an older run's model is not this run's
    staging.rmdir()
    return {"threshold": threshold, "validation": validation, "test": test}


@dataclass
class Run:
    """A finished run folder, read back (see the module docstring for the files).

    Attributes
    ----------
    name : str
    folder : pathlib.Path
    notebook : str
        The notebook that writes the run (named in errors).
    validation, test : pandas.DataFrame
        The prediction files: one row per image with ``path``, ``label``, ``y_true``, ``score``, ...
    threshold : float
        The operating threshold, chosen on validation.
    metrics, config : dict
        ``metrics.json`` and ``config.json``.
    """

    name: str
    folder: Path
    notebook: str
    validation: pd.DataFrame
    test: pd.DataFrame
    threshold: float
    metrics: dict
    config: dict

    @property
    def test_metrics(self) -> pd.DataFrame:
        """The test metrics of ``metrics.json`` as a :func:`cxr_utils.metrics.bootstrap_ci` frame.

        Index: the metric names; columns ``value``, ``ci_low``, ``ci_high`` (floats, NaN for null).
        """
        return pd.DataFrame(self.metrics["test"]).T.astype(float)

    def scores(self, split: str, paths: pd.Series | list[str]) -> np.ndarray:
        """The run's scores of the images at ``paths`` (``split`` is ``"validation"`` or ``"test"``), in that order.

        Raises
        ------
        RunFolderError
            If the run scored other images (made on another copy of the data, or with
            another split): the message names the notebook to execute again.
        """
        scored = (self.validation if split == "validation" else self.test).set_index("path")["score"]
        paths = pd.Index(paths)
        unknown = paths.difference(scored.index)
        if len(unknown) or len(paths) != len(scored):
            raise RunFolderError(
                f"run {self.name!r} scored other {split} images than these ({len(unknown)} of {len(paths)} are not "
                f"in it): it was made on another copy of the data or with another split. "
                f"execute {self.notebook} again, on this copy and with the same settings"
            )
        return scored.loc[paths].to_numpy()

    @property
    def measurements(self) -> dict:
        """What the run measured or chose on validation: chapter 04's ``chosen`` candidate, its
        ``members`` (itself alone when it is no ensemble) and each candidate's own ``thresholds``."""
        return self.config["measurements"]

    def table(self, name: str) -> pd.DataFrame:
        """The extra table ``name`` :func:`finish_run` stored, e.g. chapter 04's ``"candidates_test"``: ``path``,
        then every candidate's scores (:data:`cxr_utils.transfer.CANDIDATES`). Raises RunFolderError if absent."""
        if f"{name}.csv" not in self.metrics["files"]:
            raise RunFolderError(f"run {self.name!r} has no table {name!r}: execute {self.notebook} again")
        return pd.read_csv(self.folder / f"{name}.csv")

    @property
    def model_path(self) -> Path:
        """``model.keras`` in the folder (it may be missing: see :meth:`load_model`)."""
        return self.folder / MODEL_FILE

    def load_model(self):
        """The saved Keras model, with the course's custom layers registered (FileNotFoundError without one)."""
        from .models import load_model

        if not self.model_path.exists():
            raise FileNotFoundError(f"run {self.name!r} saved no model ({self.model_path} is missing)")
        return load_model(self.model_path)


def load_run(name: str, notebook: str | None = None, root: str | os.PathLike | None = None) -> Run:
    """Read the run folder ``<runs>/<name>`` written by a training notebook.

    Parameters
    ----------
    name : str
        The run's name, e.g. ``"04_transfer_learning"`` (``..._fast`` in fast mode).
    notebook : str, optional
        What makes the run, named in errors ("execute chapter 04 again"); default the
        chapter of the name's two-digit prefix.
    root : path-like, optional
        Default :func:`cxr_utils.runs_dir`.

    Raises
    ------
    FileNotFoundError
        If a file of the run is missing: the message says which notebook to execute.
    RunFolderError
        If a file is damaged, or does not match the digest ``metrics.json`` recorded for it
        (a mixture of two runs), or the folder is of an older format: the message names the
        file and the notebook.
    """
    folder = (Path(root) if root is not None else runs_dir()) / name
    notebook = notebook or (f"chapter {name[:2]}" if name[:2].isdigit() else "the notebook that made it")
    missing = [f for f in RUN_FILES if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(
            f"run {name!r} is missing {', '.join(missing)} in {folder}: execute {notebook} first, "
            f"with the same CXR_FAST and CXR_DATA_DIR settings, to make it"
        )
    try:
        metrics = read_json(folder / METRICS_FILE)
        if metrics.get("format") != RUN_FORMAT:
            raise RunFolderError(
                f"run {name!r} in {folder} was written by an older version of the course: execute {notebook} again"
            )
        for file, digest in metrics.get("files", {}).items():
            if not (folder / file).exists() or file_sha256(folder / file) != digest:
                raise RunFolderError(
                    f"{folder / file} is not the file the run recorded in {METRICS_FILE} (two runs mixed, "
                    f"or a file edited by hand): execute {notebook} again"
                )
        return Run(
            name=name,
            folder=folder,
            notebook=notebook,
            validation=load_predictions(folder / VALIDATION_PREDICTIONS_FILE),
            test=load_predictions(folder / TEST_PREDICTIONS_FILE),
            threshold=float(read_json(folder / THRESHOLD_FILE)["threshold"]),
            metrics=metrics,
            config=read_json(folder / CONFIG_FILE),
        )
    except RunFolderError:
        raise
    except (RecordError, KeyError, ValueError) as error:
        raise RunFolderError(f"run {name!r} in {folder} cannot be read: {error}; execute {notebook} again") from error
