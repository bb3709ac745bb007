"""A parametric forecast's dense pmf, built only when asked for (:class:`ParamGrid`).

A Poisson/NB/ZI forecast (one component per row) is exact in its parametric form, and its
``K`` is set by the widest row: a backtest row with mean 0.3 would carry a grid of 1,650
counts because another series reaches 155. Scores, quantiles and exceedances read only
the prefix each row needs (:func:`block`, the ratio recurrence up to that width) or the
parametric form itself; the full ``(n_rows, K+1)`` grid is built once, on the first read of
``CountForecast.pmf`` (plots, ensembles, calibration), and is then exactly the eager grid of
earlier versions.
"""
from __future__ import annotations

import numpy as np

from forecast.numerics import _LOG_TINY, log1p_ratio, nb_pmf_grid, nb_sf, needed_k

_CHUNK = 1 << 11        # rows per block when the full grid is built


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

    def subset(self, pos: np.ndarray) -> ParamGrid:
        return ParamGrid(self.mu[pos], self.alpha[pos], self.pi[pos], self.K)


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
