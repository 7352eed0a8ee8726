"""cxr_utils: the companion package of the course, ``import cxr_utils as cxr``; ``cxr.<name>`` loads its module on
first use, so the import itself loads no TensorFlow. Here: the environment (CXR_DATA_DIR, CXR_FAST, CXR_NO_DOWNLOAD,
CXR_WEIGHTS_DIR, CXR_CACHE_DIR; relative paths from the project root), :func:`start_keras`, the version report.
Modules, in layers (each imports only those above it; ``tests/test_package.py`` checks):

``dataset``        find a dataset copy and index it (names, headers); the official counts
``metrics``        metrics with bootstrap intervals; thresholds chosen on validation; calibration's fits
``records``        files written whole, JSON, fingerprints, the official manifest, and the test ledger
``cache``          decode images to gray, resize them, and cache every image of a copy once
``explore``        which copy this is; counts, patients, duplicates, colour, intensities; the course's splits
``training``       batches from the cache, augmentation, prediction, training with callbacks and resume
``models``         custom layers, compiling, loading; ImageNet backbones found offline; transfer learning
``compare``        results beside the paper; paired tests, subgroups, confident mistakes; reliability
``explain``        Grad-CAM, nested models included; a heatmap's corners, border and lungs; occlusion
``shift``          a shift measured without labels; adapting to it (AdaBN, EM prior, histograms), cross-fitted
``plots_data``     figures of the data (chapters 01-02) and the colours every figure shares
``plots_results``  figures of training and results (chapters 03-06)
``runs``           run folders: ``finish_run`` (the one door to the test split) and ``load_run``

Definitions marked ``# @save`` in a chapter are kept here too; ``tests/test_saved_definitions.py`` checks them.
"""

from __future__ import annotations

import os
import platform
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import import_module
from importlib.metadata import PackageNotFoundError, metadata, requires, version
from pathlib import Path

try:
    __version__ = version("cxr-utils")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0+unknown"


def project_root() -> Path:
    """The folder above the package when it holds ``pyproject.toml`` (a checkout), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def _path_from_env(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    return Path(os.path.abspath(path if path.is_absolute() else project_root() / path))


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def data_dir() -> Path:
    """The dataset root: ``$CXR_DATA_DIR``, else ``<project>/data``."""
    return _path_from_env("CXR_DATA_DIR") or project_root() / "data"


def weights_dir() -> Path | None:
    """The folder of Keras weight files ``$CXR_WEIGHTS_DIR`` names, or None."""
    return _path_from_env("CXR_WEIGHTS_DIR")


def fast_mode() -> bool:
    """``CXR_FAST=1``: few images and epochs, for CI."""
    return _flag("CXR_FAST")


def downloads_allowed() -> bool:
    """False when ``CXR_NO_DOWNLOAD=1``: nothing is downloaded."""
    return not _flag("CXR_NO_DOWNLOAD")


def runs_dir() -> Path:
    """Where run folders go: ``<project>/runs``."""
    return project_root() / "runs"


def cache_dir() -> Path:
    """Where decoded images are cached: ``$CXR_CACHE_DIR``, else ``<project>/cache``."""
    return _path_from_env("CXR_CACHE_DIR") or project_root() / "cache"


def _progress(iterable, **options):
    """``iterable`` in tqdm's text bar (an executed notebook keeps its last state), on stdout in a notebook."""
    from tqdm import tqdm

    return tqdm(iterable, file=sys.stdout if "ipykernel" in sys.modules else sys.stderr, **options)


def _installed(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


#: CPU flags that change which kernels TensorFlow and oneDNN run, hence the rounding of training.
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
_ISA_CAPS = {"AVX2": KERNEL_FLAGS[:1], "AVX512_CORE": KERNEL_FLAGS[:2], "AVX512_CORE_VNNI": KERNEL_FLAGS[:3]}


def cpu_kind() -> str:
    """The CPU's model name and which of :data:`KERNEL_FLAGS` it has (below ``ONEDNN_MAX_CPU_ISA``'s cap, if set)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.processor() or platform.machine()} (flags unknown)"
    fields = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines if ":" in line)}
    flags = set(fields.get("flags", "").split())
    allowed = _ISA_CAPS.get(os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper(), KERNEL_FLAGS)
    return f"{fields.get('model name', platform.machine())} ({' '.join(f for f in allowed if f in flags)})"


def tensorflow_onednn() -> bool | None:
    """Whether TensorFlow runs its oneDNN kernels (they round differently); None before TensorFlow is imported."""
    if "tensorflow" not in sys.modules:
        return None
    from tensorflow.python.util import _pywrap_util_port  # TensorFlow's own test of the setting

    return bool(_pywrap_util_port.IsMklEnabled())


def software_versions() -> dict[str, str]:
    """Python, the key packages, the Keras backend, the machine and the time (UTC), as a run records them."""
    info = {"python": platform.python_version(), "machine": platform.machine(), "cpus": str(os.cpu_count())}
    info["cpu_kind"] = cpu_kind()
    if os.environ.get("ONEDNN_MAX_CPU_ISA"):
        info["onednn_max_cpu_isa"] = os.environ["ONEDNN_MAX_CPU_ISA"]
    for package in ("numpy", "pandas", "scikit-learn", "tensorflow", "keras", "jax", "torch", "cxr-utils"):
        if (installed := _installed(package)) is not None:
            info[package] = installed
    keras = sys.modules.get("keras")  # the backend Keras runs on, as the ledger hashes it
    info["keras_backend"] = keras.backend.backend() if keras else os.environ.get("KERAS_BACKEND", "tensorflow")
    if (onednn := tensorflow_onednn()) is not None:
        info["tensorflow_onednn"] = str(onednn)
    info["time_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return info


def check_versions(packages: list[str] | None = None, *, show: bool = True):
    """Print one ``Versions:`` line and return the installed versions against ``pyproject.toml``'s ranges
    (``package``, ``required``, ``installed``, ``ok``); RuntimeError naming a package missing or out of range."""
    import pandas as pd
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    wanted = {r.name.lower(): r for r in map(Requirement, requires("cxr-utils") or []) if r.marker is None}
    python_range = SpecifierSet(metadata("cxr-utils")["Requires-Python"] or "")
    rows = [{"package": "python", "required": str(python_range), "installed": platform.python_version()}]
    rows[0]["ok"] = rows[0]["installed"] in python_range
    for name in [name.lower() for name in packages] if packages is not None else list(wanted):
        required, installed = wanted.get(name), _installed(name)
        ok = installed is not None and (required is None or required.specifier.contains(installed, prereleases=True))
        spec = str(required.specifier) if required else ""
        rows.append({"package": name, "required": spec, "installed": installed or "missing", "ok": ok})
    table = pd.DataFrame(rows)
    if not (bad := table[~table["ok"]]).empty:
        listing = ", ".join(f"{r.package} {r.installed} (needs {r.required})" for r in bad.itertuples())
        raise RuntimeError(
            f"wrong versions: {listing}. Run `make env` (or reinstall with pip install -e .) and restart the kernel."
        )
    if show:
        listed = ", ".join(f"{r.package} {r.installed}" for r in table.itertuples())
        print(f"Versions: {listed} (cxr-utils {__version__})")
    return table


@contextmanager
def _silenced_stderr():
    """File descriptor 2 (C and C++ writes included) pointed at ``os.devnull`` inside the block."""
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
    """Call it first: Keras imported quietly (``TF_CPP_MIN_LOG_LEVEL=2``, ``TF_ENABLE_ONEDNN_OPTS=1`` unless set,
    one inter-op thread); returns one line saying what runs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # read once, when TensorFlow is imported
    with _silenced_stderr():
        import keras

        backend = keras.backend.backend()
        gpus = _gpu_names(backend)
        setting = _cpu_setting(backend) if not gpus else "float32"
    device = "GPU: " + ", ".join(gpus) if gpus else "no GPU, running on the CPU"
    version_of_backend = getattr(sys.modules.get(backend), "__version__", "")
    return f"Keras {keras.__version__} on {backend} {version_of_backend}: {device}; {setting}"


def _cpu_setting(backend: str) -> str:
    """Apply one inter-op thread before TensorFlow runs anything; say which kernels and threads run."""
    if backend != "tensorflow":
        return "float32"
    import tensorflow as tf

    kernels = "oneDNN kernels" if tensorflow_onednn() else "TensorFlow's own kernels (oneDNN's are off)"
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow ran an operation already: its threads are fixed
        return f"float32, {kernels}, TensorFlow's default threads (it had started before start_keras)"
    fastest = " (the fastest setting measured on a CPU: README, Benchmarks)" if tensorflow_onednn() else ""
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


# What ``cxr.<name>`` gives, by module: the helpers the chapters call.
_HELPERS = {
    "dataset": "index_dataset OFFICIAL_COUNTS",
    "explore": (
        "check_copy split_class_table images_per_patient pathogen_table shared_patients duplicate_files colour_check "
        "intensity_histograms sample_per_class course_splits patients_in_two_splits class_weights label_free_order"
    ),
    "cache": "cache_images load_grayscale resize_image RESIZE_POLICIES",
    "training": (
        "CachedBatches augmentation_layers recompress_jpeg predict_scores set_seeds epoch_progress read_history "
        "resume_or_start restore_best fit_with_callbacks"
    ),
    "models": (
        "PerImageStandardization BackbonePreprocessing compile_binary multiply_adds load_model build_backbone "
        "CANDIDATES CUT_LAYERS SplitBackbone bottom_activations pooled_features image_model fit_logistic_head "
        "top_scores"
    ),
    "metrics": (
        "PAPER THRESHOLD_RULES binary_metrics bootstrap_ci choose_threshold clipped_logit "
        "mean_logit fit_temperature apply_temperature fit_platt apply_platt"
    ),
    "compare": (
        "evaluation_table format_table versus_paper table_to_markdown compare_models subgroup_table confident_calls "
        "reliability_table calibration_summary"
    ),
    "explain": "find_last_conv_layer grad_cam heatmap_regions occlude",
    "shift": (
        "acquisition_features univariate_shift domain_classifier_test simulate_acquisition reestimate_batchnorm "
        "estimate_prior_em correct_for_prior reference_histogram match_histograms cross_fit"
    ),
    "plots_data": (
        "plot_course_flow plot_split_counts plot_images_per_patient plot_pathogen_counts plot_sample_grid "
        "plot_size_histograms plot_size_scatter plot_file_sizes plot_intensity_histograms plot_resize_policies"
    ),
    "plots_results": (
        "plot_augmented_samples plot_history plot_confusion_matrices plot_roc_pr plot_threshold_tradeoff "
        "plot_score_shift plot_reliability plot_gradcam_gallery plot_distributions plot_image_grid"
    ),
    "records": "write_json read_manifest index_manifest read_ledger summarise",
    "runs": "run_name run_folder finish_run load_run seed_spread",
}
_MODULE_OF = {name: module for module, names in _HELPERS.items() for name in names.split()}

__all__ = [
    *("project_root", "data_dir", "weights_dir", "fast_mode", "downloads_allowed", "runs_dir"),
    *("software_versions", "check_versions", "start_keras"),
    *sorted(_MODULE_OF),
]


def __getattr__(name: str):
    """``cxr.<name>``: the helper of that name, imported from its module on first use (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'cxr_utils' has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups do not come here again
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
