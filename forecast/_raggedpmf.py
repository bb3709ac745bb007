r"""A path mixture's pmf stored ragged: each row only over the support it needs (:class:`RaggedGrid`).

A path-mixture forecast (:mod:`forecast._pathpmf`) has one ``K`` for all its rows, set by the
widest one: 24,000 rows of a lag model may share ``K = 4,420`` while most rows hold their
mass on a few dozen counts, and a dense grid then costs rows x 4,421 floats. Here each row
``r`` keeps the values on ``0..w_r-1`` only, one flat array with row offsets, where ``w_r`` is
the first count past the row's mode at which the mass beyond is provably below ``_TOL``
(:func:`forecast._mixgrid.one_alpha_rows` with a tolerance; rows with per-path dispersion
keep what the law-by-law kernel writes). The row's laws (the distinct conditional laws and
their weights) are kept too, so anything wider than ``w_r`` -- a far observation, an upper
sum for a tiny exceedance probability, the dense :attr:`CountForecast.pmf` -- is computed
from them by the same kernels. Every row's numbers depend on that row alone, so the stored
values, the values computed later and the dense grid agree bit for bit.

``_TOL`` (1e-15) is below the mass the scores may leave out (:mod:`forecast._scorescan`:
at least ~1e-12 for any row with :math:`E Y^2 < 10^{16}`), so scores and quantiles read
only the stored prefixes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecast._mixgrid import one_alpha_rows, per_law_rows
from forecast.numerics import log1p_ratio

_TOL = 1e-15            # a stored row leaves out less mass than this
_ROWS = 1 << 12         # rows of per-path laws computed at a time


@dataclass(frozen=True)
class Laws:
    """The distinct conditional laws of many rows, sorted by row: law ``j`` belongs to row
    ``rows[j]``, row ``r`` has laws ``starts[r]:starts[r + 1]``, weight ``w`` (its share of paths)."""

    rows: np.ndarray
    starts: np.ndarray
    mu: np.ndarray
    alpha: np.ndarray
    pi: np.ndarray
    w: np.ndarray
    per_path: bool

    @property
    def n(self) -> int:
        return self.starts.size - 1

    def subset(self, pos: np.ndarray) -> Laws:
        """The laws of rows ``pos`` (any order, repeats allowed), renumbered 0..len(pos)-1."""
        pos = np.asarray(pos, dtype=np.intp)
        lens = self.starts[pos + 1] - self.starts[pos]
        ids = _segments(self.starts[pos], lens)
        return Laws(np.repeat(np.arange(pos.size), lens), np.r_[0, np.cumsum(lens)], self.mu[ids],
                    self.alpha[ids], self.pi[ids], self.w[ids], self.per_path)


def _segments(first: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Positions ``first[i] .. first[i] + lens[i] - 1`` of every segment, concatenated."""
    return np.repeat(first - np.cumsum(lens) + lens, lens) + np.arange(lens.sum(), dtype=np.intp)


class _Ragged:
    """A kernel sink keeping each row's chunks up to where the row stops (see the module docstring)."""

    def __init__(self, n: int, K: int, tol: float) -> None:
        self.K, self.tol, self.parts = K, tol, []
        self.width = np.ones(n, np.intp)

    def put(self, rows: np.ndarray, k0: int, block: np.ndarray, used: np.ndarray | None = None) -> None:
        u = np.full(rows.size, block.shape[1]) if used is None else used
        self.parts.append((rows, k0, block, u))
        np.maximum.at(self.width, rows, k0 + u)

    def finish(self, col0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        off = np.r_[0, np.cumsum(self.width)]
        flat = np.zeros(off[-1])
        flat[off[:-1]] = col0
        for rows, k0, block, u in self.parts:
            keep = np.arange(block.shape[1]) < u[:, None]
            flat[(off[rows, None] + k0 + np.arange(block.shape[1]))[keep]] = block[keep]
        self.parts = []
        return flat, off


def mixture_grid(laws: Laws, K: int, tol: float = 0.0):
    """Sum of ``w (ZI)NB2(mu, alpha, pi)`` pmfs on 0..K per row: dense ``(n, K+1)`` with
    ``tol = 0``, else ``(flat, offsets)`` of rows stopped once the mass beyond is below ``tol``
    (kernels of :mod:`forecast._mixgrid`: rows with one alpha as the widest law times a sum of
    exponentials, other rows law by law)."""
    n, rows, starts = laws.n, laws.rows, laws.starts
    mu, alpha, pi, w = laws.mu, laws.alpha, laws.pi, laws.w
    sink = _Ragged(n, K, tol) if tol > 0 else None
    pmf = np.zeros((n, K + 1)) if sink is None else None  # pages a short row never writes are never allocated
    out = pmf if sink is None else sink
    if not mu.size:
        return pmf if sink is None else sink.finish(np.zeros(n))
    with np.errstate(divide="ignore"):
        lead = np.log(w) + np.log1p(-pi) - mu * log1p_ratio(alpha * mu)  # log w (1 - pi) f(0)
    col0 = np.bincount(rows, np.exp(lead) + w * pi, minlength=n)
    if sink is None:
        pmf[:, 0] = col0
    if K > 0:
        c = mu / (1 + alpha * mu)
        one = np.ones(n, bool) if not laws.per_path else \
            np.minimum.reduceat(alpha, starts[:-1]) == np.maximum.reduceat(alpha, starts[:-1])
        one_alpha_rows(out, rows, starts, lead, c, alpha, np.flatnonzero(one))
        other = np.flatnonzero(~one)
        for r0 in range(0, other.size, _ROWS):  # whole rows, law by law
            rs = other[r0:r0 + _ROWS]
            per_law_rows(out, _segments(starts[rs], starts[rs + 1] - starts[rs]), rows, c, alpha, lead)
    return pmf if sink is None else sink.finish(col0)


class RaggedGrid:
    """The pmf on ``0..K`` of path-mixture rows, each stored over its own support only.

    The lazy-grid interface of :class:`~forecast._leanpmf.ParamGrid` (``shape``, ``full``,
    ``rows``, ``subset``) plus ``at`` (single values, for ``pmf_at``).
    """

    def __init__(self, laws: Laws, K: int, flat: np.ndarray | None = None, off: np.ndarray | None = None):
        self.laws, self.K = laws, int(K)
        if flat is None:
            flat, off = mixture_grid(laws, self.K, _TOL)
        flat.flags.writeable = False  # shared by subsets' readers: no silent edits
        self.flat, self.off = flat, off
        self.width = np.diff(off)
        self.shape = (laws.n, self.K + 1)

    def full(self) -> np.ndarray:
        """The dense grid (the same numbers as the stored rows, then each row's far values)."""
        return mixture_grid(self.laws, self.K)

    def rows(self, rows: np.ndarray, width: int) -> np.ndarray:
        """Columns ``0..width-1`` of ``rows`` (``width <= K + 1``): the stored values.

        Beyond a row's stored width a narrower read has zeros (mass below ``_TOL`` left out:
        the prefix sums of scores and quantiles, which tolerate far more); a read of the whole
        support (``width = K + 1``: upper sums of tiny exceedances, the last resort of
        quantiles) recomputes such rows from their laws, exactly the dense grid's rows."""
        rows, width = np.asarray(rows, dtype=np.intp), int(width)
        have = np.minimum(self.width[rows], width)
        out = np.zeros((rows.size, width))
        keep = np.arange(width) < have[:, None]
        out[keep] = self.flat[(self.off[rows, None] + np.arange(width))[keep]]
        redo = np.flatnonzero(have < width) if width == self.K + 1 else ()
        if len(redo):
            out[redo] = mixture_grid(self.laws.subset(rows[redo]), width - 1)
        return out

    def at(self, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``pmf[rows, y]`` for ``0 <= y <= K``."""
        rows, y = np.asarray(rows, dtype=np.intp), np.asarray(y, dtype=np.intp)
        inside = y < self.width[rows]
        out = np.zeros(rows.size)
        out[inside] = self.flat[self.off[rows[inside]] + y[inside]]
        far = np.flatnonzero(~inside)
        if far.size:
            grid = mixture_grid(self.laws.subset(rows[far]), int(y[far].max()))
            out[far] = grid[np.arange(far.size), y[far]]
        return out

    def subset(self, pos: np.ndarray) -> RaggedGrid:
        pos = np.asarray(pos, dtype=np.intp)
        lens = self.width[pos]
        flat = self.flat[_segments(self.off[pos], lens)]
        return RaggedGrid(self.laws.subset(pos), self.K, flat, np.r_[0, np.cumsum(lens)])
