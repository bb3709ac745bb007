r"""The predictive pmf of simulated paths, Rao-Blackwellised (``CountForecast.from_path_means``).

A model with lags forecasts step ``h`` by simulating paths: on path ``p`` the count
:math:`Y_h` is drawn from a (zero-inflated) NB2 with conditional mean :math:`\mu_h^{(p)}`,
which depends on the path's own earlier draws. The histogram of the draws gives
probability 0 to every count no path happened to draw; the average of the conditional
laws

.. math:: p(y) = \frac1P \sum_p f(y \mid \mu^{(p)}, \alpha^{(p)}, \pi^{(p)})

estimates the same predictive distribution with full support and lower Monte-Carlo
variance (Rao-Blackwell: it is the conditional expectation of the histogram given the
paths' means). Its moments are exact mixture moments: mean :math:`\bar m`,
:math:`m_p = (1-\pi_p)\mu_p`, and variance
:math:`\frac1P\sum_p (1-\pi_p)\mu_p(1+\alpha_p\mu_p+\pi_p\mu_p) + \frac1P\sum_p (m_p-\bar m)^2`.

**Cost.** Paths that share their conditional law (at ``h = 2`` with one lag the mean
depends only on the count drawn at ``h = 1``, so a handful of values among 1000 paths) are
merged first, each distinct law weighted by its number of paths; the pmf is then one grid
per distinct law, built in row-aligned blocks so temporaries stay near 32 MB whatever
``rows x K x paths`` is. Every row's sums run over its own laws in a fixed (sorted) order,
so a row's numbers do not depend on which other rows share the call (batching, jobs).
"""
from __future__ import annotations

import numpy as np

from forecast._fcrows import samples_pmf
from forecast.numerics import _LOG_TINY, log1p_ratio, nb_pmf_grid, nb_sf, needed_k

_CELLS = 1 << 22        # grid cells (atoms x (K+1)) per pass: 32 MB of float64
_ROWS = 1 << 12         # rows deduplicated at a time
_TOP = 8                # laws per row kept as the parametric form beyond K
_B = 64                 # atoms per block (fixed: a row's sums must not depend on K or the call)


def _per_path(value, n: int, P: int, name: str, upper: float) -> np.ndarray:
    """``value`` (scalar, (n,) or (n, P)) as a read-only (n, P) view, checked."""
    a = np.asarray(value, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    try:
        a = np.broadcast_to(a, (n, P))
    except ValueError:
        raise ValueError(f"'{name}' must be a scalar, ({n},) or ({n}, {P}); got shape {np.shape(value)}.") from None
    bad = ~(np.isfinite(a) & (a >= 0) & (a <= upper))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"'{name}' must be finite and in [0, {upper}]; {int(bad.sum())} value(s) fail "
                         f"(first: row {r}, path {c}, value {a[r, c]!r}).")
    return a


def _atoms(mu: np.ndarray, alpha: np.ndarray, pi: np.ndarray, per_path: bool) -> tuple:
    """Distinct conditional laws of rows ``mu`` (m, P): (row, mu, alpha, pi, weight), sorted by row.

    With one alpha and pi per row, paths of equal mean are merged (weight = share of paths);
    with per-path alpha or pi every path is its own law (weight 1/P).
    """
    m, P = mu.shape
    if per_path:
        rows = np.repeat(np.arange(m), P)
        return rows, mu.ravel(), alpha.ravel(), pi.ravel(), np.full(m * P, 1.0 / P)
    ms = np.sort(mu, axis=1)
    new = np.ones((m, P), dtype=bool)
    new[:, 1:] = ms[:, 1:] != ms[:, :-1]
    pos = np.flatnonzero(new.ravel())
    rows = pos // P
    # each row starts a new law, so the next law's position also ends the last law of a row
    count = np.diff(np.append(pos, m * P))
    return rows, ms.ravel()[pos], alpha[rows, 0], pi[rows, 0], count / P


def path_mixture(mu_paths, alpha, pi, cap: int, tail_tol: float) -> tuple:
    """``(pmf, tail, comps, mean, var)`` of the path mixture; see the module docstring.

    ``mu_paths`` (n, P) conditional means; ``alpha``, ``pi`` scalar, (n,) or (n, P).
    ``K`` is the smallest value leaving every path's own tail below ``tail_tol``
    (so the mixture's too), at most ``cap``; the tail is the exact mixture of the
    paths' survival functions at ``K``. ``comps`` (C <= ``_TOP`` components) are the
    row's laws with the most mass beyond ``K``, weighted by their share of paths: the
    exact law where a row has at most ``_TOP`` distinct ones (a deterministic step such
    as ``h = 1`` has one), else a lower bound beyond ``K`` (the rest sits at ``K + 1``).
    """
    mu = np.asarray(mu_paths, dtype=float)
    if mu.ndim != 2 or mu.shape[1] < 1:
        raise ValueError(f"mu_paths must be a float array (rows, n_paths); got shape {mu.shape}.")
    n, P = mu.shape
    mu = _per_path(mu, n, P, "mu_paths", np.inf)
    alpha, pi = _per_path(alpha, n, P, "alpha", np.inf), _per_path(pi, n, P, "pi", 1.0)
    per_path = bool((np.ptp(alpha, axis=1) > 0).any() or (np.ptp(pi, axis=1) > 0).any()) if n else False
    parts = [_atoms(mu[s], alpha[s], pi[s], per_path) for s in (slice(i, i + _ROWS) for i in range(0, n, _ROWS))]
    rows = np.concatenate([p[0] + i * _ROWS for i, p in enumerate(parts)]) if parts else np.empty(0, np.intp)
    a_mu, a_alpha, a_pi, a_w = (np.concatenate([p[j] for p in parts]) if parts else np.empty(0)
                                for j in range(1, 5))
    starts = np.searchsorted(rows, np.arange(n + 1))  # atoms of row r: starts[r]:starts[r + 1]
    # NB2 and ZI laws grow stochastically with mu at fixed alpha, pi: a row's largest mean sets its K
    if per_path:
        K = needed_k(a_mu, a_alpha, a_pi, cap, tail_tol) if a_mu.size else 0
    else:
        top = np.maximum(starts[1:] - 1, 0)
        K = _support(a_mu[top], a_alpha[top], a_pi[top], cap, tail_tol)
    pmf = _mixture_grid(rows, starts, a_mu, a_alpha, a_pi, a_w, K, per_path)
    beyond = a_w * (1 - a_pi) * nb_sf(np.full(a_mu.size, float(K)), a_mu, a_alpha)
    tail = np.bincount(rows, beyond, minlength=n)
    # the parametric form beyond K: each row's laws holding the most mass there (all of them
    # when a row has at most _TOP, e.g. a deterministic step), so far outcomes keep a probability
    order = np.lexsort((-beyond, rows))
    rank = np.arange(order.size) - starts[rows[order]]
    top = order[rank < _TOP]
    C = int(min(_TOP, np.diff(starts).max(initial=0)))
    comps = tuple(np.zeros((C, n)) for _ in range(4))
    for arr, v in zip(comps, (a_w, a_mu, a_alpha, a_pi)):
        arr[rank[rank < _TOP], rows[top]] = v[top]
    m, v = (1 - pi) * mu, (1 - pi) * mu * (1 + alpha * mu + pi * mu)
    one = np.diff(starts) == 1  # one law: its own moments, not an average of P equal numbers
    mean = np.where(one, m[:, 0], m.mean(axis=1))
    var = np.where(one, v[:, 0], v.mean(axis=1) + m.var(axis=1))
    return pmf, tail, comps, mean, var


def _support(mu: np.ndarray, alpha: np.ndarray, pi: np.ndarray, cap: int, tail_tol: float) -> int:
    """Smallest K <= ``cap`` with (1 - pi) P(Y > K) < ``tail_tol`` on every row (the rule of
    :func:`~forecast.numerics.needed_k`), by bisection on the exact survival function: one
    row per forecast row here, so ~17 vectorised calls instead of a walk over every k."""
    def fits(k: int) -> bool:
        return bool(((1 - pi) * nb_sf(np.full(mu.size, float(k)), mu, alpha) < tail_tol).all())

    if not mu.size or fits(0):
        return 0
    if not fits(cap):
        return cap
    lo, hi = 0, cap
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return hi


def _mixture_grid(rows, starts, mu, alpha, pi, w, K: int, per_path: bool) -> np.ndarray:
    r"""Sum of ``w (ZI)NB2(mu, alpha, pi)`` pmfs on 0..K per row, (n, K+1).

    A row's atoms go in blocks of at most ``_B`` (the last one padded with zero weights
    to a power of two), set by the row alone, whatever ``K`` or the other rows: each
    block is a cumulative product of the ratios :math:`f(k)/f(k-1) = c\,g(k)`,
    :math:`c = \mu/(1+\alpha\mu)`, :math:`g(k) = (1+\alpha(k-1))/k`, started at
    :math:`w(1-\pi)f(0)` and summed over its atoms; block sums are added into their row
    in a fixed order, so a row's numbers never depend on the call. Atoms whose start
    underflows (means above ~700) are done in log space.
    """
    n = starts.size - 1
    k = np.arange(1, K + 1, dtype=float)
    pmf = np.zeros((n, K + 1))
    if not mu.size:
        return pmf
    with np.errstate(divide="ignore"):
        lead = np.log(w) + np.log1p(-pi) - mu * log1p_ratio(alpha * mu)  # log w (1 - pi) f(0)
    low = lead < _LOG_TINY
    # atom j of row r goes to block (r's first block + j // _B), slot j % _B
    nblk = -(-np.diff(starts) // _B)
    first = np.concatenate([[0], np.cumsum(nblk)])
    j = np.arange(mu.size) - starts[rows]
    blk, slot = first[rows] + j // _B, j % _B
    blk_row = np.repeat(np.arange(n), nblk)
    astart = np.searchsorted(blk, np.arange(blk_row.size + 1))  # atoms of block b: astart[b]:astart[b + 1]
    size = np.diff(astart)
    width = np.minimum(_B, 1 << np.ceil(np.log2(size)).astype(int))  # padding to the next power of two
    for W in np.unique(width):  # few atoms per row (a lag-1 GLM): narrow blocks, no wasted work
        cls = np.flatnonzero(width == W)
        per = max(1, _CELLS // (int(W) * (K + 1)))
        for p0 in range(0, cls.size, per):
            bl = cls[p0:p0 + per]
            cnt = size[bl]
            lb = np.repeat(np.arange(bl.size), cnt)  # block of each atom, within this pass
            sel = np.repeat(astart[bl], cnt) + np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            ok, lbo = sel[~low[sel]], lb[~low[sel]]
            si = slot[ok]
            f = np.zeros((bl.size, W, K + 1))
            c = np.zeros((bl.size, W))
            c[lbo, si] = mu[ok] / (1 + alpha[ok] * mu[ok])
            if per_path:
                a = np.zeros((bl.size, W))
                a[lbo, si] = alpha[ok]
                np.multiply(a[:, :, None], k - 1, out=f[:, :, 1:])
                f[:, :, 1:] += 1
                f[:, :, 1:] *= c[:, :, None]
                f[:, :, 1:] /= k
            else:  # one alpha per row, hence per block: g(k) once per block
                g = (1 + alpha[starts[blk_row[bl]]][:, None] * (k - 1)) / k
                np.multiply(c[:, :, None], g[:, None, :], out=f[:, :, 1:])
            f[lbo, si, 0] = np.exp(lead[ok])
            np.cumprod(f, axis=2, out=f)
            for i, b in zip(sel[low[sel]], lb[low[sel]]):  # rare: log space, one atom at a time
                f[b, slot[i]] = w[i] * (1 - pi[i]) * nb_pmf_grid(mu[i:i + 1], alpha[i:i + 1], K, uniform=False)[0]
            f[lb, slot[sel], 0] += w[sel] * pi[sel]
            sums = f.sum(axis=1)
            for i, b in enumerate(bl):
                pmf[blk_row[b]] += sums[i]
    return pmf


def path_forecast(index, mu_paths, alpha, pi, paths, cap: int, tail_tol: float) -> tuple:
    """``(pmf, tail, components, mean, var, paths)`` of ``CountForecast.from_path_means``."""
    n = len(index)
    if np.shape(mu_paths)[:1] != (n,):
        raise ValueError(f"mu_paths must have one row per index row ({n}); got shape {np.shape(mu_paths)}.")
    pmf, tail, comps, mean, var = path_mixture(mu_paths, alpha, pi, cap, tail_tol)
    kept = None
    if paths is not None:
        kept = np.asarray(paths).view()  # a read-only view: the caller's array keeps its flags
        if kept.ndim != 3 or kept.shape[2] != np.shape(mu_paths)[1]:
            raise ValueError(f"paths must be (n_series, horizon, {np.shape(mu_paths)[1]}); got {kept.shape}.")
        samples_pmf(index, kept[..., :1], 0)  # the shape and row-order checks of from_samples
        kept.flags.writeable = False
    return pmf, tail, comps, mean, var, kept
