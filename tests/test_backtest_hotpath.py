"""The backtest hot path's stacked shortcuts give the numbers of the per-series code they replace.

Seasonal naive means, the climatology's window log-factorial sums, the forecast's per-series
largest and mean counts, and ``FittedModel.diagnostics`` built column by column.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special

import forecast
from forecast.models._baselinebatch import log_factorial_sums, seasonal_means
from forecast.models.base import PanelData, Series, batched_engine
from forecast.models.series import count_summaries
from forecast.models.series import observed_values


def _panel(n_series: int = 30, n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2018-01-01", periods=n, freq="MS")
    frames = []
    for i in range(n_series):
        y = rng.poisson(rng.uniform(0.2, 8), n)  # many zeros: the after-zero rate is used
        frames.append(pd.DataFrame({"unique_id": f"u{i:02d}", "ds": ds[n - (n - i % 3):], "y": y[i % 3:]}))
    return pd.concat(frames, ignore_index=True)


def test_seasonal_naive_stacked_means_equal_the_per_series_forecasts():
    panel = _panel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = forecast.load_model("seasonal_naive").fit(panel)
        stacked = fitted.forecast(7)
        with batched_engine(False):
            alone = fitted.forecast(7)
    np.testing.assert_array_equal(stacked.mean, alone.mean)
    series = fitted._data.series
    mus = seasonal_means(series, 7)
    assert sorted(mus) == list(range(len(series)))  # every series observed throughout
    assert any((s.y[-12:] == 0).any() for s in series)  # zeros were replaced


def test_log_factorial_sums_and_max_and_mean_equal_the_per_series_sums():
    rng = np.random.default_rng(1)
    ds = pd.date_range("2020-01-01", periods=50, freq="MS").to_numpy()
    series = []
    for i in range(40):
        n = [50, 50, 31, 0][i % 4]
        y = rng.poisson(rng.uniform(0.5, 60), n)
        obs = None if i % 5 else rng.random(n) > 0.3
        series.append(Series(f"s{i}", ds[:n], y, "month", None, obs))
    windows = np.array([min(36, len(s.y)) for s in series])
    want = [special.gammaln(observed_values(s, int(w)) + 1.0).sum() for s, w in zip(series, windows)]
    np.testing.assert_array_equal(log_factorial_sums(series, windows), want)
    hmax, mean = count_summaries(series)
    np.testing.assert_array_equal(hmax, [int(s.y.max(initial=0)) for s in series])
    np.testing.assert_array_equal(mean, [float(np.mean(s.y)) if len(s.y) else 0.0 for s in series])


def _diagnostics_by_rows(fitted) -> pd.DataFrame:
    """``diagnostics()`` as it was built before: one dict per series."""
    rows = []
    for i, (s, f) in enumerate(zip(fitted._data.series, fitted._fits)):
        fallback, used, reason = f.fallback, f.spec.name, f.reason
        if i in fitted._forecast_fallback:
            fallback, used, note = fitted._forecast_fallback[i]
            reason = "; ".join(r for r in (reason, f"forecast: {note}") if r)
        rows.append({"unique_id": s.uid, "converged": f.converged, "fallback": fallback, "reason": reason,
                     "model_used": used, "loglik": f.loglik, "aic": f.aic, "n_obs": f.n_obs,
                     "message": f.message, "engine": f.engine, "mean_capped": bool(fitted._capped[i]),
                     "mean_floored": bool(fitted._floored[i])})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("name", ["negbin_glm", "climatology"])
def test_diagnostics_by_columns_equal_the_frame_built_by_rows(name):
    panel = _panel(seed=2)
    panel.loc[panel["unique_id"] == "u00", "y"] = 0  # falls down the ladder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = forecast.load_model(name).fit(panel)
        fitted.forecast(3)
    fitted._forecast_fallback[4] = ("long_run", "long_run", "a note")
    pd.testing.assert_frame_equal(fitted.diagnostics(), _diagnostics_by_rows(fitted), check_exact=True)


def test_truncate_stacks_each_calendar_once_per_task_with_the_same_slices(monkeypatch):
    from forecast import _backtest_data
    from forecast.models import design

    panel = _panel(seed=3)
    panel.loc[panel.index[::17], "y"] = np.nan  # some missing periods: masks are stacked too
    frame = panel.assign(ds=pd.to_datetime(panel["ds"]))
    frame.attrs = {"freq": forecast.models.base.infer_freq(frame)}
    full = PanelData.from_frame(frame, ())
    calls = []
    real = design.group_by_periods
    monkeypatch.setattr(design, "group_by_periods", lambda s: calls.append(1) or real(s))
    cache: dict = {}
    for cut in sorted(frame["ds"].unique())[-5:-2]:
        cut = pd.Timestamp(cut)
        d0, a0, s0 = _backtest_data._truncate(full, cut, None, 2, 12)
        d1, a1, s1 = _backtest_data._truncate(full, cut, None, 2, 12, cache)
        np.testing.assert_array_equal(a0, a1)
        np.testing.assert_array_equal(s0, s1)
        assert [s.uid for s in d0.series] == [s.uid for s in d1.series]
        for x, y in zip(d0.series, d1.series):
            np.testing.assert_array_equal(x.y, y.y)
            assert (x.observed is None) == (y.observed is None)
    assert len(calls) == 3 + 1  # three without the cache, one with it


def test_the_stacked_usability_check_sends_every_doubtful_fit_to_the_exact_one():
    from forecast.models.ladder import _surely_usable, unusable
    from forecast.models.results import FitFailure, SeriesFit

    spec = forecast.load_model("negbin_glm")

    def fit(loglik=-3.0, converged=True, **state):
        return SeriesFit(spec, converged=converged, loglik=loglik, n_params=2, state=state)

    fits = [fit(beta=np.array([1.0, 2.0]), alpha=0.3), fit(beta=np.array([1.0, np.nan]), alpha=0.3),
            fit(beta=np.array([1.0]), alpha=float("inf")), fit(loglik=float("nan"), beta=np.array([1.0])),
            fit(loglik=np.float64(-2.0), beta=np.array([1, 2]), names=["a", "b"]), fit(converged=False),
            FitFailure("x"), fit(mu=np.float64(2.0), gamma=[1.0, 2.0]), fit(beta=np.array([[1.0, 2.0], [3.0, 4.0]]))]
    fine = _surely_usable(fits)
    assert fine.tolist() == [True, False, False, False, False, False, False, False, True]
    for f, ok in zip(fits, fine):  # never says usable where the exact check would not
        if ok:
            assert unusable(f) is None
