"""Baselines: the forecasts every model must beat (and the last rungs of every fallback ladder)."""
from __future__ import annotations

import numpy as np

from forecast.distributions import K_CAP_MAX
from forecast.models._glmbatch import nb_intercept_mle_batch
from forecast.models.base import (FitFailure, ModelSpec, Param, Series, SeriesFit, SeriesForecast, batching,
                                  positive_int)

WINDOW = Param("window", 36, "an int >= 1", positive_int, "number of most recent periods used")


class Zero(ModelSpec):
    """Always zero: a point mass at 0.

    Notes
    -----
    P(Y_{T+h} = 0) = 1. The last rung of every fallback ladder; useful as a
    floor in comparisons (a model that cannot beat it is useless).
    """

    name = "zero"
    draws = False
    description = "Point mass at zero (floor of every comparison, last fallback)"
    params = ()
    fallbacks = ()

    def _fit_series(self, s: Series) -> SeriesFit:
        return SeriesFit(self, n_obs=len(s.y), loglik=float(np.where(s.y == 0, 0.0, -np.inf).sum()))

    def _forecast_series(self, fit, s, h, future, rng) -> SeriesForecast:
        return SeriesForecast("poisson", mu=np.zeros(h))


class Naive(ModelSpec):
    """Poisson with the last observed count as its mean.

    Notes
    -----
    Y_{T+h} ~ Poisson(y_T) for every h.
    """

    name = "naive"
    draws = False
    description = "Poisson with mean = last observed count"
    params = ()
    fallbacks = (Zero,)

    def _fit_series(self, s: Series) -> SeriesFit:
        if len(s.y) == 0:
            raise FitFailure("empty series")
        last = float(s.y[-1])
        return SeriesFit(self, n_obs=len(s.y), coef={"last": (last, float("nan"))})

    def _forecast_series(self, fit, s, h, future, rng) -> SeriesForecast:
        # The last value is data, not a parameter: read it from the series being
        # forecast (which may extend the fitted one, see FittedModel.update).
        return SeriesForecast("poisson", mu=np.full(h, float(s.y[-1])))


class SeasonalNaive(ModelSpec):
    """Poisson with the count one season earlier as its mean.

    Notes
    -----
    Y_{T+h} ~ Poisson(y_{T+h-m·ceil(h/m)}), m the season length (12 months,
    52 weeks, 7 days).
    """

    name = "seasonal_naive"
    draws = False
    description = "Poisson with mean = count one season earlier"
    params = ()
    fallbacks = (Naive, Zero)

    def _fit_series(self, s: Series) -> SeriesFit:
        m = s.season_length
        if len(s.y) < m:
            raise FitFailure(f"needs one full season ({m} periods), has {len(s.y)}")
        return SeriesFit(self, n_obs=len(s.y))

    def _forecast_series(self, fit, s, h, future, rng) -> SeriesForecast:
        season = s.y[-s.season_length:].astype(float)
        return SeriesForecast("poisson", mu=season[np.arange(h) % len(season)])


def nb_intercept_mle(y: np.ndarray) -> tuple[float, float, float]:
    """Maximum-likelihood NB2 mean and dispersion of an i.i.d. sample.

    The MLE of the mean is the sample mean for any alpha; alpha maximises the
    profile likelihood and is 0 (Poisson) when the sample is not overdispersed
    (its variance, divisor n, does not exceed its mean). Returns (mu, alpha, loglik).
    One row of :func:`~forecast.models._glmbatch.nb_intercept_mle_batch`, so a
    series gets the same estimate alone or in a batch.
    """
    y = np.asarray(y, dtype=np.int64)
    mu, alpha, ll = nb_intercept_mle_batch(y[None, :])
    return float(mu[0]), float(alpha[0]), float(ll[0])


class _Windowed(ModelSpec):
    """Shared skeleton of the baselines that read only the last ``window`` counts."""

    draws = False
    params = (WINDOW,)
    fallbacks = (Zero,)

    def _last_window(self, s: Series) -> np.ndarray:
        if len(s.y) == 0:
            raise FitFailure("empty series")
        return s.y[-self.window:]


class Climatology(_Windowed):
    """Negative binomial fitted to the last ``window`` periods.

    Notes
    -----
    Y_{T+h} ~ NB2(mu, alpha), Var = mu + alpha·mu², with mu the mean of the last
    W counts and alpha their maximum-likelihood dispersion (0, i.e. Poisson,
    when they are not overdispersed). The same distribution for every h. A
    window of zeros gives a point mass at 0.
    """

    name = "climatology"
    description = "Negative binomial fitted to the last W periods (default baseline)"

    def _fit_series(self, s: Series) -> SeriesFit:
        w = self._last_window(s)
        mu, alpha, ll = nb_intercept_mle(w)
        return self._series_fit(mu, alpha, ll, len(w))

    def _series_fit(self, mu: float, alpha: float, ll: float, n: int) -> SeriesFit:
        return SeriesFit(self, n_obs=n, loglik=ll, n_params=2 if alpha > 0 else 1,
                         coef={"mean": (mu, float(np.sqrt((mu + alpha * mu * mu) / n))),
                               "alpha": (alpha, float("nan"))},
                         state={"mu": mu, "alpha": alpha})

    def _try_fit_many(self, series: list[Series]) -> list[SeriesFit | FitFailure]:
        """All windows of one length in one batched solve."""
        if not batching():
            return super()._try_fit_many(series)
        out: list[SeriesFit | FitFailure] = [FitFailure("empty series")] * len(series)
        by_len: dict[int, list[int]] = {}
        for i, s in enumerate(series):
            if len(s.y):
                by_len.setdefault(min(len(s.y), self.window), []).append(i)
        for n, idx in by_len.items():
            mu, alpha, ll = nb_intercept_mle_batch(np.stack([series[i].y[-n:] for i in idx]))
            for j, i in enumerate(idx):
                out[i] = self._series_fit(float(mu[j]), float(alpha[j]), float(ll[j]), n)
                out[i].engine = "batched"
        return out

    def _forecast_series(self, fit, s, h, future, rng) -> SeriesForecast:
        return SeriesForecast("negbin", mu=np.full(h, fit.state["mu"]), alpha=np.full(h, fit.state["alpha"]))


class Empirical(_Windowed):
    """The empirical distribution of the last ``window`` counts ("conflictology").

    Notes
    -----
    P(Y_{T+h} = k) = #{t in last W periods: y_t = k} / W for every h.

    The dense support is capped like every forecast's (``K_CAP_MAX`` of
    :mod:`forecast.distributions`): the frequency of counts above the cap is kept
    as the forecast's tail mass P(Y > K), so one runaway count cannot make a pmf
    row of absurd width for every series of the panel.
    """

    name = "empirical"
    description = "Empirical distribution of the last W periods (conflictology)"

    def _fit_series(self, s: Series) -> SeriesFit:
        w = self._last_window(s)
        K = min(int(w.max()), K_CAP_MAX)
        freq = np.bincount(np.minimum(w, K + 1), minlength=K + 2) / len(w)  # slot K+1: counts above the cap
        pmf = freq[:K + 1]
        return SeriesFit(self, n_obs=len(w), loglik=float(np.sum(np.log(freq[np.minimum(w, K + 1)]))),
                         n_params=K + int(freq[K + 1] > 0), state={"pmf": pmf})

    def _forecast_series(self, fit, s, h, future, rng) -> SeriesForecast:
        return SeriesForecast("pmf", pmf=np.tile(fit.state["pmf"], (h, 1)))
