"""What every task carries into a worker process: its warnings back home, and a leash.

:func:`forecast.parallel.run_tasks` wraps the task function in :class:`Task`
when the work leaves this process (loky workers or a Dask cluster):

- Warnings raised in the worker are recorded there and returned with the
  result; :func:`reemit` raises them again in the parent, in task order, so
  ``jobs=2`` shows the user what ``jobs=1`` shows (a worker's own stderr would
  print them in Python's multi-line format, or not at all).
- In a local worker process (``watch_parent``) the first task starts a daemon
  thread that ends the process when its parent is gone: a worker must never
  outlive a killed ``forecast`` (SIGKILL runs no cleanup in the parent).
- In a worker process the task runs with one BLAS thread
  (:func:`forecast._threads.one_blas_thread`): the workers already share the cores,
  and BLAS threads on top of them would oversubscribe them.
"""
from __future__ import annotations

import os
import threading
import time
import warnings
from contextlib import nullcontext
from typing import Any, Callable

from forecast._threads import one_blas_thread

#: Seconds between two looks at whether the parent process is still there.
PARENT_POLL: float = 0.5

_watching = False
_lock = threading.Lock()
# Python's "once per location" bookkeeping for re-emitted warnings: as if raised here every time.
_registry: dict = {}


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL)
        if os.getppid() != parent:  # re-parented: the process that started this worker is gone
            os._exit(1)


def _start_watchdog() -> None:
    global _watching
    with _lock:
        if _watching:
            return
        _watching = True
    threading.Thread(target=_watch_parent, args=(os.getppid(),), name="forecast-parent-watch", daemon=True).start()


class Task:
    """``func`` that also returns the warnings it raised: ``Task(func)(*a, **k) -> (result, warnings)``.

    Parameters
    ----------
    func : Callable
        A module-level function (pickled by reference).
    watch_parent : bool
        Exit the worker process when its parent dies (local worker pools only:
        a Dask worker belongs to its cluster, not to us).
    """

    def __init__(self, func: Callable[..., Any], watch_parent: bool = False) -> None:
        self.func = func
        self.watch_parent = watch_parent
        self.home = os.getpid()

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[Any, list[tuple]]:
        away = os.getpid() != self.home
        if self.watch_parent and away:  # never in the parent itself (threading backend)
            _start_watchdog()
        # (not in this process: a threading backend runs tasks concurrently here, and the
        # process-wide limit of one task would outlast or cut short another's)
        with one_blas_thread() if away else nullcontext(), warnings.catch_warnings(record=True) as caught:
            # Everything is recorded; the parent's filters decide what is shown, as in a serial run.
            warnings.simplefilter("always")
            result = self.func(*args, **kwargs)
        seen: dict[tuple, None] = {}
        for w in caught:
            # Strings, not warning objects: a library's warning instance need not pickle.
            seen.setdefault((w.category, str(w.message), w.filename, w.lineno), None)
        return result, list(seen)


def reemit(records: list[tuple]) -> None:
    """Raise warnings returned by :class:`Task` again in this process, at their original location."""
    for category, message, filename, lineno in records:
        warnings.warn_explicit(message, category, filename, lineno, registry=_registry)
