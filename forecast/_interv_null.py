"""The null model of an intervention test for one series: a model spec's design, fitted.

Turns a ``poisson_glm``, ``negbin_glm`` or ``ingarch`` spec and a :class:`Series` into the
arrays :mod:`forecast._interv_tests` works on, and into the recursion that simulates from
the fitted null (the parametric bootstrap of :func:`forecast.interventions.detect`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from forecast._interv_tests import NullFit, glm_null, ingarch_null, initial_log_mean, simulate
from forecast.exceptions import ConfigError
from forecast.models.base import ModelSpec, Series
from forecast.models.design import DesignSpec, build_design

SUPPORTED = ("poisson_glm", "negbin_glm", "ingarch")


@dataclass(frozen=True)
class NullModel:
    """A fitted null and what simulating from it needs."""

    fit: NullFit
    first: int             # rows of the series before the first design row (lags)
    base: np.ndarray       # (n_rows,) non-feedback part of the log-mean at every design row
    b: np.ndarray          # coefficients of log(1 + y_{t-k})
    lags: tuple[int, ...]
    nu_init: float
    spec: ModelSpec        # the spec fitted: the one asked for, or its fallback (see ``note``)
    note: str = ""         # a fallback taken, or why there is no null fit

    def simulate(self, s: Series, n_rep: int, rng: np.random.Generator) -> np.ndarray:
        """(n_rep, len(s.y)) count series from the fitted null, the first ``first`` counts as observed."""
        f = self.fit
        sim = simulate(self.base, self.b, self.lags, f.a, f.past_mean, s.y[:self.first], self.nu_init,
                       f.alpha, n_rep, rng)
        pre = np.broadcast_to(s.y[:self.first].astype(float), (n_rep, self.first))
        return np.concatenate([pre, sim], axis=1).astype(np.int64)


def check_spec(spec: ModelSpec | str) -> ModelSpec:
    """A spec (or a registered model name) the tests support; ConfigError otherwise."""
    if isinstance(spec, str):
        from forecast.models.registry import REGISTRY
        if spec not in REGISTRY:
            raise ConfigError(f"Unknown model '{spec}'; intervention tests support {', '.join(SUPPORTED)}.")
        spec = REGISTRY[spec]()
    if not isinstance(spec, ModelSpec) or spec.name not in SUPPORTED:
        name = getattr(spec, "name", type(spec).__name__)
        raise ConfigError(f"Intervention tests need a log-linear count model ({', '.join(SUPPORTED)}); "
                          f"got '{name}'. Pass e.g. spec='negbin_glm'.")
    spec.validate()
    return spec


def null_model(spec: ModelSpec, s: Series, fallback: bool = True) -> NullModel:
    """Fit the null model of ``spec`` (its whole design, interventions it already has included)
    to one series by unpenalised maximum likelihood (a spec's ``penalty`` is not used: the
    tests are likelihood-based).

    An INGARCH null whose likelihood rises to the stationarity boundary (a level shift left
    out of the null looks like a unit root to the mean feedback) has no interior maximum, so
    no score test; it falls back to the same model without mean feedback (``past_mean = ()``,
    the log-linear autoregression on log(1 + y)) and says so in ``note``.
    """
    if spec.name == "ingarch":
        nm = _ingarch(spec, s)
        if not fallback or nm.fit.converged or not nm.fit.message.startswith("non-stationary") or not spec.past_mean:
            return nm
        fb = _ingarch(spec.clone().set_params(past_mean=()), s)
        why = "fallback: no mean feedback (past_mean = []); ingarch's went to the stationarity boundary"
        return replace(fb, note=why) if fb.fit.converged else nm
    dspec = DesignSpec.from_params(spec.get_params())
    d = build_design(dspec, s)
    keep = d.keep
    X, y, off = d.X[:, keep], d.y, d.offset
    pos = np.arange(len(s.y))[dspec.max_lag:]
    if d.rows is not None:
        X, y, off, pos = X[d.rows], y[d.rows], off[d.rows], pos[d.rows]
    fit = glm_null(X, y, off, pos, nb=spec.name == "negbin_glm")
    beta = np.zeros(d.X.shape[1])
    beta[keep] = fit.coef
    lag = np.asarray(d.lag_cols, dtype=int)
    nonlag = np.setdiff1d(np.arange(d.X.shape[1]), lag)
    base = d.X[:, nonlag] @ beta[nonlag] + d.offset
    return NullModel(fit, dspec.max_lag, base, beta[lag], tuple(dspec.lags), 0.0, spec, _why_not(fit))


def _ingarch(spec: ModelSpec, s: Series) -> NullModel:
    if s.observed is not None:
        raise ConfigError(f"series '{s.uid}' has missing periods; intervention tests of 'ingarch' need every "
                          "count. Use negbin_glm, or fill the gaps.")
    dspec = spec._design()
    d = build_design(dspec, s)
    cols = d.keep.copy()
    idx = np.flatnonzero(cols)
    obs = [j for j, c in enumerate(idx) if c in d.lag_cols]
    nu_init = initial_log_mean(s.y, min(len(s.y), s.season_length))
    pos = np.arange(len(s.y))[dspec.max_lag:]
    X = d.X[:, cols]
    fit = ingarch_null(X, d.y, pos, past_mean=tuple(spec.past_mean), obs_cols=obs, nu_init=nu_init,
                       distribution=spec.distribution)
    nonlag = [j for j in range(X.shape[1]) if j not in obs]
    base = X[:, nonlag] @ fit.coef[nonlag]
    return NullModel(fit, dspec.max_lag, base, fit.coef[obs], tuple(dspec.lags), nu_init, spec, _why_not(fit))


def _why_not(fit: NullFit) -> str:
    """Why a null fit failed, in a few words ("" when it converged)."""
    if fit.converged:
        return ""
    msg = fit.message
    why = ("separation (too few events for the model's terms)" if "separation" in msg
           else "all counts are zero" if "all counts" in msg
           else "the mean feedback goes to the stationarity boundary" if msg.startswith("non-stationary")
           else "rank-deficient design" if "rank-deficient" in msg else "did not converge")
    return "no null fit: " + why
