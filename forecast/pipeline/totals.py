"""Country and whole-area totals over the forecast horizon, from summed draws."""
from __future__ import annotations

import numpy as np
import pandas as pd


def totals(fc, keys: pd.DataFrame, cfg, n_draws: int = 2000) -> list[dict]:
    """Country and whole-area totals over the horizon, from summed draws.

    Each series' draws come from its own predictive distribution (its sample
    paths when the model simulates); series are treated as independent given
    their forecasts, so the totals are consistent with the province forecasts.
    """
    from forecast.models.streams import totals_rng

    rng = totals_rng(cfg.run.seed)  # its own stream of the run's seed (see forecast.models.streams)
    draws = fc.sample(n_draws, rng)  # (rows, n_draws)
    uid = fc.index["unique_id"].to_numpy()
    frame = pd.DataFrame({"unique_id": uid}).merge(keys, on="unique_id", how="left")
    lvl = max(cfg.forecast.levels) if cfg.forecast.levels else 80
    q = (1 - lvl / 100) / 2
    months = pd.to_datetime(fc.index["ds"])
    label = f"{months.min():%b %Y}–{months.max():%b %Y}"
    out = []
    for et in sorted(frame["event_type"].dropna().unique()):
        for scope in [*sorted(frame["country"].dropna().unique()), "All areas"]:
            mask = (frame["event_type"] == et).to_numpy()
            if scope != "All areas":
                mask = mask & (frame["country"] == scope).to_numpy()
            tot = draws[mask].sum(axis=0)
            out.append({"scope": scope, "event_type": et, "horizon_label": label, "mean": float(tot.mean()),
                        "lo": int(np.quantile(tot, q)), "hi": int(np.quantile(tot, 1 - q)), "level": lvl})
    return out
