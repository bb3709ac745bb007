"""The batched fixed-order ARIMA on log(1 + y) (forecast.models.log_arma, forecast.models._armabatch).

References: statsmodels' SARIMAX with the same order, exog and ``concentrate_scale`` (its
maximum likelihood, log-likelihood and forecasts), the per-series ``arima`` spec with the
same fixed order (its count pmf), and simulated series with known parameters.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.arima_process import arma_generate_sample
from statsmodels.tsa.statespace.sarimax import SARIMAX

from forecast.models._arma import fourier_matrix
from forecast.models._armabatch import Arma, fit_arma, forecast_state, kalman, pacf_to_coef
from forecast.models.arima import Arima
from forecast.models.log_arma import LogArma
from forecast.specs import load_model


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Tiny batched solves and SARIMAX filters: threads only add overhead (10x on a busy machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _sarimax(z, order, exog=None, trend="n"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SARIMAX(z, exog=exog, order=order, trend=trend, concentrate_scale=True).fit(disp=False, maxiter=200)


def _sim(seed: int, n: int, phi: float, theta: float, d: int, scale: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = arma_generate_sample([1, -phi], [1, theta], n, scale=scale, distrvs=rng.standard_normal, burnin=100)
    return np.cumsum(w) if d else w


def _coefs(x: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    return pacf_to_coef(x[:, :p])[:, 0], -pacf_to_coef(x[:, p:])[:, 0]


@pytest.mark.parametrize("d", [0, 1])
def test_agrees_with_statsmodels_sarimax(d):
    """Same order, exog (const + 2 Fourier pairs when d = 0, the pairs alone when d = 1) and
    missing values: coefficients within 2e-3, log-likelihood within 1e-4, 1..3-step
    means and standard deviations within 1e-3 of SARIMAX's."""
    n = 200
    u = (np.arange(n + 3) * 7 % 365.25) / 365.25
    F = fourier_matrix(u, 2)
    z = np.stack([_sim(s, n, 0.6, 0.3, d) + F[:n] @ [0.5, -0.3, 0.1, 0.2] + 2 for s in (1, 2)])
    z[1, 60:64] = np.nan  # missing periods inside
    z[0, -1] = np.nan  # and a missing last value (forecast from the one before)
    Xc = F[:n] if d else np.column_stack([np.ones(n), F[:n]])
    model = Arma(1, d, 1)
    x, conv, out = fit_arma(model, z, np.stack([Xc, Xc]))
    assert conv.all()
    phi, theta = _coefs(x, 1)
    mean, var = forecast_state(model, x, out.a, out.P, 3)
    Xf = F[n:] if d else np.column_stack([np.ones(3), F[n:]])
    for i in range(2):
        res = _sarimax(z[i], (1, d, 1), F[:n], "c" if d == 0 else "n")
        fc = res.get_forecast(3, exog=F[n:])
        np.testing.assert_allclose([phi[i], theta[i]], res.params[-2:], atol=2e-3)
        assert abs(out.llf[i] - res.llf) < 1e-4
        np.testing.assert_allclose(mean[i] + Xf @ out.beta[i], fc.predicted_mean, atol=1e-3)
        np.testing.assert_allclose(np.sqrt(var[i] * out.sigma2[i]), np.sqrt(fc.var_pred_mean), rtol=1e-3)


def test_recovers_known_parameters():
    """40 simulated ARMA(1, 1) series (φ = 0.5, θ = 0.4, σ = 0.5, mean 1.5): the mean estimates
    are within 0.05 of the truth (their standard error is about 0.01)."""
    S, n = 40, 300
    z = np.stack([_sim(100 + s, n, 0.5, 0.4, 0) + 1.5 for s in range(S)])
    x, conv, out = fit_arma(Arma(1, 0, 1), z, np.ones((S, n, 1)))
    phi, theta = _coefs(x, 1)
    assert conv.all()
    assert abs(phi.mean() - 0.5) < 0.05 and abs(theta.mean() - 0.4) < 0.05
    assert abs(out.beta[:, 0].mean() - 1.5) < 0.05 and abs(np.sqrt(out.sigma2).mean() - 0.5) < 0.02


def test_rows_of_a_batch_are_independent():
    """A series fitted alone gets the same coefficients as in a batch of others."""
    z = np.stack([_sim(s, 150, 0.6, 0.3, 1) for s in range(4)])
    X = np.zeros((4, 150, 0))
    x_all = fit_arma(Arma(1, 1, 1), z, X)[0]
    x_one = fit_arma(Arma(1, 1, 1), z[2:3], X[2:3])[0]
    np.testing.assert_allclose(x_all[2], x_one[0], atol=1e-10)


def test_warm_start_reaches_the_cold_start_maximum():
    """Newton steps from the estimates of a shorter window (the warm start a refit at the next
    backtest origin could use) end at the grid start's maximum: log-likelihood within 1e-6,
    coefficients within 1e-3 (measured: 1e-7 and 3e-5)."""
    z = np.stack([_sim(s, 150, 0.6, 0.3, 1) for s in range(6)])
    X = np.zeros((6, 150, 0))
    model = Arma(1, 1, 1)
    x_short = fit_arma(model, z[:, :140], X[:, :140])[0]
    x_cold, _, cold = fit_arma(model, z, X)
    x_warm, conv, warm = fit_arma(model, z, X, start=x_short)
    assert conv.all()
    np.testing.assert_allclose(warm.llf, cold.llf, atol=1e-6)
    np.testing.assert_allclose(np.stack(_coefs(x_warm, 1)), np.stack(_coefs(x_cold, 1)), atol=1e-3)
    assert np.abs(x_short - x_cold).max() > 0.05  # the start was not already the answer


def test_fixed_beta_gives_the_profiled_likelihood_at_its_optimum():
    z = (_sim(5, 120, 0.5, 0.2, 0) + 3)[None]
    X = np.ones((1, 120, 1))
    x = np.array([[0.4, -0.2]])
    prof = kalman(Arma(1, 0, 1), x, z, X)
    fixed = kalman(Arma(1, 0, 1), x, z, X, beta=prof.beta)
    moved = kalman(Arma(1, 0, 1), x, z, X, beta=prof.beta + 0.1)
    assert abs(fixed.llf[0] - prof.llf[0]) < 1e-9 and moved.llf[0] < prof.llf[0]


# -- the spec ---------------------------------------------------------------------------------


def _pmf(fc, K: int = 60) -> np.ndarray:
    rows = len(fc.index)
    return np.stack([fc.pmf_at(np.full(rows, k)) for k in range(K)], axis=1)


def _mean(fc) -> np.ndarray:
    return fc.to_frame()["mean"].to_numpy()


def _panel(series: dict[str, np.ndarray], freq: str = "W-MON") -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2016-01-04", periods=len(y), freq=freq),
                                    "y": y}) for uid, y in series.items()], ignore_index=True)


def _counts(seed: int, n: int) -> np.ndarray:
    z = 1.5 + _sim(seed, n, 0.6, 0.3, 0, scale=0.4)
    return np.maximum(np.rint(np.expm1(z)), 0)


def test_pmf_equals_the_per_series_arima_with_the_same_order():
    """Counts with missing weeks: the count pmf of log_arma (no Fourier terms) equals that of
    ``arima`` with order (1, 1, 1), no drift (one SARIMAX fit per series) within 2e-3 where
    both reach the same maximum; where SARIMAX's optimiser stops in a poorer local maximum
    (series c, bimodal along near-cancelling roots), log_arma's likelihood is higher."""
    y = {"a": _counts(1, 160), "b": _counts(3, 160), "c": _counts(2, 160)}
    y["a"][159] = np.nan  # a missing last value: the forecast starts from the one before
    y["b"][[30, 31]] = np.nan
    y["c"][[30, 31]] = np.nan
    p = _panel(y)
    ours = LogArma(seasonal=False).fit(p)
    ref = Arima(order=(1, 1, 1), drift=False, seasonal=False).fit(p)
    assert (ours.diagnostics()["fallback"] == "none").all()
    ll_ours, ll_ref = ours.diagnostics()["loglik"].to_numpy(), ref.diagnostics()["loglik"].to_numpy()
    np.testing.assert_allclose(ll_ours[:2], ll_ref[:2], atol=1e-3)
    assert ll_ours[2] > ll_ref[2] + 1
    fc = ours.forecast(3)
    a, b = _pmf(fc), _pmf(ref.forecast(3))
    np.testing.assert_allclose(a[:6], b[:6], atol=2e-3)
    np.testing.assert_allclose(fc.cdf(np.full(9, 10_000)), 1.0, atol=2e-6)


def test_weekly_panel_gets_fourier_terms_and_proper_pmfs():
    n = 260
    season = 1.0 * np.sin(2 * np.pi * np.arange(n) * 7 / 365.25)
    y = np.maximum(np.rint(np.expm1(2 + season + _sim(3, n, 0.5, 0.2, 0, scale=0.3))), 0)
    fit = load_model("log_arma").fit(_panel({"s": y}))
    assert "Fourier" in fit.diagnostics()["message"].iloc[0]
    fc = fit.forecast(4)
    pmf = _pmf(fc, 400)
    assert (pmf >= 0).all()
    np.testing.assert_allclose(pmf.sum(axis=1), fc.cdf(np.full(4, 399)), atol=1e-12)
    np.testing.assert_allclose(fc.cdf(np.full(4, 10_000)), 1.0, atol=2e-6)


def test_degenerate_series_fall_back():
    n = 60
    short = np.r_[np.full(n - 8, np.nan), [1, 0, 2, 1, 0, 3, 1, 2]]  # 8 observed weeks
    p = _panel({"zeros": np.zeros(n), "const": np.full(n, 3.0), "short": short, "ok": _counts(4, n)})
    diag = LogArma().fit(p).diagnostics().set_index("unique_id")
    assert diag.loc["ok", "fallback"] == "none"
    for uid, why in (("zeros", "constant series"), ("const", "constant series"), ("short", "at least 10")):
        assert diag.loc[uid, "fallback"] != "none" and why in diag.loc[uid, "reason"], uid


def test_update_refilters_with_the_stored_parameters():
    """``update`` (backtests between refits) forecasts from the newer data with the old fit."""
    y = _counts(6, 130)
    fit = LogArma(seasonal=False).fit(_panel({"s": y[:120]}))
    newer = fit.update(_panel({"s": y}))
    assert newer.fits()["s"].state["x"] is fit.fits()["s"].state["x"]
    again = LogArma(seasonal=False).fit(_panel({"s": y}))
    assert not np.allclose(_mean(newer.forecast(1)), _mean(fit.forecast(1)))
    np.testing.assert_allclose(_mean(newer.forecast(1)), _mean(again.forecast(1)), rtol=0.05)


def test_order_is_validated():
    from forecast import ConfigError

    with pytest.raises(ConfigError, match="order"):
        LogArma(order=(3, 1, 1)).fit(_panel({"s": _counts(1, 40)}))


def test_series_of_mixed_fourier_orders_fit_as_when_alone():
    """A small panel is fitted in one batch whatever each series' Fourier order (absent
    regressors as NaN columns): each series gets the fit and forecast it gets alone."""
    n = 260
    season = 1.0 * np.sin(2 * np.pi * np.arange(n) * 7 / 365.25)
    seasonal = np.maximum(np.rint(np.expm1(2 + season + _sim(3, n, 0.5, 0.2, 0, scale=0.3))), 0)
    flat = _counts(5, n)
    both = LogArma().fit(_panel({"a": seasonal, "b": flat}))
    ks = [both.fits()[u].state["fourier_k"] for u in ("a", "b")]
    assert ks[0] > ks[1]  # the batch really mixes orders
    for uid, y in (("a", seasonal), ("b", flat)):
        alone = LogArma().fit(_panel({uid: y}))
        fa, fb = alone.fits()[uid], both.fits()[uid]
        np.testing.assert_allclose(fb.state["x"], fa.state["x"], atol=1e-8)
        np.testing.assert_allclose(fb.state["beta"], fa.state["beta"], atol=1e-8)
        assert len(fb.state["beta"]) == 2 * fb.state["fourier_k"]
        np.testing.assert_allclose(_mean(both.forecast(3))[:3] if uid == "a" else _mean(both.forecast(3))[3:],
                                   _mean(alone.forecast(3)), rtol=1e-8)
