"""Periods, declared once: what a day, week, month, quarter and year are, and their dates.

Every period is named by its first day (its *start*): a month by its 1st, a
quarter by 1 January, 1 April, 1 July or 1 October, a year by 1 January, a week
by its first weekday (Monday unless anchored otherwise, ``W-SUN`` etc.).
Date arithmetic is numpy arithmetic in whole days or months, checked in Python
integers against :data:`forecast.limits.LAST_DATE` first, because numpy's
datetime arithmetic wraps silently past 2262-04-11 (to 1677).

This module sits on the bottom floor: it imports only exceptions and limits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError, DataValidationError, Problem
from forecast.limits import LAST_DATE

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
KINDS = ("day", "week", "month", "quarter", "year")

# Months per period for the calendar-month kinds; days per period for the others.
_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_DAYS = {"day": 1, "week": 7}
_LAST_DAY = np.datetime64(LAST_DATE.isoformat(), "D")
_LAST_MONTH = _LAST_DAY.astype("datetime64[M]")

_NAMES = {
    "day": ("day", "days", "daily", "d", "1d"),
    "week": ("week", "weeks", "weekly", "w", "1w"),
    "month": ("month", "months", "monthly", "m", "ms", "1m", "1ms"),
    "quarter": ("quarter", "quarters", "quarterly", "q", "qs", "qs-jan", "1q", "1qs"),
    "year": ("year", "years", "yearly", "annual", "annually", "y", "ys", "a", "as",
             "ys-jan", "as-jan", "1y", "1ys"),
}
ACCEPTED = ("day, week, W-MON .. W-SUN (weeks starting that day), month, quarter, year "
            "(or D, W, M, MS, Q, QS, Y, YS, A, annual)")


@dataclass(frozen=True)
class Frequency:
    """A period length and its anchor.

    ``kind`` is one of ``day``, ``week``, ``month``, ``quarter``, ``year``;
    ``weekday`` (0 = Monday) is the first day of a week (0 for other kinds).
    Build one with :func:`parse_freq`.
    """

    kind: str
    weekday: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"Unknown frequency kind '{self.kind}'. Use one of {', '.join(KINDS)}.")

    def __str__(self) -> str:
        return self.alias

    # -- names and constants ------------------------------------------------------

    @property
    def alias(self) -> str:
        """The pandas offset alias (``D``, ``W-MON``, ``MS``, ``QS-JAN``, ``YS-JAN``)."""
        if self.kind == "week":
            return f"W-{WEEKDAYS[self.weekday]}"
        return {"day": "D", "month": "MS", "quarter": "QS-JAN", "year": "YS-JAN"}[self.kind]

    @property
    def label(self) -> str:
        """The period as a word: ``day``, ``week``, ``month``, ``quarter``, ``year``."""
        return self.kind

    @property
    def adjective(self) -> str:
        return {"day": "daily", "week": "weekly", "month": "monthly", "quarter": "quarterly",
                "year": "yearly"}[self.kind]

    @property
    def periods_per_year(self) -> float:
        """Periods in an average year (365.25 days): the unit of per-year trend coefficients."""
        return {"day": 365.25, "week": 365.25 / 7, "month": 12.0, "quarter": 4.0, "year": 1.0}[self.kind]

    @property
    def season_length(self) -> int:
        """Periods in one seasonal cycle (a week for daily data, a year otherwise; 1 = no season)."""
        return {"day": 7, "week": 52, "month": 12, "quarter": 4, "year": 1}[self.kind]

    def year_fraction(self, starts: pd.DatetimeIndex) -> np.ndarray:
        """Position of each period in its year, in [0, 1): the argument of annual Fourier terms.

        Months and quarters use their number (so every January has the same
        value); days and weeks the day of the year / 365.25.
        """
        if self.kind == "month":
            return starts.month.to_numpy() / 12.0
        if self.kind == "quarter":
            return starts.quarter.to_numpy() / 4.0
        if self.kind == "year":
            return np.zeros(len(starts))
        return starts.day_of_year.to_numpy() / 365.25

    # -- dates ---------------------------------------------------------------------

    def start(self, dates: np.ndarray) -> np.ndarray:
        """Start of the period holding each date (datetime64[ns])."""
        d = np.asarray(dates).astype("datetime64[D]")
        if self.kind in _MONTHS:
            m = d.astype("datetime64[M]").astype("int64")  # months since 1970-01
            m = m - m % _MONTHS[self.kind]  # floor (numpy's % is >= 0 for a positive divisor)
            return m.astype("datetime64[M]").astype("datetime64[D]").astype("datetime64[ns]")
        if self.kind == "day":
            return d.astype("datetime64[ns]")
        days = d.astype("int64")
        # 1970-01-01 was a Thursday (weekday 3).
        return (days - (days + 3 - self.weekday) % 7).astype("datetime64[D]").astype("datetime64[ns]")

    def is_start(self, dates: np.ndarray) -> np.ndarray:
        """True where a date is the first day of its period."""
        d = np.asarray(dates).astype("datetime64[ns]")
        return self.start(d) == d

    def next_start(self, starts: np.ndarray) -> np.ndarray:
        """Start of the following period (ConfigError past the last supported date)."""
        return self.shift(starts, 1)

    def shift(self, starts: np.ndarray, k: int) -> np.ndarray:
        """Each period start moved ``k`` periods (k may be negative), datetime64[ns]."""
        return self.steps(np.asarray(starts).reshape(-1), int(k), 1)[:, 0].reshape(np.shape(starts))

    def range(self, first, last) -> pd.DatetimeIndex:
        """Period starts from ``first`` to ``last`` inclusive (both period starts)."""
        a = self.start(np.array([np.datetime64(pd.Timestamp(first).value, "ns")]))
        b = self.start(np.array([np.datetime64(pd.Timestamp(last).value, "ns")]))
        n = self.index(b, a[0])[0] + 1
        return pd.DatetimeIndex(self.steps(a, 0, max(int(n), 0))[0])

    def future(self, last: np.ndarray, h: int) -> np.ndarray:
        """The ``h`` period starts after each date of ``last`` (shape (S,)): (S, h).

        Raises
        ------
        ConfigError
            If a forecast date would pass 2262-04-11 (it would wrap around to 1677).
        """
        return self.steps(np.asarray(last).reshape(-1), 1, h)

    def index(self, dates: np.ndarray, origin) -> np.ndarray:
        """Whole periods from ``origin`` (a period start) to each date's period (int64)."""
        d = self.start(np.asarray(dates))
        o = self.start(np.array([np.datetime64(pd.Timestamp(origin).value, "ns")]))[0]
        if self.kind in _MONTHS:
            diff = d.astype("datetime64[M]").astype("int64") - o.astype("datetime64[M]").astype("int64")
            return diff // _MONTHS[self.kind]
        diff = d.astype("datetime64[D]").astype("int64") - o.astype("datetime64[D]").astype("int64")
        return diff // _DAYS[self.kind]

    def steps(self, origin: np.ndarray, first: int, n: int) -> np.ndarray:
        """Period starts ``origin + first .. first + n - 1`` periods, (S, n).

        Checked against the last supported date before any numpy arithmetic.
        """
        origin = np.asarray(origin).astype("datetime64[ns]")
        k_max = int(first) + int(n) - 1 if n > 0 else 0
        if self.kind in _MONTHS:
            base, limit, unit = origin.astype("datetime64[M]"), _LAST_MONTH, _MONTHS[self.kind]
        else:
            base, limit, unit = origin.astype("datetime64[D]"), _LAST_DAY, _DAYS[self.kind]
        # Checked in Python integers: numpy's datetime arithmetic would wrap silently.
        if len(base) and n > 0 and int(base.max().astype("int64")) + k_max * unit > int(limit.astype("int64")):
            raise ConfigError(f"forecast dates would pass {_LAST_DAY}, the last date supported "
                              f"(last observed period {str(base.max())}, {k_max} periods ahead); "
                              "use a shorter horizon.")
        k = np.arange(first, first + n, dtype="int64") * unit
        if self.kind in _MONTHS:
            return (base[:, None] + k).astype("datetime64[D]").astype("datetime64[ns]")
        return (base[:, None] + k.astype("timedelta64[D]")).astype("datetime64[ns]")


def parse_freq(freq: "str | Frequency") -> Frequency:
    """Read a frequency name or pandas alias, case-insensitive.

    ``day``/``D``; ``week``/``W`` (weeks from Monday, as ISO weeks) or
    ``W-MON`` .. ``W-SUN``; ``month``/``M``/``MS`` (``M`` means the period
    start, never month-end); ``quarter``/``Q``/``QS`` (quarters from January);
    ``year``/``Y``/``YS``/``A``/``annual``.

    Raises
    ------
    ConfigError
        For any other text, listing the accepted names.
    """
    if isinstance(freq, Frequency):
        return freq
    low = str(freq).strip().lower()
    for kind, names in _NAMES.items():
        if low in names:
            return Frequency(kind)
    if low.startswith("w-") and low[2:].upper() in WEEKDAYS:
        return Frequency("week", WEEKDAYS.index(low[2:].upper()))
    raise ConfigError(f"Unknown frequency '{freq}'. Use {ACCEPTED}.")


def _example(fq: Frequency, day: np.datetime64) -> str:
    return str(fq.start(np.array([day]))[0].astype("datetime64[D]"))


def _kind_of_step(days: int) -> str | None:
    if days == 1:
        return "day"
    if days == 7:
        return "week"
    if 28 <= days <= 31:
        return "month"
    if 90 <= days <= 92:
        return "quarter"
    if days in (365, 366):
        return "year"
    return None


def infer_freq(ds_values: np.ndarray, *, rows: Sequence[int] | None = None, source: str = "panel") -> Frequency:
    """The frequency of a panel's period starts.

    The shortest step between distinct dates names the candidate (1 day, 7 days,
    28-31 days, 90-92 days, 365/366 days); every date must then be the start of
    such a period. A single date is read as a month when it is a 1st, else as a day.

    Parameters
    ----------
    ds_values : the ``ds`` column (any order, repeats allowed).
    rows : the spreadsheet row of each date (header = row 1), to name in errors.
    source : what the errors name (file name or ``panel``).

    Raises
    ------
    DataValidationError
        When the dates are not period starts (month ends, mid-month days, ...)
        or their steps match no frequency.
    """
    ds = np.asarray(ds_values).astype("datetime64[ns]")
    uniq = np.sort(pd.unique(ds[~np.isnat(ds)]))  # hashing, not sorting, the (long) column
    if len(uniq) < 2:
        if len(uniq) and Frequency("month").is_start(uniq).all():
            return Frequency("month")
        return Frequency("day")
    step = int(np.diff(uniq.astype("datetime64[D]").astype("int64")).min())
    kind = _kind_of_step(step)
    if kind is None:
        raise DataValidationError([Problem(
            "ds", f"the periods are {step} days apart, which is no day, week, month, quarter or year",
            hint="Give one row per period, each dated by its first day (e.g. 2024-01-01 for January).")],
            source=source)
    weekday = int((uniq[0].astype("datetime64[D]").astype("int64") + 3) % 7) if kind == "week" else 0
    fq = Frequency(kind, weekday)
    check_starts(fq, ds_values, rows=rows, source=source)
    return fq


def check_starts(fq: Frequency, ds_values: np.ndarray, *, rows: Sequence[int] | None = None,
                 source: str = "panel") -> None:
    """Raise a DataValidationError naming the dates that are not the start of their period."""
    ds = np.asarray(ds_values).astype("datetime64[ns]")
    uniq = pd.unique(ds[~np.isnat(ds)])
    if fq.is_start(uniq).all():  # the usual case, checked on the few distinct dates only
        return
    bad = ~np.isnat(ds) & ~fq.is_start(ds)
    first = ds[bad][0]
    what = f"a week starting {['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'][fq.weekday]}" \
        if fq.kind == "week" else f"a {fq.label}"
    raise DataValidationError([Problem(
        "ds", f"{str(first.astype('datetime64[D]'))} is not the start of {what} "
              f"({int(bad.sum())} date{'s' if bad.sum() > 1 else ''} like it)",
        rows=np.asarray(rows)[bad].tolist() if rows is not None else (),
        hint=f"Write each period as its first day, e.g. {_example(fq, first)}.")], source=source)


def missing_periods(fq: Frequency, ds: np.ndarray) -> list[np.datetime64]:
    """Period starts absent between consecutive sorted starts of one series."""
    d = np.asarray(ds).astype("datetime64[ns]")
    if len(d) < 2:
        return []
    idx = fq.index(d, d[0])
    jumps = np.flatnonzero(np.diff(idx) > 1)
    out: list[np.datetime64] = []
    for j in jumps:
        gap = int(idx[j + 1] - idx[j] - 1)
        out += list(fq.steps(d[j:j + 1], 1, min(gap, 20))[0])
    return out


def format_dates(dates: Iterable[np.datetime64], fq: Frequency, limit: int = 10) -> str:
    """``2019, 2020`` for years, ``2024-03`` for months, ``2024-Q2`` for quarters, days otherwise."""
    out = []
    for d in list(dates)[:limit]:
        t = pd.Timestamp(d)
        out.append(str(t.year) if fq.kind == "year" else f"{t.year}-Q{t.quarter}" if fq.kind == "quarter"
                   else f"{t.year}-{t.month:02d}" if fq.kind == "month" else str(t.date()))
    return ", ".join(out)


__all__: Sequence[str] = ("Frequency", "parse_freq", "infer_freq", "check_starts", "missing_periods",
                          "format_dates", "WEEKDAYS", "KINDS")
