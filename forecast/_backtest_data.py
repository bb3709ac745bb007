"""The data of one backtest origin: training series cut at the cutoff, what came next, MASE scales.

Split from :mod:`forecast.backtesting` (the loop) to keep each module small; arrays in,
arrays out.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _truncate(full, cutoff: pd.Timestamp, first: pd.Timestamp | None, horizon: int, season: int,
              cache: dict | None = None):
    """The training series at a cutoff (periods ``first`` .. ``cutoff``), the next ``horizon``
    observed counts of each (-1 where not observed: a missing target is never scored) and
    each series' MASE scale. Training series keep their ``observed`` mask; a series with no
    observed count up to the cutoff joins the backtest later.

    Series on the same calendar (same first period and length, the usual panel) share
    their cut points, so those are found once per calendar. ``cache`` (a dict kept by the
    caller across the cutoffs of one ``full``) holds each calendar's stacked counts, so
    they are grouped and stacked once per backtest task, not once per cutoff.
    """
    from forecast.models.base import PanelData, Series
    from forecast.models.design import group_by_periods

    c64 = np.datetime64(cutoff.value, "ns")
    f64 = None if first is None else np.datetime64(first.value, "ns")
    train: list[tuple[int, Series]] = []
    ahead, scale = np.full((len(full.series), horizon), -1, dtype=np.int64), np.full(len(full.series), np.nan)
    groups = None if cache is None else cache.get("groups")
    if groups is None:
        groups = [(idx, *_stacked(full.series, idx)) for idx in group_by_periods(full.series)]
        if cache is not None:
            cache["groups"] = groups
    for idx, Y, O in groups:
        ds = full.series[idx[0]].ds_values
        m = int(np.searchsorted(ds, c64, side="right"))
        a = 0 if f64 is None else int(np.searchsorted(ds, f64, side="left"))
        if m <= a:
            continue  # no data up to this cutoff: these series join the backtest later
        nxt = Y[:, m:m + horizon] if O is None else np.where(O[:, m:m + horizon], Y[:, m:m + horizon], -1)
        ahead[idx, :nxt.shape[1]] = nxt
        scale[idx] = _mase_scales(Y[:, a:m], season, None if O is None else O[:, a:m])
        # The series as ``Series(uid, ds[a:m], y[a:m], freq, exog, observed[a:m])`` would build
        # them (an all-observed window: no mask), without its per-series checks: the masks of a
        # calendar are read stacked.
        span = ds[a:m]
        first_ns = int(span[0].astype(np.int64))
        seen = some = None if O is None else O[:, a:m]
        if seen is not None:
            seen, some = seen.all(axis=1), seen.any(axis=1)
        for k, i in enumerate(idx):
            s = full.series[i]
            ob = None
            if seen is not None and not seen[k]:
                if not some[k]:
                    continue  # nothing observed yet
                ob = s.observed[a:m]
            exog = None if s.exog is None else s.exog.iloc[a:m].reset_index(drop=True)
            train.append((i, Series._regular(s.uid, span, s.y[a:m], s.freq, exog, ob, first_ns)))
    train.sort(key=lambda t: t[0])  # back to the panel's series order
    keep = np.array([i for i, _ in train], dtype=int)
    data = PanelData([t for _, t in train], full.freq, full.keys, full.adjacency)  # (keys: the pooling groups)
    return data, ahead[keep], scale[keep]


def _stacked(series: list, idx: list[int]) -> tuple[np.ndarray, np.ndarray | None]:
    """The counts (and observed masks, None when every count is observed) of series ``idx``
    of one calendar, stacked."""
    Y = np.stack([series[i].y for i in idx])
    if all(series[i].observed is None for i in idx):
        return Y, None
    return Y, np.stack([series[i].observed_mask() for i in idx])


def _mase_scales(Y: np.ndarray, season: int, observed: np.ndarray | None = None) -> np.ndarray:
    """:func:`~forecast.scoring.mase_scale` of every row of ``Y`` (rows of equal length).

    With ``observed`` (bool, the shape of ``Y``): the mean over the pairs whose two counts
    are both observed (NaN when there is none). The lag is chosen from the row length.
    """
    n = Y.shape[1]
    lag = season if n >= season + 1 else 1
    if n <= lag:
        return np.full(len(Y), np.nan)
    diff = np.abs(Y[:, lag:] - Y[:, :-lag]).astype(float)
    if observed is None:
        scale = np.mean(diff, axis=1)
    else:
        pair = observed[:, lag:] & observed[:, :-lag]
        k = pair.sum(axis=1)
        scale = np.where(k > 0, np.where(pair, diff, 0.0).sum(axis=1) / np.maximum(k, 1), np.nan)
    return np.where(scale > 0, scale, np.nan)
