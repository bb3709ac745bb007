"""Row-level helpers of :class:`~forecast.distributions.CountForecast`.

Argument checks of its constructors, the row blocks every pass works in, the support
cap, cumulative sums and their inversion (quantiles, draws), and the array work of
pooling (``mixture``) and stacking (``concat``) forecasts.
Arrays and members in, arrays out: the class keeps the public API and its docstrings.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from forecast._leanpmf import block
from forecast._stackgrid import StackGrid, pad_cols
from forecast.numerics import comp_sf

K_CAP_MIN = 200         # K <= max(K_CAP_MIN, 10 * history_max)
K_CAP_MAX = 100_000     # and never above this, whatever the history


_CHUNK = 1 << 11        # rows per block: temporaries stay in cache
_W_INV = 64             # counts read first when inverting a parametric forecast without its grid
_INDEX_COLS = ("unique_id", "ds", "h")
def _chunks(n: int, size: int = _CHUNK):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _cap(history_max: float | None) -> int:
    if history_max is None:
        return K_CAP_MIN
    if not np.isfinite(history_max) or history_max < 0:
        raise ValueError(f"history_max must be a finite count >= 0. Got {history_max!r} instead.")
    # The absolute ceiling keeps a runaway series (an explosive fit, counts in the
    # millions) from allocating a dense pmf of absurd width; its mass goes to the tail.
    return min(K_CAP_MAX, max(K_CAP_MIN, int(10 * history_max)))


def _check_index(index: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(index, pd.DataFrame) or not set(_INDEX_COLS) <= set(index.columns):
        raise ValueError(f"index must be a DataFrame with columns {list(_INDEX_COLS)}.")
    return index.reset_index(drop=True)


def _param(value, n: int, name: str, upper: float = np.inf) -> np.ndarray:
    a = np.array(np.broadcast_to(np.asarray(value, dtype=float), (n,)))
    bad = np.flatnonzero(~(np.isfinite(a) & (a >= 0) & (a <= upper)))
    if bad.size:
        raise ValueError(f"'{name}' must be finite and in [0, {upper}]; {bad.size} row(s) fail "
                         f"(first: row {bad[0]}, value {a[bad[0]]!r}).")
    return a


def _fraction(level: float) -> float:
    f = level / 100 if level > 1 else level
    if not 0 < f < 1:
        raise ValueError(f"level must be in (0, 1) or a percentage in (1, 100). Got {level!r} instead.")
    return float(f)


def _no_components(n: int) -> tuple:
    return tuple(np.empty((0, n)) for _ in range(4))


def padded(f, K: int, sl: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """(pmf on 0..K, tail beyond K) of rows ``sl`` of forecast ``f``, K >= f.K, extended by the parametric form."""
    if K == f.K:
        return f.pmf[sl], f.tail[sl]
    rows, k0 = np.arange(f.n_rows)[sl], f.K + 1
    p = np.zeros((rows.size, K + 1))
    p[:, :k0] = f.pmf[sl]
    p[:, k0:] = pad_cols(f._comp(rows), k0, K)
    return p, padded_tail(f, K, rows)


def padded_tail(f, K: int, rows: np.ndarray | None = None) -> np.ndarray:
    """The tail beyond K >= f.K of rows ``rows`` (default all) of forecast ``f`` (see :func:`padded`)."""
    rows = np.arange(f.n_rows) if rows is None else rows
    if K == f.K:
        return f.tail[rows]
    comps = f._comp(rows)
    return f._tail_np(rows, comps) + comp_sf(K, comps).sum(axis=0)


def prefix(f, k: np.ndarray, rows: np.ndarray, upper: bool = False) -> np.ndarray:
    """F(k_i) on ``rows`` of forecast ``f`` (0 <= k <= K) by sequential cumsum, the sums
    :func:`invert` uses too; with ``upper`` the upper sum over j >= k_i instead."""
    ki, out = k.astype(np.intp), np.empty(rows.size)
    for sl in _chunks(rows.size):
        if upper:
            c, j = np.cumsum(block(f, rows[sl], f.K + 1)[:, ::-1], axis=1), f.K - ki[sl]
        else:  # only the prefix each block needs (a parametric grid not built stays unbuilt)
            c, j = np.cumsum(block(f, rows[sl], int(ki[sl].max(initial=0)) + 1), axis=1), ki[sl]
        out[sl] = np.take_along_axis(c, j[:, None], axis=1)[:, 0]
    return out


def invert(f, target: np.ndarray) -> np.ndarray:
    """Smallest k with F(k) >= target for forecast ``f``, targets (n_rows, j) in [-1e-12, 1]."""
    # One searchsorted serves a block of 256 rows stacked at offsets 2r; offsets
    # below 512 round F and targets to 5.7e-14, far below the quantile tolerance (1e-12).
    out = np.empty(target.shape, dtype=np.int64)
    # A parametric forecast without its grid reads a prefix of _W_INV counts first; rows whose
    # targets lie beyond it are read again at full width (the same recurrence, so the same sums).
    first = min(_W_INV, f.K + 1) if f._grid is not None else f.K + 1
    for sl in _chunks(f.n_rows, 256):
        rows = np.arange(f.n_rows)[sl]
        out[sl] = _search(f, rows, target[sl], first)
        far = np.flatnonzero((out[sl] >= first).any(axis=1)) if first < f.K + 1 else ()
        if len(far):  # then a width from the rows' moments (20 sd above the mean), then all of K
            rf = rows[far]
            guess = int(np.max(f.mean[rf] + 20 * np.sqrt(np.maximum(f.var[rf], 0)))) + 2
            for w in sorted({min(max(2 * first, guess), f.K + 1), f.K + 1}):
                out[rf] = _search(f, rf, target[rf], w)
                if w == f.K + 1 or not (far := np.flatnonzero((out[rf] >= w).any(axis=1))).size:
                    break
                rf = rf[far]
    rows, cols = np.nonzero(out > f.K)
    if rows.size:
        out[rows, cols] = f._search_beyond(rows, target[rows, cols])
    return out


def _search(f, rows: np.ndarray, target: np.ndarray, w: int) -> np.ndarray:
    """Smallest k < w with F(k) >= target on ``rows`` of ``f`` (targets (m, j)), else ``w``."""
    c = np.cumsum(block(f, rows, w), axis=1)
    r = np.arange(c.shape[0])[:, None]
    c += 2.0 * r
    pos = np.searchsorted(c.ravel(), (target + 2.0 * r).ravel())
    return pos.reshape(target.shape) - r * w


def _mixture_paths(members: list, w: np.ndarray) -> tuple[np.ndarray | None, bool]:
    """(paths, joint) of the pool: path j of row (s, h) from the member whose cumulative-weight
    band at that row holds the shared u_j = (j + 0.5) / P (see ``CountForecast.mixture``)."""
    ps = [m.paths for m in members]
    if any(p is None for p in ps) or len({p.shape for p in ps}) != 1:
        return None, False
    S, H, P = ps[0].shape
    band = np.cumsum(w.reshape(len(ps), S, H), axis=0)  # (M, S, H)
    u = (np.arange(P) + 0.5) / P  # one u per path index, shared by every series and step
    who = np.minimum((band[..., None] < u).sum(axis=0), len(ps) - 1)  # (S, H, P)
    out = np.empty_like(ps[0])
    for m, p in enumerate(ps):
        np.copyto(out, p, where=who == m)
    # one world per path only if every series picks the same member for path j: equal weights
    # across series (per step); otherwise the choice is a common-random-numbers coupling
    same = bool((band == band[:, :1, :]).all())
    return out, same and all(m.joint for m in members)


def pool(members: list, weights) -> tuple:
    """Arrays of the linear pool of ``members`` (see ``CountForecast.mixture``).

    Returns ``(index, (pmf, tail, components, mean, var, paths), joint)``.
    """
    if not members:
        raise ValueError("mixture needs at least one member.")
    ref, n, M = members[0].index, members[0].n_rows, len(members)
    for i, m in enumerate(members[1:], 1):
        if m.n_rows != n or any(not np.array_equal(ref[c].to_numpy(), m.index[c].to_numpy())
                                for c in _INDEX_COLS):
            raise ValueError(f"mixture members must share unique_id/ds/h row by row; member {i} "
                             f"({m.model!r}) differs.")
    w = np.asarray(weights, dtype=float)
    w = np.broadcast_to(w[:, None], (M, n)) if w.shape == (M,) else w
    if w.shape != (M, n) or not np.isfinite(w).all() or (w < 0).any() or (w.sum(axis=0) <= 0).any():
        raise ValueError(f"weights must be finite, >= 0, not all 0, of shape ({M},) or ({M}, {n}).")
    w = w / w.sum(axis=0)
    K = max(m.K for m in members)
    pmf, tail = np.empty((n, K + 1)), np.empty(n)
    for sl in _chunks(n):  # pad members block by block: no member-sized temporaries
        parts = [m._padded(K, sl) for m in members]
        pmf[sl] = sum(wm[sl, None] * p for wm, (p, _) in zip(w, parts))
        tail[sl] = sum(wm[sl] * t for wm, (_, t) in zip(w, parts))
    comps = tuple(np.concatenate([m.components[j] * (wm if j == 0 else 1) for wm, m in zip(w, members)])
                  for j in range(4))
    mean = sum(wm * m.mean for wm, m in zip(w, members))
    var = sum(wm * (m.var + (m.mean - mean) ** 2) for wm, m in zip(w, members))
    paths, joint = _mixture_paths(members, w)
    return ref, (pmf, tail, comps, mean, var, paths), joint


def stack(fs: list) -> tuple:
    """Constructor arguments of the row-wise stack of ``fs``, then ``joint`` and ``part_paths``
    (see ``CountForecast.concat``)."""
    if not fs:
        raise ValueError("concat needs at least one forecast.")
    K, C = max(f.K for f in fs), max(f.components[0].shape[0] for f in fs)
    if any(f._grid is not None for f in fs):  # a lazy part: the stack stays lazy (scores read prefixes)
        pmf, tail = StackGrid.of(fs, K), np.concatenate([padded_tail(f, K) for f in fs])
    else:
        padded = [f._padded(K) for f in fs]
        pmf, tail = np.concatenate([p for p, _ in padded]), np.concatenate([t for _, t in padded])
    comps = tuple(np.concatenate([np.pad(f.components[j], ((0, C - f.components[j].shape[0]), (0, 0)))
                                  for f in fs], axis=1) for j in range(4))
    models, families = sorted({f.model for f in fs}), {f.family for f in fs}
    labels = None if len(models) == 1 else np.concatenate(
        [np.full(f.n_rows, f.model, dtype=object) if f._row_models is None else f._row_models for f in fs])
    shapes = {None if f.paths is None else f.paths.shape[1:] for f in fs}
    paths = np.concatenate([f.paths for f in fs]) if None not in shapes and len(shapes) == 1 else None
    return (pd.concat([f.index for f in fs], ignore_index=True), "+".join(models),
            pmf, tail, comps,
            np.concatenate([f.mean for f in fs]), np.concatenate([f.var for f in fs]), paths,
            families.pop() if len(families) == 1 else "mixed", labels,
            paths is not None and all(f.joint for f in fs), () if paths is not None else stack_pieces(fs))


def stack_pieces(fs: list) -> tuple:
    """``part_paths`` of a stack that keeps no whole ``paths``: every part's paths (or its own
    pieces) as ``(first row of each series, (k, H, P) paths, joint)``, rows shifted to the stack."""
    out, offset = [], 0
    for f in fs:
        if f.paths is not None:
            out.append((offset + np.arange(f.paths.shape[0]) * f.paths.shape[1], f.paths, f.joint))
        else:
            out.extend((offset + first, p, j) for first, p, j in f.part_paths)
        offset += f.n_rows
    return tuple(out)


def subset_pieces(pieces: tuple, pos: np.ndarray, n_rows: int) -> tuple:
    """The path pieces of rows ``pos``: series selected whole and in order keep their paths."""
    if not pieces:
        return ()
    new = np.full(n_rows, -1, dtype=np.intp)
    new[pos] = np.arange(pos.size)
    out = []
    for first, paths, joint in pieces:
        steps = np.arange(paths.shape[1])
        at = new[first[:, None] + steps]  # new position of every row of each series
        ok = (at >= 0).all(axis=1) & (at == at[:, :1] + steps).all(axis=1)
        if ok.any():
            out.append((at[ok, 0], paths if ok.all() else paths[ok], joint))
    return tuple(out)


def samples_pmf(index: pd.DataFrame, paths: np.ndarray, cap: int) -> tuple:
    """``(pmf, tail, mean, var)`` of simulated paths (see ``CountForecast.from_samples``)."""
    if paths.ndim != 3 or not np.issubdtype(paths.dtype, np.integer) or paths.shape[2] < 1:
        raise ValueError(f"paths must be an int array (n_series, horizon, n_paths); got {paths.shape}.")
    S, H, P = paths.shape
    if S * H != len(index) or not np.array_equal(index["h"].to_numpy(), np.tile(np.arange(1, H + 1), S)):
        raise ValueError("index rows must be series-major then h = 1..horizon, one per (series, h).")
    v = paths.reshape(S * H, P)
    if v.size and v.min() < 0:
        raise ValueError("paths hold negative counts.")
    n, K = S * H, int(min(v.max(initial=0), cap))
    pmf, tail, mean, var = np.empty((n, K + 1)), np.empty(n), np.empty(n), np.empty(n)
    for sl in _chunks(n, max(1, (1 << 22) // P)):  # bounds the (rows x paths) temporaries
        vs = v[sl]
        flat = (np.arange(vs.shape[0])[:, None] * (K + 2) + np.minimum(vs, K + 1)).ravel()
        counts = np.bincount(flat, minlength=vs.shape[0] * (K + 2)).reshape(-1, K + 2)
        pmf[sl], tail[sl] = counts[:, :K + 1] / P, counts[:, K + 1] / P
        mean[sl], var[sl] = vs.mean(axis=1), vs.var(axis=1)
    return pmf, tail, mean, var


def checked_pmf(pmf, tail, n: int) -> tuple:
    """``(pmf, tail, mean, var)`` of a given dense pmf, copied and checked (see ``CountForecast.from_pmf``)."""
    p = np.array(pmf, dtype=float)  # our own copy: rescaled in place, then frozen
    if p.ndim != 2 or p.shape[0] != n or p.shape[1] < 1 or not np.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"pmf must be finite, >= 0 and of shape ({n}, K+1); got shape {p.shape}.")
    s = p.sum(axis=1)
    t = np.clip(1 - s, 0, None) if tail is None else _param(tail, n, "tail", 1.0)
    bad = np.flatnonzero(s > 1 + 1e-9 if tail is None else np.abs(s + t - 1) > 1e-9)
    if bad.size:
        what = "pmf rows sum to more than 1" if tail is None else "pmf row sum + tail is not 1 (1e-9)"
        raise ValueError(f"{what} in {bad.size} row(s) (first: row {bad[0]}, sum {s[bad[0]]!r}).")
    fix = np.abs(s - (1 - t)) > 1e-15
    p[fix] *= ((1 - t[fix]) / s[fix])[:, None]
    k = np.arange(p.shape[1], dtype=float)
    mean = p @ k
    return p, t, mean, np.maximum(p @ (k * k) - mean**2, 0.0)
