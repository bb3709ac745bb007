"""The INGARCH log-likelihood when the series has missing periods.

A missing count y_s enters the recursion as its conditional mean: where a lag column
reads log(1 + y_s), it reads log(1 + lambda_s), lambda_s = exp(nu_s), instead. The
likelihood leaves the missing periods out. The lag columns then depend on the
parameters, so nu is no longer a linear filter of the design: this objective runs the
recursion period by period, with the exact gradient in forward mode (the Hessian by
central differences of it). Series without missing periods use the faster
:func:`~forecast.models._ingarchfit.ingarch_objective`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import special

from forecast.models._glmfit import _nb_terms

#: Relative step of the central differences that give the Hessian from the exact gradient.
_FD_STEP = 1e-5


def ingarch_objective_missing(X: np.ndarray, y: np.ndarray, past_mean: Sequence[int], nu_init: float,
                              fills: Sequence[tuple[int, int, int]], rows: np.ndarray, *,
                              offset: np.ndarray | None = None, nb: bool = False) -> Callable:
    """Log-likelihood of the log-linear INGARCH in x = (beta, a, [log alpha]) with missing counts.

    Parameters
    ----------
    X : (n, p) design; the entries named in ``fills`` are overwritten.
    y : (n,) counts (any value where ``rows`` is False).
    fills : (row i, column j, source row s): X[i, j] = log(1 + exp(nu_s)), s < i (a lag of a
        missing count inside the window; lags of missing counts before it are constants in X).
    rows : (n,) bool, the periods in the likelihood (False: the count is missing).

    Returns ``fun(x, order)`` as :func:`~forecast.models._ingarchfit.ingarch_objective`.
    """
    X = np.asarray(X, dtype=float)
    yi = np.asarray(y).astype(np.int64)
    n, p = X.shape
    q = np.asarray(past_mean, dtype=int)
    L = len(q)
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    lgy = special.gammaln(yi + 1.0)
    c = float(nu_init)
    m = np.asarray(rows, dtype=bool)
    by_row: dict[int, list[tuple[int, int]]] = {}
    for i, j, s in fills:
        by_row.setdefault(int(i), []).append((int(j), int(s)))

    def run(x: np.ndarray, grad: bool):
        """nu (B, n) and, with ``grad``, J = d nu / d(beta, a) (B, n, p + L) for B parameter vectors."""
        B = x.shape[0]
        beta, a = x[:, :p], x[:, p:p + L]
        nu = np.empty((B, n))
        J = np.zeros((B, n, p + L)) if grad else None
        for t in range(n):
            xt = np.broadcast_to(X[t], (B, p))
            fl = by_row.get(t, ())
            if fl:
                xt = xt.copy()
                for j, s in fl:
                    xt[:, j] = np.logaddexp(0.0, nu[:, s])  # log(1 + lambda_s)
            past = [nu[:, t - k] if t >= k else np.full(B, c) for k in q]
            v = np.einsum("bp,bp->b", xt, beta) + off[t]
            for l in range(L):
                v = v + a[:, l] * past[l]
            nu[:, t] = v
            if grad:
                jt = np.concatenate([xt] + [pv[:, None] for pv in past], axis=1)
                for l, k in enumerate(q):
                    if t >= k:
                        jt += a[:, l, None] * J[:, t - k]
                for j, s in fl:
                    jt += (beta[:, j] * special.expit(nu[:, s]))[:, None] * J[:, s]
                J[:, t] = jt
        return nu, J

    def gradients(xs: np.ndarray):
        """Log-likelihood and exact gradient at each row of ``xs`` (None where nu overflows)."""
        nu, J = run(xs, True)
        out = []
        for b in range(xs.shape[0]):
            if not np.all(np.isfinite(nu[b])) or nu[b].max(initial=-np.inf) > 700:
                out.append((-np.inf, None))
                continue
            alpha = float(np.exp(xs[b, p + L])) if nb else 0.0
            t = _nb_terms(yi, nu[b], alpha, lgy, 2 if nb else 1)
            g = J[b][m].T @ t[1][m]
            if nb:
                g = np.r_[g, alpha * float(np.sum(t[3][m]))]
            out.append((float(np.sum(t[0][m])), g))
        return out

    def fun(x: np.ndarray, order: int):
        if order == 0:
            alpha = float(np.exp(x[p + L])) if nb else 0.0
            nu = run(x[None, :], False)[0][0]
            if not np.all(np.isfinite(nu)) or nu.max(initial=-np.inf) > 700:
                return -np.inf
            return float(np.sum(_nb_terms(yi, nu, alpha, lgy, 0)[m]))
        k = len(x)
        steps = _FD_STEP * np.maximum(1.0, np.abs(x))
        # x, then x +- step_i e_i: the recursion runs once for all 2k + 1 vectors.
        xs = np.vstack([x, x + np.diag(steps), x - np.diag(steps)])
        res = gradients(xs)
        f, g = res[0]
        if g is None or any(r[1] is None for r in res[1:]):
            return -np.inf, None, None
        gp = np.array([r[1] for r in res[1:k + 1]])
        gm = np.array([r[1] for r in res[k + 1:]])
        H = ((gp - gm) / (2 * steps[:, None])).T
        return f, g, 0.5 * (H + H.T)

    fun.nu = lambda x: run(np.asarray(x, dtype=float)[None, :], False)[0][0]  # type: ignore[attr-defined]
    return fun
