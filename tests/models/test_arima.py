"""ARIMA on log(1 + y) discretised to counts (forecast.models.arima).

References: numerical integration (scipy.integrate.quad) of the density of
exp(Z) - 1 for the pmf, a direct statsmodels SARIMAX fit for the fitted model and
its forecasts, the KPSS statistic written out from Kwiatkowski et al. (1992), and
simulated series with a known order; for the search's own exact likelihood,
statsmodels' ``arma_acovf`` and SARIMAX's log-likelihood. Series are short and ``seasonal=False``
where the seasonal search is not under test, to keep the file fast.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from statsmodels.tsa.statespace.sarimax import SARIMAX

import forecast.models.arima as arima_mod
from forecast import ConfigError
from forecast.models.arima import (
    Arima,
    arma_acov,
    arma_exact_llf,
    kpss_differences,
    log1p_gaussian_pmf,
    z_forecast,
)
from forecast.specs import load_model


def panel(series: dict[str, list[int] | np.ndarray], start: str = "2015-01-01") -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq="MS"),
                                    "y": np.asarray(y)}) for uid, y in series.items()], ignore_index=True)


def sim_ar1(seed: int, n: int = 120, phi: float = 0.7, mu: float = 2.5, sigma: float = 0.25) -> np.ndarray:
    """Counts whose log(1 + y) is (up to rounding) a Gaussian AR(1)."""
    rng = np.random.default_rng(seed)
    z = np.empty(n)
    z[0] = mu + rng.normal(0, sigma / np.sqrt(1 - phi ** 2))
    for t in range(1, n):
        z[t] = mu + phi * (z[t - 1] - mu) + rng.normal(0, sigma)
    return np.maximum(np.rint(np.expm1(z)), 0).astype(int)


def sim_seasonal(seed: int, n: int) -> np.ndarray:
    """Strong fixed month effects (not a sinusoid, which an AR(2) could mimic) plus noise."""
    effects = np.random.default_rng(99).normal(0, 0.8, 12)
    z = 2.0 + effects[np.arange(n) % 12] + np.random.default_rng(seed).normal(0, 0.2, n)
    return np.maximum(np.rint(np.expm1(z)), 0).astype(int)


# -- the pmf --------------------------------------------------------------------------------


def _quad_pmf(m: float, s: float, K: int) -> np.ndarray:
    """P(round(exp(Z) - 1) = k), k = 0..K, by integrating the density of exp(Z) - 1."""
    def dens(y):
        return stats.norm.pdf((np.log1p(y) - m) / s) / (s * (1 + y))

    mode = np.expm1(m - s * s)  # where the density peaks: give quad the hint when it is inside

    def q(a, b):
        pts = [mode] if a < mode < b else None
        return integrate.quad(dens, a, b, points=pts, epsabs=1e-13, epsrel=1e-12, limit=200)[0]

    return np.array([q(-1.0, 0.5)] + [q(k - 0.5, k + 0.5) for k in range(1, K + 1)])


def _quad_tail(m: float, s: float, K: int) -> float:
    """P(round(exp(Z) - 1) > K), integrated over u = log(1 + y), where the far tail is compact."""
    lo, hi = np.log(K + 1.5), m + 12 * s
    return integrate.quad(lambda u: stats.norm.pdf(u, m, s), lo, hi, epsabs=1e-13)[0] if lo < hi else 0.0


@pytest.mark.parametrize("m", [-1.0, 0.0, 0.7, 2.0])
@pytest.mark.parametrize("s", [0.05, 0.4, 1.0, 1.8])
def test_pmf_equals_numerical_integration(m, s):
    pmf = log1p_gaussian_pmf([m], [s], k_cap=200)[0]
    K = len(pmf) - 1
    check = min(K, 40)
    np.testing.assert_allclose(pmf[:check + 1], _quad_pmf(m, s, check), rtol=0, atol=1e-8)
    # the remaining mass, 1 - row sum, is the integral beyond K + 0.5
    assert 1 - pmf.sum() == pytest.approx(_quad_tail(m, s, K), abs=1e-8)


def test_support_is_the_smallest_leaving_less_than_1e6_unless_capped():
    m, s = np.array([0.3, 1.5, 2.2]), np.array([0.5, 0.6, 0.2])
    pmf = log1p_gaussian_pmf(m, s, k_cap=1000)
    K = pmf.shape[1] - 1
    tail_at = lambda k: stats.norm.sf((np.log(k + 1.5) - m) / s)  # noqa: E731
    assert (tail_at(K) < 1e-6).all() and (tail_at(K - 1) >= 1e-6).any()
    np.testing.assert_allclose(1 - pmf.sum(axis=1), tail_at(K), atol=1e-12)
    capped = log1p_gaussian_pmf([3.0], [2.0], k_cap=200)
    assert capped.shape == (1, 201)
    assert 1 - capped.sum() == pytest.approx(stats.norm.sf((np.log(201.5) - 3.0) / 2.0), abs=1e-12)


# -- order selection ---------------------------------------------------------------------------


def _kpss_by_hand(z: np.ndarray, lags: int) -> float:
    e = z - z.mean()
    n = len(e)
    S = np.cumsum(e)
    lrv = e @ e / n + 2 * sum((1 - j / (lags + 1)) * (e[j:] @ e[:-j]) / n for j in range(1, lags + 1))
    return float(S @ S / (n * n * lrv))


def test_kpss_chooses_d_as_forecast_ndiffs():
    rng = np.random.default_rng(5)
    walk = np.cumsum(rng.normal(0, 0.3, 120)) + 3
    noise = rng.normal(2, 0.3, 120)
    near = np.zeros(120)  # a persistent AR(1) whose statistic lies between the 10% and 5% values
    for t, e in enumerate(np.random.default_rng(1).normal(0, 0.3, 119), start=1):
        near[t] = 0.9 * near[t - 1] + e
    for z, want in ((walk, 1), (noise, 0), (near, 0)):
        d, stat = kpss_differences(z)
        assert stat == pytest.approx(_kpss_by_hand(z, int(3 * np.sqrt(120) / 13)), rel=1e-10)
        assert d == want and (stat > 0.463) == bool(want)
    assert 0.347 < kpss_differences(near)[1] < 0.463  # so the 5% level (0.463), not 10%, decides


def test_ar1_on_the_log_scale_is_recovered():
    orders = [Arima(seasonal=False).fit(panel({"a": sim_ar1(seed, n=100)})).fits()["a"].state["order"]
              for seed in range(5)]
    assert all(o[0] >= 1 and o[1] == 0 for o in orders), orders  # an AR term, no differencing
    assert sum(o == (1, 0, 0) for o in orders) >= 3, orders


def test_fewer_than_three_seasons_never_get_seasonal_terms():
    short = Arima(max_p=1, max_q=1).fit(panel({"a": sim_seasonal(0, 35)})).fits()["a"]
    assert short.state["seasonal_order"] == (0, 0, 0)
    assert all(c[1] == (0, 0, 0, 0) for c in short.state["candidates"])  # none was even tried
    # positive control: the same process with exactly 3 seasons gets them
    full = Arima(max_p=1, max_q=1).fit(panel({"a": sim_seasonal(0, 36)})).fits()["a"]
    assert any(full.state["seasonal_order"]) and full.state["period"] == 12


def test_fixed_order_skips_the_search(monkeypatch):
    def no_test(z):
        raise AssertionError("the unit-root test must not run when the order is fixed")

    monkeypatch.setattr(arima_mod, "kpss_differences", no_test)
    y = sim_ar1(1, n=60)
    fit = Arima(order=(1, 0, 0)).fit(panel({"a": y})).fits()["a"]
    assert fit.state["order"] == (1, 0, 0) and len(fit.state["candidates"]) == 1
    fit = Arima(order=(0, 1, 1), drift=False).fit(panel({"a": y})).fits()["a"]
    assert len(fit.state["candidates"]) == 1 and fit.state["trend"] == "n"
    assert len(Arima(order=(0, 1, 1)).fit(panel({"a": y})).fits()["a"].state["candidates"]) == 2  # drift or not


def test_refit_with_the_chosen_order_reproduces_the_forecast():
    y = sim_ar1(2, n=72)
    auto = Arima(seasonal=False, max_p=1).fit(panel({"a": y}))
    st = auto.fits()["a"].state
    again = Arima(order=st["order"], seasonal_order=st["seasonal_order"], drift=st["drift"]).fit(panel({"a": y}))
    np.testing.assert_array_equal(again.forecast(4).pmf, auto.forecast(4).pmf)


# -- agreement with statsmodels -------------------------------------------------------------------


@pytest.mark.parametrize("order, seasonal_order, drift", [
    (None, None, None),  # whatever the search chooses
    ((0, 1, 1), (0, 0, 0), True),
    ((1, 0, 0), (1, 0, 0), None),
])
def test_fit_and_forecast_equal_a_direct_sarimax_fit(order, seasonal_order, drift):
    y = sim_ar1(3, n=60) if order is None or order[1] == 0 else np.maximum(
        np.rint(np.expm1(2 + np.cumsum(np.random.default_rng(3).normal(0.02, 0.2, 60)))), 0).astype(int)
    fm = Arima(seasonal=False, order=order, seasonal_order=seasonal_order, drift=drift).fit(panel({"a": y}))
    fit = fm.fits()["a"]
    st = fit.state
    z = np.log1p(y.astype(float))
    direct = SARIMAX(z, order=st["order"], seasonal_order=(*st["seasonal_order"], st["period"]), trend=st["trend"],
                     enforce_stationarity=True, enforce_invertibility=True,
                     concentrate_scale=True).fit(disp=False, maxiter=100)
    ref = direct.get_forecast(6)
    mean, sd = z_forecast(fit, y, 6)
    np.testing.assert_allclose(mean, ref.predicted_mean, rtol=0, atol=1e-8)
    np.testing.assert_allclose(sd, ref.se_mean, rtol=0, atol=1e-8)
    assert fit.loglik == pytest.approx(direct.llf, abs=1e-8)
    for name, v in zip(direct.param_names, direct.params):
        assert fit.coef[name][0] == pytest.approx(v, abs=1e-8)
    np.testing.assert_allclose([fit.coef[n][1] for n in direct.param_names], direct.bse, rtol=1e-6)
    fc = fm.forecast(6)
    want = log1p_gaussian_pmf(ref.predicted_mean, ref.se_mean, 200)
    np.testing.assert_allclose(fc.pmf[:, :want.shape[1]], want, atol=1e-8)
    # summaries come from the pmf, not from exp(m) - 1
    np.testing.assert_allclose(fc.mean, want @ np.arange(want.shape[1]), rtol=1e-9)
    assert not np.allclose(fc.mean, np.expm1(ref.predicted_mean), rtol=1e-3)


# -- the search's exact likelihood ------------------------------------------------------------


def _seasonal_poly(short: list[float], seasonal: list[float], m: int = 12) -> np.ndarray:
    long = np.zeros(len(seasonal) * m + 1)
    long[::m] = [1.0, *seasonal]
    return np.convolve([1.0, *short], long)


@pytest.mark.parametrize("ar, ma", [
    ([1.0], [1.0]),
    ([1.0, -0.9], [1.0]),
    ([1.0], [1.0, 0.5, -0.3]),
    ([1.0, -0.5, 0.3], [1.0, 0.4, 0.4, 0.2, 0.1]),  # MA degree above AR degree
    (_seasonal_poly([-0.5, 0.2], [-0.4]), _seasonal_poly([0.3, 0.1], [0.3])),  # (2,0,2)(1,0,1)[12]
])
def test_arma_autocovariances_equal_statsmodels(ar, ma):
    from statsmodels.tsa.arima_process import arma_acovf

    np.testing.assert_allclose(arma_acov(np.asarray(ar), np.asarray(ma), 60),
                               arma_acovf(np.asarray(ar), np.asarray(ma), nobs=60), rtol=0, atol=1e-12)


def test_search_parameter_map_covers_only_stationary_polynomials():
    """Any unconstrained vector maps to a lag polynomial with every root outside the unit circle,
    and the first partial autocorrelation is reproduced (AR(1): φ = r)."""
    rng = np.random.default_rng(3)
    for k in (1, 2, 3, 5):
        for x in rng.normal(0, 3, (50, k)):
            poly = arima_mod._pacf_to_poly(x)
            assert np.abs(np.roots(poly[::-1])).min() > 1 + 1e-12
    assert arima_mod._pacf_to_poly(np.array([0.75]))[1] == pytest.approx(-0.75 / np.sqrt(1 + 0.75 ** 2))


@pytest.mark.parametrize("order, seasonal_order, trend, tol", [
    ((2, 0, 0), (0, 0, 0, 0), "c", 1e-6),
    ((1, 0, 1), (1, 0, 1, 12), "c", 1e-6),
    # d = 1: SARIMAX starts the integrated state approximately diffuse (variance
    # 1e6) and burns the first period; the exact likelihood of the differences
    # agrees to O(1e-6) (1e-5 measured)
    ((0, 1, 1), (0, 0, 1, 12), "c", 1e-4),
    ((0, 1, 1), (0, 0, 0, 0), "n", 1e-4),
])
def test_exact_likelihood_equals_sarimax_at_its_estimates(order, seasonal_order, trend, tol):
    rng = np.random.default_rng(1)
    z = 2 + 0.2 * np.cumsum(rng.normal(0, 0.3, 108)) + rng.normal(0, 0.3, 108)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = SARIMAX(z, order=order, seasonal_order=seasonal_order, trend=trend, enforce_stationarity=True,
                      enforce_invertibility=True, concentrate_scale=True).fit(disp=False, maxiter=100)
    par = dict(zip(res.param_names, res.params))
    (p, d, q), (P, _, Q, m) = order, seasonal_order
    ar = _seasonal_poly([-par[f"ar.L{i}"] for i in range(1, p + 1)], [-par[f"ar.S.L{m}"]] if P else [], m or 12)
    ma = _seasonal_poly([par[f"ma.L{i}"] for i in range(1, q + 1)], [par[f"ma.S.L{m}"]] if Q else [], m or 12)
    llf, mu, sigma2 = arma_exact_llf(np.diff(z, n=d), ar, ma, mean=trend == "c")
    assert llf == pytest.approx(res.llf, abs=tol)
    assert sigma2 == pytest.approx(res.scale, rel=10 * tol)


def test_search_aicc_equals_the_sarimax_aicc_of_each_candidate():
    """Every candidate the search compares has (to 1e-4) the AICc its SARIMAX fit would have."""
    y = sim_ar1(12, n=80)
    fit = Arima(seasonal=False, max_p=1, max_q=1).fit(panel({"a": y})).fits()["a"]
    z = np.log1p(y.astype(float))
    assert len(fit.state["candidates"]) == 4 and fit.state["refits"] == 1
    for order, so, trend, aicc in fit.state["candidates"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = SARIMAX(z, order=order, seasonal_order=so, trend=trend, enforce_stationarity=True,
                          enforce_invertibility=True, concentrate_scale=True).fit(disp=False, maxiter=100)
        assert aicc == pytest.approx(ref.aicc, abs=1e-4), order
    assert fit.state["aicc"] == pytest.approx(min(c[3] for c in fit.state["candidates"]), abs=1e-4)


def test_a_refit_that_misses_the_search_aicc_brings_in_the_runner_up(monkeypatch):
    """If the SARIMAX refit of the winner lands above the runner-up's AICc, the runner-up is refitted."""
    real = arima_mod._fit_candidate
    seen: list[tuple] = []

    def worse_first(z, order, seasonal_order, trend):
        out = real(z, order, seasonal_order, trend)
        seen.append(order)
        if len(seen) == 1:
            out["aicc"] += 50.0  # as if SARIMAX had stopped in a poor local optimum
        return out

    monkeypatch.setattr(arima_mod, "_fit_candidate", worse_first)
    fit = Arima(seasonal=False, max_p=1, max_q=1).fit(panel({"a": sim_ar1(12, n=80)})).fits()["a"]
    ranked = sorted(fit.state["candidates"], key=lambda c: c[3])
    assert seen[:2] == [ranked[0][0], ranked[1][0]] and fit.state["refits"] >= 2
    assert fit.state["order"] == ranked[1][0]


# -- forecasts, fallbacks, contract ---------------------------------------------------------------


def test_forecast_rows_are_valid_pmfs_and_panel_equals_alone():
    series = {"a": sim_ar1(4, n=48), "b": sim_ar1(5, n=48, mu=0.6), "c": sim_ar1(6, n=48, mu=1.5)}
    spec = Arima(seasonal=False, max_p=1, max_q=1)
    together = spec.fit(panel(series)).forecast(5)
    assert (together.pmf >= 0).all() and (together.pmf.sum(axis=1) <= 1 + 1e-12).all()
    assert (together.tail < 1e-6).all()
    np.testing.assert_allclose(together.pmf.sum(axis=1) + together.tail, 1, atol=1e-12)
    for i, (uid, y) in enumerate(series.items()):
        alone = spec.fit(panel({uid: y})).forecast(5)
        k = alone.pmf.shape[1]
        np.testing.assert_array_equal(together.pmf[i * 5:(i + 1) * 5, :k], alone.pmf)
        assert (together.pmf[i * 5:(i + 1) * 5, k:] == 0).all()


@pytest.mark.parametrize("y, why", [([0] * 40, "constant series (every count is 0)"),
                                    ([3] * 40, "constant series (every count is 3)"),
                                    ([0, 1, 0, 2, 1], "needs at least 10 periods")])
def test_degenerate_series_fall_back_with_the_reason(y, why):
    fm = Arima(seasonal=False, max_p=1, max_q=1).fit(panel({"bad": y, "ok": sim_ar1(7, n=40)}))
    d = fm.diagnostics().set_index("unique_id")
    assert d.loc["bad", "fallback"] == "climatology" and why in d.loc["bad", "reason"]
    assert d.loc["ok", "fallback"] == "none"
    fc = fm.forecast(2)
    assert np.isfinite(fc.mean).all()


def test_convergence_warnings_are_caught_recorded_and_send_the_series_down_the_ladder(monkeypatch):
    monkeypatch.setitem(arima_mod.FIT_OPTIONS, "maxiter", 1)  # no candidate can converge
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak out of the fit
        fm = Arima(order=(2, 0, 2)).fit(panel({"a": sim_ar1(8, n=40)}))
    d = fm.diagnostics().iloc[0]
    assert d["fallback"] == "climatology" and "ConvergenceWarning" in d["reason"]


def test_coefficients_and_fit_summaries():
    fm = Arima(order=(1, 0, 0)).fit(panel({"a": sim_ar1(9, n=50)}))
    co = fm.coefficients().set_index("term")
    assert list(co.index) == ["intercept", "ar.L1", "sigma2"]
    assert co["std_error"].iloc[:2].gt(0).all() and np.isnan(co.loc["sigma2", "std_error"])
    fit = fm.fits()["a"]
    assert fit.n_params == 3 and fit.n_obs == 50 and "ARIMA(1, 0, 0)" in fit.message


def test_hyperparameters_are_checked_with_the_house_message():
    y = panel({"a": sim_ar1(1, n=30)})
    with pytest.raises(ConfigError, match=r"The 'max_p' parameter of Arima must be an int >= 0\. Got -1 instead\."):
        Arima(max_p=-1).fit(y)
    with pytest.raises(ConfigError, match="The 'order' parameter of Arima must be None or a tuple"):
        Arima(order=(1, 2, 0)).fit(y)
    with pytest.raises(ConfigError, match="The 'seasonal' parameter of Arima must be a bool"):
        Arima(seasonal=1).fit(y)
    assert load_model("arima") == Arima()


# -- backtests ---------------------------------------------------------------------------------


def test_backtest_reruns_the_order_search_only_at_refits(monkeypatch):
    """refit_every=2 over 4 origins: 2 fits per series, so 2 order searches per series, not 4.

    Between refits FittedModel.update keeps each series' fit (orders and
    parameters), which the forecasts re-filter through the newer data.
    """
    import forecast

    searches: list[int] = []
    real = Arima._search

    def counting(self, z, d, m, seasonal_ok):
        searches.append(len(z))
        return real(self, z, d, m, seasonal_ok)

    monkeypatch.setattr(Arima, "_search", counting)
    series = {"a": sim_ar1(10, n=40), "b": sim_ar1(11, n=40, mu=1.5)}
    res = forecast.backtest(panel(series), "arima", 3, n_origins=4, refit_every=2)
    assert res.forecasts["cutoff"].nunique() == 4
    # training lengths 34, 35 (update only), 36, 37 (update only) at the four cutoffs
    assert sorted(searches) == [34, 34, 36, 36], searches
    # positive control: refitting at every origin searches at all four
    searches.clear()
    forecast.backtest(panel(series), "arima", 3, n_origins=4, refit_every=1)
    assert sorted(searches) == [34, 34, 35, 35, 36, 36, 37, 37], searches
