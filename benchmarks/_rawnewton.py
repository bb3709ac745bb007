"""A raw batched Newton solver for bench_glm's design: the diagnostic peer of our batched GLM.

Not a benchmark itself. Every series shares the calendar block D (intercept, t/12,
month_2..month_12) and has one own column z_s = log(1 + y_{s,t-1}), so X_s'W_sX_s is one
GEMM over all series for the D'D block plus a few row sums; NB2's
Σ_{k<y} log(1 + kα) terms and their α-derivatives are cumulative sums over k taken
at y. No safeguards beyond what this well-behaved simulated panel needs: no step
halving, no rank or separation checks, no per-series fallback (series that do not
converge within ``max_iter`` are counted, not repaired). It shows how fast the bare
arithmetic of our estimator can run, not a usable solver.
"""
from __future__ import annotations

import numpy as np


def panel_arrays(panel) -> tuple[np.ndarray, np.ndarray]:
    """Counts (S, N) in unique_id order and the months (N,) of a panel whose series share dates."""
    p = panel.sort_values(["unique_id", "ds"], kind="stable")
    S = p["unique_id"].nunique()
    Y = p["y"].to_numpy().reshape(S, -1)
    import pandas as pd

    months = pd.DatetimeIndex(p["ds"].iloc[: Y.shape[1]]).month.to_numpy()
    return Y, months


def raw_fit(Y: np.ndarray, months: np.ndarray, nb: bool, tol: float = 1e-8, max_iter: int = 100):
    """Fit every row of Y; returns (coef (S, 14), alpha (S,), converged (S,), one-step means (S,))."""
    S, N = Y.shape
    t = np.arange(N + 1, dtype=float)
    m_all = np.r_[months, months[-1] % 12 + 1]
    D_all = np.column_stack([np.ones(N + 1), t / 12] + [(m_all == k).astype(float) for k in range(2, 13)])
    D, d_next = D_all[1:N], D_all[N]
    n, q = D.shape
    p = q + 1
    DD = (D[:, :, None] * D[:, None, :]).reshape(n, q * q)
    z = np.log1p(Y[:, :-1].astype(float))
    y = Y[:, 1:].astype(float)
    yi = Y[:, 1:]

    def xb(b):
        return b[:, :q] @ D.T + b[:, q:] * z

    mu0 = y + 0.1
    v0 = mu0 * np.log(mu0)
    beta = np.linalg.solve(xtwx_sub(mu0, D, DD, z, q), np.c_[v0 @ D, (v0 * z).sum(axis=1)][:, :, None])[:, :, 0]
    conv = np.zeros(S, dtype=bool)
    act = np.arange(S)  # series still iterating (converged ones are frozen)
    for _ in range(max_iter):  # Poisson Newton (= IRLS with the canonical link)
        b, zz = beta[act], z[act]
        mu = np.exp(b[:, :q] @ D.T + b[:, q:] * zz)
        g = np.c_[(y[act] - mu) @ D, ((y[act] - mu) * zz).sum(axis=1)]
        done = np.abs(g).max(axis=1) <= tol
        conv[act[done]] = True
        act, g, mu, b = act[~done], g[~done], mu[~done], b[~done]
        if act.size == 0:
            break
        beta[act] = b + np.linalg.solve(xtwx_sub(mu, D, DD, z[act], q), g[:, :, None])[:, :, 0]
    alpha = np.zeros(S)
    if nb:
        mu = np.exp(xb(beta))
        score0 = 0.5 * np.sum((y - mu) ** 2 - y, axis=1)
        act = np.flatnonzero(score0 > 0)  # else alpha = 0: the Poisson fit stands
        alpha[act] = 2 * score0[act] / np.sum(mu[act] ** 2, axis=1)
        conv[act] = False
        for _ in range(max_iter):
            b, a, yy, zz, ii = beta[act], alpha[act], y[act], z[act], yi[act]
            mu = np.exp(b[:, :q] @ D.T + b[:, q:] * zz)
            u = a[:, None] * mu
            k = np.arange(int(ii.max(initial=0)), dtype=float)
            r = k[None, :] / (1.0 + a[:, None] * k[None, :])
            tab1 = np.zeros((len(a), k.size + 1))
            tab2 = np.zeros_like(tab1)
            np.cumsum(r, axis=1, out=tab1[:, 1:])
            np.cumsum(r * r, axis=1, out=tab2[:, 1:])
            s1, s2 = np.take_along_axis(tab1, ii, axis=1), np.take_along_axis(tab2, ii, axis=1)
            qq = 1.0 / (1.0 + u)
            l1u = np.log1p(u)
            ga = np.sum(s1 + l1u / a[:, None] ** 2 - (yy + 1 / a[:, None]) * mu * qq, axis=1)
            haa = np.sum(-s2 - 2 * l1u / a[:, None] ** 3 + 2 * mu * qq / a[:, None] ** 2
                         + (yy + 1 / a[:, None]) * (mu * qq) ** 2, axis=1)
            score = (yy - mu) * qq
            gt = a * ga
            g = np.c_[score @ D, (score * zz).sum(axis=1), gt]
            done = np.abs(g).max(axis=1) <= tol
            conv[act[done]] = True
            keep = ~done
            act = act[keep]
            if act.size == 0:
                break
            b, a, yy, zz, mu, qq, g, gt, haa = (v[keep] for v in (b, a, yy, zz, mu, qq, g, gt, haa))
            w = mu * (1.0 + a[:, None] * yy) * qq * qq
            H = np.empty((len(a), p + 1, p + 1))
            H[:, :p, :p] = xtwx_sub(w, D, DD, zz, q)
            cross = -(yy - mu) * mu * qq * qq
            hbt = -a[:, None] * np.c_[cross @ D, (cross * zz).sum(axis=1)]
            H[:, :p, p] = hbt
            H[:, p, :p] = hbt
            H[:, p, p] = -(a * a * haa + gt)
            step = np.linalg.solve(H, g[:, :, None])[:, :, 0]
            beta[act] = b + step[:, :p]
            alpha[act] = a * np.exp(step[:, p])
    mean1 = np.exp(beta[:, :q] @ d_next + beta[:, q] * np.log1p(Y[:, -1].astype(float)))
    return beta, alpha, conv, mean1


def xtwx_sub(w, D, DD, z, q):
    """X_s'W_sX_s for rows of w (S, n) and own columns z (S, n): one GEMM for the shared block."""
    p = q + 1
    H = np.empty((w.shape[0], p, p))
    H[:, :q, :q] = (w @ DD).reshape(-1, q, q)
    c = (w * z) @ D
    H[:, q, :q] = c
    H[:, :q, q] = c
    H[:, q, q] = (w * z * z).sum(axis=1)
    return H
