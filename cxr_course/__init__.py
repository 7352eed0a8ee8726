"""cxr_course: the course's machinery, apart from the learner's helpers (``cxr_utils``).

The ``cxr`` command line (``cli``), the course runner (``runner``, ``make course``), the website (``site``,
``make site``) and the download (``fetch``). Chapters and ``cxr_utils`` never import it.
"""
