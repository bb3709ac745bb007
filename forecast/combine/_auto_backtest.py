"""The backtest of the ``auto`` model, assembled from one backtest of its members.

Fitting ``auto`` at an outer cutoff o backtests its members at the internal cutoffs
before o. Since every member forecast at a cutoff c uses only data ≤ c, the member's
forecast at c is the same in every outer fold that uses c. So the members are
backtested once, at the union of all internal cutoffs (and the outer ones), and each
outer cutoff's weights are learnt from exactly the cells its nested fit would use
(internal cutoffs of o, horizons 1..``inner_horizon``). The result equals refitting
``auto`` at every cutoff (``tests/test_auto.py`` checks it) at a fraction of the cost:
each member is fitted once per cutoff instead of once per (outer, internal) pair.

Used for expanding windows with ``inner_refit_every = 1``; otherwise the folds no longer
share member fits and ``auto`` is refitted per cutoff like any combination.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecast.backtesting import _run_block, _series_groups, backtest, score_block
from forecast.combine._cells import MemberCells
from forecast.combine._weights import fit_cutoffs, inner_cutoffs, series_groups, weights_from_cells
from forecast.scoring import mase_scale


def auto_blocks(spec: Any, label: str, frame: pd.DataFrame, cutoffs: list[pd.Timestamp], *, horizon: int,
                window: Any, refit_every: int, seed: int, levels: tuple, thresholds: tuple, keep_pmf: bool,
                periods: pd.DatetimeIndex, jobs: int = 1, progress: Any = None, backend: Any = None,
                dask: Any = None, keep_cells: bool = False) -> tuple[list[dict], MemberCells | None]:
    """Backtest blocks of ``spec`` (an :class:`~forecast.combine.auto.Auto`) at ``cutoffs``, and
    (``keep_cells``) the members' cells a fit of ``spec`` on all of ``frame`` learns its weights
    from (:class:`~forecast.combine._cells.MemberCells`): their cutoffs join the internal member
    backtest, which no outer block reads beyond its own cutoffs, so no score changes."""
    spec = spec.for_horizon(horizon)  # inner_horizon None: learn from the horizon being backtested
    # A progress callback (the pipeline's) counts every member backtest: each gets its own part
    # of the caller's count when the callback offers parts, else (a plain callable, a bar) only
    # the outer member backtest reports, as before.
    shared = hasattr(progress, "reserve")
    if window != "expanding" or spec.inner_refit_every != 1:
        return _run_block(label, spec, cutoffs, frame, horizon=horizon, window=window, refit_every=refit_every,
                          seed=seed, levels=levels, thresholds=thresholds, keep_pmf=keep_pmf, periods=periods,
                          tick=_per_cutoff(progress, len(cutoffs)) if callable(progress) else None), None
    freq = frame.attrs["freq"]
    members = spec.member_specs(frame)
    labels = list(members)
    refits = cutoffs[::refit_every]  # weights are learnt where auto would be refitted
    inner = {o: inner_cutoffs(spec, periods[:periods.get_loc(o) + 1], freq.periods_per_year) for o in refits}
    union = sorted(set().union(*inner.values())) if inner else []
    final = fit_cutoffs(spec, frame) if keep_cells else []
    union = sorted(set(union) | set(final))
    # The outer member backtest reports progress; the internal cells too when ``progress`` has parts.
    run = dict(seed=seed, jobs=jobs, progress=False, backend=backend, dask=dask, levels=levels,
               thresholds=thresholds)
    panel = frame.copy()
    panel.attrs = dict(frame.attrs)
    if horizon == spec.inner_horizon and refit_every == 1:  # one member backtest serves both
        both = _member_backtest(panel, members, horizon, sorted(set(union) | set(cutoffs)), 1, True,
                                {**run, "progress": progress})
        inner_res = outer_res = both
    else:
        # Both member backtests' units join the count now, so its share done never falls back.
        inner_p = progress.reserve(_units(members, panel, len(union))) if shared and union else False
        outer_p = progress.reserve(_units(members, panel, len(cutoffs))) if shared else progress
        inner_res = _member_backtest(panel, members, spec.inner_horizon, union, 1, spec.metric == "rps",
                                     {**run, "progress": inner_p}) if union else None
        outer_res = _member_backtest(panel, members, horizon, list(cutoffs), refit_every, True,
                                     {**run, "progress": outer_p})
    outer_blocks = _blocks_by_cutoff(outer_res, labels)
    # the members' internal forecasts as one object, built once (RPS weights need the pmfs)
    inner_fc = None
    if spec.metric == "rps" and inner_res is not None:
        from forecast.distributions import CountForecast

        inner_fc = CountForecast.concat(inner_res.forecast_objects())
    # The cells of the final fit on all of ``frame`` (its last internal cutoffs) are among these.
    cells = None if inner_res is None or not final else MemberCells.keep(inner_res, members, final, frame, seed,
                                                                         inner_fc)
    season = freq.season_length
    out, weights = [], None
    for i, o in enumerate(cutoffs):
        parts = outer_blocks.get(o)
        if parts is None:
            continue
        fcs = [parts[m][0] for m in labels]
        # every series fitted at o (not only those with an observed target): the pooled weights
        # learn from all of them, as the fit at o would
        d0 = outer_res.diagnostics
        uids = sorted(pd.unique(d0.loc[(d0["cutoff"] == o) & (d0["model"] == labels[0]), "unique_id"].astype(str)))
        if i % refit_every == 0:
            weights, notes = _weights_at(spec, labels, inner_res, inner_fc, inner[o], uids, frame)
            w_by_uid = {u: weights[:, i, :] for i, u in enumerate(uids)}
        # each forecast row's weights: its series', at its step ahead (steps past H use step H's)
        M, H = len(labels), weights.shape[2]
        rows_h = np.minimum(fcs[0].index["h"].to_numpy(dtype=np.int64), H) - 1
        W = np.stack([w_by_uid.get(u, np.full((M, H), 1.0 / M))[:, j]
                      for u, j in zip(fcs[0].index["unique_id"].astype(str), rows_h)], axis=1)
        pooled = type(fcs[0]).mixture(fcs, W, model=spec.name)
        rows = parts[labels[0]][1]
        y = rows["y"].to_numpy(dtype=np.int64)
        train = frame[frame["ds"] <= o]
        by_uid = {u: mase_scale(g["y"].to_numpy(), season) for u, g in train.groupby("unique_id", sort=False)}
        scales = pooled.index["unique_id"].map(by_uid).to_numpy(dtype=float)
        diag = _diagnostics(labels, outer_res.diagnostics, o, uids, notes)
        out.append(score_block(label, o, pooled, y, scales, diag, levels=levels, thresholds=thresholds,
                               keep_pmf=keep_pmf))
    return out, cells


def _per_cutoff(progress, n: int):
    """A ``tick()`` that reports one more of ``n`` cutoffs done to ``progress(done, total)`` (this
    runs in this process); ``(0, n)`` is reported at once."""
    done = [0]
    progress(0, n)

    def tick() -> None:
        done[0] += 1
        progress(done[0], n)
    return tick


def _units(members: dict, panel: pd.DataFrame, n_cutoffs: int) -> int:
    """The progress units of a member backtest at ``n_cutoffs`` cutoffs (one per member, cutoff
    and chunk of series, as the backtester counts them)."""
    uids = pd.unique(panel["unique_id"])
    return sum(n_cutoffs * len(_series_groups(m, uids)) for m in members.values())


def _member_backtest(panel, members, horizon, origins, refit_every, keep_pmf, run):
    return backtest(panel, members, horizon, origins=origins, refit_every=refit_every, keep_pmf=keep_pmf, **run)


def _blocks_by_cutoff(res, labels: list[str]) -> dict:
    """cutoff -> member -> (its forecast rows at that cutoff as one CountForecast sorted by
    series and date, and the matching rows of ``res.forecasts``)."""
    objs = res.forecast_objects()
    f = res.forecasts
    spans: dict[tuple, list] = {}
    start = 0
    for fc in objs:
        n = len(fc)
        key = (f["model"].iat[start], f["cutoff"].iat[start])
        spans.setdefault(key, []).append((fc, start, start + n))
        start += n
    out: dict = {}
    for (model, cutoff), parts in spans.items():
        fc = parts[0][0] if len(parts) == 1 else type(parts[0][0]).concat([p[0] for p in parts])
        rows = pd.concat([f.iloc[a:b] for _, a, b in parts])
        order = np.lexsort((fc.index["ds"].to_numpy(), fc.index["unique_id"].astype(str).to_numpy()))
        out.setdefault(cutoff, {})[model] = (fc.subset(order), rows.iloc[order].reset_index(drop=True))
    return {c: v for c, v in out.items() if all(m in v for m in labels)}


def _weights_at(spec, labels, res, res_fc, cut, uids, frame):
    """Weights (M, n_series) learnt from the member cells at internal cutoffs ``cut``."""
    M = len(labels)
    if res is None or not cut:
        return np.full((M, len(uids), 1), 1.0 / M), {u: "equal weights: too few periods for the internal backtest"
                                                  for u in uids}
    f = res.forecasts
    sel = f["cutoff"].isin(pd.DatetimeIndex(cut)).to_numpy() & (f["h"].to_numpy() <= spec.inner_horizon)
    pmfs = None if res_fc is None else [res_fc.subset(np.flatnonzero(sel))]
    return weights_from_cells(spec, labels, f[sel].reset_index(drop=True),
                              res.point_scores[sel].reset_index(drop=True), pmfs, uids,
                              series_groups(frame, uids, spec.pool))


def _diagnostics(labels, diag: pd.DataFrame, cutoff, uids, notes) -> pd.DataFrame:
    """Per series at ``cutoff``: which members fell back, as the fitted auto model reports it."""
    d = diag[diag["cutoff"] == cutoff]
    fell = d[d["fallback"] != "none"]
    by_uid: dict[str, list[str]] = {}
    for m, u, used in zip(fell["model"], fell["unique_id"].astype(str), fell["model_used"]):
        by_uid.setdefault(u, []).append(f"{m}->{used}")
    conv = d.groupby(d["unique_id"].astype(str))["converged"].all() if "converged" in d else None
    return pd.DataFrame({"unique_id": uids,
                         "fallback": ["members: " + ", ".join(by_uid[u]) if u in by_uid else "none" for u in uids],
                         "reason": [notes.get(u, "") for u in uids], "model_used": "auto",
                         "converged": [bool(conv.get(u, True)) if conv is not None else True for u in uids]})
