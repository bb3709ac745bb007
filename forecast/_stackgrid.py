"""The pmf of a row-wise stack of forecasts, built only when asked for (:class:`StackGrid`).

``CountForecast.concat`` pads every part to the largest ``K``: a part's rows keep their
own values on ``0..K_part`` and are extended beyond by the part's parametric components
(:func:`forecast._fcrows.padded`). Building that dense grid at once densifies every lazy
part (a path mixture's ragged rows, a parametric grid) although most stacks are only
scored, which reads the prefix each row needs. A :class:`StackGrid` keeps the parts'
grids as they are and maps each of its rows to ``(part, row of the part)``:

- ``rows(rows, width)`` reads each part's own ``rows`` (its lean values: a narrower read
  of a ragged row has zeros where it left out less than 1e-15; a read of the part's whole
  support is exact) and pads beyond ``K_part`` with the parametric form;
- ``full()`` is, row for row, the dense grid ``concat`` built before: each part's dense
  grid, padded by the same sums;
- ``subset`` only renumbers rows (the parts are shared, never copied).

The interface is the lazy-grid one of :class:`~forecast._leanpmf.ParamGrid` and
:class:`~forecast._raggedpmf.RaggedGrid` (``shape``, ``full``, ``rows``, ``at``, ``subset``).
"""
from __future__ import annotations

import numpy as np

from forecast._leanpmf import ParamGrid
from forecast._raggedpmf import RaggedGrid
from forecast.numerics import nb_pmf_grid


def pad_cols(comps: tuple, k0: int, K: int) -> np.ndarray:
    """Columns ``k0..K`` of the components' weighted pmfs summed, ``(m, K + 1 - k0)``: the
    padding of :func:`forecast._fcrows.padded` (the same sums in the same order)."""
    out = np.zeros((comps[0].shape[1], K + 1 - k0))
    for w, mu, alpha, pi in zip(*comps):
        out += (w * (1 - pi))[:, None] * nb_pmf_grid(mu, alpha, K)[:, k0:]
    return out


class StackGrid:
    """Rows of several parts' grids (lazy or dense), each part padded to ``K`` by its components.

    ``parts`` is a tuple of ``(grid, K_part, components)``: ``grid`` a dense ``(n_p, K_part+1)``
    array or a lazy grid, ``components`` the part's ``(C, n_p)`` parametric form; row ``i``
    of the stack is row ``row_in[i]`` of part ``part_of[i]``.
    """

    def __init__(self, parts: tuple, K: int, part_of: np.ndarray, row_in: np.ndarray) -> None:
        self.parts, self.K = parts, int(K)
        self.part_of, self.row_in = part_of, row_in
        self.shape = (part_of.size, self.K + 1)

    @classmethod
    def of(cls, fs: list, K: int) -> StackGrid:
        """The stack of forecasts ``fs`` in order (see ``CountForecast.concat``)."""
        parts = tuple((f.pmf if f._grid is None else f._grid, f.K, f.components) for f in fs)
        sizes = [f.n_rows for f in fs]
        part_of = np.repeat(np.arange(len(fs)), sizes)
        row_in = np.arange(part_of.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return cls(parts, K, part_of, row_in)

    def _by_part(self, rows: np.ndarray):
        """``(part, positions in rows, rows of the part)`` for every part ``rows`` touch."""
        p = self.part_of[rows]
        for j in np.unique(p):
            at = np.flatnonzero(p == j)
            yield self.parts[j], at, self.row_in[rows[at]]

    def full(self) -> np.ndarray:
        """The dense grid, row for row the one ``concat`` of the parts' dense grids gives."""
        out = np.zeros(self.shape)
        for (g, Kp, comps), at, r in self._by_part(np.arange(self.shape[0])):
            whole = r.size == (g.shape[0]) and np.array_equal(r, np.arange(r.size))
            dense = g[r] if isinstance(g, np.ndarray) else (g if whole else g.subset(r)).full()
            out[at, :Kp + 1] = dense
            if Kp < self.K:
                out[at, Kp + 1:] = pad_cols(tuple(a[:, r] for a in comps), Kp + 1, self.K)
        return out

    def rows(self, rows: np.ndarray, width: int) -> np.ndarray:
        """Columns ``0..width-1`` of ``rows`` (``width <= K + 1``): each part's own read, padded."""
        rows, width = np.asarray(rows, dtype=np.intp), int(width)
        out = np.zeros((rows.size, width))
        for (g, Kp, comps), at, r in self._by_part(rows):
            w = min(width, Kp + 1)
            out[at, :w] = g[r, :w] if isinstance(g, np.ndarray) else g.rows(r, w)
            if width > Kp + 1:
                out[at, Kp + 1:] = pad_cols(tuple(a[:, r] for a in comps), Kp + 1, width - 1)
        return out

    def at(self, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``pmf[rows, y]`` for ``0 <= y <= K``."""
        rows, y = np.asarray(rows, dtype=np.intp), np.asarray(y, dtype=np.intp)
        out = np.zeros(rows.size)
        for (g, Kp, comps), at, r in self._by_part(rows):
            yy = y[at]
            ins = yy <= Kp
            if ins.any():
                ri, yi = r[ins], yy[ins]
                if isinstance(g, np.ndarray):
                    out[at[ins]] = g[ri, yi]
                elif isinstance(g, (RaggedGrid, StackGrid)):
                    out[at[ins]] = g.at(ri, yi)
                else:  # a parametric grid: its rows' recurrence up to the largest count asked for
                    out[at[ins]] = g.rows(ri, int(yi.max()) + 1)[np.arange(ri.size), yi]
            if (~ins).any():
                rf, yf = r[~ins], yy[~ins]
                grid = pad_cols(tuple(a[:, rf] for a in comps), Kp + 1, int(yf.max()))
                out[at[~ins]] = grid[np.arange(rf.size), yf - Kp - 1]
        return out

    def subset(self, pos: np.ndarray) -> StackGrid:
        pos = np.asarray(pos, dtype=np.intp)
        return StackGrid(self.parts, self.K, self.part_of[pos], self.row_in[pos])


LAZY_GRIDS = (ParamGrid, RaggedGrid, StackGrid)  # grids a CountForecast builds only when read
