r"""Pure NB2/Poisson numerics on arrays: log-pmf, survival function, pmf grids, tail search.

The one home of these formulas: :mod:`forecast.distributions`, :mod:`forecast._countnum`
(scoring beyond the dense support) and the GLM solvers import them from here. No pandas,
no forecast objects: arrays in, arrays out. NB2 has mean :math:`\mu` and variance
:math:`\mu + \alpha\mu^2`; :math:`\alpha = 0` is the Poisson, reached without
cancellation because :math:`r = 1/\alpha` is never formed for the pmf.
"""
from __future__ import annotations

import numpy as np
from scipy import special

_ALPHA_POISSON = 1e-20  # betainc needs finite r = 1/alpha; below this NB2 == Poisson to 1e-15
_LOG_TINY = -700.0      # exp(-700) ~ 1e-304 is still a normal float


def log1p_ratio(x: np.ndarray) -> np.ndarray:
    """log(1+x)/x with its limit 1 at x = 0 (the alpha -> 0 limit of log f(0))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.log1p(x) / np.where(x > 0, x, 1.0), 1.0)


def nb_pmf_grid(mu: np.ndarray, alpha: np.ndarray, K: int, out: np.ndarray | None = None, *,
                uniform: bool = True) -> np.ndarray:
    """NB2 pmf on 0..K, (n, K+1), as a cumulative product of the ratios f(k)/f(k-1).

    Products avoid a log1p and an exp per cell (5x faster than log space); rows whose
    f(0) underflows (mu above ~700) are done in log space instead. ``uniform=False``
    always takes the per-row formula, so a row's values do not depend on whether the
    other rows of the call share its alpha (the shortcut rounds differently).
    """
    k = np.arange(1, K + 1, dtype=float)
    out = np.empty((mu.size, K + 1)) if out is None else out
    c = mu / (1 + alpha * mu)
    if uniform and alpha.size and alpha.min() == alpha.max():  # one dispersion for all rows: a single outer product
        np.multiply(c[:, None], (1 + alpha[0] * (k - 1)) / k, out=out[:, 1:])
    else:
        np.multiply(alpha[:, None], k - 1, out=out[:, 1:])
        out[:, 1:] += 1
        out[:, 1:] *= c[:, None]
        out[:, 1:] /= k
    logf0 = -mu * log1p_ratio(alpha * mu)
    low = np.flatnonzero(logf0 < _LOG_TINY)
    log_ratio = np.log(out[low, 1:])  # mu > 700 there, so every ratio is > 0
    out[:, 0] = np.exp(logf0)
    np.cumprod(out, axis=1, out=out)
    out[low, 1:] = np.exp(logf0[low, None] + np.cumsum(log_ratio, axis=1))
    return out


def log_rising_ratio(y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """log G(y+r) - log G(r) - y log r for r >= 1e3, without cancellation.

    Stirling's series log G(z) = (z - 1/2) log z - z + log(2 pi)/2 + 1/(12z) - 1/(360z^3)
    + 1/(1260z^5) (error below 1/(1680 z^7) <= 1e-24 here) gives, with u = y/r,
    r g(u) - log1p(u)/2 + c(r + y) - c(r), where g(u) = (1+u) log1p(u) - u is summed
    as its series sum_{n>=2} (-u)^n / (n(n-1)) for u < 0.01 (it cancels there).
    """
    u = y / r
    g = (1 + u) * np.log1p(u) - u
    s = u < 0.01
    us = u[s]
    g[s] = sum((-us) ** n / (n * (n - 1)) for n in range(2, 11))

    def c(z):
        return 1 / (12 * z) - 1 / (360 * z**3) + 1 / (1260 * z**5)

    return r * g - 0.5 * np.log1p(u) + (c(r + y) - c(r))


def nb_logpmf(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """log f(y) of NB2 per element (1-D arrays of equal length, y integer-valued >= 0)."""
    # T = log G(y+r) - log G(r) - y log r = sum_{j<y} log(1 + alpha j): by gammaln while
    # r <= 1e3 (absolute error ~1e-12); for smaller alpha gammaln(r) is so large that
    # the difference cancels, so sum the terms directly for y <= 256 and use Stirling's
    # series beyond (a sum over y terms would need y floats: 1e9 of them for y = 1e9).
    T = np.zeros(y.shape)
    big = alpha >= 1e-3
    r = 1.0 / alpha[big]
    T[big] = special.gammaln(y[big] + r) - special.gammaln(r) - y[big] * np.log(r)
    far = ~big & (alpha > 0) & (y > 256)
    T[far] = log_rising_ratio(y[far], 1.0 / alpha[far])
    small = np.flatnonzero(~big & (alpha > 0) & (y > 1) & ~far)
    if small.size:
        n_terms = y[small].astype(np.int64)
        owner = np.repeat(np.arange(small.size), n_terms)
        j = np.arange(owner.size) - np.repeat(np.cumsum(n_terms) - n_terms, n_terms)
        T[small] = np.bincount(owner, np.log1p(alpha[small][owner] * j), minlength=small.size)
    x = alpha * mu
    return T - special.gammaln(y + 1) + special.xlogy(y, mu) - y * np.log1p(x) - mu * log1p_ratio(x)


def nb_sf(k, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """P(Y > k) of NB2(mu, alpha) (Poisson for alpha ~ 0); k broadcast against mu; 1 for k < 0."""
    k, mu, alpha = np.broadcast_arrays(np.asarray(k, dtype=float), mu, alpha)
    out = np.ones(k.shape)
    pois, nb = (k >= 0) & (alpha < _ALPHA_POISSON), (k >= 0) & (alpha >= _ALPHA_POISSON)
    out[pois] = special.gammainc(k[pois] + 1, mu[pois])
    x = alpha[nb] * mu[nb]
    out[nb] = special.betainc(k[nb] + 1, 1 / alpha[nb], x / (1 + x))
    return out


def nb_cdf(k, mu: np.ndarray, alpha: np.ndarray, shape_plus: float = 0.0) -> np.ndarray:
    """P(Y <= k) of NB(r + shape_plus, p) with r = 1/alpha, p = 1/(1 + alpha mu); 0 for k < 0.

    Computed directly (not as 1 - sf), so small cdf values keep their relative precision.
    For alpha ~ 0 it is the Poisson(mu) cdf whatever ``shape_plus``.
    """
    k, mu, alpha = np.broadcast_arrays(np.asarray(k, dtype=float), mu, alpha)
    out = np.zeros(k.shape)
    pois, nb = (k >= 0) & (alpha < _ALPHA_POISSON), (k >= 0) & (alpha >= _ALPHA_POISSON)
    out[pois] = special.gammaincc(k[pois] + 1, mu[pois])
    x = alpha[nb] * mu[nb]  # I_p(r, k+1) as the complement of I_q(k+1, r): q = x/(1+x) is exact
    out[nb] = special.betaincc(k[nb] + 1, 1 / alpha[nb] + shape_plus, x / (1 + x))
    return out


def comp_sf(k, comps: tuple) -> np.ndarray:
    """w_c (1 - pi_c) S_c(k) per component, shape (C, m), for k >= 0 scalar or (m,)."""
    w, mu, alpha, pi = comps
    kk = np.broadcast_to(np.asarray(k, dtype=float), mu.shape)
    return w * (1 - pi) * nb_sf(kk.ravel(), mu.ravel(), alpha.ravel()).reshape(mu.shape)


def comp_logpmf(y: np.ndarray, comps: tuple) -> np.ndarray:
    """log sum_c w_c f_c(y), shape (m,), for integer y >= 0."""
    w, mu, alpha, pi = comps
    yy = np.broadcast_to(y.astype(float), mu.shape)
    lf = nb_logpmf(yy.ravel(), mu.ravel(), alpha.ravel()).reshape(mu.shape)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        # log(pi + (1 - pi) f(0)) in log space: exp(lf) underflows for means above ~745
        lz = np.where(yy == 0, np.logaddexp(np.log(pi), np.log1p(-pi) + lf), np.log1p(-pi) + lf)
        return special.logsumexp(lz, axis=0, b=w)  # zero-weight (padding) components drop out


def needed_k(mu: np.ndarray, alpha: np.ndarray, pi: np.ndarray, cap: int, tail_tol: float) -> int:
    """Smallest K with (1 - pi) P(Y > K) < ``tail_tol`` on every row, at most ``cap``."""
    # K is the largest of the rows' own K (each walked on its own, see _walk_k). The widest
    # rows are walked first; a row whose survival function at their K is below half the
    # tolerance ends its walk there or before (the walk's 1 - F is exact to ~1e-13), so it
    # cannot raise K and is not walked: the same K, without walking every row to its tail.
    n = mu.size
    if n <= 64:
        return _walk_k(mu, alpha, pi, cap, tail_tol)
    score = (1 - pi) * mu + 8 * np.sqrt((1 - pi) * mu * (1 + alpha * mu + pi * mu))
    top = np.argpartition(score, n - 16)[n - 16:]
    K = _walk_k(mu[top], alpha[top], pi[top], cap, tail_tol)
    if K >= cap:
        return K
    rest = np.ones(n, dtype=bool)
    rest[top] = False
    with np.errstate(all="ignore"):
        unsure = rest & ~((1 - pi) * nb_sf(float(K), mu, alpha) < 0.5 * tail_tol)
    if unsure.any():
        K = max(K, _walk_k(mu[unsure], alpha[unsure], pi[unsure], cap, tail_tol))
    return K


def _walk_k(mu: np.ndarray, alpha: np.ndarray, pi: np.ndarray, cap: int, tail_tol: float) -> int:
    """:func:`needed_k` by walking every row up to its tail."""
    # Walk k upwards with the pmf recurrence, dropping each row once its tail is small:
    # most rows (means < 5) leave within a few steps, far cheaper than a ppf per row.
    # 1 - F carries ~1e-16 absolute error, immaterial against the tail tolerance. Rows whose
    # f(0) underflows walk in log space. The rows still walking take steps in blocks (a
    # cumulative product and sum over the block: the same sequential float operations as one
    # step at a time, so the same K), so a wide row costs a few numpy calls, not one per count.
    logf0, c, K = -mu * log1p_ratio(alpha * mu), mu / (1 + alpha * mu), 0
    for in_logs in (False, True):
        sel = (logf0 < _LOG_TINY) == in_logs
        F, a, cc, scale, k = np.exp(logf0[sel]), alpha[sel], c[sel], 1 - pi[sel], 0
        f = logf0[sel] if in_logs else F
        width = 8
        while k < cap:
            live = scale * (1 - F) >= tail_tol
            if not live.any():
                break
            if not live.all():
                f, F, a, cc, scale = (v[live] for v in (f, F, a, cc, scale))
            B = min(width, cap - k)
            steps = np.arange(k + 1, k + B + 1, dtype=float)
            ratio = cc[:, None] * (1 + a[:, None] * (steps - 1)) / steps
            fs = np.empty((f.size, B + 1))
            fs[:, 0] = f
            if in_logs:
                fs[:, 1:] = np.log(ratio)
                fs = np.cumsum(fs, axis=1)
                terms = np.exp(fs[:, 1:])
            else:
                fs[:, 1:] = ratio
                fs = np.cumprod(fs, axis=1)
                terms = fs[:, 1:]
            Fs = np.empty((F.size, B + 1))
            Fs[:, 0], Fs[:, 1:] = F, terms
            Fs = np.cumsum(Fs, axis=1)
            # the first step (1..B) after which each row's tail is small; B + 1: none in the block
            done = scale[:, None] * (1 - Fs[:, 1:]) < tail_tol
            first = np.where(done.any(axis=1), done.argmax(axis=1) + 1, B + 1)
            if (first <= B).all():
                k += int(first.max())
                break
            k += B
            f, F = fs[:, -1], Fs[:, -1]
            width = min(2 * width, 512)
        K = max(K, k)
    return K


def search_beyond(K: int, base: np.ndarray, comps: tuple, target: np.ndarray) -> np.ndarray:
    """Smallest k > K with F(k) >= target (> F(K)) by doubling then bisection on the
    parametric cdf; ``K + 1`` where the parametric part cannot reach the target.

    ``base`` is F(K) per row and ``comps = (w, mu, alpha, pi)`` the rows' components,
    each (C, m): beyond K, F(k) = F(K) + sum_c [comp_sf(K) - comp_sf(k)].
    """
    out = np.full(target.size, K + 1, dtype=np.int64)
    if not comps[0].shape[0]:
        return out
    sK = comp_sf(K, comps)

    def F(k, i):
        c = tuple(a[:, i] for a in comps)
        return base[i] + np.maximum(sK[:, i] - comp_sf(k, c), 0).sum(axis=0)

    idx = np.flatnonzero(base + sK.sum(axis=0) >= target)
    lo, hi, act = np.full(idx.size, K), np.full(idx.size, K + 1), np.arange(idx.size)
    for _ in range(62):
        act = act[F(hi[act], idx[act]) < target[idx[act]]]
        if not act.size:
            break
        lo[act], hi[act] = hi[act], K + 2 * (hi[act] - K)
    while (act := np.flatnonzero(hi - lo > 1)).size:
        mid = (lo[act] + hi[act]) // 2
        ok = F(mid, idx[act]) >= target[idx[act]]
        hi[act[ok]], lo[act[~ok]] = mid[ok], mid[~ok]
    out[idx] = hi
    return out
