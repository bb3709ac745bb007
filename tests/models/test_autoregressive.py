"""Tests of the log-linear INGARCH model (forecast.models.autoregressive).

References: a brute-force Python recursion with scipy.stats log-pmfs (likelihood),
central finite differences (gradient, Hessian), statsmodels GLM / discrete
NegativeBinomial and the verified GLM solvers in _glmfit (the model without mean
lags is a GLM with log1p lags), simulation with known parameters (recovery,
interval coverage), closed-form pmfs and exact one-step mixtures (simulated paths).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import forecast
from forecast.exceptions import ConfigError
from forecast.models._glmfit import fit_negbin
from forecast.models.autoregressive import INGARCH, fit_ingarch, ingarch_objective, initial_log_mean
from forecast.models.base import Series
from forecast.models.design import DesignSpec, build_design

REF_DIR = Path(__file__).resolve().parents[1] / "reference_data"
LEVEL = 1e-3  # significance level of every statistical test


@pytest.fixture(scope="module")
def ref_panel() -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "reference_panel.csv", usecols=["unique_id", "ds", "y"])


def as_series(frame: pd.DataFrame, uid: str) -> Series:
    g = frame[frame["unique_id"] == uid]
    return Series(uid, pd.DatetimeIndex(pd.to_datetime(g["ds"])), g["y"].to_numpy(dtype="int64"), "MS")


def panel_of(**series: np.ndarray) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": uid, "y": np.asarray(y, dtype=int),
                                    "ds": pd.date_range("2012-01-01", periods=len(y), freq="MS")})
                      for uid, y in series.items()], ignore_index=True)


def brute_loglik(X, y, beta, a, lags, nu_init, alpha=None) -> float:
    """Plain-Python recursion nu_t = x_t'beta + sum a_l nu_{t-l}, scipy.stats log-pmfs."""
    nu, total = [], 0.0
    for t in range(len(y)):
        v = float(X[t] @ beta) + sum(al * (nu[t - q] if t - q >= 0 else nu_init) for al, q in zip(a, lags))
        nu.append(v)
        mu = np.exp(v)
        total += (stats.poisson.logpmf(y[t], mu) if alpha is None
                  else stats.nbinom.logpmf(y[t], 1 / alpha, 1 / (1 + alpha * mu)))
    return total


def simulate_ingarch(rng, n, b0=0.5, b1=0.4, a1=0.3, alpha=0.2, burn=100) -> np.ndarray:
    """INGARCH(1,1) NB2 by a plain loop (independent of the model's simulator)."""
    nu, y, out = 0.0, 0, []
    for _ in range(n + burn):
        nu = b0 + b1 * np.log1p(y) + a1 * nu
        r = 1 / alpha
        y = rng.negative_binomial(r, r / (r + np.exp(nu)))
        out.append(y)
    return np.array(out[burn:])


# -- likelihood and derivatives ------------------------------------------------------------

CASES = [((1,), False), ((1,), True), ((1, 3), False), ((1, 3), True), ((), True)]


@pytest.mark.parametrize("past_mean, nb", CASES)
def test_loglik_gradient_hessian_match_brute_force(ref_panel, past_mean, nb):
    d = build_design(DesignSpec(seasonality="fourier", lags=(1, 2)), as_series(ref_panel, "nb_ar"))
    y, (n, p), L = d.y.astype(int), d.X.shape, len(past_mean)
    rng = np.random.default_rng(3)
    x = np.r_[0.5, rng.normal(0, 0.2, p - 1), [0.25, -0.1][:L], [np.log(0.3)] if nb else []]
    fun = ingarch_objective(d.X, y, past_mean, 0.7, nb=nb)
    brute = brute_loglik(d.X, y, x[:p], x[p:p + L], past_mean, 0.7, 0.3 if nb else None)
    f, g, H = fun(x, 2)
    assert abs(f - brute) <= 1e-10
    assert fun(x, 0) == f
    eye = np.eye(len(x))
    fd_g = np.array([(fun(x + 1e-6 * e, 0) - fun(x - 1e-6 * e, 0)) / 2e-6 for e in eye])
    fd_h = np.array([(fun(x + 1e-5 * e, 1)[1] - fun(x - 1e-5 * e, 1)[1]) / 2e-5 for e in eye])
    assert np.max(np.abs(g - fd_g)) <= 1e-6 * np.max(np.abs(fd_g))  # measured ~2e-10
    assert np.max(np.abs(H - fd_h)) <= 1e-6 * np.max(np.abs(fd_h))  # measured ~1e-10


def test_initial_log_mean():
    assert initial_log_mean([0, 0, 0, 9], 3) == pytest.approx(np.log(0.5 / 3), abs=1e-15)
    assert initial_log_mean([2, 4], 12) == pytest.approx(np.log(6.5 / 2), abs=1e-15)


# -- without mean lags the model is a GLM with log1p lags --------------------------------------

@pytest.mark.parametrize("uid", ["nb_ar", "nb_seasonal"])
def test_poisson_without_mean_lags_equals_statsmodels_glm(ref_panel, uid):
    import statsmodels.api as sm
    d = build_design(DesignSpec(trend="linear", seasonality="fourier", lags=(1, 2)), as_series(ref_panel, uid))
    res = fit_ingarch(d.X, d.y, past_mean=(), obs_cols=d.lag_cols, nu_init=0.0, distribution="poisson")
    ref = sm.GLM(d.y, d.X, family=sm.families.Poisson()).fit(tol=1e-12)
    assert res.converged
    np.testing.assert_allclose(res.coef, ref.params, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res.std_error, ref.bse, rtol=1e-6)  # observed = expected info (canonical link)
    assert res.loglik == pytest.approx(ref.llf, rel=1e-10)


@pytest.mark.parametrize("uid", ["nb_ar", "nb_seasonal", "nb_sparse"])
def test_negbin_without_mean_lags_equals_fit_negbin_and_statsmodels(ref_panel, uid):
    import statsmodels.api as sm
    d = build_design(DesignSpec(seasonality="fourier", lags=(1,)), as_series(ref_panel, uid))
    res = fit_ingarch(d.X, d.y, past_mean=(), obs_cols=d.lag_cols, nu_init=0.0, distribution="negbin")
    glm = fit_negbin(d.X, d.y)
    assert res.converged and glm.converged and glm.alpha > 0
    np.testing.assert_allclose(res.coef, glm.coef, rtol=1e-6, atol=1e-8)
    assert res.alpha == pytest.approx(glm.alpha, rel=1e-6)
    assert res.loglik == pytest.approx(glm.loglik, rel=1e-10)
    # SEs: inverse observed information of (beta, alpha) jointly, as statsmodels' discrete NB2.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = sm.NegativeBinomial(d.y, d.X, loglike_method="nb2").fit(
            start_params=np.r_[glm.coef, glm.alpha], method="newton", tol=1e-12, maxiter=100, disp=0)
    np.testing.assert_allclose(np.r_[res.std_error, res.alpha_se], nb.bse, rtol=1e-5)


def test_model_without_mean_lags_equals_negbin_glm(ref_panel):
    import forecast.models.glm as glm
    frame = ref_panel[ref_panel["unique_id"].isin(["nb_ar", "nb_seasonal"])]
    ours = INGARCH(past_mean=(), past_obs=(1, 2), trend="linear").fit(frame).coefficients()
    theirs = glm.NegBinGLM(lags=(1, 2), trend="linear", seasonality="fourier", fourier_k=1).fit(frame).coefficients()
    ours["term"] = ours["term"].replace({"obs_lag1": "lag1", "obs_lag2": "lag2", "dispersion": "alpha"})
    m = ours.merge(theirs, on=["unique_id", "term"], suffixes=("", "_glm"))
    assert len(m) == len(ours) == len(theirs) == 2 * 7
    np.testing.assert_allclose(m["estimate"], m["estimate_glm"], rtol=1e-6, atol=1e-8)
    # Without any lag both are deterministic in nu: closed-form forecasts for every h.
    spec = dict(trend="linear", seasonality="fourier", fourier_k=1)
    ours = INGARCH(past_obs=(), past_mean=(), **spec).fit(frame).forecast(6)
    theirs = glm.NegBinGLM(lags=(), **spec).fit(frame).forecast(6)
    assert ours.family == "negbin"
    np.testing.assert_allclose(ours.mean, theirs.mean, rtol=1e-6)


# -- recovery of known parameters ------------------------------------------------------------

def test_recovers_ingarch11_parameters_with_calibrated_intervals():
    truth, R, n = np.array([0.5, 0.4, 0.3, 0.2]), 50, 500
    est, covered = [], []
    for i in range(R):
        y = simulate_ingarch(np.random.default_rng([2024, i]), n + 1)
        X = np.column_stack([np.ones(n), np.log1p(y[:-1])])
        r = fit_ingarch(X, y[1:], past_mean=(1,), obs_cols=(1,), nu_init=initial_log_mean(y, 12))
        assert r.converged, r.message
        th, se = np.r_[r.coef, r.alpha], np.r_[r.std_error, r.alpha_se]
        est.append(th)
        covered.append(np.abs(th - truth) <= stats.norm.ppf(0.975) * se)
    est, hits = np.array(est), np.array(covered).sum(axis=0)
    for k in range(4):  # 95% Wald intervals: coverage consistent with 0.95 (measured 46-48 of 50)
        assert stats.binomtest(int(hits[k]), R, 0.95).pvalue > LEVEL, (k, hits)
    # Mean estimate within 3.3 Monte-Carlo SEs (two-sided 1e-3) plus 0.02 for small-sample MLE bias.
    tol = 3.3 * est.std(axis=0, ddof=1) / np.sqrt(R) + 0.02
    assert np.all(np.abs(est.mean(axis=0) - truth) <= tol), (est.mean(axis=0), tol)


# -- forecasts ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ar_frame() -> pd.DataFrame:
    return panel_of(ar=simulate_ingarch(np.random.default_rng(11), 144, b0=0.6, b1=0.35, a1=0.3, alpha=0.3))


def test_one_step_paths_match_closed_form_and_two_step_mixture(ar_frame):
    fitted = INGARCH(n_paths=40_000).fit(ar_frame)
    fit = fitted.fits()["ar"]
    assert fit.fallback == "none" and fit.converged
    one = fitted.forecast(1, seed=5)
    assert one.family == "negbin"
    paths = fitted.forecast(2, seed=5).paths[0]  # (h, n_paths)
    # h = 1 draws against the closed-form NB2 pmf (chi-square, cells with expectation >= 5).
    obs = np.bincount(paths[0], minlength=one.K + 2)[:one.K + 1]
    exp = one.pmf[0] * paths.shape[1]
    cells = exp >= 5
    o, e = np.r_[obs[cells], paths.shape[1] - obs[cells].sum()], np.r_[exp[cells], paths.shape[1] - exp[cells].sum()]
    assert stats.chisquare(o, e).pvalue > LEVEL
    # h = 2 mean: exact sum over y_{T+1} of exp(nu_{T+2} | y_{T+1}), against the path mean (z-test).
    co, st, s = fit.coef, fit.state, fitted._data.series[0]
    base2 = co["(Intercept)"][0] + co["sin1"][0] * np.sin(2 * np.pi * 2 / 12) + co["cos1"][0] * np.cos(2 * np.pi * 2 / 12)
    nu1 = np.log(one.mean[0])
    k = np.arange(one.K + 1)
    m2 = np.sum(one.pmf[0] * np.exp(base2 + co["obs_lag1"][0] * np.log1p(k) + co["mean_lag1"][0] * nu1))
    assert s.ds[-1] == pd.Timestamp("2023-12-01")  # so T + 2 is a February (month 2)
    z = (paths[1].mean() - m2) / (paths[1].std() / np.sqrt(paths.shape[1]))
    assert abs(z) < stats.norm.ppf(1 - LEVEL / 2)
    assert st["nu_hist"].shape == (1,)


def test_model_loglik_coefficients_and_one_step_mean_by_hand(ar_frame):
    """The spec's wiring (rows, names, nu_init, forecast month) against hand-built columns."""
    fitted = INGARCH().fit(ar_frame)
    fit = fitted.fits()["ar"]
    co = {k: v[0] for k, v in fit.coef.items()}
    y = ar_frame["y"].to_numpy()
    month = np.r_[np.arange(len(y)) % 12 + 1, 1]  # the series starts in January; T + 1 is a January
    X = np.column_stack([np.ones(len(y)), np.r_[np.nan, np.log1p(y[:-1])],
                         np.sin(2 * np.pi * month[:-1] / 12), np.cos(2 * np.pi * month[:-1] / 12)])[1:]
    beta = np.array([co["(Intercept)"], co["obs_lag1"], co["sin1"], co["cos1"]])
    nu0 = np.log((y[:12].sum() + 0.5) / 12)  # documented initial log-mean
    ll = brute_loglik(X, y[1:], beta, [co["mean_lag1"]], (1,), nu0, co["dispersion"])
    assert fit.loglik == pytest.approx(ll, abs=1e-8)
    nu = nu0
    for t in range(len(X)):
        nu = X[t] @ beta + co["mean_lag1"] * nu
    nu_next = (co["(Intercept)"] + co["obs_lag1"] * np.log1p(y[-1]) + co["mean_lag1"] * nu
               + co["sin1"] * np.sin(2 * np.pi / 12) + co["cos1"] * np.cos(2 * np.pi / 12))
    f = fitted.forecast(1)
    assert f.mean[0] == pytest.approx(np.exp(nu_next), rel=1e-10)
    assert f.var[0] == pytest.approx(np.exp(nu_next) * (1 + co["dispersion"] * np.exp(nu_next)), rel=1e-10)
    assert fit.n_obs == len(y) - 1 and fit.n_params == 6


def test_same_seed_same_paths_and_panel_invariance(ar_frame):
    other = panel_of(quiet=np.random.default_rng(2).poisson(0.7, 144),
                     zeros=np.zeros(144, dtype=int))
    both = pd.concat([other, ar_frame], ignore_index=True)
    a = INGARCH().fit(ar_frame).forecast(4, seed=3)
    b = INGARCH().fit(ar_frame).forecast(4, seed=3)
    c = INGARCH().fit(ar_frame).forecast(4, seed=4)
    d = INGARCH().fit(both).forecast(4, seed=3)
    np.testing.assert_array_equal(a.paths, b.paths)
    assert not np.array_equal(a.paths, c.paths)
    rows = np.flatnonzero(d.index["unique_id"].to_numpy() == "ar")
    np.testing.assert_array_equal(d.pmf[rows][:, :a.K + 1], a.pmf)
    np.testing.assert_array_equal(d.mean[rows], a.mean)


def test_column_without_information_is_dropped_and_reported(ar_frame):
    late = INGARCH(interventions=({"name": "late", "date": "2030-01-01"},)).fit(ar_frame)
    plain = INGARCH().fit(ar_frame)
    co = late.coefficients().set_index("term")
    assert np.isnan(co.loc["late", "estimate"]) and "late" in late.diagnostics()["message"][0]
    np.testing.assert_allclose(co.drop(index="late")["estimate"], plain.coefficients()["estimate"], rtol=1e-12)
    np.testing.assert_array_equal(late.forecast(3).pmf, plain.forecast(3).pmf)


def test_non_stationary_fit_is_reported_and_falls_back():
    rng = np.random.default_rng(9)
    y = rng.poisson(np.exp(0.5 + 0.04 * np.arange(100)))  # exponential growth: no stationary fit
    X = np.column_stack([np.ones(99), np.log1p(y[:-1])])
    r = fit_ingarch(X, y[1:], past_mean=(1,), obs_cols=(1,), nu_init=initial_log_mean(y, 12))
    assert not r.converged and r.message.startswith("non-stationary")
    assert r.stationarity > 0.99
    fitted = INGARCH(seasonality="none").fit(panel_of(grow=y))
    diag = fitted.diagnostics().iloc[0]
    assert diag["fallback"] != "none" and "ingarch: non-stationary" in diag["reason"]
    f = fitted.forecast(3)
    assert np.all(np.isfinite(f.mean)) and np.allclose(f.pmf.sum(axis=1) + f.tail, 1)


@pytest.mark.parametrize("y", [np.zeros(60, int), np.r_[np.zeros(40, int), 1, np.zeros(19, int)],
                               np.array([0, 2, 1]), "degenerate"], ids=["zeros", "one_event", "len3", "ref"])
def test_degenerate_series_fall_back_without_error(ref_panel, y):
    if isinstance(y, str):
        y = ref_panel.loc[ref_panel["unique_id"] == y, "y"].to_numpy()
    fitted = INGARCH().fit(panel_of(s=y))
    diag = fitted.diagnostics().iloc[0]
    assert diag["fallback"] != "none" and diag["reason"].startswith("ingarch: ")
    for h in (1, 4):
        f = fitted.forecast(h)
        assert len(f) == h and np.all(np.isfinite(f.mean)) and np.allclose(f.pmf.sum(axis=1) + f.tail, 1)


def test_sample_panel_smoke():
    panel = forecast.build_panel(forecast.load_sample("border_sim"), as_of="2025-12-31")
    fitted = INGARCH().fit(panel)
    f = fitted.forecast(6)
    n = panel["unique_id"].nunique()
    assert len(f) == 6 * n and np.all(np.isfinite(f.mean)) and np.all(f.mean >= 0)
    assert np.allclose(f.pmf.sum(axis=1) + f.tail, 1)
    diag = fitted.diagnostics()
    assert (diag["fallback"] == "none").sum() >= n // 3  # most busy series fit the model itself
    own = diag["fallback"] == "none"
    co = fitted.coefficients()
    terms = co[co["unique_id"] == diag.loc[own, "unique_id"].iloc[0]]["term"].tolist()
    assert terms == ["(Intercept)", "obs_lag1", "mean_lag1", "sin1", "cos1", "dispersion"]
    assert all(s.state["stationarity"] < 1 for s in fitted.fits().values() if s.fallback == "none")


# -- spec ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, msg", [
    ({"past_obs": (0,)}, "The 'past_obs' parameter of INGARCH must be a tuple of distinct ints >= 1. Got (0,) instead."),
    ({"past_mean": (1, 1)}, "The 'past_mean' parameter of INGARCH must be a tuple of distinct ints >= 1."),
    ({"distribution": "gaussian"}, "The 'distribution' parameter of INGARCH must be one of 'poisson', 'negbin'."),
])
def test_invalid_hyperparameters_are_reported(ar_frame, kw, msg):
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        INGARCH(**kw).fit(ar_frame)


def test_bundled_spec_loads():
    from forecast.specs import load_model

    assert load_model("ingarch") == INGARCH()
