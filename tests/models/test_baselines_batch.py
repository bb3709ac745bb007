"""The baselines' stacked passes (issue 15, the baselines' part) against per-series loops:
after-zero rates, windows, log-factorial sums, dispersions, the seasonal naive's fits and the
climatology's fits and forecasts, to the last bit; and the garbage-collector pause."""
from __future__ import annotations

import gc
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special

from forecast.models import Climatology, SeasonalNaive
from forecast.models._baselinebatch import (after_zero_rate, after_zero_rates, last_observed_season,
                                            log_factorial_sums, paused_gc, season_lengths, stacked_windows)
from forecast.models._nbintercept import nb_intercept_mle_batch
from forecast.models._pooled import _within_alpha
from forecast.models.base import FitFailure
from forecast.models.ladder import batched_engine
from forecast.models.series import PanelData, observed_values


def _panel(n_series: int = 24, n: int = 40, seed: int = 3, gaps: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2020-01-01", periods=n, freq="MS")
    frames = []
    for i in range(n_series):
        y = rng.negative_binomial(rng.uniform(0.5, 5), 0.4, n) * (rng.random(n) > 0.3)  # many zeros
        keep = np.ones(n, dtype=bool)
        if gaps and i % 5 == 0:
            keep[rng.choice(n - 1, 4, replace=False)] = False  # missing periods (not the last)
        start = i % 3 * 12 if i % 7 else n - 8  # different lengths, one shorter than a season
        frames.append(pd.DataFrame({"unique_id": f"u{i:02d}", "ds": ds[keep][start:], "y": y[keep][start:]}))
    return pd.concat(frames, ignore_index=True)


def _series(**kw):
    return PanelData.from_frame(_panel(**kw), ()).series


def test_after_zero_rates_equal_the_per_series_rate_to_the_bit():
    rng = np.random.default_rng(1)
    Y = rng.poisson(0.7, (200, 30))
    for lag in (1, 12):
        got = after_zero_rates(Y, lag)
        assert got.tolist() == [after_zero_rate(y, lag) for y in Y]


def test_stacked_windows_log_factorials_and_dispersions_equal_per_series_loops():
    series = _series()
    rng = np.random.default_rng(2)
    windows = rng.integers(0, 45, len(series))
    stacked = stacked_windows(series, windows)
    seen = sorted(j for idx, _ in stacked for j in idx)
    assert seen == list(range(len(series)))
    for idx, Y in stacked:
        for r, j in enumerate(idx):
            if Y is not None:
                assert np.array_equal(Y[r], observed_values(series[j], int(windows[j])))
    want_lg = [special.gammaln(observed_values(s, int(w)) + 1.0).sum() for s, w in zip(series, windows)]
    assert log_factorial_sums(series, windows).tolist() == want_lg
    assert log_factorial_sums(series, windows, stacked).tolist() == want_lg
    want_a = []
    for s, w in zip(series, windows):
        v = observed_values(s, int(w))
        want_a.append(float(nb_intercept_mle_batch(v[None, :])[1][0]) if len(v) else 0.0)
    assert _within_alpha(series, windows, stacked).tolist() == want_a
    assert _within_alpha(series, windows).tolist() == want_a


def test_season_lengths_and_last_observed_season():
    series = _series()
    assert season_lengths(series) == [s.season_length for s in series]
    y = np.array([5, 6, 7, 1, 2, 3, 0, 9])
    observed = np.array([True, True, True, True, False, True, False, False])
    # the last season's positions 5, 6, 7 and one or more seasons back: 5 is observed (3);
    # 6, 3, 0 -> 3 is the first observed (1); 7, 4, 1 -> 1 is (6)
    np.testing.assert_array_equal(last_observed_season(y, observed, 3), [3.0, 1.0, 6.0])


def test_seasonal_naive_batched_fits_and_forecasts_equal_the_per_series_path():
    series = _series()
    spec = SeasonalNaive()
    batched = spec._try_fit_many(series)
    alone = []
    for s in series:
        try:
            alone.append(spec._fit_series(s))
        except FitFailure as exc:
            alone.append(exc)
    assert any(isinstance(f, FitFailure) for f in alone)  # the series shorter than a season
    for b, a in zip(batched, alone):
        assert type(b) is type(a) and str(b) == str(a)
        if not isinstance(a, FitFailure):
            assert (b.n_obs, b.n_params, b.engine) == (a.n_obs, a.n_params, a.engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = spec.fit(_panel())
        stacked = fitted.forecast(7)
        with batched_engine(False):
            per_series = fitted.forecast(7)
    np.testing.assert_array_equal(stacked.mean, per_series.mean)


@pytest.mark.parametrize("gaps", [False, True])
def test_climatology_fits_and_forecasts_equal_the_per_series_formulas(gaps):
    panel = _panel(gaps=gaps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = Climatology().fit(panel)
        stacked = fitted.forecast(5)
        with batched_engine(False):
            per_series = fitted.forecast(5)
    np.testing.assert_array_equal(stacked.mean, per_series.mean)
    np.testing.assert_array_equal(stacked.pmf, per_series.pmf)
    checked = 0
    for f in fitted.fits().values():
        if f.spec.name != "climatology":
            continue
        checked += 1
        mu, alpha = f.state["mu"], f.state["alpha"]
        # _series_fit's standard error of the mean, by math.sqrt, to the bit
        assert f.coef["mean"] == (mu, math.sqrt((mu + alpha * mu * mu) / f.n_obs))
        assert f.coef["alpha"][0] == alpha and math.isnan(f.coef["alpha"][1])
        assert list(f.coef) == ["mean", "alpha", "prior_strength", "long_run_rate"]
        assert f.n_params == 1 and f.engine == "batched"
    assert checked >= 20


def test_paused_gc_restores_the_collector_state():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # an outer pause holds
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # paused by someone else before: left paused
    finally:
        gc.enable()


def test_a_replaced_or_overridden_per_series_method_is_used_by_the_batched_paths(monkeypatch):
    """The batched loops copy _fit_series / _forecast_series; a replaced or overridden one wins."""
    series = _series(gaps=False)
    real = SeasonalNaive._fit_series

    def odd(self, s):
        if s.uid == series[1].uid:
            raise FitFailure("custom")
        return real(self, s)

    monkeypatch.setattr(SeasonalNaive, "_fit_series", odd)
    got = SeasonalNaive()._try_fit_many(series)
    assert isinstance(got[1], FitFailure) and str(got[1]) == "custom"
    assert not isinstance(got[2], FitFailure)

    class Shifted(Climatology):
        def _forecast_series(self, fit, s, h, future, rng):
            sf = super()._forecast_series(fit, s, h, future, rng)
            sf.mu = sf.mu + 1.0
            return sf

    spec = Shifted()
    fits = spec._try_fit_many(series)
    plain = Climatology()._forecast_many(fits, series, 3, None, 0)
    shifted = spec._forecast_many(fits, series, 3, None, 0)
    for p, q in zip(plain, shifted):
        np.testing.assert_array_equal(q.mu, p.mu + 1.0)
