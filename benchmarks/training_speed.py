"""How fast the course trains and predicts on this machine, for each setting a Keras user could pick on a CPU.

Usage:  python benchmarks/training_speed.py [--images 1024] [--epochs 2] [--only NAME ...]

Two models, as the chapters train them: chapter 03's CNN (128 x 128 gray images from the
cache, augmentation inside the model, weight averaging, class weights, batch 32) and chapter
04's fine-tuned top (MobileNetV2's top and a new head on cached bottom activations, batch 64).
For each setting, in a fresh process (a process has one Keras backend and one precision
policy): training images per second (the mean of ``--epochs`` epochs after one warm-up epoch,
which compiles), and prediction images per second (the median of three passes after a warm-up
call). The settings: the backend (TensorFlow; JAX and PyTorch where installed), the precision
(float32, or ``mixed_bfloat16`` where the CPU has bfloat16 instructions, AVX-512 BF16 or AMX;
elsewhere it would be emulated and is skipped, unless ``--emulated``), XLA (``jit_compile``),
the batch size, TensorFlow's threads and its kernels (``TF_ENABLE_ONEDNN_OPTS``: ``1`` for oneDNN's
where a setting says so, ``0``, TensorFlow's own, everywhere else, set explicitly, since
``start_keras`` turns oneDNN on where it is unset). All of
them run in one invocation, one after the other, on the same images; the first setting runs
again at the end, so that the table shows how much the machine's own speed drifted meanwhile.

The share of the machine's peak: the model's floating-point operations per image (two per
multiply-add, counted layer by layer by ``cxr_utils.models.multiply_adds``; training counted as
three forward passes: forward, and the backward pass's two products) times the images per
second, against the peak float32 rate of the cores: cores x clock x 2 (a fused multiply-add)
x SIMD lanes (16 with AVX-512, 8 with AVX2) x 2 FMA units per core (current Xeon and EPYC
cores have two). The clock is the one ``/proc/cpuinfo`` reports (not the turbo), so the share
is an estimate.

Speed-ups are against the first setting measured (the first of ``--only``, which may repeat a
setting to see the noise). Writes
``build/benchmarks/training_speed.json`` and ``.md`` (with the machine's name, flags and
software versions) and prints the table. Not part of the test suite: it measures, it does not check.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import pandas as pd

from cxr_course import build_dir, test_data_dir
from cxr_course.chapters import saved, split_backbone
from cxr_utils.compare import table_to_markdown

#: Each setting: a name and what it changes from the course's (TensorFlow, float32, no XLA, the chapters' batches).
SETTINGS = {
    "TensorFlow, float32, its default threads": {},
    "TensorFlow, XLA (jit_compile)": {"jit": True},
    "TensorFlow, mixed_bfloat16": {"precision": "mixed_bfloat16"},
    "TensorFlow, mixed_bfloat16 + XLA": {"precision": "mixed_bfloat16", "jit": True},
    "TensorFlow, batch x2": {"batch_factor": 2},
    "TensorFlow, 1 thread": {"threads": 1, "inter_threads": 1},
    "TensorFlow, one inter-op thread, its own kernels (the course's setting until oneDNN)": {"inter_threads": 1},
    "TensorFlow, one inter-op thread, oneDNN (the course's setting)": {"inter_threads": 1, "onednn": True},
    "TensorFlow, one inter-op thread, oneDNN, mixed_bfloat16": {
        "inter_threads": 1,
        "onednn": True,
        "precision": "mixed_bfloat16",
    },
    "JAX (always XLA), float32": {"backend": "jax"},
    "JAX, mixed_bfloat16": {"backend": "jax", "precision": "mixed_bfloat16"},
    "PyTorch, float32": {"backend": "torch"},
    "PyTorch, mixed_bfloat16": {"backend": "torch", "precision": "mixed_bfloat16"},
    "TensorFlow, float32, its default threads (again, last: the noise)": {},
}
DEFAULTS = {
    "backend": "tensorflow",
    "precision": "float32",
    "jit": False,
    "batch_factor": 1,
    "threads": 0,
    "onednn": False,
}
INTER_THREADS = 0  # TensorFlow's default
EMULATED = False  # measure bfloat16 on a CPU without bfloat16 instructions too (--emulated)
BATCHES = {"cnn": 32, "top": 64}  # the chapters' batch sizes


def machine() -> dict:
    """The CPU's name, cores, clock and the flags that matter here, and its peak float32 rate."""
    cpuinfo = Path("/proc/cpuinfo")
    info = cpuinfo.read_text() if cpuinfo.exists() else ""
    field = {line.split(":")[0].strip(): line.split(":", 1)[1].strip() for line in info.splitlines() if ":" in line}
    flags = set(field.get("flags", "").split())
    cores = os.cpu_count() or 1
    ghz = float(field.get("cpu MHz", "0")) / 1000
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    return {
        "cpu": field.get("model name", platform.processor() or "unknown"),
        "cores": cores,
        "clock GHz": round(ghz, 2),
        "flags": sorted(flags & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni"}),
        "bfloat16 instructions": bool(flags & {"avx512_bf16", "amx_bf16"}),
        "peak float32 GFLOP/s": round(cores * ghz * 2 * lanes * 2, 1),
    }


def measure(model_name: str, setting: dict, images: int, epochs: int) -> dict:
    """Train and predict with one model in this process, set up as ``setting`` says; images per second."""
    import numpy as np

    import cxr_utils as cxr

    cxr.start_keras()
    import keras

    if keras.backend.backend() == "tensorflow":  # start_keras set one inter-op thread: set both explicitly
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(setting["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(setting.get("inter_threads", INTER_THREADS))
    if setting["threads"] and keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(setting["threads"])
    keras.mixed_precision.set_global_policy(setting["precision"])
    cxr.set_seeds(0)
    data = str(test_data_dir() / "chest_xray_224")
    size = 128 if model_name == "cnn" else 224
    cache = cxr.cache_images(data, size=size, progress=False)
    rows = np.linspace(0, len(cache.images) - 1, images).astype(int)  # both classes, every split
    if model_name == "cnn":
        x, y = cache.images[rows], cache.labels[rows]
        model = cxr.compile_binary(
            saved("build_cnn")(128, augmentation=cxr.augmentation_layers(seed=0)), ema_momentum=0.99
        )
        forward = cxr.multiply_adds(model)
    else:
        split = split_backbone("MobileNetV2", input_size=224, alpha=0.5, weights_dir=cxr.weights_dir())
        x, y = cxr.bottom_activations(split, cache.images[rows], progress=False), cache.labels[rows]
        model = cxr.compile_binary(saved("build_top_classifier")(split), learning_rate=3e-4)
        forward = cxr.multiply_adds(model)
    if keras.backend.backend() == "tensorflow":  # JAX always compiles with XLA; PyTorch's would be torch.compile
        model.jit_compile = setting["jit"]
    batches = cxr.CachedBatches(x, y, BATCHES[model_name] * setting["batch_factor"], shuffle=True, seed=0)
    model.fit(batches, epochs=1, class_weight=cxr.class_weights(y), verbose=0)  # compiles
    start = time.perf_counter()
    model.fit(batches, epochs=epochs, class_weight=cxr.class_weights(y), verbose=0)
    train = epochs * len(x) / (time.perf_counter() - start)
    inputs = x[..., None].astype("float32") if x.ndim == 3 else x.astype("float32")
    model.predict(inputs[:128], batch_size=64, verbose=0)  # compiles
    seconds = []
    for _ in range(3):  # the median of three passes
        start = time.perf_counter()
        scores = model.predict(inputs, batch_size=64, verbose=0)
        seconds.append(time.perf_counter() - start)
    predict = len(x) / sorted(seconds)[1]
    assert np.isfinite(scores).all(), "the model predicted NaN"
    from cxr_utils import tensorflow_onednn

    kernels = {True: "oneDNN", False: "TensorFlow's own", None: "-"}[tensorflow_onednn()]  # as it ran
    if setting["backend"] != "tensorflow":  # TensorFlow is loaded (tf.data, the cache) but does not train
        kernels = {"jax": "XLA (JAX)", "torch": "PyTorch's"}[setting["backend"]]
    return {"kernels": kernels, "train images/s": train, "predict images/s": predict, "forward multiply-adds": forward}


def run_setting(name: str, model_name: str, images: int, epochs: int) -> dict:
    """One setting in a fresh process; its measurements, or why it could not run."""
    setting = {**DEFAULTS, **SETTINGS[name]}
    if find_spec(setting["backend"]) is None:
        return {"error": f"{setting['backend']} is not installed"}
    if setting["precision"] == "mixed_bfloat16" and not machine()["bfloat16 instructions"] and not EMULATED:
        return {"error": "skipped: this CPU has no bfloat16 instructions, so bfloat16 would be emulated (--emulated)"}
    env = dict(os.environ, KERAS_BACKEND=setting["backend"], CXR_NO_DOWNLOAD="1")
    # explicit either way: start_keras (which measure() calls) would otherwise turn oneDNN on for every setting
    env.update(TF_ENABLE_ONEDNN_OPTS="1" if setting["onednn"] else "0")
    if setting["threads"]:
        env.update(OMP_NUM_THREADS=str(setting["threads"]), XLA_FLAGS="--xla_cpu_multi_thread_eigen=false")
    command = [sys.executable, __file__, "--one", json.dumps([model_name, setting, images, epochs])]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode:
        return {"error": (result.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("tensorflow", "keras", "jax", "torch"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024, help="training images (or activations) per model")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up epoch")
    parser.add_argument("--only", nargs="+", choices=list(SETTINGS), help="run these settings only")
    parser.add_argument("--emulated", action="store_true", help="also measure bfloat16 where the CPU emulates it")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one setting in this process
    args = parser.parse_args()
    global EMULATED
    EMULATED = args.emulated
    if args.one:
        print(json.dumps(measure(*json.loads(args.one))))
        return
    cpu = machine()
    rows = []
    settings = args.only or list(SETTINGS)
    for number, name in enumerate(settings):
        repeat = settings[:number].count(name)  # --only A B A B measures the noise: "A", "B", "A (2)", "B (2)"
        label = f"{name} ({repeat + 1})" if repeat else name
        for model_name in BATCHES:
            print(f"{label}: {model_name} ...", flush=True)
            row = {"setting": label, "model": model_name, **run_setting(name, model_name, args.images, args.epochs)}
            if "error" not in row:
                flops = 2 * row.pop("forward multiply-adds")
                row["train % of peak"] = 100 * 3 * flops * row["train images/s"] / (cpu["peak float32 GFLOP/s"] * 1e9)
                row["predict % of peak"] = 100 * flops * row["predict images/s"] / (cpu["peak float32 GFLOP/s"] * 1e9)
            print(f"  {row}", flush=True)  # a setting's numbers are kept even if a later one fails
            rows.append(row)
    table = pd.DataFrame(rows).set_index(["setting", "model"])
    for column in ("train images/s", "predict images/s"):
        baseline = table[column].xs(settings[0], level="setting")  # the first setting measured
        table[f"{column.split()[0]} speed-up"] = (
            table[column] / baseline.reindex(table.index.get_level_values("model")).to_numpy()
        )
    folder = build_dir() / "benchmarks"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"machine": cpu, "versions": versions(), "images": args.images, "epochs": args.epochs}
    (folder / "training_speed.json").write_text(
        json.dumps({**record, "rows": table.reset_index().to_dict(orient="records")}, indent=1, default=str)
    )
    text = table.round(2)
    text.index = [f"{setting}: {model}" for setting, model in text.index]  # a "|" would split the Markdown cell
    header = "\n".join(f"- {key}: {value}" for key, value in {**cpu, **versions()}.items())
    (folder / "training_speed.md").write_text(header + "\n\n" + table_to_markdown(text), encoding="utf-8")
    print(header)
    print(text.to_string())


if __name__ == "__main__":
    main()
