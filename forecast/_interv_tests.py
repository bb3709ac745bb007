"""Score and likelihood-ratio tests for an intervention effect, on arrays (the numerics of
:func:`forecast.interventions.score_test` and :func:`forecast.interventions.detect`).

The alternative adds one covariate to the log-mean of the null model,

    x_t = delta^(t - tau) 1{t >= tau}

(delta = 0 a spike, 1 a level shift, 0 < delta < 1 a transient shift). Every null model
here is log-linear, log mu_t = nu_t(theta), with Y_t | past ~ Poisson(mu_t) or NB2(mu_t,
alpha). With D = d nu / d theta at the null fit and the residual r_t = (y_t - mu_t) /
(1 + alpha mu_t) (the score of nu_t), the score of the new coefficient gamma at gamma = 0 is
U = sum_t d_t r_t, d_t = d nu_t / d gamma, and its efficient (conditional expected)
information, with W = diag(mu / (1 + alpha mu)),

    I = d'W d - d'W D (D'W D)^-1 D'W d,

so S = U^2 / I ~ chi2(1) under the null. alpha is orthogonal to the log-mean parameters in
NB2 (zero expected cross information), so it needs no correction. For the GLMs D = X; for
the INGARCH D solves the recursion's derivative filter, and d_t is the filtered x_t when
the effect enters the linear predictor and propagates through the feedback ("internal")
or x_t itself when it is added to the observation's log-mean only ("external"),
Liboschik, Fokianos & Fried (2017), tscount ``interv_test``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import linalg, optimize, signal, special

from forecast.models._glmfit import _nb_terms, fit_negbin, fit_poisson
from forecast.models._ingarchfit import fit_ingarch, initial_log_mean

KINDS = ("internal", "external")


@dataclass
class NullFit:
    """A fitted null model on the rows it uses, ready for score statistics."""

    y: np.ndarray        # (n,) counts of the rows used
    pos: np.ndarray      # (n,) period index (0 = the series' first period) of each row
    mu: np.ndarray       # (n,) fitted means
    alpha: float         # NB2 dispersion (0: Poisson)
    D: np.ndarray        # (n, k) d nu / d theta
    loglik: float
    converged: bool
    coef: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the null's coefficients of X
    a: np.ndarray = field(default_factory=lambda: np.zeros(0))  # INGARCH mean-lag coefficients
    past_mean: tuple[int, ...] = ()
    message: str = ""    # why the fit did not converge ("" when it did)
    refit: Callable[[np.ndarray, str], tuple[float, float, float]] | None = None  # z, kind -> ll, gamma, se

    @property
    def resid(self) -> np.ndarray:
        return (self.y - self.mu) / (1 + self.alpha * self.mu)

    @property
    def weight(self) -> np.ndarray:
        return self.mu / (1 + self.alpha * self.mu)

    def direction(self, x: np.ndarray, kind: str) -> np.ndarray:
        """d nu / d gamma of covariate columns ``x`` (n,) or (n, m)."""
        if kind == "internal" and len(self.a):
            Q = max(self.past_mean)
            A = np.zeros(Q + 1)
            A[0] = 1.0
            A[np.asarray(self.past_mean)] -= self.a
            return signal.lfilter([1.0], A, x, axis=0)
        return x


def effect_column(pos: np.ndarray, i0: int | np.ndarray, delta: float) -> np.ndarray:
    """x_t = delta^(t - tau) 1{t >= tau}; a vector of tau gives one column each (n, m)."""
    k = np.asarray(pos, dtype=float)[:, None] - np.atleast_1d(i0)[None, :]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        x = np.where(k >= 0, np.power(float(delta), np.maximum(k, 0)), 0.0)
    return x[:, 0] if np.ndim(i0) == 0 else x


def score_stats(null: NullFit, X: np.ndarray, kind: str) -> np.ndarray:
    """Score statistics U^2 / I of covariate columns X (n, m) against ``null`` (see module doc)."""
    Z = null.direction(np.asarray(X, dtype=float).reshape(len(null.y), -1), kind)
    r, w, D = null.resid, null.weight, null.D
    U = Z.T @ r
    F = (D.T * w) @ D
    A = (D.T * w) @ Z
    info = w @ Z**2 - np.sum(A * linalg.solve(F, A, assume_a="pos"), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(info > 1e-10 * np.maximum(w @ Z**2, 1e-300), U**2 / info, np.nan)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values; NaN entries stay NaN and do not count as tests."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out[order] = adj
    return out


# ----------------------------------------------------------------------------- null fits

def glm_null(X: np.ndarray, y: np.ndarray, off: np.ndarray, pos: np.ndarray, nb: bool) -> NullFit:
    """Poisson / NB2 GLM null fit (unpenalised maximum likelihood)."""
    fit = fit_negbin if nb else fit_poisson
    g = fit(X, y, off)
    mu = np.asarray(g.mu, dtype=float)

    def refit(z: np.ndarray, kind: str) -> tuple[float, float, float]:
        h = fit(np.column_stack([X, z]), y, off)
        ok = h.converged and "rank-deficient" not in h.message
        return (h.loglik, h.coef[-1], h.std_error[-1]) if ok else (np.nan, np.nan, np.nan)

    return NullFit(y=np.asarray(y, float), pos=pos, mu=mu, alpha=float(g.alpha), D=np.asarray(X, float),
                   loglik=float(g.loglik), converged=bool(g.converged) and "rank-deficient" not in g.message,
                   coef=np.asarray(g.coef, float), message=str(g.message), refit=refit)


def ingarch_null(X: np.ndarray, y: np.ndarray, pos: np.ndarray, *, past_mean: tuple[int, ...],
                 obs_cols: list[int], nu_init: float, distribution: str) -> NullFit:
    """Log-linear INGARCH null fit; D from the derivative recursion of the log-mean."""
    yi = np.asarray(y).astype(np.int64)
    res = fit_ingarch(X, yi, past_mean=past_mean, obs_cols=obs_cols, nu_init=nu_init, distribution=distribution)
    p, L = X.shape[1], len(past_mean)
    a = np.asarray(res.coef[p:p + L], dtype=float)
    nu = np.asarray(res.nu, dtype=float)
    S = [X]
    for q in past_mean:  # nu_{t-q}, nu_init before the window
        S.append(np.r_[np.full(q, nu_init), nu[:len(nu) - q]][:, None])
    S = np.column_stack(S)
    if L:
        A = np.zeros(max(past_mean) + 1)
        A[0] = 1.0
        A[np.asarray(past_mean)] -= a
        D = signal.lfilter([1.0], A, S, axis=0)
    else:
        D = S

    def refit(z: np.ndarray, kind: str) -> tuple[float, float, float]:
        if kind == "external" and L:
            return _external_fit(X, yi, z, res, past_mean, nu_init, obs_cols)
        h = fit_ingarch(np.column_stack([X, z]), yi, past_mean=past_mean, obs_cols=obs_cols, nu_init=nu_init,
                        distribution=distribution)
        return (h.loglik, h.coef[p], h.std_error[p]) if h.converged else (np.nan, np.nan, np.nan)

    return NullFit(y=yi.astype(float), pos=pos, mu=np.exp(nu), alpha=float(res.alpha), D=D,
                   loglik=float(res.loglik), converged=bool(res.converged), coef=np.asarray(res.coef[:p]), a=a,
                   past_mean=tuple(past_mean), message=str(res.message), refit=refit)


def _external_fit(X, y, z, null_res, past_mean, nu_init, obs_cols) -> tuple[float, float, float]:
    """INGARCH with an external effect: nu_t = kappa_t + gamma z_t, kappa the covariate-free recursion.

    Maximised numerically (BFGS from the null fit, gamma = 0); the SE of gamma from BFGS's
    inverse-Hessian approximation is not used: the Wald interval comes from the numerical
    Hessian at the optimum.
    """
    p, L = X.shape[1], len(past_mean)
    nb = null_res.alpha > 0
    lgy = special.gammaln(y + 1.0)
    Q = max(past_mean, default=0)
    qs = np.asarray(past_mean, dtype=int)

    def negll(x: np.ndarray) -> float:
        A = np.zeros(Q + 1)
        A[0] = 1.0
        A[qs] -= x[p:p + L]
        if np.sum(np.abs(x[obs_cols])) + np.sum(np.abs(x[p:p + L])) >= 1:
            return 1e300
        kappa = signal.lfilter([1.0], A, X @ x[:p] - nu_init * (1 - x[p:p + L].sum())) + nu_init
        nu = kappa + x[p + L] * z
        if not np.all(np.isfinite(nu)) or nu.max() > 700:
            return 1e300
        alpha = float(np.exp(x[-1])) if nb else 0.0
        return -float(np.sum(_nb_terms(y, nu, alpha, lgy, 0)))

    x0 = np.r_[null_res.coef[:p + L], 0.0, [np.log(null_res.alpha)] if nb else []]
    opt = optimize.minimize(negll, x0, method="BFGS", options={"gtol": 1e-7, "maxiter": 2000})
    if not np.isfinite(opt.fun):
        return np.nan, np.nan, np.nan
    H = _num_hessian(negll, opt.x)
    try:
        se = float(np.sqrt(linalg.inv(H)[p + L, p + L]))
    except linalg.LinAlgError:
        se = np.nan
    return -float(opt.fun), float(opt.x[p + L]), se


def _num_hessian(f: Callable, x: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    k = len(x)
    H = np.empty((k, k))
    E = np.eye(k) * eps
    for i in range(k):
        for j in range(i, k):
            H[i, j] = H[j, i] = (f(x + E[i] + E[j]) - f(x + E[i] - E[j]) - f(x - E[i] + E[j])
                                 + f(x - E[i] - E[j])) / (4 * eps**2)
    return H


# ----------------------------------------------------------------------------- simulation

def simulate(base: np.ndarray, b: np.ndarray, lags: tuple[int, ...], a: np.ndarray, past_mean: tuple[int, ...],
             y_pre: np.ndarray, nu_init: float, alpha: float, n_rep: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n_rep`` count paths (n_rep, n) from a fitted log-linear model with feedback.

    nu_t = base_t + sum_k b_k log(1 + y_{t-k}) + sum_l a_l nu_{t-l}; ``y_pre`` are the
    observed counts before the first row (read by the first lags), nu_init the log-mean
    before the window.
    """
    n, kmax, Q = len(base), max(lags, default=0), max(past_mean, default=0)
    Y = np.empty((n_rep, kmax + n))
    Y[:, :kmax] = np.asarray(y_pre, dtype=float)[len(y_pre) - kmax:] if kmax else 0.0
    N = np.full((n_rep, Q + n), float(nu_init))
    for t in range(n):
        nu = np.full(n_rep, base[t])
        for k, bk in zip(lags, b):
            nu += bk * np.log1p(Y[:, kmax + t - k])
        for q, aq in zip(past_mean, a):
            nu += aq * N[:, Q + t - q]
        mu = np.exp(np.minimum(nu, 30.0))  # keeps rare explosive paths finite
        N[:, Q + t] = nu
        Y[:, kmax + t] = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu)) if alpha > 0 else rng.poisson(mu)
    return Y[:, kmax:]


__all__ = ["KINDS", "NullFit", "effect_column", "score_stats", "holm", "glm_null", "ingarch_null", "simulate",
           "initial_log_mean"]
