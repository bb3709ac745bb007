"""Exact parsing of counts, dates and names read as text from a user's file.

Every function here works on the *distinct* values of a column (a million-row
log holds a few thousand distinct dates and a handful of distinct counts) and
returns a classification per row, so that the caller can turn each kind of
failure into one :class:`~forecast.exceptions.Problem` naming the rows.

Rules (the README's "bad input never produces a traceback"):

* A count is a whole number written with ASCII digits 0-9, optionally as a
  decimal ("3.0") or in scientific notation ("1e3"), that is *exactly* whole
  and within ``0..maximum``. The check is done on the exact decimal value of
  the text, never after a cast to float or int64 (where ``1e300`` or
  ``2**63`` wrap to negative numbers). ``inf``, ``nan``, hexadecimal
  (``0x10``) and non-ASCII digits (fullwidth ``１``) are rejected: a digit the
  eye cannot tell from another script's is not silently read as a number.
* A date is ``YYYY-MM-DD`` or ``YYYY/MM/DD`` (optionally followed by a time
  and a UTC offset, ``2024-01-05T23:30:00+05:00``; the calendar date *as
  written* is kept, no conversion to UTC), ``YYYYMMDD``, ``YYYY-MM`` (the
  month's first day, as before), or one of the regional formats passed in.
  Dates must lie in :data:`FIRST_DATE` .. :data:`LAST_DATE`, the range pandas
  can represent. Bare numbers such as ``45291`` are recognised as Excel serial
  day numbers and rejected with a hint; impossible days (``2024-02-30``) are
  reported apart from unreadable text. Digits must be ASCII 0-9 here too
  (``２０２４-01-05`` is unreadable, as ``１`` is not a count).
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Sequence

import numpy as np
import pandas as pd

from forecast.exceptions import DataValidationError, Problem
from forecast.limits import DATE_RANGE_TEXT, FIRST_DATE, LAST_DATE

#: First and last calendar day pandas can hold (datetime64[ns]).

# Classification codes returned per row.
OK, EMPTY, NOT_WHOLE, NEGATIVE, TOO_LARGE = 0, 1, 2, 3, 4
UNREADABLE, IMPOSSIBLE, EXCEL_SERIAL, OUT_OF_RANGE = 2, 3, 4, 5

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,9})?", re.ASCII)
_PLAIN = re.compile(r"\d{1,9}", re.ASCII)
# Date part, then an optional time of day and offset, which are ignored.
_ISO = re.compile(r"(\d{4})(?P<sep>[-/])(\d{1,2})(?P=sep)(\d{1,2})"
                  r"(?:[T ]\d{1,2}(?::\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)?)?",
                  re.ASCII | re.IGNORECASE)
_BASIC = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
# A month without a day (month-precision registers) counts on the month's first day.
_MONTH = re.compile(r"(\d{4})-(\d{1,2})", re.ASCII)
# Excel serial day numbers of 1900-2199 (Excel's day 1 is 1900-01-01).
_SERIAL = re.compile(r"\d{1,5}(\.\d+)?", re.ASCII)
# Characters a spreadsheet runs as a formula; outputs guard them with a leading
# apostrophe (OWASP CSV injection), which reading takes off again.
_QUOTED_FORMULA = re.compile(r"^'(?=[=+\-@\t\r])")


def parse_counts(values: pd.Series, maximum: int) -> tuple[np.ndarray, np.ndarray]:
    """Read whole numbers ``0..maximum`` from text, exactly.

    Parameters
    ----------
    values : stripped text (``""`` for empty).
    maximum : largest allowed value.

    Returns
    -------
    counts : int64 array, 0 where the value is not OK.
    status : int8 array of ``OK, EMPTY, NOT_WHOLE, NEGATIVE, TOO_LARGE``.
    """
    codes, uniques = pd.factorize(values.astype("string").fillna(""), sort=False)
    uniq = np.asarray(uniques, dtype=object)
    num = np.zeros(len(uniq), dtype="int64")
    status = np.full(len(uniq), NOT_WHOLE, dtype="int8")
    limit = Decimal(maximum)
    for i, text in enumerate(uniq):
        text = str(text).strip()
        if text == "":
            status[i] = EMPTY
        elif _PLAIN.fullmatch(text):
            # Fast path: nine digits cannot overflow int64.
            v = int(text)
            num[i], status[i] = (v, OK) if v <= maximum else (0, TOO_LARGE)
        elif _NUMBER.fullmatch(text):
            try:
                d = Decimal(text)
            except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
                continue
            if d < 0 and d != 0:
                status[i] = NEGATIVE
            elif d > limit:
                status[i] = TOO_LARGE
            elif d != d.to_integral_value():
                status[i] = NOT_WHOLE
            else:
                num[i], status[i] = int(d), OK
    ok = codes >= 0
    out_num = np.zeros(len(values), dtype="int64")
    out_status = np.full(len(values), EMPTY, dtype="int8")
    out_num[ok], out_status[ok] = num[codes[ok]], status[codes[ok]]
    return out_num, out_status


def _where(provinces: pd.Series | None, bad: np.ndarray) -> Sequence[str]:
    # Indexed only for the failing rows: a million-row column is never copied.
    return () if provinces is None else provinces[bad].astype(str).tolist()


def count_problems(status: np.ndarray, values: pd.Series, column: str, maximum: int, rows: np.ndarray,
                   provinces: pd.Series | None = None, *, empty_ok: bool,
                   what: str = "count") -> list[Problem]:
    """One :class:`Problem` for the values :func:`parse_counts` refused (and one for missing ones)."""
    problems = []
    bad = np.isin(status, (NOT_WHOLE, NEGATIVE, TOO_LARGE))
    if bad.any():
        shown = pd.unique(np.asarray(values[bad], dtype=object))[:5]
        problems.append(Problem(column, f"not a whole number from 0 to {maximum}", rows=rows[bad],
                                provinces=_where(provinces, bad),
                                hint=f"Values found: {', '.join(repr(str(v)) for v in shown)}. "
                                     f"Write {what}s as whole numbers >= 0 with the digits 0-9."))
    empty = status == EMPTY
    if not empty_ok and empty.any():
        problems.append(Problem(column, f"missing {what}", rows=rows[empty],
                                provinces=_where(provinces, empty),
                                hint=f"Give every row a {what} (0 for none)."))
    return problems


def _date_of(text: str, formats: Sequence[str]) -> tuple[int, dt.date | None]:
    if not text.isascii():
        return UNREADABLE, None
    iso, basic, month = _ISO.fullmatch(text), _BASIC.fullmatch(text), _MONTH.fullmatch(text)
    if iso or basic or month:
        if iso:
            y, mo, d = int(iso.group(1)), int(iso.group(3)), int(iso.group(4))
        elif basic:
            y, mo, d = (int(g) for g in basic.groups())
        else:
            y, mo, d = int(month.group(1)), int(month.group(2)), 1
        if not (1 <= mo <= 12 and 1 <= d <= 31):
            return UNREADABLE, None
        try:
            day = dt.date(y, mo, d)
        except ValueError:
            return (IMPOSSIBLE if y >= 1 else UNREADABLE), None
    elif _SERIAL.fullmatch(text):
        return EXCEL_SERIAL, None
    else:
        day = None
        for fmt in formats:
            try:
                day = dt.datetime.strptime(text, fmt).date()
                break
            except ValueError:
                continue
        if day is None:
            return UNREADABLE, None
    if not FIRST_DATE <= day <= LAST_DATE:
        return OUT_OF_RANGE, None
    return OK, day


def parse_date_values(values: pd.Series, formats: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Read calendar dates from text; see the module notes for the accepted forms.

    Returns
    -------
    dates : datetime64[ns] array (NaT where not OK).
    status : int8 array of ``OK, EMPTY, UNREADABLE, IMPOSSIBLE, EXCEL_SERIAL, OUT_OF_RANGE``.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        s = pd.Series(values)
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_localize(None)  # wall-clock date as written, as for text
        # Compared in the column's own unit (pandas 3 keeps seconds or microseconds
        # for old dates); a cast to nanoseconds first would wrap them around.
        day = s.to_numpy().astype("datetime64[D]")
        status = np.where(np.isnat(day), EMPTY, np.where(_in_range(day), OK, OUT_OF_RANGE)).astype("int8")
        day[status != OK] = np.datetime64("NaT")
        return day.astype("datetime64[ns]"), status
    codes, uniques = pd.factorize(values.astype("string").fillna("").str.strip(), sort=False)
    uniq = np.asarray(uniques, dtype=object)
    # Fast path in C for the common plain YYYY-MM-DD; the rest one by one.
    fast = pd.to_datetime(pd.Series(uniq, dtype=object), format="%Y-%m-%d", errors="coerce").to_numpy()
    fast = fast.astype("datetime64[D]")  # in its own unit first: no wrap-around
    # pandas reads fullwidth digits too; counts and dates both take ASCII 0-9 only.
    ascii_ = np.fromiter((str(u).isascii() for u in uniq), dtype=bool, count=len(uniq))
    fast_ok = ~np.isnat(fast) & _in_range(fast) & ascii_
    days = np.full(len(uniq), np.datetime64("NaT"), dtype="datetime64[D]")
    status = np.full(len(uniq), OK, dtype="int8")
    days[fast_ok] = fast[fast_ok]
    for i in np.flatnonzero(~fast_ok):
        text = str(uniq[i])
        if text == "":
            status[i] = EMPTY
            continue
        status[i], day = _date_of(text, formats)
        if day is not None:
            days[i] = np.datetime64(day, "D")
    ok = codes >= 0
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    out_status = np.full(len(values), EMPTY, dtype="int8")
    out[ok] = days[codes[ok]].astype("datetime64[ns]")
    out_status[ok] = status[codes[ok]]
    return out, out_status


def _in_range(day: np.ndarray) -> np.ndarray:
    return (day >= np.datetime64(FIRST_DATE, "D")) & (day <= np.datetime64(LAST_DATE, "D"))


def date_problems(status: np.ndarray, values: pd.Series, column: str, rows: np.ndarray,
                  provinces: pd.Series | None = None, *, empty_ok: bool = False) -> list[Problem]:
    """One :class:`Problem` per kind of bad date found by :func:`parse_date_values`."""
    kinds = [
        ((UNREADABLE,) + (() if empty_ok else (EMPTY,)), "unparseable or missing date", "Write dates as YYYY-MM-DD."),
        ((IMPOSSIBLE,), "impossible calendar date (no such day in that month)",
         "Correct the day or month; write dates as YYYY-MM-DD."),
        ((EXCEL_SERIAL,), "a number, not a date (an Excel serial day number?)",
         "Format the column as a date (YYYY-MM-DD) in the spreadsheet before saving the CSV."),
        ((OUT_OF_RANGE,), f"date outside the supported range {DATE_RANGE_TEXT}",
         "Correct the year; dates must lie between those two days."),
    ]
    problems = []
    for codes, check, hint in kinds:
        bad = np.isin(status, codes)
        if bad.any():
            shown = [str(v) for v in pd.unique(np.asarray(values[bad].astype(str), dtype=object))[:3]]
            found = f" Values found: {', '.join(repr(v) for v in shown)}." if codes[0] != UNREADABLE else ""
            problems.append(Problem(column, check, rows=rows[bad], provinces=_where(provinces, bad),
                                    hint=hint + found))
    return problems


def parse_date_text(text: str | dt.date, *, what: str = "date") -> dt.date:
    """One date given by a user (``as_of``, coverage bounds): same forms and range as file dates.

    Raises
    ------
    DataValidationError
        Naming ``what`` and the supported range.
    """
    if isinstance(text, np.datetime64):
        text = str(text)[:10]
    if isinstance(text, dt.date):
        day = text.date() if isinstance(text, dt.datetime) else text
        if not FIRST_DATE <= day <= LAST_DATE:
            raise DataValidationError([Problem(what, f"date outside the supported range {DATE_RANGE_TEXT}",
                                               hint=f"Got {day}.")])
        return day
    status, day = _date_of(str(text).strip(), ())
    if day is None:
        check = {IMPOSSIBLE: "impossible calendar date", OUT_OF_RANGE:
                 f"date outside the supported range {DATE_RANGE_TEXT}"}.get(status, "not a date")
        raise DataValidationError([Problem(what, check, hint=f"Got {str(text)!r}; write it as YYYY-MM-DD.")])
    return day


def unquote_formula(values: pd.Series) -> pd.Series:
    """Take off the apostrophe that guards a formula-like cell (``'=A1`` -> ``=A1``).

    Only an apostrophe followed by ``= + - @``, tab or CR is removed, so names
    such as ``'Amran`` keep theirs.
    """
    s = values.astype("string")
    quoted = s.str.startswith("'").fillna(False).to_numpy(dtype=bool)
    if not quoted.any():
        return s
    s = s.copy()
    s[quoted] = s[quoted].str.replace(_QUOTED_FORMULA, "", regex=True)
    return s
