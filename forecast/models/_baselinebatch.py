"""Arithmetic of the baselines (:mod:`forecast.models.baselines`, which re-exports it): the
rate after zeros, and stacked passes over the series of one calendar (a backtest chunk)
giving the same numbers as the per-series code they replace. Arrays in, arrays out.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Any, Iterator

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
    for i, (s, m) in enumerate(zip(series, season_lengths(series))):
        if s.observed is None:
            groups.setdefault((len(s.y), m), []).append(i)
    steps = np.arange(h)
    for (n, m), idx in groups.items():
        k = min(m, n)
        season = np.concatenate([series[i].y[n - k:] for i in idx]).reshape(len(idx), k).astype(float)
        zero = np.flatnonzero((season == 0).any(axis=1))  # (only rows with a zero need a rate)
        if zero.size and n > m:
            rate = after_zero_rates(np.concatenate([series[idx[j]].y for j in zero.tolist()]).reshape(zero.size, n), m)
            season[zero] = np.where(season[zero] == 0, rate[:, None], season[zero])
        else:
            for j in zero.tolist():
                season[j] = np.where(season[j] == 0, after_zero_rate(series[idx[j]].y, m), season[j])
        mu = season[:, steps % season.shape[1]]
        out.update(zip(idx, mu))
    return out


def season_lengths(series: list) -> list[int]:
    """Each series' season length, looked up once per frequency object (series of one panel
    share theirs)."""
    seen: dict[int, int] = {}
    out = []
    for s in series:
        f = s.freq
        m = seen.get(id(f))
        if m is None:
            m = seen[id(f)] = s.season_length
        out.append(m)
    return out


def after_zero_rates(Y: np.ndarray, lag: int) -> np.ndarray:
    """:func:`after_zero_rate` of each row of ``Y`` (R, n), fully observed, n > ``lag``.

    Integer counts sum exactly in float64 whatever the order, so each rate equals the
    per-series function's to the last bit."""
    Y = np.asarray(Y, dtype=float)
    pair = Y[:, :-lag] == 0
    after = np.where(pair, Y[:, lag:], 0.0).sum(axis=1)
    return (after + Y.mean(axis=1)) / (pair.sum(axis=1) + 1)


def stacked_windows(series: list, windows: np.ndarray) -> list[tuple[list[int], np.ndarray | None]]:
    """The windows (last ``windows[i]`` periods, at most the whole series) of every series:
    (positions, (k, w) counts) per window length of the fully observed series, in one
    concatenation each, and (positions, None) for the series with missing periods."""
    groups: dict[Any, list[int]] = {}
    for j, s in enumerate(series):
        groups.setdefault(min(int(windows[j]), len(s.y)) if s.observed is None else None, []).append(j)
    out: list[tuple[list[int], np.ndarray | None]] = []
    for w, idx in groups.items():
        if w is None or w == 0:
            out.append((idx, None))
            continue
        out.append((idx, np.concatenate([series[j].y[len(series[j].y) - w:] for j in idx]).reshape(len(idx), w)))
    return out


def log_factorial_sums(series: list, windows: np.ndarray,
                       stacked: list[tuple[list[int], np.ndarray | None]] | None = None) -> np.ndarray:
    """Σ log(y!) over each series' window (its last ``windows[i]`` periods, observed counts
    only); the fully observed windows of one length stacked into one call (``stacked``:
    :func:`stacked_windows` of these arguments, when the caller has it)."""
    out = np.empty(len(series))
    for idx, Y in stacked_windows(series, windows) if stacked is None else stacked:
        if Y is None:  # (missing periods: each window's observed counts)
            for j in idx:
                out[j] = special.gammaln(observed_values(series[j], int(windows[j])) + 1.0).sum()
        else:
            out[idx] = log_factorials(Y).sum(axis=1)
    return out


def log_factorials(y: np.ndarray) -> np.ndarray:
    """log(y!) of non-negative integer counts, as ``special.gammaln(y + 1.0)`` gives it (the
    same function of the same inputs, so the same bits), from a table when the largest count
    is small against the number of counts."""
    y = np.asarray(y)
    top = int(y.max(initial=0))
    if y.dtype.kind not in "iu" or y.size == 0 or top > y.size or y.min(initial=0) < 0:
        return special.gammaln(y + 1.0)
    return special.gammaln(np.arange(top + 1, dtype=float) + 1.0)[y]


def window_logliks(res: dict, log_factorial_sum: np.ndarray) -> np.ndarray:
    """The window counts' marginal log-likelihood of each series of a
    :func:`~forecast.models._pooled.pooled_fit` result ``res``: NB of their sum times the
    multinomial of the counts given the sum (uniform cells); ``log_factorial_sum``: Σ log y!
    over each window (:func:`log_factorial_sums`)."""
    W, S = res["W"], res["S"]
    with np.errstate(divide="ignore"):
        logw = np.where(W > 0, S * np.log(W.astype(int).astype(float)), 0.0)
    return res["loglik"] + special.gammaln(S + 1.0) - log_factorial_sum - logw


def last_observed_season(y: np.ndarray, observed: np.ndarray, m: int) -> np.ndarray:
    """Per position of the last season of a series with missing periods (``observed`` False
    there), the last observed count of that season (NaN: none)."""
    n = len(y)
    out = np.full(m, np.nan)
    for j in range(m):  # positions n-m+j, n-2m+j, ...: the first observed one
        pos = np.arange(n - m + j, -1, -m)
        hit = pos[observed[pos]]
        if len(hit):
            out[j] = float(y[hit[0]])
    return out


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Cyclic garbage collection paused inside the block (restored after, also on error).

    Building one small result object per series (tens of thousands per backtest origin)
    triggers collections that walk the whole heap: ~80% of the time those loops take. The
    objects built hold no reference cycles, so nothing is left for the collector to find;
    where it was already paused (e.g. by an outer block), it stays paused."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
