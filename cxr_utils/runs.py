"""Run folders: :func:`finish_run`, the one door to the test split, writes a run's results; :func:`load_run` reads them.
A rerun never mixes two runs: ``run_folder(replace=True)``, training's ``previous.*``, ``finish_run``'s staging."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import project_root, runs_dir, software_versions
from .dataset import LABELS, binary_labels, file_sha256
from .metrics import METRICS, bootstrap_ci, choose_threshold
from .records import RecordError, append_scoring, locked, read_json, write_json

__all__ = ["run_name", "run_folder", "finish_run", "load_run", "seed_spread"]

MODEL_FILE, METRICS_FILE, THRESHOLD_FILE, CONFIG_FILE = "model.keras", "metrics.json", "threshold.json", "config.json"
PREDICTIONS = {"validation": "predictions_validation.csv", "test": "predictions_test.csv"}
RUN_FILES = (*PREDICTIONS.values(), THRESHOLD_FILE, METRICS_FILE, CONFIG_FILE)
SEED_RECORD = "benchmarks/records/seed_variance.json"  # the seed benchmark's committed record, in the project
_COLUMNS = ["path", "split", "label", "patient_id", "pathogen", "y_true", "score"]
_FINISH_TIMEOUT_S = 600  # seconds a finish waits while another process finishes the same run folder


class RunFolderError(RecordError):
    """A run folder that cannot be used as it is: incomplete, mixed, or made on other images."""


def run_name(base: str, *, fast: bool = False, seed: int = 0) -> str:
    """``base``, then ``_fast`` in fast mode and ``_seed<N>`` for a seed other than 0."""
    return base + ("_fast" if fast else "") + (f"_seed{seed}" if seed else "")


def run_folder(name: str, root: str | os.PathLike | None = None, *, replace: bool = False) -> Path:
    """``<runs>/<name>``, created if needed; ``replace=True`` deletes an earlier one first (and says so)."""
    folder = (Path(root) if root is not None else runs_dir()) / name
    if replace and folder.exists():
        shutil.rmtree(folder)
        print(f"Replaced the earlier run folder {folder} (its model and scores are deleted).")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _with_backend(parameters: dict) -> dict:
    """``parameters`` with ``keras_backend`` when it is not TensorFlow (TensorFlow's runs keep their hashes)."""
    import keras

    backend = keras.backend.backend()
    return parameters if backend == "tensorflow" else {**parameters, "keras_backend": backend}


def _save_predictions(path: Path, rows: pd.DataFrame, scores: np.ndarray) -> None:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(rows):
        raise ValueError(f"{len(scores)} scores for {len(rows)} images")
    frame = rows.reset_index(drop=True).assign(y_true=binary_labels(rows["label"]), score=scores)
    frame[[c for c in _COLUMNS if c in frame]].to_csv(path, index=False)


def _metrics_json(frame: pd.DataFrame) -> dict:
    """A bootstrap_ci frame as ``{metric: {"value", "ci_low", "ci_high"}}`` (NaN as None)."""
    return {m: {c: None if np.isnan(v := float(frame.loc[m, c])) else v for c in frame.columns} for m in frame.index}


def finish_run(
    run_dir: str | os.PathLike,
    index: pd.DataFrame,
    splits: pd.Series,
    validation_scores: np.ndarray,
    test_scores: np.ndarray,
    *,
    model=None,
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
    """Choose the threshold on validation (or on ``threshold_data``), score the test split once (a ledger row hashing
    ``parameters``), write the run folder; returns ``threshold`` and the ``validation`` and ``test`` bootstrap frames.
    Scores follow ``index``'s rows of each course split. RunFolderError after 10 minutes' wait for the folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    busy = RunFolderError(
        f"another process has been finishing the run {run_dir} for {_FINISH_TIMEOUT_S} s (it holds "
        f"{run_dir.parent / f'.{run_dir.name}.finishing.lock'}): let it end, or stop it, then run this cell again"
    )
    with locked(run_dir.parent / f".{run_dir.name}.finishing.lock", _FINISH_TIMEOUT_S, busy):
        rows = {split: index[(splits == split).to_numpy()] for split in PREDICTIONS}
        y_validation, y_test = (binary_labels(rows[split]["label"]) for split in PREDICTIONS)
        y_choose, s_choose = threshold_data if threshold_data is not None else (y_validation, validation_scores)
        threshold = choose_threshold(y_choose, s_choose, method=threshold_method, target_sensitivity=target_sensitivity)
        groups = rows["validation"]["patient_id"]
        validation = bootstrap_ci(y_validation, validation_scores, threshold, n_boot=n_boot, seed=seed, groups=groups)
        test = bootstrap_ci(y_test, test_scores, threshold, n_boot=n_boot, seed=seed)
        parameters = _with_backend(parameters or {})
        ledger_row = append_scoring(
            run_dir.parent, run_dir.name, parameters, test, threshold=threshold, test_paths=rows["test"]["path"]
        )
        staging = run_dir / ".finishing"  # every file is written here first, then moved into place
        shutil.rmtree(staging, ignore_errors=True)  # left by an earlier interrupted call
        staging.mkdir()
        _save_predictions(staging / PREDICTIONS["validation"], rows["validation"], validation_scores)
        _save_predictions(staging / PREDICTIONS["test"], rows["test"], test_scores)
        rule = {"method": threshold_method, "target_sensitivity": target_sensitivity, "chosen_on": threshold_note}
        write_json(staging / THRESHOLD_FILE, {"threshold": threshold, **rule})
        hashed = {"parameters": parameters, "config_hash": ledger_row["config_hash"]}
        hashed |= {"measurements": measurements or {}, "software": software_versions()}
        write_json(staging / CONFIG_FILE, hashed)
        if model is not None:
            model.save(staging / MODEL_FILE)
        for name, table in (tables or {}).items():
            table.to_csv(staging / f"{name}.csv", index=False)
        written = sorted(path.name for path in staging.iterdir())
        counts = pd.crosstab(splits.to_numpy(), index["label"].to_numpy()).reindex(columns=list(LABELS), fill_value=0)
        write_json(
            staging / METRICS_FILE,
            {
                "threshold": threshold,
                "validation": _metrics_json(validation),
                "test": _metrics_json(test),
                "n_validation": len(y_validation),
                "n_test": len(y_test),
                "bootstrap_resamples": n_boot,
                "counts": counts.to_dict(orient="index"),
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
    """A finished run folder: ``validation`` and ``test`` predictions, ``threshold``, ``metrics`` and ``config``."""

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
        """The test metrics as a bootstrap_ci frame (index: metric; ``value``, ``ci_low``, ``ci_high``)."""
        return pd.DataFrame(self.metrics["test"]).T.astype(float)

    @property
    def measurements(self) -> dict:
        """What the run measured or chose on validation (chapter 04: ``chosen``, ``members``, ``thresholds``)."""
        return self.config["measurements"]

    def scores(self, split: str, paths: pd.Series | list[str]) -> np.ndarray:
        """The run's scores of the ``split`` images at ``paths``; RunFolderError if it scored other images."""
        scored = getattr(self, split).set_index("path")["score"]
        paths = pd.Index(paths)
        unknown = paths.difference(scored.index)
        if len(unknown) or len(paths) != len(scored):
            raise RunFolderError(
                f"run {self.name!r} scored other {split} images than these ({len(unknown)} of {len(paths)} are not "
                f"in it): it was made on another copy of the data or with another split. "
                f"execute {self.notebook} again, on this copy and with the same settings"
            )
        return scored.loc[paths].to_numpy()

    def table(self, name: str) -> pd.DataFrame:
        """The extra table ``name`` finish_run stored (chapter 04's ``"candidates_test"``); RunFolderError if absent."""
        if f"{name}.csv" not in self.metrics["files"]:
            raise RunFolderError(f"run {self.name!r} has no table {name!r}: execute {self.notebook} again")
        return pd.read_csv(self.folder / f"{name}.csv")

    def load_model(self):
        """The saved Keras model, the course's layers registered; FileNotFoundError when the run saved none."""
        from .models import load_model

        if not (self.folder / MODEL_FILE).exists():
            raise FileNotFoundError(f"run {self.name!r} saved no model ({self.folder / MODEL_FILE} is missing)")
        return load_model(self.folder / MODEL_FILE)


def _predictions(path: Path) -> pd.DataFrame:
    try:  # float() reads back exactly the score written, on every pandas
        frame = pd.read_csv(path, converters={"score": float})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path} is not a predictions table ({error})") from error
    if missing := [c for c in ("path", "y_true", "score") if c not in frame]:
        raise RunFolderError(f"{path} lacks the column(s) {', '.join(missing)}")
    return frame


def load_run(name: str, notebook: str | None = None, root: str | os.PathLike | None = None) -> Run:
    """The run folder ``<runs>/<name>``; FileNotFoundError for a missing file, RunFolderError for a damaged or mixed
    one, each naming the file and the notebook to execute again (``notebook``, default from the name's prefix)."""
    folder = (Path(root) if root is not None else runs_dir()) / name
    notebook = notebook or (f"chapter {name[:2]}" if name[:2].isdigit() else "the notebook that made it")
    if missing := [f for f in RUN_FILES if not (folder / f).exists()]:
        raise FileNotFoundError(
            f"run {name!r} is missing {', '.join(missing)} in {folder}: execute {notebook} first, "
            f"with the same CXR_FAST and CXR_DATA_DIR settings, to make it"
        )
    try:
        metrics = read_json(folder / METRICS_FILE)
        for file, digest in metrics["files"].items():
            if not (folder / file).exists() or file_sha256(folder / file) != digest:
                raise RunFolderError(
                    f"{folder / file} is not the file the run recorded in {METRICS_FILE} (two runs mixed, "
                    f"or a file edited by hand): execute {notebook} again"
                )
        validation, test = (_predictions(folder / PREDICTIONS[split]) for split in PREDICTIONS)
        threshold = float(read_json(folder / THRESHOLD_FILE)["threshold"])
        return Run(name, folder, notebook, validation, test, threshold, metrics, read_json(folder / CONFIG_FILE))
    except RunFolderError:
        raise
    except (RecordError, KeyError, ValueError) as error:
        raise RunFolderError(f"run {name!r} in {folder} cannot be read: {error}; execute {notebook} again") from error


def seed_spread(
    models: tuple[str, ...] = ("CNN (03)", "chosen transfer candidate (04)"),
    this_run: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The spread (``mean``, ``sd``, ``min``, ``max``) of the test metrics over the seed record's runs by ``(model,
    metric)``; with ``this_run`` (label -> bootstrap_ci frame), whether it lies inside. Empty without a record."""
    path = project_root() / SEED_RECORD
    columns = ["mean", "sd", "min", "max", "runs"]
    if not path.exists():
        table = pd.DataFrame(columns=columns, index=pd.MultiIndex.from_tuples([], names=["model", "metric"]))
        table.attrs.update(
            record=f"no record: `python benchmarks/seed_variance.py --record` writes {SEED_RECORD}",
            cpu_kinds=[],
            config_hashes={},
        )
        return table
    record = read_json(path)
    runs = pd.DataFrame(record["runs"])
    runs = runs[runs["model"].isin(models)]
    metrics = [m for m in METRICS if m in runs]
    long = runs.melt(id_vars=["model"], value_vars=metrics, var_name="metric").dropna(subset=["value"])
    table = long.groupby(["model", "metric"], sort=False)["value"].agg(["mean", "std", "min", "max", "size"])
    table.columns = columns
    order = [(m, metric) for m in models for metric in metrics if (m, metric) in table.index]
    table = table.reindex(pd.MultiIndex.from_tuples(order, names=["model", "metric"])).astype(float)
    if this_run is not None:
        table["this run"] = [
            float(this_run[m].loc[metric, "value"]) if m in this_run else float("nan") for m, metric in table.index
        ]
        table["inside the range"] = (table["this run"] >= table["min"]) & (table["this run"] <= table["max"])
    measured = "; ".join(
        f"seeds {', '.join(map(str, m['seeds']))} on {m['cpu_kind']} at {m['commit'][:10]} ({m['date']})"
        for m in record["measurements"]
    )
    table.attrs.update(
        record=f"a record: {measured}; {record['data']}; `{record['command']}`",
        cpu_kinds=list(dict.fromkeys(m["cpu_kind"] for m in record["measurements"])),
        config_hashes={m: h for m, h in record.get("config_hashes", {}).items() if m in models},
    )
    return table
