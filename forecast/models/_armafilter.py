"""Exact Gaussian ARIMA(p, d, q) likelihood by one Kalman filter vectorised over many series.

The filter behind :mod:`forecast.models._armabatch` (which maximises it): one run for every
series (and every trial parameter vector) at once, so a panel of hundreds of series costs a
few hundred array operations per period instead of one statsmodels fit per series. Pure
numpy; no model classes.

Model, per series: z_t = x_t'β + η_t with (1 - L)^d η_t = w_t an ARMA(p, q),
φ(L) w_t = θ(L) ε_t, ε_t ~ N(0, σ²), d ∈ {0, 1}. The state is Harvey's form of the
ARMA (dimension r = max(p, q + 1)), with the level η_t in front when d = 1. The
regression coefficients β and σ² are concentrated out exactly: the filter's gains do not
depend on the data, so the innovations of z - Xβ are those of z less those of X times β,
and β̂ is the generalised least-squares solution (profile likelihood). With d = 1 the
filter starts at the first observed value with its level known (the diffuse
likelihood, as SARIMAX's approximately diffuse start gives it after its burn-in).
Missing values (NaN in z) are skipped by the filter: no update, no likelihood term.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def pacf_to_coef(x: np.ndarray) -> np.ndarray:
    """Unconstrained ``x`` (..., k) -> coefficients a (..., k) of ``1 - a_1 L - ... - a_k L^k``
    with every root outside the unit circle (Monahan 1984): ``r = x / sqrt(1 + x²)`` are
    partial autocorrelations, turned into coefficients by the Durbin-Levinson recursion.
    The same map as :func:`forecast.models._arma._pacf_to_poly`, on arrays."""
    r = x / np.sqrt(1.0 + x * x)
    a = np.zeros_like(r)
    for j in range(r.shape[-1]):
        prev = a[..., :j].copy()
        a[..., :j] = prev - r[..., j:j + 1] * prev[..., ::-1]
        a[..., j] = r[..., j]
    return a


@dataclass
class Arma:
    """ARIMA orders (p, d, q), shared by every series of a batch, and the state-space matrices they give."""

    p: int
    d: int
    q: int

    @property
    def k(self) -> int:
        return self.p + self.q

    @property
    def r(self) -> int:
        return max(self.p, self.q + 1)

    def matrices(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Transition T (N, s, s), selection R (N, s) and the stationary covariance P0 (N, r, r) of
        the ARMA part, for unconstrained coefficients ``x`` (N, p + q) (AR first)."""
        N, p, q, r, d = len(x), self.p, self.q, self.r, self.d
        phi = np.zeros((N, r))
        phi[:, :p] = pacf_to_coef(x[:, :p])
        theta = np.zeros((N, r))
        # (an invertible MA side is the same region; its sign convention does not matter)
        theta[:, 1:q + 1] = -pacf_to_coef(x[:, p:])
        theta[:, 0] = 1.0
        Ta = np.zeros((N, r, r))
        Ta[:, :, 0] = phi
        Ta[:, np.arange(r - 1), np.arange(1, r)] = 1.0
        # P0 = Ta P0 Ta' + RR': vec(P0) = (I - Ta ⊗ Ta)^-1 vec(RR')
        kron = np.einsum("nij,nkl->nikjl", Ta, Ta).reshape(N, r * r, r * r)
        rr = np.einsum("ni,nj->nij", theta, theta).reshape(N, r * r, 1)
        P0 = np.linalg.solve(np.eye(r * r) - kron, rr).reshape(N, r, r)
        P0 = 0.5 * (P0 + P0.transpose(0, 2, 1))
        if not d:
            return Ta, theta, P0
        s = r + 1
        T = np.zeros((N, s, s))
        T[:, 0, 0] = 1.0
        T[:, 0, 1:] = Ta[:, 0, :]
        T[:, 1:, 1:] = Ta
        R = np.concatenate([np.ones((N, 1)), theta], axis=1)
        return T, R, P0


@dataclass
class FilterOut:
    """Profile log-likelihood and what the forecast needs, per row of a filter run."""

    llf: np.ndarray  # (N,) at β̂ and σ̂² (-inf where not computable)
    beta: np.ndarray  # (N, c)
    sigma2: np.ndarray  # (N,)
    a: np.ndarray  # (N, s) filtered state of z - Xβ̂ at the last period
    P: np.ndarray  # (N, s, s) its covariance, in units of σ²
    n: np.ndarray  # (N,) observations in the likelihood


def _tmul(phi: np.ndarray, M: np.ndarray, d: int) -> np.ndarray:
    """T M for the transition T of the state (series last: M is (s, ..., N), ``phi`` (r, N) the
    AR column), from its structure: row i of the ARMA block is φ_i M_d + M_{d+i+1}, and with
    d = 1 the level row is M_0 plus the first ARMA row. Three array operations instead of a
    dense product; :func:`kalman` runs the same operations inline, three times a period."""
    out = np.empty_like(M)
    arma = out[d:]
    np.multiply(phi.reshape(phi.shape[:1] + (1,) * (M.ndim - 2) + phi.shape[1:]), M[d], out=arma)
    arma[:-1] += M[d + 1:]
    if d:
        np.add(M[0], arma[0], out=out[0])
    return out


def kalman(model: Arma, x: np.ndarray, z: np.ndarray, X: np.ndarray, beta: np.ndarray | None = None
           ) -> FilterOut:
    """Run the filter for rows ``x`` (N, p + q) on data ``z`` (N, n) with NaN where missing and
    regressors ``X`` (N, n, c) (c may be 0); ``beta`` (N, c) fixes the regression coefficients
    (default: profiled out). A regressor that is NaN (throughout; its first period is read) is
    one the row does not have (its β is 0), so rows with different regressors can share a
    run. Every row is independent of the others."""
    N, n = z.shape
    c = X.shape[2]
    has = ~np.isnan(X[:, 0, :])  # (N, c)
    if not has.all():
        X = np.where(has[:, None, :], X, 0.0)
    T, R, P0 = model.matrices(x)
    r, d = model.r, model.d
    s = r + d
    # Series last in every array: each period is a few elementwise operations over contiguous
    # rows (several times faster than matmul on (N, s, s) stacks).
    obs = np.isfinite(z)
    Y = np.concatenate([np.where(obs, z, 0.0).T[:, None, :], X.transpose(1, 2, 0)], axis=1)  # (n, 1+c, N)
    phi = np.ascontiguousarray(T[:, d:, d].T)  # (r, N): the AR column of the transition
    P0f = np.ascontiguousarray(P0.transpose(1, 2, 0))
    RR = np.einsum("ni,nj->ijn", R, R)
    a = np.zeros((s, 1 + c, N))
    P = np.zeros((s, s, N))
    phi3 = phi[:, None, :]
    a2, P2, P3 = np.empty_like(a), np.empty_like(P), np.empty_like(P)
    Q = P2.transpose(1, 0, 2)  # (T P)'
    P[d:, d:] = P0f
    A = np.zeros((1 + c, 1 + c, N))  # Σ v v' / F
    logF = np.zeros(N)
    # Which rows enter the likelihood at each period, and (d = 1) which start there (at their
    # first observed value), decided up front: the loop costs a fixed Python overhead per
    # period, so it does no bookkeeping of its own.
    tt = np.arange(n)[:, None]
    if d:
        first = np.where(obs.any(axis=1), obs.argmax(axis=1), n)
        new_at = tt == first[None, :]  # (n, N)
        upd_at = obs.T & (tt > first[None, :])
        any_new = new_at.any(axis=1)
    else:
        upd_at = obs.T
        any_new = np.zeros(n, dtype=bool)
    nobs = upd_at.sum(axis=0).astype(float)
    every_at = upd_at.all(axis=1)
    any_at = upd_at.any(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(n):
            yt = Y[t]
            if any_new[t]:  # the first observed value: level known, ARMA part at its stationary law
                new = new_at[t]
                a[:, :, new] = 0.0
                a[0, :, new] = yt[:, new].T
                P[:, :, new] = 0.0
                P[1:, 1:, new] = P0f[:, :, new]
            if any_at[t]:
                F = P[0, 0]
                v = yt - a[0]  # (1 + c, N)
                if not every_at[t]:  # rows without an update: zero innovation and gain, F = 1 (log F = 0)
                    upd = upd_at[t]
                    F = np.where(upd, F, 1.0)
                    K = np.where(upd, P[:, 0] / F, 0.0)
                    v = np.where(upd, v, 0.0)
                else:
                    K = P[:, 0] / F
                A += v[:, None, :] * (v / F)[None, :, :]
                logF += np.log(F)
                a += K[:, None, :] * v[None, :, :]
                P -= K[:, None, :] * P[0][None, :, :]  # K K' F
            if t < n - 1:  # predict the next period (the last filtered state is kept for the forecast)
                # T a, T P and T (T P)' = T P T' as in _tmul, inlined into preallocated buffers
                # (three calls a period of a small function cost more than their arithmetic)
                np.multiply(phi3, a[d], out=a2[d:])
                a2[d:-1] += a[d + 1:]
                np.multiply(phi3, P[d], out=P2[d:])
                P2[d:-1] += P[d + 1:]
                if d:
                    np.add(a[0], a2[1], out=a2[0])
                    np.add(P[0], P2[1], out=P2[0])
                a, a2 = a2, a
                np.multiply(phi3, Q[d], out=P3[d:])
                P3[d:-1] += Q[d + 1:]
                if d:
                    np.add(Q[0], P3[1], out=P3[0])
                P3 += RR
                np.add(P3, P3.transpose(1, 0, 2), out=P)
                P *= 0.5
    A = A.transpose(2, 0, 1)
    a = a.transpose(2, 0, 1)
    P = P.transpose(2, 0, 1)
    Azz, Axz, Axx = A[:, 0, 0], A[:, 1:, 0], A[:, 1:, 1:]
    rss = Azz.copy()
    if c and beta is not None:
        beta = np.asarray(beta, dtype=float).reshape(N, c)
        rss = Azz - 2 * np.einsum("ni,ni->n", Axz, beta) + np.einsum("ni,nij,nj->n", beta, Axx, beta)
    elif c:
        # (an absent regressor has zero innovations: a unit diagonal makes its β exactly 0)
        Axx = np.where(has[:, :, None] & has[:, None, :], Axx, np.eye(c))
        ok = np.linalg.matrix_rank(Axx) == c
        Axx_ok = np.where(ok[:, None, None], Axx, np.eye(c))
        beta = np.linalg.solve(Axx_ok, Axz[:, :, None])[:, :, 0]
        rss = np.where(ok, Azz - np.einsum("ni,ni->n", Axz, beta), np.nan)
    else:
        beta = np.zeros((N, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = rss / nobs
        llf = -0.5 * nobs * (np.log(2 * np.pi * sigma2) + 1) - 0.5 * logF
    good = np.isfinite(llf) & (sigma2 > 1e-12) & (nobs > 0)
    llf = np.where(good, llf, -np.inf)
    state = a[:, :, 0] - np.einsum("nsc,nc->ns", a[:, :, 1:], beta)
    return FilterOut(llf, beta, sigma2, state, P, nobs)


def forecast_state(model: Arma, x: np.ndarray, a: np.ndarray, P: np.ndarray, h: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Mean (N, h) of η_{T+j} (z less its regression) and variance in units of σ² (N, h), j = 1..h,
    from the filtered state ``a`` (N, s), ``P`` (N, s, s) at the last period."""
    T, R, _ = model.matrices(x)
    RR = np.einsum("ni,nj->nij", R, R)
    means, vars_ = [], []
    for _ in range(h):
        a = np.einsum("nij,nj->ni", T, a)
        P = T @ P @ T.transpose(0, 2, 1) + RR
        means.append(a[:, 0])
        vars_.append(P[:, 0, 0])
    return np.stack(means, axis=1), np.stack(vars_, axis=1)
