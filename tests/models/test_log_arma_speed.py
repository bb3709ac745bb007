"""Cheaper log_arma fits in backtests (issue 15): warm starts across origins, and the filter's last
state checked on long series.

References: a plain one-series Kalman filter written out with dense matrices (state, covariance
and likelihood), and cold fits (the grid of starts) of the same data; tolerances stated per test.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import forecast
from forecast.models import _armabatch, log_arma
from forecast.models._armabatch import Arma, fit_arma_pair, kalman
from forecast.models.ladder import warm_starts
from forecast.models.results import SeriesFit


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _dense(model: Arma, x: np.ndarray, z: np.ndarray, X: np.ndarray, beta: np.ndarray):
    """Log-likelihood (σ² profiled, β fixed), filtered state of z - Xβ and its covariance at the
    last period of one series, by the textbook filter with dense T P T' (d = 1: diffuse start)."""
    T, R, P0 = (m[0] for m in model.matrices(x[None]))
    d, s = model.d, model.r + model.d
    e = z - X @ beta
    a, P = np.zeros(s), (np.zeros((s, s)) if d else P0.copy())
    rss, logF, nobs, started = 0.0, 0.0, 0, not d
    for t in range(len(z)):
        if np.isfinite(e[t]):
            if not started:
                a = np.zeros(s)
                a[0] = e[t]
                P = np.zeros((s, s))
                P[1:, 1:] = P0
                started = True
            else:
                F = P[0, 0]
                v = e[t] - a[0]
                K = P[:, 0] / F
                rss, logF, nobs = rss + v * v / F, logF + np.log(F), nobs + 1
                a = a + K * v
                P = P - np.outer(K, K) * F
        if t < len(z) - 1:
            a = T @ a
            P = T @ P @ T.T + np.outer(R, R)
    return -0.5 * nobs * (np.log(2 * np.pi * rss / nobs) + 1) - 0.5 * logF, a, P


@pytest.mark.parametrize("order", [(1, 1, 1), (1, 0, 1), (2, 1, 1), (0, 1, 2), (2, 0, 2)])
def test_filter_state_and_likelihood_equal_the_dense_textbook_filter(order):
    """Long series with late starts, gaps and a missing last value: likelihood to 1e-10
    relative, last state and covariance (what the forecast reads) to 1e-9."""
    rng = np.random.default_rng(11)
    model = Arma(*order)
    S, n = 7, 140
    z = np.cumsum(rng.normal(size=(S, n)), axis=1) * 0.3 + 2
    z[1, :30] = np.nan
    z[2, 50:58] = np.nan
    z[3, -2:] = np.nan
    z[4, ::4] = np.nan
    u = np.arange(n) / 52
    X = np.broadcast_to(np.column_stack([np.ones(n), np.sin(2 * np.pi * u), np.cos(2 * np.pi * u)]), (S, n, 3)).copy()
    x = rng.uniform(-2.5, 2.5, size=(S, model.k))
    beta = rng.normal(size=(S, 3))
    out = kalman(model, x, z, X, beta=beta)
    for i in range(S):
        ll, a, P = _dense(model, x[i], z[i], X[i], beta[i])
        assert abs(out.llf[i] - ll) < 1e-10 * abs(ll), (order, i)
        np.testing.assert_allclose(out.a[i], a, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(out.P[i], P, rtol=1e-9, atol=1e-9)


def _sim_panel(S: int, n: int, seed: int) -> np.ndarray:
    """log(1 + y)-like series: ARIMA(1,1,1) with φ 0.5, θ 0.3 (a well-separated maximum)."""
    rng = np.random.default_rng(seed)
    e = rng.normal(scale=0.2, size=(S, n + 1))
    w = np.zeros((S, n))
    for t in range(1, n):
        w[:, t] = 0.5 * w[:, t - 1] + e[:, t + 1] + 0.3 * e[:, t]
    return 5 + np.cumsum(w, axis=1)


@pytest.fixture()
def llf_calls(monkeypatch):
    """Filter runs of the ascent (the grid, the stencils, the trial steps)."""
    calls = []
    real = _armabatch._llf_many

    def wrapped(*args):
        calls.append(args[1].shape)
        return real(*args)

    monkeypatch.setattr(_armabatch, "_llf_many", wrapped)
    return calls


def test_a_warm_start_at_both_ends_reaches_the_cold_maximum_in_fewer_runs(llf_calls):
    """The refit on one more period, started where the previous fit's two ascents ended,
    ends at the cold (grid) fit's maximum: log-likelihood within 1e-9, coefficients within 1e-5
    (measured: 4e-14 and 4e-8, the polishing Newton step), in at most half the filter runs
    (measured: 5 vs 12)."""
    model = Arma(1, 1, 1)
    z = _sim_panel(12, 121, 5)
    X = np.zeros((12, 121, 0))
    x0, conv0, _, alt0 = fit_arma_pair(model, z[:, :-1], X[:, :-1])
    assert conv0.all()
    llf_calls.clear()
    x_cold, c_cold, cold, _ = fit_arma_pair(model, z, X)
    n_cold = len(llf_calls)
    llf_calls.clear()
    x_warm, c_warm, warm, alt = fit_arma_pair(model, z, X, np.stack([x0, alt0], axis=1))
    n_warm = len(llf_calls)
    assert c_warm.all() and c_cold.all()
    np.testing.assert_allclose(warm.llf, cold.llf, atol=1e-9)
    np.testing.assert_allclose(x_warm, x_cold, atol=1e-5)
    assert n_warm <= n_cold / 2, (n_warm, n_cold)
    assert not any(G > 2 for _, G, _ in llf_calls[:1])  # (no grid: the first run is the two starts)
    assert alt.shape == x_warm.shape


def test_warm_start_only_from_a_usable_earlier_fit():
    spec = forecast.load_model("log_arma")

    class S:  # (a series is read for its id only)
        def __init__(self, uid):
            self.uid = uid

    state = {"x": np.array([0.1, -0.2]), "x_alt": np.array([-0.3, 0.4]), "fourier_k": 1, "order": (1, 1, 1)}
    good = SeriesFit(spec, converged=True, state=dict(state))
    good.fallback = "none"
    fell = SeriesFit(spec, converged=True, state=dict(state))
    fell.fallback = "climatology"
    unconv = SeriesFit(spec, converged=False, state=dict(state))
    unconv.fallback = "none"
    warm = {"a": good, "b": fell, "c": unconv}
    np.testing.assert_array_equal(log_arma._warm_start(warm, S("a"), 1, (1, 1, 1)), [[0.1, -0.2], [-0.3, 0.4]])
    assert log_arma._warm_start(warm, S("a"), 2, (1, 1, 1)) is None  # other Fourier columns
    assert log_arma._warm_start(warm, S("a"), 1, (1, 0, 1)) is None  # other order
    for uid in "bcd":
        assert log_arma._warm_start(warm, S(uid), 1, (1, 1, 1)) is None
    assert log_arma._warm_start(None, S("a"), 1, (1, 1, 1)) is None


def _count_panel(S: int = 8, n: int = 90, seed: int = 2) -> pd.DataFrame:
    z = _sim_panel(S, n, seed)
    ds = pd.date_range("2017-01-02", periods=n, freq="W-MON")
    rng = np.random.default_rng(seed)
    y = rng.poisson(np.exp(z))
    return pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y[i]}) for i in range(S)], ignore_index=True)


def test_backtest_scores_warm_equal_cold_with_fewer_filter_runs(monkeypatch):
    """A backtest refitting log_arma at every origin: warm chains (default) give the cold
    refits' scores to 1e-5 relative (measured: 3e-6; both end on the same maxima, the ascents'
    polishing Newton step to far below TOL's scale), with fewer likelihood evaluations (no grid of
    starts); a warm start that were silently unused would fail the count (and the start check)."""
    panel = _count_panel()
    starts = []
    real = log_arma.fit_arma_pair

    def spy(model, z, X, start=None):
        starts.append(start is not None)
        return real(model, z, X, start)

    monkeypatch.setattr(log_arma, "fit_arma_pair", spy)
    runs = []
    real_llf = _armabatch._llf_many
    # (likelihood evaluations: rows x points of every filter run)
    monkeypatch.setattr(_armabatch, "_llf_many", lambda *a: runs.append(a[1].shape[0] * a[1].shape[1]) or real_llf(*a))
    kw = dict(horizon=3, n_origins=6, seed=1, progress=False, keep_pmf=True)
    models = {"log_arma": forecast.load_model("log_arma")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with warm_starts(False):
            cold = forecast.backtest(panel, models, **kw)
        n_cold, cold_starts = sum(runs), list(starts)
        runs.clear()
        starts.clear()
        warm = forecast.backtest(panel, models, **kw)
    assert not any(cold_starts) and sum(starts) >= 5, (cold_starts, starts)
    assert sum(runs) < 0.7 * n_cold, (sum(runs), n_cold)  # (measured: 0.56)
    num = cold.point_scores.select_dtypes("number").columns
    np.testing.assert_allclose(warm.point_scores[num].to_numpy(float), cold.point_scores[num].to_numpy(float),
                               rtol=1e-5, atol=1e-9)
