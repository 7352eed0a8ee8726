"""cxr_utils: the companion package of the pediatric chest X-ray course.

Chapters use it through one name, ``import cxr_utils as cxr``: ``cxr.cache_images(...)``,
``cxr.finish_run(...)``. What reads ``cxr.`` is the course's helper; what reads ``keras.``
is the lesson. Each helper is loaded from its module the first time it is used, so
``import cxr_utils`` loads nothing heavy (no TensorFlow).

One module per concern, in layers: each module imports only modules listed above it
(``tests/test_package.py`` checks every import, those inside functions included).

``config``        environment variables (``CXR_*``) and default folders, parsed in one place
``names``         patient id and pathogen from official file names
``images``        header reads without decoding, integrity checks, grayscale loading
``parallel``      one parallel map with a progress bar, for work on many files
``layout``        find a dataset copy on disk: its root, layout and image files, in one walk
``dataset``       index a dataset copy (:class:`~cxr_utils.dataset.DatasetIndex`)
``verification``  official counts and the manifest of hashes: is this copy the dataset?
``audit``         patient ids shared between splits, byte-identical files
``stats``         counts, patients, pathogens, colour and intensity statistics; which copy this is
``cache``         decode each image once, resized, into a memory-mapped array
``splits``        train / validation grouped by patient; class weights; a label-free order
``pipeline``      batches from the cache, augmentation layers, JPEG re-compression, prediction
``weights``       ImageNet weight files found locally, backbones built without downloading
``models``        the CNN of chapter 03, the course's custom layers, compiling, loading
``training``      ``fit_with_callbacks``: early stopping, checkpoints, CSV log, resume
``transfer``      a backbone cut in two, its frozen bottom cached, its top fine-tuned
``metrics``       metrics with bootstrap intervals; thresholds chosen on validation
``tables``        results beside the paper and the always-PNEUMONIA baseline
``calibration``   reliability, Brier, ECE, temperature and Platt scaling; log-odds ensembles
``comparison``    paired tests of two models (McNemar, DeLong); errors by subgroup, confident mistakes
``regions``       a film's corners, border and lung fields: a heatmap's heat there, or covered (occlusion)
``explain``       Grad-CAM, nested models included
``shift``         a shift between collections measured without labels (domain classifier)
``adapt``         adapting to new images without labels (AdaBN, EM prior, histograms), cross-fitted
``plots``         the course's figures, each returned as a matplotlib Figure
``records``       a run's files: JSON, prediction tables, software versions
``ledger``        the test ledger: every scoring of a test split, by commit, configuration and test images
``runs``          run folders: ``finish_run`` (the one door to the test split) and ``load_run``
``model_card``    a run's model card (``model_card.md``): intended use, data, metrics, limits, how to load
``versions``      the versions a notebook runs with, against the project's requirements
``quiet``         Keras started without TensorFlow's start-up log, with the course's CPU setting

Definitions a chapter writes out and the package also needs (the augmentation, the CNN, how
it is compiled, the callbacks, the transfer model's head, the Grad-CAM core) are marked
``# @save`` in the notebook and kept here with the same code (the chapter's docstring is the
first line of the package's); ``tests/test_saved_definitions.py`` fails when the two copies
drift apart.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cxr-utils")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# What ``cxr.<name>`` gives, by module: the helpers the chapters call.
_HELPERS = {
    "config": "data_dir fast_mode weights_dir downloads_allowed runs_dir build_dir",
    "images": "load_grayscale resize_image RESIZE_POLICIES",
    "dataset": "index_dataset",
    "verification": "OFFICIAL_COUNTS verify_dataset read_manifest index_manifest",
    "audit": "shared_patients duplicate_files",
    "stats": (
        "check_resolution split_class_table images_per_patient pathogen_table colour_check sample_per_class "
        "intensity_histograms"
    ),
    "plots": (
        "plot_course_flow plot_split_counts plot_images_per_patient plot_pathogen_counts plot_sample_grid "
        "plot_size_histograms plot_size_scatter plot_file_sizes plot_intensity_histograms plot_resize_policies "
        "plot_augmented_samples plot_history plot_confusion_matrices plot_roc_pr plot_threshold_tradeoff "
        "plot_score_shift plot_reliability plot_gradcam_gallery plot_distributions plot_image_grid"
    ),
    "cache": "cache_images",
    "splits": "course_splits patients_in_two_splits class_weights label_free_order",
    "pipeline": "CachedBatches augmentation_layers recompress_jpeg predict_scores",
    "models": "PerImageStandardization BackbonePreprocessing build_cnn compile_binary multiply_adds load_model",
    "training": "set_seeds epoch_progress resume_or_start restore_best fit_with_callbacks read_history",
    "weights": "build_backbone",
    "transfer": (
        "CANDIDATES CUT_LAYERS SplitBackbone split_backbone bottom_activations pooled_features fit_logistic_head "
        "build_top_classifier top_scores image_model"
    ),
    "metrics": "PAPER THRESHOLD_RULES check_labels_scores binary_metrics bootstrap_ci choose_threshold",
    "tables": "evaluation_table format_table versus_paper table_to_markdown",
    "calibration": (
        "reliability_table calibration_summary clipped_logit mean_logit fit_temperature apply_temperature "
        "fit_platt apply_platt"
    ),
    "comparison": "compare_models subgroup_table confident_calls",
    "regions": "heatmap_regions occlude",
    "explain": "find_last_conv_layer grad_cam",
    "shift": "acquisition_features univariate_shift domain_classifier_test simulate_acquisition",
    "adapt": "reestimate_batchnorm estimate_prior_em correct_for_prior reference_histogram match_histograms cross_fit",
    "records": "write_json",
    "ledger": "read_ledger summarise",
    "runs": "run_name run_folder finish_run load_run",
    "model_card": "seed_spread write_model_card",
    "quiet": "start_keras",
    "versions": "check_versions",
}
_MODULE_OF = {name: module for module, names in _HELPERS.items() for name in names.split()}

__all__ = sorted(_MODULE_OF)


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
