"""Stacking weights of a linear pool, learnt from past predictive performance (pure numpy).

A linear pool forecasts p(y) = Σ_m w_m p_m(y) with w on the simplex. Stacking chooses
w to make the *pool* score well on held-out cells (rolling-origin forecasts made before
the outcome), rather than scoring members one by one:

- log score (:func:`log_weights`): maximise Σ_c log Σ_m w_m p_cm, p_cm the probability
  member m gave the observed count of cell c. The EM iteration (the mixture-weight
  update of Dempster, Laird & Rubin) with a Dirichlet pseudo-count κ toward equal
  weights is

      r_cm = w_m p_cm / Σ_k w_k p_ck,      w_m ← (Σ_c r_cm + κ) / (N + Mκ),

  the maximum a posteriori weights under a Dirichlet(κ + 1) prior; κ = 0 gives the
  maximum-likelihood pool. Cells that every member gave probability 0 carry no
  information about the weights and are left out.
- ranked probability score (:func:`rps_weights`): minimise Σ_c Σ_k (Σ_m w_m F_cmk −
  1{y_c ≤ k})², a quadratic in w (Gram matrix of the members' CDF errors), over the
  simplex, with a ridge κ·c̄·‖w − 1/M‖² toward equal weights (c̄ the mean squared CDF
  error per cell and member, so κ counts cells as for the log score).

Per-series weights (:func:`series_weights`) shrink toward the pooled weights of the
series' group: for the log score the same EM with a Dirichlet prior centred at the
group's weights w̄ with strength s, w_im ← (Σ_t r_itm + s·w̄_m) / (T_i + s); for the
RPS, w_i = (T_i w_i* + s·w̄) / (T_i + s) with w_i* the series' own minimiser. A series
with few cells (T_i ≪ s) keeps the pool's weights; strong evidence moves it.
"""
from __future__ import annotations

import numpy as np

#: EM / projected-gradient iteration limits (weights change < TOL in max norm).
MAX_ITER = 2000
TOL = 1e-10


def _usable(P: np.ndarray) -> np.ndarray:
    """Cells with at least one member giving positive, finite probability."""
    return np.isfinite(P).all(axis=1) & (P.sum(axis=1) > 0)


def log_weights(P: np.ndarray, kappa: float = 0.0, w0: np.ndarray | None = None) -> np.ndarray:
    """Pool weights maximising the (penalised) mean log score of the pool.

    Parameters
    ----------
    P : (N, M) probability each member gave each cell's observed count (>= 0).
    kappa : Dirichlet pseudo-count toward equal weights (>= 0).
    w0 : starting weights (default equal).

    Returns
    -------
    (M,) weights on the simplex; equal weights when no cell is usable.
    """
    P = np.asarray(P, dtype=float)
    M = P.shape[1]
    P = P[_usable(P)]
    w = np.full(M, 1.0 / M) if w0 is None else np.asarray(w0, dtype=float)
    if len(P) == 0:
        return np.full(M, 1.0 / M)
    for _ in range(MAX_ITER):
        num = P * w
        r = num / num.sum(axis=1, keepdims=True)
        new = (r.sum(axis=0) + kappa) / (len(P) + M * kappa)
        if np.max(np.abs(new - w)) < TOL:
            return new
        w = new
    return w


def pool_log_score(P: np.ndarray, w: np.ndarray) -> float:
    """Mean log score −log Σ_m w_m p_cm over the cells (inf if a cell gets probability 0)."""
    p = np.asarray(P, dtype=float) @ np.asarray(w, dtype=float)
    with np.errstate(divide="ignore"):
        return float(np.mean(-np.log(p)))


def _project_simplex(V: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of V onto the probability simplex (sort-based)."""
    V = np.atleast_2d(V)
    M = V.shape[1]
    U = -np.sort(-V, axis=1)
    css = np.cumsum(U, axis=1) - 1.0
    k = np.arange(1, M + 1)
    cond = U - css / k > 0
    rho = M - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(len(V)), rho] / (rho + 1)
    return np.maximum(V - theta[:, None], 0.0)


def _quad_simplex(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin_w w'A_i w − 2 b_i'w over the simplex, for each i (A: (S, M, M), b: (S, M)).

    Accelerated projected gradient (FISTA) with step 1/L, L = 2·λ_max(A_i)."""
    S, M, _ = A.shape
    L = 2 * np.maximum(np.linalg.eigvalsh(A)[:, -1], 1e-300)
    w = np.full((S, M), 1.0 / M)
    z, t = w.copy(), 1.0
    for _ in range(MAX_ITER):
        grad = 2 * (np.einsum("smk,sk->sm", A, z) - b)
        new = _project_simplex(z - grad / L[:, None])
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = new + (t - 1) / t_new * (new - w)
        done = np.max(np.abs(new - w)) < TOL
        w, t = new, t_new
        if done:
            break
    return w


def rps_gram(F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell terms of the RPS quadratic.

    ``F`` is (N, M, K+1): member CDFs on 0..K (K at least the largest outcome and where
    every CDF has reached 1 up to its tail). With G = F − 1{y ≤ k} (each member's CDF
    error) and Σ_m w_m = 1, RPS_c(w) = Σ_k (Σ_m w_m G_cmk)² = w'A_c w: returns A (N, M, M)
    = G G' and b (N, M) = 0 (the cross term of :func:`rps_weights`). Working with the
    errors keeps the quadratic independent of K: grid points where every CDF is 1 and the
    outcome is below add nothing (with F F' they would add a constant that slows the solver).
    """
    F = np.asarray(F, dtype=float)
    G = F - (np.arange(F.shape[2])[None, :] >= np.asarray(y)[:, None])[:, None, :]
    return np.einsum("nmk,nlk->nml", G, G), np.zeros(F.shape[:2])


def rps_weights(A: np.ndarray, b: np.ndarray, kappa: float = 0.0) -> np.ndarray:
    """Pool weights minimising the summed RPS of the pool (cells' Gram terms A, b from
    :func:`rps_gram`) plus κ·c̄·‖w − 1/M‖²."""
    A, b = np.asarray(A, dtype=float), np.asarray(b, dtype=float)
    M = A.shape[1]
    if len(A) == 0:
        return np.full(M, 1.0 / M)
    As, bs = A.sum(axis=0), b.sum(axis=0)
    cbar = np.trace(As) / (len(A) * M)
    e = np.full(M, 1.0 / M)
    return _quad_simplex((As + kappa * cbar * np.eye(M))[None], (bs + kappa * cbar * e)[None])[0]


def series_weights(P: np.ndarray, series: np.ndarray, groups: np.ndarray, n_series: int, *,
                   kappa: float = 1.0, shrinkage: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Log-score stacking weights per group, then per series shrunk toward its group's.

    Parameters
    ----------
    P : (N, M) probabilities of the observed counts, one row per cell.
    series : (N,) series code 0..n_series-1 of each cell.
    groups : (n_series,) group code of each series (the pool: event type, or one group).
    kappa : Dirichlet pseudo-count toward equal weights for the group weights.
    shrinkage : prior strength s (in cells) of a series' weights around its group's;
        ``inf`` keeps every series at its group's weights.

    Returns
    -------
    (n_series, M) weights, and (n_groups, M) group weights (rows of groups without cells
    are equal weights).
    """
    P = np.asarray(P, dtype=float)
    series, groups = np.asarray(series, dtype=np.intp), np.asarray(groups, dtype=np.intp)
    M = P.shape[1]
    ok = _usable(P)
    P, series = P[ok], series[ok]
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    G = np.full((n_groups, M), 1.0 / M)
    for g in range(n_groups):
        G[g] = log_weights(P[groups[series] == g], kappa)
    prior = G[groups]
    if not np.isfinite(shrinkage) or len(P) == 0:
        return prior.copy(), G
    T = np.bincount(series, minlength=n_series).astype(float)
    W = prior.copy()
    for _ in range(MAX_ITER):
        num = P * W[series]
        r = num / num.sum(axis=1, keepdims=True)
        R = np.stack([np.bincount(series, weights=r[:, m], minlength=n_series) for m in range(M)], axis=1)
        new = (R + shrinkage * prior) / (T + shrinkage)[:, None]
        if np.max(np.abs(new - W)) < TOL:
            return new, G
        W = new
    return W, G


def series_rps_weights(A: np.ndarray, b: np.ndarray, series: np.ndarray, groups: np.ndarray, n_series: int, *,
                       kappa: float = 1.0, shrinkage: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """RPS stacking weights per group, then per series: w_i = (T_i w_i* + s w̄)/(T_i + s)."""
    A, b = np.asarray(A, dtype=float), np.asarray(b, dtype=float)
    series, groups = np.asarray(series, dtype=np.intp), np.asarray(groups, dtype=np.intp)
    M = A.shape[1]
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    G = np.stack([rps_weights(A[groups[series] == g], b[groups[series] == g], kappa)
                  for g in range(n_groups)]) if n_groups else np.empty((0, M))
    prior = G[groups]
    if not np.isfinite(shrinkage) or len(A) == 0:
        return prior.copy(), G
    T = np.bincount(series, minlength=n_series).astype(float)
    As = np.zeros((n_series, M, M))
    bs = np.zeros((n_series, M))
    np.add.at(As, series, A)
    np.add.at(bs, series, b)
    have = T > 0
    own = prior.copy()
    if have.any():
        own[have] = _quad_simplex(As[have], bs[have])
    W = (T[:, None] * own + shrinkage * prior) / (T + shrinkage)[:, None]
    return W, G
