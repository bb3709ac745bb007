r"""Closed-form GLM fits for designs that only tell groups of periods apart.

When the rows of a design take exactly ``p`` distinct values ``r_1..r_p`` (one per group
of periods) and those are linearly independent, the design spans the same space as the
group indicators: intercept plus month dummies (monthly), quarter dummies (quarterly),
an intercept alone (yearly, or no seasonality). Then the log-linear Poisson and NB2
likelihoods have their maximum where every group's fitted mean is its sample mean:

.. math::
    \partial\ell/\partial\beta = \sum_t x_t\,\frac{y_t - \mu_t}{1 + \alpha\mu_t} = 0
    \iff \sum_{t\in g}(y_t - \mu_g) = 0 \iff \mu_g = \bar y_g

for every alpha >= 0 (mu and the weight 1/(1 + alpha mu) are constant within a group), so
:math:`\hat\beta = R^{-1}(\log\bar y_g - o_g)_g` with R the matrix of the distinct rows
(offsets must be constant within each group), and NB2's alpha maximises a one-parameter
profile likelihood (:func:`profile_newton`). At that point the cross-derivatives of beta
and alpha vanish too, so the observed information is block diagonal.

The solvers use this as their start: the damped Newton ascent then finds its gradient
below the tolerance at once (0 iterations), so every check of the iterative fit
(gradient, Hessian, separation, boundary) still runs on the result. A group without
events has no finite MLE (separation: its mean's supremum is at 0); it starts at mean
:data:`EMPTY_MU`, where the gradient is already below any tolerance the solvers use, and
their exact separation test names the diverging columns as it would after a long ascent
(whose last iterate is just as arbitrary). A group without kept periods, and offsets
that vary within a group, are left to the iterative fit.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from forecast.models._glmcheck import _unpinned

__all__ = ["EMPTY_MU", "group_design", "group_means_start", "group_diverging", "profile_newton", "unique_rows"]

#: Start mean of a group without events (separation: see the module docstring); its part
#: of the gradient is then at most (periods in the group) x 1e-12.
EMPTY_MU = 1e-12

#: Distinct design rows that are less independent than this (smallest / largest singular
#: value) are not treated as groups.
_COND = 1e-10


def unique_rows(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct rows, index of each row's)`` of a 2-D float array, like
    ``np.unique(A, axis=0, return_inverse=True)`` up to the order of the distinct rows.

    Rows are told apart by one random projection (a sort of n floats instead of a
    lexicographic sort of n rows) and the answer is then checked exactly; a collision
    (probability 0 for distinct finite rows, but checked) falls back to ``np.unique``.
    """
    A = np.ascontiguousarray(A, dtype=float)
    key = A @ np.random.default_rng(0).standard_normal(A.shape[1])  # (a fixed local stream)
    _, first, at = np.unique(key, return_index=True, return_inverse=True)
    at = np.asarray(at).reshape(-1)
    uniq = A[first]
    if np.array_equal(uniq[at], A):
        return uniq, at
    uniq, at = np.unique(A, axis=0, return_inverse=True)
    return uniq, np.asarray(at).reshape(-1)


def group_design(D: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(group of each row, R^-1)`` when the rows of ``D`` (n, p) take exactly p linearly
    independent values (rows of R); else None."""
    D = np.asarray(D, dtype=float)
    if D.ndim != 2 or D.shape[0] <= D.shape[1]:
        return None
    uniq, groups = unique_rows(D)
    if uniq.shape[0] != D.shape[1]:
        return None
    sv = np.linalg.svd(uniq, compute_uv=False)
    if not sv[-1] > _COND * sv[0]:
        return None
    return groups, np.linalg.inv(uniq)


def group_means_start(D: np.ndarray, y: np.ndarray, off: np.ndarray,
                      mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    r"""The maximum-likelihood coefficients of series sharing a group design ``D`` (n, p).

    Parameters
    ----------
    D : (n, p) design shared by all series (no per-series columns, no penalty).
    y, off : (S, n) counts and offsets; mask : (S, n) bool rows kept, or None (all).

    Returns
    -------
    (beta, exact, groups) : (S, p) coefficients, (S,) bool and the group (0..p-1) of each
        period, or None when D is no group design.
        ``exact`` rows have every group with a kept period, some events, and offsets
        constant within each group; there
        :math:`\beta = R^{-1}(\log(\sum_{t\in g} y_t / n_g) - o_g)`, a group without
        events at mean :data:`EMPTY_MU`. Other rows are NaN.
    """
    found = group_design(D)
    if found is None:
        return None
    groups, R_inv = found
    p = R_inv.shape[0]
    E = np.zeros((groups.size, p))
    E[np.arange(groups.size), groups] = 1.0
    w = np.ones(y.shape) if mask is None else np.asarray(mask, dtype=float)
    n_g = w @ E
    tot = (w * y) @ E
    with np.errstate(divide="ignore", invalid="ignore"):
        off_g = (w * off) @ E / n_g
        spread = np.max(np.abs(off - off_g @ E.T) * w, axis=1, initial=0.0)
        exact = (n_g > 0).all(axis=1) & (tot > 0).any(axis=1) & (spread <= 1e-12 * (1 + np.abs(off_g).max(axis=1)))
        eta_g = np.log(np.where(tot > 0, tot / n_g, EMPTY_MU)) - off_g
    beta = np.full((y.shape[0], p), np.nan)
    beta[exact] = eta_g[exact] @ R_inv.T
    return beta, exact, groups


def profile_newton(fun: Callable, theta: np.ndarray, tol: float, max_iter: int):
    """Damped Newton ascent of S one-parameter objectives at once (log alpha's profile).

    ``fun(theta, 0)`` returns values (S,), ``fun(theta, 2)`` values, gradients and second
    derivatives; ``fun.take(rows)`` (optional) the objective of some rows. Steps are halved
    until the value does not fall (allowing rounding, as the GLM solvers). Returns theta,
    iterations and converged (|gradient| <= tol); a row whose second derivative is not
    negative, or whose halving runs out, stops unconverged. Also returns the second
    derivatives at the returned theta (the observed information is their negative).
    """
    theta = np.asarray(theta, dtype=float).copy()
    S = theta.size
    n_iter, conv = np.zeros(S, dtype=int), np.zeros(S, dtype=bool)
    active = np.arange(S)
    f, g, H = fun(theta, 2)
    H_out = np.full(S, np.nan)
    for it in range(max_iter + 1):
        done = np.abs(g) <= tol
        conv[active[done]], n_iter[active[done]] = True, it
        stuck = ~done & ~(np.isfinite(f) & np.isfinite(g) & (H < 0))
        n_iter[active[stuck]] = it
        H_out[active] = H
        keep = ~(done | stuck)
        if it == max_iter:
            n_iter[active[keep]] = it
            break
        if not keep.all():
            active, f, g, H = active[keep], f[keep], g[keep], H[keep]
            fun = fun.take(np.flatnonzero(keep))
        if not active.size:
            break
        step = -g / H
        slack = 1e-12 * (1 + np.abs(f))
        f_new, g_new, H_new = fun(theta[active] + step, 2)
        bad = ~(np.isfinite(f_new) & (f_new >= f - slack))
        for _ in range(40):
            if not bad.any():
                break
            step[bad] /= 2
            f_b, g_b, H_b = fun.take(np.flatnonzero(bad))(theta[active[bad]] + step[bad], 2)
            f_new[bad], g_new[bad], H_new[bad] = f_b, g_b, H_b
            bad[bad] = ~(np.isfinite(f_b) & (f_b >= f[bad] - slack[bad]))
        if bad.any():  # halving ran out: those rows stop where they were
            n_iter[active[bad]] = it
            f_new[bad], g_new[bad], H_new[bad] = np.nan, np.nan, np.nan
            step[bad] = 0.0
        theta[active] += step
        f, g, H = f_new, g_new, H_new
    return theta, n_iter, conv, H_out


def group_diverging(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Diverging columns of an unpenalised group design (what
    :func:`~forecast.models._glmcheck._diverging_columns` finds, without its search): a
    direction can lower exactly one group's linear predictor and leave the others, so the
    rows that separate are those of the groups without events, and the columns the other
    rows do not pin down diverge."""
    tot = np.bincount(groups, weights=y, minlength=X.shape[1])
    zero = y == 0
    neg = tot[groups[zero]] == 0
    if not neg.any():
        return np.zeros(0, dtype=int)
    return _unpinned(X, zero, neg, np.ones(X.shape[1], dtype=bool))
