"""Maximum-likelihood solvers for Poisson and NB2 log-linear GLMs on arrays.

The numerical core under the ``poisson_glm`` and ``negbin_glm`` models: a design matrix,
counts, an optional offset (log exposure) and an optional ridge penalty in; a frozen
:class:`GLMFit` out. Only numpy and scipy are used. Estimates, log-likelihood, AIC and
standard errors follow R's ``glm(family = poisson)`` and ``MASS::glm.nb``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy import linalg, special

from forecast.models._glmcheck import _SEPARATION_MU, _alias_note, _prepare, _separation
from forecast.models._glmgroups import group_means_start, profile_newton
# (the per-observation NB2 pieces, importable from here as before)
from forecast.models._nbpieces import (_DH_POLY, _H_POLY, _SERIES_U, _TABLE_MAX_Y,  # noqa: F401
                                       _dispersion_sums, _h_and_dh, _log1p_ratio)

__all__ = ["GLMFit", "fit_poisson", "fit_negbin", "poisson_loglik", "negbin_loglik"]

@dataclass(frozen=True)
class GLMFit:
    """Result of a Poisson or NB2 maximum-likelihood fit.

    Attributes
    ----------
    coef : ndarray, shape (p,)
        Log-scale coefficients; 0.0 for aliased columns (R: NA, predicted as 0); the last
        iterate for diverging (separated) columns; NaN when all counts are zero.
    std_error, cov : ndarray, shapes (p,), (p, p)
        cov = (X' W X + P)^-1, W = mu / (1 + alpha mu): expected information of beta with
        alpha held at its estimate (R's ``glm.nb``; W = mu for Poisson); the penalised
        (Bayesian-style) information when penalty > 0. NaN where not estimable.
    alpha, alpha_se : float
        NB2 dispersion (var = mu + alpha mu^2; 0.0 for Poisson and at the boundary) and its
        SE from the observed profile information (NaN for Poisson and at the boundary).
    loglik, aic : float
        Unpenalised log-likelihood with all constants (as R's ``logLik``) and
        -2 loglik + 2 (non-aliased coefficients, + 1 for NB even at the boundary).
    n_obs, n_iter : int
        Observations; Newton iterations (for NB including the Poisson start).
    converged : bool
        max |gradient| <= tol at an optimum (interior, or alpha = 0 for NB). False on
        separation, all-zero y or when ``max_iter`` ran out; ``message`` says which.
    grad_norm : float
        max |score| of the penalised log-likelihood over beta (and log alpha for NB).
    message : str
        '' for a clean fit, otherwise what happened ('; '-separated).
    mu : ndarray, shape (n,)
        Fitted means.
    """

    coef: np.ndarray
    std_error: np.ndarray
    cov: np.ndarray
    alpha: float
    alpha_se: float
    loglik: float
    aic: float
    n_obs: int
    converged: bool
    n_iter: int
    grad_norm: float
    message: str
    mu: np.ndarray


def poisson_loglik(y: ArrayLike, mu: ArrayLike) -> np.ndarray:
    """Elementwise Poisson log-pmf ``y log mu - mu - log y!`` (mu = 0, y = 0 gives 0)."""
    y = np.asarray(y, dtype=float)
    return special.xlogy(y, mu) - np.asarray(mu, dtype=float) - special.gammaln(y + 1)


def negbin_loglik(y: ArrayLike, mu: ArrayLike, alpha: float) -> np.ndarray:
    """Elementwise NB2 log-pmf with all constants, exact down to alpha = 0.

    ``y`` (non-negative integers) and ``mu`` broadcast; ``alpha`` >= 0 is a scalar and
    alpha = 0 gives :func:`poisson_loglik`.

    Notes
    -----
    With u = alpha mu,

    .. math:: \\log p(y) = \\sum_{k<y} \\log(1 + k\\alpha) - \\log y! + y \\log\\mu
              - y \\log(1 + u) - \\mu \\frac{\\log(1 + u)}{u},

    which equals lgamma(y + 1/alpha) - lgamma(1/alpha) - ... but has no cancellation as
    alpha -> 0, where it tends to the Poisson log-pmf. Costs O(max y) for the sum table.
    """
    if not (np.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite float >= 0; got {alpha!r}.")
    y, mu = np.broadcast_arrays(np.asarray(y), np.asarray(mu, dtype=float))
    yi = y.astype(np.int64)
    s0 = _dispersion_sums(yi.ravel(), float(alpha))[0].reshape(y.shape)
    u = alpha * mu
    return s0 - special.gammaln(yi + 1.0) + special.xlogy(yi, mu) - yi * np.log1p(u) - mu * _log1p_ratio(u)


def _nb_terms(y: np.ndarray, eta: np.ndarray, alpha: float, lgy: np.ndarray, order: int):
    """Per-observation log-lik and derivatives in eta = log mu and alpha (alpha = 0: Poisson).

    order 0: ``ll``; 1: (ll, score_eta, w_obs = -d2 ll/deta2); 2: also g_a = d ll/d alpha,
    h_aa = d2 ll/d alpha2 and h_ea = d2 ll/(deta d alpha), finite at alpha = 0 where
    g_a = ((y - mu)^2 - y) / 2.
    """
    mu = np.exp(eta)
    if alpha == 0.0 and order < 2:  # the Poisson fast path
        ll = y * eta - mu - lgy
        return ll if order == 0 else (ll, y - mu, mu)
    u = alpha * mu
    s0, s1, s2 = _dispersion_sums(y, alpha)
    ll = s0 - lgy + y * eta - y * np.log1p(u) - mu * _log1p_ratio(u)
    if order == 0:
        return ll
    q = 1 / (1 + u)
    score, w_obs = (y - mu) * q, mu * (1 + alpha * y) * q * q
    if order == 1:
        return ll, score, w_obs
    h, dh = _h_and_dh(u)
    g_a = s1 + mu * mu * h - y * mu * q
    h_aa = -s2 + mu**3 * dh + y * (mu * q) ** 2
    return ll, score, w_obs, g_a, h_aa, -(y - mu) * mu * q * q


# Solver machinery.

def _spd_solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve A x = b for symmetric positive definite A; LinAlgError if it is not."""
    return linalg.cho_solve((np.linalg.cholesky(A), True), b, check_finite=False)


def _newton(fun: Callable, x0: np.ndarray, tol: float, max_iter: int):
    """Damped Newton ascent: step-halving on the objective, Levenberg shift if H is not ND.

    ``fun(x, 0)`` returns the objective, ``fun(x, 2)`` (objective, gradient, Hessian).
    Stops when max |gradient| <= tol. Returns x, gradient, Hessian, iterations, converged.
    """
    x = x0.copy()
    f, g, H = fun(x, 2)
    for it in range(max_iter + 1):
        if np.max(np.abs(g), initial=0.0) <= tol:
            return x, g, H, it, True
        if it == max_iter or not np.isfinite(f):
            break
        scale = np.max(np.abs(np.diag(H)), initial=1.0)
        step = g / scale  # gradient ascent if even the largest shift fails
        for shift in (0.0, *(scale * 10.0 ** np.arange(-10, 3))):
            try:
                step = _spd_solve(-H + np.diag(np.full(x.size, shift)), g)
                break
            except (linalg.LinAlgError, ValueError):
                continue
        # Rounding in f is ~n eps |f|; allow for it or tiny last steps would be refused.
        slack = 1e-12 * (1.0 + abs(f))
        new = fun(x + step, 2)
        for _ in range(40):
            if np.isfinite(new[0]) and new[0] >= f - slack:
                break
            step = step / 2
            new = (fun(x + step, 0),)
        else:
            break
        x = x + step
        f, g, H = new if len(new) == 3 else fun(x, 2)
    return x, g, H, it, False


def _objective(X, y, off, pen, lgy, with_alpha: bool):
    """Penalised log-likelihood in x = beta (Poisson) or x = (beta, log alpha) (NB)."""
    p = X.shape[1]

    def fun(x: np.ndarray, order: int):
        beta, alpha = x[:p], (float(np.exp(x[p])) if with_alpha else 0.0)
        ridge = 0.5 * np.sum(pen * beta**2)
        t = _nb_terms(y, X @ beta + off, alpha, lgy, order if with_alpha else min(order, 1))
        if order == 0:
            return np.sum(t) - ridge
        ll, score, w_obs = t[:3]
        g = X.T @ score - pen * beta
        H = -(X.T * w_obs) @ X - np.diag(pen)
        if with_alpha:  # chain rule to theta = log alpha: g_t = a g_a, H_tt = a^2 H_aa + g_t
            g_a, h_aa, h_ea = t[3:]
            g_t = alpha * np.sum(g_a)
            h_bt = alpha * (X.T @ h_ea)
            g = np.r_[g, g_t]
            H = np.block([[H, h_bt[:, None]], [h_bt[None, :], alpha**2 * np.sum(h_aa) + g_t]])
        return np.sum(ll) - ridge, g, H

    return fun


def _poisson_start(X, y, off, pen):
    """First IRLS step from mu = y + 0.1 (R's mustart): weighted LS of log mu - offset."""
    mu0 = y + 0.1
    A, b = (X.T * mu0) @ X + np.diag(pen), (X.T * mu0) @ (np.log(mu0) - off)
    try:
        return _spd_solve(A, b)
    except linalg.LinAlgError:
        return linalg.lstsq(A, b)[0]


def _finish(X, y, off, pen, kept, beta, alpha, g, H, n_iter, converged, notes, nb):
    """Assemble a GLMFit: expected-information covariance, diagnostics and messages."""
    n, p = X.shape
    Xk = X[:, kept]
    eta = Xk @ beta + off
    mu = np.exp(eta)
    loglik = float(np.sum(_nb_terms(y, eta, alpha, special.gammaln(y + 1.0), 0)))
    w_exp = mu / (1 + alpha * mu)
    info = (Xk.T * w_exp) @ Xk + np.diag(pen[kept])
    try:
        cov_k = _spd_solve(info, np.eye(info.shape[0]))
    except linalg.LinAlgError:
        cov_k = linalg.pinvh(info)
        notes.append("information matrix singular: covariance from its pseudo-inverse")
    alpha_se = np.nan
    if nb and alpha > 0:  # profile information of log alpha = 1 / [(-H)^-1]_tt; delta method
        alpha_se = alpha * float(np.sqrt(np.linalg.pinv(-H)[-1, -1]))
    coef, cov = np.zeros(p), np.full((p, p), np.nan)
    coef[kept] = beta
    cov[np.ix_(kept, kept)] = cov_k
    if not kept.all():
        notes.insert(0, _alias_note(kept))
    if np.any(mu[y == 0] < _SEPARATION_MU) or not converged:
        div, note = _separation(Xk, y, pen[kept] == 0, kept)
        if div.size:
            notes.insert(0, note)
            converged = False
            cov[div, :] = np.nan
            cov[:, div] = np.nan
        elif not converged:
            notes.append(f"did not converge in {n_iter} iterations (max |gradient| {np.max(np.abs(g)):.3g})")
    k = int(kept.sum()) + (1 if nb else 0)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diag(cov))
    return GLMFit(coef=coef, std_error=se, cov=cov, alpha=float(alpha), alpha_se=alpha_se,
                  loglik=loglik, aic=-2 * loglik + 2 * k, n_obs=n, converged=bool(converged),
                  n_iter=int(n_iter), grad_norm=float(np.max(np.abs(g), initial=0.0)),
                  message="; ".join(notes), mu=mu)


def _all_zero(X, kept, nb: bool) -> GLMFit:
    """All counts zero: sup loglik = 0 at mu -> 0, so nothing is estimable."""
    n, p = X.shape
    nan_p = np.full(p, np.nan)
    return GLMFit(coef=nan_p, std_error=nan_p.copy(), cov=np.full((p, p), np.nan),
                  alpha=np.nan if nb else 0.0, alpha_se=np.nan, loglik=0.0,
                  aic=2.0 * (int(kept.sum()) + nb), n_obs=n, converged=False, n_iter=0,
                  grad_norm=np.nan, mu=np.zeros(n),
                  message="all counts are zero: the MLE of the intercept is -inf (mu -> 0); "
                          "no coefficient is estimable")


def _fit_poisson_core(X, y, off, pen, kept, lgy, tol, max_iter):
    """The Poisson ascent, from the closed form where the design only tells groups of
    periods apart (:mod:`~forecast.models._glmgroups`: it then stops at once), else from
    R's start. Returns the ascent's (x, g, H, iterations, converged) and the closed form's
    coefficients or None."""
    Xk = X[:, kept]
    found = None if pen[kept].any() else group_means_start(Xk, y[None, :].astype(float), off[None, :])
    exact = found[0][0] if found is not None and found[1][0] else None
    fun = _objective(Xk, y, off, pen[kept], lgy, with_alpha=False)
    return _newton(fun, _poisson_start(Xk, y, off, pen[kept]) if exact is None else exact, tol, max_iter), exact


class _AlphaProfile:
    """One series' NB2 log-likelihood in log alpha with mu held (group designs)."""

    def __init__(self, y, eta, lgy):
        self.y, self.eta, self.lgy = y, eta, lgy

    def take(self, rows):
        return self

    def __call__(self, theta, order):
        a = float(np.exp(theta[0]))
        t = _nb_terms(self.y, self.eta, a, self.lgy, 2 if order else 0)
        if order == 0:
            return np.array([np.sum(t)])
        g = a * np.sum(t[3])
        return np.array([np.sum(t[0])]), np.array([g]), np.array([a * a * np.sum(t[4]) + g])


def fit_poisson(X: ArrayLike, y: ArrayLike, offset: ArrayLike | None = None, *, penalty: float = 0.0,
                penalize_intercept: bool = False, tol: float = 1e-8, max_iter: int = 100) -> GLMFit:
    """Fit a Poisson log-linear GLM by penalised maximum likelihood (Newton/IRLS).

    Parameters
    ----------
    X : array_like, shape (n, p)
        Design matrix; column 0 is the intercept by convention.
    y : array_like of int, shape (n,)
        Counts.
    offset : array_like, shape (n,), optional
        Added to the linear predictor (log exposure).
    penalty : float
        Ridge weight lambda >= 0 on every column but 0 (all if ``penalize_intercept``).
    tol : float
        Converged when max |gradient of the penalised log-likelihood| <= tol (absolute).
    max_iter : int
        Newton iterations allowed.

    Returns
    -------
    GLMFit
        ``alpha`` = 0, ``alpha_se`` = NaN. Never raises for degenerate data: separation,
        all-zero y and aliased columns are reported in ``converged`` and ``message``.

    Notes
    -----
    .. math:: y_i \\sim \\mathrm{Poisson}(\\mu_i),\\quad \\log\\mu_i = x_i^\\top\\beta + o_i,

    maximising :math:`\\ell(\\beta) - \\tfrac{\\lambda}{2}\\sum_{j\\in J}\\beta_j^2` by Newton steps
    (= IRLS for this canonical link) with step-halving on that objective, from R's start
    mu = y + 0.1. cov = (X' diag(mu) X + lambda I_J)^-1: with lambda > 0 this is the
    penalised (Bayesian-style: posterior under beta_j ~ N(0, 1/lambda)) covariance, not
    a sampling covariance. Separation (an infinite MLE) is confirmed by a linear
    programme and the diverging columns are named in ``message``.
    """
    X, y, off, pen, kept = _prepare(X, y, offset, penalty, penalize_intercept)
    if not y.any():
        return _all_zero(X, kept, nb=False)
    lgy = special.gammaln(y + 1.0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        (beta, g, H, it, conv), _ = _fit_poisson_core(X, y, off, pen, kept, lgy, tol, max_iter)
        return _finish(X, y, off, pen, kept, beta, 0.0, g, H, it, conv, [], nb=False)


def boundary_note(score0: float) -> str:
    """Message of an NB2 fit whose alpha is at its boundary 0."""
    return (f"alpha at the boundary 0 (score in alpha at 0 = {score0:.3g} <= 0: no "
            "overdispersion relative to Poisson); returning the Poisson fit")


def fit_negbin(X: ArrayLike, y: ArrayLike, offset: ArrayLike | None = None, *, penalty: float = 0.0,
               penalize_intercept: bool = False, tol: float = 1e-8, max_iter: int = 200,
               alpha_start: float | None = None) -> GLMFit:
    """Fit an NB2 log-linear GLM, estimating beta and the dispersion alpha jointly by ML.

    Parameters
    ----------
    X, y, offset, penalty, penalize_intercept, tol, max_iter
        As in :func:`fit_poisson`; ``tol`` applies to all parameters incl. log alpha.
    alpha_start : float, optional
        Starting alpha > 0 (unused at the boundary). Default: the moment estimate
        sum((y - mu)^2 - y) / sum(mu^2) at the Poisson fit.

    Returns
    -------
    GLMFit
        At the boundary alpha = 0: the Poisson fit, alpha = 0, converged = True and a
        message saying so. Degenerate data are reported as in :func:`fit_poisson`.

    Notes
    -----
    .. math:: y_i \\sim \\mathrm{NB2}(\\mu_i, \\alpha),\\quad \\log\\mu_i = x_i^\\top\\beta + o_i,
              \\quad \\mathrm{Var}\\,y_i = \\mu_i + \\alpha\\mu_i^2.

    Damped Newton ascent on (beta, log alpha) jointly from the Poisson fit, with exact
    analytic gradient and Hessian, until max |gradient| <= tol. Boundary test: the score
    in alpha at alpha = 0 is :math:`\\tfrac12\\sum_i[(y_i-\\hat\\mu_i)^2 - y_i]` at the Poisson
    fit (where beta's score vanishes, so it is the profile's slope); if it is <= 0, no
    small alpha > 0 beats Poisson and alpha = 0 is returned. SE(beta) as R's ``glm.nb``:
    cov = (X' W X + P)^-1, W = mu / (1 + alpha mu), alpha held fixed (penalised,
    Bayesian-style when penalty > 0). ``alpha_se`` from the inverse observed joint Hessian.
    """
    X, y, off, pen, kept = _prepare(X, y, offset, penalty, penalize_intercept)
    if not y.any():
        return _all_zero(X, kept, nb=True)
    if alpha_start is not None and not (np.isfinite(alpha_start) and alpha_start > 0):
        raise ValueError(f"alpha_start must be a finite float > 0; got {alpha_start!r}.")
    lgy = special.gammaln(y + 1.0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        (beta, g, H, it0, conv), exact = _fit_poisson_core(X, y, off, pen, kept, lgy, tol, max_iter)
        mu = np.exp(X[:, kept] @ beta + off)
        score0 = float(np.sum(_nb_terms(y, np.log(mu), 0.0, lgy, 2)[3]))
        if score0 <= 0:
            return _finish(X, y, off, pen, kept, beta, 0.0, g, H, it0, conv, [boundary_note(score0)], nb=True)
        a0 = alpha_start if alpha_start is not None else 2 * score0 / np.sum(mu**2)
        if exact is not None:  # group design: mu is the MLE's at every alpha; alpha from its profile
            th, it_p, ok_p, _ = profile_newton(_AlphaProfile(y, np.log(mu), lgy), np.array([np.log(a0)]), tol, max_iter)
            a0, it0 = (float(np.exp(th[0])) if ok_p[0] else a0), it0 + int(it_p[0])
        fun = _objective(X[:, kept], y, off, pen[kept], lgy, with_alpha=True)
        x, g, H, it, conv = _newton(fun, np.r_[beta, np.log(a0)], tol, max_iter)
        return _finish(X, y, off, pen, kept, x[:-1], float(np.exp(x[-1])), g, H, it0 + it, conv, [], nb=True)
