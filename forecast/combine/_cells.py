"""Members' held-out cells kept from a backtest of ``auto``, for the final fit to reuse.

Fitting ``auto`` on a panel backtests its members at the last internal cutoffs of that
panel. A backtest of ``auto`` on the same panel has already backtested the members at
those very cutoffs (every outer origin's internal cutoffs, up to the last outer origin,
see :mod:`forecast.combine._auto_backtest`), and a member's forecast at a cutoff uses
only data up to it. So the run's final fit can learn its weights from the backtest's
cells instead of backtesting the members again: the same cells (to the solver's tolerance:
member refits are warm-started, see :func:`forecast.models.base.warm_starts`), the same
weights, one member backtest less (about a quarter of a monthly run's CPU).

Reuse is all or nothing and checked, never assumed: the same members (as specs), seed,
series and data (a fingerprint of ``unique_id, ds, y`` and the members' covariates),
every internal cutoff present with steps 1..``inner_horizon``, and the pmfs when the
weights are learnt by RPS. Anything else and the fit runs its own internal backtest.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


def fingerprint(panel: pd.DataFrame, columns: tuple[str, ...] = ()) -> int:
    """An order-free hash of the panel's ``unique_id, ds, y`` (and ``columns``) rows: the sum of
    the row hashes (wrapping), so a reordered copy of the same rows has the same print."""
    cols = ["unique_id", "ds", "y", *[c for c in columns if c in panel.columns]]
    frame = panel[cols].copy()
    frame["unique_id"] = frame["unique_id"].astype(str)
    frame["ds"] = pd.to_datetime(frame["ds"])
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    return int(rows.sum(dtype=np.uint64))


@dataclass(frozen=True)
class MemberCells:
    """The members' backtest cells at some cutoffs, with what they were computed from.

    Attributes
    ----------
    members : label -> ``repr`` of each member spec (its hyperparameters).
    seed : the backtest's seed.
    uids : the series the members were fitted on (together: pooled and spatial members
        depend on which series are in the panel).
    data : :func:`fingerprint` of the panel they were backtested on.
    horizon : steps ahead forecast at every cutoff.
    forecasts, point_scores : the backtest's rows at the kept cutoffs.
    pmfs : their forecast objects (one CountForecast, rows in order), or None.
    """

    members: dict[str, str]
    seed: int
    uids: frozenset
    data: int
    horizon: int
    forecasts: pd.DataFrame
    point_scores: pd.DataFrame
    pmfs: Any = None

    @classmethod
    def keep(cls, res: Any, members: dict, cutoffs: list, panel: pd.DataFrame, seed: int,
             all_pmfs: Any = None) -> "MemberCells | None":
        """The cells of backtest result ``res`` at ``cutoffs`` (None when one is missing), with
        their pmfs when ``all_pmfs`` (every row of ``res`` as one CountForecast) is given."""
        f = res.forecasts
        cut = pd.DatetimeIndex(cutoffs)
        if not len(cut) or not cut.isin(pd.DatetimeIndex(f["cutoff"].unique())).all():
            return None
        sel = np.flatnonzero(f["cutoff"].isin(cut).to_numpy())
        pmfs = None if all_pmfs is None else all_pmfs.subset(sel)
        required = tuple(dict.fromkeys(c for m in members.values() for c in m.required_columns()))
        return cls({k: repr(m) for k, m in members.items()}, int(seed),
                   frozenset(pd.unique(panel["unique_id"]).astype(str)), fingerprint(panel, required),
                   int(res.settings["horizon"]), f.iloc[sel].reset_index(drop=True),
                   res.point_scores.iloc[sel].reset_index(drop=True), pmfs)

    def cells_for(self, members: dict, cutoffs: list, panel: pd.DataFrame, seed: int, inner_horizon: int,
                  with_pmfs: bool) -> tuple[pd.DataFrame, pd.DataFrame, Any] | None:
        """``(forecasts, point_scores, pmfs)`` at ``cutoffs``, steps 1..``inner_horizon``, when
        these cells are exactly what a fit of ``members`` on ``panel`` with ``seed`` would
        compute; None otherwise (then the fit backtests the members itself)."""
        if (int(seed) != self.seed or {k: repr(m) for k, m in members.items()} != self.members
                or inner_horizon > self.horizon or (with_pmfs and self.pmfs is None) or not cutoffs):
            return None
        if frozenset(pd.unique(panel["unique_id"]).astype(str)) != self.uids:
            return None
        f = self.forecasts
        cut = pd.DatetimeIndex(cutoffs)
        if not cut.isin(pd.DatetimeIndex(f["cutoff"].unique())).all():
            return None
        required = tuple(dict.fromkeys(c for m in members.values() for c in m.required_columns()))
        if fingerprint(panel, required) != self.data:
            return None
        sel = np.flatnonzero(f["cutoff"].isin(cut).to_numpy() & (f["h"].to_numpy() <= inner_horizon))
        pmfs = self.pmfs.subset(sel) if with_pmfs else None
        return f.iloc[sel].reset_index(drop=True), self.point_scores.iloc[sel].reset_index(drop=True), pmfs
