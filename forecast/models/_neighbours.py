"""Neighbour terms for the series-by-series count models: weights, neighbour sums and the
series that carry them.

A model with ``neighbour_lags`` reads, for series i at period t, the weighted sum of its
neighbours' counts

    s_it = sum_{j ~ i} w_ji y_jt,

and enters log(1 + s_i,t-k) as a regressor for each k in ``neighbour_lags``. The sums are
built once from the *whole* panel (:func:`with_neighbours`, called by the model's
``fit_data``) before the ladder splits series into batches, and travel with each series
(:class:`NeighbourSeries`), so a series' design is the same whichever chunk fits it.

Weights (R surveillance's hhh4 with ``normalize = TRUE``): ``first_order`` w_ji = 1/deg(j)
for first-order neighbours, ``powerlaw`` w_ji ∝ o_ji^(-d) over all orders o_ji >= 1 (d =
``neighbour_decay``, fixed), normalised so that the weights each *source* j sends sum to 1.
A series with no neighbours sends and receives nothing. Neighbours are linked within an
event type (:func:`forecast.adjacency.series_orders`). A neighbour count that is missing,
or at a period outside the neighbour's own history, contributes 0 (as hhh4).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from forecast.adjacency import series_orders
from forecast.exceptions import ConfigError
from forecast.models.params import Param, int_tuple, one_of, positive
from forecast.models.series import PanelData, Series

WEIGHT_KINDS = ("first_order", "powerlaw")


def _distinct_ints(v: Any) -> bool:
    return int_tuple(v) and len(set(v)) == len(v)


#: The neighbour hyperparameters, declared once for every model that takes them.
NEIGHBOUR_PARAMS: tuple[Param, ...] = (
    Param("neighbour_lags", (), "a tuple of distinct ints >= 1", _distinct_ints,
          "lags k of log(1 + weighted sum of the neighbours' y_{t-k}); needs an adjacency with the panel"),
    Param("neighbour_weights", "first_order", "one of 'first_order', 'powerlaw'", one_of(*WEIGHT_KINDS),
          "'first_order': w_ji = 1/deg(j) over first-order neighbours; 'powerlaw': w_ji ∝ order^-neighbour_decay "
          "over all orders; each source's weights sum to 1 (hhh4's normalize = TRUE)"),
    Param("neighbour_decay", 1.0, "a float > 0", positive, "power-law decay d (fixed, not estimated)"),
)


class NeighbourSeries(Series):
    """A :class:`Series` with ``nsum``, the weighted sum of its neighbours' counts at each of
    its periods (float array of ``len(y)``), and ``links``: the panel positions and weights
    of its neighbours (for joint simulation)."""

    __slots__ = ("nsum", "links")

    def __init__(self, s: Series, nsum: np.ndarray, links: tuple[np.ndarray, np.ndarray]) -> None:
        super().__init__(s.uid, s.ds_values if s._ds is None else s._ds, s.y, s.freq, s.exog, s.observed)
        self.nsum = np.asarray(nsum, dtype=float)
        self.links = links


def unmasked(s: Series) -> Series:
    """``s`` with every period taken as observed (its neighbour sums kept)."""
    plain = Series(s.uid, s.ds_values, s.y, s.freq, s.exog)
    nsum = getattr(s, "nsum", None)
    return plain if nsum is None else NeighbourSeries(plain, nsum, s.links)


def neighbour_weights(orders: np.ndarray, kind: str = "first_order", decay: float = 1.0) -> np.ndarray:
    """Weights W (n, n) with W[j, i] = w_ji, the weight of source j in i's neighbour sum.

    Each row (source) sums to 1, or to 0 for a series without neighbours (no division by 0).
    """
    o = np.asarray(orders, dtype=float)
    if kind == "first_order":
        raw = (o == 1).astype(float)
    elif kind == "powerlaw":
        raw = np.where(o >= 1, np.power(np.maximum(o, 1.0), -float(decay)), 0.0)
    else:  # pragma: no cover (checked as a parameter)
        raise ValueError(f"unknown neighbour weights {kind!r}")
    tot = raw.sum(axis=1, keepdims=True)
    return np.divide(raw, tot, out=np.zeros_like(raw), where=tot > 0)


def panel_weights(data: PanelData, kind: str, decay: float, model: str) -> np.ndarray:
    """:func:`neighbour_weights` for the series of ``data``, from its adjacency.

    Raises
    ------
    ConfigError
        When the panel carries no adjacency.
    """
    if data.adjacency is None:
        raise ConfigError(f"Model '{model}' has neighbour_lags but the panel has no adjacency: pass "
                          "build_panel(adjacency=...) (or set panel.attrs['adjacency']), or give "
                          "[data] adjacency = \"pairs.csv\" in the run config; or set neighbour_lags = [].")
    uids = [s.uid for s in data.series]
    return neighbour_weights(series_orders(uids, data.keys, data.adjacency), kind, decay)


def grid_counts(series: Sequence[Series]) -> tuple[np.ndarray, np.ndarray]:
    """The counts of every series on one period grid (first to last period of the panel):
    (n, T) floats, 0 where a series has no count (missing, or outside its history), and each
    series' first grid position (n,)."""
    if not series:
        return np.zeros((0, 0)), np.zeros(0, dtype=np.int64)
    freq = series[0].freq
    firsts = np.array([s.ds_values[0] for s in series]).astype("datetime64[ns]")
    t0 = firsts.min()
    start = np.asarray(freq.index(firsts, t0), dtype=np.int64)
    T = int(max(a + len(s.y) for a, s in zip(start, series)))
    Y = np.zeros((len(series), T))
    for i, (a, s) in enumerate(zip(start, series)):
        Y[i, a:a + len(s.y)] = np.where(s.observed_mask(), s.y, 0)
    return Y, start


def with_neighbours(data: PanelData, W: np.ndarray) -> PanelData:
    """``data`` with every series a :class:`NeighbourSeries` carrying its neighbour sums."""
    Y, start = grid_counts(data.series)
    S = W.T @ Y  # S[i, t] = sum_j W[j, i] Y[j, t]
    out = []
    for i, (a, s) in enumerate(zip(start, data.series)):
        src = np.flatnonzero(W[:, i])
        out.append(NeighbourSeries(s, S[i, a:a + len(s.y)], (src, W[src, i])))
    return PanelData(out, data.freq, data.keys, data.adjacency)


def nsum_of(s: Series, model: str = "this model") -> np.ndarray:
    """The neighbour sums a series carries (a clear error for one that carries none)."""
    nsum = getattr(s, "nsum", None)
    if nsum is None:
        raise ConfigError(f"series '{s.uid}' carries no neighbour sums: {model} with neighbour_lags must be "
                          "fitted through spec.fit(panel) (or fit_data), which builds them from the whole panel.")
    return nsum


def held_neighbour_eta(s: Series, delta: np.ndarray, nlags: Sequence[int], h: int) -> np.ndarray:
    """The neighbour part of the linear predictor for the next ``h`` periods, Σ_k δ_k log(1 +
    s_{T+j-k}), with sums after T held at the last one (only step 1 is exact; the joint
    simulation replaces the rest, see :func:`simulate_joint`)."""
    nsum = nsum_of(s)
    out = np.zeros(h)
    for d, k in zip(delta, nlags):
        for j in range(h):
            pos = len(nsum) + j - k  # index of period T + 1 + j - k
            out[j] += d * np.log1p(nsum[min(pos, len(nsum) - 1)] if pos >= 0 else 0.0)
    return out


def describe_weights(params: dict[str, Any]) -> str:
    kind = params.get("neighbour_weights", "first_order")
    return kind if kind == "first_order" else f"powerlaw (decay {params.get('neighbour_decay', 1.0):g})"
