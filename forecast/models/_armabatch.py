"""Exact Gaussian ARIMA(p, d, q) likelihood and its maximisation, vectorised over many series.

The numerics behind :class:`~forecast.models.log_arma.LogArma`: one Kalman filter runs
for every series (and every trial parameter vector) at once, so a panel of hundreds of
series costs a few hundred array operations per period instead of one statsmodels fit
per series. Pure numpy; no model classes.

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

#: Bound of the unconstrained coefficients (partial autocorrelations within ±0.9998: an MA root
#: at the unit circle is a common optimum of an over-differenced series).
X_BOUND = 50.0
#: Grid points per coefficient of the start search, by the number of coefficients.
GRID_POINTS = {1: 15, 2: 9, 3: 5, 4: 4}
#: Newton iterations and step of the finite differences (on the unconstrained scale).
MAX_ITER = 30
FD_STEP = 1e-4
#: Converged when no step improves the log-likelihood by more than this.
TOL = 1e-7
#: ... or when the last of ``MAX_ITER`` steps gained less than this (a flat ridge).
SMALL_GAIN = 1e-3


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
    dense product (the filter runs it twice per period)."""
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
    # Series last in every array: small batched products are einsums over contiguous rows
    # (several times faster than matmul on (N, s, s) stacks).
    obs = np.isfinite(z)
    Y = np.concatenate([np.where(obs, z, 0.0).T[:, None, :], X.transpose(1, 2, 0)], axis=1)  # (n, 1+c, N)
    phi = np.ascontiguousarray(T[:, d:, d].T)  # (r, N): the AR column of the transition
    P0f = np.ascontiguousarray(P0.transpose(1, 2, 0))
    RR = np.einsum("ni,nj->ijn", R, R)
    a = np.zeros((s, 1 + c, N))
    P = np.zeros((s, s, N))
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
                a = _tmul(phi, a, d)
                P = _tmul(phi, _tmul(phi, P, d).transpose(1, 0, 2), d)  # T (T P)' = T P T'
                P += RR
                P += P.transpose(1, 0, 2)
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


def _grid(k: int) -> np.ndarray:
    """Start points (G, k) on the unconstrained scale: an even grid of partial autocorrelations."""
    if not k:
        return np.zeros((1, 0))
    m = GRID_POINTS.get(k, 3)
    rho = np.linspace(-0.9, 0.9, m)
    x = rho / np.sqrt(1 - rho ** 2)
    return np.stack(np.meshgrid(*[x] * k, indexing="ij"), axis=-1).reshape(-1, k)


def _llf_many(model: Arma, X0: np.ndarray, z: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Log-likelihood of every series (S) at every candidate (S, G, k): (S, G)."""
    S, G, k = X0.shape
    rep = lambda arr: np.repeat(arr, G, axis=0)  # noqa: E731 (series-major, as X0.reshape)
    with np.errstate(all="ignore"):
        out = kalman(model, X0.reshape(S * G, k), rep(z), rep(X)).llf
    return out.reshape(S, G)


def fit_arma(model: Arma, z: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, FilterOut]:
    """Maximum-likelihood ARMA coefficients of every series.

    A grid of starts (:data:`GRID_POINTS`), the best two (see the code) each
    followed by damped Newton steps with finite-difference derivatives (the better end
    kept), every series at once (each row of the batch is
    independent, so a series' result does not depend on the others in the batch).

    Parameters
    ----------
    model : orders.
    z : (S, n) data, NaN where missing.
    X : (S, n, c) regressors (β is profiled out; NaN: absent, see :func:`kalman`).

    Returns
    -------
    x : (S, p + q) unconstrained coefficients (see :meth:`Arma.matrices`).
    converged : (S,) bool, no step improved the likelihood by more than ``TOL`` at the end.
    out : the filter at ``x`` (β̂, σ̂², the last state).
    """
    S, k = len(z), model.k
    grid = _grid(k)
    ll = _llf_many(model, np.broadcast_to(grid, (S, *grid.shape)).copy(), z, X)
    if not k:
        with np.errstate(all="ignore"):
            return np.zeros((S, 0)), np.ones(S, dtype=bool), kalman(model, np.zeros((S, 0)), z, X)
    # Two starts: the best grid point, and the best whose first coefficient has the other
    # sign (near-cancelling AR and MA roots make the likelihood bimodal along such a ridge).
    first = grid[:, 0] > 0
    i1 = np.argmax(ll, axis=1)
    other = np.where(first[None, :] != first[i1][:, None], ll, -np.inf)
    i2 = np.argmax(other, axis=1)
    x = np.stack([grid[i1], grid[i2]], axis=1).reshape(2 * S, k)
    cur = np.stack([ll[np.arange(S), i1], other[np.arange(S), i2]], axis=1).reshape(2 * S)
    x, conv = _newton(model, x, cur, np.repeat(z, 2, axis=0), np.repeat(X, 2, axis=0))
    best = np.argmax(cur.reshape(S, 2), axis=1)
    pick = 2 * np.arange(S) + best
    x, converged = x[pick], conv[pick]
    with np.errstate(all="ignore"):
        out = kalman(model, x, z, X)
    return x, converged, out


def _stencil(k: int, h: float) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Offsets (1 + 2k + 4k(k-1)/2, k) of the finite differences: 0, ±h e_i, and ±h e_i ± h e_j
    (i < j) for the mixed second derivatives; and the pairs (i, j)."""
    eye = np.eye(k)
    offs = [np.zeros(k)] + [sgn * h * eye[i] for i in range(k) for sgn in (1, -1)]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    offs += [h * (si * eye[i] + sj * eye[j]) for i, j in pairs for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
    return np.array(offs).reshape(len(offs), k), pairs


def _derivs(f: np.ndarray, k: int, h: float, pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Gradient (A, k) and Hessian (A, k, k) from the log-likelihood at the stencil points (A, m)."""
    f0 = f[:, 0]
    g = np.stack([(f[:, 1 + 2 * i] - f[:, 2 + 2 * i]) / (2 * h) for i in range(k)], axis=1)
    H = np.zeros((len(f), k, k))
    for i in range(k):
        H[:, i, i] = (f[:, 1 + 2 * i] - 2 * f0 + f[:, 2 + 2 * i]) / h ** 2
    for m, (i, j) in enumerate(pairs):
        b = 1 + 2 * k + 4 * m
        H[:, i, j] = H[:, j, i] = (f[:, b] - f[:, b + 1] - f[:, b + 2] + f[:, b + 3]) / (4 * h * h)
    return g, H


def _newton(model: Arma, x: np.ndarray, cur: np.ndarray, z: np.ndarray, X: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Damped Newton ascent of every row from ``x`` (log-likelihood ``cur``, updated in place).

    Each filter run costs a fixed Python overhead per period plus a cost per row, so the full
    Newton step is tried first, with the finite-difference stencil around it in the same run
    (when it is taken, the next iteration needs no stencil run of its own); the 15 damped and
    gradient trials are run only for the rows where it does not raise the likelihood.
    """
    S, k = x.shape
    x = x.copy()
    converged = np.zeros(S, dtype=bool)
    gain = np.full(S, np.inf)
    h = FD_STEP
    eye = np.eye(k)
    offs_arr, pairs = _stencil(k, h)
    m = len(offs_arr)
    fs = np.zeros((S, m))  # the stencil's log-likelihoods around x, valid where ``have``
    have = np.zeros(S, dtype=bool)
    steps = np.array([1.0, 0.3, 0.1, 0.02])
    for _ in range(MAX_ITER):
        act = ~converged
        if not act.any():
            break
        ia = np.flatnonzero(act)
        need = ia[~have[ia]]
        if len(need):
            fs[need] = _llf_many(model, x[need, None, :] + offs_arr[None], z[need], X[need])
        g, H = _derivs(fs[ia], k, h, pairs)
        # Newton directions, regularised (Levenberg-Marquardt) where -H is not positive definite
        # (a flat ridge of near-cancelling AR and MA roots), and plain gradient steps; the full
        # Newton step when it raises the likelihood, else the best of all trial points, so each
        # iteration can only raise the likelihood.
        negH = np.where(np.isfinite(H), -H, 0.0)
        lam = np.maximum(0.0, -np.linalg.eigvalsh(negH)[:, 0]) + 1e-6 * (1 + np.abs(negH).max(axis=(1, 2)))
        dirs = []
        for boost in (1.0, 10.0, 100.0):
            M = negH + (boost * lam)[:, None, None] * eye
            dirs.append(np.linalg.solve(M, g[:, :, None])[:, :, 0])
        gnorm = np.maximum(np.sqrt((g * g).sum(axis=1, keepdims=True)), 1e-300)
        dirs.append(g / gnorm)
        D = np.stack(dirs, axis=1)  # (A, 4, k)
        D = np.where(np.isfinite(D), D, 0.0)
        lens = np.sqrt((D * D).sum(axis=2, keepdims=True))
        D = np.where(lens > 10.0, D * 10.0 / np.maximum(lens, 1e-300), D)  # at most 10 on the x scale
        trial = (x[ia, None, None, :] + steps[None, None, :, None] * D[:, :, None, :]).reshape(len(ia), -1, k)
        trial = np.clip(trial, -X_BOUND, X_BOUND)
        # First the full Newton step (trial 0) with its stencil riding along; the other trials
        # only for rows where it does not raise the likelihood (most rows, most iterations, it does).
        ahead = trial[:, :1, :] + offs_arr[None, 1:]
        f1 = _llf_many(model, np.concatenate([trial[:, :1], ahead], axis=1), z[ia], X[ia])
        fbest = f1[:, 0].copy()
        best = np.zeros(len(ia), dtype=int)
        rest = np.flatnonzero(~(fbest > cur[ia] + TOL))
        if len(rest):
            fr = np.concatenate([f1[rest, :1], _llf_many(model, trial[rest, 1:], z[ia[rest]], X[ia[rest]])], axis=1)
            best[rest] = np.argmax(fr, axis=1)
            fbest[rest] = fr[np.arange(len(rest)), best[rest]]
        better = fbest > cur[ia] + TOL
        gain[ia] = np.where(better, fbest - cur[ia], 0.0)
        x[ia[better]] = trial[np.flatnonzero(better), best[better]]
        cur[ia[better]] = fbest[better]
        newton = better & (best == 0)
        fs[ia[newton]] = f1[newton]
        have[ia] = newton
        converged[ia[~better]] = True
        # A row creeping along a flat ridge (an MA root drifting to the unit circle: the
        # likelihood and the forecasts barely change along it) stops once a full step gains
        # less than SMALL_GAIN, the gain it would be called converged at anyway.
        converged[ia[better & (gain[ia] < SMALL_GAIN)]] = True
    # (still creeping along a flat ridge after MAX_ITER: converged if the last gain was negligible)
    return x, converged | (gain < SMALL_GAIN)


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
