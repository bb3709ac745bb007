"""Zero-inflated count models: ZIP and ZINB with the GLM count design.

Both share the design of the GLM family (:mod:`forecast.models.design`: trend,
seasonality, lags of log(1 + y), exogenous columns, interventions, exposure
offset) for the count part and a constant inflation probability. They differ
only in the count distribution (Poisson or NB2). The maximum-likelihood fit is
:func:`forecast.models._zifit.fit_zip` / :func:`~forecast.models._zifit.fit_zinb`
(matched to R's ``pscl::zeroinfl``).
"""
from __future__ import annotations


import numpy as np
import pandas as pd
from scipy import special

from forecast.exceptions import ConfigError
from forecast.models._glmglue import in_sample_eta, pathmix, start_history
from forecast.models._missing import lag_window
from forecast.models._zifit import ZIFit, fit_zinb, fit_zip
from forecast.models.base import FitFailure, ModelSpec, Param, Series, SeriesFit, SeriesForecast, positive_int
from forecast.models.baselines import Climatology, Zero
from forecast.models.glm import NegBinGLM, PoissonGLM
from forecast.models.design import (
    MEAN_CAP_FACTOR,
    DesignSpec,
    build_design,
    capped_mean,
    check_design_columns,
    design_params,
    future_design,
)

__all__ = ["ZIP", "ZINB"]





DESIGN_PARAMS = (
    *design_params(trend="none", seasonality="fourier", fourier_k=1),
    Param("n_paths", 1000, "an int >= 1", positive_int, "simulated paths for multi-step forecasts with lags"),
)


class _ZeroInflated(ModelSpec):
    """Shared implementation of :class:`ZIP` and :class:`ZINB` (not registered)."""

    params = DESIGN_PARAMS
    _nb: bool = False

    def required_columns(self) -> tuple[str, ...]:
        return self._design_spec().needed_columns()

    def check_panel(self, panel: pd.DataFrame) -> None:
        """Exogenous columns must be finite and exposure > 0 (all failures at once)."""
        check_design_columns(panel, self._design_spec())

    def _design_spec(self) -> DesignSpec:
        return DesignSpec.from_params(self.get_params())

    def fallback_specs(self) -> list[tuple[str, ModelSpec]]:
        """The rungs in ``fallbacks``, with the design hyperparameters carried over."""
        out = []
        for cls in self.fallbacks:
            if cls.name == self.name:
                continue
            rung = cls._fallback_from(self)
            if isinstance(rung, ZIP) and self._nb:
                rung._zinb_boundary = True  # accept only where ZIP is the ZINB boundary fit
            out.append((cls.name, rung))
        return out

    # -- fit ----------------------------------------------------------------------
    def _fit_series(self, s: Series) -> SeriesFit:
        dspec = self._design_spec()
        n_rows = len(s.y) - dspec.max_lag
        if n_rows < 3:
            raise FitFailure(f"{n_rows} usable periods after lags; a zero-inflated fit needs more")
        d = build_design(dspec, s)
        X, y, offset = d.X[:, d.keep], d.y, d.offset
        if d.rows is not None:  # missing periods: a row whose count or lags are missing has weight 0
            X, y, offset = X[d.rows], y[d.rows], offset[d.rows]
        fitter = fit_zinb if self._nb else fit_zip
        fit: ZIFit = fitter(X, y, offset=offset)
        n_params = X.shape[1] + 1 + int(self._nb)
        if not fit.converged:
            # the solver's message names the cause: all zeros, no zeros, boundary, too few rows
            return SeriesFit(self, converged=False, loglik=fit.loglik, n_params=n_params, n_obs=fit.n_obs,
                             message=fit.message)
        if getattr(self, "_zinb_boundary", False):
            score = _alpha_score(y, fit.mu, fit.pi)
            if score > 0:
                raise FitFailure(f"the data are overdispersed beyond a ZIP (ZINB score in alpha at 0 is "
                                 f"{score:.3g} > 0), so ZIP is not the boundary ZINB fit")
        lag_sum = float(np.sum(fit.coef[np.cumsum(d.keep)[list(d.lag_cols)] - 1])) if d.lag_cols else 0.0
        if lag_sum >= 1:
            # caught at fit time, so the model that diagnostics() names is the one that forecasts
            return SeriesFit(self, converged=False, loglik=fit.loglik, n_params=n_params, n_obs=fit.n_obs,
                             message=f"explosive lag coefficients (sum = {lag_sum:.4g} >= 1): the "
                                     "conditional mean of a log-linear count AR can grow without bound")
        beta = np.full(len(d.names), np.nan)
        beta_se = np.full(len(d.names), np.nan)
        beta[d.keep], beta_se[d.keep] = fit.coef, fit.std_error
        coef = {f"count_{nm}": (float(b), float(se)) for nm, b, se in zip(d.names, beta, beta_se)}
        coef["zero_(Intercept)"] = (float(fit.zero_coef[0]), float(fit.zero_std_error[0]))
        if self._nb:
            se_log_theta = float(np.sqrt(fit.cov[-1, -1]))
            # pscl's name for the dispersion; theta and alpha get delta-method SEs
            coef["count_Log(theta)"] = (float(np.log(fit.theta)), se_log_theta)
            coef["theta"] = (fit.theta, fit.theta * se_log_theta)
            coef["alpha"] = (fit.alpha, fit.alpha * se_log_theta)
        state = {"dspec": dspec, "beta": fit.coef.copy(), "keep": d.keep.copy(),
                 "pi": float(special.expit(fit.zero_coef[0])),
                 "alpha": fit.alpha if self._nb else None}
        notes = [fit.message]
        dropped = [nm for nm, k in zip(d.names, d.keep) if not k]
        if dropped:
            notes.append(f"no information in the fit window for {', '.join(dropped)}: column(s) dropped, "
                         "coefficient reported as NaN and taken as 0 in forecasts")
        return SeriesFit(self, converged=True, loglik=fit.loglik, n_params=n_params, n_obs=fit.n_obs,
                         coef=coef, state=state, message="; ".join(notes))

    # -- forecast -----------------------------------------------------------------
    def _forecast_series(self, fit: SeriesFit, s: Series, h: int, future: pd.DataFrame | None,
                         rng: np.random.Generator) -> SeriesForecast:
        st = fit.state
        dspec: DesignSpec = st["dspec"]
        missing = [c for c in dspec.needed_columns() if future is not None and c not in future.columns]
        if missing:
            raise ConfigError(f"The future frame lacks column(s) {', '.join(missing)} needed to forecast "
                              f"series '{s.uid}': give unique_id, ds and {', '.join(dspec.needed_columns())}.")
        X, offset, lag_cols = future_design(dspec, s, h, future)
        keep, pi, alpha = st["keep"], st["pi"], st["alpha"]
        # full-width coefficients with dropped columns at 0: their effect is not estimable
        beta = np.zeros(len(keep))
        beta[keep] = st["beta"]
        cap = MEAN_CAP_FACTOR * max(int(s.y.max(initial=0)), 1)
        lags = dspec.lags
        gap = lag_window(s.observed, lags)  # missing counts among the lags read: simulated first
        if not gap and (not lags or h <= min(lags)):
            # every lagged count is observed: the ZI law is exact at each step
            for col, k in zip(lag_cols, lags):
                X[:, col] = np.log1p(s.y[len(s.y) - k + np.arange(h)])
            mu = capped_mean(np.exp(X @ beta + offset), cap, s.uid)
            return SeriesForecast("zi", mu=mu, pi=np.full(h, pi),
                                  alpha=None if alpha is None else np.full(h, alpha))
        eta = X @ beta + offset  # lag columns are 0 here; their part is added per path
        pre = in_sample_eta(dspec, s, beta, gap) if gap else None
        paths, mus = self._simulate(s, eta, beta[list(lag_cols)], lags, pi, alpha, cap, rng, pre)
        return pathmix(paths, mus, alpha, pi)

    def _simulate(self, s: Series, eta: np.ndarray, gamma: np.ndarray, lags: tuple[int, ...], pi: float,
                  alpha: float | None, cap: float, rng: np.random.Generator,
                  pre: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sample paths (h, n_paths), each step drawn given the path's own earlier counts, and the
        count mean each was drawn with (h, n_paths): with pi and alpha, the step's conditional law.

        ``pre``: the lag-free linear predictor of the last w periods; their missing counts
        are drawn first, from the last observed ones forward (each path its own value).
        """
        h, P, m = len(eta), int(self.n_paths), max(lags)
        w = 0 if pre is None else len(pre)
        # per-path history: the last m (+ w) observed counts, then the simulated ones
        hist = np.zeros((P, m + w + h), dtype=np.int64)
        hist[:, :m + w] = start_history(s, m + w) if w else s.y[-m:]
        steps = [(eta[t], m + w + t) for t in range(h)]
        n = len(s.y)
        steps[:0] = [(pre[j], m + j) for j in range(w) if not s.observed[n - w + j] and np.isfinite(pre[j])]
        mus = np.empty((h, P))
        for e, col in steps:  # vectorised over paths; the recursion forces a loop over steps
            lagged = np.log1p(np.stack([hist[:, col - k] for k in lags], axis=1))
            mu = capped_mean(np.exp(e + lagged @ gamma), cap, s.uid)
            if col >= m + w:
                mus[col - m - w] = mu
            if alpha is not None and alpha > 0:
                mu = rng.gamma(1.0 / alpha, alpha * mu)  # NB2 as gamma-Poisson: mean mu, var alpha mu^2
            counts = rng.poisson(mu)
            hist[:, col] = np.where(rng.random(P) < pi, 0, counts)
        return hist[:, m + w:].T.copy(), mus


class ZIP(_ZeroInflated):
    r"""Zero-inflated Poisson regression with the GLM count design.

    Parameters
    ----------
    trend : {"none", "damped", "linear"}, default "none" ("damped" holds the fitted trend at the
        last training period in forecasts, "linear" extrapolates it)
    damping : float in [0, 1], default 0.0
    seasonality : {"none", "month", "fourier"}, default "fourier"
    fourier_k : int, default 1
    lags : tuple of int, default ()
        Autoregressive terms log(1 + y_{t-k}).
    exog : tuple of str, default ()
        Panel columns entering the count part (future values needed to forecast).
    interventions : tuple, default ()
        Step, pulse or ramp columns ({name, date, kind}).
    exposure : str or None, default None
        Panel column whose log is the offset.
    n_paths : int, default 1000
        Simulated paths for multi-step forecasts with lags.

    Notes
    -----
    P(Y_t = 0) = π + (1 − π) f(0; μ_t), P(Y_t = k) = (1 − π) f(k; μ_t) for k ≥ 1, with f the
    Poisson pmf f(k; μ) = μ^k e^{−μ} / k!, log μ_t = x_t'β (+ log exposure_t), logit π = γ0.

    x_t holds the design columns of the GLM family (:mod:`forecast.models.design`);
    columns with no information in the fit window are dropped and reported as NaN.
    The inflation probability π is constant over time. No penalty: the fit is plain
    maximum likelihood, as ``pscl::zeroinfl(y ~ x | 1)``, with coefficients named
    ``count_<column>`` and ``zero_(Intercept)`` and SEs from the observed information.

    Without lags, and for h ≤ min(lags), the forecast is the closed-form ZI law
    (mean (1 − π) μ). Beyond that ``n_paths`` paths are simulated, each step using
    the path's own earlier counts (0 with probability π, else a Poisson draw), from
    the per-series stream, so a series' paths do not depend on the panel around it;
    a step's pmf averages the paths' conditional ZI laws (every count possible).

    A series whose fit fails falls back to ``poisson_glm``, then ``climatology``,
    then ``zero`` (``diagnostics()`` names the rung and why): all zeros (π → 1, the
    count part not identified), no zeros (π → 0: the plain count model is the MLE),
    too few periods, count-part separation or another boundary optimum, and
    explosive lags (sum of lag coefficients ≥ 1).
    """

    name = "zip"
    handles_missing = True
    description = "Zero-inflated Poisson with the GLM count design (many excess zeros)"
    fallbacks = (PoissonGLM, Climatology, Zero)
    _nb = False


class ZINB(_ZeroInflated):
    r"""Zero-inflated NB2 regression with the GLM count design.

    Parameters
    ----------
    trend, seasonality, fourier_k, lags, exog, interventions, exposure, n_paths
        As in :class:`ZIP`.

    Notes
    -----
    P(Y_t = 0) = π + (1 − π) f(0; μ_t), P(Y_t = k) = (1 − π) f(k; μ_t) for k ≥ 1, with f the
    NB2 pmf of mean μ and variance μ + αμ², log μ_t = x_t'β (+ log exposure_t), logit π = γ0.

    No penalty: plain maximum likelihood over (β, γ0, log θ), θ = 1/α, as
    ``pscl::zeroinfl(y ~ x | 1, dist = "negbin")``; coefficients ``count_<column>``,
    ``zero_(Intercept)`` and ``count_Log(theta)`` (pscl's names), plus ``theta`` and
    ``alpha`` with delta-method standard errors. Forecasts as in :class:`ZIP`, the
    simulated count part drawn as a gamma–Poisson mixture.

    The ladder after the ZINB fit: ``zip``, accepted only where it is the boundary
    ZINB fit (θ → ∞: the ZINB score in α at α = 0 of the ZIP optimum is ≤ 0; a ZIP
    fitted to NB data would invent inflation), then ``negbin_glm`` (e.g. no zeros:
    π → 0), ``climatology``, ``zero``; the failures are those of :class:`ZIP`.
    """

    name = "zinb"
    handles_missing = True
    description = "Zero-inflated negative binomial with the GLM count design (many excess zeros)"
    fallbacks = (ZIP, NegBinGLM, Climatology, Zero)
    _nb = True


def _alpha_score(y: np.ndarray, mu: np.ndarray, pi: np.ndarray) -> float:
    """d loglik / d alpha of the ZINB model at alpha = 0 (a ZIP fit).

    The NB2 log pmf has derivative ((y - mu)^2 - y) / 2 at alpha = 0; under zero
    inflation each term is weighted by the posterior probability that the count
    came from the count part. A ZIP optimum is the ZINB maximum-likelihood fit on
    the boundary alpha = 0 exactly when this score is <= 0 (first-order condition
    for a maximum at the edge of alpha >= 0).
    """
    f0 = np.exp(-mu)
    u = np.where(y == 0, (1 - pi) * f0 / (pi + (1 - pi) * f0), 1.0)
    return float(0.5 * np.sum(u * ((y - mu) ** 2 - y)))



