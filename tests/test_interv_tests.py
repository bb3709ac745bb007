"""Tests of the intervention score / likelihood-ratio tests, change detection and Holm's adjustment.

References: statsmodels (GLM score and expected information of the augmented model, its
log-likelihoods, ``multipletests``), finite differences of the INGARCH log-likelihood and
log-mean, and the chi-square null distribution on simulated data.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from forecast import ConfigError
from forecast._interv_null import null_model
from forecast._interv_tests import _external_fit, effect_column, fit_ingarch, holm, initial_log_mean, score_stats
from forecast.interventions import TEST_COLUMNS, detect, score_test
from forecast.models.autoregressive import INGARCH, ingarch_objective
from forecast.models.glm import NegBinGLM, PoissonGLM
from forecast.models.series import PanelData

N = 60
DS = pd.date_range("2018-01-01", periods=N, freq="MS")
TAU = 35  # 2020-12


def _panel(ys: dict) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": u, "ds": DS[:len(y)], "y": y}) for u, y in ys.items()],
                     ignore_index=True)


def _nb(rng, mu, size=4.0):
    return rng.negative_binomial(size, size / (size + mu))


@pytest.fixture(scope="module")
def shifted() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    t = np.arange(N)
    mu = np.exp(1.2 + 0.1 * t / 12 + 0.7 * (t >= TAU))
    return _panel({"a": _nb(rng, mu), "b": rng.poisson(mu)})


def _glm_design():
    return np.column_stack([np.ones(N), np.arange(N) / 12])  # trend="linear", seasonality="none"


@pytest.mark.parametrize("delta", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("family", ["poisson", "negbin"])
def test_glm_score_matches_statsmodels_brute_force(shifted, family, delta):
    spec = (PoissonGLM if family == "poisson" else NegBinGLM)(trend="linear", seasonality="none")
    out = score_test(shifted, spec, "2020-12-15", delta=delta, unique_id="a")
    y = shifted.loc[shifted.unique_id == "a", "y"].to_numpy()
    X = _glm_design()
    x = effect_column(np.arange(N), TAU, delta)
    if family == "poisson":
        fam = sm.families.Poisson()
    else:  # our NB2 ML alpha, then statsmodels' GLM at that alpha
        alpha = null_model(spec, PanelData.from_frame(shifted).series[0]).fit.alpha
        fam = sm.families.NegativeBinomial(alpha=alpha)
    b0 = sm.GLM(y, X, family=fam).fit(tol=1e-12).params
    aug = sm.GLM(y, np.column_stack([X, x]), family=fam)
    theta = np.r_[b0, 0.0]
    U = aug.score(theta)
    info = -aug.hessian(theta, observed=False)
    brute = float(U @ np.linalg.solve(info, U))
    assert out.score_stat.iloc[0] == pytest.approx(brute, rel=1e-6)
    assert out.p_score.iloc[0] == pytest.approx(stats.chi2.sf(brute, 1), rel=1e-5)
    assert list(out.columns) == TEST_COLUMNS
    assert out.date.iloc[0] == pd.Timestamp("2020-12-01")


@pytest.mark.parametrize("family", ["poisson", "negbin"])
def test_lr_and_rate_ratio_match_statsmodels(shifted, family):
    spec = (PoissonGLM if family == "poisson" else NegBinGLM)(trend="linear", seasonality="none")
    out = score_test(shifted, spec, "2020-12", delta=1.0, unique_id="a").iloc[0]
    y = shifted.loc[shifted.unique_id == "a", "y"].to_numpy()
    X, x = _glm_design(), effect_column(np.arange(N), TAU, 1.0)
    Xa = np.column_stack([X, x])
    if family == "poisson":
        f0 = sm.GLM(y, X, family=sm.families.Poisson()).fit(tol=1e-12)
        f1 = sm.GLM(y, Xa, family=sm.families.Poisson()).fit(tol=1e-12)
    else:  # alpha estimated in both fits (NB2 maximum likelihood)
        f0 = sm.NegativeBinomial(y, X, loglike_method="nb2").fit(method="newton", tol=1e-12, disp=0, maxiter=200)
        f1 = sm.NegativeBinomial(y, Xa, loglike_method="nb2").fit(method="newton", tol=1e-12, disp=0, maxiter=200)
    assert out.lr_stat == pytest.approx(2 * (f1.llf - f0.llf), rel=1e-5)
    assert out.rate_ratio == pytest.approx(np.exp(f1.params[2]), rel=1e-5)
    se = f1.bse[2]
    if family == "negbin":  # SE as R's glm.nb: expected information with alpha held at its estimate
        se = sm.GLM(y, Xa, family=sm.families.NegativeBinomial(alpha=f1.params[-1])).fit(tol=1e-12).bse[2]
    z = stats.norm.ppf(0.975)
    assert out.lo == pytest.approx(np.exp(f1.params[2] - z * se), rel=1e-4)
    assert out.hi == pytest.approx(np.exp(f1.params[2] + z * se), rel=1e-4)


def test_score_test_size_and_power_on_simulated_data():
    rng = np.random.default_rng(11)
    t = np.arange(48)
    null = {f"n{i}": rng.poisson(np.exp(1.0 + 0.2 * np.sin(2 * np.pi * t / 12))) for i in range(200)}
    spec = PoissonGLM(seasonality="fourier", fourier_k=1)
    p = score_test(_panel(null), spec, DS[24], delta=1.0)
    size = np.mean(p.p_score < 0.05)
    assert 0.02 <= size <= 0.09, size
    assert 0.02 <= np.mean(p.p_lr < 0.05) <= 0.09
    alt = {f"a{i}": rng.poisson(np.exp(1.0 + 0.2 * np.sin(2 * np.pi * t / 12) + 0.5 * (t >= 24))) for i in range(50)}
    power = np.mean(score_test(_panel(alt), spec, DS[24], delta=1.0).p_score < 0.05)
    assert power >= 0.9, power


@pytest.fixture(scope="module")
def feedback() -> pd.DataFrame:
    """A Poisson log-linear INGARCH(1, 1) path: nu_t = 0.5 + 0.3 log(1 + y_{t-1}) + 0.3 nu_{t-1}."""
    rng = np.random.default_rng(7)
    y, nu = np.zeros(N, dtype=int), 1.0
    for t in range(N):
        nu = 0.5 + 0.3 * np.log1p(y[t - 1] if t else 2) + 0.3 * nu
        y[t] = rng.poisson(np.exp(nu))
    return _panel({"f": y})


def _ingarch_brute(y, X, x, nm, kind, eps=1e-6):
    """Score statistic from finite differences: U from the log-likelihood, D from the log-mean."""
    p, nu0, a = X.shape[1], nm.nu_init, nm.fit.a
    theta = np.r_[nm.fit.coef, a]
    Xa = np.column_stack([X, x])

    def nu_of(v):  # v = (beta, gamma, a)
        if kind == "internal":
            return ingarch_objective(Xa, y, (1,), nu0).nu(np.r_[v[:p], v[p], v[p + 1:]])
        return ingarch_objective(X, y, (1,), nu0).nu(np.r_[v[:p], v[p + 1:]]) + v[p] * x

    v0 = np.r_[theta[:p], 0.0, theta[p:]]
    D = np.column_stack([(nu_of(v0 + e) - nu_of(v0 - e)) / (2 * eps) for e in np.eye(len(v0)) * eps])
    mu, alpha = np.exp(nu_of(v0)), nm.fit.alpha
    U = D.T @ ((y - mu) / (1 + alpha * mu))
    info = (D.T * (mu / (1 + alpha * mu))) @ D
    return float(U @ np.linalg.solve(info, U))


@pytest.mark.parametrize("kind", ["internal", "external"])
@pytest.mark.parametrize("delta", [0.0, 0.7, 1.0])
def test_ingarch_score_matches_finite_differences(feedback, kind, delta):
    spec = INGARCH(distribution="poisson", seasonality="none", past_obs=(1,), past_mean=(1,))
    s = PanelData.from_frame(feedback).series[0]
    nm = null_model(spec, s)
    assert nm.fit.converged
    x = effect_column(nm.fit.pos, TAU, delta)
    X = np.column_stack([np.ones(N - 1), np.log1p(s.y[:-1])])
    got = float(score_stats(nm.fit, x[:, None], kind)[0])
    assert got == pytest.approx(_ingarch_brute(s.y[1:], X, x, nm, kind), rel=1e-5)
    out = score_test(feedback, spec, DS[TAU], delta=delta, kind=kind).iloc[0]
    assert out.score_stat == pytest.approx(got, rel=1e-12)


def test_internal_and_external_differ_only_with_feedback(feedback):
    with_fb = INGARCH(distribution="poisson", seasonality="none", past_mean=(1,))
    no_fb = INGARCH(distribution="poisson", seasonality="none", past_mean=())
    a = [score_test(feedback, with_fb, DS[TAU], kind=k).score_stat.iloc[0] for k in
         ("internal", "external")]
    b = [score_test(feedback, no_fb, DS[TAU], kind=k).score_stat.iloc[0] for k in
         ("internal", "external")]
    assert abs(a[0] - a[1]) > 1e-3 * a[0]
    assert b[0] == pytest.approx(b[1], rel=1e-12)


def test_external_fit_matches_newton_without_feedback(shifted):
    """Without mean feedback external = internal: the numerical external fit must reach the
    analytic Newton fit of the model with the covariate (likelihood and gamma)."""
    s = PanelData.from_frame(shifted).series[1]
    X = np.column_stack([np.ones(N - 1), np.log1p(s.y[:-1])])
    y, x, nu0 = s.y[1:], effect_column(np.arange(1, N), TAU, 1.0), initial_log_mean(s.y, 12)
    null = fit_ingarch(X, y, past_mean=(), obs_cols=[1], nu_init=nu0, distribution="poisson")
    alt = fit_ingarch(np.column_stack([X, x]), y, past_mean=(), obs_cols=[1], nu_init=nu0, distribution="poisson")
    ll, g, se = _external_fit(X, y, x, null, (), nu0, [1])
    assert ll == pytest.approx(alt.loglik, abs=1e-6)
    assert g == pytest.approx(alt.coef[2], abs=1e-4)
    assert se == pytest.approx(alt.std_error[2], rel=1e-3)


def test_ingarch_external_lr_finds_a_shift():
    """An external level shift (x 1.8 after TAU, outside the feedback) is found by both tests."""
    rng = np.random.default_rng(0)
    y, kappa = np.zeros(N, dtype=int), 1.0
    for t in range(N):
        kappa = 0.5 + 0.3 * np.log1p(y[t - 1] if t else 2) + 0.3 * kappa
        y[t] = rng.poisson(np.exp(kappa + 0.6 * (t >= TAU)))
    spec = INGARCH(distribution="poisson", seasonality="none", past_mean=(1,))
    out = score_test(_panel({"f": y}), spec, DS[TAU], kind="external").iloc[0]
    assert out.lr_stat > 3.84 and out.p_lr < 0.05 and out.p_score < 0.05
    assert out.lo < np.exp(0.6) < out.hi


def test_detect_finds_the_shift_date(shifted):
    spec = NegBinGLM(seasonality="none")  # (a trend would absorb part of a level shift)
    out = detect(shifted, spec, delta=1.0, B=19, seed=5)
    assert (out.date - DS[TAU]).abs().max() <= pd.Timedelta(days=62)  # within 2 months
    assert (out.p_value <= 0.05).all() and (out.B == 19).all()
    again = detect(shifted, spec, delta=1.0, B=19, seed=5)
    pd.testing.assert_frame_equal(out, again)  # seeded


def test_detect_size_on_null_data():
    rng = np.random.default_rng(2)
    ys = {f"n{i}": rng.poisson(3.0, size=40) for i in range(40)}
    out = detect(_panel(ys), PoissonGLM(seasonality="none"), B=19, seed=1)
    assert out.p_value.between(0.05, 1).all()
    assert np.mean(out.p_value <= 0.1) <= 0.25  # nominal 10 %
    assert np.mean(out.p_value <= 0.5) >= 0.3


def test_holm_matches_statsmodels():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, 27)
    p[[3, 9]] = np.nan
    ok = np.isfinite(p)
    ref = multipletests(p[ok], method="holm")[1]
    got = holm(p)
    np.testing.assert_allclose(got[ok], ref, rtol=1e-12)
    assert np.isnan(got[~ok]).all()
    assert np.isnan(holm(np.array([np.nan]))).all()


@pytest.mark.parametrize("kw, match", [({"delta": 1.5}, "delta"), ({"kind": "inner"}, "kind"),
                                       ({"spec": "climatology"}, "log-linear"), ({"spec": "nope"}, "Unknown"),
                                       ({"unique_id": "zz"}, "not in the panel")])
def test_bad_arguments_are_config_errors(shifted, kw, match):
    args = {"spec": "poisson_glm", **kw}
    with pytest.raises(ConfigError, match=match):
        score_test(shifted, args.pop("spec"), "2020-12", **args)


def test_null_simulation_has_the_fitted_means(shifted):
    """Bootstrap series come from the fitted null: without feedback their mean is mu_t."""
    spec = NegBinGLM(trend="linear", seasonality="none")
    s = PanelData.from_frame(shifted).series[0]
    nm = null_model(spec, s)
    sims = nm.simulate(s, 4000, np.random.default_rng(0))
    assert sims.shape == (4000, N)
    mu, a = nm.fit.mu, nm.fit.alpha
    z = (sims.mean(axis=0) - mu) / np.sqrt((mu + a * mu**2) / 4000)
    assert np.abs(z).max() < 4.5


@pytest.mark.parametrize("spec", [PoissonGLM(seasonality="none", lags=(1,)),
                                  INGARCH(distribution="poisson", seasonality="none")])
def test_detect_with_feedback_models_runs_seeded(feedback, spec):
    a = detect(feedback, spec, B=5, seed=3)
    b = detect(feedback, spec, B=5, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert a.B.iloc[0] >= 4 and 0 < a.p_value.iloc[0] <= 1 and a.n_dates.iloc[0] == N - 1 - 2 * 3  # one lag row lost, margin 3 at each end


# ----------------------------------------------------------------------------- fallbacks and notes

@pytest.fixture(scope="module")
def big_shift() -> pd.DataFrame:
    """A level shift of 1.5 on the log scale and nothing else (NB2, size 3): an NB INGARCH(1, 1)
    null without the effect pushes its mean feedback to the stationarity boundary (the shift
    looks like a unit root)."""
    rng = np.random.default_rng(1)
    t = np.arange(N)
    return _panel({"s": _nb(rng, np.exp(1.0 + 1.5 * (t >= TAU)), size=3.0)})


def test_ingarch_null_at_the_boundary_is_tested_without_mean_feedback(big_shift):
    spec = INGARCH(distribution="negbin", seasonality="none", past_mean=(1,))
    s = PanelData.from_frame(big_shift).series[0]
    assert not null_model(spec, s, fallback=False).fit.converged  # the premise: no interior null maximum
    out = score_test(big_shift, spec, "2020-12", delta=1.0)
    ref = score_test(big_shift, INGARCH(distribution="negbin", seasonality="none", past_mean=()), "2020-12",
                     delta=1.0)
    assert out.note.iloc[0].startswith("fallback: no mean feedback")
    assert ref.note.iloc[0] == ""
    nums = ["score_stat", "p_score", "lr_stat", "rate_ratio"]
    np.testing.assert_allclose(out[nums].to_numpy(float), ref[nums].to_numpy(float), rtol=1e-12)
    assert out.p_score.iloc[0] < 1e-3 and out.rate_ratio.iloc[0] > 2  # the shift is found


def test_detect_tests_the_fallback_and_bootstraps_from_it(big_shift, monkeypatch):
    import forecast.interventions as iv
    calls = []

    def spy(spec, s, fallback=True):
        calls.append((tuple(spec.past_mean), fallback))
        return null_model(spec, s, fallback)
    monkeypatch.setattr(iv, "null_model", spy)
    spec = INGARCH(distribution="negbin", seasonality="none", past_mean=(1,))
    out = detect(big_shift, spec, delta=1.0, B=9, seed=2)
    assert out.note.iloc[0].startswith("fallback")
    assert abs((out.date.iloc[0] - DS[TAU]).days) <= 62 and out.p_value.iloc[0] < 0.2
    # the series' own fit asked for the spec as given; every replicate refits the fallback, never falls back again
    assert calls[0] == ((1,), True) and calls[1:] == [((), False)] * 9


def test_rows_without_a_null_fit_say_why():
    rng = np.random.default_rng(0)
    y = np.zeros(N, dtype=int)
    y[[5, 40]] = 1  # two events, both in months another year leaves empty: month dummies separate
    panel = _panel({"zeros": np.zeros(N, dtype=int), "sparse": y, "fine": rng.poisson(4.0, N)})
    out = score_test(panel, NegBinGLM(trend="linear", seasonality="month"), "2020-12").set_index("unique_id")
    assert out.loc["zeros", "note"] == "no null fit: all counts are zero"
    assert out.loc["sparse", "note"].startswith("no null fit: separation")
    assert out.loc[["zeros", "sparse"], "score_stat"].isna().all()
    assert out.loc["fine", "note"] == "" and np.isfinite(out.loc["fine", "score_stat"])
