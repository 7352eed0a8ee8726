"""How fast can image sizes be collected? Header reads vs full decoding, serial and parallel.

Usage:  python benchmarks/header_reads.py [DATASET_ROOT] [--repeat N]

Default root: $CXR_TEST_DATA/chest_xray_originals (416 original-resolution images). Each
strategy runs `repeat` times over every image; the best run is reported (warm page cache),
plus one cold-ish first pass per strategy in the order listed. Prints images per second.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from cxr_course import test_data_dir
from cxr_utils.cache import load_grayscale
from cxr_utils.dataset import find_dataset


def inspect(path: Path) -> tuple[tuple[int, int], str]:
    """What the index reads of a file: its size and mode, from the header alone."""
    with Image.open(path) as image:
        return image.size, image.mode


def decode(path: Path) -> tuple[int, int]:
    return load_grayscale(path).shape


def best_rate(run, n_images: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n_images / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=str(test_data_dir() / "chest_xray_originals"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    images = find_dataset(args.root).images
    n, cores = len(images), os.cpu_count() or 1
    print(f"{n} images under {args.root}; {cores} cores")
    rows = []
    rows.append(("header, serial", best_rate(lambda: [inspect(p) for p in images], n, args.repeat)))
    with ThreadPoolExecutor(4 * cores) as pool:
        rows.append(
            (f"header, {4 * cores} threads", best_rate(lambda: list(pool.map(inspect, images)), n, args.repeat))
        )
    with ProcessPoolExecutor(cores) as pool:
        rows.append(
            (
                f"header, {cores} processes",
                best_rate(lambda: list(pool.map(inspect, images, chunksize=64)), n, args.repeat),
            )
        )
        rows.append(
            (f"full decode, {cores} processes", best_rate(lambda: list(pool.map(decode, images, chunksize=8)), n, 1))
        )
    rows.append(("full decode, serial", best_rate(lambda: [decode(p) for p in images], n, 1)))
    width = max(len(name) for name, _ in rows)
    for name, rate in rows:
        print(f"{name:<{width}}  {rate:>9.0f} images/s")
    header = max(rate for name, rate in rows if name.startswith("header"))
    decoded = max(rate for name, rate in rows if name.startswith("full"))
    print(f"best header read / best full decode: {header / decoded:.0f}x")


if __name__ == "__main__":
    main()
