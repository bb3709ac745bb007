"""One BLAS thread inside the batched solvers and in worker processes.

The batched GLM solver (:mod:`forecast.models._glmbatch`) runs thousands of tiny
matrix products and factorisations (p ~ 15) per call. A multi-threaded BLAS splits
each of them across threads, and the hand-offs cost more than the arithmetic: on a
2-core machine with OpenBLAS' default of one thread per core, the NB GLM fit of 2,000
monthly series took 1.5 s with default threads and 0.7 s with one (benchmarks/RESULTS.md).
Worker processes run side by side on the cores already, so BLAS threads there only
oversubscribe them.

Pure numerics floor: imports nothing from :mod:`forecast`.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

_controller = None
_lock = threading.Lock()


def _get_controller():
    """One ``ThreadpoolController`` for the process: building it scans every loaded shared
    library (~1.5 ms), while limiting through a cached one costs ~0.02 ms."""
    global _controller
    with _lock:
        if _controller is None:
            import numpy  # noqa: F401 - their BLAS libraries must be loaded to be found
            import scipy.linalg  # noqa: F401
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        return _controller


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit every loaded BLAS (numpy's and scipy's OpenBLAS, MKL, ...) to one thread
    inside the block, restoring the previous limits on exit.

    The limit is process-wide, not per thread: use it where one thread does the work
    (the batched solvers, a worker process), never around code that runs concurrently
    in threads of this process whose blocks could end in another order.
    """
    with _get_controller().limit(limits=1, user_api="blas"):
        yield


def blas_threads() -> list[dict]:
    """The BLAS libraries loaded in this process and their current thread counts (for the
    benchmarks' record): ``threadpoolctl.threadpool_info()`` restricted to BLAS."""
    from threadpoolctl import threadpool_info

    return [{k: d.get(k) for k in ("internal_api", "prefix", "num_threads", "version")}
            for d in threadpool_info() if d.get("user_api") == "blas"]
