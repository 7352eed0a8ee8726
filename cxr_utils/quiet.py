"""Start Keras without TensorFlow's start-up log, with the fastest setting measured for this machine.

Importing TensorFlow prints, from C++ and straight to the process's standard error, a
dozen lines a learner cannot act on: CPU instructions it was not compiled for, oneDNN's
rounding note, and on a machine without a GPU a red ``E0000 ... failed call to cuInit``.
:func:`start_keras` imports Keras (and so its backend) with file descriptor 2 pointed at
``os.devnull``, probes the devices once in the same silence, and returns one line that
names what was found and the setting the course trains with. Errors raised as Python
exceptions are not hidden: they propagate after standard error is restored.

The setting: on a CPU, TensorFlow runs its oneDNN kernels (``TF_ENABLE_ONEDNN_OPTS=1``, unless
set otherwise; TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI, bfloat16 or
AMX; on an AVX2 CPU they trained chapter 03's CNN 1.9 to 3.3 times as fast in the benchmark, and
its epochs in the chapter took 82-91 s instead of 131 s), and it runs
independent operations one at a time (one inter-op thread), spending both cores inside each
operation; its default, a thread pool per core for each, oversubscribes a small machine.
``benchmarks/training_speed.py`` measured both, beside XLA, mixed bfloat16, batch sizes and the
other backends (README, "Benchmarks"). One inter-op thread changes the order in which
independent operations run, not what they compute; oneDNN's kernels round differently, so
the chapters' numbers differ slightly from runs without them (``config.json`` records which).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from .records import tensorflow_onednn

__all__ = ["start_keras"]

#: TensorFlow's C++ log level: 2 keeps errors, drops its INFO and WARNING lines.
TF_LOG_LEVEL = "2"


@contextmanager
def _silenced_stderr():
    """Point file descriptor 2 (C and C++ writes included) at ``os.devnull`` inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def start_keras() -> str:
    """Import Keras and its backend quietly; return a line naming the backend and device.

    Call it before anything imports TensorFlow (the chapters' first code cell): if TensorFlow
    was imported already, its log has been printed. ``TF_CPP_MIN_LOG_LEVEL`` is set to ``"2"``
    unless already set, so later C++ errors still show. Returns e.g. ``"Keras 3.15.1 on
    tensorflow 2.21.0: no GPU, running on the CPU"``, or ``"... GPU: NVIDIA H100 80GB HBM3"``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # read once, when TensorFlow is imported
    with _silenced_stderr():
        import keras

        backend = keras.backend.backend()
        gpus = _gpu_names(backend)
        setting = _cpu_setting(backend) if not gpus else "float32"
    backend_version = _module_version(backend)
    device = "GPU: " + ", ".join(gpus) if gpus else "no GPU, running on the CPU"
    return f"Keras {keras.__version__} on {backend} {backend_version}: {device}; {setting}"


def _cpu_setting(backend: str) -> str:
    """Apply the course's CPU setting to the backend, before it runs anything; say what it is."""
    if backend != "tensorflow":
        return "float32"
    import tensorflow as tf

    onednn = tensorflow_onednn()
    kernels = "oneDNN kernels" if onednn else "TensorFlow's own kernels (oneDNN's are off)"
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow ran an operation already: its threads are fixed
        return f"float32, {kernels}, TensorFlow's default threads (it had started before start_keras)"
    fastest = " (the fastest setting measured on a CPU: README, Benchmarks)" if onednn else ""
    return f"float32, {kernels}, one inter-op thread{fastest}"


def _gpu_names(backend: str) -> list[str]:
    """Names of the accelerators the backend sees (this is what probes CUDA)."""
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    if backend == "jax":
        import jax

        return [device.device_kind for device in jax.devices() if device.platform == "gpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def _module_version(name: str) -> str:
    module = sys.modules.get(name)
    return getattr(module, "__version__", "") if module is not None else ""
