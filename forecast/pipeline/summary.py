"""A per-series summary of a count panel."""
from __future__ import annotations

import pandas as pd


def summarise_panel(panel: pd.DataFrame) -> pd.DataFrame:
    """Per series: covered periods, total, mean, share of active periods, max.

    Returns
    -------
    pandas.DataFrame with ``unique_id, country, province, event_type, first,
    last, periods, total, mean, share_active, max, all_zero``.
    """
    g = panel.groupby("unique_id", sort=True)
    out = pd.DataFrame({
        "first": g["ds"].min().dt.date,
        "last": g["ds"].max().dt.date,
        "periods": g["y"].size(),
        "total": g["y"].sum(),
        "mean": g["y"].mean().round(3),
        "share_active": g["y"].apply(lambda s: (s > 0).mean()).round(3),
        "max": g["y"].max(),
    })
    out["all_zero"] = out["total"] == 0
    keys = g[["country", "province", "event_type"]].first()
    return keys.join(out).reset_index()
