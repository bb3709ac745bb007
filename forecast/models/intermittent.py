"""Intermittent-demand methods (Croston, SBA, TSB) as Poisson count forecasts.

These methods come from inventory control, where most periods have no demand:
exactly the shape of a quiet province. They produce a single *rate* (expected
count per period), flat over the horizon. Here that rate is the mean of a
Poisson distribution, so the methods give full predictive distributions and
are scored like every other model.

Missing periods (``Series.observed`` False) are skipped: the recursions run over the
observed counts only, as if the missing rows were not there (a missing period may have
had demand, so it is counted neither as a zero nor in an interval).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from forecast.models.base import FitFailure, ModelSpec, Param, Series, SeriesFit, SeriesForecast
from forecast.models.baselines import Climatology, Zero, observed_values


def _unit_interval(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and 0 < v <= 1


ALPHA = Param("alpha_smoothing", 0.1, "a float in (0, 1]", _unit_interval,
              "smoothing weight of the non-zero demand sizes (and of Croston's intervals)")
BETA = Param("beta_smoothing", 0.1, "a float in (0, 1]", _unit_interval,
             "smoothing weight of TSB's demand probability, updated every period")


def croston_rates(y: np.ndarray, alpha: float, sba: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Croston's smoothed size, interval and rate after each period (``rate[t]`` forecasts ``t + 1``).

    NaN before the first demand (nothing to smooth yet). See :class:`Croston`.
    """
    factor = 1.0 - alpha / 2.0 if sba else 1.0
    sizes, intervals = np.full(len(y), np.nan), np.full(len(y), np.nan)
    size = interval = np.nan
    since = 0  # periods since the last demand, the current one included
    for t, yt in enumerate(np.asarray(y, dtype=float)):
        since += 1
        if yt > 0:
            if np.isnan(size):  # first demand: the smoothed values start at the observed ones
                size, interval = yt, float(since)
            else:
                size += alpha * (yt - size)
                interval += alpha * (since - interval)
            since = 0
        sizes[t], intervals[t] = size, interval
    return sizes, intervals, factor * sizes / intervals


def tsb_rates(y: np.ndarray, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TSB probability, size and rate after each period (``rate[t]`` forecasts ``t + 1``).

    The size is NaN before the first demand, and so is the rate. See :class:`TSB`.
    """
    y = np.asarray(y, dtype=float)
    prob, size, rate = np.empty(len(y)), np.full(len(y), np.nan), np.full(len(y), np.nan)
    p, z = np.nan, np.nan
    for t, yt in enumerate(y):
        d = float(yt > 0)
        p = d if t == 0 else p + beta * (d - p)
        if yt > 0:
            z = yt if np.isnan(z) else z + alpha * (yt - z)
        prob[t], size[t], rate[t] = p, z, p * z
    return prob, size, rate


def _one_step_loglik(y: np.ndarray, rates: np.ndarray) -> tuple[float, int]:
    """Poisson log score of the in-sample one-step-ahead forecasts (periods with a rate)."""
    from scipy import stats  # (here, not at the top: a slow import every CLI call would pay)
    prev = rates[:-1]
    ok = np.isfinite(prev)
    return float(stats.poisson.logpmf(y[1:][ok], prev[ok]).sum()), int(ok.sum())


class _Intermittent(ModelSpec):
    """Shared fitting skeleton: a flat Poisson forecast at the final rate."""

    handles_missing = True

    def _check(self, s: Series) -> None:
        if not (np.asarray(s.y) > 0).any():  # placeholders are 0: the same test on observed counts
            raise FitFailure("all counts are zero: no demand to smooth")

    def _forecast_series(self, fit: SeriesFit, s: Series, h: int, future, rng) -> SeriesForecast:
        return SeriesForecast("poisson", mu=np.full(h, fit.state["rate"]))


class Croston(_Intermittent):
    """Croston's method (optionally with the Syntetos–Boylan correction), as a Poisson rate.

    Notes
    -----
    With demand sizes x_j = y_{t_j} > 0 at periods t_1 < t_2 < ... and intervals
    q_1 = t_1 (periods up to and including the first demand), q_j = t_j - t_{j-1}:
    ẑ_1 = x_1, p̂_1 = q_1; ẑ_j = ẑ_{j-1} + α(x_j - ẑ_{j-1}), p̂_j = p̂_{j-1} + α(q_j - p̂_{j-1});
    rate = c · ẑ_J / p̂_J after the last demand J, c = 1 - α/2 with ``sba`` (Syntetos &
    Boylan 2005), else 1; Y_{T+h} ~ Poisson(rate) for every h.

    The smoothed values start at the first observed size and interval, the
    convention of R's ``forecast::croston`` (``ses(initial = "simple")``) and of
    statsforecast; α = ``alpha_smoothing`` is fixed, not estimated. Croston's
    method gives only a rate; turning it into a Poisson distribution lets it be
    scored (log score, RPS, coverage) like every other model.

    ``loglik`` is the Poisson log score of the in-sample one-step-ahead rates,
    over the periods after the first demand (``n_obs`` of them); ``n_params`` is
    0 (nothing is estimated). An all-zero series has no demand to smooth: the
    fit fails and the series falls back to ``climatology`` (a point mass at 0).
    """

    name = "croston"
    description = "Croston's method (intermittent demand), rate as a Poisson mean"
    fallbacks = (Climatology, Zero)
    params = (ALPHA, Param("sba", False, "a bool", lambda v: isinstance(v, (bool, np.bool_)),
                           "Syntetos-Boylan bias correction: multiply the rate by 1 - alpha/2"))

    def _fit_series(self, s: Series) -> SeriesFit:
        self._check(s)
        y = np.asarray(observed_values(s))
        sizes, intervals, rates = croston_rates(y, float(self.alpha_smoothing), bool(self.sba))
        size, interval, rate = float(sizes[-1]), float(intervals[-1]), float(rates[-1])
        ll, n_obs = _one_step_loglik(y, rates)
        nan = float("nan")
        return SeriesFit(self, loglik=ll, n_params=0, n_obs=n_obs,
                         coef={"size": (size, nan), "interval": (interval, nan), "rate": (rate, nan)},
                         state={"rate": rate, "size": size, "interval": interval})


class TSB(_Intermittent):
    """Teunter–Syntetos–Babai: smoothed demand probability × smoothed size, as a Poisson rate.

    Notes
    -----
    d_t = 1{y_t > 0}; p̂_1 = d_1, p̂_t = p̂_{t-1} + β(d_t - p̂_{t-1}) every period;
    ẑ = the first non-zero size, then ẑ ← ẑ + α(y_t - ẑ) in periods with y_t > 0
    (unchanged otherwise); rate = p̂_T · ẑ_T; Y_{T+h} ~ Poisson(rate) for every h.

    Unlike Croston's, the rate decays through zero periods, so a series that
    went quiet forecasts less (Teunter, Syntetos & Babai 2011). Both smoothed
    values start at their first observation (as statsforecast's TSB);
    α = ``alpha_smoothing`` and β = ``beta_smoothing`` are fixed. The rate is
    made a Poisson mean so the method is scored like every other model.

    ``loglik`` is the Poisson log score of the in-sample one-step-ahead rates
    after the first demand; ``n_params`` is 0. An all-zero history would give
    p̂ = 0 and an undefined size: rather than report a rate of 0 as a TSB fit,
    the fit fails and the series falls back to ``climatology`` (the same point
    mass at 0, but flagged in ``diagnostics()``).
    """

    name = "tsb"
    description = "Teunter-Syntetos-Babai (intermittent demand), rate as a Poisson mean"
    fallbacks = (Climatology, Zero)
    params = (ALPHA, BETA)

    def _fit_series(self, s: Series) -> SeriesFit:
        self._check(s)
        y = np.asarray(observed_values(s))
        prob, size, rate = tsb_rates(y, float(self.alpha_smoothing), float(self.beta_smoothing))
        ll, n_obs = _one_step_loglik(y, rate)
        nan = float("nan")
        return SeriesFit(self, loglik=ll, n_params=0, n_obs=n_obs,
                         coef={"probability": (float(prob[-1]), nan), "size": (float(size[-1]), nan),
                               "rate": (float(rate[-1]), nan)},
                         state={"rate": float(rate[-1]), "probability": float(prob[-1]), "size": float(size[-1])})

