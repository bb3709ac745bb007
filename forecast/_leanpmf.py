"""A parametric forecast's dense pmf, built only when asked for (:class:`ParamGrid`).

A Poisson/NB/ZI forecast (one component per row) is exact in its parametric form, and its
``K`` is set by the widest row: a backtest row with mean 0.3 would carry a grid of 1,650
counts because another series reaches 155. Scores, quantiles and exceedances read only
the prefix each row needs (:func:`block`, the ratio recurrence up to that width) or the
parametric form itself; the full ``(n_rows, K+1)`` grid is built once, on the first read of
``CountForecast.pmf`` (plots, ensembles, calibration), and is then exactly the eager grid of
earlier versions. The scans read blocks transposed (:meth:`ParamGrid.cdf_cols`,
:func:`cdf_block`): one contiguous row per count, in reusable buffers (:func:`scratch`).
"""
from __future__ import annotations

import threading

import numpy as np

from forecast.numerics import _LOG_TINY, log1p_ratio, nb_pmf_grid, nb_sf, needed_k

_CHUNK = 1 << 11        # rows per block when the full grid is built
_SCRATCH = threading.local()


def scratch(name: str, shape: tuple, dtype=float) -> np.ndarray:
    """A reusable uninitialised array of ``shape`` (this thread's buffer ``name``).

    The scans read blocks of up to a few MB over and over; a fresh array each time costs
    its page faults on first touch (measured ~4 ns a float, more than the arithmetic).
    The buffer grows to the largest block asked for and is kept for the thread's life
    (:func:`trim_scratch` drops large ones).
    Callers must be done with a buffer before asking for it again.
    """
    size = int(np.prod(shape))
    bufs = _SCRATCH.__dict__.setdefault("bufs", {})
    buf = bufs.get((name, np.dtype(dtype)))
    if buf is None or buf.size < size:
        buf = bufs[(name, np.dtype(dtype))] = np.empty(max(size, 1 << 16), dtype)
    return buf[:size].reshape(shape)


def trim_scratch(max_size: int) -> None:
    """Drop this thread's buffers of more than ``max_size`` elements (after a rare wide scan)."""
    bufs = _SCRATCH.__dict__.get("bufs", {})
    for key in [k for k, b in bufs.items() if b.size > max_size]:
        del bufs[key]


class ParamGrid:
    """The not-yet-built pmf on ``0..K`` of single-component rows ``(mu, alpha, pi)``."""

    def __init__(self, mu: np.ndarray, alpha: np.ndarray, pi: np.ndarray, K: int):
        self.mu, self.alpha, self.pi, self.K = mu, alpha, pi, int(K)
        self.shape = (mu.size, self.K + 1)

    def full(self) -> np.ndarray:
        """The dense grid, block by block (one alpha per block: a single outer product)."""
        n, K = self.shape[0], self.K
        pmf, inflated = np.empty((n, K + 1)), self.pi.any()
        for start in range(0, n, _CHUNK):
            sl = slice(start, min(start + _CHUNK, n))
            nb_pmf_grid(self.mu[sl], self.alpha[sl], K, out=pmf[sl])
            if inflated:
                pmf[sl] *= (1 - self.pi[sl])[:, None]
                pmf[sl, 0] += self.pi[sl]
        return pmf

    def rows(self, rows: np.ndarray, width: int) -> np.ndarray:
        """Columns ``0..width-1`` of ``rows`` (``width <= K + 1``), from the recurrence alone."""
        mu, a, pi = self.mu[rows], self.alpha[rows], self.pi[rows]
        # ratio f(k)/f(k-1) = c/k + c alpha (1 - 1/k), c = mu/(1 + alpha mu): two positive terms
        # (no cancellation for any alpha), then the product
        inv = 1 / np.arange(1, int(width), dtype=float)
        c = mu / (1 + a * mu)
        out = np.empty((rows.size, int(width)))
        np.multiply(c[:, None], inv, out=out[:, 1:])
        out[:, 1:] += (c * a)[:, None] * (1 - inv)
        logf0 = -mu * log1p_ratio(a * mu)
        low = np.flatnonzero(logf0 < _LOG_TINY)  # f(0) underflows (mu > ~700): log space
        log_ratio = np.log(out[low, 1:])
        out[:, 0] = np.exp(logf0)
        np.cumprod(out, axis=1, out=out)
        out[low, 1:] = np.exp(logf0[low, None] + np.cumsum(log_ratio, axis=1))
        if pi.any():
            out *= (1 - pi)[:, None]
            out[:, 0] += pi
        return out

    def cols(self, rows: np.ndarray, width: int) -> np.ndarray:
        """:meth:`rows` transposed, ``(width, rows.size)`` C-ordered: the same numbers bit for bit.

        The products and sums run along the first axis, one contiguous row of values per
        count ``k`` (vectorised across the forecast rows): ``np.cumprod(axis=1)`` is a chain of
        dependent multiplications per row, several times slower. Each value is computed by the
        same operations in the same order as in :meth:`rows` (IEEE products commute).
        """
        mu, a, pi, W = self.mu[rows], self.alpha[rows], self.pi[rows], int(width)
        inv = 1 / np.arange(1, W, dtype=float)
        c = mu / (1 + a * mu)
        out = np.empty((W, rows.size))
        np.multiply(inv[:, None], c, out=out[1:])
        ca = c * a
        if ca.any():  # (a Poisson block adds exact zeros: skipped)
            out[1:] += (1 - inv)[:, None] * ca
        logf0 = -mu * log1p_ratio(a * mu)
        low = np.flatnonzero(logf0 < _LOG_TINY)  # f(0) underflows (mu > ~700): log space
        log_ratio = np.log(out[1:, low])
        out[0] = np.exp(logf0)
        mul = np.multiply
        for k in range(1, W):  # the cumulative product, count by count
            mul(out[k - 1], out[k], out=out[k])
        if low.size:
            out[1:, low] = np.exp(logf0[low] + np.cumsum(log_ratio, axis=0))
        if pi.any():
            out *= 1 - pi
            out[0] += pi
        return out

    def cdf_cols(self, rows: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """``(F, last2)``: the cumulative sums of :meth:`cols` along counts, ``(width, rows.size)``
        (in this thread's buffer ``"cdf"``, see :func:`scratch`), bit for bit
        ``np.cumsum(self.rows(rows, width), axis=1).T``, and the pmf at counts ``width - 2,
        width - 1`` as ``(rows.size, 2)`` (``width >= 2``).

        One loop over the counts multiplies the ratios into the pmf and adds the pmf into
        the sums while both are hot in cache (the same operations, in the same order, as
        ``np.cumprod`` and then ``np.cumsum``).
        """
        rows, W = np.asarray(rows), int(width)
        mu, a, pi = self.mu[rows], self.alpha[rows], self.pi[rows]
        logf0 = -mu * log1p_ratio(a * mu)
        if W < 2 or (logf0 < _LOG_TINY).any():  # f(0) underflows (mu > ~700): log space, see cols
            P = self.cols(rows, W)
            last2 = P[-2:].T.copy()
            np.cumsum(P, axis=0, out=P)
            return P, last2
        inv = 1 / np.arange(1, W, dtype=float)
        c = mu / (1 + a * mu)
        out = scratch("cdf", (W, rows.size))
        np.multiply(inv[:, None], c, out=out[1:])
        ca = c * a
        if ca.any():  # (a Poisson block adds exact zeros: skipped)
            out[1:] += np.multiply((1 - inv)[:, None], ca, out=scratch("tmp", (W - 1, rows.size)))
        prev = np.exp(logf0)
        keep = 1 - pi
        zi = bool(pi.any())
        cur = np.empty(rows.size) if zi else prev  # the pmf at k: f(k) (1 - pi) (+ pi at 0)
        out[0] = prev * keep + pi if zi else prev
        last2 = np.empty((2, rows.size))
        _accumulate(out[:W - 1], prev, cur, keep if zi else None)
        last2[0] = out[0] if W == 2 else cur
        _accumulate(out[W - 2:], prev, cur, keep if zi else None)
        last2[1] = cur
        return out, last2.T

    def subset(self, pos: np.ndarray) -> ParamGrid:
        return ParamGrid(self.mu[pos], self.alpha[pos], self.pi[pos], self.K)


def _accumulate(out: np.ndarray, prev: np.ndarray, cur: np.ndarray, keep: np.ndarray | None) -> None:
    """Rows ``1..`` of ``out`` hold pmf ratios; replace them by the cdf, row 0 holding F so far.

    ``prev`` (the uninflated pmf of the row before) and ``cur`` (the pmf: ``prev * keep``
    with zero inflation, else ``prev`` itself) are updated in place.
    """
    mul, add = np.multiply, np.add
    F_prev = out[0]
    for row in out[1:]:  # count by count, across the block's rows
        mul(prev, row, out=prev)
        if keep is not None:
            mul(prev, keep, out=cur)
        add(F_prev, cur, out=row)
        F_prev = row


def parametric(mu: np.ndarray, alpha: np.ndarray, pi: np.ndarray, cap: int, tail_tol: float) -> tuple:
    """``(grid, tail, components, mean, var)`` of (ZI)NB2 rows, the grid not built yet."""
    n = mu.size
    K = needed_k(mu, alpha, pi, cap, tail_tol)
    tail = (1 - pi) * nb_sf(np.full(n, float(K)), mu, alpha)
    mean, var = (1 - pi) * mu, (1 - pi) * mu * (1 + alpha * mu + pi * mu)
    comps = tuple(a[None, :] for a in (np.ones(n), mu, alpha, pi))
    return ParamGrid(mu, alpha, pi, K), tail, comps, mean, var


def block(fc, rows: np.ndarray, width: int) -> np.ndarray:
    """``fc.pmf[rows, :width]`` without building a grid that is not built yet."""
    grid = fc._grid
    if grid is None:
        return fc.pmf[rows, :width]
    return grid.rows(np.asarray(rows), width)


def cdf_block(fc, rows: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(F, last2)`` of :meth:`ParamGrid.cdf_cols` for any forecast: the cumulative sums of
    ``fc.pmf[rows, :width]`` along counts, transposed ``(width, rows.size)``, and the last
    two pmf columns ``(rows.size, 2)`` (``width >= 2``); built grids are not built again."""
    grid = fc._grid
    if isinstance(grid, ParamGrid):
        return grid.cdf_cols(np.asarray(rows), width)
    P = scratch("cdf", (int(width), len(rows)))
    P[...] = block(fc, rows, width).T
    last2 = P[-2:].T.copy()
    add = np.add
    for k in range(1, int(width)):  # (row by row: np.cumsum along the first axis is slower)
        add(P[k - 1], P[k], out=P[k])
    return P, last2
