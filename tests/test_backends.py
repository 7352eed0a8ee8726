"""The chapter 03 and 04 code runs on Keras's other backends (JAX, PyTorch) where installed.

Each backend runs tests/scripts/backend_portability.py in a subprocess (a process
has one Keras backend). Its frozen-bottom activations must equal TensorFlow's, training
the fine-tuned top and the scratch CNN must give finite probabilities, and training a
copy of the top must leave the ImageNet top intact (under JAX, a copy that shared the
original's arrays lost them to the training step's buffer donation).
Skipped, with the reason, for a backend that is not installed (``pip install "jax[cpu]"``
or ``torch`` to run them). Grad-CAM (cxr_utils.explain) needs TensorFlow and is not run here.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxr_course.chapters import split_backbone
from cxr_utils.models import bottom_activations, pooled_features

SCRIPT = Path(__file__).parent / "scripts" / "backend_portability.py"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_transfer_and_scratch_code_on_another_backend(backend, keras_weights, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed; install it to check the Keras {backend} backend")
    env = dict(os.environ, KERAS_BACKEND=backend, CXR_WEIGHTS_DIR=str(keras_weights), CXR_NO_DOWNLOAD="1")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, env=env, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend
    for low, high in (report["top_scores"], report["cnn_scores"]):
        assert 0 <= low <= high <= 1
    images = np.random.default_rng(0).integers(0, 256, (16, 96, 96), dtype=np.uint8)  # as the script
    split = split_backbone("MobileNetV2", input_size=96, alpha=0.35, weights_dir=keras_weights)
    expected = bottom_activations(split, images, progress=False).astype(np.float32)
    got = np.load(tmp_path / "activations.npy").astype(np.float32)
    np.testing.assert_allclose(got, expected, atol=0.05)  # float16 storage
    pooled = np.load(tmp_path / "pooled.npy")
    np.testing.assert_allclose(pooled, pooled_features(split, expected.astype(np.float16)), atol=0.05)


def test_the_cpu_kind_names_the_kernel_flags_and_a_cap_on_onednn(monkeypatch):
    from cxr_utils import KERNEL_FLAGS, cpu_kind, software_versions

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    kind = cpu_kind()
    flags = kind[kind.rindex("(") + 1 : -1].split()
    assert set(flags) <= set(KERNEL_FLAGS) or flags == ["unknown"]
    assert software_versions()["cpu_kind"] == kind and "onednn_max_cpu_isa" not in software_versions()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # oneDNN runs its AVX2 kernels only: the run is an AVX2 CPU's
    assert cpu_kind().endswith(("(avx2)", "()", "(flags unknown)"))
    assert software_versions()["onednn_max_cpu_isa"] == "AVX2"
