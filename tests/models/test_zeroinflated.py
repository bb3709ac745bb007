"""Tests of the ``zip`` and ``zinb`` models (zero-inflated Poisson / NB2, GLM count design).

References: R ``pscl::zeroinfl(y ~ sin12 | 1)`` (tests/reference_data/r_reference_fits.csv),
closed-form ZI pmfs computed with scipy.stats, a brute-force two-step sum for the simulated
forecasts, and recovery of known parameters from simulated panels.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import forecast
from forecast import ConfigError
from forecast.models import REGISTRY
from forecast.models.zeroinflated import ZINB, ZIP, _alpha_score

REF_DIR = Path(__file__).resolve().parents[1] / "reference_data"
MODELS = {"zip": ZIP, "zinb": ZINB}
LEVEL = 1e-3


def _rel(a, b) -> np.ndarray:
    return np.abs(np.asarray(a, float) / np.asarray(b, float) - 1.0)


def panel(series: dict[str, np.ndarray], start: str = "2010-01-01") -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq="MS"),
                                    "y": np.asarray(y, dtype=int)}) for uid, y in series.items()],
                     ignore_index=True)


def simulate_zi(n: int, rng: np.random.Generator, b0: float, b_sin: float, b_cos: float, pi: float,
                alpha: float, lag: float = 0.0, start: str = "2010-01-01") -> np.ndarray:
    """Zero-inflated NB2 (alpha 0: Poisson) with log mu_t = b0 + b_sin sin + b_cos cos + lag log1p(y_{t-1})."""
    m = pd.date_range(start, periods=n, freq="MS").month.to_numpy()
    u = 2 * np.pi * m / 12
    if lag == 0:  # no recursion: draw the whole series at once
        mu = np.exp(b0 + b_sin * np.sin(u) + b_cos * np.cos(u))
        lam = mu * rng.gamma(1 / alpha, alpha, n) if alpha > 0 else mu
        return np.where(rng.random(n) < pi, 0, rng.poisson(lam))
    y, prev = np.zeros(n, dtype=int), 0
    for t in range(n):
        mu = np.exp(b0 + b_sin * np.sin(u[t]) + b_cos * np.cos(u[t]) + lag * np.log1p(prev))
        lam = mu * rng.gamma(1 / alpha, alpha) if alpha > 0 else mu
        y[t] = 0 if rng.random() < pi else rng.poisson(lam)
        prev = y[t]
    return y


@pytest.fixture(scope="module")
def ref_panel() -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "reference_panel.csv", parse_dates=["ds"])


@pytest.fixture(scope="module")
def r_fits() -> pd.DataFrame:
    ref = pd.read_csv(REF_DIR / "r_reference_fits.csv")
    return ref[ref["unique_id"] == "zinb"]


# ------------------------------------------------------------------------ R pscl reference
@pytest.mark.parametrize("model", ["zip", "zinb"])
def test_matches_r_pscl(model, ref_panel, r_fits):
    # exog sin12 with no trend/seasonality is exactly R's design y ~ sin12 | 1
    data = ref_panel.loc[ref_panel["unique_id"] == "zinb", ["unique_id", "ds", "y", "sin12"]]
    fitted = MODELS[model](trend="none", seasonality="none", exog=("sin12",)).fit(data)
    ref = r_fits[r_fits["model"] == model].set_index("term")
    diag = fitted.diagnostics().iloc[0]
    assert diag["fallback"] == "none" and diag["model_used"] == model and diag["converged"]
    co = fitted.coefficients().set_index("term")
    terms = ["count_(Intercept)", "count_sin12", "zero_(Intercept)"] + (["count_Log(theta)"] if model == "zinb" else [])
    assert np.all(_rel(co.loc[terms, "estimate"], ref.loc[terms, "estimate"]) < 1e-4)
    assert np.all(_rel(co.loc[terms, "std_error"], ref.loc[terms, "std_error"]) < 1e-3)
    assert _rel(diag["loglik"], ref.loc["loglik", "estimate"]) < 1e-6
    assert _rel(diag["aic"], ref.loc["aic", "estimate"]) < 1e-6
    assert diag["n_obs"] == 144
    if model == "zinb":
        for term in ("theta", "alpha"):
            assert _rel(co.loc[term, "estimate"], ref.loc[term, "estimate"]) < 1e-4
    else:
        assert "theta" not in co.index and "alpha" not in co.index

    # forecast: the next 6 months with sin12 given; the mean from R's coefficients
    future_ds = pd.date_range("2022-01-01", periods=6, freq="MS")
    sin12 = np.sin(2 * np.pi * future_ds.month.to_numpy() / 12)
    future = pd.DataFrame({"unique_id": "zinb", "ds": future_ds, "sin12": sin12})
    fc = fitted.forecast(6, future=future)
    est = ref["estimate"]
    mu = np.exp(est["count_(Intercept)"] + est["count_sin12"] * sin12)
    pi = special.expit(est["zero_(Intercept)"])
    assert fc.family == model
    assert np.all(_rel(fc.mean, (1 - pi) * mu) < 1e-4)
    assert list(fc.index["ds"]) == list(future_ds)
    with pytest.raises(ConfigError, match="sin12"):
        fitted.forecast(6)
    with pytest.raises(ConfigError, match="lacks column.*sin12"):
        fitted.forecast(6, future=future.drop(columns="sin12").assign(other=1.0))


# ------------------------------------------------------------------------ closed-form pmf
@pytest.mark.parametrize("model", ["zip", "zinb"])
def test_forecast_pmf_is_the_closed_form(model, ref_panel):
    data = ref_panel.loc[ref_panel["unique_id"] == "zinb", ["unique_id", "ds", "y"]]
    fitted = MODELS[model](trend="linear", seasonality="fourier", fourier_k=1).fit(data)
    assert fitted.diagnostics()["fallback"].iloc[0] == "none"
    fc = fitted.forecast(12)
    co = fitted.coefficients().set_index("term")["estimate"]
    # mu rebuilt independently from the coefficients and the calendar (t/12 trend, t = 0 at 2010-01)
    ds = pd.date_range("2022-01-01", periods=12, freq="MS")
    u = 2 * np.pi * ds.month.to_numpy() / 12
    t = np.arange(144, 156) / 12
    mu = np.exp(co["count_(Intercept)"] + co["count_trend"] * t + co["count_sin1"] * np.sin(u)
                + co["count_cos1"] * np.cos(u))
    pi = special.expit(co["zero_(Intercept)"])
    k = np.arange(fc.K + 1)
    if model == "zinb":
        theta = co["theta"]
        f = stats.nbinom.pmf(k[None, :], theta, (theta / (theta + mu))[:, None])
        assert co["alpha"] == pytest.approx(1 / theta, rel=1e-12)
    else:
        f = stats.poisson.pmf(k[None, :], mu[:, None])
    expected = pi * (k[None, :] == 0) + (1 - pi) * f
    np.testing.assert_allclose(fc.pmf, expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fc.mean, (1 - pi) * mu, rtol=1e-12)
    np.testing.assert_allclose(fc.pmf.sum(axis=1) + fc.tail, 1.0, atol=1e-12)


# ------------------------------------------------------------------------ recovery
def test_parameter_recovery_and_wald_coverage():
    truth = {"count_(Intercept)": 1.0, "count_sin1": 0.5, "count_cos1": -0.3,
             "zero_(Intercept)": special.logit(0.3)}
    reps = 300
    sims = {f"s{r}": simulate_zi(144, np.random.default_rng([11, r]), 1.0, 0.5, -0.3, 0.3, 0.5)
            for r in range(reps)}
    fitted = ZINB().fit(panel(sims))
    diag = fitted.diagnostics()
    ok = diag.loc[diag["fallback"] == "none", "unique_id"]
    assert len(ok) >= 0.98 * reps  # a rare sample may sit on the boundary and fall back
    co = fitted.coefficients()
    co = co[co["unique_id"].isin(ok)].set_index(["term", "unique_id"])
    for term, value in truth.items():
        est, se = co.loc[term, "estimate"].to_numpy(), co.loc[term, "std_error"].to_numpy()
        # ML bias at n = 144 is O(1/n): visible over 300 replications (~3 Monte Carlo SEs for
        # the intercepts) but it must stay small against the sampling spread of one fit
        assert abs(est.mean() - value) < 0.5 * se.mean(), term
        assert se.mean() == pytest.approx(est.std(), rel=0.15), term  # SEs match the actual spread
        hits = int(np.sum(np.abs(est - value) <= stats.norm.ppf(0.975) * se))
        p = stats.binomtest(hits, len(est), 0.95).pvalue
        assert p > LEVEL, f"{term}: 95% Wald coverage {hits}/{len(est)} (p = {p:.2g})"


# ------------------------------------------------------------------------ lags and simulation
@pytest.fixture(scope="module")
def lag_panel() -> pd.DataFrame:
    rng = np.random.default_rng(2024)
    return panel({"ar": simulate_zi(240, rng, 0.6, 0.3, 0.0, 0.3, 0.3, lag=0.4),
                  "other": simulate_zi(240, rng, 1.0, 0.0, 0.2, 0.2, 0.5)})


def _merged_chisq(counts: np.ndarray, probs: np.ndarray) -> float:
    """Chi-square p-value with cells pooled from the top until every expected count is >= 5."""
    n = counts.sum()
    probs = np.append(probs, max(1 - probs.sum(), 0))  # everything above the support
    counts = np.append(counts, 0)
    obs, exp, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(counts[::-1], probs[::-1] * n):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= 5:
            obs.append(acc_o)
            exp.append(acc_e)
            acc_o = acc_e = 0.0
    obs[-1] += acc_o
    exp[-1] += acc_e
    return stats.chisquare(obs, np.asarray(exp) * n / np.sum(exp)).pvalue


def _zi_pmf(k, mu, pi, alpha):
    f = stats.poisson.pmf(k, mu) if alpha is None else stats.nbinom.pmf(k, 1 / alpha, 1 / (1 + alpha * mu))
    return pi * (k == 0) + (1 - pi) * f


@pytest.mark.parametrize("model", ["zip", "zinb"])
def test_simulated_paths_match_closed_form(model, lag_panel):
    data = lag_panel[lag_panel["unique_id"] == "ar"]
    spec = MODELS[model](lags=(1,), n_paths=20_000)
    fitted = spec.fit(data)
    assert fitted.diagnostics()["fallback"].iloc[0] == "none"
    one = fitted.forecast(1, seed=5)
    assert one.family == model  # h = 1 with lag 1 is closed form
    multi = fitted.forecast(3, seed=5)
    assert multi.family == "pathmix" and multi.paths.shape == (1, 3, 20_000)
    paths = multi.paths[0]
    # h = 1: the empirical law of the paths against the closed form
    c1 = np.bincount(paths[0], minlength=one.K + 1)[: one.K + 1]
    assert _merged_chisq(c1, one.pmf[0]) > LEVEL
    # h = 2: brute-force sum over the h = 1 count, each giving its own ZI law for h = 2
    co = fitted.coefficients().set_index("term")["estimate"]
    alpha = co["alpha"] if model == "zinb" else None
    pi = special.expit(co["zero_(Intercept)"])
    u = 2 * np.pi * multi.index["ds"].iloc[1].month / 12
    base = co["count_(Intercept)"] + co["count_sin1"] * np.sin(u) + co["count_cos1"] * np.cos(u)
    k1 = np.arange(one.K + 1)
    K2 = 80
    k2 = np.arange(K2 + 1)
    mu2 = np.exp(base + co["count_lag1"] * np.log1p(k1))
    p2 = (one.pmf[0][:, None] * _zi_pmf(k2[None, :], mu2[:, None], pi, alpha)).sum(axis=0)
    c2 = np.bincount(np.minimum(paths[1], K2 + 1), minlength=K2 + 2)[: K2 + 1]
    assert _merged_chisq(c2, p2) > LEVEL
    assert multi.mean[1] == pytest.approx(float(k2 @ p2), rel=0.05)


def test_paths_are_reproducible_and_independent_of_the_panel(lag_panel):
    spec = ZINB(lags=(1,), n_paths=500)
    alone = spec.fit(lag_panel[lag_panel["unique_id"] == "ar"]).forecast(4, seed=3)
    again = spec.fit(lag_panel[lag_panel["unique_id"] == "ar"]).forecast(4, seed=3)
    in_panel = spec.fit(lag_panel.iloc[::-1]).forecast(4, seed=3)
    np.testing.assert_array_equal(alone.paths[0], again.paths[0])
    row = list(in_panel.index["unique_id"].unique()).index("ar")
    np.testing.assert_array_equal(alone.paths[0], in_panel.paths[row])
    other_seed = ZINB(lags=(1,), n_paths=500).fit(lag_panel[lag_panel["unique_id"] == "ar"]).forecast(4, seed=4)
    assert not np.array_equal(alone.paths[0], other_seed.paths[0])


def test_closed_form_up_to_the_shortest_lag(lag_panel):
    # with lag 12 every lagged count of the next 12 months is observed: no simulation needed
    data = lag_panel[lag_panel["unique_id"] == "ar"]
    fitted = ZIP(lags=(12,)).fit(data)
    fc = fitted.forecast(12)
    assert fc.family == "zip"
    co = fitted.coefficients().set_index("term")["estimate"]
    y = data["y"].to_numpy()
    ds = fc.index["ds"]
    u = 2 * np.pi * ds.dt.month.to_numpy() / 12
    mu = np.exp(co["count_(Intercept)"] + co["count_sin1"] * np.sin(u) + co["count_cos1"] * np.cos(u)
                + co["count_lag12"] * np.log1p(y[-12:]))
    np.testing.assert_allclose(fc.mean, (1 - special.expit(co["zero_(Intercept)"])) * mu, rtol=1e-12)
    assert fitted.forecast(13).family == "pathmix"


# ------------------------------------------------------------------------ degenerate series
def _ladder(model: str) -> set[str]:
    return {"zip", "poisson_glm", "negbin_glm", "climatology", "zero"} - {model}


@pytest.mark.parametrize("model", ["zip", "zinb"])
@pytest.mark.parametrize("lags", [(), (1,)])
def test_degenerate_series_fall_back(model, lags, ref_panel):
    rng = np.random.default_rng(8)
    one_event = np.zeros(144, dtype=int)
    one_event[70] = 1
    series = {"all_zero": np.zeros(144, dtype=int), "no_zeros": rng.poisson(4.0, 144) + 1,
              "one_event": one_event, "length_3": np.array([0, 2, 0]),
              "degenerate": ref_panel.loc[ref_panel["unique_id"] == "degenerate", "y"].to_numpy()}
    data = panel(series)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warnings either (overflow, divide by zero)
        fitted = MODELS[model](lags=lags).fit(data)
        fc = fitted.forecast(4)
    diag = fitted.diagnostics().set_index("unique_id")
    for uid in series:
        assert diag.loc[uid, "fallback"] != "none", uid
        assert diag.loc[uid, "model_used"] in _ladder(model), uid
        assert diag.loc[uid, "reason"].startswith(f"{model}: "), uid
    assert "all counts are zero" in diag.loc["all_zero", "reason"]
    assert "no zero counts" in diag.loc["no_zeros", "reason"]
    assert len(fc) == 4 * len(series)
    assert np.all(fc.pmf >= 0) and np.all(np.isfinite(fc.mean)) and np.all(fc.mean >= 0)
    np.testing.assert_allclose(fc.pmf.sum(axis=1) + fc.tail, 1.0, atol=1e-9)
    # an all-zero history forecasts (almost) surely zero
    rows = fc.index["unique_id"] == "all_zero"
    assert np.all(fc.mean[rows] < 1e-6)


def test_zinb_ladder_uses_zip_only_on_the_alpha_boundary():
    rng = np.random.default_rng(21)
    # ZIP data (no overdispersion): ZINB's theta -> inf, so the ZIP fit is the boundary MLE
    zip_like = simulate_zi(144, rng, 1.0, 0.4, 0.0, 0.4, 0.0)
    # NB data without inflation: ZINB's pi -> 0; a ZIP would invent inflation, so it is refused
    nb_like = simulate_zi(144, rng, 0.5, 0.4, 0.0, 0.0, 2.0)
    fitted = ZINB().fit(panel({"zip_like": zip_like, "nb_like": nb_like}))
    diag = fitted.diagnostics().set_index("unique_id")
    assert diag.loc["zip_like", "model_used"] == "zip", diag.loc["zip_like", "reason"]
    assert "theta -> inf" in diag.loc["zip_like", "reason"]
    assert diag.loc["nb_like", "model_used"] != "zip"
    assert "overdispersed beyond a ZIP" in diag.loc["nb_like", "reason"]


def test_explosive_lags_fall_back():
    # log mu_t = 0.3 + 1.1 log(1 + y_{t-1}): the conditional mean grows without bound
    y = simulate_zi(60, np.random.default_rng(3), 0.3, 0.0, 0.0, 0.3, 0.0, lag=1.1)
    fitted = ZIP(lags=(1,), seasonality="none").fit(panel({"x": y}))
    diag = fitted.diagnostics().iloc[0]
    assert diag["fallback"] != "none" and "explosive lag coefficients" in diag["reason"]


def test_alpha_score_matches_finite_difference():
    from forecast.models._zifit import fit_zip, zi_loglik

    rng = np.random.default_rng(4)
    y = simulate_zi(200, rng, 0.8, 0.3, 0.0, 0.3, 0.6)
    X = np.ones((200, 1))
    fit = fit_zip(X, y)
    eps = 1e-7
    fd = (zi_loglik(X, y, fit.coef, fit.zero_coef, eps) - fit.loglik) / eps
    assert _alpha_score(y, fit.mu, fit.pi) == pytest.approx(fd, rel=1e-4)


# ------------------------------------------------------------------------ design handling
def test_uninformative_columns_are_nan_and_exposure_is_an_offset(ref_panel):
    data = ref_panel.loc[ref_panel["unique_id"] == "zinb", ["unique_id", "ds", "y"]].copy()
    late = {"name": "later", "date": "2030-01-01", "kind": "step"}
    base = ZIP(interventions=(late,)).fit(data)
    co = base.coefficients().set_index("term")
    assert np.isnan(co.loc["count_later", "estimate"]) and np.isnan(co.loc["count_later", "std_error"])
    assert "later" in base.diagnostics()["message"].iloc[0]
    # a constant exposure of 2 moves only the intercept, by log 2, and not the forecast at exposure 2
    data["pop"] = 2.0
    expo = ZIP(exposure="pop").fit(data)
    ce = expo.coefficients().set_index("term")["estimate"]
    assert ce["count_(Intercept)"] == pytest.approx(co.loc["count_(Intercept)", "estimate"] - np.log(2), abs=1e-7)
    future = pd.DataFrame({"unique_id": "zinb", "ds": pd.date_range("2022-01-01", periods=3, freq="MS"), "pop": 2.0})
    np.testing.assert_allclose(expo.forecast(3, future=future).mean, base.forecast(3).mean, rtol=1e-7)


def test_hyperparameters_are_checked_at_fit(ref_panel):
    data = ref_panel[ref_panel["unique_id"] == "zinb"]
    with pytest.raises(ConfigError, match=r"The 'trend' parameter of ZIP must be one of 'none', 'damped', 'linear'\. "
                                          r"Got 'quadratic' instead\."):
        ZIP(trend="quadratic").fit(data)
    with pytest.raises(ConfigError, match="'lags' parameter of ZINB"):
        ZINB(lags=(1, 1)).fit(data)
    with pytest.raises(ConfigError, match="'n_paths' parameter of ZINB"):
        ZINB(n_paths=0).fit(data)


def test_toml_specs_load():
    from forecast.specs import load_model

    for name, cls in MODELS.items():
        spec = load_model(name)
        assert type(spec) is cls and spec == cls()
    assert REGISTRY["zip"] is ZIP and REGISTRY["zinb"] is ZINB


# ------------------------------------------------------------------------ smoke
@pytest.mark.parametrize("spec", [ZIP(), ZINB(), ZINB(lags=(1,), n_paths=200)], ids=repr)
def test_smoke_sample_panel(spec):
    data = forecast.build_panel(forecast.load_sample("border_sim"), as_of="2025-12-31")
    fitted = spec.fit(data)
    fc = fitted.forecast(6)
    assert len(fc) == 27 * 6
    assert np.all(np.isfinite(fc.mean)) and np.all(fc.mean >= 0)
    np.testing.assert_allclose(fc.pmf.sum(axis=1) + fc.tail, 1.0, atol=1e-9)
    diag = fitted.diagnostics()
    assert len(diag) == 27 and diag["model_used"].notna().all()
    assert diag.set_index("unique_id").loc["Tajikistan/Dushanbe/clash", "fallback"] != "none"  # all zero
    assert (diag["fallback"] == "none").any()
    frame = fc.to_frame()
    assert len(frame) == 27 * 6 and (frame["lo-95"] <= frame["hi-95"]).all()
