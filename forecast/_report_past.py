"""The report's "checked against the past" rows: calibration in words and scored past alerts.

Typed rows of :class:`forecast.report_context.ReportContext` (re-exported there) and their
view for the HTML report. A context written before these existed has none: the report
then shows neither block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from forecast._report_values import _int, _num, _Row


@dataclass(frozen=True)
class CalibrationLine(_Row):
    """How often a model's interval held the count in the backtest, against the probability
    the model gave it (see :func:`forecast.interval_calibration.interval_calibration`)."""

    model: str
    h: str  # "1" (one step ahead) or "all"
    level: float | None
    periods: int | None
    max_h: int | None
    cases: int | None
    covered: float | None
    mass: float | None
    sentence: str

    _CONVERT = {"level": _num, "periods": _int, "max_h": _int, "cases": _int, "covered": _num, "mass": _num}


@dataclass(frozen=True)
class AlertScore(_Row):
    """The alert rule applied to the backtest forecasts of one model (or the model used per
    series, or the naive rule): see :func:`forecast.alert_scores.score_alerts`."""

    model: str
    h: str  # "1" or "all"
    cells: int | None
    alerts: int | None
    hits: int | None
    false_alarms: int | None
    misses: int | None
    events: int | None
    hit_rate: float | None
    false_alarm_ratio: float | None
    brier: float | None = None

    _CONVERT = {**{k: _int for k in ("cells", "alerts", "hits", "false_alarms", "misses", "events")},
                "hit_rate": _num, "false_alarm_ratio": _num, "brier": _num}


# --------------------------------------------------------------------------- view

def _pct(x: Any) -> str:
    v = _num(x) if x is not None else None
    return "\u2014" if v is None or math.isnan(v) else f"{v * 100:.0f}%"


def _n(x: Any) -> str:
    v = _num(x) if x is not None else None
    return "\u2014" if v is None else f"{round(v):,}"


def calibration_view(rows: Iterable[Mapping]) -> list[dict]:
    """One line per model: its one-step sentence, then the all-steps one when it differs."""
    out: dict[str, dict] = {}
    for r in rows:
        entry = out.setdefault(str(r.get("model", "")), {"model": str(r.get("model", "")), "sentences": []})
        if r.get("sentence") and (r.get("h") == "1" or _int(r.get("max_h")) != 1):
            entry["sentences"].append(str(r["sentence"]))
    return [e for e in out.values() if e["sentences"]]


def past_alerts_view(rows: Iterable[Mapping], rule: str, note: str) -> dict:
    """The past-alerts table (one step ahead first) and its headline sentence."""
    rows = [dict(r) for r in rows]
    table = [{"model": str(r.get("model", "")), "h": "1" if r.get("h") == "1" else "all",
              "cells": _n(r.get("cells")), "alerts": _n(r.get("alerts")), "hits": _n(r.get("hits")),
              "false_alarms": _n(r.get("false_alarms")), "misses": _n(r.get("misses")),
              "events": _n(r.get("events")), "hit_rate": _pct(r.get("hit_rate")),
              "false_alarm_ratio": _pct(r.get("false_alarm_ratio")),
              "brier": "\u2014" if _num(r.get("brier")) is None else f"{_num(r.get('brier')):.3f}"}
             for r in sorted(rows, key=lambda r: r.get("h") != "1")]
    head = next((r for r in rows if r.get("h") == "1" and str(r.get("model", "")).startswith("overall")), None)
    head = head or next((r for r in rows if r.get("h") == "1" and r.get("model") != "naive rule"), None)
    sentence = ""
    if head is not None:
        a, hits, miss = _int(head.get("alerts")) or 0, _int(head.get("hits")) or 0, _int(head.get("misses")) or 0
        sentence = (f"Past alerts, one step ahead: {a:,} issued, {hits:,} came true, {miss:,} "
                    f"event{'s' if miss != 1 else ''} missed")
        naive = next((r for r in rows if r.get("h") == "1" and r.get("model") == "naive rule"), None)
        if naive is not None:
            sentence += (f" (naive rule: {_int(naive.get('alerts')) or 0:,} issued, "
                         f"{_int(naive.get('hits')) or 0:,} came true)")
        sentence += "."
    return {"rows": table, "sentence": sentence, "rule": rule, "note": note}
