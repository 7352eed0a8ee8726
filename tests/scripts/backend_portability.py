"""Chapter 03 and 04 code paths under the Keras backend named by $KERAS_BACKEND.

Usage: KERAS_BACKEND=jax python tests/scripts/backend_portability.py OUT_DIR

Builds the split MobileNetV2 (alpha 0.35, 96 px) from the offline weights in
$CXR_WEIGHTS_DIR, computes bottom activations (plain and one augmented view with
stretching), fine-tunes the top for one epoch with cxr_utils.training.fit_with_callbacks, then
pools the features of the untouched ImageNet top (as chapter 04's candidate A does after B has
trained), and trains the scratch CNN with its augmentation layers for one epoch. Writes the plain
activations and the pooled features to OUT_DIR/activations.npy and OUT_DIR/pooled.npy, and a JSON
line with the backend, the predictions' range and the timings, for tests/test_backends.py to compare.
"""

import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np

from cxr_course.chapters import saved, split_backbone
from cxr_utils.explore import class_weights
from cxr_utils.models import bottom_activations, compile_binary, pooled_features
from cxr_utils.training import CachedBatches, augmentation_layers, fit_with_callbacks

build_cnn, build_top_classifier = saved("build_cnn"), saved("build_top_classifier")  # chapters 03 and 04

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (16, 96, 96), dtype=np.uint8)
labels = (np.arange(16) % 2).astype("float32")
start = time.perf_counter()
split = split_backbone("MobileNetV2", input_size=96, alpha=0.35, weights_dir=os.environ["CXR_WEIGHTS_DIR"])
activations = bottom_activations(split, images, progress=False)
view = bottom_activations(split, images, view_seed=1, augmentation_options={"stretch": 0.3}, progress=False)
classifier = compile_binary(build_top_classifier(split), learning_rate=3e-4)
fit_with_callbacks(
    classifier,
    CachedBatches(np.concatenate([activations, view]), np.concatenate([labels, labels]), 8, shuffle=True, seed=0),
    CachedBatches(activations, labels, 8),
    run_dir=out / "top",
    epochs=1,
    class_weight=class_weights(labels),
    verbose=0,
)
top_scores = np.asarray(classifier.predict(CachedBatches(activations, labels, 8), verbose=0)).reshape(-1)
pooled = pooled_features(split, activations)  # the ImageNet top, after a copy of it was trained
transfer_seconds = time.perf_counter() - start

start = time.perf_counter()
cnn = compile_binary(build_cnn(64, filters=(8, 16), augmentation=augmentation_layers(seed=0)))
small = images[:, 16:80, 16:80]  # 64 x 64
fit_with_callbacks(
    cnn,
    CachedBatches(small, labels, 8, shuffle=True, seed=0),
    CachedBatches(small, labels, 8),
    run_dir=out / "cnn",
    epochs=1,
    verbose=0,
)
cnn_scores = np.asarray(cnn.predict(CachedBatches(small, labels, 8), verbose=0)).reshape(-1)
np.save(out / "activations.npy", activations)
np.save(out / "pooled.npy", pooled)
print(
    json.dumps(
        {
            "backend": keras.backend.backend(),
            "top_scores": [float(top_scores.min()), float(top_scores.max())],
            "cnn_scores": [float(cnn_scores.min()), float(cnn_scores.max())],
            "transfer_seconds": transfer_seconds,
            "cnn_seconds": time.perf_counter() - start,
        }
    )
)
