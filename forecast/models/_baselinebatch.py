"""Arithmetic of the baselines (:mod:`forecast.models.baselines`, which re-exports it): the
rate after zeros, and stacked passes over the series of one calendar (a backtest chunk)
giving the same numbers as the per-series code they replace. Arrays in, arrays out.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from forecast.models.series import observed_values


def after_zero_rate(y: np.ndarray, lag: int = 1, observed: np.ndarray | None = None) -> float:
    """The mean count ``lag`` periods after a zero, shrunk to the series' mean.

    (Σ_{t: y_{t-lag} = 0} y_t + ȳ) / (#{t: y_{t-lag} = 0} + 1), ȳ the mean of all counts:
    > 0 for every series that ever had an event, 0 for one that never had. With
    ``observed`` (False at missing periods) only pairs with both counts observed count,
    and ȳ is the mean of the observed counts.
    """
    y = np.asarray(y, dtype=float)
    ob = np.ones(len(y), dtype=bool) if observed is None else np.asarray(observed, dtype=bool)
    if not ob.any():
        return 0.0
    pair = (y[:-lag] == 0) & ob[:-lag] & ob[lag:] if len(y) > lag else np.zeros(0, dtype=bool)
    after = y[lag:][pair]
    return float((after.sum() + y[ob].mean()) / (len(after) + 1))


def seasonal_means(series: list, h: int) -> dict[int, np.ndarray]:
    """The seasonal naive means of the next ``h`` periods of every fully observed series (by
    position in ``series``): the last season (the last ``m`` counts), a zero replaced by the
    series' after-zero rate, repeated over the horizon. Series with missing periods are left out."""
    out: dict[int, np.ndarray] = {}
    groups: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(series):
        if s.observed is None:
            groups.setdefault((len(s.y), s.season_length), []).append(i)
    steps = np.arange(h)
    for (_, m), idx in groups.items():
        season = np.stack([series[i].y[-m:] for i in idx]).astype(float)
        for j in np.flatnonzero((season == 0).any(axis=1)).tolist():  # (only rows with a zero)
            season[j] = np.where(season[j] == 0, after_zero_rate(series[idx[j]].y, m), season[j])
        mu = season[:, steps % season.shape[1]]
        out.update(zip(idx, mu))
    return out


def log_factorial_sums(series: list, windows: np.ndarray) -> np.ndarray:
    """Σ log(y!) over each series' window (its last ``windows[i]`` periods, observed counts
    only); the fully observed windows of one length and span stacked into one call."""
    out = np.empty(len(series))
    groups: dict[Any, list[int]] = {}
    for j, s in enumerate(series):
        groups.setdefault((len(s.y), int(windows[j])) if s.observed is None else None, []).append(j)
    for key, idx in groups.items():
        if key is None:  # (missing periods: each window's observed counts)
            for j in idx:
                out[j] = special.gammaln(observed_values(series[j], int(windows[j])) + 1.0).sum()
        else:
            n, w = key
            out[idx] = special.gammaln(np.stack([series[j].y[n - w:] for j in idx]) + 1.0).sum(axis=1)
    return out
