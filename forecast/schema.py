"""Canonical column names and frame contracts.

Every stage exchanges pandas frames with the columns named here. Input files
are validated once, at the boundary (``forecast.ingest``); frames built by the
toolkit itself are only checked for their contract (columns present, dtypes),
which is cheap, so that a notebook user who builds a frame by hand gets a
clear message instead of a ``KeyError`` deep inside a model.
"""
from __future__ import annotations

from typing import Iterable

import pandas as pd

from forecast.exceptions import DataValidationError, Problem
from forecast.limits import MAX_EVENT_COUNT, MAX_PANEL_COUNT  # noqa: F401 (part of the frame contract)

# -- events frame: one row per incident ----------------------------------------
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "date",
    "country",
    "province",
    "event_type",
    "count",
    "fatalities",
)
#: Optional event columns carried through when the source has them.
EVENT_OPTIONAL: tuple[str, ...] = ("source", "date_precision", "location_precision", "date_end")

#: Ordered date precision levels (finest first) shared by every source adapter.
DATE_PRECISION_LEVELS: tuple[str, ...] = ("day", "week", "month", "year")
#: Ordered location precision levels (finest first).
LOCATION_PRECISION_LEVELS: tuple[str, ...] = ("point", "admin2", "admin1", "region", "country")

#: Province given to events whose source names none (kept, counted in a warning).
UNKNOWN_PROVINCE = "unknown"
#: Label used for country or province of aggregate series (totals).
ALL_LABEL = "(all)"


# -- panel frame: one row per series and covered period -----------------------
PANEL_KEYS: tuple[str, ...] = ("country", "province", "event_type")
PANEL_COLUMNS: tuple[str, ...] = ("unique_id", "ds", "y")


def make_unique_id(country: pd.Series, province: pd.Series, event_type: pd.Series) -> pd.Series:
    """``country/province/event_type``, the series identifier used everywhere."""
    return country.astype(str) + "/" + province.astype(str) + "/" + event_type.astype(str)


def require_columns(frame: pd.DataFrame, columns: Iterable[str], *, what: str) -> None:
    """Raise :class:`DataValidationError` naming every missing column.

    Parameters
    ----------
    frame : the frame to check.
    columns : the columns the contract needs.
    what : the frame's role in the message, e.g. ``"panel"``.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "(none)"
        raise DataValidationError(
            [
                Problem(
                    column=", ".join(missing),
                    check=f"required {what} column{'s' if len(missing) > 1 else ''} missing",
                    hint=f"Columns found: {found}.",
                )
            ],
            source=what,
        )


def check_panel(panel: pd.DataFrame) -> None:
    """Check the long panel contract: ``unique_id, ds, y`` with integer-valued ``y``.

    ``y`` may hold missing values (NaN: a period without data; a period absent
    between a series' first and last period is missing too), never negative or
    fractional counts. Each ``(unique_id, ds)`` pair appears once.
    """
    require_columns(panel, PANEL_COLUMNS, what="panel")
    problems: list[Problem] = []
    if not pd.api.types.is_datetime64_any_dtype(panel["ds"]):
        problems.append(Problem("ds", "must be datetime64", hint="Convert with pandas.to_datetime."))
    y = pd.to_numeric(panel["y"], errors="coerce")
    # Checked before any int64 cast: inf or 1e300 would wrap to a negative number.
    bad = (y < 0) | (y.notna() & (y != y.round())) | (y > MAX_PANEL_COUNT)
    if bad.any():
        rows = (pd.RangeIndex(len(panel))[bad.to_numpy()] + 1).tolist()
        problems.append(Problem("y", f"negative or non-integer count (or above {MAX_PANEL_COUNT})", rows=rows,
                                hint="Counts must be whole numbers >= 0."))
    dup = panel.duplicated(["unique_id", "ds"])
    if dup.any():
        rows = (pd.RangeIndex(len(panel))[dup.to_numpy()] + 1).tolist()
        problems.append(Problem("unique_id, ds", "duplicate period of a series", rows=rows,
                                hint="Aggregate to one row per series and period."))
    if problems:
        raise DataValidationError(problems, source="panel")
