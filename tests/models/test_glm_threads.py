"""BLAS threads: one inside the batched GLM solver and in worker processes, restored after.

Each test first raises the BLAS limit to 2 threads, so it would fail if the solver or a
worker ran with the process default (which may be 2 or more threads on a user's machine).
"""
from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from forecast import _threads, _workers
from forecast.models import _glmbatch


def _blas_threads() -> set[int]:
    return {d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}


def _design(S=30, n=48, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 12
    X = np.broadcast_to(np.c_[np.ones(n), t, np.sin(2 * np.pi * t)], (S, n, 3)).copy()
    y = rng.poisson(np.exp(1.0 + 0.2 * t + 0.3 * np.sin(2 * np.pi * t)), size=(S, n))
    return X, y, np.zeros((S, n))


@pytest.fixture
def two_threads():
    if not any(d["user_api"] == "blas" for d in threadpool_info()):
        pytest.skip("no BLAS library loaded")
    with threadpool_limits(2, user_api="blas"):
        yield


def test_fit_batch_runs_with_one_blas_thread_and_restores_the_limit(two_threads, monkeypatch):
    seen = []
    inner = _glmbatch._fit_batch

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return inner(*args, **kwargs)

    monkeypatch.setattr(_glmbatch, "_fit_batch", spy)
    X, y, off = _design()
    res = _glmbatch.fit_batch(X, y, off, nb=True)
    assert seen == [{1}]
    assert _blas_threads() == {2}
    assert res.ok.all()


def test_fit_batch_results_do_not_depend_on_the_blas_limit(two_threads):
    X, y, off = _design()
    a = _glmbatch.fit_batch(X, y, off, nb=True)
    b = _glmbatch._fit_batch(X, y, off, penalty=0.0, nb=True, tol=1e-8, max_iter=None, rows=None)  # no limit
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.alpha, b.alpha, rtol=1e-10, atol=1e-12)


def _threads_now():
    return _blas_threads()


def test_a_task_in_a_worker_process_runs_with_one_blas_thread(two_threads):
    task = _workers.Task(_threads_now)
    task.home = -1  # as if unpickled in another process
    result, _ = task()
    assert result == {1}
    assert _blas_threads() == {2}


def test_a_task_in_this_process_keeps_the_blas_limit(two_threads):
    # (a threading backend runs tasks here concurrently: no process-wide limit is set)
    result, _ = _workers.Task(_threads_now)()
    assert result == {2}


def test_blas_threads_reports_the_current_limit(two_threads):
    info = _threads.blas_threads()
    assert info and {d["num_threads"] for d in info} == {2}
    with _threads.one_blas_thread():
        assert {d["num_threads"] for d in _threads.blas_threads()} == {1}
