"""Tests of the ``poisson_glm`` / ``negbin_glm`` models (forecast.models.glm).

References: R ``glm`` / ``MASS::glm.nb`` fits (tests/reference_data), statsmodels GLM at a
fixed alpha, scipy.stats pmfs, brute-force sums of the conditional-mean recursion, and
simulation with known parameters.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import forecast.models.glm  # noqa: F401  (registers poisson_glm / negbin_glm)
from forecast import ConfigError
from forecast.interventions import effects
from forecast.models.glm import NegBinGLM, PoissonGLM
from forecast.specs import load_model

REF_DIR = Path(__file__).resolve().parents[1] / "reference_data"
COEF_REL, ALPHA_REL, LOGLIK_REL, SE_REL = 1e-6, 1e-6, 1e-6, 1e-3  # measured: 4e-9, 1e-8, 6e-14, 3e-5
LEVEL = 1e-3  # significance level of every statistical test
FOURIER1 = dict(trend="linear", seasonality="fourier", fourier_k=1)


@pytest.fixture(scope="module")
def ref_panel() -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "reference_panel.csv")


@pytest.fixture(scope="module")
def r_fits() -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "r_reference_fits.csv")


def frame(series: dict[str, list[int]], start: str = "2020-01-01") -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq="MS"),
                                    "y": y}) for uid, y in series.items()], ignore_index=True)


def as_r(fit) -> dict[str, tuple[float, float]]:
    """Our (estimate, SE) in R's parametrisation: R's trend is t/144 with t = 1..144, ours
    (t - 1)/12, so b_R = 12 b and b0_R = b0 - b/12 (its SE from the covariance)."""
    names = list(fit.state["names"])
    beta, cov = fit.state["beta"], fit.state["cov"]
    i, j = names.index("(Intercept)"), names.index("trend")
    a = np.zeros(len(names))
    a[i], a[j] = 1.0, -1 / 12
    out = {"(Intercept)": (a @ beta, np.sqrt(a @ cov @ a)), "I(t/144)": (12 * beta[j], 12 * np.sqrt(cov[j, j]))}
    for k, nm in enumerate(names):
        if nm not in ("(Intercept)", "trend"):
            r_name = {"sin1": "sin12", "cos1": "cos12"}.get(nm, nm.replace("month_", "month_f"))
            out[r_name] = (beta[k], np.sqrt(cov[k, k]))
    return out


def assert_matches_r(fit, ref: pd.DataFrame, terms: dict[str, tuple[float, float]]) -> None:
    for term, (est, se) in terms.items():
        assert est == pytest.approx(ref.loc[term, "estimate"], rel=COEF_REL), term
        assert se == pytest.approx(ref.loc[term, "std_error"], rel=SE_REL), term
    assert fit.loglik == pytest.approx(ref.loc["loglik", "estimate"], rel=LOGLIK_REL)
    if "alpha" in ref.index:
        assert fit.coef["alpha"][0] == pytest.approx(ref.loc["alpha", "estimate"], rel=ALPHA_REL)


# --- against R ------------------------------------------------------------------------------

def test_our_fourier_columns_are_rs_sin12_cos12(ref_panel) -> None:
    fit = PoissonGLM(**FOURIER1).fit(ref_panel[["unique_id", "ds", "y"]]).fits()["nb_seasonal"]
    b = dict(zip(fit.state["names"], fit.state["beta"]))
    s = ref_panel[ref_panel.unique_id == "nb_seasonal"]
    ds = pd.to_datetime(s["ds"])
    ours = b["sin1"] * np.sin(2 * np.pi * ds.dt.month / 12) + b["cos1"] * np.cos(2 * np.pi * ds.dt.month / 12)
    np.testing.assert_allclose(ours, b["sin1"] * s["sin12"] + b["cos1"] * s["cos12"], atol=1e-11)


@pytest.mark.parametrize("cls", [PoissonGLM, NegBinGLM])
@pytest.mark.parametrize("uid", ["nb_seasonal", "pois_seasonal", "nb_sparse"])
def test_trend_fourier_matches_r(ref_panel, r_fits, cls, uid) -> None:
    fit = cls(**FOURIER1).fit(ref_panel[["unique_id", "ds", "y"]]).fits()[uid]
    assert fit.fallback == "none" and fit.converged
    ref = r_fits[(r_fits.unique_id == uid) & (r_fits.model == cls.name)].set_index("term")
    assert_matches_r(fit, ref, as_r(fit))
    assert fit.n_params == 4 + (cls is NegBinGLM) and fit.n_obs == 144


@pytest.mark.parametrize("uid", ["nb_seasonal", "pois_seasonal"])
def test_month_dummies_match_r(ref_panel, r_fits, uid) -> None:
    fit = PoissonGLM(trend="linear", seasonality="month").fit(ref_panel[["unique_id", "ds", "y"]]).fits()[uid]
    ref = r_fits[(r_fits.unique_id == uid) & (r_fits.model == "poisson_glm_month_dummies")].set_index("term")
    terms = as_r(fit)
    assert len(terms) == 13
    assert_matches_r(fit, ref, terms)


@pytest.mark.parametrize("cls", [PoissonGLM, NegBinGLM])
def test_lag_model_matches_r_through_exog(ref_panel, r_fits, cls) -> None:
    # R's y ~ lag1 + sin12 is our lags=(1,) plus the panel's sin12 column as a covariate.
    spec = cls(trend="none", seasonality="none", lags=(1,), exog=("sin12",))
    fit = spec.fit(ref_panel[["unique_id", "ds", "y", "sin12"]]).fits()["nb_ar"]
    ref = r_fits[(r_fits.unique_id == "nb_ar") & (r_fits.model == f"{cls.name}_ar1")].set_index("term")
    assert fit.n_obs == 143
    assert_matches_r(fit, ref, {k: fit.coef[k] for k in ("(Intercept)", "lag1", "sin12")})


def test_nb_lag_model_matches_statsmodels(ref_panel) -> None:
    import statsmodels.api as sm

    fit = NegBinGLM(trend="none", seasonality="none", lags=(1,)).fit(ref_panel).fits()["nb_ar"]
    y = ref_panel.loc[ref_panel.unique_id == "nb_ar", "y"].to_numpy()
    X = np.column_stack([np.ones(143), np.log1p(y[:-1])])

    def sm_fit(a: float):
        return sm.GLM(y[1:], X, family=sm.families.NegativeBinomial(alpha=a)).fit(tol=1e-12)

    alpha = fit.coef["alpha"][0]
    ref = sm_fit(alpha)
    np.testing.assert_allclose([fit.coef[k][0] for k in ("(Intercept)", "lag1")], ref.params, rtol=1e-6)
    np.testing.assert_allclose([fit.coef[k][1] for k in ("(Intercept)", "lag1")], ref.bse, rtol=1e-6)
    assert fit.loglik == pytest.approx(ref.llf, rel=1e-6)
    # alpha maximises statsmodels' profile likelihood (its own, independent optimiser)
    prof = optimize.minimize_scalar(lambda la: -sm_fit(np.exp(la)).llf, bounds=(-5, 2), method="bounded",
                                    options={"xatol": 1e-9})
    assert alpha == pytest.approx(np.exp(prof.x), rel=1e-4)


@pytest.mark.parametrize("cls", [PoissonGLM, NegBinGLM])
def test_separated_month_dummy_falls_back_to_penalised(ref_panel, cls) -> None:
    # nb_sparse has no event in any September: the unpenalised MLE of month_9 is -inf.
    fitted = cls(trend="linear", seasonality="month").fit(ref_panel[["unique_id", "ds", "y"]])
    d = fitted.diagnostics().set_index("unique_id").loc["nb_sparse"]
    assert d["fallback"] == "penalised" and d["converged"]
    assert "separation" in d["reason"] and "month_9" in d["reason"]
    sep = fitted.fits()["nb_sparse"].coef["month_9"]
    assert np.isfinite(sep).all() and -5 < sep[0] < 0  # R stopped its divergence at -17.6


# --- known parameters ---------------------------------------------------------------------

def test_recovers_nb_parameters_and_effect_with_nominal_coverage() -> None:
    T, R, alpha = 144, 200, 0.5
    ds = pd.date_range("2012-01-01", periods=T, freq="MS")
    m, t = ds.month.to_numpy(), np.arange(T)
    true = {"(Intercept)": 0.8, "trend": 0.05, "sin1": 0.4, "cos1": -0.3, "closure": -0.5}
    eta = (true["(Intercept)"] + true["trend"] * t / 12 + true["sin1"] * np.sin(2 * np.pi * m / 12)
           + true["cos1"] * np.cos(2 * np.pi * m / 12) + true["closure"] * (ds >= "2018-07-01"))
    rng = np.random.default_rng(2024)
    Y = rng.poisson(rng.gamma(1 / alpha, alpha * np.exp(eta), size=(R, T)))
    panel = pd.DataFrame({"unique_id": np.repeat([f"s{i:03d}" for i in range(R)], T),
                          "ds": np.tile(ds, R), "y": Y.ravel()})
    iv = {"name": "closure", "date": "2018-07-15", "kind": "step"}
    fitted = NegBinGLM(trend="damped", seasonality="fourier", fourier_k=1, interventions=(iv,)).fit(panel)
    assert (fitted.diagnostics()["fallback"] == "none").all()
    c = fitted.coefficients()
    z = stats.norm.ppf(0.975)
    for term, value in true.items():
        ct = c[c.term == term]
        covered = int(((ct.estimate - z * ct.std_error <= value) & (value <= ct.estimate + z * ct.std_error)).sum())
        assert stats.binomtest(covered, R, 0.95).pvalue > LEVEL, (term, covered)
    assert abs(c.loc[c.term == "alpha", "estimate"].median() - alpha) < 0.1  # ML alpha is biased low by O(1/n)
    e = effects(fitted)
    covered = int(((e.lo <= np.exp(true["closure"])) & (np.exp(true["closure"]) <= e.hi)).sum())
    assert len(e) == R and stats.binomtest(covered, R, 0.95).pvalue > LEVEL


def test_closed_form_forecast_is_exp_of_the_linear_predictor(ref_panel) -> None:
    fitted = NegBinGLM(**FOURIER1).fit(ref_panel[["unique_id", "ds", "y"]])
    fit = fitted.fits()["nb_seasonal"]
    fc = fitted.forecast(14)
    rows = (fc.index.unique_id == "nb_seasonal").to_numpy()
    m = pd.date_range("2022-01-01", periods=14, freq="MS").month.to_numpy()
    b = {k: v[0] for k, v in fit.coef.items()}
    mu = np.exp(b["(Intercept)"] + b["trend"] * np.arange(144, 158) / 12 + b["sin1"] * np.sin(2 * np.pi * m / 12)
                + b["cos1"] * np.cos(2 * np.pi * m / 12))
    np.testing.assert_allclose(fc.mean[rows], mu, rtol=1e-12)
    np.testing.assert_allclose(fc.var[rows], mu + b["alpha"] * mu**2, rtol=1e-12)


# --- simulation with lags -------------------------------------------------------------------

def nb_pmf(k, mu, alpha):
    return stats.nbinom.pmf(k, 1 / alpha, 1 / (1 + alpha * mu))


@pytest.fixture(scope="module")
def ar_fit(ref_panel):
    spec = NegBinGLM(trend="none", seasonality="fourier", fourier_k=1, lags=(1,), n_paths=20000)
    return spec.fit(ref_panel[ref_panel.unique_id == "nb_ar"][["unique_id", "ds", "y"]])


def last_y(ref_panel) -> int:
    return int(ref_panel.loc[ref_panel.unique_id == "nb_ar", "y"].iloc[-1])


def test_first_step_of_the_paths_is_the_closed_form_nb(ar_fit, ref_panel) -> None:
    one, paths = ar_fit.forecast(1, seed=7), ar_fit.forecast(3, seed=7)
    assert one.family == "negbin" and paths.family == "pathmix"
    draws = paths.paths[0, 0]
    mu, alpha = one.mean[0], ar_fit.fits()["nb_ar"].coef["alpha"][0]
    b = {k: v[0] for k, v in ar_fit.fits()["nb_ar"].coef.items()}  # by hand: exp(x'b + lag1 log1p(y_T))
    assert mu == pytest.approx(np.exp(b["(Intercept)"] + b["sin1"] * np.sin(2 * np.pi / 12) + b["cos1"]
                                      * np.cos(2 * np.pi / 12) + b["lag1"] * np.log1p(last_y(ref_panel))),
                               rel=1e-12)
    kmax = int(stats.nbinom.ppf(1 - 5 / len(draws), 1 / alpha, 1 / (1 + alpha * mu)))
    obs = np.bincount(np.minimum(draws, kmax), minlength=kmax + 1)
    exp = nb_pmf(np.arange(kmax + 1), mu, alpha) * len(draws)
    exp[-1] = stats.nbinom.sf(kmax - 1, 1 / alpha, 1 / (1 + alpha * mu)) * len(draws)
    assert exp.min() >= 5
    assert stats.chisquare(obs, exp).pvalue > LEVEL


def test_path_means_match_the_brute_force_recursion(ar_fit, ref_panel) -> None:
    fit = ar_fit.fits()["nb_ar"]
    b = {k: v[0] for k, v in fit.coef.items()}
    alpha, g = b["alpha"], b["lag1"]
    m = np.array([1, 2, 3])  # 2022-01 .. 2022-03
    c = b["(Intercept)"] + b["sin1"] * np.sin(2 * np.pi * m / 12) + b["cos1"] * np.cos(2 * np.pi * m / 12)
    k = np.arange(400)
    p1 = nb_pmf(k, np.exp(c[0] + g * np.log1p(last_y(ref_panel))), alpha)
    mu2 = np.exp(c[1] + g * np.log1p(k))  # E[Y2 | Y1 = k]
    p2 = nb_pmf(k[None, :], mu2[:, None], alpha)  # P(Y2 = j | Y1 = k)
    exact = [p1 @ k, p1 @ mu2, p1 @ (p2 @ np.exp(c[2] + g * np.log1p(k)))]
    paths = ar_fit.forecast(3, seed=7).paths[0]
    for h in range(3):
        se = paths[h].std() / np.sqrt(paths.shape[1])
        assert abs(paths[h].mean() - exact[h]) < 4 * se, (h, paths[h].mean(), exact[h])


def test_paths_do_not_depend_on_the_rest_of_the_panel(ref_panel) -> None:
    spec = NegBinGLM(lags=(1,), n_paths=500)
    alone = spec.fit(ref_panel[ref_panel.unique_id == "nb_ar"]).forecast(6, seed=3)
    shuffled = ref_panel.sample(frac=1.0, random_state=1)
    panel = spec.fit(shuffled).forecast(6, seed=3)
    i = panel.index.unique_id.drop_duplicates().tolist().index("nb_ar")
    np.testing.assert_array_equal(panel.paths[i], alone.paths[0])
    assert not np.array_equal(NegBinGLM(lags=(1,), n_paths=500).fit(shuffled).forecast(6, seed=4).paths[i],
                              alone.paths[0])


@pytest.mark.parametrize("cls", [PoissonGLM, NegBinGLM])
def test_explosive_lags_fall_back_and_say_why(cls) -> None:
    rng = np.random.default_rng(0)
    y = [1]
    for _ in range(23):  # log mu_t = 0.2 + 1.03 log(1 + y_{t-1}): explosive
        y.append(int(rng.poisson(np.exp(0.2 + 1.03 * np.log1p(y[-1])))))
    fitted = cls(trend="none", seasonality="none", lags=(1,)).fit(frame({"boom": y, "calm": [1, 0, 2] * 8}))
    d = fitted.diagnostics().set_index("unique_id")
    assert d.loc["boom", "fallback"] == "climatology"
    assert "explosive lag coefficients (sum = 1.0" in d.loc["boom", "reason"]
    assert d.loc["calm", "fallback"] == "none"
    fc = fitted.forecast(6)
    assert np.all(fc.mean[(fc.index.unique_id == "boom").to_numpy()] <= max(y))


# --- degenerate series, validation, covariates ---------------------------------------------

@pytest.mark.parametrize("kw", [{}, {**FOURIER1, "trend": "damped"}, {"lags": (1,)}])
@pytest.mark.parametrize("cls", [PoissonGLM, NegBinGLM])
def test_degenerate_series_never_crash(ref_panel, cls, kw) -> None:
    degenerate = ref_panel.loc[ref_panel.unique_id == "degenerate", "y"].tolist()
    panel = frame({"zeros": [0] * 24, "one_event": [0] * 10 + [1] + [0] * 13, "short": [2, 0, 1],
                   "degenerate": degenerate})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = cls(**kw).fit(panel)
        fc = fitted.forecast(12)
    d = fitted.diagnostics().set_index("unique_id")
    assert (d["fallback"] != "none").all() and (d["reason"] != "").all()
    assert d.loc["zeros", "fallback"] == "climatology" and d.loc["short", "fallback"] == "climatology"
    assert "too few rows" in d.loc["short", "reason"]
    assert len(fc) == 48 and np.isfinite(fc.pmf).all() and (fc.pmf >= 0).all()
    np.testing.assert_allclose(fc.pmf.sum(axis=1) + fc.tail, 1.0, atol=1e-9)
    np.testing.assert_array_equal(fc.mean[(fc.index.unique_id == "zeros").to_numpy()], 0.0)  # point mass at 0


@pytest.mark.parametrize(("cls", "kw", "message"), [
    (NegBinGLM, {"penalty": -1}, "The 'penalty' parameter of NegBinGLM must be a float >= 0. Got -1 instead."),
    (PoissonGLM, {"trend": "quadratic"},
     "The 'trend' parameter of PoissonGLM must be one of 'none', 'damped', 'linear'. Got 'quadratic' instead."),
    (NegBinGLM, {"seasonality": "weekly"}, "The 'seasonality' parameter of NegBinGLM must be one of 'none', "
                                           "'month', 'fourier'. Got 'weekly' instead."),
    (NegBinGLM, {"fourier_k": 0}, "The 'fourier_k' parameter of NegBinGLM must be an int >= 1. Got 0 instead."),
    (NegBinGLM, {"lags": (1, 1)},
     "The 'lags' parameter of NegBinGLM must be a tuple of distinct ints >= 1. Got (1, 1) instead."),
    (PoissonGLM, {"lags": (0,)},
     "The 'lags' parameter of PoissonGLM must be a tuple of distinct ints >= 1. Got (0,) instead."),
    (NegBinGLM, {"exog": "x"},
     "The 'exog' parameter of NegBinGLM must be a tuple of distinct column names. Got 'x' instead."),
    (NegBinGLM, {"exposure": 3}, "The 'exposure' parameter of NegBinGLM must be a column name or None. "
                                 "Got 3 instead."),
    (NegBinGLM, {"n_paths": 0}, "The 'n_paths' parameter of NegBinGLM must be an int >= 1. Got 0 instead."),
    (NegBinGLM, {"interventions": ({"date": "soon"},)},
     "The 'interventions' parameter of NegBinGLM must be a tuple of interventions, each {name, date, kind} "
     "with kind 'step', 'pulse' or 'ramp'. Got ({'date': 'soon'},) instead."),
])
def test_hyperparameter_messages(cls, kw, message) -> None:
    with pytest.raises(ConfigError) as exc:
        cls(**kw).fit(frame({"a": [1, 2, 3] * 8}))
    assert str(exc.value) == message


def test_all_bad_hyperparameters_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as exc:
        NegBinGLM(penalty=-1, n_paths=0).fit(frame({"a": [1, 2, 3] * 8}))
    assert "'penalty'" in str(exc.value) and "'n_paths'" in str(exc.value)


@pytest.fixture(scope="module")
def exog_panel() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 96
    x, pop = rng.normal(size=n), rng.uniform(1, 3, size=n)
    y = rng.poisson(pop * np.exp(0.5 + 0.4 * x))
    return pd.DataFrame({"unique_id": "p", "ds": pd.date_range("2015-01-01", periods=n, freq="MS"), "y": y,
                         "x": x, "pop": pop})


def test_covariates_and_exposure(exog_panel) -> None:
    spec = NegBinGLM(trend="none", seasonality="none", exog=("x",), exposure="pop")
    assert spec.required_columns() == ("x", "pop")
    fitted = spec.fit(exog_panel)
    assert fitted.fits()["p"].fallback == "none"
    assert fitted.fits()["p"].coef["x"][0] == pytest.approx(0.4, abs=0.15)
    with pytest.raises(ConfigError, match="x, pop"):
        fitted.forecast(3)
    ds = pd.date_range("2023-01-01", periods=3, freq="MS")
    future = pd.DataFrame({"unique_id": "p", "ds": ds, "x": [0.0, 1.0, -1.0], "pop": 1.0})
    base = fitted.forecast(3, future=future)
    doubled = fitted.forecast(3, future=future.assign(pop=2.0))
    np.testing.assert_allclose(doubled.mean, 2 * base.mean, rtol=1e-12)
    b = fitted.fits()["p"].coef
    np.testing.assert_allclose(base.mean, np.exp(b["(Intercept)"][0] + b["x"][0] * future["x"]), rtol=1e-12)
    with pytest.raises(ConfigError, match="pop"):
        fitted.forecast(3, future=future.drop(columns="pop"))


def test_bad_covariate_values_are_reported(exog_panel) -> None:
    bad = exog_panel.copy()
    bad.loc[[3, 7], "x"] = np.nan
    bad.loc[5, "pop"] = 0.0
    with pytest.raises(Exception) as exc:
        NegBinGLM(exog=("x",), exposure="pop").fit(bad)
    assert "'x'" in str(exc.value) and "'pop'" in str(exc.value) and "5, 9" in str(exc.value)


def test_dropped_column_is_nan_and_said(ref_panel) -> None:
    late = {"name": "later", "date": "2030-01-01"}  # after the data: no information
    fit = NegBinGLM(interventions=(late,)).fit(ref_panel[["unique_id", "ds", "y"]]).fits()["nb_seasonal"]
    assert fit.fallback == "none" and np.isnan(fit.coef["later"]).all()
    assert "no information in the fit window for later" in fit.message


def test_rank_deficient_design_falls_back_to_penalised() -> None:
    n = 60
    panel = frame({"r": np.random.default_rng(1).poisson(3, n).tolist()}).assign(x=np.arange(n) * 2.0)
    d = NegBinGLM(trend="damped", seasonality="none", exog=("x",)).fit(panel).diagnostics().iloc[0]  # x = 24 * trend
    assert d["fallback"] == "penalised" and d["converged"]
    assert "rank-deficient design" in d["reason"] and "column(s) x aliased" in d["reason"]


def test_fallback_ladders() -> None:
    labels = [lab for lab, _ in NegBinGLM().fallback_specs()]
    assert labels == ["penalised", "poisson_glm", "climatology", "zero"]
    rungs = dict(NegBinGLM(lags=(1,)).fallback_specs())
    assert rungs["penalised"].penalty == 1.0 and rungs["poisson_glm"].lags == (1,)
    assert [lab for lab, _ in PoissonGLM(penalty=0.5).fallback_specs()] == ["climatology", "zero"]


# --- specs and smoke --------------------------------------------------------------------------

def test_toml_specs_load() -> None:
    assert load_model("poisson_glm") == PoissonGLM()
    assert load_model("negbin_glm") == NegBinGLM()
    assert load_model("negbin_glm_ar") == NegBinGLM(lags=(1,))


@pytest.mark.parametrize("name", ["negbin_glm", "negbin_glm_ar"])
def test_smoke_on_the_sample_panel(capsys, name) -> None:
    import forecast

    panel = forecast.build_panel(forecast.load_sample("border_sim"), as_of="2025-12-31")
    spec = load_model(name).set_params(interventions=({"name": "takeover", "date": "2021-08-01"},))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = spec.fit(panel)
        fc = fitted.forecast(12)
    assert len(fc) == 12 * panel.unique_id.nunique()
    assert np.isfinite(fc.mean).all() and np.isfinite(fc.pmf).all()
    np.testing.assert_allclose(fc.pmf.sum(axis=1) + fc.tail, 1.0, atol=1e-9)
    d = fitted.diagnostics().set_index("unique_id")
    assert d.loc["Tajikistan/Dushanbe/clash", "fallback"] == "climatology"  # all zero
    busy = panel.groupby("unique_id").y.mean() >= 1  # sparse series may separate: penalised rung
    assert (d.loc[busy[busy].index, "fallback"] == "none").all()
    assert set(d["fallback"]) <= {"none", "penalised", "climatology"}
    assert capsys.readouterr() == ("", "")
