"""Shared helpers for the peer benchmarks (bench_glm, bench_scoring, bench_cli, bench_ingest).

Not a benchmark itself. Benchmarks run on the machine's defaults (no thread variable is
set) and record the BLAS thread settings they ran with (:func:`threads_line`); each
imports this module by name (``python benchmarks/bench_x.py`` puts the
benchmarks folder on ``sys.path``).
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import sys
import threading
import time
from contextlib import contextmanager


def peak_rss_mb() -> float:
    """Peak resident set size of *this process so far* in MB (ru_maxrss, KiB on Linux).

    It is a process-lifetime peak: it includes the interpreter, every imported library
    and whichever phase (ours or the peer's) used the most memory, not one phase alone.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    """Largest peak RSS of any waited-for child process, in MB (RUSAGE_CHILDREN)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def machine_line() -> str:
    """Date/time, host facts and the current load average (other jobs may share the machine)."""
    try:
        load = "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:  # pragma: no cover
        load = "load average n/a"
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "?")
    except OSError:  # pragma: no cover
        pass
    return (f"{_dt.datetime.now().isoformat(timespec='seconds')} | {os.cpu_count()} cores ({cpu}) | "
            f"Python {platform.python_version()} | {load}\n   {threads_line()}")


def threads_line() -> str:
    """The thread pools this process runs with (``threadpoolctl.threadpool_info()``: each
    loaded BLAS / OpenMP library and its thread count) and any thread variable set."""
    import numpy  # noqa: F401 - load numpy's and scipy's BLAS so that they are listed
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info

    pools = "; ".join(f"{d['internal_api']} {d.get('version') or ''} ({d['prefix']}): {d['num_threads']} threads"
                      for d in threadpool_info())
    env = [f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
           if k in os.environ]
    return f"thread pools (threadpoolctl, process defaults): {pools or 'none'} | thread variables: {', '.join(env) or 'none set'}"



def versions(*modules: str) -> str:
    out = []
    for name in modules:
        mod = sys.modules.get(name)
        if mod is None:
            try:
                mod = __import__(name)
            except Exception:  # noqa: BLE001 - report, do not fail
                out.append(f"{name} (not installed)")
                continue
        out.append(f"{name} {getattr(mod, '__version__', '?')}")
    return ", ".join(out)


def header(title: str, *modules: str) -> None:
    print(f"== {title}")
    print(f"   {machine_line()}")
    if modules:
        print(f"   {versions(*modules)}")


def ratio_line(label: str, peer_s: float, ours_s: float, target: float | None = None) -> str:
    """One line: peer time, our time, ratio peer/ours ("x faster"; < 1 means slower)."""
    r = peer_s / ours_s if ours_s > 0 else float("inf")
    verdict = f"{r:.2f}x faster" if r >= 1 else f"{1 / r:.2f}x SLOWER"
    line = f"{label}: peer {peer_s:.3f} s | ours {ours_s:.3f} s | ratio peer/ours = {r:.2f} ({verdict})"
    if target is not None:
        line += f" | target >= {target:g}x: {'met' if r >= target else 'NOT met'}"
    print(line)
    return line


def memory_line(note: str = "") -> str:
    line = (f"peak RSS (process peak, ru_maxrss; includes interpreter, libraries and every phase "
            f"of this run): {peak_rss_mb():.0f} MB")
    if note:
        line += f" {note}"
    print(line)
    return line


@contextmanager
def timed(store: dict, key: str):
    """``with timed(t, "ours"): ...`` stores the wall time (perf_counter) in ``t["ours"]``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        store[key] = time.perf_counter() - t0


def rss_mb(pid: int | None = None) -> float:
    """Resident size of a process now (this one by default), in MB (Linux /proc)."""
    with open(f"/proc/{pid or 'self'}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """The largest resident size of the processes ``pids`` (default: this one) seen every
    ``every`` seconds, by a background thread; use as a context manager, then read ``peak``."""

    def __init__(self, pids: list[int] | None = None, every: float = 0.2) -> None:
        self.pids = pids or [None]
        self.every, self.peak, self._stop = every, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._look()

    def _look(self) -> None:
        for pid in self.pids:
            try:
                self.peak = max(self.peak, rss_mb(pid))
            except OSError:  # a worker that ended or restarted: its successor is not followed
                pass

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._look()

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._look()
