"""Baselines: the forecasts every model must beat (and the last rungs of every fallback ladder).

Every baseline handles missing periods (``Series.observed``): windows span the last W
periods of the calendar and use the observed counts among them; "last count" means the
last *observed* count.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy import special

from forecast.distributions import K_CAP_MAX
from forecast.models._baselinebatch import (after_zero_rate, last_observed_season, log_factorial_sums,  # noqa: F401
                                           paused_gc, season_lengths, seasonal_means, stacked_windows, window_logliks)
from forecast.models._nbintercept import nb_intercept_mle, nb_intercept_mle_batch  # noqa: F401 (public here)
from forecast.models._pooled import _within_alpha, long_run_rates, panel_for, pooled_fit, pooling_separately
from forecast.models.base import (FitFailure, ModelSpec, Param, Series, SeriesFit, SeriesForecast, batching,
                                  one_of, positive_int)
from forecast.models.series import last_observed, observed_values  # noqa: F401  (intermittent imports them here)
from forecast.periods import Frequency

_NAN = float("nan")  # the standard error of a coefficient without one

#: The default window, in years (converted to periods of the panel's frequency).
WINDOW_YEARS = 3
WINDOW = Param("window", None, "an int >= 1 or None (3 years of the panel's frequency)",
               lambda v: v is None or positive_int(v),
               "number of most recent periods used; None: 3 years (36 months, 156 weeks, 12 quarters, 3 years)")
PRIOR = Param("prior", "pooled", "'pooled' or 'none'", one_of("pooled", "none"),
              "'pooled': Gamma-Poisson posterior predictive shrunk to the series' long-run rate, "
              "prior strength pooled across series; 'none': NB fitted to the window alone")


def window_periods(window: int | None, freq: Frequency) -> int:
    """A window in periods: ``window`` when given, else :data:`WINDOW_YEARS` years of ``freq``
    (whole periods: 36 months, 156 weeks, 12 quarters, 3 years, 1095 days)."""
    if window is not None:
        return int(window)
    return max(1, int(WINDOW_YEARS * freq.periods_per_year + 1e-9))


class Zero(ModelSpec):
    """Always zero: a point mass at 0.

    Notes
    -----
    P(Y_{T+h} = 0) = 1. Useful as a floor in comparisons (a model that cannot
    beat it is useless). Declared as the last rung of the fallback ladders, where
    the ladder driver runs :class:`LongRunRate` in its place.
    """

    name = "zero"
    draws = False
    handles_missing = True
    description = "Point mass at zero (floor of every comparison)"
    params = ()
    fallbacks = ()
    #: a point mass at 0 is this model's forecast, not an underflow to repair
    floors_mean: ClassVar[bool] = False

    def as_last_rung(self) -> "ModelSpec":
        """What runs in place of this model as the last rung of another model's ladder: a
        Poisson at the series' shrunk long-run rate (no certain zero after past events)."""
        return LongRunRate()

    def _fit_series(self, s: Series) -> SeriesFit:
        y = observed_values(s)
        return SeriesFit(self, n_obs=len(y), loglik=float(np.where(y == 0, 0.0, -np.inf).sum()))

    def _forecast_series(self, fit, s, h, future, rng) -> SeriesForecast:
        return SeriesForecast("poisson", mu=np.zeros(h))


class Naive(ModelSpec):
    """Poisson with the last observed count as its mean (after a zero: the rate after zeros).

    Notes
    -----
    Y_{T+h} ~ Poisson(y_T) for every h when y_T > 0; after y_T = 0 the mean is the
    series' mean count one period after a zero, shrunk to its mean ȳ:
    (Σ_{t: y_{t-1}=0} y_t + ȳ) / (#{t: y_{t-1}=0} + 1) (> 0 when the series ever had
    an event), so a quiet period is not a certain zero.
    """

    name = "naive"
    draws = False
    handles_missing = True
    description = "Poisson with mean = last observed count (after a zero: the rate after zeros)"
    params = ()
    fallbacks = (Zero,)

    def _fit_series(self, s: Series) -> SeriesFit:
        if s.n_observed == 0:
            raise FitFailure("empty series")
        last = last_observed(s)
        return SeriesFit(self, n_obs=s.n_observed, coef={"last": (last, float("nan"))})

    def _forecast_series(self, fit, s, h, future, rng) -> SeriesForecast:
        # The last value is data, not a parameter: read it from the series being
        # forecast (which may extend the fitted one, see FittedModel.update).
        last = last_observed(s)
        return SeriesForecast("poisson", mu=np.full(h, last if last > 0 else after_zero_rate(s.y, 1, s.observed)))


class SeasonalNaive(ModelSpec):
    """Poisson with the count one season earlier as its mean (a zero there: the rate after zeros).

    Notes
    -----
    Y_{T+h} ~ Poisson(y_{T+h-m·ceil(h/m)}), m the season length (12 months,
    52 weeks, 7 days); where that count is 0, the mean is the series' mean count
    one season after a zero, shrunk to its mean ȳ (see :class:`Naive`). Where that
    count is missing, the same season's last observed count (one more season back),
    else the :class:`Naive` mean.
    """

    name = "seasonal_naive"
    draws = False
    handles_missing = True
    description = "Poisson with mean = count one season earlier"
    params = ()
    fallbacks = (Naive, Zero)

    def _fit_series(self, s: Series) -> SeriesFit:
        m = s.season_length
        if len(s.y) < m:
            raise FitFailure(f"needs one full season ({m} periods), has {len(s.y)}")
        return SeriesFit(self, n_obs=len(s.y))

    _batched_for = _fit_series  # (_try_fit_many copies it: a replaced or overridden one is used instead)

    def _try_fit_many(self, series: list[Series]) -> list[SeriesFit | FitFailure]:
        """:meth:`_fit_series` of every series in one loop (no exception raised per series)."""
        if not batching() or type(self)._fit_series is not type(self)._batched_for:
            return super()._try_fit_many(series)
        with paused_gc():
            return [SeriesFit(self, n_obs=len(s.y)) if len(s.y) >= m
                    else FitFailure(f"needs one full season ({m} periods), has {len(s.y)}")
                    for s, m in zip(series, season_lengths(series))]

    def _forecast_series(self, fit, s, h, future, rng) -> SeriesForecast:
        m = s.season_length
        season = s.y[-m:].astype(float)
        if s.observed is not None:
            season = last_observed_season(s.y, s.observed, m)
        zero = np.isfinite(season) & (season == 0)
        if zero.any():
            season = np.where(zero, after_zero_rate(s.y, m, s.observed), season)
        if np.isnan(season).any():  # a season never observed: the naive forecast
            last = last_observed(s)
            season = np.where(np.isnan(season), last if last > 0 else after_zero_rate(s.y, 1, s.observed), season)
        return SeriesForecast("poisson", mu=season[np.arange(h) % len(season)])

    def _forecast_many(self, fits, series, h, future, seed) -> list[SeriesForecast]:
        """:meth:`_forecast_series` of every series; the fully observed ones of one length are
        stacked (:func:`~forecast.models._baselinebatch.seasonal_means`)."""
        with paused_gc():  # (a row view and a forecast per series)
            mus = seasonal_means(series, h) if batching() else {}
            out: list[SeriesForecast | None] = [SeriesForecast("poisson", mu=mus[i]) if i in mus else None
                                                for i in range(len(series))]
        rest = [i for i, f in enumerate(out) if f is None]
        if rest:
            for i, f in zip(rest, super()._forecast_many([fits[i] for i in rest], [series[i] for i in rest], h,
                                                         future, seed)):
                out[i] = f
        return out  # type: ignore[return-value]


class _Windowed(ModelSpec):
    """Shared skeleton of the baselines that read only the last ``window`` counts."""

    draws = False
    handles_missing = True
    params = (WINDOW,)
    fallbacks = (Zero,)

    def _window_of(self, s: Series) -> int:
        return window_periods(self.window, s.freq)

    def _last_window(self, s: Series) -> np.ndarray:
        """The observed counts of the last ``window`` periods."""
        if len(s.y) == 0:
            raise FitFailure("empty series")
        w = observed_values(s, self._window_of(s))
        if len(w) == 0:
            raise FitFailure(f"no observed count in the last {self._window_of(s)} periods")
        return w


class Climatology(_Windowed):
    r"""Negative binomial for the next count from the last ``window`` periods, shrunk to
    the series' long-run rate (``prior="pooled"``) or from the window alone (``"none"``).

    Notes
    -----
    Y_{T+h} ~ NB2(μ_i, α_i), Var = μ_i + α_i·μ_i², μ_i = (b·m_i + S_i)/(b + W_i),
    α_i = α_w,i·(1 + 1/r_i) + 1/r_i, r_i = b·m_i + S_i: the Gamma–Poisson posterior
    predictive of series i (S_i the sum of its last W_i counts, m_i its long-run rate, b
    the prior strength in pseudo-periods), widened by the overdispersion α_w,i of the
    window's counts around their rate. The same distribution for every h.

    ``prior="pooled"`` (default), empirical Bayes: m_i = (T_i + c·r̄_g)/(n_i + c), T_i
    and n_i the sum and number of all the series' training counts, r̄_g = ΣT/Σn the
    pooled rate of its group g (the series of its ``event_type`` when the panel has
    that key, else all series), c = 1 pseudo-period; the rate λ_i of the window has
    the prior Gamma(shape b_g·m_i, rate b_g), and b_g maximises the group's marginal
    likelihood Σ_{i in g} log NB(S_i; b_g·m_i, b_g/(b_g + W_i)) (bounded 1-D search,
    see :mod:`forecast.models._pooled`); α_w,i is the window's maximum-likelihood NB2
    dispersion (0 when not overdispersed), so Y | λ_i ~ NB2(λ_i, α_w,i) and μ_i, α_i
    match the mixture's mean and variance. A quiet window therefore shrinks toward a
    small positive rate: 0 < P(Y ≥ 1) for every series that ever had an event; a series
    that never had one (m_i = 0) stays a point mass at 0 and changes no other series.
    Pooling reads every series of the panel being fitted (``pools_series``: backtests do
    not chunk its series). As a lower rung of another model's ladder each series is pooled
    with itself only (r̄ = its own rate; one window sum cannot estimate b, so b = W_i: the
    long-run rate weighs as much as the window), so a fallback never depends on which
    other series failed or how a backtest chunked them.

    ``prior="none"``: Y ~ NB2(mu, alpha), Var = mu + alpha·mu², mu the mean of the
    last W counts and alpha their maximum-likelihood dispersion (0, i.e. Poisson,
    when not overdispersed); a window of zeros gives a point mass at 0.

    ``window=None`` (default): 3 years of the panel's frequency (36 months, 156 weeks,
    12 quarters, 3 years); an int is a number of periods.
    """

    name = "climatology"
    description = "Gamma-Poisson (NB) of the last 3 years shrunk to the long-run rate (default baseline)"
    params = (WINDOW, PRIOR)

    @property
    def pools_series(self) -> bool:
        """Whether fits read every series of the panel (then backtests must not chunk series)."""
        return self.prior == "pooled"

    def _fit_series(self, s: Series) -> SeriesFit:
        if self.prior == "pooled":
            res = self._pooled_fits([s])[0]
            if isinstance(res, FitFailure):
                raise res
            return res
        w = self._last_window(s)
        mu, alpha, ll = nb_intercept_mle(w)
        return self._series_fit(mu, alpha, ll, len(w))

    def _series_fit(self, mu: float, alpha: float, ll: float, n: int, **extra: Any) -> SeriesFit:
        coef = {"mean": (mu, math.sqrt((mu + alpha * mu * mu) / n)), "alpha": (alpha, _NAN)}
        for k, v in extra.items():
            coef[k] = (v, _NAN)
        return SeriesFit(self, n_obs=n, loglik=ll, n_params=2 if alpha > 0 else 1, coef=coef,
                         state={"mu": mu, "alpha": alpha})

    def _try_fit_many(self, series: list[Series]) -> list[SeriesFit | FitFailure]:
        """All windows of one length in one batched solve; pooled: one solve per group."""
        if not batching():  # per series (pooled: each still pools over the pooling panel)
            return super()._try_fit_many(series)
        if self.prior == "pooled":
            return self._pooled_fits(series)
        out: list[SeriesFit | FitFailure] = [FitFailure("empty series")] * len(series)
        by_len: dict[int, list[int]] = {}
        windows = [observed_values(s, self._window_of(s)) for s in series]
        for i, s in enumerate(series):
            if len(s.y) and not len(windows[i]):
                out[i] = FitFailure(f"no observed count in the last {self._window_of(s)} periods")
            elif len(s.y):
                by_len.setdefault(len(windows[i]), []).append(i)
        for n, idx in by_len.items():
            mu, alpha, ll = nb_intercept_mle_batch(np.stack([windows[i] for i in idx]))
            for j, i in enumerate(idx):
                out[i] = self._series_fit(float(mu[j]), float(alpha[j]), float(ll[j]), n)
                out[i].engine = "batched"
        return out

    def _pooled_fits(self, series: list[Series]) -> list[SeriesFit | FitFailure]:
        """Pool over the pooling panel (every series of the fit), then read off ``series``."""
        pool, groups = panel_for(series)
        keep = [i for i, s in enumerate(pool) if len(s.y)]
        pool, groups = [pool[i] for i in keep], [groups[i] for i in keep]
        per_freq: dict[Any, int] = {}  # (one window length per frequency)
        for s in pool:
            if s.freq not in per_freq:
                per_freq[s.freq] = self._window_of(s)
        windows = np.array([min(per_freq[s.freq], len(s.y)) for s in pool])
        fixed_b = None
        if pooling_separately():
            # Alone (a lower ladder rung) one window sum cannot estimate b: the prior then
            # weighs as much as the window (b = W_i).
            seen = np.array([len(observed_values(s, int(w))) for s, w in zip(pool, windows)], dtype=float)
            fixed_b = np.maximum(seen, 1.0)
        stacked = stacked_windows(pool, windows)  # (shared by the dispersions and log y! sums)
        res = pooled_fit(pool, groups, windows, _within_alpha(pool, windows, stacked), fixed_b=fixed_b)
        where = {s.uid: j for j, s in enumerate(pool)}
        lls = window_logliks(res, log_factorial_sums(pool, windows, stacked)).tolist()
        # Python floats once for all series (= float() of each entry); _series_fit's fits (n_params 1:
        # b is pooled), all standard errors in one pass (IEEE sqrt and division: math's bits).
        engine = "batched" if batching() else "per-series"
        n_obs = np.maximum(res["W"].astype(int), 1)
        ses = np.sqrt((res["mu"] + res["alpha"] * res["mu"] * res["mu"]) / n_obs).tolist()
        mus, alphas, bs, ms, Ns = (a.tolist() for a in (res["mu"], res["alpha"], res["b"], res["m"], n_obs))
        out: list[SeriesFit | FitFailure] = []
        with paused_gc():
            for s in series:
                j = where.get(s.uid)
                if j is None or not len(s.y):
                    out.append(FitFailure("empty series"))
                    continue
                mu, alpha = mus[j], alphas[j]
                out.append(SeriesFit(self, n_obs=Ns[j], loglik=lls[j], n_params=1, engine=engine,
                                     coef={"mean": (mu, ses[j]), "alpha": (alpha, _NAN),
                                           "prior_strength": (bs[j], _NAN), "long_run_rate": (ms[j], _NAN)},
                                     state={"mu": mu, "alpha": alpha}))
        return out

    def _forecast_series(self, fit, s, h, future, rng) -> SeriesForecast:
        return SeriesForecast("negbin", mu=np.full(h, fit.state["mu"]), alpha=np.full(h, fit.state["alpha"]))

    _batched_for = _forecast_series  # (_forecast_many copies it: a replaced or overridden one is used instead)

    def _forecast_many(self, fits, series, h, future, seed) -> list[SeriesForecast]:
        """:meth:`_forecast_series` of every series: rows of one (S, h) array per parameter."""
        if not batching() or type(self)._forecast_series is not type(self)._batched_for:
            return super()._forecast_many(fits, series, h, future, seed)
        mu, alpha = (np.repeat(np.array([f.state[k] for f in fits], dtype=float)[:, None], h, axis=1)
                     for k in ("mu", "alpha"))
        with paused_gc():
            return [SeriesForecast("negbin", mu=m, alpha=a) for m, a in zip(mu, alpha)]


class LongRunRate(ModelSpec):
    """Poisson at the series' long-run rate: the last rung of the ladders.

    Notes
    -----
    Y_{T+h} ~ Poisson(m_i), m_i = (T_i + r̄_g)/(n_i + 1), T_i and n_i the sum and number of
    the series' counts, r̄_g the pooled rate of its group (see :class:`Climatology`); as a
    ladder rung each series is its own group, so m_i = T_i/n_i. Cannot fail; m_i > 0 for
    every series that had events, so no certain zero. Runs in place of :class:`Zero` at
    the end of every fallback ladder.
    """

    name = "long_run"
    draws = False
    handles_missing = True
    description = "Poisson at the series' long-run rate (last fallback)"
    params = ()
    fallbacks = ()
    pools_series = True

    def _fit_series(self, s: Series) -> SeriesFit:
        return self._try_fit_many([s])[0]  # type: ignore[return-value]

    def _try_fit_many(self, series: list[Series]) -> list[SeriesFit | FitFailure]:
        pool, groups = panel_for(series)
        m = long_run_rates(np.array([float(np.sum(s.y)) for s in pool]),  # placeholders add 0
                           np.array([float(s.n_observed) for s in pool]), np.asarray(groups, dtype=object))
        rate = {s.uid: float(r) for s, r in zip(pool, m)}
        out: list[SeriesFit | FitFailure] = []
        for s in series:
            r = rate.get(s.uid, 0.0)
            k = observed_values(s)  # Poisson log pmf, as scipy.stats.poisson.logpmf computes it
            ll = float((special.xlogy(k, r) - special.gammaln(k + 1.0) - r).sum()) if r > 0 else 0.0
            out.append(SeriesFit(self, n_obs=s.n_observed, n_params=1, loglik=ll, coef={"rate": (r, float("nan"))},
                                 state={"rate": r}))
        return out

    def _forecast_series(self, fit, s, h, future, rng) -> SeriesForecast:
        return SeriesForecast("poisson", mu=np.full(h, fit.state["rate"]))


class Empirical(_Windowed):
    """The empirical distribution of the last ``window`` counts ("conflictology").

    Notes
    -----
    P(Y_{T+h} = k) = #{t in last W periods: y_t = k} / W for every h. ``window=None``
    (default): W = 3 years of the panel's frequency (see :class:`Climatology`).

    The dense support is capped like every forecast's (``K_CAP_MAX`` of
    :mod:`forecast.distributions`): the frequency of counts above the cap is kept
    as the forecast's tail mass P(Y > K), so one runaway count cannot make a pmf
    row of absurd width for every series of the panel.
    """

    name = "empirical"
    description = "Empirical distribution of the last 3 years (conflictology)"

    def _fit_series(self, s: Series) -> SeriesFit:
        w = self._last_window(s)
        K = min(int(w.max()), K_CAP_MAX)
        freq = np.bincount(np.minimum(w, K + 1), minlength=K + 2) / len(w)  # slot K+1: counts above the cap
        pmf = freq[:K + 1]
        return SeriesFit(self, n_obs=len(w), loglik=float(np.sum(np.log(freq[np.minimum(w, K + 1)]))),
                         n_params=K + int(freq[K + 1] > 0), state={"pmf": pmf})

    def _forecast_series(self, fit, s, h, future, rng) -> SeriesForecast:
        return SeriesForecast("pmf", pmf=np.tile(fit.state["pmf"], (h, 1)))
