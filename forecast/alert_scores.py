"""Past alert decisions, scored: the run's alert rule applied to every backtest forecast.

A forecast raises an alert when :math:`P(Y \\ge k) \\ge p` (``[forecast] alert_probability``,
``k`` the highest threshold). Over the backtest cells (series × origin × step) each decision
is one of four: a *hit* (alert, and :math:`y \\ge k`), a *false alarm* (alert, :math:`y < k`),
a *miss* (no alert, :math:`y \\ge k`) or a quiet period. The report gives the counts with

- hit rate = hits / (hits + misses) (the share of events that were announced), and
- false-alarm ratio = false alarms / alerts (the share of alerts that did not come true),

per model, for the model chosen per series ("overall"), and for a naive rule scored on the
same cells: "alert when the last observed count exceeded the highest count of the
``window`` periods before it" (one year of periods by default), the decision made at the
origin and held for every step ahead. Cells whose outcome is missing are not scored.

Pure pandas/numpy on the backtest's forecasts frame and the panel; nothing is refitted.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["naive_alerts", "score_alerts", "alert_counts", "NAIVE", "OVERALL"]

#: Row labels of :func:`score_alerts` for the naive rule and the model chosen per series.
NAIVE = "naive rule"
OVERALL = "overall (model used per series)"

_COLUMNS = ["model", "h", "cells", "alerts", "hits", "false_alarms", "misses", "events", "hit_rate",
            "false_alarm_ratio", "brier"]


def naive_alerts(panel: pd.DataFrame, window: int) -> pd.DataFrame:
    """The naive rule's decision at every series and period: ``unique_id, cutoff, naive_alert``.

    ``naive_alert`` is True when the count of period ``cutoff`` exceeded the highest count of
    the ``window`` periods before it (missing periods ignored; False when the count is
    missing or no earlier count exists).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1 period. Got {window!r} instead.")
    wide = panel.pivot(index="ds", columns="unique_id", values="y").sort_index().astype(float)
    prev_max = wide.shift(1).rolling(window, min_periods=1).max()
    alert = wide > prev_max  # NaN on either side compares False: no alert
    out = alert.stack().rename("naive_alert").reset_index().rename(columns={"ds": "cutoff"})
    return out.astype({"naive_alert": bool})


def alert_counts(alert: np.ndarray, event: np.ndarray, brier: np.ndarray | None = None) -> dict[str, float]:
    """Counts and ratios of boolean decisions ``alert`` against boolean outcomes ``event``.

    Ratios with a zero denominator (no events, or no alerts) are NaN. ``brier`` holds the
    per-cell Brier scores of the probabilities behind the decisions; without it the
    decisions themselves are the forecast (0 or 1), whose Brier score is the share of
    wrong decisions.
    """
    alert, event = np.asarray(alert, dtype=bool), np.asarray(event, dtype=bool)
    hits = int((alert & event).sum())
    false_alarms = int((alert & ~event).sum())
    misses = int((~alert & event).sum())
    n_alerts, n_events = hits + false_alarms, hits + misses
    return {"cells": int(alert.size), "alerts": n_alerts, "hits": hits, "false_alarms": false_alarms,
            "misses": misses, "events": n_events,
            "hit_rate": hits / n_events if n_events else float("nan"),
            "false_alarm_ratio": false_alarms / n_alerts if n_alerts else float("nan"),
            "brier": float(np.mean(brier)) if brier is not None and len(brier) else
            (false_alarms + misses) / alert.size if alert.size else float("nan")}


def score_alerts(forecasts: pd.DataFrame, panel: pd.DataFrame, *, k: int, probability: float,
                 window: int, chosen: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Alert decisions of every backtest forecast, scored against what happened.

    Parameters
    ----------
    forecasts : DataFrame
        The backtest's forecasts (``BacktestResult.forecasts``): ``model, unique_id, cutoff,
        h, y`` and ``p_ge_<k>`` (and ``brier``, the Brier score of ``p_ge_<k>`` per row, if
        the Brier column of the table is wanted for the models).
    panel : DataFrame
        The count panel (``unique_id, ds, y``) the backtest ran on, for the naive rule.
    k, probability : int, float
        The alert rule: alert when :math:`P(Y \\ge k) \\ge` ``probability``.
    window : int
        Periods the naive rule looks back over (one year of periods is the usual choice).
    chosen : mapping, optional
        ``unique_id -> model`` used for each series in the final forecast; gives the
        "overall" rows. Series whose model is not in ``forecasts`` (e.g. an ensemble built
        only for the final forecast) are left out of them.

    Returns
    -------
    DataFrame
        ``model, h, cells, alerts, hits, false_alarms, misses, events, hit_rate,
        false_alarm_ratio, brier``; ``h`` is ``"1"`` (one step ahead) or ``"all"`` (every step).
        One row per model, then the overall row (with ``chosen``) and the naive rule,
        scored on the overall cells (or, without ``chosen``, on the distinct cells of all models).
    """
    col = f"p_ge_{k}"
    if col not in forecasts.columns:
        raise ValueError(f"forecasts have no column {col}: run the backtest with threshold {k}.")
    cols = ["model", "unique_id", "cutoff", "h", "y", col] + (["brier"] if "brier" in forecasts.columns else [])
    fc = forecasts.loc[forecasts["y"].notna(), cols].copy()
    fc["alert"] = fc[col].to_numpy(dtype=float) >= probability
    fc["event"] = fc["y"].to_numpy(dtype=float) >= k
    naive = naive_alerts(panel, window)
    if chosen is not None:
        use = pd.Series(chosen, name="model").rename_axis("unique_id").reset_index()
        overall = fc.merge(use, on=["unique_id", "model"], how="inner")
    else:
        overall = fc.drop_duplicates(["unique_id", "cutoff", "h"])
    base = overall.merge(naive, on=["unique_id", "cutoff"], how="left")
    base["alert"] = base["naive_alert"].fillna(False).astype(bool)
    base = base.drop(columns="brier", errors="ignore")  # the naive rule's Brier score is its own (0/1)

    def counts(d: pd.DataFrame) -> dict:
        return alert_counts(d["alert"], d["event"], d["brier"].to_numpy(dtype=float) if "brier" in d else None)

    rows = []
    for h, keep in (("1", lambda d: d[d["h"] == 1]), ("all", lambda d: d)):
        for model, part in keep(fc).groupby("model", sort=False):
            rows.append({"model": model, "h": h, **counts(part)})
        if chosen is not None:
            rows.append({"model": OVERALL, "h": h, **counts(keep(overall))})
        rows.append({"model": NAIVE, "h": h, **counts(keep(base))})
    return pd.DataFrame(rows, columns=_COLUMNS)
