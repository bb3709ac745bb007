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
