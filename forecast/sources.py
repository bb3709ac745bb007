"""Source adapters: how each supported file layout maps onto the events frame.

Three layouts are known, recognised from the header when ``schema="auto"``:

``native``
    The analyst's own register. Required ``date, province, event_type``;
    optional ``country, count, fatalities, event_id, source, date_precision,
    location_precision``. ``count`` is the number of incidents a row stands for
    (default 1, also for an empty cell).
``acled``
    An ACLED export (``event_id_cnty, event_date, event_type, sub_event_type,
    country, admin1, fatalities, time_precision, geo_precision``).
``ucdp``
    UCDP GED or UCDP Candidate (``id, date_start, date_end, country, adm_1,
    type_of_violence, best, date_prec, where_prec``). An event counts in the
    period of its start date; ``best`` is its fatality estimate.

Event types
-----------
Source categories become our event types through a mapping that users can
override (``read_events(..., event_types={...})``). Defaults:

=====================================  ==========
source value                           event type
=====================================  ==========
UCDP type_of_violence 1 (state-based)  clash
UCDP type_of_violence 2 (non-state)    clash
UCDP type_of_violence 3 (one-sided)    attack
ACLED Battles                          clash
ACLED Explosions/Remote violence       attack
ACLED Violence against civilians       attack
ACLED Strategic developments /
Disrupted weapons use                  seizure
ACLED Strategic developments           other
ACLED Riots                            unrest
ACLED Protests                         protest
native                                 as written, lower-cased
=====================================  ==========

ACLED keys may name the sub-event type as ``"Event type / Sub-event type"``;
that key wins over the plain event type. Values with no mapping keep their own
(lower-cased) name and are listed in a warning.

Precision
---------
Each source's own precision codes are mapped onto shared ordered levels
(:data:`forecast.schema.DATE_PRECISION_LEVELS`, ``LOCATION_PRECISION_LEVELS``)
so one filter works for every source.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable, Mapping

import pandas as pd

from forecast.exceptions import DataValidationError, Problem


@dataclass(frozen=True)
class SourceSchema:
    """How one file layout maps onto canonical event columns.

    Attributes
    ----------
    name : schema name used in messages and ``schema=``.
    columns : canonical column -> source column.
    required : canonical columns that must be present in the file.
    signature : source columns whose presence identifies this layout.
    event_types : default source value -> event type mapping.
    date_precision, location_precision : source code -> shared level.
    type_key : builds the lookup key of the event-type mapping from the raw frame.
    """

    name: str
    columns: Mapping[str, str]
    required: tuple[str, ...]
    signature: tuple[str, ...]
    event_types: Mapping[str, str] = field(default_factory=dict)
    date_precision: Mapping[str, str] = field(default_factory=dict)
    location_precision: Mapping[str, str] = field(default_factory=dict)
    type_key: Callable[[pd.DataFrame], pd.Series] | None = None
    province_suffixes: tuple[str, ...] = ()

    def source_column(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)


def _acled_type_key(raw: pd.DataFrame) -> pd.Series:
    # The sub-event type refines the mapping ("Strategic developments / Disrupted
    # weapons use" is a seizure, other strategic developments are not).
    et = raw["event_type"].str.strip()
    if "sub_event_type" in raw.columns:
        return et + " / " + raw["sub_event_type"].str.strip()
    return et


NATIVE = SourceSchema(
    name="native",
    columns={},
    required=("date", "province", "event_type"),
    signature=("date", "province", "event_type"),
    date_precision={lvl: lvl for lvl in ("day", "week", "month", "year")},
    location_precision={lvl: lvl for lvl in ("point", "admin2", "admin1", "region", "country")},
)

ACLED = SourceSchema(
    name="acled",
    columns={
        "event_id": "event_id_cnty",
        "date": "event_date",
        "country": "country",
        "province": "admin1",
        "event_type": "event_type",
        "fatalities": "fatalities",
        "date_precision": "time_precision",
        "location_precision": "geo_precision",
    },
    required=("date", "country", "province", "event_type"),
    signature=("event_date", "event_type", "admin1"),
    event_types={
        "Battles": "clash",
        "Explosions/Remote violence": "attack",
        "Violence against civilians": "attack",
        "Strategic developments / Disrupted weapons use": "seizure",
        "Strategic developments": "other",
        "Riots": "unrest",
        "Protests": "protest",
    },
    date_precision={"1": "day", "2": "week", "3": "month"},
    location_precision={"1": "point", "2": "admin2", "3": "admin1"},
    type_key=_acled_type_key,
)

UCDP = SourceSchema(
    name="ucdp",
    columns={
        "event_id": "id",
        "date": "date_start",
        "date_end": "date_end",
        "country": "country",
        "province": "adm_1",
        "event_type": "type_of_violence",
        "fatalities": "best",
        "date_precision": "date_prec",
        "location_precision": "where_prec",
    },
    required=("date", "country", "province", "event_type"),
    signature=("date_start", "type_of_violence", "adm_1"),
    event_types={"1": "clash", "2": "clash", "3": "attack"},
    # UCDP codebook: 1 exact day, 2 two-to-six days, 3 a week, 4 a month,
    # 5 longer than a month.
    date_precision={"1": "day", "2": "week", "3": "week", "4": "month", "5": "year"},
    # 1 exact place, 2 within 25 km, 3 second-order unit, 4 first-order unit,
    # 5 larger region or border, 6 country, 7 international waters or air.
    location_precision={"1": "point", "2": "admin2", "3": "admin2", "4": "admin1",
                        "5": "region", "6": "country", "7": "country"},
    # UCDP writes "Faryab province"; the unit name is "Faryab".
    province_suffixes=(" province",),
)

SCHEMAS: dict[str, SourceSchema] = {s.name: s for s in (NATIVE, ACLED, UCDP)}


def detect_schema(columns: list[str]) -> SourceSchema | None:
    """The layout whose signature columns are all in ``columns``; ``None`` if none.

    More specific layouts are tried first (UCDP, ACLED), since an ACLED or UCDP
    export could also happen to carry a ``date`` column.
    """
    present = {c.strip().lower() for c in columns}
    for schema in (UCDP, ACLED, NATIVE):
        if all(c in present for c in schema.signature):
            return schema
    return None


def resolve_schema(columns: list[str], schema: str, source_name: str) -> SourceSchema:
    """The layout named by ``schema`` (or recognised from ``columns`` for ``"auto"``), with its required columns.

    Raises
    ------
    DataValidationError
        Unknown layout name, unrecognised header, or required columns missing (with near matches).
    """
    found = ", ".join(columns) or "(none)"
    if schema == "auto":
        src = detect_schema(columns)
        if src is None:
            need = "; ".join(f"{s.name}: {', '.join(s.source_column(c) for c in s.required)}"
                             for s in SCHEMAS.values())
            raise DataValidationError([Problem("<header>", "could not recognise the file layout",
                                               hint=f"Required columns per layout — {need}. Columns found: {found}.")],
                                      source=source_name)
        return src
    if schema not in SCHEMAS:
        raise DataValidationError([Problem("<schema>", f"unknown schema '{schema}'",
                                           hint=f"Use auto, {', '.join(SCHEMAS)}.")], source=source_name)
    src = SCHEMAS[schema]
    missing = [src.source_column(c) for c in src.required if src.source_column(c) not in columns]
    if missing:
        hints = []
        for m in missing:
            close = difflib.get_close_matches(m, columns, n=1)
            if close:
                hints.append(f"'{close[0]}' looks like '{m}'")
        hint = f"Columns found: {found}." + (f" ({'; '.join(hints)}.)" if hints else "")
        raise DataValidationError([Problem(", ".join(missing), f"required column{'s' if len(missing) > 1 else ''} "
                                                               f"missing for the {src.name} layout", hint=hint)],
                                  source=source_name)
    return src
