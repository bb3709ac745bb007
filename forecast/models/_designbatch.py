"""Designs of many series at once: the shared calendar block and each series' own columns.

:func:`build_design_batch` gives the batched GLM solver (:mod:`forecast.models._glmbatch`)
what :func:`~forecast.models.design.build_design` gives a per-series fit, for series that
share their periods, without ever holding the (S, n, p) stack: the columns every series
has alike are built once, the lag, neighbour and covariate columns per series.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from forecast.models._missing import kept_rows
from forecast.models._neighbours import unmasked
from forecast.models.design import DesignSpec, build_design
from forecast.models.series import Series


@dataclass(frozen=True)
class BatchDesign:
    """Stacked designs of series that share their periods (same start and length).

    Kept in two parts: ``D`` (n, pd), the columns every series has alike (intercept,
    trend, seasonality, interventions), and ``Z`` (S, n, pz), each series' own columns
    (lags, neighbour terms, covariates); ``shared`` (p,) is True at the design columns in
    ``D``. The batched solver works on the parts; ``X`` assembles the (S, n, p) stack.
    """

    D: np.ndarray  # (n, pd)
    Z: np.ndarray  # (S, n, pz)
    shared: np.ndarray  # (p,) bool
    y: np.ndarray  # (S, n)
    offset: np.ndarray  # (S, n)
    names: tuple[str, ...]
    lag_cols: tuple[int, ...]
    keep: np.ndarray  # (S, p)
    rows: np.ndarray | None = None  # (S, n) bool, rows each fit uses; None: all rows of every series

    @property
    def X(self) -> np.ndarray:
        """The full designs, (S, n, p) (built on each call: the solver never needs them)."""
        X = np.empty((self.Z.shape[0], self.D.shape[0], len(self.shared)))
        X[:, :, self.shared] = self.D
        X[:, :, ~self.shared] = self.Z
        return X


def build_design_batch(spec: DesignSpec, series: Sequence[Series]) -> BatchDesign:
    """:func:`build_design` for series sharing their periods (see :func:`group_by_periods`).

    The deterministic and intervention columns are built once (``D``); lag, neighbour and
    exogenous columns (``Z``) and exposure offsets are filled per series, without an
    (S, n, p) array. Row s of ``X`` equals ``build_design(spec, series[s]).X``.
    """
    s0 = series[0]
    # The shared columns and the column check of a fully observed series (masks come below).
    d0 = build_design(spec, s0 if s0.observed is None else unmasked(s0))
    S, (n, p), first = len(series), d0.X.shape, spec.first_row
    start = p - len(spec.exog) - len(spec.interventions)  # first exogenous column
    nb0 = start - len(spec.neighbour_lags)
    own0 = nb0 - len(spec.lags)  # own columns: lags, neighbour terms, covariates
    shared = np.ones(p, dtype=bool)
    shared[own0:start + len(spec.exog)] = False
    Z = np.empty((S, n, int((~shared).sum())))
    Y = np.stack([s.y for s in series])
    for col, k in zip(d0.lag_cols, spec.lags):
        Z[:, :, col - own0] = np.log1p(Y[:, first - k:Y.shape[1] - k])
    for j, k in enumerate(spec.neighbour_lags):
        Z[:, :, nb0 - own0 + j] = np.log1p(np.stack([s.nsum[first - k:len(s.y) - k] for s in series]))
    for j, c in enumerate(spec.exog):
        Z[:, :, start - own0 + j] = np.stack([s.exog[c].to_numpy(dtype=float)[first:] for s in series])
    offset = np.zeros((S, n))
    if spec.exposure:
        offset = np.log(np.stack([s.exog[spec.exposure].to_numpy(dtype=float)[first:] for s in series]))
    keep = np.broadcast_to(d0.keep, (S, p)).copy()
    rows = None
    if any(s.observed is not None for s in series):
        rows = np.ones((S, n), dtype=bool)
        for i, s in enumerate(series):
            r = kept_rows(s.observed, spec.lags, first)
            if r is not None:
                rows[i] = r
                keep[i] = build_design(spec, s).keep  # columns constant on the kept rows
    if (spec.exog or spec.neighbour_lags) and n:  # per-series columns: information per series
        cols = np.arange(nb0, start + len(spec.exog))
        V = Z[:, :, cols - own0]
        if rows is None:
            keep[:, cols] = np.ptp(V, axis=1) != 0
        else:
            big = np.where(rows[:, :, None], V, np.inf)
            small = np.where(rows[:, :, None], V, -np.inf)
            keep[:, cols] = big.min(axis=1) != small.max(axis=1)
    return BatchDesign(np.ascontiguousarray(d0.X[:, shared]), Z, shared, Y[:, first:].astype(float), offset,
                       d0.names, d0.lag_cols, keep, rows)
