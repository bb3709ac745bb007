"""Trend options of the log-linear design (held, damped, extrapolated) and ARIMA's annual
Fourier regressors on weekly data (issue 12)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.statespace.sarimax import SARIMAX

from forecast.exceptions import ForecastWarning
from forecast.models._arma import choose_fourier_k, fourier_matrix
from forecast.models.arima import Arima
from forecast.models.glm import NegBinGLM, PoissonGLM
from forecast.periods import parse_freq


def monthly(y: np.ndarray, uid: str = "a") -> pd.DataFrame:
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2015-01-01", periods=len(y), freq="MS"), "y": y})


@pytest.fixture(scope="module")
def trending() -> pd.DataFrame:
    rng = np.random.default_rng(12)
    t = np.arange(60)
    return monthly(rng.poisson(np.exp(1.0 + 0.4 * t / 12)))


def _mu(fitted, h: int) -> np.ndarray:
    return fitted.forecast(h).mean


@pytest.mark.parametrize("cls", [PoissonGLM, NegBinGLM])
def test_damped_fits_the_linear_trend_and_holds_it(cls, trending) -> None:
    lin = cls(trend="linear", seasonality="none")
    held = cls(trend="damped", seasonality="none")
    with pytest.warns(ForecastWarning, match="extrapolate"):
        mu_lin = _mu(lin.fit(trending), 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # holding the trend says nothing
        f_held = held.fit(trending)
        mu_held = _mu(f_held, 6)
    c_lin = lin.fit(trending).coefficients().set_index("term")["estimate"]
    c_held = f_held.coefficients().set_index("term")["estimate"]
    pd.testing.assert_series_equal(c_lin, c_held)  # same fit: effects and trend estimate unchanged
    b0, b1 = c_held["(Intercept)"], c_held["trend"]
    n = len(trending)
    # closed forms: held at t = n - 1; linear at t = n - 1 + j (rate per year, t / 12)
    np.testing.assert_allclose(mu_held, np.exp(b0 + b1 * (n - 1) / 12) * np.ones(6), rtol=1e-10)
    np.testing.assert_allclose(mu_lin, np.exp(b0 + b1 * (n - 1 + np.arange(1, 7)) / 12), rtol=1e-10)
    assert b1 > 0.2 and mu_held[-1] < mu_lin[-1]


def test_damping_is_a_geometric_sum_of_the_trend_steps(trending) -> None:
    phi = 0.6
    fitted = NegBinGLM(trend="damped", damping=phi, seasonality="none").fit(trending)
    c = fitted.coefficients().set_index("term")["estimate"]
    n = len(trending)
    t = [n - 1 + sum(phi ** i for i in range(1, j + 1)) for j in range(1, 8)]  # brute-force sum
    np.testing.assert_allclose(_mu(fitted, 7), np.exp(c["(Intercept)"] + c["trend"] * np.array(t) / 12),
                               rtol=1e-10)


def test_linear_trend_is_recorded_in_diagnostics(trending) -> None:
    d = NegBinGLM(trend="linear", seasonality="none").fit(trending).diagnostics().iloc[0]
    assert "extrapolates the fitted trend past the training range" in d["message"]
    d = NegBinGLM(trend="damped", seasonality="none").fit(trending).diagnostics().iloc[0]
    assert "extrapolates" not in d["message"]


def test_bundled_glm_specs_have_no_trend() -> None:
    from forecast.specs import load_model

    for name in ("negbin_glm", "negbin_glm_ar", "poisson_glm"):
        assert load_model(name).trend == "none"


# --- ARIMA on weekly data -------------------------------------------------------------------

def weekly(n: int, seed: int, amp: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2015-01-05", periods=n, freq="W-MON")
    u = parse_freq("W-MON").year_fraction(ds)
    e = np.zeros(n)
    for i in range(1, n):  # AR(1) errors around an annual cycle on log(1 + y)
        e[i] = 0.5 * e[i - 1] + rng.normal(0, 0.3)
    y = np.round(np.expm1(2.0 + amp * np.sin(2 * np.pi * u) + e).clip(0))
    return pd.DataFrame({"unique_id": "w", "ds": ds, "y": y.astype(int)})


def test_choose_fourier_k_by_aicc() -> None:
    rng = np.random.default_rng(3)
    u = (np.arange(300) * 7 % 365.25) / 365.25
    z = 1 + 0.8 * np.sin(2 * np.pi * u) + rng.normal(0, 0.2, 300)
    k, coef = choose_fourier_k(z, u, 0)
    assert k >= 1 and coef[0] == pytest.approx(0.8, abs=0.05)
    assert choose_fourier_k(rng.normal(0, 1, 300), u, 0)[0] == 0  # white noise: no season
    assert fourier_matrix(u, 2).shape == (300, 4)


def test_weekly_arima_uses_fourier_regressors_and_matches_sarimax() -> None:
    df = weekly(200, 1)
    fit = Arima().fit(df)
    st = fit.fits()["w"].state
    assert st["fourier_k"] >= 1 and st["period"] == 0  # no 52-lag seasonal terms
    assert all(so == (0, 0, 0, 0) for _, so, _, _ in st["candidates"])
    # independent reference: SARIMAX with the same Fourier exog, at the stored parameters
    freq = parse_freq("W-MON")
    F = fourier_matrix(freq.year_fraction(pd.DatetimeIndex(df.ds)), st["fourier_k"])
    fut = pd.date_range(df.ds.iloc[-1] + pd.Timedelta(weeks=1), periods=4, freq="W-MON")
    Ff = fourier_matrix(freq.year_fraction(fut), st["fourier_k"])
    ref = SARIMAX(np.log1p(df.y.to_numpy(float)), exog=F, order=st["order"], trend=st["trend"],
                  enforce_stationarity=True, enforce_invertibility=True, concentrate_scale=True
                  ).filter(st["params"]).get_forecast(4, exog=Ff)
    from forecast.models.arima import z_forecast

    y = df.y.to_numpy()
    mean, sd = z_forecast(fit.fits()["w"], y, 4, F, Ff)
    np.testing.assert_allclose(mean, ref.predicted_mean, rtol=1e-10)
    np.testing.assert_allclose(sd, np.sqrt(ref.var_pred_mean), rtol=1e-10)
    fc = fit.forecast(4)
    assert list(pd.DatetimeIndex(fc.index.ds)) == list(fut)


def test_fixed_fourier_k_and_seasonal_false() -> None:
    df = weekly(160, 2)
    assert Arima(fourier_k=2).fit(df).fits()["w"].state["fourier_k"] == 2
    assert Arima(seasonal=False).fit(df).fits()["w"].state["fourier_k"] == 0


def test_monthly_arima_has_no_fourier_terms() -> None:
    rng = np.random.default_rng(5)
    st = Arima().fit(monthly(rng.poisson(5, 60))).fits()["a"].state
    assert st["fourier_k"] == 0
