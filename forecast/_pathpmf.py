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
merged first, each distinct law weighted by its number of paths. The grid is built by
:mod:`forecast._mixgrid`: with one alpha per row, the row's widest law times a sum of
exponentials (a small matrix product per row), each row only as wide as its own laws
need. A forecast stores each row only over its own support (:mod:`forecast._raggedpmf`),
the dense grid being built when it is read. The mass beyond ``K`` is evaluated only for
the laws that can add ``2**-56`` of a row's tail (:func:`_beyond`). Every row's sums run
over its own laws in a fixed order, so a row's numbers do not depend on which other rows
share the call (batching, jobs).
"""
from __future__ import annotations

import numpy as np

from forecast._fcrows import samples_pmf
from forecast._raggedpmf import Laws, RaggedGrid, _segments, mixture_grid
from forecast.numerics import nb_sf, needed_k

_ROWS = 1 << 12         # rows deduplicated at a time
_TOP = 8                # laws per row kept as the parametric form beyond K
_SF_FIRST = 16          # laws per row (largest means) whose mass beyond K is always computed
_SF_REL = 2.0 ** -56    # laws whose mass beyond K cannot reach this share of the row's tail: left out


def _per_path(value, n: int, P: int, name: str, upper: float, row0: int = 0) -> np.ndarray:
    """``value`` (scalar, (n,) or (n, P)) as a read-only (n, P) view, checked.

    The values are checked as given, before broadcasting (a per-row value once, not P times);
    ``row0`` is the first row's number in messages."""
    a = np.asarray(value, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    try:
        full = np.broadcast_to(a, (n, P))
    except ValueError:
        raise ValueError(f"'{name}' must be a scalar, ({n},) or ({n}, {P}); got shape {np.shape(value)}.") from None
    ok = np.isfinite(a) & (a >= 0) & (a <= upper)
    if not ok.all():
        bad = np.broadcast_to(~ok, (n, P))
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"'{name}' must be finite and in [0, {upper}]; {int(bad.sum())} value(s) fail "
                         f"(first: row {row0 + r}, path {c}, value {full[r, c]!r}).")
    return full


class _Rows:
    """Row blocks of the path means: one (n, P) array, or per-series (h, P) arrays in row order
    (joined block by block, so the caller need not build one (n, P) copy)."""

    def __init__(self, mu_paths) -> None:
        if isinstance(mu_paths, (list, tuple)) and mu_paths and all(
                isinstance(m, np.ndarray) and m.ndim == 2 for m in mu_paths):  # (nested lists: one array)
            self.parts = [np.asarray(m, dtype=float) for m in mu_paths]
            shapes = {m.shape[1] for m in self.parts}
            if len(shapes) > 1:
                raise ValueError(f"mu_paths blocks must share n_paths; got {sorted(shapes)}.")
            self.ends = np.cumsum([m.shape[0] for m in self.parts])
            self.shape = (int(self.ends[-1]), shapes.pop())
        else:
            mu = np.asarray(mu_paths, dtype=float)
            if mu.ndim != 2 or mu.shape[1] < 1:
                raise ValueError(f"mu_paths must be a float array (rows, n_paths); got shape {mu.shape}.")
            self.parts, self.mu, self.shape = None, mu, mu.shape

    def __getitem__(self, s: slice) -> np.ndarray:
        if self.parts is None:
            return self.mu[s]
        i0 = int(np.searchsorted(self.ends, s.start, side="right"))
        i1 = int(np.searchsorted(self.ends, s.stop, side="left")) + 1
        first = self.ends[i0] - self.parts[i0].shape[0]
        block = np.concatenate(self.parts[i0:i1]) if i1 - i0 > 1 else self.parts[i0]
        return block[s.start - first:s.stop - first]


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


def path_mixture(mu_paths, alpha, pi, cap: int, tail_tol: float, lean: bool = False) -> tuple:
    """``(pmf, tail, comps, mean, var)`` of the path mixture; see the module docstring.

    ``pmf`` is the dense ``(n, K+1)`` grid, or with ``lean`` a
    :class:`~forecast._raggedpmf.RaggedGrid` (each row over its own support, dense on demand).

    ``mu_paths`` (n, P) conditional means, or a list of per-series (h, P) blocks in row order;
    ``alpha``, ``pi`` scalar, (n,) or (n, P).
    ``K`` is the smallest value leaving every path's own tail below ``tail_tol``
    (so the mixture's too), at most ``cap``; the tail is the mixture of the paths'
    survival functions at ``K`` (to ``2**-56`` of itself: laws that cannot reach that are
    left out, :func:`_beyond`). ``comps`` (C <= ``_TOP`` components) are the row's laws
    with the most mass beyond ``K``, weighted by their share of paths: the exact law where
    a row has at most ``_TOP`` distinct ones (a deterministic step such as ``h = 1`` has
    one), else a lower bound beyond ``K`` (the rest sits at ``K + 1``).
    """
    mu = mu_paths if isinstance(mu_paths, _Rows) else _Rows(mu_paths)
    n, P = mu.shape
    alpha, pi = _per_path(alpha, n, P, "alpha", np.inf), _per_path(pi, n, P, "pi", 1.0)
    per_path = bool((np.ptp(alpha, axis=1) > 0).any() or (np.ptp(pi, axis=1) > 0).any()) if n else False
    blocks = [slice(i, min(i + _ROWS, n)) for i in range(0, n, _ROWS)]  # (row blocks: small temporaries)
    parts = [_atoms(_per_path(mu[s], s.stop - s.start, P, "mu_paths", np.inf, s.start), alpha[s], pi[s], per_path)
             for s in blocks]
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
    laws = Laws(rows, starts, a_mu, a_alpha, a_pi, a_w, per_path)
    pmf = RaggedGrid(laws, K) if lean else mixture_grid(laws, K)
    beyond = _beyond(K, starts, a_mu, a_alpha, a_pi, a_w, per_path)
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
    # exact mixture moments over the distinct laws (weights = shares of paths)
    m, v = (1 - a_pi) * a_mu, (1 - a_pi) * a_mu * (1 + a_alpha * a_mu + a_pi * a_mu)
    one = np.diff(starts) == 1  # one law: its own moments, not a weighted sum
    mean = np.where(one, m[np.minimum(starts[:-1], m.size - 1)] if m.size else 0.0,
                    np.bincount(rows, a_w * m, minlength=n))
    spread = np.bincount(rows, a_w * (m - mean[rows]) ** 2, minlength=n)
    var = np.where(one, v[np.minimum(starts[:-1], v.size - 1)] if v.size else 0.0,
                   np.bincount(rows, a_w * v, minlength=n) + spread)
    return pmf, tail, comps, mean, var


def _beyond(K: int, starts: np.ndarray, mu: np.ndarray, alpha: np.ndarray, pi: np.ndarray, w: np.ndarray,
            per_path: bool) -> np.ndarray:
    """Each law's mass beyond ``K``, ``w (1 - pi) P(Y > K)``, where it can matter (see below).

    With one alpha and pi per row the survival function grows with the mean, and a row's
    laws are sorted by mean: they are computed from the largest down, ``_SF_FIRST`` per row,
    then twice as many each round, while the laws left could add more than ``_SF_REL`` of
    the row's computed sum (their weights sum to at most 1, and each has a survival
    function at most the last law's computed). Laws
    left out count 0: the row's tail changes by less than ``_SF_REL`` of itself, and each
    of them has less mass beyond ``K`` than that, so the parametric form (the laws with the
    most) keeps the same laws up to ties at that level. Per-path laws: all computed.
    """
    kk = np.full(mu.size, float(K))
    if per_path or not mu.size:
        return w * (1 - pi) * nb_sf(kk, mu, alpha)
    n = starts.size - 1
    out, got = np.zeros(mu.size), np.zeros(n)
    lo, hi = starts[:-1], starts[1:]
    live, done, step = np.arange(n), hi.copy(), _SF_FIRST  # laws done[r]:hi[r] are computed
    while live.size:
        cut = np.maximum(done[live] - step, lo[live])
        at = _segments(cut, done[live] - cut)
        out[at] = w[at] * (1 - pi[at]) * nb_sf(kk[at], mu[at], alpha[at])
        got[live] += np.bincount(np.repeat(np.arange(live.size), done[live] - cut), out[at], minlength=live.size)
        done[live] = cut
        more = cut > lo[live]  # laws left, of total weight below 1, each at most the last one computed
        live, cut = live[more], cut[more]
        live = live[nb_sf(kk[cut], mu[cut], alpha[cut]) > _SF_REL * got[live]]
        step *= 2
    return out


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


def path_forecast(index, mu_paths, alpha, pi, paths, cap: int, tail_tol: float) -> tuple:
    """``(pmf, tail, components, mean, var, paths)`` of ``CountForecast.from_path_means``."""
    n, mu = len(index), _Rows(mu_paths)
    if mu.shape[0] != n:
        raise ValueError(f"mu_paths must have one row per index row ({n}); got shape {mu.shape}.")
    pmf, tail, comps, mean, var = path_mixture(mu, alpha, pi, cap, tail_tol, lean=True)
    kept = None
    if paths is not None:
        kept = np.asarray(paths).view()  # a read-only view: the caller's array keeps its flags
        if kept.ndim != 3 or kept.shape[2] != mu.shape[1]:
            raise ValueError(f"paths must be (n_series, horizon, {mu.shape[1]}); got {kept.shape}.")
        samples_pmf(index, kept[..., :1], 0)  # the shape and row-order checks of from_samples
        kept.flags.writeable = False
    return pmf, tail, comps, mean, var, kept
