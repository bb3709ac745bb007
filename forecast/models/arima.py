"""ARIMA on log(1 + y) with automatic order selection, mapped back to a count pmf.

A Gaussian ARIMA is the classic tool analysts reach for; on counts it is wrong
as it stands (negative, non-integer, symmetric). Here it is fitted to
``z = log(1 + y)`` with statsmodels' ``SARIMAX`` and its Gaussian forecast is
turned into a distribution over the integers 0, 1, 2, ... so it can be scored
against the count models on the same footing. The exact ARMA likelihood and the
order-search helpers live in :mod:`forecast.models._arma`, the SARIMAX fitting
and re-filtering in :mod:`forecast.models._sarimax`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from forecast.models.base import FitFailure, ModelSpec, Param, Series, SeriesFit, SeriesForecast
from forecast.models._arma import (  # noqa: F401 (re-exported: the tests and callers import them from here)
    FOURIER_KS,
    KPSS_CRIT_5PCT,
    TAIL,
    _best,
    _nested_start,
    _pacf_to_poly,
    _search_candidate,
    aicc_observed,
    arma_acov,
    arma_exact_llf,
    choose_fourier_k,
    fourier_matrix,
    kpss_differences,
    log1p_gaussian_pmf,
)
from forecast.models._sarimax import (  # noqa: F401 (re-exported: the tests and callers import them from here)
    FIT_OPTIONS,
    MODEL_OPTIONS,
    _fit_candidate,
    _fourier_exog,
    _sarimax,
    _scale,
    z_forecast,
)
from forecast.models.baselines import Climatology, Zero
from forecast.models.guard import mean_cap, note_capped

#: Shortest series the search is tried on.
MIN_OBS = 10
#: Seasons longer than this (weekly data, m = 52) get annual Fourier regressors instead of
#: seasonal ARMA terms.
FOURIER_MIN_SEASON = 12
#: Longest stretch of a series the order search ranks candidates on (5 years of weeks).
SEARCH_MAX = 260
#: Most SARIMAX refits of the search's best candidates (see ``Arima._search``).
N_REFIT = 4


def _order3(max_d: int):
    def check(v: Any) -> bool:
        return v is None or (isinstance(v, (tuple, list)) and len(v) == 3
                             and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 0
                                     for x in v) and v[1] <= max_d)
    return check


def _int_ge0(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0



ORDER = Param("order", None, "None or a tuple (p, d, q) of ints >= 0 with d <= 1", _order3(1),
              "ARIMA order; None = d by the KPSS test, p and q by AICc")
SEASONAL_ORDER = Param("seasonal_order", None, "None or a tuple (P, D, Q) of ints >= 0 with D <= 1",
                       _order3(1), "seasonal order at the series' season length; None = searched (or none "
                                   "when `order` is fixed)")


class Arima(ModelSpec):
    """Gaussian (S)ARIMA on ``z = log(1 + y)``, its forecast discretised to counts.

    Notes
    -----
    z_t = log(1 + y_t);  φ(L)Φ(L^m)(1 - L)^d z_t = c + θ(L)Θ(L^m)ε_t, ε_t ~ N(0, σ²);
    the h-step forecast z_{T+h} ~ N(m_h, s_h²) is mapped to counts by rounding
    exp(z) - 1: P(Y = 0) = Φ((log 1.5 - m_h)/s_h) (all mass below 0.5) and
    P(Y = k) = Φ((log(k + 1.5) - m_h)/s_h) - Φ((log(k + 0.5) - m_h)/s_h).

    Order selection (``order=None``), after Hyndman & Khandakar's auto.arima:

    * d ∈ {0, 1} by the KPSS level test at 5% (:func:`kpss_differences`). No
      seasonal differencing (D = 0): with counts this small a seasonal
      difference mostly adds noise; seasonality enters through seasonal AR/MA
      terms instead.
    * Trend: d = 0 always has a constant c (SARIMAX ``trend="c"``); d = 1 tries
      with and without drift (``"c"`` on the differenced scale, ``"n"``), or
      as fixed by ``drift``.
    * Candidates compared by AICc, all with the same d (AICc of differently
      differenced series is not comparable). p ∈ 0..max_p, q ∈ 0..max_q;
      seasonal (P, Q) ∈ {0, 1}² at period m = ``Series.season_length`` only
      if ``seasonal`` and the series has at least 3 full seasons (3m periods).
    * ``stepwise=True`` (default): (1) every (p, q) without seasonal terms
      (with drift when d = 1 and ``drift`` is None); (2) if d = 1, the best of
      those without drift; (3) for the best so far, (P, Q) = (1, 0) and
      (0, 1), and (1, 1) only if one of these lowered the AICc. At most
      (max_p+1)(max_q+1) + 1 + 3 candidates, of which only the last three are
      seasonal ones. ``stepwise=False`` compares the full grid,
      (max_p+1)(max_q+1) × {(P, Q)} × {drift, none} candidates.
    * ``seasonal_order`` given with ``order=None``: p and q are searched with
      that seasonal part fixed (no seasonal stage).
    * The search's candidates are fitted by exact maximum likelihood with the
      mean (drift) and σ² concentrated out (:func:`arma_exact_llf`, the exact
      Gaussian likelihood of w = (1 - L)^d z through the Cholesky factor of its
      Toeplitz covariance; equal to SARIMAX's log-likelihood to ~1e-8 for d = 0
      and ~1e-5 for d = 1, whose SARIMAX uses an approximately diffuse start),
      about 3× cheaper per evaluation than a SARIMAX Kalman filter and with
      one parameter fewer for the optimiser. Only the winner is refitted with
      SARIMAX, which gives the reported fit; the runner-up (and so on, at most
      ``N_REFIT`` refits) is refitted too when the winner's SARIMAX fit fails,
      does not converge or ends with an AICc above the runner-up's, and the
      lowest SARIMAX AICc is kept.
    * Seasons longer than 12 periods (weekly data, m = 52): no seasonal ARMA
      terms (a 53-dimensional state and an n × n Cholesky per evaluation, ~15
      CPU-s a fit); instead K annual Fourier pairs sin(2πju), cos(2πju), j = 1..K,
      u the position in the year, enter as regressors (regression with ARIMA
      errors, z_t = x_t'β + η_t, η_t ARIMA). K ∈ {0, 1, 2} by the AICc of the
      least-squares regression of (1 - L)^d z on the terms (``fourier_k`` fixes
      it; ``seasonal=False`` or a given ``seasonal_order`` turns them off); the
      (p, q) search then runs on z less that regression, and the SARIMAX refit
      estimates β with the ARMA part.
    * The search ranks candidates on the last ``SEARCH_MAX`` = 260 values of a
      longer series (its cost grows with n³); the refit uses them all.
    * Cost, 108 months, m = 12: 1.2 s a series on average in
      benchmarks/bench_arima.py on a busy 2-core machine (3.0 s with a SARIMAX
      fit per candidate, as before); 156 weeks: 0.3 CPU-s a series (0.44 with the
      seasonal search), 528 weeks: 0.7 CPU-s (5.9), one BLAS thread.
    * Candidates that raise are skipped; an unconverged candidate is used
      only if no candidate converged (its AICc is not at its maximum
      likelihood, so not comparable), and then the fit is reported as
      unconverged, which sends the series down the fallback ladder.

    With ``order`` fixed there is no search: the given (p, d, q) and
    ``seasonal_order`` (default (0, 0, 0)) are fitted (drift chosen by AICc
    only if d = 1 and ``drift`` is None) with SARIMAX directly. The chosen
    ``order``, ``seasonal_order`` (P, D, Q) and ``drift`` are kept in the fit's
    ``state`` so a refit can reuse them, with ``candidates`` (order, seasonal
    order, trend, AICc of every candidate compared) and ``refits`` (SARIMAX
    fits the search needed).

    Every SARIMAX uses ``enforce_stationarity=True, enforce_invertibility=True,
    concentrate_scale=True`` and is fitted with L-BFGS (``maxiter=100``,
    ``disp=False``); ConvergenceWarnings are caught and reported in the
    fit's ``message``.

    The forecast family is a dense pmf on 0..K, K the smallest support leaving
    less than 1e-6 in the upper tail, capped at max(200, 10 × the largest
    count seen); the tail beyond K is 1 - row sum. The predictive mean and
    all other summaries come from that pmf, not from exp(m_h) - 1 (which is
    the median of exp(z) - 1, not its mean).

    ``loglik``, ``n_params`` (statsmodels' ``df_model``: coefficients + σ²)
    and the AIC are those of the Gaussian model of z, on the transformed
    scale: they are not comparable to the log-likelihoods of count models.
    A constant series (all zeros included) has no variance to model and
    falls back to ``climatology``.
    """

    name = "arima"
    handles_missing = True
    description = "ARIMA on log(1+y), orders by KPSS + AICc, discretised to a count pmf"
    fallbacks = (Climatology, Zero)
    params = (
        Param("seasonal", True, "a bool", lambda v: isinstance(v, (bool, np.bool_)),
              "search seasonal AR/MA terms (only with >= 3 full seasons)"),
        Param("max_p", 2, "an int >= 0", _int_ge0, "largest AR order searched"),
        Param("max_q", 2, "an int >= 0", _int_ge0, "largest MA order searched"),
        Param("stepwise", True, "a bool", lambda v: isinstance(v, (bool, np.bool_)),
              "seasonal terms only tried around the best non-seasonal model (see Notes)"),
        ORDER,
        SEASONAL_ORDER,
        Param("drift", None, "None or a bool", lambda v: v is None or isinstance(v, (bool, np.bool_)),
              "drift when d = 1; None = chosen by AICc"),
        Param("fourier_k", None, "None or an int in 0..6", lambda v: v is None or (_int_ge0(v) and v <= 6),
              "season longer than 12 periods (weekly data): annual Fourier pairs as regressors instead "
              "of seasonal ARMA terms; None = K in {0, 1, 2} by AICc"),
        )

    def _search(self, z: np.ndarray, d: int, m: int, seasonal_ok: bool, exog: np.ndarray | None = None,
                exog_coef: np.ndarray | None = None) -> tuple[list[dict], list[dict]]:
        """The order search (see the class Notes).

        With ``exog`` (Fourier regressors), orders are searched on z less the
        least-squares fit ``exog @ exog_coef`` and every SARIMAX fit is a
        regression with ARIMA errors on ``exog``.

        Returns the SARIMAX fits (``_fit_candidate`` dicts, in fitting order)
        and the candidates the search compared (``_search_candidate`` dicts,
        in search order; empty when the order is fixed).
        """
        xs = () if exog is None else (exog,)  # (the signature without exog when there is none)
        trends = ["c"] if d == 0 else (["c", "n"] if self.drift is None else ["c" if self.drift else "n"])
        fixed_seasonal = None
        if self.seasonal_order is not None:  # statsmodels wants period 0 when there is no seasonal term
            fixed_seasonal = (*tuple(self.seasonal_order), m if any(self.seasonal_order) else 0)
        if self.order is not None:
            so = fixed_seasonal or (0, 0, 0, 0)
            return [_fit_candidate(z, tuple(self.order), so, tr, *xs) for tr in trends], []
        search_seasonal = fixed_seasonal is None and bool(self.seasonal) and seasonal_ok
        kx = 0 if exog is None else exog.shape[1]
        w = np.diff(z - exog @ exog_coef if kx else z, n=d)
        # The exact likelihood costs O(n^3) (a Cholesky factor): a long series' orders are
        # ranked on its last SEARCH_MAX values; the SARIMAX refit uses every value.
        truncated = len(w) > SEARCH_MAX
        w = w[-SEARCH_MAX:]
        if fixed_seasonal and fixed_seasonal[1]:  # a fixed seasonal difference
            w = w[m:] - w[:-m]

        done: list[dict] = []

        def cand(o: tuple, so: tuple, tr: str) -> dict:
            done.append(_search_candidate(w, o, so, tr, _nested_start(done, o, so, tr)))
            return done[-1]

        searched = self._stepwise(cand, d, m, trends, fixed_seasonal, search_seasonal)
        # The winner (lowest AICc among converged candidates) is refitted by
        # SARIMAX. The runner-up is refitted too when that fit failed, did not
        # converge, or did not reach the runner-up's search AICc (the two
        # optimisers can end in different optima of a flat ARMA likelihood,
        # e.g. near-cancelling AR and MA roots), and so on down the ranking.
        ranked = sorted(searched, key=lambda c: (not c["converged"], c["aicc"]))
        tried: list[dict] = []
        for c in ranked[:N_REFIT]:
            done = [t["aicc"] for t in tried if t["converged"]]
            # (the refit's AICc also counts the 2K Fourier coefficients the search took as known)
            if done and (truncated or min(done) <= c["aicc"] + 2 * kx + 1e-6):
                break  # (a truncated search's AICc is on fewer values: not comparable)
            tried.append(_fit_candidate(z, c["order"], c["seasonal_order"], c["trend"], *xs))
        return tried, searched

    def _stepwise(self, cand, d: int, m: int, trends: list[str], fixed_seasonal: tuple | None,
                  search_seasonal: bool) -> list[dict]:
        """Candidates visited by the search (stepwise or the full grid), each fitted by ``cand``."""
        pq = [(p, d, q) for p in range(self.max_p + 1) for q in range(self.max_q + 1)]
        seasonals = [fixed_seasonal or (0, 0, 0, 0)]
        if not self.stepwise:
            if search_seasonal:
                seasonals += [(1, 0, 0, m), (0, 0, 1, m), (1, 0, 1, m)]
            return [cand(o, so, tr) for so in seasonals for tr in trends for o in pq]
        tried = [cand(o, seasonals[0], trends[0]) for o in pq]
        best = _best(tried)
        if best is None:
            return tried
        if len(trends) > 1:  # drift or not, for the best (p, d, q)
            tried.append(cand(best["order"], best["seasonal_order"], trends[1]))
            best = _best(tried)
        if search_seasonal:
            seas = [cand(best["order"], (P, 0, Q, m), best["trend"]) for P, Q in ((1, 0), (0, 1))]
            tried += seas
            if any(c["converged"] and c["aicc"] < best["aicc"] for c in seas):
                tried.append(cand(best["order"], (1, 0, 1, m), best["trend"]))
        return tried

    def _fit_series(self, s: Series) -> SeriesFit:
        from threadpoolctl import threadpool_limits

        # The search's small Cholesky factors and SARIMAX filters gain nothing from a
        # multithreaded BLAS, and on a shared machine its threads cost several times the
        # CPU (measured: 11.9 against 0.3 CPU-s a weekly series with 156 weeks).
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit_one(s)

    def _fit_one(self, s: Series) -> SeriesFit:
        y = np.asarray(s.y)
        n, m = len(y), s.season_length
        z = np.log1p(y.astype(float))
        if s.observed is not None and not s.observed.all():
            # Missing periods are NaN: the state space skips them (SARIMAX), the search leaves them out.
            z[~np.asarray(s.observed, dtype=bool)] = np.nan
            y = y[np.asarray(s.observed, dtype=bool)]
        if len(y) < MIN_OBS:
            raise FitFailure(f"needs at least {MIN_OBS} periods, has {len(y)}"
                             + (" observed" if len(y) < n else ""))
        if (y == y[0]).all():
            raise FitFailure(f"constant series (every count is {int(y[0])}): log(1 + y) has zero variance")
        if self.order is None:  # (KPSS on the observed values, in order)
            d, kpss_stat = kpss_differences(z[np.isfinite(z)])
        else:
            d, kpss_stat = int(self.order[1]), float("nan")
        k, coef = 0, np.empty(0)
        if m > FOURIER_MIN_SEASON and self.seasonal and self.seasonal_order is None:
            # A 52-lag seasonal ARMA needs 3 years and ~15 CPU-s a fit; a few annual
            # Fourier pairs carry a smooth season at the cost of a regression.
            u = s.freq.year_fraction(s.ds)
            k, coef = choose_fourier_k(z, u, d, FOURIER_KS if self.fourier_k is None else (self.fourier_k,))
        F, F1 = _fourier_exog(s, k, 1)
        ok = m <= FOURIER_MIN_SEASON and m > 1 and n >= 3 * m
        tried, searched = (self._search(z, d, m, ok) if F is None else
                           self._search(z, d, m, ok, exog=F, exog_coef=coef))
        best = _best(tried)
        if best is None:
            errors = sorted({c["error"] for c in tried + searched if c["error"]})
            raise FitFailure("every candidate order failed (" + "; ".join(errors[:3]) + ")")
        return self._series_fit(z, best, tried, searched, d, kpss_stat, m, F, F1)

    def _series_fit(self, z: np.ndarray, best: dict, tried: list[dict], searched: list[dict], d: int,
                    kpss_stat: float, m: int, F: np.ndarray | None = None, F1: np.ndarray | None = None
                    ) -> SeriesFit:
        k = 0 if F is None else F.shape[1] // 2
        res = _sarimax(z, best["order"], best["seasonal_order"], best["trend"], F).filter(best["params"],
                                                                                         cov_type="opg")
        one = res.get_forecast(1, exog=F1 if k else None)
        if not (np.isfinite(one.predicted_mean).all() and (np.asarray(one.var_pred_mean) > 0).all()):
            # checked here because a forecast cannot fall back: the ladder runs at fit time
            raise FitFailure(f"the chosen ARIMA{best['order']} gives no finite forecast variance")
        coef = {name: (float(v), float(se)) for name, v, se in zip(res.param_names, res.params, res.bse)}
        if "sigma2" not in coef:
            coef["sigma2"] = (_scale(res), float("nan"))  # concentrated out: no standard error
        # With a search, its candidates are the ones counted (the SARIMAX refit is one of them).
        compared = searched or tried
        n_failed = sum(bool(c["error"]) for c in compared)
        n_unconv = sum(not c["converged"] and not c["error"] for c in compared)
        msg = [f"ARIMA{best['order']}{best['seasonal_order'][:3]}"
               + (f"[{m}]" if any(best["seasonal_order"][:3]) else "")
               + {"c": " with constant" if d == 0 else " with drift", "n": ""}[best["trend"]]
               + (f" + {k} annual Fourier pair(s)" if k else "")
               + f", AICc {best['aicc']:.2f} (of {len(compared)} candidates"
               + (f", {n_failed} failed" if n_failed else "")
               + (f", {n_unconv} unconverged" if n_unconv else "") + ")"]
        if best["warnings"]:
            msg.append("ConvergenceWarning: " + "; ".join(best["warnings"]))
        state = {"order": tuple(best["order"]), "seasonal_order": tuple(best["seasonal_order"][:3]),
                 "period": int(best["seasonal_order"][3]), "trend": best["trend"],
                 "drift": None if d == 0 else best["trend"] == "c", "params": best["params"],
                 "kpss_stat": kpss_stat, "aicc": best["aicc"],
                 "candidates": [(c["order"], c["seasonal_order"], c["trend"], c["aicc"]) for c in compared],
                 "refits": len(tried) if searched else 0, "fourier_k": k}
        n_obs = int(res.nobs_effective) - int(np.isnan(z[int(res.loglikelihood_burn):]).sum())
        return SeriesFit(self, converged=best["converged"], loglik=float(res.llf), n_params=int(res.df_model),
                         n_obs=n_obs, coef=coef, state=state, message="; ".join(msg))

    def _forecast_series(self, fit: SeriesFit, s: Series, h: int, future, rng) -> SeriesForecast:
        F, Ff = _fourier_exog(s, fit.state.get("fourier_k", 0), h)
        mean, sd = z_forecast(fit, s.y, h, F, Ff, observed=s.observed)
        # The mean cap of every model, on the log scale: the back-transformed median
        # exp(mean) - 1 stays at or below MEAN_CAP_FACTOR x max(largest count, 1).
        top = np.log1p(mean_cap(s.y))
        if np.any(mean > top):
            note_capped(s.uid)
            mean = np.minimum(mean, top)
        k_cap = int(max(200, 10 * int(np.max(s.y, initial=0))))
        return SeriesForecast("pmf", pmf=log1p_gaussian_pmf(mean, sd, k_cap))
