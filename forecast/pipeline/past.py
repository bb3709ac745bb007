"""Stage *past checks*: the backtest read as an analyst asks of it — how often the ranges held
(calibration in words) and how many past alerts came true (scored alert decisions)."""
from __future__ import annotations

from typing import Any


def report_level(cfg) -> int | float:
    """The interval level the report quotes: 80% when the run has it, else its widest."""
    lvl = 80 if 80 in cfg.forecast.levels else max(cfg.forecast.levels)
    return int(lvl) if float(lvl).is_integer() else lvl


def past_checks(cfg, res, panel, selection) -> dict[str, Any]:
    """Calibration of the models used and the alert rule applied to every backtest forecast.

    Returns ``{"calibration": DataFrame, "alerts": DataFrame, "naive_window": int,
    "unit": str}`` (see :func:`forecast.interval_calibration.interval_calibration` and
    :func:`forecast.alert_scores.score_alerts`); the naive rule looks back one year of periods.
    """
    from forecast.alert_scores import score_alerts
    from forecast.interval_calibration import calibration_sentence, interval_calibration
    from forecast.periods import parse_freq

    freq = parse_freq(panel.attrs.get("freq", cfg.data.freq or "month"))
    chosen = dict(zip(selection["unique_id"], selection["model"]))
    used = [m for m in dict.fromkeys(selection["model"]) if m in set(res.forecasts["model"])]
    calib = interval_calibration(res.forecasts, res.point_scores, level=report_level(cfg), models=used)
    calib["sentence"] = [calibration_sentence(r, freq.label) for r in calib.to_dict("records")]
    k = max(cfg.forecast.thresholds)
    window = max(int(round(freq.periods_per_year)), 1)
    fc = res.forecasts
    brier = f"brier_ge_{k}"
    if brier in res.point_scores.columns:
        fc = fc.assign(brier=res.point_scores[brier].to_numpy(dtype=float))
    alerts = score_alerts(fc, panel, k=k, probability=cfg.forecast.alert_probability, window=window,
                          chosen=chosen)
    return {"calibration": calib, "alerts": alerts, "naive_window": window, "unit": freq.label}


def naive_rule_text(window: int, unit: str) -> str:
    """The naive rule in words."""
    return (f"Naive rule: alert when the last observed count exceeded the highest count of the {window} "
            f"{unit}{'s' if window != 1 else ''} before it (the decision made at each origin, held for every "
            "step ahead), scored on the same forecasts as the overall row.")
