"""Log-linear count GLMs: ``poisson_glm`` and ``negbin_glm`` (NB2).

Both share one design (:mod:`forecast.models.design`: intercept, trend,
seasonality, lags of log(1 + y), exogenous columns, interventions, exposure
offset) and one implementation; they differ only in the family and in the
solver (:func:`~forecast.models._glmfit.fit_poisson` or
:func:`~forecast.models._glmfit.fit_negbin`, which estimates the NB2 dispersion
by maximum likelihood, never statsmodels' silent alpha = 1).

Fallback ladder (per series, recorded in ``diagnostics()``)
-----------------------------------------------------------
own fit -> ``penalised`` (same spec, ridge ``penalty = 1.0``; only when the
spec's penalty is 0) -> for NB ``poisson_glm`` (same design, the penalty of the
previous rung: whatever made the NB fits fail, an unpenalised Poisson fit on the
same design would separate or alias the same way) -> ``climatology`` ->
``zero``. A rung fails on: too few rows (n_obs <= number of columns),
separation, all-zero counts, rank deficiency (unpenalised only), no convergence,
or explosive lag coefficients (sum >= 1).

Explosive lags are caught at fit time (``converged = False``, "explosive lag coefficients
(sum = ...)", the ladder moves on), so a fitted model forecasts with the model that
``diagnostics()`` names. Forecast means are capped at ``1e4 * max(history, 1)`` (a
:class:`~forecast.exceptions.ForecastWarning` says so).
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from forecast.models._glmbatch import fit_batch
from forecast.models._glmsim import simulate_series
from forecast.models._glmglue import (_BatchCoef, _BatchRows, _check_future, _named_columns, in_sample_eta,
                                      pathmix, simulate_many)
from forecast.models._missing import lag_window
from forecast.models._neighbourjoint import NeighbourTerms, joint_forecast
from forecast.models._neighbours import NEIGHBOUR_PARAMS
from forecast.models._trend import EXTRAPOLATION_NOTE
from forecast.models._warm import start_values
from forecast.models._glmfit import boundary_note, fit_negbin, fit_poisson
from forecast.models.base import (PENALTY_FALLBACK, FitFailure, ModelSpec, Param, Series, SeriesFit,
                                  SeriesForecast, batching, non_negative, positive_int)
from forecast.models.baselines import Climatology, Zero
from forecast.models.series import count_summaries
from forecast.models.design import (
    MEAN_CAP_FACTOR,
    DesignSpec,
    build_design,
    build_design_batch,
    capped_mean,
    check_design_columns,
    design_params,
    future_design,
    group_by_periods,
    lag_values,
)

#: Series per batched solve (bounds memory: S x n x p floats per stacked design).
BATCH_SIZE = 2000


GLM_PARAMS: tuple[Param, ...] = (
    *design_params(trend="none", seasonality="month", fourier_k=2),
    Param("penalty", 0.0, "a float >= 0", non_negative, "ridge weight on every coefficient but the intercept"),
    Param("n_paths", 1000, "an int >= 1", positive_int, "sample paths for multi-step forecasts with lags"),
    *NEIGHBOUR_PARAMS,
)


class _LogLinearGLM(NeighbourTerms, ModelSpec):
    """Shared implementation of the Poisson and NB2 GLMs (see the subclasses)."""

    params = GLM_PARAMS
    family: ClassVar[str] = "poisson"

    def required_columns(self) -> tuple[str, ...]:
        return tuple(self.exog or ()) + ((self.exposure,) if self.exposure else ())

    def check_panel(self, panel: pd.DataFrame) -> None:
        """Exogenous and exposure columns must be finite (exposure > 0)."""
        check_design_columns(panel, DesignSpec.from_params(self.get_params()))

    def fallback_specs(self) -> list[tuple[str, ModelSpec]]:
        rungs: list[tuple[str, ModelSpec]] = []
        penalty = self.penalty
        if penalty == 0:
            penalty = PENALTY_FALLBACK
            rungs.append(("penalised", self.clone().set_params(penalty=penalty)))
        if self.family == "negbin":
            rungs.append(("poisson_glm", PoissonGLM(**{**self.get_params(), "penalty": penalty})))
        return rungs + [(cls.name, cls._fallback_from(self)) for cls in (Climatology, Zero)]

    # fitting ------------------------------------------------------------------------
    def _fit_series(self, s: Series) -> SeriesFit:
        d = build_design(DesignSpec.from_params(self.get_params()), s)
        names, keep = d.names, d.keep
        X, y, offset = d.X[:, keep], d.y, d.offset
        if d.rows is not None:  # missing periods: only rows whose count and lags are observed
            X, y, offset = X[d.rows], y[d.rows], offset[d.rows]
        n, p = X.shape
        if n <= p:
            raise FitFailure(f"too few rows: {n} observation(s) for {p} column(s)")
        nb = self.family == "negbin"
        with np.errstate(all="ignore"):
            g = (fit_negbin if nb else fit_poisson)(X, y, offset, penalty=float(self.penalty))
        kept_names = [nm for nm, k in zip(names, keep) if k]
        beta, se = np.full(len(names), np.nan), np.full(len(names), np.nan)
        beta[keep], se[keep] = g.coef, g.std_error
        cov = np.full((len(names), len(names)), np.nan)
        cov[np.ix_(keep, keep)] = g.cov
        converged = bool(g.converged) and "rank-deficient" not in g.message
        # (aliased columns have no estimate: let the penalised rung resolve them)
        return self._series_fit(names, keep, d.lag_cols, beta, se, cov, float(g.alpha), float(g.alpha_se),
                                float(g.loglik), int(g.n_obs), converged,
                                _named_columns(g.message, kept_names) if g.message else "")

    def _series_fit(self, names, keep, lag_cols, beta, se, cov, alpha, alpha_se, loglik, n_obs, converged,
                    solver_note: str) -> SeriesFit:
        """The fitted series (per-series or batched solver alike): coefficients, notes, lag check."""
        nb = self.family == "negbin"
        coef = dict(zip(names, zip(beta.tolist(), se.tolist())))
        if nb:
            coef["alpha"] = (alpha, alpha_se)
        notes = [f"ridge penalty {self.penalty:g} (penalised, Bayesian-style SEs)"] if self.penalty > 0 else []
        if solver_note:
            notes.append(solver_note)
        if self.trend == "linear":
            notes.append(EXTRAPOLATION_NOTE)
        lag_sum = float(np.sum(beta[list(lag_cols)])) if lag_cols else 0.0
        if converged and lag_sum >= 1:
            converged = False
            notes.insert(int(self.penalty > 0), f"explosive lag coefficients (sum = {lag_sum:.4g} >= 1): the "
                         "conditional mean of a log-linear count AR can then grow without bound")
        if keep.all():  # the batched case: nothing dropped
            n_kept = len(names)
        else:
            dropped = [nm for nm, k in zip(names, keep) if not k]
            notes.append(f"no information in the fit window for {', '.join(dropped)}: column(s) dropped, "
                         "coefficient reported as NaN and taken as 0 in forecasts")
            beta, n_kept = np.where(keep, beta, 0.0), int(keep.sum())
        state = {"beta": beta, "alpha": alpha if nb else 0.0, "cov": cov, "names": names, "lag_sum": lag_sum}
        return SeriesFit(self, converged=converged, loglik=loglik, n_params=n_kept + int(nb),
                         n_obs=n_obs, coef=coef, state=state, message="; ".join(notes))

    #: ``fit_data(..., warm=)`` starts the batched solver from an earlier fit (backtests)
    warm_starts: ClassVar[bool] = True

    def _try_fit_many(self, series: list[Series], warm: dict | None = None) -> list[SeriesFit | FitFailure]:
        """Batched solver for every group of series sharing their periods; series the batch
        hands back (see :mod:`~forecast.models._glmbatch`) are fitted one by one. ``warm``
        (unique_id -> earlier fit) gives start values (:mod:`~forecast.models._warm`)."""
        if not batching():
            return super()._try_fit_many(series)
        out: list[SeriesFit | FitFailure | None] = [None] * len(series)
        handed_back: dict[int, str] = {}
        dspec = DesignSpec.from_params(self.get_params())
        nb = self.family == "negbin"
        for group in group_by_periods(series):
            for chunk in range(0, len(group), BATCH_SIZE):
                idx = group[chunk:chunk + BATCH_SIZE]
                d = build_design_batch(dspec, [series[i] for i in idx])
                full = d.keep.all(axis=1)
                b0, a0 = start_values(warm, [series[i] for i in idx], d.names, nb)
                res = (fit_batch(d, d.y, d.offset, penalty=float(self.penalty), nb=nb, rows=d.rows, start=b0,
                                 alpha_start=a0) if full.any() else None)
                rows = _BatchRows(res, d, nb) if res is not None else None
                for j, i in enumerate(idx):
                    if res is not None and j in res.diverging:  # separation: this rung fails, as alone
                        out[i] = self._separated(d, j, res)
                        continue
                    if res is None or not (full[j] and res.ok[j]):
                        handed_back[i] = ("a column without information in the fit window" if not full[j]
                                          else "the batched solver handed it back")
                        continue
                    out[i] = self._batched_fit(d, j, res, rows)
        rest = [i for i in range(len(series)) if out[i] is None]
        for i, res in zip(rest, super()._try_fit_many([series[i] for i in rest])):
            if isinstance(res, SeriesFit) and i in handed_back:
                res.engine = f"per-series ({handed_back[i]})"
            out[i] = res
        return out  # type: ignore[return-value]

    def _batched_fit(self, d, j: int, res, rows: "_BatchRows") -> SeriesFit:
        """:meth:`_series_fit` for row j of a clean batched solve, without per-series array work."""
        nb = self.family == "negbin"
        notes = []
        if self.penalty > 0:
            notes.append(f"ridge penalty {self.penalty:g} (penalised, Bayesian-style SEs)")
        if nb and res.boundary[j]:
            notes.append(boundary_note(res.score0[j]))
        if self.trend == "linear":
            notes.append(EXTRAPOLATION_NOTE)
        alpha = float(res.alpha[j])
        lag_sum = rows.lag_sum[j]
        converged = True
        if lag_sum >= 1:
            converged = False
            notes.insert(int(self.penalty > 0), f"explosive lag coefficients (sum = {lag_sum:.4g} >= 1): the "
                         "conditional mean of a log-linear count AR can then grow without bound")
        state = {"beta": res.coef[j], "alpha": alpha if nb else 0.0, "cov": res.cov[j], "names": d.names,
                 "lag_sum": lag_sum}
        fit = SeriesFit(self, converged=converged, loglik=rows.loglik[j], n_params=len(d.names) + int(nb),
                        n_obs=rows.n_obs[j], coef=_BatchCoef(rows, j), state=state, message="; ".join(notes))
        fit.engine = "batched"
        return fit

    def _separated(self, d, j: int, res) -> SeriesFit:
        """The failed fit of a separated series, with the per-series solver's message."""
        div = res.diverging[j]
        word = "coefficient of column" if div.size == 1 else "coefficients of columns"
        verb = "diverges" if div.size == 1 else "diverge"
        notes = [f"separation: {word} {', '.join(map(str, div))} {verb} (mu -> 0 where y = 0); the MLE "
                 "does not exist, use penalty > 0"]
        if self.family == "negbin" and res.boundary[j]:
            notes.append(boundary_note(res.score0[j]))
        cov = res.cov[j].copy()
        cov[div, :] = np.nan
        cov[:, div] = np.nan
        fit = self._series_fit(d.names, d.keep[j], d.lag_cols, res.coef[j], np.sqrt(np.diag(cov)), cov,
                               float(res.alpha[j]), float(res.alpha_se[j]), float(res.loglik[j]),
                               d.y.shape[1] if d.rows is None else int(d.rows[j].sum()),
                               False, _named_columns("; ".join(notes), list(d.names)))
        fit.engine = "batched"
        return fit

    # forecasting ------------------------------------------------------------------------
    def _forecast_series(self, fit: SeriesFit, s: Series, h: int, future: pd.DataFrame | None,
                         rng: np.random.Generator) -> SeriesForecast:
        dspec = DesignSpec.from_params(self.get_params())
        _check_future(dspec, future, s.uid)
        X, offset, lag_cols = future_design(dspec, s, h, future)
        beta, alpha = fit.state["beta"], fit.state["alpha"]
        cap = MEAN_CAP_FACTOR * max(int(s.y.max(initial=0)), 1)
        eta = X @ beta + offset  # lag columns are 0 here; their part is added below
        if self.neighbour_lags:  # outside a joint simulation (h = 1, or a forecast-time refit)
            eta = eta + self._neighbour_eta(fit, s, h)
        if dspec.lags:
            gamma = beta[list(lag_cols)]
            # Missing counts among the lags the forecast reads are simulated forward (paths).
            gap = lag_window(s.observed, dspec.lags)
            if h == 1 and not gap:
                eta = eta + lag_values(s.y.astype(float), dspec.lags) @ gamma
            else:
                pre = in_sample_eta(dspec, s, beta, gap) if gap else None
                paths, mus = self._simulate(eta, gamma, dspec.lags, s, alpha, cap, rng, pre)
                return pathmix(paths, mus, alpha)
        mu = capped_mean(np.exp(eta), cap, s.uid)
        if self.family == "negbin":
            return SeriesForecast("negbin", mu=mu, alpha=np.full(h, alpha))
        return SeriesForecast("poisson", mu=mu)

    def _forecast_many(self, fits: list[SeriesFit], series: list[Series], h: int, future: pd.DataFrame | None,
                       seed: int) -> list[SeriesForecast]:
        """Batched over series sharing their periods (same arithmetic as :meth:`_forecast_series`,
        the same per-series random streams); covariates and exposure go per series."""
        dspec = DesignSpec.from_params(self.get_params())
        if self.neighbour_lags and h > 1:
            joint = joint_forecast([s.uid for s in series])
            if joint is not None:  # simulated with every neighbour (NeighbourFitted.forecast)
                return joint
        if dspec.needed_columns() or not batching() or (self.neighbour_lags and h > 1):
            return super()._forecast_many(fits, series, h, future, seed)
        out: list[SeriesForecast | None] = [None] * len(series)
        # Series whose last lags are missing simulate them first: per series.
        gaps = ([i for i, s in enumerate(series) if s.observed is not None and lag_window(s.observed, dspec.lags)]
                if dspec.lags else [])
        if gaps:
            for i, f in zip(gaps, super()._forecast_many([fits[i] for i in gaps], [series[i] for i in gaps],
                                                          h, future, seed)):
                out[i] = f
        rest = [i for i in range(len(series)) if out[i] is None]
        for sub in group_by_periods([series[i] for i in rest]):
            idx = [rest[k] for k in sub]
            group = [series[i] for i in idx]
            X, offset, lag_cols = future_design(dspec, group[0], h, None)
            B = np.stack([fits[i].state["beta"] for i in idx])
            alpha = np.array([fits[i].state["alpha"] for i in idx])
            caps = MEAN_CAP_FACTOR * np.maximum(count_summaries(group)[0], 1)
            eta = B @ X.T + offset  # (S, h); lag columns are 0 here
            if self.neighbour_lags:  # h = 1 here: the neighbours' last counts are known
                eta = eta + np.stack([self._neighbour_eta(fits[i], series[i], h) for i in idx])
            if dspec.lags and h > 1:
                paths, mus = simulate_many(eta, B[:, list(lag_cols)], dspec.lags, group, alpha, caps, seed,
                                           self.n_paths)
                for j, i in enumerate(idx):
                    out[i] = pathmix(paths[j], mus[j], alpha[j])
                continue
            if dspec.lags:
                L = dspec.max_lag
                Y = np.stack([s.y[-L:] for s in group]).astype(float)
                eta = eta + np.einsum("sl,sl->s", lag_values(Y, dspec.lags), B[:, list(lag_cols)])[:, None]
            mu = np.exp(eta)
            over = np.flatnonzero(np.any(mu > caps[:, None], axis=1))  # (checked once for the group)
            for j in over.tolist():
                mu[j] = capped_mean(mu[j], caps[j], group[j].uid)
            if self.family == "negbin":
                alphas = np.repeat(alpha[:, None], h, axis=1)
                for j, i in enumerate(idx):
                    out[i] = SeriesForecast("negbin", mu=mu[j], alpha=alphas[j])
            else:
                for j, i in enumerate(idx):
                    out[i] = SeriesForecast("poisson", mu=mu[j])
        return out

    def _simulate(self, eta: np.ndarray, gamma: np.ndarray, lags: tuple[int, ...], s: Series, alpha: float,
                  cap: float, rng: np.random.Generator, pre: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Sample paths of one series (see :func:`forecast.models._glmsim.simulate_series`)."""
        return simulate_series(self.n_paths, eta, gamma, lags, s, alpha, cap, rng, pre)


class PoissonGLM(_LogLinearGLM):
    """Poisson log-linear GLM with trend, seasonality, lags, covariates and interventions.

    Parameters
    ----------
    trend : {"none", "damped", "linear"}, default "none"
        "damped" estimates the trend like "linear" but holds it at the last training
        period in forecasts (:mod:`forecast.models._trend`); "linear" extrapolates it.
    damping : float in [0, 1], default 0.0 (trend="damped": 0 holds, 1 is linear)
    seasonality : {"none", "month", "fourier"}, default "month"
    fourier_k : int >= 1, default 2
    lags : tuple of int >= 1, default ()
    exog : tuple of column names, default ()
    interventions : tuple of ``{name, date, kind}``, kind "step", "pulse" or "ramp", default ()
    exposure : column name or None
    penalty : float >= 0, default 0.0 (ridge on every coefficient but the intercept)
    n_paths : int >= 1, default 1000 (sample paths for h > 1 when lags are used)
    neighbour_lags : tuple of int >= 1, default () (needs an adjacency with the panel)
    neighbour_weights : {"first_order", "powerlaw"}, default "first_order"
    neighbour_decay : float > 0, default 1.0 (powerlaw: w ∝ order^-decay, fixed)

    Notes
    -----
    log mu_t = x_t'β + log(exposure_t); Y_t ~ Poisson(mu_t), where x_t holds the
    intercept, trend t / (periods per year), month dummies or Fourier terms, lags
    log(1 + y_{t-k}), exogenous columns and intervention indicators.

    β maximises the log-likelihood minus (penalty/2)·Σ_{j>0} β_j² (R's ``glm``
    when penalty = 0). SEs from the expected information (X'WX + P)^-1, W =
    diag(mu). Without lags the forecast is closed form, Y_{T+h} ~ Poisson(mu_{T+h}).
    With lags, h = 1 is closed form and longer horizons are ``n_paths``
    simulated paths in which log(1 + simulated y) feeds the lag columns; the pmf
    of a step is the average over paths of its conditional law given the path
    (Rao-Blackwellised, every count possible), the paths are kept for sums.
    Interventions and covariates whose column is constant over the fit window
    are dropped (coefficient NaN, 0 in forecasts). A lag-coefficient sum >= 1
    (explosive) fails the fit and the fallback ladder moves on.

    Neighbour terms (``neighbour_lags``): log(1 + s_{t-k}) with s_t = Σ_j w_ji y_jt
    the weighted sum of the neighbours' counts (:mod:`forecast.models._neighbours`:
    weights each source sends sum to 1, as hhh4's ``normalize = TRUE``; a missing
    neighbour count contributes 0), built from the whole panel before any batching.
    One-step forecasts are exact; longer horizons are simulated jointly over every
    series of the model (:mod:`forecast.models._neighbourjoint`: path p of every series
    is one world), a series that fell to a rung without neighbour terms feeding its
    forecast mean into its neighbours' sums. The explosive-lag check covers the own lags.

    Missing periods (``Series.observed``) are left out: a row whose count, or a
    count one of its lags reads, is missing has weight 0 (as if deleted: the
    estimates equal the fit on the other rows). When the lags of the first forecast
    read a missing count, it is simulated forward from the last observed ones and
    the forecast is ``n_paths`` paths, also at h = 1.
    """

    name = "poisson_glm"
    handles_missing = True
    description = "Poisson log-linear GLM (trend, seasonality, lags, covariates, interventions)"
    family = "poisson"


class NegBinGLM(_LogLinearGLM):
    """Negative-binomial (NB2) log-linear GLM; alpha by maximum likelihood.

    Parameters
    ----------
    Same as :class:`PoissonGLM`.

    Notes
    -----
    log mu_t = x_t'β + log(exposure_t); Y_t ~ NB2(mu_t, alpha) with Var Y_t =
    mu_t + alpha·mu_t², x_t as in :class:`PoissonGLM`.

    (β, alpha) maximise the joint log-likelihood (minus the ridge term when
    penalty > 0); alpha = 0 (Poisson) when the data are not overdispersed. SEs
    of β as R's ``MASS::glm.nb``: expected information with alpha held at its
    estimate, (X'WX + P)^-1, W = diag(mu / (1 + alpha mu)); SE of alpha from the
    observed joint information. Forecasts as for :class:`PoissonGLM` with the
    NB2 family at the fitted alpha. Falls back to a penalised fit, then to
    ``poisson_glm``, ``climatology`` and ``zero``.
    """

    name = "negbin_glm"
    handles_missing = True
    description = "Negative-binomial (NB2) log-linear GLM, alpha by maximum likelihood"
    family = "negbin"


