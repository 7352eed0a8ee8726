"""Candidates for chapter 03's CNN, compared on validation only (the test split is not read).

Usage:  python benchmarks/cnn_candidates.py [--data DIR] [--candidates baseline ema] [--seed 0] [--out DIR]

Each candidate is chapter 03's recipe (the package's saved copies of its augmentation,
CNN, compile and fit) with one change: weight averaging (EMA), label smoothing, and, on top
of weight averaging, a preprocessing of every image that could remove acquisition cues
(margins cropped away, where the burned-in letters are; histogram equalisation). For each,
on the patient-grouped validation split of the same seed:

* ``best val AUC`` and the epoch it came from;
* ``swing``: the mean absolute change of validation ROC AUC from one epoch to the next
  over the last half of training (how much choosing the best epoch is a lottery);
* ``stressed AUC``: ROC AUC on JPEG re-compressed copies of the validation images
  (qualities 10, 25, 50: a simulated acquisition shift);
* ``NORMAL size corr.`` / ``PNEUMONIA size corr.``: Spearman correlation between the score
  and the original file's size within each class (official manifest): how much the model
  leans on how an image was stored rather than what it shows (0 is best).

Writes ``<out>/cnn_candidates.json`` (adding to the candidates measured before) and ``.md``.
Needs the 224 copy (all 5,856 images) for meaningful numbers; a run takes about 8 minutes
per candidate on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from cxr_course import build_dir, test_data_dir
from cxr_course.chapters import saved
from cxr_utils.cache import cache_images
from cxr_utils.compare import table_to_markdown
from cxr_utils.explore import class_weights, course_splits
from cxr_utils.models import compile_binary
from cxr_utils.records import read_manifest
from cxr_utils.training import (
    CachedBatches,
    augmentation_layers,
    fit_with_callbacks,
    predict_scores,
    recompress_jpeg,
    set_seeds,
)

build_cnn = saved("build_cnn")  # chapter 03's CNN, as its cell defines it

#: One change each to chapter 03's recipe: keyword arguments of compile_binary, and optionally
#: a preprocessing of the cached images (the same for every split, no label used).
CANDIDATES = {
    "baseline": {},
    "ema": {"ema_momentum": 0.99},
    "label smoothing": {"label_smoothing": 0.1},
    "ema + margins cropped": {"ema_momentum": 0.99, "preprocess": "crop"},
    "ema + histogram equalised": {"ema_momentum": 0.99, "preprocess": "equalise"},
}


def crop_margins(images: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """Each image without a frame of ``margin`` of its side (borders, burned-in letters), enlarged back."""
    from PIL import Image

    size = images.shape[1]
    cut = round(size * margin)
    return np.stack(
        [
            np.asarray(Image.fromarray(image[cut : size - cut, cut : size - cut]).resize((size, size), Image.BILINEAR))
            for image in images
        ]
    )


def equalise(images: np.ndarray) -> np.ndarray:
    """Histogram equalisation of each image: its gray levels spread to a flat histogram."""
    from cxr_utils.shift import match_histograms

    return match_histograms(images, np.linspace(1 / 256, 1, 256))


PREPROCESS = {"crop": crop_margins, "equalise": equalise}


def evaluate(name: str, options: dict, cache, splits, seed: int, epochs: int, out: Path) -> dict:
    options = dict(options)
    preprocess = PREPROCESS.get(options.pop("preprocess", None), np.asarray)
    x, y = preprocess(np.asarray(cache.images)), cache.labels
    is_train, is_validation = (splits == "train").to_numpy(), (splits == "validation").to_numpy()
    set_seeds(seed)
    model = compile_binary(build_cnn(cache.size, augmentation=augmentation_layers(seed=seed)), **options)
    start = time.perf_counter()
    history = fit_with_callbacks(
        model,
        CachedBatches(x[is_train], y[is_train], 32, shuffle=True, seed=seed),
        CachedBatches(x[is_validation], y[is_validation], 64),
        run_dir=out / "runs" / f"{name}_seed{seed}".replace(" ", "_"),
        epochs=epochs,
        class_weight=class_weights(y[is_train]),
        patience=4,
        verbose=0,
    )
    minutes = (time.perf_counter() - start) / 60
    scores = predict_scores(model, x[is_validation])
    stressed = np.concatenate([preprocess(recompress_jpeg(cache.images[is_validation], q)) for q in (10, 25, 50)])
    stressed_scores = predict_scores(model, stressed)
    kb = read_manifest().set_index("path")["bytes"].reindex(cache.index.loc[is_validation, "path"]).to_numpy()
    yv = y[is_validation]
    late = history["val_auc"].to_numpy()[len(history) // 2 :]
    return {
        "candidate": name,
        "options": CANDIDATES[name],
        "seed": seed,
        "epochs": len(history),
        "best epoch": int(history["val_auc"].idxmax()) + 1,
        "best val AUC": float(history["val_auc"].max()),
        "val AUC": float(roc_auc_score(yv, scores)),
        "swing": float(np.abs(np.diff(late)).mean()) if len(late) > 1 else float("nan"),
        "stressed AUC": float(roc_auc_score(np.tile(yv, 3), stressed_scores)),
        "NORMAL size corr.": float(spearmanr(scores[yv == 0], kb[yv == 0]).statistic),
        "PNEUMONIA size corr.": float(spearmanr(scores[yv == 1], kb[yv == 1]).statistic),
        "minutes": minutes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=test_data_dir() / "chest_xray_224")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--out", type=Path, default=build_dir() / "benchmarks")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cache = cache_images(args.data, size=128)
    splits = course_splits(cache.index, validation_fraction=0.2, seed=args.seed)
    rows = [
        evaluate(name, CANDIDATES[name], cache, splits, args.seed, args.epochs, args.out) for name in args.candidates
    ]
    results = args.out / "cnn_candidates.json"
    if results.exists():  # keep the candidates measured earlier (same seed and candidate: replaced)
        done = {(row["candidate"], row["seed"]) for row in rows}
        rows = [r for r in json.loads(results.read_text()) if (r["candidate"], r["seed"]) not in done] + rows
    table = pd.DataFrame(rows).set_index("candidate").drop(columns=["options"])
    print(table.round(4).to_string())
    results.write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "cnn_candidates.md").write_text(table_to_markdown(table.round(4)))


if __name__ == "__main__":
    main()
