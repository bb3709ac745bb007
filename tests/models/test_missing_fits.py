"""Models fit around missing periods (issue 12 item 2): masked rows, not zeros.

Each fit with missing periods is checked against an independent reference: statsmodels
on the rows kept, the same model on the rows deleted, a brute-force recursion, or
statsmodels' SARIMAX on the NaN series.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from forecast.models.base import Series
from forecast.models.glm import NegBinGLM, PoissonGLM


def _series(y, observed=None, uid="a", start="2015-01-01", freq="MS"):
    ds = pd.date_range(start, periods=len(y), freq=freq)
    y = np.asarray(y, dtype=np.int64).copy()
    if observed is not None:
        observed = np.asarray(observed, dtype=bool)
        y[~observed] = 0  # the contract: y holds 0 at a missing period
    return Series(uid, ds, y, "MS", None, observed)


def _nb_counts(n, seed, lam=6.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    mu = lam * np.exp(0.5 * np.sin(2 * np.pi * t / 12))
    return rng.poisson(rng.gamma(3.0, mu / 3.0))


def _month_design(ds, n_first=0):
    m = pd.DatetimeIndex(ds).month.to_numpy()
    return np.column_stack([np.ones(len(m))] + [(m == k).astype(float) for k in range(2, 13)])[n_first:]


MISSING = [3, 4, 17, 30, 31, 32, 50]


def _observed(n):
    obs = np.ones(n, dtype=bool)
    obs[MISSING] = False
    return obs


def test_kept_rows_masks_missing_counts_and_lags():
    from forecast.models._missing import kept_rows
    obs = np.array([1, 1, 0, 1, 1, 1], dtype=bool)
    assert kept_rows(None, (1,), 1) is None
    # rows 1..5; row 2 is missing, row 3 reads lag 1 = row 2
    assert kept_rows(obs, (1,), 1).tolist() == [True, False, False, True, True]
    assert kept_rows(obs, (1, 2), 2).tolist() == [False, False, False, True]


def _coefs(fit, names):
    return np.array([fit.coef[k][0] for k in names])


@pytest.mark.parametrize("engine", ["per-series", "batched"])
def test_poisson_glm_with_missing_rows_equals_statsmodels_on_kept_rows(engine):
    n = 72
    y, obs = _nb_counts(n, 1), _observed(n)
    s = _series(y, obs)
    spec = PoissonGLM(seasonality="month")
    if engine == "batched":  # with a fully observed series on the same calendar: one shared design
        fit = spec._try_fit_many([s, _series(_nb_counts(n, 2))])[0]
        assert fit.engine == "batched"
    else:
        fit = spec._fit_series(s)
    X = _month_design(s.ds)
    ref = sm.GLM(y[obs], X[obs], family=sm.families.Poisson()).fit(tol=1e-12)
    names = [k for k in fit.coef if k != "alpha"]
    np.testing.assert_allclose(_coefs(fit, names), ref.params, atol=1e-6)
    assert fit.loglik == pytest.approx(ref.llf, abs=1e-6)
    assert fit.n_obs == n - len(MISSING)


@pytest.mark.parametrize("engine", ["per-series", "batched"])
def test_negbin_glm_with_lags_and_missing_rows_equals_statsmodels_on_kept_rows(engine):
    n = 96
    y, obs = _nb_counts(n, 3), _observed(n)
    s = _series(y, obs)
    spec = NegBinGLM(seasonality="fourier", fourier_k=1, lags=(1,))
    if engine == "batched":
        fit = spec._try_fit_many([s, _series(_nb_counts(n, 4)), _series(_nb_counts(n, 5), obs, uid="c")])[0]
        assert fit.engine == "batched"
    else:
        fit = spec._fit_series(s)
    # Kept rows: y_t and y_{t-1} observed (t >= 1); the lag reads log(1 + y_{t-1}).
    t = np.arange(1, n)
    keep = obs[1:] & obs[:-1]
    u = pd.DatetimeIndex(s.ds).month.to_numpy()[1:] / 12  # design.py: u = m/12 for month m
    X = np.column_stack([np.ones(n - 1), np.sin(2 * np.pi * u), np.cos(2 * np.pi * u), np.log1p(y[t - 1])])
    ref = sm.NegativeBinomial(y[1:][keep], X[keep], loglike_method="nb2").fit(
        disp=0, method="newton", maxiter=200, tol=1e-12)
    names = ["(Intercept)", "sin1", "cos1", "lag1"]
    np.testing.assert_allclose(_coefs(fit, names), ref.params[:4], atol=1e-6)
    assert fit.coef["alpha"][0] == pytest.approx(ref.params[4], abs=1e-6)
    assert fit.loglik == pytest.approx(ref.llf, abs=1e-6)
    assert fit.n_obs == int(keep.sum())


def test_batched_equals_per_series_with_missing_and_fast_path_unchanged():
    n = 60
    obs = _observed(n)
    full = [_series(_nb_counts(n, i), uid=f"f{i}") for i in range(3)]
    holed = [_series(_nb_counts(n, 10 + i), obs, uid=f"h{i}") for i in range(3)]
    spec = NegBinGLM(seasonality="month", lags=(1, 2))
    alone_full = [spec._fit_series(s) for s in full]
    batched_full = spec._try_fit_many(full)
    mixed = spec._try_fit_many(full + holed)
    for a, b, c in zip(alone_full, batched_full, mixed[:3]):  # masks of other series change nothing
        assert b.coef == c.coef and b.loglik == c.loglik
        np.testing.assert_allclose(_coefs(a, list(a.coef)), _coefs(b, list(a.coef)), atol=1e-7)
    for s, b in zip(holed, mixed[3:]):
        a = spec._fit_series(s)
        np.testing.assert_allclose(_coefs(a, list(a.coef)), _coefs(b, list(a.coef)), atol=1e-7)
        assert a.n_obs == b.n_obs


def test_glm_forecast_simulates_a_missing_last_lag():
    """With y_T missing, Y_{T+1} mixes over Y_T ~ NB(mu_T): E[Y_{T+1}] = exp(eta_{T+1}) E[(1+Y_T)^g]."""
    from scipy import stats

    n = 96
    y = _nb_counts(n, 7)
    obs = np.ones(n, dtype=bool)
    obs[-1] = False
    s = _series(y, obs)
    spec = NegBinGLM(seasonality="fourier", fourier_k=1, lags=(1,), n_paths=40000)
    fit = spec._fit_series(s)
    b, alpha = fit.state["beta"], fit.state["alpha"]

    def eta0(month):  # lag-free linear predictor of a period in that calendar month
        u = month / 12
        return b[0] + b[1] * np.sin(2 * np.pi * u) + b[2] * np.cos(2 * np.pi * u)

    last = pd.Timestamp(s.ds[-1])
    mu_T = np.exp(eta0(last.month) + b[3] * np.log1p(y[-2]))  # y_{T-1} is observed
    k = np.arange(2000)
    r = 1 / alpha
    pk = stats.nbinom.pmf(k, r, r / (r + mu_T))
    want = np.exp(eta0((last + pd.DateOffset(months=1)).month)) * np.sum(pk * (1 + k) ** b[3])
    fc = spec._forecast_many([fit], [s], 1, None, seed=3)[0]
    assert fc.family == "pathmix"
    draws = fc.paths[0]
    # Monte Carlo: 40000 draws, 5 standard errors
    assert abs(draws.mean() - want) < 5 * draws.std() / np.sqrt(draws.size)
    # and it is not the forecast that reads the 0 held at the missing period as a count
    wrong = np.exp(eta0((last + pd.DateOffset(months=1)).month))
    assert abs(want - wrong) > 10 * draws.std() / np.sqrt(draws.size)
    # the batched path hands such series to the per-series one (same draws)
    with batching_on():
        fc2 = spec._forecast_many([fit, fit], [s, s], 3, None, seed=3)
    np.testing.assert_array_equal(fc2[0].paths, spec._forecast_many([fit], [s], 3, None, seed=3)[0].paths)


def batching_on():
    from forecast.models.ladder import batched_engine
    return batched_engine(True)


def _zi_counts(n, seed):
    rng = np.random.default_rng(seed)
    y = _nb_counts(n, seed, lam=3.0)
    return np.where(rng.random(n) < 0.3, 0, y)


@pytest.mark.parametrize("name", ["zip", "zinb"])
def test_zero_inflated_with_missing_rows_equals_the_fit_on_the_rows_deleted(name):
    from forecast.models.zeroinflated import ZINB, ZIP

    n = 84
    y, obs = _zi_counts(n, 11), _observed(n)
    spec = (ZIP if name == "zip" else ZINB)(seasonality="month")
    masked = spec._fit_series(_series(y, obs))
    ds = pd.date_range("2015-01-01", periods=n, freq="MS")
    deleted = spec._fit_series(Series("a", ds[obs], y[obs], "MS"))  # same model, rows gone
    assert masked.converged and deleted.converged
    assert masked.n_obs == deleted.n_obs == n - len(MISSING)
    names = list(deleted.coef)
    assert names == list(masked.coef)
    np.testing.assert_allclose(_coefs(masked, names), _coefs(deleted, names), atol=1e-6)
    assert masked.loglik == pytest.approx(deleted.loglik, abs=1e-6)
    # and not the fit that reads the zeros held at the missing periods as counts
    zeros = spec._fit_series(_series(np.where(obs, y, 0)))
    assert abs(zeros.loglik - masked.loglik) > 1.0


def test_zero_inflated_forecast_simulates_a_missing_last_lag():
    from forecast.models.zeroinflated import ZIP

    n = 96
    y = _zi_counts(n, 12) + 2 * _nb_counts(n, 13)
    obs = np.ones(n, dtype=bool)
    obs[-1] = False
    s = _series(y, obs)
    spec = ZIP(seasonality="none", lags=(1,), n_paths=40000)
    fit = spec._fit_series(s)
    assert fit.converged
    fc = spec._forecast_many([fit], [s], 1, None, seed=1)[0]
    assert fc.family == "pathmix"  # the closed form would read the 0 held at the gap as y_T
    # E[Y_{T+1}] = (1 - pi) exp(b0) E[(1 + Y_T)^g], Y_T ~ ZIP(exp(b0 + g log(1 + y_{T-1})), pi)
    from scipy import stats
    b0, g = fit.coef["count_(Intercept)"][0], fit.coef["count_lag1"][0]
    pi = fit.state["pi"]
    k = np.arange(500)
    pk = (1 - pi) * stats.poisson.pmf(k, np.exp(b0 + g * np.log1p(y[-2])))
    pk[0] += pi
    want = (1 - pi) * np.exp(b0) * np.sum(pk * (1 + k) ** g)
    draws = fc.paths[0]
    assert abs(draws.mean() - want) < 5 * draws.std() / np.sqrt(draws.size)
    full = spec._forecast_many([fit], [_series(y)], 1, None, seed=1)[0]
    assert full.family == "zi"


def _ingarch_counts(n, seed):
    rng = np.random.default_rng(seed)
    y, nu = np.zeros(n, dtype=np.int64), np.log(5.0)
    for t in range(n):
        prev = np.log1p(y[t - 1]) if t else np.log(5.0)
        nu = 0.6 + 0.35 * prev + 0.3 * nu
        y[t] = rng.poisson(rng.gamma(5.0, np.exp(nu) / 5.0))
    return y


def test_ingarch_missing_objective_equals_the_filter_when_nothing_is_missing():
    from forecast.models._ingarchfit import ingarch_objective
    from forecast.models._ingarchmiss import ingarch_objective_missing

    y = _ingarch_counts(80, 21)
    X = np.column_stack([np.ones(79), np.log1p(y[:-1])])
    x = np.array([0.5, 0.3, 0.25, np.log(0.2)])
    fast = ingarch_objective(X, y[1:], (1,), 1.2, nb=True)(x, 2)
    slow = ingarch_objective_missing(X, y[1:], (1,), 1.2, (), np.ones(79, bool), nb=True)(x, 2)
    assert slow[0] == pytest.approx(fast[0], rel=1e-12)
    np.testing.assert_allclose(slow[1], fast[1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(slow[2], fast[2], rtol=1e-5, atol=1e-5)  # central differences


def test_ingarch_without_missing_values_is_unchanged():
    from forecast.models.autoregressive import INGARCH

    y = _ingarch_counts(90, 22)
    spec = INGARCH(past_obs=(1,), past_mean=(1,), seasonality="none")
    a, b = spec._fit_series(_series(y)), spec._fit_series(_series(y, np.ones(90, bool)))
    assert a.coef == b.coef and a.loglik == b.loglik and a.n_obs == b.n_obs


def test_ingarch_with_one_missing_value_maximises_the_brute_force_likelihood():
    """y_s missing: nu_{s+1} reads log(1 + exp(nu_s)) and the likelihood skips period s."""
    from scipy import stats
    from forecast.models.autoregressive import INGARCH

    n, gap = 150, 40
    y = _ingarch_counts(n, 21)
    obs = np.ones(n, dtype=bool)
    obs[gap] = False
    s = _series(y, obs)
    spec = INGARCH(past_obs=(1,), past_mean=(1,), seasonality="none", distribution="negbin")
    fit = spec._fit_series(s)
    assert fit.converged and fit.n_obs == n - 2  # first period (lag) and the missing one

    m = min(n, 12)  # nu before the window: log((sum of the observed first season + 1/2) / count)
    nu0 = np.log((y[:m].sum() + 0.5) / m)

    def loglik(b0, b1, a1, alpha):
        total, nu_prev, lam = 0.0, nu0, {}
        for t in range(1, n):
            prev = np.log1p(y[t - 1]) if obs[t - 1] else np.log1p(np.exp(lam[t - 1]))
            nu = b0 + b1 * prev + a1 * nu_prev
            lam[t], nu_prev = nu, nu
            if obs[t]:
                r = 1 / alpha
                total += stats.nbinom.logpmf(y[t], r, r / (r + np.exp(nu)))
        return total

    x = [fit.coef["(Intercept)"][0], fit.coef["obs_lag1"][0], fit.coef["mean_lag1"][0], fit.coef["dispersion"][0]]
    assert fit.loglik == pytest.approx(loglik(*x), abs=1e-7)
    for i in range(4):  # a maximum: every coordinate step lowers the brute-force likelihood
        for e in (1e-3, -1e-3):
            z = list(x)
            z[i] += e
            assert loglik(*z) < fit.loglik
    # forecasts run, and a missing last count enters as its conditional mean
    obs2 = obs.copy()
    obs2[-1] = False
    s2 = _series(y, obs2)
    f2 = spec._fit_series(s2)
    fc = spec._forecast_many([f2], [s2], 3, None, seed=0)
    assert fc[0].family == "pathmix" and np.isfinite(fc[0].paths).all()
    assert f2.state["y_hist"][-1] != 0 and f2.state["y_hist"][-1] == pytest.approx(
        np.exp(f2.state["nu_hist"][-1]))


def _arima_series(n, seed, obs):
    rng = np.random.default_rng(seed)
    z = np.empty(n)
    z[0] = 2.0
    for t in range(1, n):
        z[t] = 2.0 + 0.6 * (z[t - 1] - 2.0) + 0.4 * rng.standard_normal()
    y = np.round(np.expm1(np.maximum(z, 0))).astype(np.int64)
    return _series(y, obs), y


def _sm_sarimax(z, order, trend="c"):
    from statsmodels.tsa.statespace.sarimax import SARIMAX
    return SARIMAX(z, order=order, trend=trend, enforce_stationarity=True, enforce_invertibility=True,
                   concentrate_scale=True)


def test_arima_fixed_order_with_missing_values_equals_statsmodels_sarimax_on_the_nan_series():
    from forecast.models.arima import Arima

    n = 80
    obs = _observed(n)
    s, y = _arima_series(n, 31, obs)
    spec = Arima(order=(1, 0, 0), seasonal=False)
    fit = spec._fit_series(s)
    z = np.log1p(y.astype(float))
    z[~obs] = np.nan
    ref = _sm_sarimax(z, (1, 0, 0)).fit(disp=False, maxiter=100)
    np.testing.assert_allclose(fit.state["params"], ref.params, atol=1e-6)
    assert fit.loglik == pytest.approx(ref.llf, abs=1e-6)
    assert fit.n_obs == n - len(MISSING)
    # the AICc counts the observed values only
    k = int(ref.df_model)
    assert fit.state["aicc"] == pytest.approx(-2 * ref.llf + 2 * k + 2 * k * (k + 1) / (n - len(MISSING) - k - 1))
    # a missing last value is forecast by the state space, not read as log(1 + 0)
    obs2 = obs.copy()
    obs2[-2:] = False
    s2, _ = _arima_series(n, 31, obs2)
    from forecast.models.arima import z_forecast
    mean, sd = z_forecast(fit, s2.y, 3, observed=obs2)
    z2 = np.log1p(y.astype(float))
    z2[~obs2] = np.nan
    fc = _sm_sarimax(z2, (1, 0, 0)).filter(fit.state["params"]).get_forecast(3)
    np.testing.assert_allclose(mean, fc.predicted_mean, atol=1e-10)
    np.testing.assert_allclose(sd, np.sqrt(fc.var_pred_mean), atol=1e-10)
    out = spec._forecast_many([spec._fit_series(s2)], [s2], 3, None, seed=0)[0]
    np.testing.assert_allclose(out.pmf.sum(axis=1), 1.0, atol=1e-5)


def test_arima_search_likelihood_with_missing_values_equals_the_kalman_filter():
    """The order search's exact likelihood leaves NaN out; SARIMAX's Kalman filter on the NaN
    series gives the same marginal likelihood of the observed values (d = 0)."""
    from forecast.models._arma import arma_exact_llf

    n = 80
    obs = _observed(n)
    _, y = _arima_series(n, 32, obs)
    z = np.log1p(y.astype(float))
    z[~obs] = np.nan
    ref = _sm_sarimax(z, (1, 0, 0)).fit(disp=False, maxiter=200)
    phi = ref.params[1]
    llf, mu, sigma2 = arma_exact_llf(z, np.array([1.0, -phi]), np.array([1.0]), mean=True)
    # (mu and sigma2 are concentrated out here; at the SARIMAX optimum they agree with its values)
    assert llf == pytest.approx(ref.llf, abs=1e-5)
    assert mu == pytest.approx(ref.params[0] / (1 - phi), abs=1e-4)


def test_arima_search_runs_with_missing_values():
    from forecast.models.arima import Arima

    n = 96
    obs = _observed(n)
    s, _ = _arima_series(n, 33, obs)
    fit = Arima()._fit_series(s)
    assert fit.converged and np.isfinite(fit.loglik) and fit.n_obs == n - len(MISSING)
    fc = Arima()._forecast_many([fit], [s], 6, None, seed=0)[0]
    assert np.isfinite(fc.pmf).all()


@pytest.mark.parametrize("engine", ["per-series", "batched"])
def test_separation_and_column_checks_use_the_kept_rows_only(engine):
    """A pulse at a missing period: read as a 0 count it would separate (mu -> 0); on the
    kept rows it is an empty column, dropped, and the rest equals statsmodels."""
    n = 60
    y, obs = _nb_counts(n, 41), np.ones(n, dtype=bool)
    obs[30] = False
    ds = pd.date_range("2015-01-01", periods=n, freq="MS")
    spec = PoissonGLM(seasonality="none", interventions=[{"name": "pulse", "date": str(ds[30].date()),
                                                          "kind": "pulse"}])
    s = _series(y, obs)
    fit = (spec._try_fit_many([s, _series(_nb_counts(n, 42))])[0] if engine == "batched"
           else spec._fit_series(s))
    assert fit.converged and "separation" not in fit.message
    assert np.isnan(fit.coef["pulse"][0])
    ref = sm.GLM(y[obs], np.ones((obs.sum(), 1)), family=sm.families.Poisson()).fit()
    assert fit.coef["(Intercept)"][0] == pytest.approx(ref.params[0], abs=1e-6)
    zeros = spec._fit_series(_series(np.where(obs, y, 0)))  # the 0 read as a count: separation
    assert not zeros.converged and "separation" in zeros.message
