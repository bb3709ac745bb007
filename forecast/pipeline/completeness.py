"""What an incident log leaves out, said before anything is counted: a partial last period
and countries the gazetteer does not know.

``forecast validate`` and the run print these as they are found (each is a
``ForecastWarning``), in CLI words (``--as-of``, ``as_of = "…"`` in the config).
"""
from __future__ import annotations

import difflib
import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd

from forecast.exceptions import ForecastWarning

AS_OF_WORDS = 'give --as-of YYYY-MM-DD (or as_of = "YYYY-MM-DD" in the config)'


def last_complete_day(events: pd.DataFrame, freq: Any, as_of: Any = None) -> tuple[pd.Timestamp, bool] | None:
    """The last day of the last complete period, and whether the log's last period is partial.

    The log is taken as complete up to ``as_of`` when given, else up to its last event's
    date; the period holding that day is complete only when the day is its last.
    """
    from forecast.periods import parse_freq

    if not len(events):
        return None
    fq = parse_freq(freq)
    end = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(events["date"].max())
    start = fq.start(np.array([end.to_datetime64()], dtype="datetime64[ns]"))
    period_last = pd.Timestamp(fq.next_start(start)[0]) - pd.Timedelta(days=1)
    if period_last <= end.normalize():
        return period_last, False
    return pd.Timestamp(start[0]) - pd.Timedelta(days=1), True


def completeness_warnings(events: pd.DataFrame, freq: Any = "month", *, as_of: Any = None, gazetteer: Any = None,
                          countries: Sequence[str] | None = None) -> list[str]:
    """Warn (``ForecastWarning``, and return the lines) about a partial last period and about
    countries — in the log or asked for with ``countries`` — that the gazetteer does not know."""
    from forecast.gazetteer import Gazetteer
    from forecast.periods import parse_freq

    out: list[str] = []
    done = last_complete_day(events, freq, as_of)
    if done is not None and done[1]:
        fq = parse_freq(freq)
        end = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(events["date"].max())
        out.append(f"the log ends {end.date()}, inside a {fq.label}: that {fq.label} is partial and is left out "
                   f"of panels and forecasts (data up to {done[0].date()}); if the log is complete to its "
                   f"last day, {AS_OF_WORDS}.")
    gaz = Gazetteer.default() if gazetteer is None else Gazetteer.default().extend(gazetteer)
    known = gaz.countries()
    seen = [str(c) for c in pd.unique(events["country"].astype(str)) if c and c != "unknown"] if len(events) else []
    for c in sorted(set(seen) - set(known)) + [c for c in (countries or []) if gaz._country(c) not in known]:
        close = difflib.get_close_matches(c, known, n=1, cutoff=0.6)
        out.append(f"unknown country '{c}'" + (f" (did you mean '{close[0]}'?)" if close else "")
                   + ": its province names cannot be checked; add it with its provinces to a gazetteer CSV "
                     "(--gazetteer, or [data] gazetteer in the config).")
    for line in out:
        warnings.warn(line, ForecastWarning, stacklevel=2)
    return out


def short_history_warning(panel: pd.DataFrame) -> str | None:
    """Warn when a panel is too short to forecast well: fewer than two years of periods
    (at least 6), so seasonal and lag models cannot be learnt and most series fall back."""
    from forecast.periods import parse_freq

    if not len(panel) or panel.attrs.get("freq") is None:
        return None
    fq = parse_freq(panel.attrs["freq"])
    ds = pd.to_datetime(panel["ds"])
    n = int(pd.Series(ds.unique()).size)
    need = max(2 * fq.season_length, 6)
    if n >= need:
        return None
    line = (f"the data cover only {n} {fq.label}{'s' if n != 1 else ''} ({ds.min().date()} to {ds.max().date()}): "
            f"too short to forecast well — models need about {need} {fq.label}s to learn a season or a trend, "
            f"so most series will fall back to simple models. Use a longer export (e.g. the full UCDP GED or "
            f"ACLED history of these countries).")
    warnings.warn(line, ForecastWarning, stacklevel=2)
    return line


def last_day_of_panel(panel: pd.DataFrame) -> pd.Timestamp | None:
    """The last day of the panel's last period (what "data up to" means in the report)."""
    from forecast.periods import parse_freq

    if not len(panel) or panel.attrs.get("freq") is None:
        return None
    fq = parse_freq(panel.attrs["freq"])
    last = np.array([pd.Timestamp(panel["ds"].max()).to_datetime64()], dtype="datetime64[ns]")
    return pd.Timestamp(fq.next_start(last)[0]) - pd.Timedelta(days=1)


def is_simulated(events: pd.DataFrame) -> bool:
    """Events that all say they are simulated (the bundled samples' ``source`` column)."""
    return bool(len(events) and "source" in events.columns
                and events["source"].astype(str).str.strip().str.lower().eq("simulated").all())


def data_notes(events: pd.DataFrame, panel: pd.DataFrame, *, as_of: Any = None, today: Any = None) -> list[str]:
    """What the report's banner says about the data, one sentence each: a partial last period
    left out, data that stop long before the run (stale), coverage gaps treated as missing."""
    from forecast.periods import parse_freq

    out: list[str] = []
    freq = panel.attrs.get("freq")
    if freq is None or not len(panel):
        return out
    fq = parse_freq(freq)
    if len(events) and "date" in events.columns and panel.attrs.get("source") != "panel":
        done = last_complete_day(events, fq, as_of)
        if done is not None and done[1]:
            end = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(events["date"].max())
            out.append(f"Partial data: the log ends {end:%d %B %Y}, inside a {fq.label}; that {fq.label} is not "
                       f"counted (a quiet start of a {fq.label} is not a quiet {fq.label}).")
    last = last_day_of_panel(panel)
    today = pd.Timestamp(today if today is not None else pd.Timestamp.now(tz="UTC").date()).tz_localize(None)
    period_days = 365.25 / fq.periods_per_year
    if last is not None and (today - last).days > max(2 * period_days, 14):
        out.append(f"Stale data: the data end {last:%d %B %Y}, {(today - last).days} days before this report; "
                   f"the forecast starts from there, not from today.")
    gaps = panel.attrs.get("coverage_gaps") or []
    if gaps:
        shown = ", ".join(map(str, gaps[:6])) + (f" and {len(gaps) - 6} more" if len(gaps) > 6 else "")
        out.append(f"Coverage gaps: {len(gaps)} {fq.label}{'s' if len(gaps) > 1 else ''} with no event anywhere "
                   f"although the neighbouring {fq.label}s had events ({shown}) are treated as missing, not as "
                   f"quiet.")
    return out
