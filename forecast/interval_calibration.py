"""Calibration in words: how often a model's prediction interval held the count, against the
probability the model itself gave that interval.

A count interval ``[lo, hi]`` at level 80% holds *at least* 80% of its forecast's probability
(the law is discrete: :math:`P(lo \\le Y \\le hi) \\ge 0.8`, often well above). Comparing the
observed coverage with the nominal 80% would flatter or blame a model for the rounding of its
interval; the honest comparison is with the mean probability the model assigned to its own
intervals (``mass_<level>`` of :func:`forecast.scoring.score_all`). A calibrated model's
coverage is close to that mean.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

__all__ = ["interval_calibration", "calibration_sentence"]

_COLUMNS = ["model", "h", "level", "periods", "max_h", "cases", "covered", "mass"]


def _label(level: float) -> str:
    f = level / 100 if level > 1 else level
    return f"{round(f * 100, 6):g}"


def interval_calibration(forecasts: pd.DataFrame, point_scores: pd.DataFrame, *, level: float = 80,
                         models: Iterable[str] | None = None) -> pd.DataFrame:
    """Observed coverage of each model's ``level`` interval and the mean probability it gave it.

    Parameters
    ----------
    forecasts, point_scores : DataFrame
        A backtest's ``forecasts`` (``model, ds, h``) and its row-aligned ``point_scores``
        (``coverage_<level>``, ``mass_<level>``).
    level : float
        The interval level, as 80 or 0.8.
    models : iterable of str, optional
        The models to report (default: every model of the backtest), in this order;
        models without backtest forecasts are skipped.

    Returns
    -------
    DataFrame
        ``model, h, level, periods, max_h, cases, covered, mass``: ``h`` is ``"1"`` (one
        step ahead) or ``"all"`` (every step up to ``max_h``); ``periods`` the distinct
        forecast periods, ``cases`` the scored forecasts, ``covered`` the share whose count
        fell inside the interval, ``mass`` the mean probability the model gave its intervals.
    """
    lab = _label(level)
    cov, mass = f"coverage_{lab}", f"mass_{lab}"
    missing = [c for c in (cov, mass) if c not in point_scores.columns]
    if missing:
        raise ValueError(f"point scores have no column {', '.join(missing)}: run the backtest with level {lab}.")
    frame = pd.DataFrame({"model": forecasts["model"].to_numpy(), "ds": forecasts["ds"].to_numpy(),
                          "h": forecasts["h"].to_numpy(), "covered": point_scores[cov].to_numpy(dtype=float),
                          "mass": point_scores[mass].to_numpy(dtype=float)})
    frame = frame[np.isfinite(frame["covered"]) & np.isfinite(frame["mass"])]
    order = list(dict.fromkeys(frame["model"])) if models is None else list(dict.fromkeys(models))
    rows = []
    for model in order:
        part = frame[frame["model"] == model]
        if part.empty:
            continue
        for h, sub in (("1", part[part["h"] == 1]), ("all", part)):
            if sub.empty:
                continue
            rows.append({"model": model, "h": h, "level": float(lab), "periods": int(sub["ds"].nunique()),
                         "max_h": int(sub["h"].max()), "cases": len(sub), "covered": float(sub["covered"].mean()),
                         "mass": float(sub["mass"].mean())})
    return pd.DataFrame(rows, columns=_COLUMNS)


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def calibration_sentence(row: Any, unit: str) -> str:
    """One row of :func:`interval_calibration` in words, ``unit`` the period word (``month``).

    "Over the last 12 months, one month ahead, the 80% range held the real count in 88% of
    150 cases; the model gave it 93% probability on average."
    """
    r = dict(row)
    n, cases = int(r["periods"]), int(r["cases"])
    units = unit if n == 1 else f"{unit}s"
    ahead = f"one {unit} ahead" if r["h"] == "1" or int(r["max_h"]) == 1 else f"1 to {int(r['max_h'])} {unit}s ahead"
    lvl = f"{float(r['level']):g}%"
    return (f"Over the last {n} {units}, {ahead}, the {lvl} range held the real count in {_pct(r['covered'])} "
            f"of {cases:,} case{'s' if cases != 1 else ''}; the model gave it {_pct(r['mass'])} probability "
            "on average.")
