"""Chapter 03's CNN trained with random border masking: do its scores lean less on the film's edges?

Usage:  python benchmarks/border_masking.py [--data DIR] [--seed 0] [--epochs 14] [--probability 0.5]
        [--widths 0.02 0.15]

Chapter 05 covers the corners and the border of every validation and test film and scores them
again (``cxr_utils.explain.occlude``). The remedy a practitioner would try when scores lean on the
border is to take that cue away in training. This is chapter 03's recipe (its augmentation, CNN,
weight averaging, class weights, the patient-grouped validation split of the same seed, the
callbacks that keep the best epoch by validation ROC AUC) with one change: each training image,
with probability ``--probability``, has a band along all four edges covered before the
augmentation layers see it: the band's width drawn uniformly from ``--widths`` (fractions of the
side), its fill the image's median grey level or black, half the time each (chapter 05 covers
with both). Validation and test images are not covered.

The recipe is fixed before training (one run: no search); whether it helps is read on validation
(ROC AUC, and how far covering the corners or the border still moves the scores). The official
test split is then scored once through ``finish_run``, into a run folder of its own
(``runs/03_cnn_border_masking[_fast][_seed<N>]``, a new configuration in the ledger), and the
table is printed beside chapter 03's run of the same seed, at thresholds chosen by the same rule
(Youden's J on clean validation, chapter 03's). Writes ``border_masking.json`` and ``.md`` to the
run folder. Needs chapter 03's run folder of the same mode and seed. A full run (the 224 copy)
takes about as long as chapter 03's training: 20 to 30 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import cxr_utils
from cxr_course.chapters import saved
from cxr_utils.cache import cache_images
from cxr_utils.compare import table_to_markdown
from cxr_utils.explain import occlude
from cxr_utils.explore import class_weights, course_splits
from cxr_utils.metrics import clipped_logit
from cxr_utils.models import compile_binary
from cxr_utils.records import write_json
from cxr_utils.runs import finish_run, load_run, run_folder, run_name
from cxr_utils.training import CachedBatches, augmentation_layers, fit_with_callbacks, predict_scores, set_seeds

build_cnn = saved("build_cnn")  # chapter 03's CNN, as its cell defines it

#: Chapter 05's covers: the corner squares Grad-CAM's regions measure, a band a tenth of each side wide;
#: each filled with the image's median grey level (None) or black.
COVERS = {
    f"{region} covered, {fill_name}": (region, size, fill)
    for region, size in (("corners", 0.15), ("border", 0.10))
    for fill_name, fill in (("median", None), ("black", 0.0))
}


class BorderMaskedBatches(CachedBatches):
    """Training batches in which each image, with probability ``probability``, has its border covered.

    For each covered image the band's width is drawn uniformly from ``widths`` (fractions of
    the side), and its fill is the image's median over what is left or black (0), half the
    time each (:func:`cxr_utils.explain.occlude`).
    """

    def __init__(self, images, labels, batch_size: int, *, probability: float, widths: tuple[float, float], seed: int):
        super().__init__(images, labels, batch_size, shuffle=True, seed=seed)
        self.probability, self.widths = probability, widths
        self._masks = np.random.default_rng(seed + 1)

    def __getitem__(self, number: int):
        x, y = super().__getitem__(number)
        for i in np.flatnonzero(self._masks.random(len(x)) < self.probability):
            fill = None if self._masks.random() < 0.5 else 0.0
            x[i] = occlude(x[i : i + 1], "border", size=self._masks.uniform(*self.widths), fill=fill)[0]
        return x, y


def occlusion_table(model, images: dict[str, np.ndarray], paths: dict[str, pd.Series], threshold: float):
    """Chapter 05's table for one model: per split and group, the share flagged before and after each cover."""
    rows = {}
    for split, pixels in images.items():
        names = paths[split].str.split("/").str[-1]
        group = np.where(
            paths[split].str.contains("/PNEUMONIA/"),
            "PNEUMONIA",
            np.where(names.str.startswith("NORMAL2-"), "NORMAL2-", "other NORMAL"),
        )
        intact = predict_scores(model, pixels)
        covered = {
            name: predict_scores(model, occlude(pixels, region, size=size, fill=fill))
            for name, (region, size, fill) in COVERS.items()
        }
        for name in ("NORMAL2-", "other NORMAL", "PNEUMONIA"):
            rows_of = group == name
            row = {"images": int(rows_of.sum()), "flagged": float((intact[rows_of] >= threshold).mean())}
            for cover, scores in covered.items():
                row[f"flagged, {cover}"] = float((scores[rows_of] >= threshold).mean())
            for cover, scores in covered.items():
                change = clipped_logit(scores[rows_of]) - clipped_logit(intact[rows_of])
                row[f"mean change in log-odds, {cover}"] = float(change.mean())
            rows[(split, name)] = row
    return pd.DataFrame(rows).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(cxr_utils.data_dir()), help="the dataset root (default: CXR_DATA_DIR)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: chapter 03's (14; 2 in fast mode)")
    parser.add_argument("--probability", type=float, default=0.5)
    parser.add_argument("--widths", type=float, nargs=2, default=(0.02, 0.15))
    args = parser.parse_args()
    fast = cxr_utils.fast_mode()
    epochs = args.epochs or (2 if fast else 14)
    baseline = load_run(run_name("03_cnn_from_scratch", fast=fast, seed=args.seed))

    # chapter 03's data, split and recipe (its parameters cell and sections 2-5)
    cache = cache_images(args.data, size=128, policy="squash")
    x, y = np.asarray(cache.images), cache.labels
    splits = course_splits(cache.index, validation_fraction=0.2, seed=args.seed)
    rows = {split: (splits == split).to_numpy() for split in ("train", "validation", "test")}
    is_train, is_validation, is_test = rows["train"], rows["validation"], rows["test"]
    set_seeds(args.seed)  # as chapter 03 before it builds its model
    model = compile_binary(build_cnn(128, augmentation=augmentation_layers(seed=args.seed)), ema_momentum=0.99)
    masking = {"probability": args.probability, "widths": list(args.widths), "fill": "median or black, half each"}
    train = BorderMaskedBatches(
        x[is_train], y[is_train], 32, probability=args.probability, widths=tuple(args.widths), seed=args.seed
    )
    name = run_name("03_cnn_border_masking", fast=fast, seed=args.seed)
    run_dir = run_folder(name)
    start = time.perf_counter()
    history = fit_with_callbacks(
        model,
        train,
        CachedBatches(x[is_validation], y[is_validation], 64),
        run_dir=run_dir,
        epochs=epochs,
        class_weight=class_weights(y[is_train]),
        patience=4,
    )
    minutes = (time.perf_counter() - start) / 60
    validation_scores, test_scores = predict_scores(model, x[is_validation]), predict_scores(model, x[is_test])

    parameters = dict(
        image_size=128,
        resize_policy="squash",
        batch_size=32,
        epochs=epochs,
        patience=4,
        ema_momentum=0.99,
        validation_fraction=0.2,
        seed=args.seed,
        fast=fast,
        border_masking=masking,
    )
    result = finish_run(
        run_dir,
        cache.index,
        splits,
        validation_scores,
        test_scores,
        model=model,
        n_boot=200 if fast else 2000,
        seed=args.seed,
        parameters=parameters,
        measurements=dict(data_dir=args.data, epochs_trained=len(history), training_minutes=minutes),
    )

    metrics = ["accuracy", "sensitivity", "specificity", "roc_auc"]
    runs = {"chapter 03": baseline.metrics, "border masking": load_run(name).metrics}
    summary = pd.DataFrame(
        {
            (label, split): {m: metrics_json[split][m]["value"] for m in metrics}
            for label, metrics_json in runs.items()
            for split in ("validation", "test")
        }
    ).T
    summary["threshold"] = [
        baseline.threshold if label == "chapter 03" else result["threshold"] for label, _ in summary.index
    ]
    images = {split: x[rows[split]] for split in ("validation", "test")}
    paths = {split: cache.index.loc[rows[split], "path"].reset_index(drop=True) for split in images}
    occlusion = pd.concat(
        {
            "chapter 03": occlusion_table(baseline.load_model(), images, paths, baseline.threshold),
            "border masking": occlusion_table(model, images, paths, result["threshold"]),
        }
    )
    print(summary.round(4).to_string(), "\n")
    print(occlusion.round(3).to_string())
    write_json(
        run_dir / "border_masking.json",
        {
            "masking": masking,
            "baseline_run": baseline.name,
            "metrics": summary.reset_index().to_dict(orient="records"),
            "occlusion": occlusion.reset_index().to_dict(orient="records"),
        },
    )
    (run_dir / "border_masking.md").write_text(
        table_to_markdown(summary.round(4)) + "\n\n" + table_to_markdown(occlusion.round(3)), encoding="utf-8"
    )


if __name__ == "__main__":
    main()
