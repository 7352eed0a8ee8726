"""The course's tooling: the ``cxr`` command line, the course runner, the download, version checks.

Nothing here is part of a chapter's lesson; the chapters only call
:func:`cxr_utils.tools.quiet.start_keras` first and
:func:`cxr_utils.tools.versions.check_versions` in their setup cell.
"""
