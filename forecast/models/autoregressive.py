"""Count autoregression with a log link: the log-linear Poisson / NB2 INGARCH (tscount family).

The array-level solver (:func:`ingarch_objective`, :func:`fit_ingarch`, in
:mod:`forecast.models._ingarchfit`, re-exported here) sits under the ``ingarch`` model spec (:class:`INGARCH`), which takes its covariates from the shared
design builder (:mod:`forecast.models.design`) and adds the recursive mean lags itself.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import ClassVar

import numpy as np
import pandas as pd

from forecast.exceptions import DataValidationError, Problem
from forecast.models._glmcheck import _ALIAS_TOL
from forecast.models._glmglue import pathmix
from forecast.models._neighbourjoint import NeighbourTerms, joint_forecast
from forecast.models._neighbours import NEIGHBOUR_PARAMS
from forecast.models._ingarchfit import IngarchFit, fit_ingarch, ingarch_objective, initial_log_mean
from forecast.models._ingarchwarm import start_of
from forecast.models.base import (FitFailure, ModelSpec, Param, Series,
                                  SeriesFit, SeriesForecast, int_tuple, one_of, positive_int)
from forecast.models.design import (
    DesignSpec,
    build_design,
    capped_mean,
    design_params,
    distinct,
    future_design,
    lag_values,
)
from forecast.models.baselines import Climatology, Zero
from forecast.models.guard import fit_each, mean_cap

__all__ = ["INGARCH", "IngarchFit", "fit_ingarch", "ingarch_objective", "initial_log_mean"]

_NU_MAX = np.log(1e9)  # cap on simulated log-means: keeps rare explosive paths finite

_LAGS = "a tuple of distinct ints >= 1"
INGARCH_PARAMS = (
    Param("distribution", "negbin", "one of 'poisson', 'negbin'", one_of("poisson", "negbin"), "Y_t | past"),
    Param("past_obs", (1,), _LAGS, distinct(int_tuple), "lags k of log(1 + y_{t-k}) (the GLMs' 'lags')"),
    Param("past_mean", (1,), _LAGS, distinct(int_tuple), "lags l of the log-mean nu_{t-l} (recursive)"),
    *design_params(trend="none", seasonality="fourier", fourier_k=1, lags=False, exposure=False),
    Param("n_paths", 1000, "an int >= 1", positive_int, "simulated paths for horizons h > 1"),
    *NEIGHBOUR_PARAMS,
)
_DESIGN_PARAMS = ("trend", "damping", "seasonality", "fourier_k", "exog", "interventions", "neighbour_lags")


class INGARCH(NeighbourTerms, ModelSpec):
    """Log-linear Poisson / NB2 count autoregression (INGARCH with log link, as R's tscount).

    Parameters
    ----------
    distribution : "poisson" or "negbin" (default).
    past_obs : lags k of log(1 + y_{t-k}); plays the GLMs' ``lags`` role (there is no ``lags``).
    past_mean : lags l of the log-mean nu_{t-l}; ``()`` gives the GLM with log1p lags.
    trend, damping, seasonality, fourier_k, exog, interventions : covariates x_t, as in the GLMs.
    n_paths : simulated paths for h > 1.

    Notes
    -----
    nu_t = log lambda_t = b_0 + sum_{k in P} b_k log(1 + y_{t-k}) + sum_{l in Q} a_l nu_{t-l}
    + eta' x_t, with Y_t | past ~ Poisson(lambda_t) or NB2(lambda_t, alpha),
    Var = lambda_t + alpha lambda_t^2 (Liboschik, Fokianos & Fried 2017).

    Fitted by full conditional maximum likelihood on the periods t >= max(P), NB including
    alpha (as log alpha), with exact analytic gradient and Hessian through the recursion
    (:func:`fit_ingarch`); standard errors from the inverse observed information, alpha's
    by the delta method. nu before the first fitted period is the constant
    log((y_1 + ... + y_m + 1/2) / m), m = one season (tscount's default "marginal"
    initialisation instead ties it to the parameters). R's tscount estimates by Poisson
    quasi-likelihood plus a moment estimate of the dispersion, so small differences
    from it are expected. Covariates act inside the recursion (tscount's
    ``external = FALSE``). The stationarity region sum|b_k| + sum|a_l| < 1 (sufficient)
    is enforced; an optimum on its edge is reported ("non-stationary: ...") and the
    series falls back to ``negbin_glm`` with ``lags = past_obs``, then climatology, zero.

    Forecasts: h = 1 is Poisson/NB2 with lambda_{T+1} (every h when ``past_obs = ()``, as
    nu is then deterministic); longer horizons simulate ``n_paths`` paths from the fitted
    recursion with the series' random stream; a period's pmf averages the paths'
    conditional Poisson/NB2 laws given their simulated past (every count possible).
    Coefficients: ``(Intercept)``, ``obs_lag<k>``, ``mean_lag<l>``, the design's
    covariate names, ``dispersion`` (NB2 alpha).

    Neighbour terms (``neighbour_lags``, as in the GLMs): log(1 + s_{t-k}), s the weighted
    sum of the neighbours' counts built from the whole panel, enter x_t as covariates
    (inside the recursion, like every covariate here; not counted in the stationarity
    sum). One-step forecasts are exact; h > 1 is simulated jointly over every series of
    the model (:mod:`forecast.models._neighbourjoint`), each series' nu recursion fed by
    its neighbours' draws.

    Missing periods: a missing count y_s enters the recursion as its conditional mean,
    log(1 + y_s) read as log(1 + lambda_s), and its period is left out of the likelihood
    (:mod:`forecast.models._ingarchmiss`); forecasts read a missing last count the same
    way. nu before the window is then the mean of the observed counts of the first season.
    """

    name = "ingarch"
    handles_missing = True
    description = "Log-linear Poisson/NB count autoregression (INGARCH, tscount family)"
    params = INGARCH_PARAMS
    fallbacks = (Climatology, Zero)  # after negbin_glm, see fallback_specs

    def _design(self) -> DesignSpec:
        return DesignSpec.from_params({**{k: getattr(self, k) for k in _DESIGN_PARAMS},
                                       "lags": tuple(self.past_obs)})

    def required_columns(self) -> tuple[str, ...]:
        return tuple(self.exog)

    def check_panel(self, panel: pd.DataFrame) -> None:
        """Exogenous columns must be finite numbers on every row."""
        problems = []
        for col in (c for c in self.exog if c in panel.columns):
            bad = ~np.isfinite(pd.to_numeric(panel[col], errors="coerce").to_numpy(dtype=float))
            if bad.any():  # rows as a spreadsheet shows them (header = row 1)
                problems.append(Problem(col, "covariate must be a finite number", rows=(np.flatnonzero(bad) + 2).tolist(),
                                        hint="Fill or drop those rows, or leave the column out of the spec."))
        if problems:
            raise DataValidationError(problems, source="panel")

    def fallback_specs(self) -> list[tuple[str, ModelSpec]]:
        """negbin_glm (same design, lags = past_obs), then climatology, zero."""
        try:  # imported here: the GLM module is optional for this one
            from forecast.models.glm import NegBinGLM
        except ImportError:
            return super().fallback_specs()
        kw = {k: getattr(self, k) for k in (*_DESIGN_PARAMS, "n_paths", "neighbour_weights", "neighbour_decay")}
        return [("negbin_glm", NegBinGLM(**kw, lags=tuple(self.past_obs)))] + super().fallback_specs()

    #: Whether ``fit_data(..., warm=)`` starts each refit from an earlier fit (backtests;
    #: :mod:`~forecast.models._ingarchwarm`). Off: the likelihood can have several local
    #: maxima, and a warm ascent may keep to another one than the cold fit reaches.
    warm_starts: ClassVar[bool] = False

    def _try_fit_many(self, series: list[Series], warm: dict | None = None) -> list[SeriesFit | FitFailure]:
        """Per series; ``warm`` (unique_id -> earlier fit) gives start values."""
        if not warm:
            return super()._try_fit_many(series)
        return fit_each(lambda s: self._fit_series(s, warm.get(s.uid)), series)

    def _fit_series(self, s: Series, warm: SeriesFit | None = None) -> SeriesFit:
        dspec = self._design()
        if len(s.y) <= dspec.first_row:
            raise FitFailure(f"{len(s.y)} periods, past_obs (and neighbour_lags) need more than {dspec.first_row}")
        d = build_design(dspec, s)
        y = d.y.astype(np.int64)
        miss = _missing_inputs(s, d, dspec)  # None when every count is observed
        if miss is not None:
            X, fills, rows, nu_init = miss
            d = replace(d, X=X)
            if not y[rows].any():
                raise FitFailure("all observed counts in the fit window are zero: no rate is estimable")
        if not y.any():
            raise FitFailure("all counts in the fit window are zero: no rate is estimable")
        cols, nb, L = d.keep.copy(), self.distribution == "negbin", len(self.past_mean)
        n_obs = len(y) if miss is None else int(rows.sum())
        if n_obs <= int(cols.sum()) + L + nb:
            raise FitFailure(f"{n_obs} observations for {int(cols.sum()) + L + nb} parameters")
        # Aliased columns (R's QR rule) are dropped and reported as NaN, like uninformative ones.
        r = np.abs(np.diag(np.linalg.qr(d.X[:, cols], mode="r")))
        cols[np.flatnonzero(cols)[r <= _ALIAS_TOL * np.maximum(np.linalg.norm(d.X[:, cols], axis=0), 1e-300)]] = False
        k = int(cols.sum()) + L + nb
        idx = np.flatnonzero(cols)
        obs = [j for j, c in enumerate(idx) if c in d.lag_cols]
        start, start_alpha = start_of(warm, self, d.names, cols) or (None, 0.0)
        if miss is None:
            nu_init = initial_log_mean(s.y, min(len(s.y), s.season_length))
            res = fit_ingarch(d.X[:, cols], y, past_mean=self.past_mean, obs_cols=obs, nu_init=nu_init,
                              distribution=self.distribution, offset=d.offset, start=start, start_alpha=start_alpha)
        else:
            where = np.full(len(cols), -1)
            where[idx] = np.arange(len(idx))  # design column -> column of the reduced X
            res = fit_ingarch(d.X[:, cols], y, past_mean=self.past_mean, obs_cols=obs, nu_init=nu_init,
                              distribution=self.distribution, offset=d.offset, rows=rows,
                              fills=[(i, int(where[j]), src) for i, j, src in fills if where[j] >= 0],
                              start=start, start_alpha=start_alpha)
        names = [f"obs_{nm}" if j in d.lag_cols else nm for j, nm in enumerate(d.names)]
        msg = re.sub(r"(columns? )(\d+(?:, \d+)*)", lambda m: m.group(1) + ", ".join(  # positions -> names
            names[idx[int(i)]] for i in m.group(2).split(", ")), res.message)
        if not res.converged:
            return SeriesFit(self, converged=False, loglik=res.loglik, n_params=k, n_obs=n_obs, message=msg)
        dropped = [nm for j, nm in enumerate(names) if not cols[j]]
        if dropped:
            msg = "; ".join(filter(None, [msg, f"no information in the fit window for {', '.join(dropped)}: "
                                               "dropped, reported as NaN, taken as 0 in forecasts"]))
        beta = np.full(d.X.shape[1], np.nan)
        beta_se = beta.copy()
        beta[cols], beta_se[cols] = res.coef[:len(idx)], res.std_error[:len(idx)]
        terms = {nm: (float(b), float(e)) for nm, b, e in zip(names, beta, beta_se)}
        first = ["(Intercept)"] + [names[j] for j in d.lag_cols]
        coef = {nm: terms.pop(nm) for nm in first}
        coef |= {f"mean_lag{q}": (float(res.coef[len(idx) + i]), float(res.std_error[len(idx) + i]))
                 for i, q in enumerate(self.past_mean)}
        coef |= terms
        if nb:
            coef["dispersion"] = (res.alpha, res.alpha_se)
        Q = max(self.past_mean, default=0)
        nu_hist = np.r_[np.full(Q, nu_init), res.nu][-Q:] if Q else np.zeros(0)
        state = {"beta": np.nan_to_num(beta), "a": res.coef[len(idx):], "alpha": res.alpha,
                 "nu_hist": nu_hist, "stationarity": res.stationarity, "names": d.names}
        if miss is not None and dspec.lags:
            # The lags forecasts read: a missing count as its conditional mean, as in the fit.
            kmax, first = dspec.max_lag, dspec.first_row
            t = np.arange(len(s.y) - kmax, len(s.y))
            lam = np.exp(np.where(t >= first, res.nu[np.maximum(t - first, 0)], nu_init))
            state["y_hist"] = np.where(s.observed[t], s.y[t], lam)
        return SeriesFit(self, converged=True, loglik=res.loglik, n_params=k, n_obs=n_obs, coef=coef,
                         message=msg, state=state)

    def joint_inputs(self, fit: SeriesFit, s: Series, h: int, future) -> dict:
        return _ingarch_joint_inputs(self, fit, s, h, future)

    def _forecast_many(self, fits, series, h, future, seed):
        if self.neighbour_lags and h > 1:  # simulated with every neighbour (NeighbourFitted.forecast)
            joint = joint_forecast([s.uid for s in series])
            if joint is not None:
                return joint
        return super()._forecast_many(fits, series, h, future, seed)

    def _forecast_series(self, fit: SeriesFit, s: Series, h: int, future, rng: np.random.Generator
                         ) -> SeriesForecast:
        st, dspec = fit.state, self._design()
        Xf, off, lag_cols = future_design(dspec, s, h, future)
        base = Xf @ st["beta"] + off  # lag columns are 0 in Xf: the non-lag part of nu
        if self.neighbour_lags:  # exact at step 1; held later (outside a joint simulation)
            base = base + self._neighbour_eta(fit, s, h)
        b, a, alpha = st["beta"][list(lag_cols)], st["a"], float(st["alpha"])
        P, Q, qs = len(self.past_obs), max(self.past_mean, default=0), np.asarray(self.past_mean, dtype=int)
        # closed form: nu_{T+j} is known when no simulated count enters it
        if h == 1 or (not P and not self.neighbour_lags):
            nus = list(st["nu_hist"])
            for j in range(h):
                obs = lag_values(st.get("y_hist", s.y).astype(float), self.past_obs) @ b if P else 0.0
                nus.append(base[j] + obs + sum(aq * nus[-q] for q, aq in zip(qs, a)))
            mu = capped_mean(np.exp(np.minimum(nus[Q:], _NU_MAX)), mean_cap(s.y), s.uid)
            if self.distribution == "poisson":
                return SeriesForecast("poisson", mu=mu)
            return SeriesForecast("negbin", mu=mu, alpha=np.full(h, alpha))
        n, kmax = self.n_paths, max(self.past_obs, default=0)
        Y = np.empty((n, kmax + h))
        Y[:, :kmax] = st["y_hist"] if "y_hist" in st else s.y[len(s.y) - kmax:]
        N = np.empty((n, Q + h))
        N[:, :Q] = st["nu_hist"]
        out, mus = np.empty((h, n), dtype=np.int64), np.empty((h, n))
        cap = mean_cap(s.y)
        for j in range(h):  # vectorised over paths; the recursion runs over the horizon
            nu = np.full(n, base[j])
            for k, bk in zip(self.past_obs, b):
                nu += bk * np.log1p(Y[:, kmax + j - k])
            for q, aq in zip(qs, a):
                nu += aq * N[:, Q + j - q]
            mu = mus[j] = capped_mean(np.exp(np.minimum(nu, _NU_MAX)), cap, s.uid)
            draw = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu)) if alpha > 0 else rng.poisson(mu)
            out[j], Y[:, kmax + j], N[:, Q + j] = draw, draw, nu
        return pathmix(out, mus, max(alpha, 0.0))  # the law each count was drawn from


def _ingarch_joint_inputs(spec: INGARCH, fit: SeriesFit, s: Series, h: int, future) -> dict:
    """The GLM's joint inputs plus INGARCH's mean lags (see :mod:`~forecast.models._neighbourjoint`)."""
    st = fit.state
    out = NeighbourTerms.joint_inputs(spec, fit, s, h, future)
    out.update(mean_lags=tuple(spec.past_mean), a=np.asarray(st["a"]), nu_hist=st["nu_hist"],
               y_hist=st.get("y_hist"), nu_max=_NU_MAX, alpha=max(float(st["alpha"]), 0.0))
    return out


def _missing_inputs(s: Series, d, dspec: DesignSpec):
    """The fit inputs of a series with missing periods, or None when every count is observed.

    Returns (X, fills, rows, nu_init): X with the lags of missing counts before the window
    at log(1 + exp(nu_init)); fills (design row, column, source row) for those inside it,
    which the recursion fills with log(1 + lambda_source); rows, the periods whose count is
    observed (the likelihood's); nu_init from the observed counts of the first season.
    """
    if s.observed is None or s.observed.all():
        return None
    obs = np.asarray(s.observed, dtype=bool)
    m = min(len(s.y), s.season_length)
    first_obs = s.y[:m][obs[:m]]
    nu_init = initial_log_mean(first_obs if first_obs.size else s.y[obs], max(first_obs.size, 1))
    first = dspec.first_row
    X = d.X.copy()
    fills = []
    for j, k in zip(d.lag_cols, dspec.lags):
        for i in range(X.shape[0]):
            src = i + first - k  # the period the lag reads
            if not obs[src]:
                if src >= first:
                    fills.append((i, j, src - first))
                else:
                    X[i, j] = np.logaddexp(0.0, nu_init)
    return X, fills, obs[first:], nu_init
