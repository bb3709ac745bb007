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

from forecast.numerics import nb_pmf_grid, nb_sf, needed_k

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
        out = nb_pmf_grid(self.mu[rows], self.alpha[rows], int(width) - 1, uniform=False)
        pi = self.pi[rows]
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


def upper_sum(fc, k: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """``sum_{k_i <= j <= K} p(j)`` on ``rows`` from the parametric survival function, or None
    when ``fc`` has its grid (the caller sums it): ``(1 - pi)(S(k - 1) - S(K))``, which the
    callers add to ``tail = (1 - pi) S(K)``, so small exceedances keep their relative precision."""
    grid = fc._grid
    if grid is None:
        return None
    mu, alpha, pi = grid.mu[rows], grid.alpha[rows], grid.pi[rows]
    s = nb_sf(k.astype(float) - 1, mu, alpha)
    s[k <= 0] = 1.0
    return (1 - pi) * s + np.where(k <= 0, pi, 0.0) - fc.tail[rows]
