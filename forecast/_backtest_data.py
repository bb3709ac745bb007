"""The data of one backtest origin: training series cut at the cutoff, what came next, MASE scales.

Split from :mod:`forecast.backtesting` (the loop) to keep each module small; arrays in,
arrays out.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _truncate(full, cutoff: pd.Timestamp, first: pd.Timestamp | None, horizon: int, season: int):
    """The training series at a cutoff (periods ``first`` .. ``cutoff``), the next ``horizon``
    observed counts of each (-1 where not observed: a missing target is never scored) and
    each series' MASE scale. Training series keep their ``observed`` mask; a series with no
    observed count up to the cutoff joins the backtest later.

    Series on the same calendar (same first period and length, the usual panel) share
    their cut points, so those are found once per calendar.
    """
    from forecast.models.base import PanelData, Series
    from forecast.models.design import group_by_periods

    c64 = np.datetime64(cutoff.value, "ns")
    f64 = None if first is None else np.datetime64(first.value, "ns")
    train: list[tuple[int, Series]] = []
    ahead, scale = np.full((len(full.series), horizon), -1, dtype=np.int64), np.full(len(full.series), np.nan)
    for idx in group_by_periods(full.series):
        ds = full.series[idx[0]].ds_values
        m = int(np.searchsorted(ds, c64, side="right"))
        a = 0 if f64 is None else int(np.searchsorted(ds, f64, side="left"))
        if m <= a:
            continue  # no data up to this cutoff: these series join the backtest later
        Y = np.stack([full.series[i].y for i in idx])
        masks = [full.series[i].observed for i in idx]
        O = None if all(o is None for o in masks) else np.stack([s.observed_mask() for s in
                                                                 (full.series[i] for i in idx)])
        nxt = Y[:, m:m + horizon] if O is None else np.where(O[:, m:m + horizon], Y[:, m:m + horizon], -1)
        ahead[idx, :nxt.shape[1]] = nxt
        scale[idx] = _mase_scales(Y[:, a:m], season, None if O is None else O[:, a:m])
        for i in idx:
            s = full.series[i]
            ob = None if s.observed is None else s.observed[a:m]
            if ob is not None and not ob.any():
                continue  # nothing observed yet
            exog = None if s.exog is None else s.exog.iloc[a:m].reset_index(drop=True)
            train.append((i, Series(s.uid, ds[a:m], s.y[a:m], s.freq, exog, ob)))
    train.sort(key=lambda t: t[0])  # back to the panel's series order
    keep = np.array([i for i, _ in train], dtype=int)
    data = PanelData([t for _, t in train], full.freq, full.keys, full.adjacency)  # (keys: the pooling groups)
    return data, ahead[keep], scale[keep]


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
