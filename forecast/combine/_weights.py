"""How the ``auto`` model learns its weights from its members' held-out forecasts.

Shared by the fit (:mod:`forecast.combine.auto`) and the compute-once backtest
(:mod:`forecast.combine._auto_backtest`): the internal cutoffs, the pooling groups and
the stacking of the cells (:mod:`forecast.stacking`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecast.backtesting import backtest, choose_origins
from forecast.models.base import ModelSpec, infer_freq
from forecast.stacking import rps_gram, series_rps_weights, series_weights


def default_inner_origins(periods_per_year: float) -> int:
    """Two years of origins, at least 12 and at most 52 (weekly 52, monthly 24, quarterly and
    yearly 12; fewer when the training data is shorter)."""
    return int(min(52, max(12, round(2 * periods_per_year))))


def inner_cutoffs(spec: Any, periods: pd.DatetimeIndex, periods_per_year: float) -> list[pd.Timestamp]:
    """The internal backtest's cutoffs on ``periods`` (as many as fit, up to ``inner_origins``)."""
    n = spec.inner_origins or default_inner_origins(periods_per_year)
    n = min(n, len(periods) - spec.inner_horizon - 2)  # backtesting's minimum: 3 training periods
    if n < 1:
        return []
    return choose_origins(periods, spec.inner_horizon, n_origins=n)


def series_groups(panel: pd.DataFrame, uids: list[str], pool: str) -> np.ndarray:
    """Group code per series: its event type (``pool = "event_type"`` and the column exists), else 0."""
    if pool != "event_type" or "event_type" not in panel.columns:
        return np.zeros(len(uids), dtype=np.intp)
    et = panel.drop_duplicates("unique_id").set_index("unique_id")["event_type"]
    et = et.reindex(pd.Index(uids).astype(et.index.dtype)).astype(str).to_numpy()
    return pd.factorize(et)[0].astype(np.intp)


def fit_cutoffs(spec: Any, panel: pd.DataFrame) -> list[pd.Timestamp]:
    """The internal cutoffs of a fit of ``spec`` on ``panel`` (on the periods the panel has)."""
    ds = pd.DatetimeIndex(sorted(pd.to_datetime(panel["ds"]).unique()))
    return inner_cutoffs(spec, ds, infer_freq(panel).periods_per_year)


def inner_weights(spec: Any, members: dict[str, ModelSpec], panel: pd.DataFrame, uids: list[str],
                  seed: int, progress: Any = None, cells: Any = None) -> tuple[np.ndarray, dict[str, str]]:
    """(M, n_series, steps) weights from an internal backtest of the members on ``panel``
    (reported to ``progress(done, total)`` when given). ``cells``, a
    :class:`~forecast.combine._cells.MemberCells` kept from a backtest of ``auto`` on the same
    panel, replaces the internal backtest when it holds exactly its cells."""
    M = len(members)
    equal = np.full((M, len(uids), 1), 1.0 / M)
    cut = fit_cutoffs(spec, panel)
    if not cut:
        return equal, {u: "equal weights: too few periods for the internal backtest" for u in uids}
    rps = spec.metric == "rps"
    kept = None if cells is None or spec.inner_refit_every != 1 else cells.cells_for(
        members, cut, panel, seed, spec.inner_horizon, rps)
    if kept is not None:
        forecasts, scores, pmfs = kept
        return weights_from_cells(spec, list(members), forecasts, scores, [pmfs] if rps else None,
                                  uids, series_groups(panel, uids, spec.pool))
    res = backtest(panel, members, spec.inner_horizon, origins=cut, refit_every=spec.inner_refit_every,
                   seed=seed, keep_pmf=rps, progress=progress or False)
    return weights_from_cells(spec, list(members), res.forecasts, res.point_scores,
                              res.forecast_objects() if rps else None,
                              uids, series_groups(panel, uids, spec.pool))


def weights_from_cells(spec: Any, labels: list[str], forecasts: pd.DataFrame, scores: pd.DataFrame,
                       pmfs: list | None, uids: list[str], groups: np.ndarray) -> tuple[np.ndarray, dict[str, str]]:
    """(M, n_series, H) weights from members' held-out cells (rows of a backtest's ``forecasts``
    and ``point_scores``; ``pmfs`` its forecast objects, needed for ``metric = "rps"``): one
    set per step ahead h = 1..H, learnt from that step's cells (a one-step forecast and a
    six-step one trust different members)."""
    M, n = len(labels), len(uids)
    key = forecasts["unique_id"].astype(str) + "\x00" + forecasts["cutoff"].astype(str) + "\x00" \
        + forecasts["h"].astype(str)
    code = pd.Categorical(forecasts["model"], categories=labels).codes
    cells, cell_of_row = np.unique(key.to_numpy(), return_inverse=True)
    P = np.full((len(cells), M), np.nan)
    P[cell_of_row, code] = np.exp(-scores["log"].to_numpy(dtype=float))
    complete = np.isfinite(P).all(axis=1)
    uid_of_cell = np.empty(len(cells), dtype=object)
    uid_of_cell[cell_of_row] = forecasts["unique_id"].astype(str).to_numpy()
    pos = {u: i for i, u in enumerate(uids)}
    series = np.array([pos.get(u, -1) for u in uid_of_cell], dtype=np.intp)
    keep = complete & (series >= 0)
    if not keep.any():
        return np.full((M, n, 1), 1.0 / M), {u: "equal weights: no internal backtest scores" for u in uids}
    step = np.empty(len(cells), dtype=np.int64)
    step[cell_of_row] = forecasts["h"].to_numpy(dtype=np.int64)
    H = int(step[keep].max())
    if spec.metric == "rps":
        A, b = _rps_terms(labels, forecasts, pmfs, cell_of_row, code, len(cells))
    out = np.full((M, n, H), 1.0 / M)
    for h in range(1, H + 1):
        k = keep & (step == h)
        if not k.any():
            out[:, :, h - 1] = out[:, :, h - 2] if h > 1 else 1.0 / M
            continue
        if spec.metric == "log":
            W, _ = series_weights(P[k], series[k], groups, n, kappa=spec.kappa, shrinkage=spec.shrinkage)
        else:
            W, _ = series_rps_weights(A[k], b[k], series[k], groups, n, kappa=spec.kappa, shrinkage=spec.shrinkage)
        out[:, :, h - 1] = W.T
    counts = np.bincount(series[keep], minlength=n)
    notes = {u: "group weights: no internal backtest cells of its own" for u, c in zip(uids, counts) if c == 0}
    return out, notes


def _rps_terms(labels, forecasts, pmfs, cell_of_row, code, n_cells):
    """Per-cell RPS Gram terms of the members' CDFs (rows of the backtest in order)."""
    from forecast.distributions import CountForecast

    fc = CountForecast.concat(pmfs)
    y = forecasts["y"].to_numpy(dtype=np.int64)
    K = int(max(fc.K, y.max(initial=0)))
    cdf = np.minimum(np.cumsum(fc.pmf, axis=1), 1.0)
    beyond = [fc.cdf(k) for k in range(fc.K + 1, K + 1)]  # exact through the tail's parametric form
    if beyond:
        cdf = np.column_stack([cdf, *beyond])
    F = np.empty((n_cells, len(labels), K + 1))
    F[cell_of_row, code] = cdf
    yc = np.empty(n_cells, dtype=np.int64)
    yc[cell_of_row] = y
    return rps_gram(F, yc)
