"""cxr_utils: the companion package of the pediatric chest X-ray course.

One module per concern; import the one you need (``import cxr_utils`` loads nothing heavy).

What the chapters import, in the order the course meets it:

``config``        environment variables (``CXR_*``) and default folders, parsed in one place
``names``         patient id and pathogen from official file names
``images``        header reads without decoding, integrity checks, grayscale loading
``parallel``      one parallel map with a progress bar, for work on many files
``layout``        find a dataset copy on disk: its root, layout and image files, in one walk
``dataset``       index a dataset copy (:class:`~cxr_utils.dataset.DatasetIndex`)
``verification``  official counts and the manifest of hashes: is this copy the dataset?
``audit``         patient ids shared between splits, byte-identical files
``stats``         counts, patients, sizes, colour and intensity statistics of an index
``plots``         the course's figures, each returned as a matplotlib Figure
``cache``         decode each image once, resized, into a memory-mapped array
``splits``        train / validation grouped by patient; class weights
``pipeline``      batches from the cache, augmentation layers, JPEG re-compression, prediction
``models``        the CNN of chapter 03 and how every model is compiled
``training``      ``fit``: early stopping, checkpoints, CSV log, resume
``weights``       ImageNet weight files found locally, backbones built without downloading
``transfer``      a backbone cut in two, its frozen bottom cached, its top fine-tuned
``metrics``       metrics with bootstrap intervals; thresholds chosen on validation
``tables``        results beside the paper and the always-PNEUMONIA baseline
``calibration``   reliability, Brier, ECE, temperature scaling; log-odds ensembles
``comparison``    paired tests of two models on the same images (McNemar, DeLong)
``errors``        errors by subgroup; the most confident mistakes
``explain``       Grad-CAM, nested models included
``shift``         a shift between collections measured without labels (domain classifier)
``adapt``         adapting to new images without labels (AdaBN, EM prior, histograms), cross-fitted
``records``       a run's files: JSON, prediction tables, software versions
``runs``          run folders: ``finish_run`` (the one door to the test split) and ``load_run``
``ledger``        the test ledger: every scoring of a test split, by commit, configuration and test images
``model_card``    a run's model card (``model_card.md``): intended use, data, metrics, limits, how to load

The course's tooling, apart from what the chapters import:

``tools.cli``       the ``cxr`` command line
``tools.course``    run the whole course: data, verification, notebooks, HTML, summary
``tools.download``  fetch and extract the Mendeley archive, then verify it
``tools.versions``  installed versions checked against the project's ranges
``tools.quiet``     start Keras without TensorFlow's start-up log; name the GPU once
``tools.site``      the course's website: the executed notebooks built with Jupyter Book (``make site``)

Definitions a chapter writes out and the package also needs (the CNN, how it is compiled
and fitted, the transfer model's head, the Grad-CAM core, the threshold rule) are marked
``# @save`` in the notebook and kept identical here; ``tests/test_saved_definitions.py``
fails when the two copies drift apart.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cxr-utils")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"


def load_model(path, **kwargs):
    """Load a model the course saved (``runs/<run>/model.keras``): :func:`cxr_utils.models.load_model`."""
    from .models import load_model as _load_model  # Keras is imported only when a model is loaded

    return _load_model(path, **kwargs)
