"""The log-linear Poisson / NB2 INGARCH solver on arrays: conditional ML by Newton ascent.

:func:`ingarch_objective` gives the log-likelihood with exact derivatives and
:func:`fit_ingarch` maximises it inside the stationary region; the ``ingarch`` model
spec (:class:`~forecast.models.autoregressive.INGARCH`) builds the design and calls them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import linalg, special

from forecast.models._glmfit import _nb_terms, fit_poisson
from forecast.models._ingarchmiss import ingarch_objective_missing

__all__ = ["IngarchFit", "fit_ingarch", "ingarch_objective", "initial_log_mean"]


_EDGE = 1e-2        # unconverged with sum|b| + sum|a| above 1 - _EDGE: the optimum is on the boundary
_PUSHES = 3         # consecutive Newton steps out of the stationary region, ending near its edge: stop
_ACCEPT_TOL = 1e-5  # max |score| accepted when rounding stops the ascent short of ``tol``
_START_MAX = 0.9    # a start outside sum|b| + sum|a| <= this is shrunk into it
#: A warm NB ascent is kept only when it ends at alpha >= this (else the fit is redone cold,
#: so a fit the cold path puts at the boundary alpha = 0 stays one).
WARM_ALPHA_MIN = 1e-4
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
    from scipy import signal  # (here, not at the top: a slow import every CLI call would pay)
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

    def log_mean(x: np.ndarray, A: np.ndarray | None = None) -> np.ndarray:
        a, u = x[p:p + L], X @ x[:p] + off
        # nu - c follows the same recursion with zero start and input u - c(1 - sum a).
        return signal.lfilter(one, poly(a) if A is None else A, u - c * (1.0 - a.sum())) + c if L else u

    # (Buffers filled in place at every call: the solver calls ``fun`` thousands of times on
    # small arrays, where allocation and stacking cost as much as the arithmetic.)
    one = np.ones(1)
    k = p + L
    S = np.empty((n, k + 1))  # [X, nu_{t-q_1}, ..., reversed score]: one filter gives J and w
    S[:, :p] = X
    Xc = np.column_stack([X])  # (J without mean lags, laid out as before)
    H_nb = np.empty((k + 1, k + 1))

    def fun(x: np.ndarray, order: int):
        alpha = float(np.exp(x[k])) if nb else 0.0
        A = poly(x[p:k])
        nu = log_mean(x, A)
        if not np.all(np.isfinite(nu)) or nu.max(initial=-np.inf) > 700:
            return -np.inf if order == 0 else (-np.inf, None, None)
        t = _nb_terms(yi, nu, alpha, lgy, (2 if order else 0) if nb else min(order, 1))
        if order == 0:
            return float(np.sum(t))
        ll, score, w_obs = t[:3]
        if L:
            for i, lag in enumerate(q):
                S[:lag, p + i] = c
                S[lag:, p + i] = nu[:n - lag]
            S[:, k] = score[::-1]  # (the adjoint filter runs backwards: forwards on the reversed score)
            JW = signal.lfilter(one, A, S, axis=0)  # (each column filtered alone, as one by one)
            J, w = np.ascontiguousarray(JW[:, :k]), JW[:, k].copy()[::-1]
        else:
            J = Xc
        g = J.T @ score
        H = -(J.T * w_obs) @ J
        if L:
            for i, lag in enumerate(q):
                m = w @ shifted(J, lag, 0.0)
                H[p + i] += m
                H[:, p + i] += m
        if nb:
            g_a, h_aa, h_ea = t[3:]
            g_t = alpha * float(np.sum(g_a))
            h_bt = alpha * (J.T @ h_ea)
            g = np.append(g, g_t)
            Hb = H_nb.copy()  # (a fresh array per call: callers keep the Hessians they are given)
            Hb[:k, :k], Hb[:k, k], Hb[k, :k], Hb[k, k] = H, h_bt, h_bt, alpha**2 * np.sum(h_aa) + g_t
            H = Hb
        return float(np.sum(ll)), g, H

    fun.nu = log_mean  # type: ignore[attr-defined]
    return fun


def _newton_step(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The Newton step (-H)^-1 g, with the smallest Levenberg shift of the ladder 0,
    scale * 10^-10, ..., scale * 10^2 (scale = max |H_jj|) that makes -H + shift I
    positive definite; g / scale when none does.

    When -H is not positive definite its eigenvalues tell which shifts surely leave a
    negative eigenvalue (by more than Cholesky's backward error): those are skipped
    without a factorisation, so the step is the one trying every shift in turn gives.
    """
    scale = max(float(np.max(np.abs(np.diag(H)), initial=1.0)), 1e-12)
    eye, low, size = np.eye(len(g)), None, 0.0
    for i, shift in enumerate((0.0, *(scale * 10.0 ** np.arange(-10, 3)))):
        if low is not None and low + shift < -1e-10 * (size + shift):
            continue
        try:
            return linalg.cho_solve((np.linalg.cholesky(-H + shift * eye), True), g)
        except (linalg.LinAlgError, ValueError):
            if i == 0 and np.all(np.isfinite(H)):
                ev = np.linalg.eigvalsh(-H)
                low, size = float(ev[0]), float(np.max(np.abs(ev)))
    return g / scale


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
        step = _newton_step(H, g)
        ok = measure(x + step) < 1
        pushes = 0 if ok else pushes + 1
        for _ in range(60):  # back inside the stationary region
            if ok:
                break
            step = step / 2
            ok = measure(x + step) < 1
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
                tol: float = 1e-8, max_iter: int = 100, fills: Sequence[tuple[int, int, int]] = (),
                rows: np.ndarray | None = None, start: ArrayLike | None = None,
                start_alpha: float = 0.0) -> IngarchFit:
    """Fit the log-linear INGARCH by conditional maximum likelihood (Newton, exact derivatives).

    Parameters
    ----------
    X : (n, p) covariates incl. intercept and the log(1 + y_{t-k}) columns (``obs_cols``).
    y : (n,) counts of the fitted periods.
    past_mean : lags q_l of nu entering the recursion.
    nu_init : nu before the first fitted period (see :func:`initial_log_mean`).
    distribution : "poisson" or "negbin" (NB2, alpha estimated jointly as log alpha).
    tol : Newton stops when max |score| <= tol; a fit counts as converged at <= 1e-5.
    fills, rows : missing periods (see :func:`~forecast.models._ingarchmiss.ingarch_objective_missing`):
        a missing count enters the recursion as its conditional mean and is left out of the
        likelihood; ``rows`` None (default) when every count is observed.
    start, start_alpha : a warm start (coefficients over the columns of X then the mean lags,
        and alpha, 0 for a Poisson fit), e.g. this series' fit at the previous backtest
        origin; None (default) starts cold. See Notes for when the result can differ.

    Notes
    -----
    Start: the Poisson GLM with a = 0 (shrunk into sum|b| + sum|a| <= 0.9). NB: the
    Poisson INGARCH first; if the score in alpha at 0, sum[(y - mu)^2 - y] / 2, is <= 0
    the Poisson fit is returned with alpha = 0 (as :func:`~forecast.models._glmfit.fit_negbin`),
    else a joint Newton ascent in (beta, a, log alpha). Iterates stay inside the
    stationary region sum|b_k| + sum|a_l| < 1; a fit pressed against its edge is
    reported as converged = False with a message starting "non-stationary".

    Warm start (``start`` inside the stationary region): with ``start_alpha`` >=
    ``WARM_ALPHA_MIN`` (an interior NB fit) the joint NB ascent runs from it directly, and is
    kept only when it converges to the tolerance ``tol`` with alpha >= ``WARM_ALPHA_MIN``
    and away from the stationarity edge; otherwise (a Poisson model, or a fit at the NB
    boundary) the Poisson ascent runs from it and, when it converges, the fit goes on as a
    cold one from there (boundary test, NB ascent). Anything else is refitted cold. Where
    the cold fit would put alpha at 0 the NB ascent heads to alpha -> 0 and cannot converge
    above ``WARM_ALPHA_MIN``, so that decision is the cold one. The likelihood is not
    concave, though: where it has several local maxima (most often near the stationarity
    edge) a warm ascent keeps to the one near its start, which may not be the one the cold
    path reaches (or the cold path may be drawn to the edge instead), and the GLM start's
    separation check is skipped. So warm starts are an opt-in (``INGARCH.warm_starts``).
    """
    X, yv = np.asarray(X, dtype=float), np.asarray(y).astype(np.int64)
    n, p = X.shape
    L, obs = len(past_mean), np.asarray(obs_cols, dtype=int)

    def measure(x: np.ndarray) -> float:
        return float(np.abs(x[obs]).sum() + np.abs(x[p:p + L]).sum())

    def inside(x: np.ndarray) -> np.ndarray:  # a start scaled into measure <= _START_MAX
        x, v = x.copy(), measure(x)
        if v > _START_MAX:
            x[obs] *= _START_MAX / v
            x[p:p + L] *= _START_MAX / v
        return x

    if rows is not None:
        rows = np.asarray(rows, dtype=bool)
        X = X.copy()
        for i, j, _ in fills:  # (the GLM start's lags of missing counts: at log(1 + exp(nu_init)))
            X[i, j] = np.logaddexp(0.0, nu_init)

    def objective(nb: bool) -> Callable:
        if rows is None:
            return ingarch_objective(X, yv, past_mean, nu_init, offset=offset, nb=nb)
        return ingarch_objective_missing(X, yv, past_mean, nu_init, fills, rows, offset=offset, nb=nb)
    kept = slice(None) if rows is None else rows
    x0 = None if start is None else np.asarray(start, dtype=float)
    if x0 is not None and not (x0.shape == (p + L,) and np.all(np.isfinite(x0)) and measure(x0) < 1):
        x0 = None  # (a start of another shape, or outside the region: start cold)
    notes: list[str] = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        done = pois = None  # a finished warm NB ascent; a converged Poisson ascent
        if x0 is not None and distribution == "negbin" and start_alpha >= WARM_ALPHA_MIN:
            fun = objective(True)
            r = _ascend(fun, np.r_[x0, np.log(start_alpha)], measure, tol, max_iter)
            if r[-1] == "converged" and np.exp(r[0][-1]) >= WARM_ALPHA_MIN and measure(r[0]) < 1 - _EDGE:
                done = fun, r
        elif x0 is not None:
            fun = objective(False)
            r = _ascend(fun, x0, measure, tol, max_iter)
            if r[-1] == "converged":
                pois = fun, r
        if done is None and pois is None:
            # The Poisson GLM start on the periods in the likelihood.
            glm = fit_poisson(X[rows], yv[rows], None if offset is None else np.asarray(offset, float)[rows]) \
                if rows is not None else fit_poisson(X, yv, offset)
            # No finite GLM MLE: a diverging covariate diverges here too, a diverging lag meets |b| < 1.
            if glm.message.startswith(("separation", "all counts")):
                nan = np.full(p + L, np.nan)
                return IngarchFit(nan, nan, np.full((p + L, p + L), np.nan), np.nan, np.nan, np.nan, n, False,
                                  0, np.nan, np.nan, f"Poisson GLM start: {glm.message}", np.full(n, np.nan))
            fun = objective(False)
            pois = fun, _ascend(fun, inside(np.r_[np.nan_to_num(glm.coef), np.zeros(L)]), measure, tol, max_iter)
        if done is not None:
            fun, (x, f, g, H, it, status) = done
            alpha, nb_fit = float(np.exp(x[-1])), True
        else:
            fun, (x, f, g, H, it, status) = pois
            alpha, nb_fit = 0.0, False
        if distribution == "negbin" and done is None:
            mu = np.exp(fun.nu(x))[kept]
            score0 = 0.5 * float(np.sum((yv[kept] - mu) ** 2 - yv[kept]))
            if status == "converged" and score0 <= 0:
                notes.append(f"alpha at the boundary 0 (score in alpha at 0 = {score0:.3g} <= 0): Poisson fit")
            else:
                a0 = max(2 * score0 / np.sum(mu**2), 1e-3)
                fun = objective(True)
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
                          loglik=float(f), n_obs=n if rows is None else int(rows.sum()), converged=converged,
                          n_iter=int(it), grad_norm=gn,
                          stationarity=v, message="; ".join(notes), nu=fun.nu(x))
