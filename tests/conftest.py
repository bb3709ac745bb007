"""How the suite shares the cores: the order in which files start under pytest-xdist.

``python -m pytest`` runs on every core (``-n auto --dist loadfile`` in ``pyproject.toml``):
a worker that runs dry pulls the next test file. A whole file goes to one worker, so a
module-scoped fixture (a pipeline run, a Dask cluster, 66 CLI processes) is built once, not
once per worker. (``--dist loadgroup`` with ``xdist_group`` marks would balance finer, but
pytest-xdist 3.8 cannot rename node ids under pytest 9, so its groups are silently ignored.)

**The longest files start first** (longest-processing-time scheduling): a two-minute file
pulled last would keep one core busy minutes after the other ran out of work. A test marks
its cost with ``@pytest.mark.slow(seconds)`` (seconds on a quiet two-core machine; a rough
figure is enough, it only orders the queue). A file costs its largest mark, so a module-wide
``pytestmark = pytest.mark.slow(s)`` gives the whole file's cost; files without marks follow
in their usual order. A serial run (``-n 0``) keeps the usual order.

**One BLAS thread per worker.** Each xdist worker is one core's process: a BLAS library
with its default threads (two here) in each worker puts four busy threads on two cores
(the suite took 5 min 35 s so, 5 min 02 s with one thread per worker). Workers therefore
limit BLAS to one thread, for themselves (threadpoolctl) and for the processes they start
(the CLI runs of the safety corpus, the notebooks). A serial run keeps the defaults; the
benchmarks (``benchmarks/``) always run on the machine's defaults.
"""
from __future__ import annotations

import os

import pytest

pytest_plugins = ("pytester",)  # tests/test_suite_schedule.py runs toy suites through this file


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: one BLAS thread (see above)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
    config.addinivalue_line(
        "markers", "slow(seconds): rough run time on a quiet two-core machine; under pytest-xdist "
                   "the files with the longest tests start first (tests/conftest.py)")


def _cost(item: pytest.Item) -> float:
    mark = item.get_closest_marker("slow")
    if mark is None:
        return 0.0
    return float(mark.args[0] if mark.args else mark.kwargs.get("seconds", 10.0))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # not an xdist worker: keep the usual order
        return
    cost: dict[str, float] = {}
    for item in items:
        cost[item.path.as_posix()] = max(cost.get(item.path.as_posix(), 0.0), _cost(item))
    # Every worker sorts the same collection the same way (a stable sort on a pure key), as
    # xdist requires; the controller hands the files out in this order (--no-loadscope-reorder).
    items.sort(key=lambda it: -cost[it.path.as_posix()])
