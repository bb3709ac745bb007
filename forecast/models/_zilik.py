"""Log-likelihood of zero-inflated Poisson / NB2 regressions, with exact gradient and Hessian.

The objective under the solvers of :mod:`forecast.models._zifit`: per-observation count
terms (NB2 written so every term stays O(y + mu) as theta -> inf) and their assembly in
(beta, gamma[, tau = log theta]), plus the input check and :func:`zi_loglik`.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

_THETA_ASYMPTOTIC = 1e3  # above it, series replace lgamma/digamma differences


def _prepare(X: ArrayLike, y: ArrayLike, offset: ArrayLike | None, Z: ArrayLike | None):
    y = np.asarray(y, dtype=float).ravel()
    n = y.size
    X = np.asarray(X, dtype=float).reshape(n, -1)
    Z = np.ones((n, 1)) if Z is None else np.asarray(Z, dtype=float).reshape(n, -1)
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    off = np.broadcast_to(off, (n,)).astype(float)  # a scalar offset is allowed
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(X)) and np.all(np.isfinite(Z))
            and np.all(np.isfinite(off))):
        raise ValueError("X, y, offset and Z must be finite.")
    if np.any(y < 0) or np.any(y != np.round(y)):
        raise ValueError("y must hold non-negative integer counts.")
    return X, y, off, Z


def _lgamma_excess(y, theta: float):
    """lgamma(y + theta) - lgamma(theta) - y log(theta), accurate also for huge theta."""
    if theta < _THETA_ASYMPTOTIC:
        return special.gammaln(y + theta) - special.gammaln(theta) - y * np.log(theta)
    # Stirling with its 1/(12x) - 1/(360x^3) correction: each term is O(y), so no digits are
    # lost to lgamma(theta) ~ theta log theta (as R's dnbinom avoids them via bd0/stirlerr)
    x = y + theta
    corr = 1 / (12 * x) - 1 / (360 * x**3) - (1 / (12 * theta) - 1 / (360 * theta**3))
    return (x - 0.5) * np.log1p(y / theta) - y + corr


def _digamma_diff(y, theta: float):
    """digamma(y + theta) - digamma(theta), accurate also for huge theta."""
    if theta < _THETA_ASYMPTOTIC:
        return special.digamma(y + theta) - special.digamma(theta)
    x = y + theta
    return (np.log1p(y / theta) - 1 / (2 * x) + 1 / (2 * theta)
            - 1 / (12 * x**2) + 1 / (12 * theta**2) + 1 / (120 * x**4) - 1 / (120 * theta**4))


def _count_terms(y, eta, tau, nb: bool, order: int):
    """Log pmf of the count part and its derivatives in (eta, tau), per observation."""
    mu = np.exp(eta)
    if not nb:
        lf = y * eta - mu - special.gammaln(y + 1.0)
        if order == 0:
            return mu, lf, None
        zero = np.zeros_like(y)
        return mu, lf, (y - mu, -mu, zero, zero, zero)
    theta = float(np.exp(tau))
    r = theta + mu
    # log NB2 pmf written so that every term stays O(y + mu) as theta -> inf (Poisson limit)
    lf = (_lgamma_excess(y, theta) - special.gammaln(y + 1.0)
          - (theta + y) * np.log1p(mu / theta) + y * eta)
    if order == 0:
        return mu, lf, None
    d_e = theta * (y - mu) / r
    d_ee = -theta * mu * (theta + y) / r**2
    d_th = _digamma_diff(y, theta) - np.log1p(mu / theta) + (mu - y) / r
    d_thth = (special.polygamma(1, y + theta) - special.polygamma(1, theta)
              + mu / (theta * r) - (mu - y) / r**2)
    d_t = theta * d_th  # chain rule to tau = log theta
    d_tt = theta**2 * d_thth + d_t
    d_et = theta * mu * (y - mu) / r**2
    return mu, lf, (d_e, d_ee, d_t, d_tt, d_et)


def _evaluate(params, X, y, off, Z, nb: bool, order: int = 2):
    """Log-likelihood and (order 2) its gradient and Hessian in (beta, gamma[, tau])."""
    p, q = X.shape[1], Z.shape[1]
    eta = X @ params[:p] + off
    zeta = Z @ params[p:p + q]
    tau = params[p + q] if nb else 0.0
    with np.errstate(all="ignore"):  # trial steps may overflow; they are rejected as -inf
        mu, lf, d = _count_terms(y, eta, tau, nb, order)
        is0 = y == 0
        softplus = np.logaddexp(0.0, zeta)
        # log(pi + (1 - pi) f0) = logaddexp(zeta, log f0) - log(1 + e^zeta): no cancellation
        ll_i = np.where(is0, np.logaddexp(zeta, lf), lf) - softplus
        ll = float(np.sum(ll_i))
        if not np.isfinite(ll):
            ll = -np.inf
        if order == 0:
            return ll, None, None
        d_e, d_ee, d_t, d_tt, d_et = d
        pi = special.expit(zeta)
        # w = posterior probability that an observed zero came from the inflation part;
        # with w = 0 for y > 0 one set of formulas covers both kinds of observation.
        w = np.where(is0, special.expit(zeta - lf), 0.0)
        u = 1.0 - w
        wu = w * u
        g_e, g_z, g_t = u * d_e, w - pi, u * d_t
        h_ee = wu * d_e**2 + u * d_ee
        h_zz = wu - pi * (1.0 - pi)
        h_ez = -wu * d_e
        blocks = [[X.T @ (h_ee[:, None] * X), X.T @ (h_ez[:, None] * Z)],
                  [None, Z.T @ (h_zz[:, None] * Z)]]
        blocks[1][0] = blocks[0][1].T
        grad = [X.T @ g_e, Z.T @ g_z]
        H = np.block(blocks)
        if nb:
            h_et = wu * d_e * d_t + u * d_et
            h_zt = -wu * d_t
            h_tt = np.sum(wu * d_t**2 + u * d_tt)
            col = np.concatenate([X.T @ h_et, Z.T @ h_zt])
            H = np.block([[H, col[:, None]], [col[None, :], np.array([[h_tt]])]])
            grad.append(np.array([np.sum(g_t)]))
        grad = np.concatenate(grad)
    return ll, grad, H


def zi_loglik(X: ArrayLike, y: ArrayLike, coef: ArrayLike, zero_coef: ArrayLike,
              alpha: float = 0.0, offset: ArrayLike | None = None,
              Z: ArrayLike | None = None) -> float:
    """Log-likelihood (all constants) of a ZIP (``alpha == 0``) or ZINB model.

    Parameters
    ----------
    X, y, offset, Z
        As in :func:`fit_zip`.
    coef, zero_coef : array_like
        Count-part beta (log link) and inflation-part gamma (logit link).
    alpha : float, default 0
        NB2 dispersion; 0 gives the Poisson count part.

    Returns
    -------
    float
        The log-likelihood; ``-inf`` where it underflows.
    """
    X, y, off, Z = _prepare(X, y, offset, Z)
    nb = alpha > 0
    params = np.concatenate([np.ravel(coef), np.ravel(zero_coef), [-np.log(alpha)] if nb else []])
    return _evaluate(params.astype(float), X, y, off, Z, nb, order=0)[0]
