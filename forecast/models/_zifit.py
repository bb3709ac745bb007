"""Maximum-likelihood fits of zero-inflated Poisson (ZIP) and NB2 (ZINB) regressions.

Only numpy and scipy are used. The estimates, log-likelihood, AIC and standard errors
follow R's ``pscl::zeroinfl`` (logit link for the inflation part, dispersion searched as
log theta with theta = 1 / alpha, covariance from the inverse observed Hessian).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from forecast.models._zilik import _evaluate, _prepare, zi_loglik

__all__ = ["ZIFit", "fit_zip", "fit_zinb", "zi_loglik"]

# Past these the MLE sits on the boundary of the parameter space (pi -> 0 or 1, alpha -> 0,
# mu -> 0 or inf): the likelihood is flat there, so a small gradient proves nothing.
_ZETA_BOUND = 18.0  # |logit pi| beyond it at the end: pi in (0, 1) is not estimable
_ZETA_RUNAWAY = 30.0  # ... and beyond this during the search: stop iterating
_LOG_THETA_BOUND = np.log(1e7)
_ETA_BOUND, _ETA_RUNAWAY = 30.0, 50.0  # same for |x'beta| (count-part separation)
_MAX_STEP = 5.0  # cap on a Newton step (sup norm) so a flat start cannot jump into overflow


@dataclass(frozen=True)
class ZIFit:
    """Result of a zero-inflated maximum-likelihood fit.

    Attributes
    ----------
    coef, std_error : ndarray, shape (p,)
        Count-part coefficients beta (log link) and their standard errors.
    zero_coef, zero_std_error : ndarray, shape (q,)
        Inflation-part coefficients gamma (logit link) and their standard errors.
    alpha, theta : float
        NB2 dispersion (var = mu + alpha mu^2) and size theta = 1 / alpha; 0 and inf for ZIP.
    cov : ndarray
        Covariance of (beta, gamma[, log theta]): inverse of the negative observed Hessian.
    loglik, aic : float
        Log-likelihood with all constants; AIC = -2 loglik + 2 (p + q [+ 1 for theta]).
    n_obs : int
    converged : bool
        True only for an interior maximum with max |gradient| <= tol and a negative
        definite Hessian. False for degenerate data; the parameters are then NaN or the
        last iterate, and ``message`` says why.
    n_iter : int
    grad_norm : float
        Max absolute gradient of the log-likelihood at the returned parameters.
    message : str
    mu, pi : ndarray, shape (n,)
        Count-part means and inflation probabilities per observation.
    """

    coef: np.ndarray
    zero_coef: np.ndarray
    std_error: np.ndarray
    zero_std_error: np.ndarray
    alpha: float
    theta: float
    cov: np.ndarray
    loglik: float
    aic: float
    n_obs: int
    converged: bool
    n_iter: int
    grad_norm: float
    message: str
    mu: np.ndarray
    pi: np.ndarray


def _newton(params, args, nb: bool, tol: float, max_iter: int):
    """Damped Newton ascent with backtracking; returns (params, ll, grad, H, n_iter, status)."""
    ll, g, H = _evaluate(params, *args, nb)
    eye = np.eye(params.size)
    for it in range(max_iter):
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
            return params, ll, g, H, it, "gradient or Hessian is not finite"
        gmax = np.max(np.abs(g))
        if gmax <= tol:
            return params, ll, g, H, it, "ok"
        # Levenberg shift until -H is positive definite, so the step is an ascent direction
        A, shift = -H, 0.0
        scale = max(1e-8, np.max(np.abs(np.diag(A))))
        while True:
            try:
                L = np.linalg.cholesky(A + shift * eye)
                step = np.linalg.solve(L.T, np.linalg.solve(L, g))
                break
            except np.linalg.LinAlgError:
                shift = max(2.0 * shift, 1e-6 * scale)
                if shift > 1e12 * scale:
                    return params, ll, g, H, it, "Hessian is degenerate"
        step *= min(1.0, _MAX_STEP / max(np.max(np.abs(step)), 1e-300))
        for _ in range(40):
            trial = params + step
            ll_t, g_t, H_t = _evaluate(trial, *args, nb)
            # near the optimum ll changes below rounding; then accept if the gradient shrinks
            if ll_t > ll or (ll_t >= ll - 1e-12 * (1.0 + abs(ll))
                             and np.max(np.abs(g_t)) < gmax):
                break
            step *= 0.5
        else:
            return params, ll, g, H, it, "line search failed (likelihood flat or not finite)"
        params, ll, g, H = trial, ll_t, g_t, H_t
        X, Z = args[0], args[3]
        if np.max(np.abs(Z @ params[X.shape[1]:X.shape[1] + Z.shape[1]])) > _ZETA_RUNAWAY:
            return params, ll, g, H, it + 1, "boundary_pi"
        if np.max(np.abs(X @ params[:X.shape[1]])) > _ETA_RUNAWAY:
            return params, ll, g, H, it + 1, "boundary_mu"
        if nb and params[-1] > _LOG_THETA_BOUND:
            return params, ll, g, H, it + 1, "boundary_theta"
    status = "ok" if np.max(np.abs(g)) <= tol else f"no convergence in max_iter={max_iter}"
    return params, ll, g, H, max_iter, status


def _poisson_start(X, y, off):
    """Poisson GLM by a few IRLS steps: a start that ignores the inflation."""
    eta = np.log(y + 0.5)
    beta = np.zeros(X.shape[1])
    for _ in range(10):
        mu = np.exp(np.clip(eta, -30.0, 30.0))
        z = eta - off + (y - mu) / mu
        sw = np.sqrt(mu)
        beta = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]
        eta = X @ beta + off
    return beta


def _degenerate(p: int, q: int, n: int, nb: bool, message: str) -> ZIFit:
    k = p + q + int(nb)
    return ZIFit(np.full(p, np.nan), np.full(q, np.nan), np.full(p, np.nan), np.full(q, np.nan),
                 np.nan if nb else 0.0, np.nan if nb else np.inf, np.full((k, k), np.nan),
                 np.nan, np.nan, n, False, 0, np.nan, message, np.full(n, np.nan),
                 np.full(n, np.nan))


def _fit(X, y, offset, Z, nb: bool, tol: float, max_iter: int) -> ZIFit:
    X, y, off, Z = _prepare(X, y, offset, Z)
    n, p, q = X.shape[0], X.shape[1], Z.shape[1]
    k = p + q + int(nb)
    name = "ZINB" if nb else "ZIP"
    n0 = int(np.sum(y == 0))
    if n <= k:
        return _degenerate(p, q, n, nb, f"{name}: too few observations ({n}) for {k} parameters")
    if n0 == n:
        return _degenerate(p, q, n, nb, f"{name}: all counts are zero; count part and "
                           "inflation probability are not identified (pi -> 1)")
    if n0 == 0:
        return _degenerate(p, q, n, nb, f"{name}: no zero counts; the inflation probability "
                           "has no finite MLE (pi -> 0); use the plain count model")
    if np.linalg.matrix_rank(X) < p or np.linalg.matrix_rank(Z) < q:
        return _degenerate(p, q, n, nb, f"{name}: design matrix X or Z is rank deficient")
    args = (X, y, off, Z)
    zip_fit = _fit(X, y, off, Z, False, tol, max_iter) if nb else None
    if nb and zip_fit.converged:
        # the ZIP optimum is the alpha -> 0 edge of ZINB: a start close to the answer
        beta, gamma = zip_fit.coef, zip_fit.zero_coef
    else:
        beta = _poisson_start(X, y, off)
        with np.errstate(all="ignore"):
            f0 = np.mean(np.exp(-np.exp(X @ beta + off)))
        # excess zeros over the Poisson fit give a moment guess of pi
        pi0 = np.clip((n0 / n - f0) / max(1.0 - f0, 1e-12), 0.05, 0.95)
        gamma = np.linalg.lstsq(Z, np.full(n, special.logit(pi0)), rcond=None)[0]
    params = np.concatenate([beta, gamma])
    if nb:
        with np.errstate(all="ignore"):
            mu, pi = np.exp(X @ beta + off), special.expit(Z @ gamma)
            m = (1.0 - pi) * mu  # moment guess from Var(y) = m [1 + mu (pi + alpha)]
            alpha0 = np.sum((y - m) ** 2 - m * (1.0 + pi * mu)) / np.sum((1.0 - pi) * mu**2)
        alpha0 = float(np.clip(alpha0, 0.05, 20.0)) if np.isfinite(alpha0) else 1.0
        params = np.append(params, -np.log(alpha0))
    params, ll, g, H, n_iter, status = _newton(params, args, nb, tol, max_iter)
    # a flat likelihood lets the gradient test pass (or the search crawl) on the way to a
    # boundary; name the boundary rather than claim convergence or blame the iteration count
    if status == "ok" or status.startswith("no convergence"):
        if np.max(np.abs(Z @ params[p:p + q])) > _ZETA_BOUND:
            status = "boundary_pi"
        elif np.max(np.abs(X @ params[:p])) > _ETA_BOUND:
            status = "boundary_mu"
    grad_norm = float(np.max(np.abs(g)))
    cov = np.full((k, k), np.nan)
    try:  # Cholesky both inverts -H and proves the point is a strict local maximum
        L = np.linalg.cholesky(-H)
        Linv = np.linalg.solve(L, np.eye(k))
        cov = Linv.T @ Linv
    except np.linalg.LinAlgError:
        if status == "ok":
            status = "Hessian is not negative definite at the optimum"
    messages = {
        "ok": f"{name}: converged, max|grad| = {grad_norm:.2e} after {n_iter} Newton steps",
        "boundary_pi": f"{name}: inflation probability runs to the boundary (pi -> 0 or 1); "
                       "no finite MLE of the zero part",
        "boundary_mu": f"{name}: count-part coefficients diverge (mu -> 0 or inf for some "
                       "observations); too few positive counts to identify them",
        "boundary_theta": f"{name}: theta -> inf (alpha -> 0): no overdispersion beyond the "
                          "zero inflation; the ZIP fit is the boundary MLE",
    }
    message = messages.get(status, f"{name}: {status}")
    converged = status == "ok"
    se = np.sqrt(np.diag(cov))
    eta = X @ params[:p] + off
    with np.errstate(over="ignore"):
        mu = np.exp(eta)
    theta = float(np.exp(params[-1])) if nb else np.inf
    return ZIFit(coef=params[:p].copy(), zero_coef=params[p:p + q].copy(), std_error=se[:p],
                 zero_std_error=se[p:p + q], alpha=1.0 / theta if nb else 0.0, theta=theta,
                 cov=cov, loglik=ll, aic=-2.0 * ll + 2.0 * k, n_obs=n, converged=converged,
                 n_iter=n_iter, grad_norm=grad_norm, message=message, mu=mu,
                 pi=special.expit(Z @ params[p:p + q]))


def fit_zip(X: ArrayLike, y: ArrayLike, offset: ArrayLike | None = None,
            Z: ArrayLike | None = None, *, tol: float = 1e-8, max_iter: int = 200) -> ZIFit:
    r"""Fit a zero-inflated Poisson regression by maximum likelihood.

    Parameters
    ----------
    X : array_like, shape (n, p)
        Count-part design (include the intercept column).
    y : array_like, shape (n,)
        Non-negative integer counts.
    offset : array_like, shape (n,), optional
        Added to the log mean (e.g. log exposure).
    Z : array_like, shape (n, q), optional
        Inflation-part design; default a column of ones (constant inflation).
    tol : float, default 1e-8
        Stop when max |gradient of the log-likelihood| <= tol.
    max_iter : int, default 200
        Maximum number of Newton steps.

    Returns
    -------
    ZIFit
        ``alpha = 0``, ``theta = inf``; ``cov`` is over (beta, gamma).

    Notes
    -----
    .. math::

        P(Y_i = 0) = \pi_i + (1 - \pi_i) e^{-\mu_i}, \qquad
        P(Y_i = k) = (1 - \pi_i) \frac{\mu_i^k e^{-\mu_i}}{k!}, \; k \ge 1,

        \log \mu_i = x_i^\top \beta + o_i, \qquad \operatorname{logit} \pi_i = z_i^\top \gamma.

    A Poisson GLM plus a moment guess of :math:`\pi` (excess zeros) starts damped Newton
    steps with the analytic gradient and Hessian, run until max |gradient| <= ``tol``.
    Standard errors come from the inverse negative Hessian, as in ``pscl::zeroinfl``.
    All-zero ``y``, no zeros, too few observations, a rank-deficient design or an
    optimum on the boundary (:math:`\pi \to 0` or 1) give ``converged=False`` and a
    ``message``, never an exception or a warning.
    """
    return _fit(X, y, offset, Z, False, tol, max_iter)


def fit_zinb(X: ArrayLike, y: ArrayLike, offset: ArrayLike | None = None,
             Z: ArrayLike | None = None, *, tol: float = 1e-8, max_iter: int = 300) -> ZIFit:
    r"""Fit a zero-inflated NB2 regression by maximum likelihood.

    Parameters
    ----------
    X, y, offset, Z, tol
        As in :func:`fit_zip`.
    max_iter : int, default 300
        Maximum number of Newton steps.

    Returns
    -------
    ZIFit
        ``cov`` is over (beta, gamma, log theta), as pscl reports it.

    Notes
    -----
    With :math:`\theta = 1/\alpha` and :math:`\mathrm{Var}(Y \mid \text{count part})
    = \mu + \alpha\mu^2`,

    .. math::

        P(Y_i = 0) = \pi_i + (1 - \pi_i) f(0; \mu_i), \qquad
        P(Y_i = k) = (1 - \pi_i) f(k; \mu_i), \; k \ge 1,

        f(k; \mu) = \frac{\Gamma(k + \theta)}{\Gamma(\theta)\, k!}
        \Big(\frac{\theta}{\theta + \mu}\Big)^{\theta}
        \Big(\frac{\mu}{\theta + \mu}\Big)^{k},

    with the links of :func:`fit_zip`. The search runs over :math:`\log\theta` (pscl's
    parameterisation), starting from the ZIP fit and a moment guess of :math:`\alpha`.
    If the likelihood keeps rising as :math:`\theta \to \infty` the ZIP fit is the
    boundary MLE: ``converged=False`` with a message saying so.
    """
    return _fit(X, y, offset, Z, True, tol, max_iter)
