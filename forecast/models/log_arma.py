"""A fixed-order ARIMA on log(1 + y), fitted for every series at once: the fast ARMA member of ``auto``.

The same model and count mapping as :class:`~forecast.models.arima.Arima` with a fixed
order and no search, but estimated by one Kalman filter vectorised over the series
(:mod:`forecast.models._armabatch`) instead of one statsmodels fit per series.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from forecast.models._armabatch import Arma, fit_arma_pair, forecast_state, kalman, pacf_to_coef
from forecast.models._arma import choose_fourier_k, fourier_matrix, log1p_gaussian_pmf
from forecast.models.base import FitFailure, ModelSpec, Param, Series, SeriesFit, SeriesForecast
from forecast.models.baselines import Climatology, Zero
from forecast.models.guard import mean_cap, note_capped

#: Shortest series (observed periods) fitted.
MIN_OBS = 10
#: Series fitted together in one filter run (bounds the memory of the start grid).
CHUNK = 256
#: Up to this many series of one length share a run whatever their Fourier order.
MIX_MAX = 64


def _order_ok(v: Any) -> bool:
    return (isinstance(v, (tuple, list)) and len(v) == 3
            and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in v)
            and 0 <= v[0] <= 2 and 0 <= v[1] <= 1 and 0 <= v[2] <= 2)


def _k_ok(v: Any) -> bool:
    return v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 6)


def _max_k(m: int) -> int:
    """Most Fourier pairs a season of m periods can carry (K < m/2, so no column is all zero)."""
    return max(0, (m - 1) // 2)


def _batches(members: list[int], ks: dict[int, int]) -> list[list[int]]:
    """Series (of one length) fitted together: all of them when few (a filter run then costs
    mostly a fixed overhead per period, so one run for every Fourier order beats one per
    order), else one batch per Fourier order, in chunks of ``CHUNK``."""
    if len(members) <= MIX_MAX:
        return [members]
    by_k: dict[int, list[int]] = {}
    for i in members:
        by_k.setdefault(ks[i], []).append(i)
    return [g[c0:c0 + CHUNK] for g in by_k.values() for c0 in range(0, len(g), CHUNK)]


def _stack_designs(mats: list[np.ndarray], fill: float) -> np.ndarray:
    """(rows, c_i) matrices stacked into (S, rows, max c_i), the missing columns ``fill``."""
    c = max(m.shape[1] for m in mats)
    out = np.full((len(mats), mats[0].shape[0], c), fill)
    for j, m in enumerate(mats):
        out[j, :, :m.shape[1]] = m
    return out


def _warm_start(warm: dict | None, s: Series, k: int, order: tuple[int, int, int]) -> np.ndarray | None:
    """Start values (2, p + q) for a refit of ``s``: where the earlier fit's two Newton ascents
    ended; None (a cold start) without a usable earlier fit: none, a fallback, not converged,
    another order, or another number of Fourier pairs (other columns)."""
    f = warm.get(s.uid) if warm else None
    if f is None or f.fallback != "none" or not f.converged:
        return None
    st = f.state
    if st.get("x_alt") is None or st.get("fourier_k") != k or tuple(st.get("order", ())) != order:
        return None
    return np.stack([np.asarray(st["x"], dtype=float), np.asarray(st["x_alt"], dtype=float)])


class LogArma(ModelSpec):
    """Gaussian ARIMA(p, d, q) on ``z = log(1 + y)`` with annual Fourier terms, fitted in batch.

    Notes
    -----
    z_t = x_t'β + η_t, (1 - L)^d η_t = w_t, φ(L) w_t = θ(L) ε_t, ε_t ~ N(0, σ²); x_t holds a
    constant when d = 0, a time index when d = 1 and ``drift``, and K annual Fourier pairs
    sin(2πju), cos(2πju), j = 1..K (u the position in the year) when ``seasonal`` and the
    season has more than 2 periods; the h-step forecast N(m_h, s_h²) of z is mapped to a
    count pmf as in :class:`~forecast.models.arima.Arima` (rounding exp(z) - 1).

    The order is fixed (default (1, 1, 1); p, q ≤ 2, d ≤ 1): no search. K ∈ {0, 1, 2}
    (at most (m - 1)/2) by the AICc of the least-squares regression of (1 - L)^d z on the
    terms, as ``arima`` chooses it (``fourier_k`` fixes it). The parameters are exact
    Gaussian maximum likelihood with β and σ² profiled out, the same likelihood as
    statsmodels' SARIMAX with that order, exog and ``concentrate_scale`` (d = 1: the
    diffuse likelihood after the first observed value), maximised from a grid of starts
    by damped Newton steps — for all series of the same length at once, so a panel costs
    about as much as a handful of SARIMAX fits. Missing periods are skipped by the filter
    (not read as zeros); a missing last value is forecast. A series with fewer than 10
    observed values or a constant one falls back (``climatology``, then the long-run rate).
    In a backtest a refit starts Newton where the previous origin's two ascents ended
    (``warm_starts``; no grid): the same maxima, to the solver's tolerance, in fewer filter runs.
    ``loglik`` is that of the Gaussian model of z, not comparable with count models'.
    """

    name = "log_arma"
    handles_missing = True
    draws = False
    description = "ARIMA(1,1,1) on log(1+y) with annual Fourier terms, batched, discretised to a count pmf"
    fallbacks = (Climatology, Zero)
    params = (
        Param("order", (1, 1, 1), "a tuple (p, d, q) of ints with p, q in 0..2 and d in 0..1", _order_ok,
              "ARIMA order (fixed: no search)"),
        Param("seasonal", True, "a bool", lambda v: isinstance(v, (bool, np.bool_)),
              "annual Fourier pairs as regressors (seasons of more than 2 periods)"),
        Param("fourier_k", None, "None or an int in 0..6", _k_ok,
              "Fourier pairs; None = K in {0, 1, 2} by AICc, per series"),
        Param("drift", False, "a bool", lambda v: isinstance(v, (bool, np.bool_)),
              "a linear drift of z when d = 1 (off: a drift of log counts extrapolates without bound)"),
    )

    # -- design ---------------------------------------------------------------------------
    def _prepare(self, s: Series) -> tuple[np.ndarray, int]:
        """z with NaN at missing periods, and the number of Fourier pairs K (raises FitFailure)."""
        y = np.asarray(s.y)
        seen = s.observed_mask()
        yo = y[seen]
        if len(yo) < MIN_OBS:
            raise FitFailure(f"needs at least {MIN_OBS} observed periods, has {len(yo)}")
        if (yo == yo[0]).all():
            raise FitFailure(f"constant series (every count is {int(yo[0])}): log(1 + y) has zero variance")
        z = np.where(seen, np.log1p(y.astype(float)), np.nan)
        d, m = int(self.order[1]), s.season_length
        kmax = _max_k(m) if self.seasonal else 0
        if not kmax:
            return z, 0
        if self.fourier_k is not None:
            return z, min(int(self.fourier_k), kmax)
        ks = tuple(k for k in (0, 1, 2) if k <= kmax)
        return z, choose_fourier_k(z, s.freq.year_fraction(s.ds), d, ks)[0]

    def _design(self, s: Series, k: int, start: int, n: int) -> np.ndarray:
        """Regressors of periods start..start + n - 1 of the series (0 = its first period)."""
        d = int(self.order[1])
        cols = []
        if d == 0:
            cols.append(np.ones(n))
        elif self.drift:
            cols.append(np.arange(start, start + n, dtype=float))
        if k:
            ds = s.ds if start == 0 else s.future_ds(n)
            cols.append(fourier_matrix(s.freq.year_fraction(ds), k))
        return np.column_stack(cols) if cols else np.empty((n, 0))

    def _names(self, k: int) -> list[str]:
        d = int(self.order[1])
        names = ["const"] if d == 0 else (["drift"] if self.drift else [])
        return names + [f"{f}{j}" for j in range(1, k + 1) for f in ("sin", "cos")]

    # -- fitting --------------------------------------------------------------------------
    def _fit_series(self, s: Series) -> SeriesFit:
        out = self._try_fit_many([s])[0]
        if isinstance(out, FitFailure):
            raise out
        return out

    #: ``fit_data(..., warm=)`` starts Newton at both ends of an earlier fit's two ascents (backtests)
    warm_starts: ClassVar[bool] = True

    def _try_fit_many(self, series: list[Series], warm: dict | None = None) -> list[SeriesFit | FitFailure]:
        """Every series of the same length and Fourier order in one batched fit; ``warm``
        (unique_id -> earlier fit) gives start values (see :func:`_warm_start`)."""
        from threadpoolctl import threadpool_limits

        # Thousands of tiny batched solves: a multithreaded BLAS only adds thread overhead
        # (measured: 13x the wall time on a busy 2-core machine).
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit_all(series, warm)

    def _fit_all(self, series: list[Series], warm: dict | None = None) -> list[SeriesFit | FitFailure]:
        p, d, q = (int(v) for v in self.order)
        model = Arma(p, d, q)
        out: list[SeriesFit | FitFailure | None] = [None] * len(series)
        by_n: dict[int, list[int]] = {}
        zs: dict[int, np.ndarray] = {}
        ks: dict[int, int] = {}
        for i, s in enumerate(series):
            try:
                zs[i], ks[i] = self._prepare(s)
            except FitFailure as exc:
                out[i] = exc
                continue
            by_n.setdefault(len(s.y), []).append(i)
        for n, members in by_n.items():
            for idx in _batches(members, ks):
                z = np.stack([zs[i] for i in idx])
                X = _stack_designs([self._design(series[i], ks[i], 0, n) for i in idx], np.nan)
                starts = [_warm_start(warm, series[i], ks[i], (p, d, q)) for i in idx]
                hot = np.array([st is not None for st in starts])
                st = None
                if hot.any():  # (series without a usable earlier fit: NaN rows, started cold)
                    st = np.stack([np.full((2, model.k), np.nan) if v is None else v for v in starts])
                x, conv, res, alt = fit_arma_pair(model, z, X, st)
                fits: list = [(x, conv, res, alt, j) for j in range(len(idx))]
                redo = np.flatnonzero(hot & ~conv)
                if len(redo):  # a warm ascent that did not converge is redone cold
                    x, conv, res, alt = fit_arma_pair(model, z[redo], X[redo])
                    for r, j in enumerate(redo):
                        fits[j] = (x, conv, res, alt, r)
                for j, i in enumerate(idx):
                    x, conv, res, alt, r = fits[j]
                    out[i] = self._series_fit(model, ks[i], x[r], bool(conv[r]), res, r, alt[r])
        return out  # type: ignore[return-value]

    def _series_fit(self, model: Arma, k: int, x: np.ndarray, converged: bool, res, j: int,
                    alt: np.ndarray) -> SeriesFit | FitFailure:
        llf, sigma2 = float(res.llf[j]), float(res.sigma2[j])
        if not (np.isfinite(llf) and sigma2 > 1e-12):
            return FitFailure("no finite Gaussian likelihood (zero innovation variance)")
        phi = pacf_to_coef(x[None, :model.p])[0]
        theta = -pacf_to_coef(x[None, model.p:])[0]
        beta = res.beta[j][:len(self._names(k))]  # (less the absent columns of a mixed batch)
        nan = float("nan")
        coef = {f"ar.L{i + 1}": (float(v), nan) for i, v in enumerate(phi)}
        coef.update({f"ma.L{i + 1}": (float(v), nan) for i, v in enumerate(theta)})
        coef.update({nm: (float(b), nan) for nm, b in zip(self._names(k), beta)})
        coef["sigma2"] = (sigma2, nan)
        p, d, q = model.p, model.d, model.q
        msg = f"ARIMA({p},{d},{q})" + (f" + {k} annual Fourier pair(s)" if k else "")
        if not converged:
            msg += "; the likelihood maximisation did not converge"
        state = {"x": x, "x_alt": alt, "beta": beta, "sigma2": sigma2, "fourier_k": k, "order": (p, d, q)}
        fit = SeriesFit(self, converged=converged, loglik=llf, n_params=len(x) + len(beta) + 1,
                        n_obs=int(res.n[j]) + d, coef=coef, state=state, message=msg)
        fit.engine = "batched"
        return fit

    # -- forecasting ----------------------------------------------------------------------
    def _forecast_series(self, fit: SeriesFit, s: Series, h: int, future, rng) -> SeriesForecast:
        return self._forecast_many([fit], [s], h, future, 0)[0]

    def _forecast_many(self, fits: list[SeriesFit], series: list[Series], h: int, future,
                       seed: int) -> list[SeriesForecast]:
        """The stored parameters re-filtered through each series' data (which may be newer
        than the fit's, see ``FittedModel.update``), series of one length and K together."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return self._forecast_all(fits, series, h)

    def _forecast_all(self, fits: list[SeriesFit], series: list[Series], h: int) -> list[SeriesForecast]:
        p, d, q = (int(v) for v in self.order)
        model = Arma(p, d, q)
        out: list[SeriesForecast | None] = [None] * len(series)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (f, s) in enumerate(zip(fits, series)):
            groups.setdefault((len(s.y), int(f.state["fourier_k"])), []).append(i)
        for (n, k), idx in groups.items():
            z = np.stack([np.where(series[i].observed_mask(), np.log1p(series[i].y.astype(float)), np.nan)
                          for i in idx])
            X = np.stack([self._design(series[i], k, 0, n) for i in idx])
            x = np.stack([fits[i].state["x"] for i in idx]).reshape(len(idx), model.k)
            beta = np.stack([fits[i].state["beta"] for i in idx]).reshape(len(idx), X.shape[2])
            with np.errstate(all="ignore"):
                res = kalman(model, x, z, X, beta=beta)
            eta, var = forecast_state(model, x, res.a, res.P, h)
            for j, i in enumerate(idx):
                s, fit = series[i], fits[i]
                mean = eta[j] + self._design(s, k, n, h) @ fit.state["beta"]
                sd = np.sqrt(var[j] * fit.state["sigma2"])
                top = np.log1p(mean_cap(s.y))  # the mean cap, on the log scale (as arima's)
                if np.any(mean > top):
                    note_capped(s.uid)
                    mean = np.minimum(mean, top)
                k_cap = int(max(200, 10 * int(np.max(s.y, initial=0))))
                out[i] = SeriesForecast("pmf", pmf=log1p_gaussian_pmf(mean, sd, k_cap))
        return out  # type: ignore[return-value]
