"""Count autoregression with a log link: the log-linear Poisson / NB2 INGARCH (tscount family).

The array-level solver (:func:`ingarch_objective`, :func:`fit_ingarch`) sits under the
``ingarch`` model spec (:class:`INGARCH`), which takes its covariates from the shared
design builder (:mod:`forecast.models.design`) and adds the recursive mean lags itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import linalg, signal, special

from forecast.exceptions import DataValidationError, Problem
from forecast.models._glmfit import _nb_terms, fit_poisson
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
from forecast.models.guard import mean_cap

__all__ = ["INGARCH", "IngarchFit", "fit_ingarch", "ingarch_objective", "initial_log_mean"]

_EDGE = 1e-2        # unconverged with sum|b| + sum|a| above 1 - _EDGE: the optimum is on the boundary
_PUSHES = 3         # consecutive Newton steps out of the stationary region, ending near its edge: stop
_ACCEPT_TOL = 1e-5  # max |score| accepted when rounding stops the ascent short of ``tol``
_START_MAX = 0.9    # a start outside sum|b| + sum|a| <= this is shrunk into it
_NU_MAX = np.log(1e9)  # cap on simulated log-means: keeps rare explosive paths finite
_ALIAS_TOL = 1e-7   # R's QR tolerance, as in _glmfit


@dataclass(frozen=True)
class IngarchFit:
    """Result of :func:`fit_ingarch`.

    ``coef``/``std_error`` run over the columns of X then the mean lags; ``cov`` covers
    them and, for NB with alpha > 0, log alpha last (inverse observed information).
    ``stationarity`` is sum|b_k| + sum|a_l|; ``nu`` the fitted log-means; ``alpha`` is
    0 for Poisson and at the NB boundary.
    """

    coef: np.ndarray
    std_error: np.ndarray
    cov: np.ndarray
    alpha: float
    alpha_se: float
    loglik: float
    n_obs: int
    converged: bool
    n_iter: int
    grad_norm: float
    stationarity: float
    message: str
    nu: np.ndarray


def initial_log_mean(y: ArrayLike, m: int) -> float:
    """nu before the first fitted period: log((y_1 + ... + y_m + 1/2) / m).

    A fixed, data-based constant (the half event keeps it finite when the first m
    counts are zero); it does not depend on the parameters.
    """
    y = np.asarray(y, dtype=float)[:max(1, m)]
    return float(np.log((y.sum() + 0.5) / len(y)))


def ingarch_objective(X: ArrayLike, y: ArrayLike, past_mean: Sequence[int], nu_init: float, *,
                      offset: ArrayLike | None = None, nb: bool = False) -> Callable:
    """Log-likelihood of the log-linear INGARCH in x = (beta, a, [log alpha]).

    Returns ``fun(x, order)``: order 0 the log-likelihood (with all constants; -inf when
    the log-mean overflows), 1 also its gradient, 2 also the exact Hessian.

    Notes
    -----
    nu_t = x_t'beta + o_t + sum_l a_l nu_{t-q_l} with nu_s = ``nu_init`` for s < 0. The
    derivatives J = d nu / d(beta, a) solve the same linear recursion (zero before the
    window), so one ``lfilter`` gives them all; the second-derivative term
    sum_t s_t d2 nu_t is formed with the adjoint filter w_t = s_t + sum_l a_l w_{t+q_l}.
    """
    X = np.asarray(X, dtype=float)
    yi = np.asarray(y).astype(np.int64)
    n, p = X.shape
    q = np.asarray(past_mean, dtype=int)
    L, Q = len(q), int(q.max(initial=0))
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    lgy = special.gammaln(yi + 1.0)
    c = float(nu_init)

    def shifted(v: np.ndarray, k: int, fill: float) -> np.ndarray:  # v_{t-k}, ``fill`` before 0
        out = np.full_like(v, fill)
        out[k:] = v[:n - k]
        return out

    def poly(a: np.ndarray) -> np.ndarray:  # lfilter's denominator 1 - sum_l a_l B^{q_l}
        A = np.zeros(Q + 1)
        A[0] = 1.0
        A[q] -= a
        return A

    def log_mean(x: np.ndarray) -> np.ndarray:
        a, u = x[p:p + L], X @ x[:p] + off
        # nu - c follows the same recursion with zero start and input u - c(1 - sum a).
        return signal.lfilter([1.0], poly(a), u - c * (1.0 - a.sum())) + c if L else u

    def fun(x: np.ndarray, order: int):
        alpha = float(np.exp(x[p + L])) if nb else 0.0
        A = poly(x[p:p + L])
        nu = log_mean(x)
        if not np.all(np.isfinite(nu)) or nu.max(initial=-np.inf) > 700:
            return -np.inf if order == 0 else (-np.inf, None, None)
        t = _nb_terms(yi, nu, alpha, lgy, (2 if order else 0) if nb else min(order, 1))
        if order == 0:
            return float(np.sum(t))
        ll, score, w_obs = t[:3]
        S = np.column_stack([X] + [shifted(nu, k, c) for k in q])
        J = signal.lfilter([1.0], A, S, axis=0) if L else S
        g = J.T @ score
        H = -(J.T * w_obs) @ J
        if L:
            w = signal.lfilter([1.0], A, score[::-1])[::-1]
            for i, k in enumerate(q):
                m = w @ shifted(J, k, 0.0)
                H[p + i] += m
                H[:, p + i] += m
        if nb:
            g_a, h_aa, h_ea = t[3:]
            g_t = alpha * float(np.sum(g_a))
            h_bt = alpha * (J.T @ h_ea)
            g = np.r_[g, g_t]
            H = np.block([[H, h_bt[:, None]], [h_bt[None, :], alpha**2 * np.sum(h_aa) + g_t]])
        return float(np.sum(ll)), g, H

    fun.nu = log_mean  # type: ignore[attr-defined]
    return fun


def _ascend(fun: Callable, x0: np.ndarray, measure: Callable, tol: float, max_iter: int):
    """Damped Newton ascent kept inside measure(x) < 1 (the stationary region).

    Returns x, f, g, H, iterations, status ('converged', 'boundary', 'stalled', 'max_iter').
    """
    x = x0.copy()
    f, g, H = fun(x, 2)
    pushes, status, it = 0, "max_iter", 0
    for it in range(max_iter + 1):
        if np.max(np.abs(g), initial=0.0) <= tol:
            return x, f, g, H, it, "converged"
        if it == max_iter:
            break
        scale = max(float(np.max(np.abs(np.diag(H)), initial=1.0)), 1e-12)
        step = g / scale
        for shift in (0.0, *(scale * 10.0 ** np.arange(-10, 3))):  # Levenberg shift if H is not ND
            try:
                step = linalg.cho_solve((np.linalg.cholesky(-H + shift * np.eye(len(x))), True), g)
                break
            except (linalg.LinAlgError, ValueError):
                continue
        pushes = pushes + 1 if measure(x + step) >= 1 else 0
        for _ in range(60):  # back inside the stationary region
            if measure(x + step) < 1:
                break
            step = step / 2
        slack = 1e-12 * (1.0 + abs(f))  # rounding in f: do not refuse tiny final steps
        new = fun(x + step, 2)  # the full step usually passes: its derivatives are reused
        for _ in range(60):
            if np.isfinite(new[0]) and new[0] >= f - slack:
                break
            step = step / 2
            new = (fun(x + step, 0),)
        else:
            status = "stalled"
            break
        x = x + step
        f, g, H = new if len(new) == 3 else fun(x, 2)
        if pushes >= _PUSHES and measure(x) > 1 - _EDGE:
            status = "boundary"
            break
    return x, f, g, H, it, status


def fit_ingarch(X: ArrayLike, y: ArrayLike, *, past_mean: Sequence[int], obs_cols: Sequence[int],
                nu_init: float, distribution: str = "negbin", offset: ArrayLike | None = None,
                tol: float = 1e-8, max_iter: int = 100) -> IngarchFit:
    """Fit the log-linear INGARCH by conditional maximum likelihood (Newton, exact derivatives).

    Parameters
    ----------
    X : (n, p) covariates incl. intercept and the log(1 + y_{t-k}) columns (``obs_cols``).
    y : (n,) counts of the fitted periods.
    past_mean : lags q_l of nu entering the recursion.
    nu_init : nu before the first fitted period (see :func:`initial_log_mean`).
    distribution : "poisson" or "negbin" (NB2, alpha estimated jointly as log alpha).
    tol : Newton stops when max |score| <= tol; a fit counts as converged at <= 1e-5.

    Notes
    -----
    Start: the Poisson GLM with a = 0 (shrunk into sum|b| + sum|a| <= 0.9). NB: the
    Poisson INGARCH first; if the score in alpha at 0, sum[(y - mu)^2 - y] / 2, is <= 0
    the Poisson fit is returned with alpha = 0 (as :func:`~forecast.models._glmfit.fit_negbin`),
    else a joint Newton ascent in (beta, a, log alpha). Iterates stay inside the
    stationary region sum|b_k| + sum|a_l| < 1; a fit pressed against its edge is
    reported as converged = False with a message starting "non-stationary".
    """
    X, yv = np.asarray(X, dtype=float), np.asarray(y).astype(np.int64)
    n, p = X.shape
    L, obs = len(past_mean), np.asarray(obs_cols, dtype=int)

    def measure(x: np.ndarray) -> float:
        return float(np.sum(np.abs(x[obs])) + np.sum(np.abs(x[p:p + L])))

    def inside(x: np.ndarray) -> np.ndarray:  # a start scaled into measure <= _START_MAX
        x, v = x.copy(), measure(x)
        if v > _START_MAX:
            x[obs] *= _START_MAX / v
            x[p:p + L] *= _START_MAX / v
        return x

    glm = fit_poisson(X, yv, offset)
    # No finite GLM MLE: a diverging covariate diverges here too, a diverging lag meets |b| < 1.
    if glm.message.startswith(("separation", "all counts")):
        nan = np.full(p + L, np.nan)
        return IngarchFit(nan, nan, np.full((p + L, p + L), np.nan), np.nan, np.nan, np.nan, n, False, 0,
                          np.nan, np.nan, f"Poisson GLM start: {glm.message}", np.full(n, np.nan))
    start = inside(np.r_[np.nan_to_num(glm.coef), np.zeros(L)])
    notes: list[str] = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        fun = ingarch_objective(X, yv, past_mean, nu_init, offset=offset, nb=False)
        x, f, g, H, it, status = _ascend(fun, start, measure, tol, max_iter)
        alpha, nb_fit = 0.0, False
        if distribution == "negbin":
            mu = np.exp(fun.nu(x))
            score0 = 0.5 * float(np.sum((yv - mu) ** 2 - yv))
            if status == "converged" and score0 <= 0:
                notes.append(f"alpha at the boundary 0 (score in alpha at 0 = {score0:.3g} <= 0): Poisson fit")
            else:
                a0 = max(2 * score0 / np.sum(mu**2), 1e-3)
                fun = ingarch_objective(X, yv, past_mean, nu_init, offset=offset, nb=True)
                x, f, g, H, it2, status = _ascend(fun, np.r_[inside(x), np.log(a0)], measure, tol, max_iter)
                it, nb_fit, alpha = it + it2, True, float(np.exp(x[-1]))
        gn = float(np.max(np.abs(g), initial=0.0)) if g is not None else np.nan
        converged = bool(np.isfinite(f) and gn <= _ACCEPT_TOL)
        v = measure(x)
        if not converged:
            if v > 1 - _EDGE:
                notes.insert(0, f"non-stationary: the likelihood rises toward the stationarity boundary "
                                f"sum|obs_lag| + sum|mean_lag| = 1 (reached {v:.4f})")
            else:
                notes.insert(0, f"did not converge ({status}, {it} iterations, max |score| {gn:.3g})")
        k = p + L + nb_fit
        cov = np.full((k, k), np.nan)
        if converged and np.all(np.isfinite(H)):
            try:
                cov = linalg.cho_solve((np.linalg.cholesky(-H), True), np.eye(k))
            except linalg.LinAlgError:
                cov = linalg.pinvh(-H)
                notes.append("observed information not positive definite: covariance from its pseudo-inverse")
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
        alpha_se = alpha * float(se[-1]) if nb_fit else np.nan
        return IngarchFit(coef=x[:p + L], std_error=se[:p + L], cov=cov, alpha=alpha, alpha_se=alpha_se,
                          loglik=float(f), n_obs=n, converged=converged, n_iter=int(it), grad_norm=gn,
                          stationarity=v, message="; ".join(notes), nu=fun.nu(x))


# -- the model spec ---------------------------------------------------------------------



_LAGS = "a tuple of distinct ints >= 1"
INGARCH_PARAMS = (
    Param("distribution", "negbin", "one of 'poisson', 'negbin'", one_of("poisson", "negbin"), "Y_t | past"),
    Param("past_obs", (1,), _LAGS, distinct(int_tuple), "lags k of log(1 + y_{t-k}) (the GLMs' 'lags')"),
    Param("past_mean", (1,), _LAGS, distinct(int_tuple), "lags l of the log-mean nu_{t-l} (recursive)"),
    *design_params(trend="none", seasonality="fourier", fourier_k=1, lags=False, exposure=False),
    Param("n_paths", 1000, "an int >= 1", positive_int, "simulated paths for horizons h > 1"),
)
_DESIGN_PARAMS = ("trend", "seasonality", "fourier_k", "exog", "interventions")


class INGARCH(ModelSpec):
    """Log-linear Poisson / NB2 count autoregression (INGARCH with log link, as R's tscount).

    Parameters
    ----------
    distribution : "poisson" or "negbin" (default).
    past_obs : lags k of log(1 + y_{t-k}); plays the GLMs' ``lags`` role (there is no ``lags``).
    past_mean : lags l of the log-mean nu_{t-l}; ``()`` gives the GLM with log1p lags.
    trend, seasonality, fourier_k, exog, interventions : covariates x_t, as in the GLMs.
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
    recursion with the series' random stream (empirical pmf per period).
    Coefficients: ``(Intercept)``, ``obs_lag<k>``, ``mean_lag<l>``, the design's
    covariate names, ``dispersion`` (NB2 alpha).
    """

    name = "ingarch"
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
        kw = {k: getattr(self, k) for k in (*_DESIGN_PARAMS, "n_paths")}
        return [("negbin_glm", NegBinGLM(**kw, lags=tuple(self.past_obs)))] + super().fallback_specs()

    def _fit_series(self, s: Series) -> SeriesFit:
        dspec = self._design()
        if len(s.y) <= dspec.max_lag:
            raise FitFailure(f"{len(s.y)} periods, past_obs needs more than {dspec.max_lag}")
        d = build_design(dspec, s)
        y = d.y.astype(np.int64)
        if not y.any():
            raise FitFailure("all counts in the fit window are zero: no rate is estimable")
        cols, nb, L = d.keep.copy(), self.distribution == "negbin", len(self.past_mean)
        if len(y) <= int(cols.sum()) + L + nb:
            raise FitFailure(f"{len(y)} observations for {int(cols.sum()) + L + nb} parameters")
        # Aliased columns (R's QR rule) are dropped and reported as NaN, like uninformative ones.
        r = np.abs(np.diag(np.linalg.qr(d.X[:, cols], mode="r")))
        cols[np.flatnonzero(cols)[r <= _ALIAS_TOL * np.maximum(np.linalg.norm(d.X[:, cols], axis=0), 1e-300)]] = False
        k = int(cols.sum()) + L + nb
        idx = np.flatnonzero(cols)
        obs = [j for j, c in enumerate(idx) if c in d.lag_cols]
        nu_init = initial_log_mean(s.y, min(len(s.y), s.season_length))
        res = fit_ingarch(d.X[:, cols], y, past_mean=self.past_mean, obs_cols=obs, nu_init=nu_init,
                          distribution=self.distribution, offset=d.offset)
        names = [f"obs_{nm}" if j in d.lag_cols else nm for j, nm in enumerate(d.names)]
        msg = re.sub(r"(columns? )(\d+(?:, \d+)*)", lambda m: m.group(1) + ", ".join(  # positions -> names
            names[idx[int(i)]] for i in m.group(2).split(", ")), res.message)
        if not res.converged:
            return SeriesFit(self, converged=False, loglik=res.loglik, n_params=k, n_obs=len(y), message=msg)
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
        return SeriesFit(self, converged=True, loglik=res.loglik, n_params=k, n_obs=len(y), coef=coef,
                         message=msg,
                         state={"beta": np.nan_to_num(beta), "a": res.coef[len(idx):], "alpha": res.alpha,
                                "nu_hist": nu_hist, "stationarity": res.stationarity})

    def _forecast_series(self, fit: SeriesFit, s: Series, h: int, future, rng: np.random.Generator
                         ) -> SeriesForecast:
        st, dspec = fit.state, self._design()
        Xf, off, lag_cols = future_design(dspec, s, h, future)
        base = Xf @ st["beta"] + off  # lag columns are 0 in Xf: the non-lag part of nu
        b, a, alpha = st["beta"][list(lag_cols)], st["a"], float(st["alpha"])
        P, Q, qs = len(self.past_obs), max(self.past_mean, default=0), np.asarray(self.past_mean, dtype=int)
        if h == 1 or not P:  # closed form: nu_{T+j} is known when no simulated count enters it
            nus = list(st["nu_hist"])
            for j in range(h):
                obs = lag_values(s.y.astype(float), self.past_obs) @ b if P else 0.0
                nus.append(base[j] + obs + sum(aq * nus[-q] for q, aq in zip(qs, a)))
            mu = capped_mean(np.exp(np.minimum(nus[Q:], _NU_MAX)), mean_cap(s.y), s.uid)
            if self.distribution == "poisson":
                return SeriesForecast("poisson", mu=mu)
            return SeriesForecast("negbin", mu=mu, alpha=np.full(h, alpha))
        n, kmax = self.n_paths, max(self.past_obs, default=0)
        Y = np.empty((n, kmax + h))
        Y[:, :kmax] = s.y[len(s.y) - kmax:]
        N = np.empty((n, Q + h))
        N[:, :Q] = st["nu_hist"]
        out = np.empty((h, n), dtype=np.int64)
        cap = mean_cap(s.y)
        for j in range(h):  # vectorised over paths; the recursion runs over the horizon
            nu = np.full(n, base[j])
            for k, bk in zip(self.past_obs, b):
                nu += bk * np.log1p(Y[:, kmax + j - k])
            for q, aq in zip(qs, a):
                nu += aq * N[:, Q + j - q]
            mu = capped_mean(np.exp(np.minimum(nu, _NU_MAX)), cap, s.uid)
            draw = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu)) if alpha > 0 else rng.poisson(mu)
            out[j], Y[:, kmax + j], N[:, Q + j] = draw, draw, nu
        return SeriesForecast("samples", paths=out)
