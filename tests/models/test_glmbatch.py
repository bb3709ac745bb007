"""The batched engine (forecast.models._glmbatch) against the per-series solvers and statsmodels.

Batching must change no result: every series gets the fit it gets alone (same start, same
Newton steps, each series stopping at its own convergence). References: the per-series
solvers of forecast.models._glmfit (themselves checked against R in test_glmfit.py),
statsmodels' ``GLM(Poisson)`` and ``NegativeBinomial`` fitted per series, scipy for the
intercept-only NB, and simulation with known parameters.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import optimize, stats
from statsmodels.discrete.discrete_model import NegativeBinomial

import forecast.models.baselines  # noqa: F401  (registers the baselines)
from forecast.models._glmbatch import BATCH_MAX_Y, fit_batch, nb_intercept_mle_batch
from forecast.models._glmfit import fit_negbin, fit_poisson
from forecast.models.base import batched_engine
from forecast.models.glm import NegBinGLM, PoissonGLM
from forecast.specs import load_model

# Measured: batched vs per-series solver coefficients <= 4e-12 rel, SEs <= 1e-13; vs
# statsmodels (Newton to 1e-12) <= 2e-8. The bar is 1e-6 on converged series.
SAME_REL = 1e-9
SM_REL = 1e-6


def rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size == 0 and b.size == 0:
        return 0.0
    # floor 1e-6: a coefficient that is 0 up to rounding (balanced month dummies without a trend
    # fit exactly 0) differs by ~1e-16 between two correct solves
    return float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-6)))


def designs(S: int, n: int, rng: np.random.Generator, nb: bool, lag: bool = True):
    """S series sharing a calendar design (intercept, trend, month dummies) plus a lag column."""
    t = np.arange(n + 1)
    D = np.column_stack([np.ones(n + 1), t / 12] + [(t % 12 == k).astype(float) for k in range(1, 12)])
    X = np.empty((S, n, D.shape[1] + lag))
    Y = np.empty((S, n), dtype=np.int64)
    for s in range(S):
        beta = np.r_[rng.uniform(-0.5, 2.5), rng.normal(0, 0.05), rng.normal(0, 0.3, 11)]
        alpha = rng.uniform(0.1, 1.0)
        y = np.zeros(n + 1, dtype=np.int64)
        for i in range(n + 1):  # log mu_t = D_t beta + 0.3 log(1 + y_{t-1})
            mu = np.exp(D[i] @ beta + (0.3 * np.log1p(y[i - 1]) if lag and i else 0.0))
            y[i] = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu)) if nb else rng.poisson(mu)
        X[s, :, :D.shape[1]] = D[1:]
        if lag:
            X[s, :, -1] = np.log1p(y[:-1])
        Y[s] = y[1:]
    return X, Y


@pytest.mark.parametrize("nb", [False, True])
@pytest.mark.parametrize("penalty", [0.0, 0.5])
def test_batch_equals_the_per_series_solver(nb, penalty):
    rng = np.random.default_rng(11)
    X, Y = designs(60, 96, rng, nb)
    off = rng.normal(0, 0.1, Y.shape)
    res = fit_batch(X, Y, off, penalty=penalty, nb=nb)
    assert res.ok.mean() > 0.9  # the regular case is the batch's job
    solver = fit_negbin if nb else fit_poisson
    for s in np.flatnonzero(res.ok):
        one = solver(X[s], Y[s], off[s], penalty=penalty)
        assert one.converged
        assert rel(res.coef[s], one.coef) < SAME_REL
        assert rel(res.std_error[s], one.std_error) < SAME_REL
        assert res.alpha[s] == pytest.approx(one.alpha, rel=SAME_REL, abs=1e-14)
        assert res.loglik[s] == pytest.approx(one.loglik, rel=1e-12)
        if nb and one.alpha > 0:
            assert res.alpha_se[s] == pytest.approx(one.alpha_se, rel=1e-7)
        assert res.n_iter[s] == one.n_iter  # the same iterations, not just the same answer


def test_batch_hands_back_what_needs_the_per_series_solver():
    rng = np.random.default_rng(3)
    X, Y = designs(6, 48, rng, nb=True, lag=False)
    Y[4:] += 1 + Y[4:]  # regular: no zeros, overdispersed
    Y[0] = 0  # all zero
    Y[1, X[1, :, 5] == 1] = 0  # one calendar month always zero: separation
    Y[1, X[1, :, 5] == 0] = np.maximum(Y[1, X[1, :, 5] == 0], 1)
    X[2, :, 4] = X[2, :, 3]  # aliased columns
    Y[3, 0] = BATCH_MAX_Y + 1  # counts beyond the dispersion table
    res = fit_batch(X, Y, np.zeros(Y.shape), nb=True)
    assert not res.ok[:4].any() and res.ok[4:].all()
    assert "separation" in fit_negbin(X[1], Y[1]).message  # what the per-series path then reports


@pytest.mark.parametrize("nb", [False, True])
def test_batched_model_fits_equal_statsmodels(nb):
    """The issue's bar: coefficients equal per-series statsmodels fits to 1e-6 relative."""
    rng = np.random.default_rng(5)
    X, Y = designs(25, 120, rng, nb)
    res = fit_batch(X, Y, np.zeros(Y.shape), nb=nb)
    compared = 0
    for s in np.flatnonzero(res.ok):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if nb:
                if res.alpha[s] == 0:
                    continue  # statsmodels cannot reach the boundary alpha = 0
                ref = NegativeBinomial(Y[s], X[s], loglike_method="nb2").fit(
                    start_params=np.r_[res.coef[s], res.alpha[s]] * 0.9, method="newton", maxiter=200,
                    tol=1e-14, disp=0)
                assert ref.mle_retvals["converged"]
                assert rel(res.coef[s], ref.params[:-1]) < SM_REL
                assert res.alpha[s] == pytest.approx(ref.params[-1], rel=SM_REL)
            else:
                ref = sm.GLM(Y[s], X[s], family=sm.families.Poisson()).fit(tol=1e-14, maxiter=200)
                assert rel(res.coef[s], ref.params) < SM_REL
                assert rel(res.std_error[s], ref.bse) < 1e-6
        compared += 1
    assert compared >= 20


def test_batched_nb_recovers_known_parameters():
    """Simulation: 400 series from one NB2 DGP; the mean estimate sits within 4 SE of the truth."""
    rng = np.random.default_rng(21)
    S, n = 400, 120
    t = np.arange(n)
    X = np.broadcast_to(np.column_stack([np.ones(n), t / 12, np.sin(2 * np.pi * t / 12)]), (S, n, 3)).copy()
    beta, alpha = np.array([1.2, 0.1, 0.5]), 0.4
    mu = np.exp(X @ beta)
    Y = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
    res = fit_batch(X, Y, np.zeros(Y.shape), nb=True)
    assert res.ok.all()
    est = np.c_[res.coef, res.alpha]
    z = (est.mean(axis=0) - np.r_[beta, alpha]) / (est.std(axis=0, ddof=1) / np.sqrt(S))
    assert np.all(np.abs(z[:3]) < 4)
    assert abs(res.alpha.mean() - alpha) < 0.02  # ML alpha is biased down by O(1/n)
    # the reported SEs match the spread of the estimates across series (within 15%)
    assert np.allclose(res.std_error.mean(axis=0), est[:, :3].std(axis=0, ddof=1), rtol=0.15)


def test_intercept_only_nb_equals_a_direct_maximisation():
    rng = np.random.default_rng(8)
    Y = rng.negative_binomial(2, 0.3, size=(40, 36))
    Y[0] = 0
    Y[1] = 3  # not overdispersed: Poisson
    mu, alpha, ll = nb_intercept_mle_batch(Y)
    assert mu[0] == 0 and alpha[0] == 0 and ll[0] == 0
    assert alpha[1] == 0 and ll[1] == pytest.approx(stats.poisson.logpmf(Y[1], 3).sum(), rel=1e-12)
    for s in range(2, 40):
        y = Y[s]
        if np.var(y) <= y.mean():
            assert alpha[s] == 0
            continue

        def negll(a):
            return -stats.nbinom.logpmf(y, 1 / a, 1 / (1 + a * y.mean())).sum()

        ref = optimize.minimize_scalar(negll, bounds=(1e-6, 50), method="bounded", options={"xatol": 1e-12})
        assert alpha[s] == pytest.approx(ref.x, rel=1e-6)
        assert ll[s] == pytest.approx(-ref.fun, rel=1e-10)


def awkward_panel() -> pd.DataFrame:
    """Regular series plus the degenerate ones a real panel has, on two calendars."""
    rng = np.random.default_rng(2)
    rows = []
    for i in range(30):
        n = 60 if i % 3 else 48  # two lengths: two batched groups
        start = "2018-01-01" if i % 3 else "2019-01-01"
        mu = np.exp(rng.uniform(-0.5, 2.5) + 0.4 * np.sin(np.arange(n) * 2 * np.pi / 12))
        y = rng.negative_binomial(2, 2 / (2 + mu))
        if i == 0:
            y[:] = 0
        elif i == 1:
            y[:] = 0
            y[-1] = 1  # one event
        elif i == 2:
            y[::12] = 0
            y[y == 0] = 0
            y[np.arange(n) % 12 == 4] = 0  # a month that never has an event
        rows.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": pd.date_range(start, periods=n, freq="MS"),
                                  "y": y}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("name,params", [
    ("poisson_glm", {}), ("negbin_glm", {}), ("negbin_glm", {"lags": (1,)}),
    ("poisson_glm", {"lags": (1, 2), "seasonality": "fourier"}), ("negbin_glm", {"penalty": 0.5}),
    ("climatology", {}), ("seasonal_naive", {}),
])
def test_models_give_the_same_results_batched_or_per_series(name, params):
    panel = awkward_panel()
    spec = load_model(name).set_params(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batched = spec.fit(panel)
        fc_b = batched.forecast(4)
        with batched_engine(False):
            single = spec.fit(panel)
            fc_s = single.forecast(4)
    db, ds = batched.diagnostics(), single.diagnostics()
    cols = ["unique_id", "converged", "fallback", "reason", "model_used", "n_obs", "message"]
    pd.testing.assert_frame_equal(db[cols], ds[cols])
    assert np.allclose(db["loglik"], ds["loglik"], rtol=1e-10, equal_nan=True)
    cb, cs = batched.coefficients(), single.coefficients()
    assert (cb[["unique_id", "term"]] == cs[["unique_id", "term"]]).all().all()
    assert rel(cb["estimate"], cs["estimate"]) < SAME_REL
    assert rel(cb["std_error"], cs["std_error"]) < SAME_REL
    pd.testing.assert_frame_equal(fc_b.index, fc_s.index)
    assert np.allclose(fc_b.mean, fc_s.mean, rtol=1e-9, atol=0)
    K = min(fc_b.K, fc_s.K)
    assert np.allclose(fc_b.pmf[:, :K], fc_s.pmf[:, :K], rtol=1e-8, atol=1e-15)
    if fc_b.paths is not None:  # simulated paths: the same random streams, the same draws
        assert np.array_equal(fc_b.paths, fc_s.paths)
    if name.endswith("_glm"):
        eng = db.set_index("unique_id")["engine"]
        assert (eng == "batched").sum() >= 20
        assert db.set_index("unique_id").loc["s00", "fallback"] != "none"  # all zero: down the ladder
        assert all(e == "batched" or e.startswith("per-series") for e in eng)
        assert set(ds["engine"]) == {"per-series"}


def test_fallback_rungs_forecast_with_their_own_spec():
    """Series on different ladder rungs are forecast in groups, each by its own rung."""
    panel = awkward_panel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = NegBinGLM().fit(panel)
    d = fitted.diagnostics().set_index("unique_id")
    assert d.loc["s00", "model_used"] == "zero" or d.loc["s00", "model_used"] == "climatology"
    fc = fitted.forecast(3)
    assert list(dict.fromkeys(fc.index["unique_id"])) == sorted(panel["unique_id"].unique())
    for uid in ("s00", "s05"):
        one = fitted.fits()[uid]
        alone = one.spec._forecast_many([one], [next(s for s in fitted._data.series if s.uid == uid)], 3, None, 0)
        rows = fc.index["unique_id"].to_numpy() == uid
        assert np.allclose(fc.mean[rows], alone[0].mu * (1 if alone[0].pi is None else 1 - alone[0].pi))


def test_poisson_glm_batched_on_a_large_panel_matches_statsmodels_on_a_sample():
    rng = np.random.default_rng(4)
    n, S = 72, 300
    ds = pd.date_range("2015-01-01", periods=n, freq="MS")
    mu = np.exp(rng.uniform(0, 2, S)[:, None] + 0.3 * np.cos(2 * np.pi * ds.month.to_numpy() / 12)[None, :])
    panel = pd.DataFrame({"unique_id": np.repeat([f"u{i:03d}" for i in range(S)], n),
                          "ds": np.tile(ds, S), "y": rng.poisson(mu).ravel()})
    fitted = PoissonGLM(trend="linear", seasonality="month").fit(panel)
    assert (fitted.diagnostics()["engine"] == "batched").mean() > 0.95  # the rest: months without events
    coefs = fitted.coefficients()
    month = ds.month.to_numpy()
    X = np.column_stack([np.ones(n), np.arange(n) / 12] + [(month == k).astype(float) for k in range(2, 13)])
    for uid in ("u000", "u150", "u299"):
        y = panel.loc[panel["unique_id"] == uid, "y"].to_numpy()
        ref = sm.GLM(y, X, family=sm.families.Poisson()).fit(tol=1e-14, maxiter=200)
        assert rel(coefs.loc[coefs["unique_id"] == uid, "estimate"], ref.params) < SM_REL


def test_dispersion_sums_of_huge_counts_use_closed_forms_not_a_table():
    """A count of 1e9 (the panel maximum) must not build a 1e9-long table (7 GB): above the
    per-series solver's table limit the batch uses the same digamma/trigamma closed forms."""
    from forecast.models import _glmbatch, _glmfit

    y = np.array([[0, 3, 250_000, 7], [1, 999_999_999, 2, 0]])
    alpha = np.array([0.3, 1.7])
    got = _glmbatch._dispersion_sums(y, alpha, 1)
    for s in range(2):
        want = _glmfit._dispersion_sums(y[s], float(alpha[s]))
        for g, w in zip(got, want):
            np.testing.assert_allclose(g[s], w, rtol=1e-12)
    # The closed forms agree with the exact table where both are affordable (rel 1e-9).
    yy = np.array([[150_000, 20]])
    closed = _glmbatch._dispersion_sums(yy, np.array([0.05]), 1)
    k = np.arange(150_000, dtype=float)
    table = [np.log1p(0.05 * k).sum(), (k / (1 + 0.05 * k)).sum(), ((k / (1 + 0.05 * k)) ** 2).sum()]
    np.testing.assert_allclose([c[0, 0] for c in closed], table, rtol=1e-9)
    mu, a, ll = _glmbatch.nb_intercept_mle_batch(np.array([[1, 0, 2, 999_999_999, 1, 0]]))
    assert np.isfinite([mu[0], a[0], ll[0]]).all() and a[0] > 1
