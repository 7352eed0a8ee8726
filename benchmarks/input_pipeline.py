"""Throughput of the cached input pipeline against Keras's image_dataset_from_directory.

Usage:  python benchmarks/input_pipeline.py [--size 128] [--batch 32] [--epochs 3] [--overhead-images 1024]

For each dataset copy under $CXR_TEST_DATA (chest_xray_originals: 416 full-resolution
JPEGs; chest_xray_224: 5,856 small JPEGs) it measures batches per second over the
whole copy, epoch by epoch:

* cached: ``cache_images`` (decodes into a fresh, empty cache folder during epoch 1,
  then memory-maps it) + ``CachedBatches``;
* keras: ``keras.utils.image_dataset_from_directory(color_mode="grayscale")`` at the same
  size (it decodes every JPEG again in every epoch unless you add ``.cache()``).

Then the input overhead: one training epoch of the course's CNN fed by ``CachedBatches``
against the same epoch fed from an in-memory NumPy array (``model.fit(x, y)``).
All figures come from one run of this script, on this machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from cxr_course import test_data_dir
from cxr_course.chapters import saved
from cxr_utils.cache import cache_images
from cxr_utils.dataset import find_dataset
from cxr_utils.models import compile_binary
from cxr_utils.training import CachedBatches

build_cnn = saved("build_cnn")  # chapter 03's CNN, as its cell defines it


def cached_epochs(root: Path, size: int, batch: int, epochs: int) -> list[float]:
    rates = []
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        cache = cache_images(root, size=size, cache_dir=folder, progress=False)
        batches = CachedBatches(cache.images, cache.labels, batch, shuffle=True)
        for epoch in range(epochs):
            if epoch:
                start = time.perf_counter()
            for number in range(len(batches)):
                batches[number]
            batches.on_epoch_end()
            rates.append(len(batches) / (time.perf_counter() - start))
    return rates


def keras_epochs(root: Path, size: int, batch: int, epochs: int) -> list[float]:
    rates = []
    start = time.perf_counter()

    def from_folder(split: str):
        return keras.utils.image_dataset_from_directory(
            root / split,
            labels="inferred",
            label_mode="binary",
            color_mode="grayscale",
            image_size=(size, size),
            batch_size=batch,
            shuffle=True,
            seed=0,
            verbose=False,
        )

    dataset = from_folder("train")
    for split in ("val", "test"):
        if (root / split).is_dir():
            dataset = dataset.concatenate(from_folder(split))
    for epoch in range(epochs):
        if epoch:
            start = time.perf_counter()
        count = sum(1 for _ in dataset)
        rates.append(count / (time.perf_counter() - start))
    return rates


def overhead(root: Path, size: int, batch: int, n_images: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        cache = cache_images(root, size=size, cache_dir=folder, progress=False)
        x = np.asarray(cache.images[:n_images])
        y = cache.labels[:n_images].astype("float32")
        timings = {}
        for name in ("warm-up", "in-memory array", "CachedBatches", "in-memory array ", "CachedBatches "):
            keras.utils.set_random_seed(0)
            model = compile_binary(build_cnn(size))
            start = time.perf_counter()
            if name.strip() == "CachedBatches":
                model.fit(CachedBatches(x, y, batch, shuffle=True), epochs=1, verbose=0)
            else:
                model.fit(x[..., None].astype("float32"), y, batch_size=batch, epochs=1, shuffle=True, verbose=0)
            timings.setdefault(name.strip(), []).append(time.perf_counter() - start)
    return min(timings["CachedBatches"]), min(timings["in-memory array"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--overhead-images", type=int, default=1024)
    args = parser.parse_args()
    data = test_data_dir()
    print(f"size {args.size}x{args.size}, batch {args.batch}, Keras {keras.__version__} ({keras.backend.backend()})")
    for name in ("chest_xray_originals", "chest_xray_224"):
        root = find_dataset(data / name).root
        cached = cached_epochs(root, args.size, args.batch, args.epochs)
        baseline = keras_epochs(root, args.size, args.batch, args.epochs)
        print(f"\n{name}: batches per second by epoch")
        print(f"  {'epoch':<8}{'cached':>10}{'keras':>10}{'ratio':>8}")
        for epoch, (mine, theirs) in enumerate(zip(cached, baseline), start=1):
            print(f"  {epoch:<8}{mine:>10.1f}{theirs:>10.1f}{mine / theirs:>7.1f}x")
    pipeline, in_memory = overhead(
        find_dataset(data / "chest_xray_224").root, args.size, args.batch, args.overhead_images
    )
    print(f"\ninput overhead, one training epoch of {args.overhead_images} images:")
    print(
        f"  CachedBatches {pipeline:.2f} s, in-memory array {in_memory:.2f} s: {(pipeline / in_memory - 1) * 100:+.1f}%"
    )


if __name__ == "__main__":
    main()
