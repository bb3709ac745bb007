"""The NB2 dispersion sums of intercept-only rows from their tail counts (the climatology's
solver, :mod:`forecast.models._nbintercept`).

For a row of counts y_1..y_W the sums over counts of Σ_{k<y_t} f(k) regroup by k:
Σ_t Σ_{k<y_t} f(k) = Σ_{k>=1} N_k f(k), N_k = #{t: y_t > k} (k = 0 adds f(0) = 0 for the
three sums used). N is computed once per row, so a Newton step costs one pass over
k < max y instead of three cumulative tables and three gathers over every count.
"""
from __future__ import annotations

import numpy as np

from forecast.models._nbpieces import _TABLE_MAX_Y
from forecast.models._glmstack import _dispersion_sums


class _Tails:
    """Tail counts N_k of each row of ``y`` (R, W) int, bucketed by row width.

    A row's width is the power of two above its largest count, a function of the row alone,
    so a row gets the same sums, to the last bit, alone or in any batch. Rows with a count
    above ``_TABLE_MAX_Y`` use the closed forms of
    :func:`~forecast.models._glmstack._dispersion_sums` (a table would be gigabytes).
    """

    def __init__(self, y: np.ndarray) -> None:
        self.y = y
        R, W = y.shape
        top = y.max(axis=1, initial=0)
        big = top > _TABLE_MAX_Y
        width = np.where(big, -1, 2 ** np.ceil(np.log2(top + 1.0)).astype(np.int64))
        self.bucket = np.zeros(R, dtype=np.int64)
        self.pos = np.zeros(R, dtype=np.int64)
        self.parts: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = []  # (rows, k, N)
        for j, wd in enumerate(np.unique(width).tolist()):
            rows = np.flatnonzero(width == wd)
            self.bucket[rows], self.pos[rows] = j, np.arange(rows.size)
            if wd < 0:
                self.parts.append((rows, None, None))  # (closed forms)
                continue
            flat = (y[rows] + (wd + 1) * np.arange(rows.size)[:, None]).ravel()
            hist = np.bincount(flat, minlength=rows.size * (wd + 1)).reshape(rows.size, wd + 1)
            N = (W - np.cumsum(hist, axis=1)[:, 1:wd]).astype(float)  # N_k, k = 1..wd-1
            self.parts.append((rows, np.arange(1, wd, dtype=float), N))

    def _pieces(self, sub: np.ndarray):
        """(positions in ``sub``, rows, k, N of those rows) per bucket present in ``sub``."""
        b = self.bucket[sub]
        for j, (rows, k, N) in enumerate(self.parts):
            sel = np.flatnonzero(b == j) if len(self.parts) > 1 else np.arange(sub.size)
            if sel.size == 0:
                continue
            p = self.pos[sub[sel]]
            yield sel, rows[p], k, (N if N is None or p.size == rows.size else N[p])

    def sums(self, a: np.ndarray, sub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """S_1 = Σ_t Σ_{k<y_t} k/(1 + k a) and S_2 = Σ_t Σ_{k<y_t} k²/(1 + k a)² of the rows
        ``sub`` (each with its own ``a`` > 0)."""
        s1, s2 = np.empty(sub.size), np.empty(sub.size)
        for sel, rows, k, N in self._pieces(sub):
            if k is None:
                _, t1, t2 = _dispersion_sums(self.y[rows], a[sel], 1)
                s1[sel], s2[sel] = t1.sum(axis=1), t2.sum(axis=1)
                continue
            r = k / (1.0 + a[sel, None] * k)
            # (row by row, no (rows, k) temporaries: the products summed as einsum goes)
            s1[sel], s2[sel] = np.einsum("ij,ij->i", N, r), np.einsum("ij,ij,ij->i", N, r, r)
        return s1, s2

    def log_sum(self, a: np.ndarray) -> np.ndarray:
        """S_0 = Σ_t Σ_{k<y_t} log(1 + k a) of every row (``a`` per row, > 0)."""
        sub = np.arange(self.bucket.size)
        s0 = np.empty(sub.size)
        for sel, rows, k, N in self._pieces(sub):
            if k is None:
                s0[sel] = _dispersion_sums(self.y[rows], a[sel], 0)[0].sum(axis=1)
                continue
            s0[sel] = np.einsum("ij,ij->i", N, np.log1p(a[sel, None] * k))
        return s0
