r"""Country and whole-area totals of the forecast, per period and over the horizon.

A total sums the series of one event type in one country (level ``country``) or in
all countries (level ``area``, country ``All areas``); aggregate series (province or
country ``(all)``) are left out, so nothing is counted twice. Two files share one
schema (:data:`TOTAL_COLUMNS`): ``totals.csv`` with one row per
``(level, country, event_type, ds)`` and ``totals_horizon.csv`` with ``start, end``
(the first and last forecast periods) instead of ``ds``, the sums over the horizon.

**Mean.** The exact sum of the series' means, so a total always equals the sum of
``forecasts.csv``'s means (the issue this module fixes: a total of 53 from draws
beside means summing to 52.4).

**Intervals and** ``p_ge_k``. From summed draws, ``lo``/``hi`` the central interval
of the summed draws (smallest ``k`` whose empirical cdf reaches the level's tail
probability, as :meth:`CountForecast.quantile` does for one series):

* The forecast has paths (``fc.paths``): path ``p`` of every series is summed. With
  joint paths (``fc.joint``, a model with cross-series terms) that is a draw of the
  joint law; otherwise the series' paths came from independent per-series streams
  and the sum is a draw under independence across series. Either way each path
  keeps its serial dependence, so horizon sums are draws of the horizon total. A
  mixture's path ``p`` takes its member by one ``u_p`` shared by all series
  (:meth:`CountForecast.mixture`), so model uncertainty is common to the series, as it
  is in the pooled forecast's own reading (one model is right for all of them).
* No paths: each series draws ``n_draws`` values per step from its own marginal pmf
  (inverse cdf of uniforms from a stream of the run's seed and the series id), one
  independent draw per step. Per-period totals are then exact up to Monte Carlo error
  under independence across series; horizon sums are exact for ``h = 1`` and for
  models whose steps are independent given their parameters (no lags), and ignore
  serial dependence otherwise (too narrow for a model with lags).
* A stack of parts with and without paths (``fc.part_paths``): series with paths
  contribute path ``p mod P`` to draw ``p`` (whole paths, serial dependence kept; a joint
  part stays one world per path index), the others marginal draws as above.

Deterministic given the run's seed: the draws of a series depend only on the seed
and its id, not on which other series share the run or on their order.

**Thresholds.** ``[forecast] total_thresholds`` when set; otherwise
:func:`default_thresholds`: per event type, the median and the 90th percentile of the
per-period history of the whole-area total, each rounded up to 1, 2 or 5 times a
power of ten; the union over event types.
"""
from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np
import pandas as pd

ALL_AREAS = "All areas"
#: Columns of both files before the interval and threshold columns (``ds`` or ``start, end``).
KEY_COLUMNS = ("level", "country", "event_type")
N_DRAWS = 4000          # draws per series and step when the forecast has no paths
_BLOCK = 1 << 21        # draws held at a time (rows x draws): ~16 MB of int64


def totals(fc, keys: pd.DataFrame, cfg, panel: pd.DataFrame | None = None,
           n_draws: int = N_DRAWS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(totals.csv frame, totals_horizon.csv frame)`` of forecast ``fc``.

    Parameters
    ----------
    fc : CountForecast
        The run's forecast, every series over the horizon.
    keys : DataFrame
        ``unique_id, country, province, event_type`` per series.
    cfg : RunConfig
        Its ``[forecast] levels`` and ``total_thresholds`` and ``[run] seed`` are used.
    panel : DataFrame, optional
        The history (``unique_id, ds, y``), for the default thresholds; without it and
        without ``total_thresholds`` the series thresholds are used.
    n_draws : int
        Draws per series and step when ``fc`` has no paths.
    """
    levels = tuple(cfg.forecast.levels)
    ks = tuple(cfg.forecast.total_thresholds) or (
        default_thresholds(panel, keys) if panel is not None else ()) or tuple(cfg.forecast.thresholds)
    cells, area, groups, periods = _cells(fc, keys)
    cols_ds = [*KEY_COLUMNS, "ds", *_value_columns(levels, ks)]
    cols_h = [*KEY_COLUMNS, "start", "end", *_value_columns(levels, ks)]
    if not groups:  # no series to add up (none, or only aggregates)
        return pd.DataFrame(columns=cols_ds), pd.DataFrame(columns=cols_h)
    n = len(groups) * len(periods)
    m = np.asarray(fc.mean, dtype=float)
    mean, present = np.zeros(n), np.zeros(n, dtype=bool)
    for c in (cells, area):  # the exact sum of the series' means
        mean += np.bincount(c[c >= 0], weights=m[c >= 0], minlength=n)
        present[c[c >= 0]] = True
    sums = summed_draws(fc, cells, area, n, seed=cfg.run.seed, n_draws=n_draws)
    mean, present = mean.reshape(len(groups), -1), present.reshape(len(groups), -1)
    sums = sums.reshape(len(groups), len(periods), -1)
    by_ds, horizon = [], []
    for g, (level, country, etype) in enumerate(groups):
        d = np.flatnonzero(present[g])
        if not d.size:
            continue
        key = {"level": level, "country": country, "event_type": etype}
        for j in d:
            by_ds.append({**key, "ds": periods[j], **_summary(mean[g, j], sums[g, j], levels, ks)})
        horizon.append({**key, "start": periods[d[0]], "end": periods[d[-1]],
                        **_summary(mean[g, d].sum(), sums[g, d].sum(axis=0), levels, ks)})
    return pd.DataFrame(by_ds, columns=cols_ds), pd.DataFrame(horizon, columns=cols_h)


def summed_draws(fc, cells: np.ndarray, area: np.ndarray, n_cells: int, *, seed: int,
                 n_draws: int = N_DRAWS) -> np.ndarray:
    """(n_cells, P) int64: draws of every row of ``fc`` added into its cell ``cells[r]`` and
    its area cell ``area[r]`` (-1: none). Path ``p`` of every row when ``fc`` has paths
    (P = its number of paths); else ``n_draws`` draws per row: path ``p mod P`` of a series
    in ``fc.part_paths``, marginal draws from its own stream for the others (module docstring)."""
    if fc.paths is not None:
        draws = np.asarray(fc.paths).reshape(fc.n_rows, -1)
        return _add(draws, np.arange(fc.n_rows), cells, area, n_cells)
    out = np.zeros((n_cells, n_draws), dtype=np.int64)
    covered = np.zeros(fc.n_rows, dtype=bool)
    for first, paths, _ in fc.part_paths:
        k, H, P = paths.shape
        take = np.arange(n_draws) % P  # P < n_draws: paths reused, still unbiased
        per = max(1, _BLOCK // max(H * n_draws, 1))
        for b in range(0, k, per):
            rows = (first[b:b + per, None] + np.arange(H)).ravel()
            out += _add(paths[b:b + per].reshape(-1, P)[:, take], rows, cells, area, n_cells)
            covered[rows] = True
    left = np.flatnonzero(~covered)
    uid = fc.index["unique_id"].astype(str).to_numpy()
    order = left[np.lexsort((fc.index["h"].to_numpy()[left], uid[left]))]  # a series' rows together, by step
    starts = np.flatnonzero(np.r_[True, uid[order][1:] != uid[order][:-1]]) if order.size else order
    bounds = np.r_[starts, order.size]
    per = max(1, _BLOCK // max(n_draws, 1))
    i = 0
    while i < starts.size:  # blocks of whole series, about ``per`` rows each
        j = i + 1
        while j < starts.size and bounds[j + 1] - bounds[i] <= per:
            j += 1
        rows = order[bounds[i]:bounds[j]]
        u = np.concatenate([_series_rng(seed, uid[order[bounds[s]]]).random((bounds[s + 1] - bounds[s], n_draws))
                            for s in range(i, j)])
        out += _add(fc.subset(rows).ppf(u), rows, cells, area, n_cells)
        i = j
    return out


def default_thresholds(panel: pd.DataFrame, keys: pd.DataFrame) -> tuple[int, ...]:
    """The median and 90th percentile of each event type's per-period whole-area total in
    ``panel``, rounded up to 1, 2 or 5 times a power of ten (at least 1); sorted, unique."""
    k = _series_keys(keys)
    hist = panel[["unique_id", "ds", "y"]].merge(k, on="unique_id", how="inner")
    out: set[int] = set()
    for _, g in hist.groupby("event_type"):
        tot = g.groupby("ds")["y"].sum(min_count=1).dropna().to_numpy(float)
        if tot.size:
            out.update(_nice(v) for v in np.quantile(tot, [0.5, 0.9]))
    return tuple(sorted(out))


def report_rows(horizon: pd.DataFrame, levels: Sequence[float], fmt: str = "%b %Y") -> list[dict]:
    """Rows of the report's totals section (:class:`forecast.report_context.Total`) from the
    ``totals_horizon.csv`` frame: the widest level's interval and every ``p_ge_k``."""
    lvl = max(levels) if len(levels) else 80
    name = f"{round(lvl, 6):g}"
    lvl = int(lvl) if float(lvl).is_integer() else lvl
    ks = [int(c[5:]) for c in horizon.columns if c.startswith("p_ge_")]
    return [{"scope": r["country"], "event_type": r["event_type"], "kind": r["level"],
             "horizon_label": f"{pd.Timestamp(r['start']):{fmt}}\u2013{pd.Timestamp(r['end']):{fmt}}",
             "start": f"{pd.Timestamp(r['start']).date()}", "end": f"{pd.Timestamp(r['end']).date()}",
             "mean": float(r["mean"]), "lo": int(r[f"lo-{name}"]), "hi": int(r[f"hi-{name}"]), "level": lvl,
             "p_ge": {k: float(r[f"p_ge_{k}"]) for k in ks}}
            for r in horizon.to_dict("records")]


# ------------------------------------------------------------------ internals

def _series_rng(seed: int, uid: str) -> np.random.Generator:
    """The totals stream of one series: four seed words, so it equals no series stream (three
    words) nor the run's totals stream (two), and depends on no other series."""
    from forecast.models.streams import TOTALS_STREAM

    return np.random.default_rng([int(seed), TOTALS_STREAM, zlib.crc32(uid.encode()), 1])


def _series_keys(keys: pd.DataFrame) -> pd.DataFrame:
    """``keys`` without aggregate series (``(all)`` as province or country) and without an event type."""
    from forecast.schema import ALL_LABEL

    k = keys.drop_duplicates("unique_id")
    agg = (k["province"].astype(str) == ALL_LABEL) | (k["country"].astype(str) == ALL_LABEL)
    return k[~agg & k["event_type"].notna()]


def _cells(fc, keys: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[tuple], list]:
    """Per row of ``fc`` its country cell and its area cell, ``group * n_periods + period``
    (-1: left out), the groups ``(level, country, event_type)`` (per event type its
    countries, then ``All areas``) and the sorted periods. A series with an event type but no
    country counts in the area total only."""
    k = _series_keys(keys).set_index("unique_id")
    uid = fc.index["unique_id"].to_numpy()
    country = k["country"].reindex(uid).to_numpy()
    etype = k["event_type"].reindex(uid).to_numpy()
    periods = sorted(pd.unique(fc.index["ds"]))
    types = sorted({str(e) for e in etype if pd.notna(e)})
    countries = sorted({str(c) for c in country if pd.notna(c)})
    groups = [g for e in types for g in [*(("country", c, e) for c in countries), ("area", ALL_AREAS, e)]]
    gi = {(c, e): i for i, (_, c, e) in enumerate(groups)}
    pi = {p: i for i, p in enumerate(periods)}
    d = np.array([pi[p] for p in fc.index["ds"]], dtype=np.int64)
    P = len(periods)
    in_country = np.array([gi.get((str(c), str(e)), -1) if pd.notna(c) and pd.notna(e) else -1
                           for c, e in zip(country, etype)], dtype=np.int64)
    in_area = np.array([gi[(ALL_AREAS, str(e))] if pd.notna(e) else -1 for e in etype], dtype=np.int64)
    return (np.where(in_country >= 0, in_country * P + d, -1), np.where(in_area >= 0, in_area * P + d, -1),
            groups, periods)


def _add(draws: np.ndarray, rows: np.ndarray, cells: np.ndarray, area: np.ndarray, n_cells: int) -> np.ndarray:
    """(n_cells, P): ``draws`` (rows x P) added into each row's country and area cells."""
    out = np.zeros((n_cells, draws.shape[1]), dtype=np.int64)
    for c in (cells[rows], area[rows]):
        ok = np.flatnonzero(c >= 0)
        if not ok.size:
            continue
        ok = ok[np.argsort(c[ok], kind="stable")]  # rows of one cell together: one reduceat, not add.at
        cs = c[ok]
        first = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
        out[cs[first]] += np.add.reduceat(draws[ok].astype(np.int64, copy=False), first, axis=0)
    return out


def _summary(mean: float, draws: np.ndarray, levels: Sequence[float], ks: Sequence[int]) -> dict:
    out: dict = {"mean": float(mean)}
    for lv in levels:
        f = lv / 100 if lv > 1 else lv
        lo, hi = np.quantile(draws, [(1 - f) / 2, 1 - (1 - f) / 2], method="inverted_cdf")
        name = f"{round(f * 100, 6):g}"
        out[f"lo-{name}"], out[f"hi-{name}"] = int(lo), int(hi)
    for k in ks:
        out[f"p_ge_{k}"] = float((draws >= k).mean())
    return out


def _value_columns(levels: Sequence[float], ks: Sequence[int]) -> list[str]:
    names = [f"{round((lv / 100 if lv > 1 else lv) * 100, 6):g}" for lv in levels]
    return ["mean", *(c for n in names for c in (f"lo-{n}", f"hi-{n}")), *(f"p_ge_{k}" for k in ks)]


def _nice(v: float) -> int:
    """Smallest of 1, 2, 5 times a power of ten that is >= ``v`` (at least 1)."""
    if v <= 1:
        return 1
    e = 10 ** int(np.floor(np.log10(v)))
    return int(next(m * e for m in (1, 2, 5, 10) if m * e >= v - 1e-9))
