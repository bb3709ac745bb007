"""The lean parts of the batched GLM path: coefficient views, the Cholesky inverse, and the
few objects a batch of fits leaves behind (tests/models: _glmglue, _glmstack, glm)."""
from __future__ import annotations

import gc
import pickle

import numpy as np
import pandas as pd
import pytest

from forecast.models._glmstack import _spd_inverse
from forecast.models.base import Series
from forecast.models.glm import NegBinGLM, PoissonGLM


def _panel(S: int, n: int = 48, seed: int = 0) -> list[Series]:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2015-01-01", periods=n, freq="MS")
    season = np.exp(0.4 * np.sin(2 * np.pi * np.arange(n) / 12))
    return [Series(f"s{i}", ds, rng.poisson(rng.gamma(4.0, rng.uniform(2, 9) * season / 4.0)).astype(np.int64),
                   "MS", None, None) for i in range(S)]


@pytest.mark.parametrize("cls", [PoissonGLM, NegBinGLM])
def test_batched_coefficients_read_like_the_per_series_dict(cls):
    spec = cls(trend="linear", seasonality="month", lags=(1,))
    series = _panel(5)
    batched = spec._try_fit_many(series)
    for s, b in zip(series, batched):
        a = spec._fit_series(s)  # per-series solver: a plain dict
        assert b.engine == "batched" and isinstance(a.coef, dict)
        assert list(b.coef) == list(a.coef) and len(b.coef) == len(a.coef)
        for term, (est, se) in a.coef.items():
            got = b.coef[term]
            assert isinstance(got[0], float) and isinstance(got[1], float)
            np.testing.assert_allclose(got, (est, se), rtol=1e-7, atol=1e-10)
        assert dict(b.coef.items()) == {k: b.coef[k] for k in b.coef}
        assert b.coef.get("no such term", "x") == "x"
        back = pickle.loads(pickle.dumps(b.coef))  # a plain dict, not the whole batch
        assert type(back) is dict and back == dict(b.coef.items())
        assert len(pickle.dumps(b.coef)) < 2000


def test_a_batch_of_fits_leaves_few_objects_for_the_garbage_collector():
    # Every container object a fit keeps alive is one more for Python's cyclic collector,
    # whose full passes over a large heap cost 0.1-0.2 s: a dict of (estimate, SE) tuples
    # per series kept ~20 per series alive, the view on the batch ~5.
    spec = NegBinGLM(trend="linear", seasonality="month", lags=(1,))
    series = _panel(300, seed=1)
    spec._try_fit_many(series[:5])  # warm (imports, caches)
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        fits = spec._try_fit_many(series)
        after = len(gc.get_objects())
    finally:
        gc.enable()
    assert all(f.engine == "batched" for f in fits)
    assert (after - before) / len(series) < 8


def test_spd_inverse_equals_the_general_inverse_and_flags_indefinite_rows():
    rng = np.random.default_rng(4)
    M = rng.normal(size=(30, 40, 6))
    A = np.einsum("snp,snq->spq", M, M)
    A[7] = np.diag([1.0, 2.0, -1.0, 1.0, 1.0, 1.0])  # not positive definite
    inv, ok = _spd_inverse(A)
    assert ok.tolist() == [i != 7 for i in range(30)]
    assert np.isnan(inv[7]).all()
    good = np.flatnonzero(ok)
    want = np.linalg.inv(A[good])
    np.testing.assert_allclose(inv[good], want, rtol=1e-10, atol=1e-12 * np.abs(want).max())


def _stack(series: list[Series], n: int):
    """bench-style stacked design on the first n periods: intercept, t/12, months 2..12, lag 1."""
    t = np.arange(n)
    D = np.column_stack([np.ones(n), t / 12] + [(t % 12 == k).astype(float) for k in range(1, 12)])
    Y = np.stack([s.y[:n] for s in series])
    X = np.concatenate([np.broadcast_to(D[1:], (len(series), n - 1, D.shape[1])),
                        np.log1p(Y[:, :-1].astype(float))[:, :, None]], axis=2)
    return X, Y[:, 1:]


@pytest.mark.parametrize("nb", [False, True])
def test_warm_start_reaches_the_same_fit_in_fewer_iterations(nb):
    from forecast.models._glmbatch import fit_batch

    series = _panel(40, n=60, seed=2)
    X0, y0 = _stack(series, 59)  # the previous origin
    X1, y1 = _stack(series, 60)
    prev = fit_batch(X0, y0, np.zeros(y0.shape), nb=nb)
    cold = fit_batch(X1, y1, np.zeros(y1.shape), nb=nb)
    start = np.where(prev.ok[:, None], prev.coef, np.nan)
    start[0] = np.nan  # a series without a start: R's start, as cold
    a_start = np.where(prev.ok, prev.alpha, np.nan)
    a_start[0] = np.nan
    warm = fit_batch(X1, y1, np.zeros(y1.shape), nb=nb, start=start, alpha_start=a_start if nb else None)
    both = cold.ok & warm.ok
    assert both.sum() >= 35
    np.testing.assert_allclose(warm.coef[both], cold.coef[both], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(warm.alpha[both], cold.alpha[both], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(warm.loglik[both], cold.loglik[both], rtol=1e-10)
    assert warm.n_iter[0] == cold.n_iter[0]
    # measured: Poisson 139 vs 173 iterations, NB (incl. its Poisson start) 257 vs 290
    assert warm.n_iter[both].sum() < 0.9 * cold.n_iter[both].sum()
