"""How much do the course's test metrics move with the seed? Chapters 03, 04 and 06 run with several seeds.

Usage:  python benchmarks/seed_variance.py [--seeds 0 1 2] [--chapters 03 04 06] [--data DIR] [--skip-existing]
        [--record]

For each seed, the notebooks are executed as they are up to their exercises (which score
nothing on test), with ``SEED`` injected after their ``parameters`` cell
(tools.course.execute_notebook): chapter 03 trains the CNN, chapter 04
the transfer candidates and chooses one on validation, chapter 06 adapts them to the test
hospital. The seed changes the validation split, the initial weights, dropout, augmentation
and the order of batches. Every test scoring goes through ``finish_run``, so it is in the
ledger (``cxr ledger``). Not part of ``make course``: on 2 CPU cores a seed takes about as
long as the course.

Writes ``runs/seed_variance/seed_variance.json`` and ``.md``: for every model, the test
metrics of each seed, their mean and standard deviation, and the mean of the seeds' 95%
bootstrap intervals. Executed copies go to ``build/seed_variance/seed<N>/``. With
``--skip-existing``, a seed whose run folders exist (from an earlier run of this script or of
``make course``) is read, not trained again.

With ``--record``, the runs are added to ``benchmarks/records/seed_variance.json``: one row per
model, seed and CPU kind (the CPU's model name and the flags that change the kernels, from the
run's ``config.json``), each with the commit it was scored at (from the ledger). Rows of other
CPU kinds stay; a row of the same model, seed and CPU kind is replaced. Two rows per seed are
not new scorings but the saved test predictions at another chapter's threshold rule, so that a
comparison across chapters can be made at one rule: the CNN at chapter 04's threshold, and
chapter 04's model at Youden's J on clean validation (chapter 06's rule). The record is what
chapters 05 and 06 and the model cards show (``cxr_utils.runs.seed_spread``: the spread
over every recorded run), and ``tests/test_seed_record.py`` refuses it once the chapters'
configurations no longer match it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pandas as pd

import cxr_utils
from cxr_course import build_dir
from cxr_course.runner import execute_notebook
from cxr_utils.compare import table_to_markdown
from cxr_utils.metrics import PAPER, binary_metrics, choose_threshold
from cxr_utils.records import read_ledger, write_json
from cxr_utils.runs import SEED_RECORD, load_run, run_name

NOTEBOOKS = ("03_cnn_from_scratch", "04_transfer_learning", "06_domain_shift")


def git_state() -> tuple[str, bool]:
    """``(commit, dirty)`` of the project's checkout (tracked files only)."""
    git = ["git", "-C", str(cxr_utils.project_root())]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    status = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return commit, bool(status.stdout.strip())


#: The models each seed produces: label -> run folder base name (chapter 06 writes one per method).
MODELS = {
    "CNN (03)": "03_cnn_from_scratch",
    "chosen transfer candidate (04)": "04_transfer_learning",
    "CNN, batch-norm statistics (06)": "06_domain_shift_batchnorm",
    "CNN, class prior EM (06)": "06_domain_shift_prior",
    "CNN, gray-level histograms (06)": "06_domain_shift_histograms",
    "CNN, batch-norm statistics + class prior EM (06)": "06_domain_shift_batchnorm_prior",
}
#: Chapter 06 also adapts chapter 04's model, by the method its rule recommends: "06_domain_shift_transfer_<method>".
TRANSFER_ADAPTED = "chosen transfer candidate, adapted by the recommended method (06)"
#: Saved test predictions at another chapter's threshold rule (not new scorings): label -> (run base, rule).
AT_ANOTHER_RULE = {
    "CNN (03), at chapter 04's threshold rule": ("03_cnn_from_scratch", "04"),
    "chosen transfer candidate (04), at Youden's J on validation": ("04_transfer_learning", "validation"),
}
METRICS = (*PAPER, "ppv", "npv", "pr_auc")


def run_names(seed: int, chapters: tuple[str, ...] = ("03", "04", "06")) -> dict[str, str]:
    """Label -> run folder name of every model one seed produced in ``chapters``."""
    fast = cxr_utils.fast_mode()
    names = {label: run_name(base, fast=fast, seed=seed) for label, base in MODELS.items() if base[:2] in chapters}
    if "06" not in chapters:
        return names
    for folder in sorted(cxr_utils.runs_dir().glob("06_domain_shift_transfer_*")):
        same_seed = folder.name.endswith(f"_seed{seed}") if seed else "_seed" not in folder.name
        if same_seed and ("_fast" in folder.name) == fast:
            names[TRANSFER_ADAPTED] = folder.name
    return names


def without_exercises(notebook: Path, folder: Path) -> Path:
    """A copy of ``notebook`` in ``folder`` that stops before its ``## Exercises``: they score nothing on test."""
    nb = nbformat.read(notebook, as_version=4)
    end = next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown" and "## Exercises" in cell.source)
    nb.cells = nb.cells[:end]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / notebook.name)
    return folder / notebook.name


def run_seed(seed: int, out: Path, skip_existing: bool, chapters: tuple[str, ...]) -> float | None:
    """Execute the notebooks for one seed and return the minutes; None where its runs exist and are reused."""
    names = run_names(seed, chapters)  # 04's adapted model exists only when 04 chose an ensemble with the CNN
    if skip_existing and all((cxr_utils.runs_dir() / n).exists() for n in names.values()):
        print(f"seed {seed}: run folders exist, read as they are (not timed here)", flush=True)
        return None
    start = time.perf_counter()
    for notebook in (n for n in NOTEBOOKS if n[:2] in chapters):
        path = without_exercises(cxr_utils.project_root() / "notebooks" / f"{notebook}.ipynb", out / "notebooks")
        seconds = execute_notebook(path, out / f"seed{seed}" / path.name, parameters={"SEED": seed})
        print(f"seed {seed}: {notebook} in {seconds / 60:.1f} min", flush=True)
    return (time.perf_counter() - start) / 60


def collect(seeds: list[int], chapters: tuple[str, ...], cpu_kind: str | None = None) -> pd.DataFrame:
    """One row per (model, seed): the test metrics, their bootstrap intervals and the CPU kind, from the run folders."""
    rows = []
    names = {seed: run_names(seed, chapters) for seed in seeds}
    scored_at = read_ledger().groupby("run")["git_commit"].last()  # the commit of each run's last test scoring
    for label in [*MODELS, TRANSFER_ADAPTED]:
        for seed in seeds:
            if label not in names[seed]:
                continue
            run = load_run(names[seed][label], f"the notebooks with SEED = {seed}")
            row = {"model": label, "seed": seed, "cpu_kind": run_cpu_kind(run, cpu_kind), "threshold": run.threshold}
            row["config_hash"] = run.config["config_hash"]
            row["scored_at_commit"] = str(scored_at.get(run.name, "not in the ledger"))
            for metric in METRICS:
                row[metric] = run.test_metrics.loc[metric, "value"]
                row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = run.test_metrics.loc[metric, ["ci_low", "ci_high"]]
            rows.append(row)
    for seed in seeds:
        rows.extend(at_another_rule(seed, names[seed], cpu_kind))
    return pd.DataFrame(rows)


def run_cpu_kind(run, override: str | None = None) -> str:
    """The CPU kind a run recorded in ``config.json`` (``--cpu-kind`` instead, where given); none: an error.

    ``--cpu-kind`` is for runs whose ``config.json`` cannot say it: made before it named the kind,
    or before it named a cap on oneDNN's kernels (``ONEDNN_MAX_CPU_ISA``, :func:`cxr_utils.records.cpu_kind`).
    """
    kind = override or run.cxr_utils.get("software", {}).get("cpu_kind")
    if kind is None:
        raise SystemExit(f"{run.name} does not record its CPU kind (made before 780bad4): run its seed again")
    return kind


def at_another_rule(seed: int, names: dict[str, str], cpu_kind: str | None = None) -> list[dict]:
    """:data:`AT_ANOTHER_RULE`'s rows of one seed: saved test predictions at another chapter's threshold."""
    fast = cxr_utils.fast_mode()
    folders = {base: run_name(base, fast=fast, seed=seed) for base in ("03_cnn_from_scratch", "04_transfer_learning")}
    if not set(folders.values()) <= set(names.values()):
        return []
    runs = {base: load_run(name) for base, name in folders.items()}
    transfer = runs["04_transfer_learning"]
    cnn = next(name for name in transfer.measurements["thresholds"] if name.startswith("C:"))
    thresholds = {
        "04": transfer.measurements["thresholds"][cnn],
        "validation": choose_threshold(transfer.validation["y_true"], transfer.validation["score"]),
    }
    rows = []
    for label, (base, rule) in AT_ANOTHER_RULE.items():
        run = runs[base]
        metrics = binary_metrics(run.test["y_true"], run.test["score"], thresholds[rule])
        row = {"model": label, "seed": seed, "cpu_kind": run_cpu_kind(run, cpu_kind), "threshold": thresholds[rule]}
        row.update(config_hash=run.config["config_hash"], scored_at_commit="not scored: saved predictions")
        rows.append(row | {metric: metrics[metric] for metric in METRICS})
    return rows


def summarise(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per model and metric: mean and standard deviation over seeds, and the mean 95% interval."""
    summary = {}
    for label, frame in per_seed.groupby("model", sort=False):
        for metric in METRICS:
            summary[(label, metric)] = {
                "mean": frame[metric].mean(),
                "sd": frame[metric].std(ddof=1),
                "min": frame[metric].min(),
                "max": frame[metric].max(),
                "mean ci_low": frame[f"{metric}_ci_low"].mean(),
                "mean ci_high": frame[f"{metric}_ci_high"].mean(),
                "seeds": len(frame),
            }
    return pd.DataFrame(summary).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--chapters", nargs="+", default=["03", "04", "06"], choices=["03", "04", "06"])
    parser.add_argument("--data", type=Path, default=None, help="dataset (default: $CXR_DATA_DIR)")
    parser.add_argument("--skip-existing", action="store_true")
    parser.add_argument("--record", action="store_true", help=f"also write the committed record, {SEED_RECORD}")
    parser.add_argument("--cpu-kind", default=None, help="record the runs under this CPU kind (see run_cpu_kind)")
    args = parser.parse_args()
    if args.data is not None:
        os.environ["CXR_DATA_DIR"] = str(args.data.resolve())
    os.environ.setdefault("CXR_NO_DOWNLOAD", "1")
    out = build_dir() / "seed_variance"
    chapters = tuple(args.chapters)
    minutes = {seed: run_seed(seed, out, args.skip_existing, chapters) for seed in args.seeds}
    per_seed = collect(args.seeds, chapters, args.cpu_kind)
    summary = summarise(per_seed)
    folder = cxr_utils.runs_dir() / "seed_variance"
    folder.mkdir(parents=True, exist_ok=True)
    write_json(
        folder / "seed_variance.json",
        {
            "seeds": args.seeds,
            "minutes_per_seed": minutes,
            "data_dir": str(cxr_utils.data_dir()),
            "per_seed": per_seed.to_dict(orient="records"),
            "summary": {f"{model} | {metric}": row for (model, metric), row in summary.to_dict(orient="index").items()},
        },
    )
    headline = summary.xs("accuracy", level=1, drop_level=False)
    for metric in ("sensitivity", "specificity", "roc_auc"):
        headline = pd.concat([headline, summary.xs(metric, level=1, drop_level=False)])
    text = headline.sort_index(level=0, sort_remaining=False).round(4)
    text.index = [f"{model}: {metric}" for model, metric in text.index]  # a "|" would split the Markdown cell
    (folder / "seed_variance.md").write_text(table_to_markdown(text), encoding="utf-8")
    print(text.to_string())
    if args.record:
        write_record(args, per_seed, minutes)


def command() -> str:
    """This script's command line, with the variable that caps oneDNN's kernels where it is set."""
    cap = f"ONEDNN_MAX_CPU_ISA={os.environ['ONEDNN_MAX_CPU_ISA']} " if os.environ.get("ONEDNN_MAX_CPU_ISA") else ""
    return f"{cap}python benchmarks/seed_variance.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def write_record(args: argparse.Namespace, per_seed: pd.DataFrame, minutes: dict) -> None:
    """Add these runs to the committed record: what was measured, how, on which CPU kind, when."""
    path = cxr_utils.project_root() / SEED_RECORD
    record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"runs": [], "measurements": []}
    data = f"{cxr_utils.data_dir().name}, {'fast mode (CXR_FAST=1)' if cxr_utils.fast_mode() else 'full mode'}"
    if record.get("data", data) != data:
        raise SystemExit(f"the record measured {record['data']}, these runs {data}: one record per copy and mode")
    hashes = dict(record.get("config_hashes", {}))
    for model, frame in per_seed[per_seed["model"].isin([*MODELS, TRANSFER_ADAPTED])].groupby("model"):
        found = set(frame["config_hash"]) | ({hashes[model]} if model in hashes else set())
        if len(found) > 1:
            raise SystemExit(f"{model}: runs of different configurations ({sorted(found)}) cannot share a record")
        hashes[model] = found.pop()
    kinds = set(per_seed["cpu_kind"])
    new = {(r["model"], r["seed"], r["cpu_kind"]) for r in per_seed.to_dict(orient="records")}
    kept = [r for r in record["runs"] if (r["model"], r["seed"], r["cpu_kind"]) not in new]
    rows = per_seed.drop(columns=["config_hash"]).to_dict(orient="records")
    commit, dirty = git_state()
    scored = per_seed.groupby("cpu_kind")["scored_at_commit"].agg(lambda c: c[c.str.len() == 40].mode().tolist())
    measurements = [m for m in record["measurements"] if not (m["cpu_kind"] in kinds and m["seeds"] == args.seeds)]
    measurements += [
        {
            "cpu_kind": kind,
            "seeds": args.seeds,
            "command": command(),
            "commit": scored[kind][0] if len(scored[kind]) == 1 else commit,  # where the runs were scored
            "recorded_at_commit": commit,
            "uncommitted_changes": dirty,
            "date": datetime.now(timezone.utc).date().isoformat(),
            "cores": os.cpu_count(),
            "minutes_per_seed": minutes,
        }
        for kind in sorted(kinds)
    ]
    record.update(
        record="a measurement, committed; refused by tests/test_seed_record.py once the chapters change",
        command="python benchmarks/seed_variance.py --seeds <seeds> --chapters 03 04 06 --record",
        data=data,
        config_hashes=hashes,
        measurements=measurements,
        runs=kept + rows,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=float) + "\n", encoding="utf-8")
    kinds = sorted({r["cpu_kind"] for r in kept + rows})
    print(f"record written: {path} ({len(kept + rows)} rows, CPU kinds: {kinds})")


if __name__ == "__main__":
    main()
