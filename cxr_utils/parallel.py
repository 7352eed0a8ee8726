"""One parallel map with a progress bar, for work on many files (header reads, decoding).

Progress bars are tqdm's text bars, not its Jupyter widgets: an executed notebook keeps
the bar's last state as text ("100%|...| 5856/5856"), which reads the same in JupyterLab,
on GitHub and in nbviewer (a widget is stored as its first state, "0%", where widgets are
not rendered). In a Jupyter kernel they write to standard output, so that a bar is not
shown in the colour of an error.

Header parsing is Python code that holds the GIL (threads slowed it down in
``benchmarks/header_reads.py``), so long lists are mapped in worker processes. Starting
them costs a fraction of a second, so short lists run in this process; each caller
says where its cut-off lies for its own work.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from tqdm import tqdm

__all__ = ["map_with_progress", "progress_bar"]

Item = TypeVar("Item")
Result = TypeVar("Result")


def progress_bar(iterable: Iterable[Item], **options) -> Iterator[Item]:
    """``iterable`` wrapped in a text progress bar; ``options`` are :class:`tqdm.tqdm`'s."""
    in_jupyter_kernel = "ipykernel" in sys.modules
    return tqdm(iterable, file=sys.stdout if in_jupyter_kernel else sys.stderr, **options)


def map_with_progress(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    *,
    desc: str,
    serial_below: int,
    workers: int | None = None,
    progress: bool = True,
) -> Iterator[Result]:
    """``function(item)`` for every item, yielded in the order of ``items`` as the results arrive.

    ``function`` must be picklable (a module-level function or a :func:`functools.partial` of
    one). Lists shorter than ``serial_below``, or ``workers=1``, run in this process; longer
    ones in ``workers`` processes (default one per core). ``desc`` labels the progress bar.
    Read the results to their end (``zip(items, results, strict=True)``, not a plain ``zip``):
    the bar counts an item once the next is asked for, and closes, with the workers, at the end.
    """
    workers = workers or os.cpu_count() or 1
    bar = {"total": len(items), "desc": desc, "unit": "img", "disable": not progress}
    if workers == 1 or len(items) < serial_below:
        yield from progress_bar(map(function, items), **bar)
        return
    context = multiprocessing.get_context(_start_method())
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        chunksize = max(1, min(64, len(items) // (8 * workers)))
        yield from progress_bar(pool.map(function, items, chunksize=chunksize), **bar)


def _start_method() -> str | None:
    """How worker processes start: from a fork server where that is safe, else as forks.

    Forking a process that runs threads (TensorFlow's, a Jupyter kernel's) can deadlock, and
    Python 3.12+ warns of it, so workers start from a fork server where one is available. A
    fork server's workers re-import the main *script*, though, which runs a script's top level
    again unless it is guarded by ``if __name__ == "__main__"``; for scripts the workers are
    forks of this process, as with Python's default start method on Linux through 3.13.
    """
    main_script = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_script is None and "forkserver" in multiprocessing.get_all_start_methods():
        return "forkserver"  # a Jupyter kernel, `python -c`, an interactive session
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None
