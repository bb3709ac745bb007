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
        beta, a = x[:p], x[p:p + L]
        nu = np.empty(n)
        J = np.zeros((n, p + L)) if grad else None
        for t in range(n):
            xt = X[t].copy()
            for j, s in by_row.get(t, ()):
                xt[j] = np.logaddexp(0.0, nu[s])  # log(1 + lambda_s)
            v = xt @ beta + off[t]
            for l, k in enumerate(q):
                v += a[l] * (nu[t - k] if t >= k else c)
            nu[t] = v
            if grad:
                jt = np.r_[xt, [nu[t - k] if t >= k else c for k in q]]
                for l, k in enumerate(q):
                    if t >= k:
                        jt += a[l] * J[t - k]
                for j, s in by_row.get(t, ()):
                    jt += beta[j] * special.expit(nu[s]) * J[s]
                J[t] = jt
        return nu, J

    def gradient(x: np.ndarray):
        alpha = float(np.exp(x[p + L])) if nb else 0.0
        nu, J = run(x, True)
        if not np.all(np.isfinite(nu)) or nu.max(initial=-np.inf) > 700:
            return -np.inf, None
        t = _nb_terms(yi, nu, alpha, lgy, 2 if nb else 1)
        g = J[m].T @ t[1][m]
        if nb:
            g = np.r_[g, alpha * float(np.sum(t[3][m]))]
        return float(np.sum(t[0][m])), g

    def fun(x: np.ndarray, order: int):
        if order == 0:
            alpha = float(np.exp(x[p + L])) if nb else 0.0
            nu, _ = run(x, False)
            if not np.all(np.isfinite(nu)) or nu.max(initial=-np.inf) > 700:
                return -np.inf
            return float(np.sum(_nb_terms(yi, nu, alpha, lgy, 0)[m]))
        f, g = gradient(x)
        if g is None:
            return -np.inf, None, None
        k = len(x)
        H = np.empty((k, k))
        for i in range(k):
            hstep = _FD_STEP * max(1.0, abs(x[i]))
            e = np.zeros(k)
            e[i] = hstep
            gp, gm = gradient(x + e)[1], gradient(x - e)[1]
            if gp is None or gm is None:
                return -np.inf, None, None
            H[:, i] = (gp - gm) / (2 * hstep)
        return f, g, 0.5 * (H + H.T)

    fun.nu = lambda x: run(x, False)[0]  # type: ignore[attr-defined]
    return fun
