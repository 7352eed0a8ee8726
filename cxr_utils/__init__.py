"""cxr_utils: the companion package of the pediatric chest X-ray course.

Modules, one concern each (import what you need; nothing heavy loads on ``import cxr_utils``):

``config``    environment variables and default folders
``names``     patient id and pathogen from official file names
``images``    header reads without decoding, integrity checks, grayscale loading
``dataset``   find, index and verify a dataset copy; shared patients; duplicates
``download``  fetch and extract the Mendeley archive, then verify it
``stats``     counts, patients, sizes, colour and intensity statistics of an index
``plots``     the course's figures, each returned as a matplotlib Figure
``versions``  installed versions checked against the project's ranges
``course``    run the course: data, verification, notebooks
``cli``       the ``cxr`` command line
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cxr-utils")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
