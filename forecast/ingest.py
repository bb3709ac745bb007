"""Read incident logs (native, ACLED, UCDP) into the canonical events frame.

The one public entry point is :func:`read_events`. It validates the file once
and reports *every* problem in a single :class:`~forecast.DataValidationError`
(column, check, up to 10 spreadsheet row numbers, provinces affected, what to
do). An event id repeated with different content is an error. Problems that
lose no information — identical repeats of an event id, events without a
province, unknown province names, precision filters — are applied and
reported as warnings instead; they are kept in ``events.attrs["ingest"]`` so
that the CLI and the report can show them.
"""
from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from forecast._files import PARQUET_SUFFIXES, check_column_names, read_table
from forecast._ingest_cols import (  # noqa: F401 (_resolve_gazetteer: re-exported for panel)
    _conflicting_ids,
    _counts,
    _first_rows,
    _map_event_types,
    _resolve_gazetteer,
    _strip_suffixes,
)
from forecast._parse import (
    date_problems,
    parse_date_text,
    parse_date_values,
    unquote_formula,
)
from forecast.exceptions import DataValidationError, ForecastWarning, Problem
from forecast.schema import (
    DATE_PRECISION_LEVELS,
    EVENT_COLUMNS,
    LOCATION_PRECISION_LEVELS,
    UNKNOWN_PROVINCE,
)
from forecast.sources import resolve_schema

__all__ = ("read_events", "events_from_frame", "PARQUET_SUFFIXES")
# Formats tried, in order, for dates that are not ISO 8601. Day-first is the
# convention of the region's registers (15.03.2024); pass dayfirst=False for US
# style month-first logs.
_DAYFIRST_FORMATS = ("%d %B %Y", "%d.%m.%Y", "%d/%m/%Y", "%d-%m-%Y", "%d %b %Y")
_MONTHFIRST_FORMATS = ("%d %B %Y", "%m/%d/%Y", "%m-%d-%Y", "%B %d, %Y", "%d %b %Y")
# Text columns that our CSV outputs may guard against formula injection.
_NAME_COLUMNS = ("event_id", "country", "province", "event_type", "source")


def read_events(
    path: str | Path,
    schema: str = "auto",
    *,
    event_types: Mapping[str, str] | None = None,
    gazetteer: Any = None,
    strict: bool = False,
    only_countries: Sequence[str] | None = None,
    max_date_precision: str | None = None,
    max_location_precision: str | None = None,
    as_of: str | date | None = None,
    dayfirst: bool = True,
    countries: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read an incident log into the canonical events frame.

    Parameters
    ----------
    path : CSV (UTF-8 with or without BOM; comma, semicolon or tab separated)
        or Parquet file. Other encodings are refused, never guessed (see
        :mod:`forecast._files`); so are files with a column name given twice.
    schema : ``"auto"`` (recognise from the header), ``"native"``, ``"acled"``
        or ``"ucdp"``. See :mod:`forecast.sources`.
    event_types : overrides of the source-value -> event-type mapping, merged
        over the schema's defaults (e.g. ``{"3": "attack"}`` for UCDP,
        ``{"Riots": "clash"}`` for ACLED, ``{"armed clash": "clash"}`` native).
    gazetteer : a :class:`forecast.gazetteer.Gazetteer`, or the path of a CSV
        (``country,province,alias``) that extends the bundled one.
    strict : unknown province names are an error instead of a warning.
    only_countries : keep only events of these countries (names are normalised).
    countries : deprecated name of ``only_countries`` (a warning says so): elsewhere
        (``build_panel``, the run config) ``countries`` means "every province of these
        countries is a series", a different thing.
    max_date_precision : drop events whose date is coarser than this level
        (``"day"``, ``"week"``, ``"month"``, ``"year"``); ``None`` keeps all.
    max_location_precision : drop events located more coarsely than this level
        (``"point"``, ``"admin2"``, ``"admin1"``, ``"region"``, ``"country"``).
        For province panels ``"admin1"`` is the natural choice.
    as_of : the run date; events dated after it are an error. Default: today.
        Dates: ``YYYY-MM-DD`` (a time and UTC offset after it are ignored: the
        calendar date as written counts), ``YYYYMMDD`` or the regional formats;
        only 1678-01-01 to 2262-04-11. Counts: whole numbers 0 to
        :data:`~forecast.schema.MAX_EVENT_COUNT` checked exactly; an empty
        ``count`` is an error, an empty ``fatalities`` unknown. See :mod:`forecast._parse`.
    dayfirst : read ambiguous dates such as 03/04/2024 as day first.

    Returns
    -------
    pandas.DataFrame
        Columns ``event_id, date, country, province, event_type, count,
        fatalities`` plus ``source``, ``date_precision``,
        ``location_precision`` and ``date_end`` when the source has them; one
        row per event. ``attrs["ingest"]`` holds the file name, schema, rows
        read and kept, rows dropped by reason, unknown provinces and warnings.

    Raises
    ------
    DataValidationError
        With one line per problem, all problems at once.
    """
    path = Path(path)
    raw, first_row = read_table(path)
    return events_from_frame(
        raw,
        schema,
        source_name=path.name,
        first_row=first_row,
        event_types=event_types,
        gazetteer=gazetteer,
        strict=strict,
        only_countries=only_countries,
        countries=countries,
        max_date_precision=max_date_precision,
        max_location_precision=max_location_precision,
        as_of=as_of,
        dayfirst=dayfirst,
        _stacklevel=3,
    )


def events_from_frame(
    raw: pd.DataFrame,
    schema: str = "auto",
    *,
    source_name: str = "frame",
    first_row: int = 1,
    event_types: Mapping[str, str] | None = None,
    gazetteer: Any = None,
    strict: bool = False,
    only_countries: Sequence[str] | None = None,
    max_date_precision: str | None = None,
    max_location_precision: str | None = None,
    as_of: str | date | None = None,
    dayfirst: bool = True,
    countries: Sequence[str] | None = None,
    _stacklevel: int = 2,
) -> pd.DataFrame:
    """Validate an in-memory table of events; same rules as :func:`read_events`.

    ``first_row`` is the row number shown for the table's first row (2 for a
    CSV whose header is row 1, 1 for a frame or a Parquet file).
    """
    check_column_names([str(c) for c in raw.columns], source_name)
    raw = raw.copy()
    raw.columns = [str(c).strip().lstrip("\ufeff").lower() for c in raw.columns]
    src = resolve_schema(list(raw.columns), schema, source_name)
    if len(raw) == 0:
        raise DataValidationError(
            [Problem("<file>", "the file has a header but no data rows",
                     hint="Export the log again with its events.")], source=source_name)
    rows = np.asarray(raw.attrs.get("rows", np.arange(len(raw)) + first_row))
    gaz = _resolve_gazetteer(gazetteer)
    problems: list[Problem] = []
    warn: list[str] = []
    dropped: dict[str, int] = {}

    def col(canonical: str) -> pd.Series | None:
        name = src.source_column(canonical)
        if name not in raw.columns:
            return None
        s = raw[name]
        if pd.api.types.is_datetime64_any_dtype(s):
            return s
        s = s.astype("string").fillna("").str.strip()
        # Names written by our own CSV outputs carry a guard against spreadsheet formulas.
        return unquote_formula(s) if canonical in _NAME_COLUMNS else s

    out = pd.DataFrame(index=raw.index)

    # -- where: province and country first, so later messages can name provinces
    prov_raw = col("province")
    if src.province_suffixes:
        prov_raw = _strip_suffixes(prov_raw, src.province_suffixes)
    no_prov = (prov_raw == "").to_numpy()
    country_raw = col("country")
    names = gaz.normalise(prov_raw.where(~no_prov, UNKNOWN_PROVINCE),
                          country_raw if country_raw is not None else None)
    province = names.province.where(~no_prov, UNKNOWN_PROVINCE).astype(str)
    country = names.country.fillna("").astype(str)
    # Assign Series, not numpy arrays: a round trip through Python objects costs
    # seconds on a million-row log.
    out["country"] = country.replace("", "unknown")
    out["province"] = province
    if no_prov.any():
        warn.append(f"{int(no_prov.sum())} events name no province (column "
                    f"'{src.source_column('province')}'); kept under province '{UNKNOWN_PROVINCE}'.")
    unknown = names.unknown
    unknown = unknown[unknown["province"] != UNKNOWN_PROVINCE] if len(unknown) else unknown
    if len(unknown):
        listed = ", ".join(f"{r.province} ({r.country}, {r.n_rows} rows)" for r in unknown.itertuples())
        if strict:
            bad = np.isin(prov_raw.to_numpy(dtype=object), unknown["province"].to_numpy(dtype=object))
            problems.append(Problem(src.source_column("province"), "unknown province name",
                                    rows=rows[bad], provinces=unknown["province"].tolist(),
                                    hint="Fix the spelling or add it to a gazetteer CSV "
                                         "(columns country,province,alias) passed with gazetteer=."))
        else:
            warn.append(f"unknown province names kept as given: {listed}. Add them to a gazetteer "
                        "CSV (country,province,alias) to merge spellings.")

    # -- when
    formats = _DAYFIRST_FORMATS if dayfirst else _MONTHFIRST_FORMATS
    date_raw = col("date")
    day, status = parse_date_values(date_raw, formats)
    problems += date_problems(status, date_raw, src.source_column("date"), rows, province)
    parsed = pd.Series(day, index=raw.index)
    run_date = pd.Timestamp(parse_date_text(as_of, what="as_of") if as_of is not None else date.today())
    late = (parsed > run_date).to_numpy()
    if late.any():
        problems.append(Problem(src.source_column("date"), f"date after the run date {run_date.date()}",
                                rows=rows[late], provinces=province[late],
                                hint="Correct the date, or give --as-of YYYY-MM-DD (as_of = \"YYYY-MM-DD\" in the config) if the log is complete to a later day."))
    out["date"] = day
    if "date_end" in src.columns and col("date_end") is not None:
        end_raw = col("date_end")
        end, end_status = parse_date_values(end_raw, formats)
        problems += [p for p in date_problems(end_status, end_raw, src.source_column("date_end"), rows, province,
                                              empty_ok=True)]
        out["date_end"] = end

    # -- what
    type_raw = src.type_key(raw) if src.type_key is not None else col("event_type")
    type_raw = unquote_formula(type_raw.astype("string").fillna("").str.strip())
    empty_type = (type_raw == "").to_numpy()
    if empty_type.any():
        problems.append(Problem(src.source_column("event_type"), "missing event type", rows=rows[empty_type],
                                provinces=province[empty_type], hint="Give every event a type."))
    etype, unmapped = _map_event_types(type_raw, src, event_types)
    out["event_type"] = etype
    if unmapped:
        warn.append(f"event types with no mapping kept as written: {', '.join(unmapped)}. "
                    "Map them with event_types= (or [event_types] in the run config).")

    # -- how many
    # Without a count column each row is one event; an empty cell in a count column is an error
    # (a number nobody wrote must not be guessed); an empty fatality count is unknown.
    out["count"] = _counts(col("count"), src.source_column("count"), rows, province, problems, empty=1,
                           empty_ok=False)
    out["fatalities"] = _counts(col("fatalities"), src.source_column("fatalities"), rows, province, problems,
                                empty=None)

    # -- identity
    ids = col("event_id")
    # Events without an id get their row number, so messages can still point at them.
    empty_id = np.ones(len(raw), dtype=bool) if ids is None else (ids == "").to_numpy(dtype=bool)
    if empty_id.any():
        event_id = np.asarray(ids.to_numpy(dtype=object) if ids is not None else np.empty(len(raw), dtype=object))
        event_id[empty_id] = np.char.add("row-", rows[empty_id].astype(str)).astype(object)
        out["event_id"] = pd.Series(event_id, index=raw.index, dtype="str")
    else:
        out["event_id"] = ids.astype("str")

    # -- provenance and precision
    source_col = col("source") if src.name == "native" else None
    out["source"] = source_col.replace("", src.name).to_numpy() if source_col is not None else src.name
    for name, levels, mapping in (("date_precision", DATE_PRECISION_LEVELS, src.date_precision),
                                  ("location_precision", LOCATION_PRECISION_LEVELS, src.location_precision)):
        codes = col(name)
        if codes is None:
            continue
        key = codes.str.replace(r"\.0+$", "", regex=True).str.lower()
        mapped = key.map(dict(mapping))
        odd = (mapped.isna() & (key != "")).to_numpy()
        if odd.any():
            problems.append(Problem(src.source_column(name), f"unknown precision code (known: {', '.join(mapping)})",
                                    rows=rows[odd], provinces=province[odd]))
        out[name] = pd.Categorical(mapped, categories=list(levels), ordered=True)

    # Rows whose id occurs more than once (the first copy included).
    repeated = out["event_id"].duplicated(keep=False).to_numpy() & ~empty_id if ids is not None else None
    if repeated is not None and repeated.any() and not problems:
        problems += _conflicting_ids(out, repeated, src.source_column("event_id"), rows)
    if problems:
        raise DataValidationError(problems, source=source_name)

    # -- lossless clean-up, reported as warnings
    keep = np.ones(len(out), dtype=bool)
    if repeated is not None and repeated.any():
        dup = repeated.copy()
        dup[repeated] = out.loc[repeated, "event_id"].duplicated().to_numpy()
        if dup.any():
            dropped["duplicate_event_id"] = int(dup.sum())
            warn.append(f"{int(dup.sum())} rows repeat an earlier event_id and were dropped "
                        f"(rows {_first_rows(rows[dup])}).")
            keep &= ~dup
    for name, limit, levels in (("date_precision", max_date_precision, DATE_PRECISION_LEVELS),
                                ("location_precision", max_location_precision, LOCATION_PRECISION_LEVELS)):
        if limit is None:
            continue
        if limit not in levels:
            raise DataValidationError([Problem(name, f"unknown precision level '{limit}'",
                                               hint=f"Use one of: {', '.join(levels)}.")], source=source_name)
        if name not in out.columns:
            warn.append(f"the file has no {name} column; max_{name}='{limit}' was not applied.")
            continue
        coarse = (out[name].cat.codes.to_numpy() > levels.index(limit)) & keep
        if coarse.any():
            dropped[name] = int(coarse.sum())
            warn.append(f"{int(coarse.sum())} events with {name.replace('_', ' ')} coarser than "
                        f"'{limit}' were dropped.")
            keep &= ~coarse
    if countries is not None:
        warnings.warn("read_events(countries=...) is renamed only_countries=... (countries means 'every "
                      "province of these countries' in build_panel and the run config); it still filters.",
                      ForecastWarning, stacklevel=_stacklevel)
        only_countries = countries if only_countries is None else only_countries
    if only_countries is not None:
        wanted = set(gaz.normalise_country(pd.Series(list(only_countries), dtype="string")).astype(str))
        other = ~out["country"].isin(wanted).to_numpy() & keep
        if other.any():
            dropped["other_countries"] = int(other.sum())
            keep &= ~other

    events = out.loc[keep].reset_index(drop=True)
    order = list(EVENT_COLUMNS) + [c for c in ("source", "date_precision", "location_precision", "date_end")
                                   if c in events.columns]
    events = events[order]
    events.attrs["ingest"] = {
        "file": source_name,
        "schema": src.name,
        "rows_read": int(len(raw)),
        "rows_kept": int(len(events)),
        "dropped": dropped,
        "no_province": int(no_prov.sum()),
        "unknown_provinces": [] if not len(unknown) else unknown.to_dict("records"),
        "warnings": warn,
    }
    for w in warn:
        warnings.warn(f"{source_name}: {w}", ForecastWarning, stacklevel=_stacklevel)
    return events
