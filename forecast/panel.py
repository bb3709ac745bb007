"""Turn an events frame into the long count panel, never confusing 0 with missing.

A *series* is one ``country/province/event_type``. A *covered period* is one
the data fully cover. Inside coverage a series with no events has ``y = 0``;
outside coverage it has no row at all (missing). Coverage belongs to a country
(all its provinces and event types share it), not to a series: a quiet province
is still observed.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from forecast._parse import parse_date_text
from forecast.adjacency import as_attr
from forecast.coverage_gaps import MODES as GAP_MODES
from forecast.coverage_gaps import apply_coverage_gaps
from forecast.exceptions import ConfigError, DataValidationError, ForecastWarning, Problem
from forecast.periods import Frequency, parse_freq  # noqa: F401  (re-exported: tests and users import them here)
from forecast.schema import ALL_LABEL, make_unique_id, require_columns

def build_panel(
    events: pd.DataFrame,
    freq: str | Frequency = "month",
    *,
    coverage: tuple[Any, Any] | Mapping[str, tuple[Any, Any]] | None = None,
    as_of: Any = None,
    provinces: Iterable[str] | Mapping[str, Iterable[str]] | None = None,
    countries: Iterable[str] | None = None,
    event_types: Iterable[str] | None = None,
    value: str = "events",
    totals: bool = False,
    exposure: pd.DataFrame | None = None,
    adjacency: pd.DataFrame | str | Path | None = None,
    gazetteer: Any = None,
    coverage_gaps: str = "missing",
) -> pd.DataFrame:
    """Aggregate events into a zero-filled long panel inside coverage.

    Parameters
    ----------
    events : canonical events frame (:func:`forecast.read_events`).
    freq : ``"day"``, ``"week"`` (or ``"W-SUN"`` etc.), ``"month"``, ``"quarter"``,
        ``"year"``, a pandas alias, or a :class:`~forecast.periods.Frequency`
        (see :func:`forecast.periods.parse_freq`).
    coverage : ``(start, end)`` for every country, or ``{country: (start,
        end)}``. Periods are those whose start lies in ``[start, end]``.
        Default: per country, from the period of its first event to its last
        *complete* period (see ``as_of``).
    as_of : date up to which the log is complete (its export date). The last
        period counts only if it ends on or before this date. Default: the
        date of the last event, so a log ending on the 12th loses its last,
        partial month (listed in the warnings), never counting it as a quiet one.
    provinces : extra provinces to include even without events: a list of
        names (their country from the gazetteer) or ``{country: [names]}``.
    countries : include every gazetteer province of these countries.
    event_types : event types every province gets a series for (default: the
        types present in ``events``).
    value : ``"events"`` (sum of ``count``) or ``"fatalities"``.
    totals : add country and whole-area totals as extra series, marked by
        ``aggregate = True`` and ``"(all)"`` in ``province`` / ``country``.
    exposure : frame with ``country, province, ds, exposure`` (optionally
        ``event_type``), merged onto the panel as column ``exposure``.
    adjacency : CSV path or frame of neighbour pairs (any form
        :func:`forecast.adjacency.read_adjacency` accepts), carried in canonical form in
        ``panel.attrs["adjacency"]`` (an :class:`~forecast.adjacency.AdjacencyTable`) for the
        models with neighbour terms.
    coverage_gaps : ``"missing"`` (default) or ``"zero"``: what a *coverage gap*
        becomes, a period whose panel total is 0 although its neighbours make 0
        implausible (see :mod:`forecast.coverage_gaps`): missing (``y`` NaN for
        every series) or a zero as counted. Either way the gaps are listed in
        ``panel.attrs["coverage_gaps"]`` (ISO dates) and in a warning.

    Returns
    -------
    pandas.DataFrame
        ``unique_id, ds, y, country, province, event_type`` (+ ``aggregate``,
        ``exposure``), sorted by ``unique_id, ds``; ``y`` is int64 (float64 with NaN
        at coverage gaps treated as missing). The ``attrs`` hold ``freq`` (a
        :class:`~forecast.periods.Frequency`), ``coverage`` (per country),
        ``coverage_gaps``, ``warnings``.
    """
    require_columns(events, ("date", "country", "province", "event_type"), what="events")
    fq = parse_freq(freq)
    if coverage_gaps not in GAP_MODES:
        raise ConfigError(f"coverage_gaps must be 'missing' or 'zero'. Got {coverage_gaps!r} instead.")
    if value not in ("events", "fatalities"):
        raise ConfigError(f"value must be 'events' or 'fatalities'. Got '{value}' instead.")
    warn: list[str] = []
    ev = events
    if value == "fatalities":
        require_columns(events, ("fatalities",), what="events")
        weight = ev["fatalities"].fillna(0).to_numpy(dtype="int64")
    else:
        weight = ev["count"].to_numpy(dtype="int64") if "count" in ev.columns else np.ones(len(ev), "int64")
    period = fq.start(ev["date"].to_numpy(dtype="datetime64[ns]"))

    # -- which series exist: provinces x event types, per country
    types = sorted(map(str, ev["event_type"].unique())) if event_types is None else list(dict.fromkeys(event_types))
    units = ev[["country", "province"]].drop_duplicates().astype(str)
    extra = _declared_units(provinces, countries, gazetteer)
    units = pd.concat([units, extra], ignore_index=True).drop_duplicates().sort_values(["country", "province"])
    if units.empty or not types:
        raise DataValidationError([Problem("<events>", "no events and no declared provinces",
                                           hint="Pass provinces= or countries= to build an empty panel.")],
                                  source="panel")

    # -- coverage per country
    cover = _coverage(ev, period, fq, units["country"].unique(), coverage, as_of, warn)

    # -- counts on the grid
    # Categorical keys make the group-by cheap on millions of events.
    key = pd.DataFrame({k: ev[k].astype("category") for k in ("country", "province", "event_type")})
    key["ds"], key["y"] = period, weight
    counts = key.groupby(["country", "province", "event_type", "ds"], sort=False, observed=True)["y"].sum()
    counts = counts.reset_index()
    for k in ("country", "province", "event_type"):
        counts[k] = counts[k].astype(str)
    frames = []
    for country, (first, last) in cover.items():
        periods = fq.range(first, last)
        cu = units.loc[units["country"] == country, "province"].to_numpy()
        if len(periods) == 0 or len(cu) == 0:
            continue
        idx = pd.MultiIndex.from_product([[country], cu, types, periods],
                                         names=["country", "province", "event_type", "ds"])
        frames.append(idx.to_frame(index=False))
    if not frames:
        spans = "; ".join(f"{c}: {a.date()} to {b.date()}" for c, (a, b) in cover.items())
        raise DataValidationError([Problem("date", f"no complete {fq.kind} is covered ({spans})",
                                           hint="Give the date the log is complete to (--as-of YYYY-MM-DD, or as_of = "
                                                "\"YYYY-MM-DD\" in the config) or the coverage ([data] coverage), "
                                                "or use a shorter frequency.")],
                                  source="panel")
    grid = pd.concat(frames, ignore_index=True)
    grid = grid.merge(counts, how="left", on=["country", "province", "event_type", "ds"])
    outside = len(key) and int(weight.sum() - grid["y"].fillna(0).sum())
    if outside:
        warn.append(f"{outside} events fall outside the covered periods and are not counted.")
    grid["y"] = grid["y"].fillna(0).astype("int64")
    require_events(grid, source="panel", detail=_no_events_detail(ev, weight, cover))
    grid["aggregate"] = False
    if totals:
        grid = pd.concat([grid, *_totals(grid)], ignore_index=True)
    grid.insert(0, "unique_id", make_unique_id(grid["country"], grid["province"], grid["event_type"]))
    if exposure is not None:
        grid = _merge_exposure(grid, exposure)
    panel = grid[["unique_id", "ds", "y", "country", "province", "event_type", "aggregate"]
                 + (["exposure"] if "exposure" in grid.columns else [])]
    if not totals:
        panel = panel.drop(columns="aggregate")
    panel = panel.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    panel, gaps = apply_coverage_gaps(panel, coverage_gaps, fq)
    if gaps:
        shown = ", ".join(gaps[:10]) + (f" and {len(gaps) - 10} more" if len(gaps) > 10 else "")
        warn.append(f"{len(gaps)} period{'s' if len(gaps) > 1 else ''} with no event at all although the "
                    f"neighbouring periods make that implausible (coverage gaps): {shown}; "
                    + ("treated as missing" if coverage_gaps == "missing" else "kept as zeros (coverage_gaps='zero')")
                    + ".")
    panel.attrs = {
        "freq": fq,
        "value": value,
        "coverage": {c: (str(a.date()), str(b.date())) for c, (a, b) in cover.items()},
        "coverage_gaps": gaps,
        "warnings": warn,
    }
    if adjacency is not None:
        panel.attrs["adjacency"] = as_attr(adjacency)
    for w in warn:
        warnings.warn(w, ForecastWarning, stacklevel=2)
    return panel


def require_events(panel: pd.DataFrame, *, source: str = "panel", detail: str = "") -> None:
    """Refuse a panel without a single event: its forecasts would be certain zeros, not knowledge.

    Raises
    ------
    DataValidationError
        "nothing to forecast from", with what was found and what to do.
    """
    if len(panel) and pd.to_numeric(panel["y"], errors="coerce").fillna(0).sum() > 0:
        return
    found = detail or f"all {len(panel)} counts are 0"
    raise DataValidationError([Problem("y", f"nothing to forecast from: no event in the covered periods ({found})",
                                       hint="Check the coverage and as_of dates against the event dates, "
                                            "or the country and precision filters; a forecast needs "
                                            "at least one event.")], source=source)


def _no_events_detail(ev: pd.DataFrame, weight: np.ndarray, cover: Mapping) -> str:
    spans = "; ".join(f"{c} {a.date()} to {b.date()}" for c, (a, b) in cover.items())
    if not len(ev) or weight.sum() == 0:
        return f"the events hold no count; coverage {spans}"
    dates = ev["date"]
    return (f"{int(weight.sum())} events dated {dates.min().date()} to {dates.max().date()} "
            f"all fall outside coverage {spans}")


def _declared_units(provinces, countries, gazetteer) -> pd.DataFrame:
    rows: list[tuple[str, str]] = []
    if provinces is None and countries is None:
        return pd.DataFrame(columns=["country", "province"], dtype=str)
    from forecast.ingest import _resolve_gazetteer

    gaz = _resolve_gazetteer(gazetteer)
    if countries is not None:
        for c in gaz.normalise_country(pd.Series(list(countries), dtype="string")).astype(str):
            rows += [(c, p) for p in gaz.provinces(c)]
    if isinstance(provinces, Mapping):
        for c, names in provinces.items():
            names = pd.Series(list(names), dtype="string")
            norm = gaz.normalise(names, pd.Series([c] * len(names), dtype="string"))
            rows += list(zip(norm.country.astype(str), norm.province.astype(str)))
    elif provinces is not None:
        names = pd.Series(list(provinces), dtype="string")
        norm = gaz.normalise(names)
        rows += list(zip(norm.country.astype(str), norm.province.astype(str)))
    return pd.DataFrame(rows, columns=["country", "province"])


def _coverage(ev, period, fq, countries, coverage, as_of, warn) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """First and last covered period start per country."""
    def to_period(x, what: str = "coverage") -> pd.Timestamp:
        day = np.datetime64(parse_date_text(x, what=what), "ns")
        return pd.Timestamp(fq.start(np.array([day], dtype="datetime64[ns]"))[0])

    given: dict[str, tuple[Any, Any]] = {}
    if isinstance(coverage, Mapping):
        given = dict(coverage)
    elif coverage is not None:
        given = {c: coverage for c in countries}
    # Countries with no events of their own share the span of the whole log:
    # the source covered them and saw nothing.
    out: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
    if len(ev):
        country = ev["country"].astype(str).to_numpy()
        dates = ev["date"].to_numpy(dtype="datetime64[ns]")
        span = pd.DataFrame({"c": country, "p": period, "d": dates}).groupby("c").agg(
            p0=("p", "min"), d1=("d", "max"))
        all_p0, all_d1 = period.min(), dates.max()
    for c in countries:
        if c in given:
            a, b = given[c]
            out[c] = (to_period(a), to_period(b))
            continue
        if not len(ev):
            raise ConfigError(f"No events for {c}: give coverage=(start, end).")
        p0, d1 = (span.loc[c, "p0"], span.loc[c, "d1"]) if c in span.index else (all_p0, all_d1)
        end_date = pd.Timestamp(parse_date_text(as_of, what="as_of")) if as_of is not None \
            else pd.Timestamp(max(d1, all_d1))
        last = to_period(end_date, "as_of")
        # The period holding end_date is complete only if end_date is its last day.
        if pd.Timestamp(fq.next_start(np.array([last.to_datetime64()]))[0]) - pd.Timedelta(days=1) > end_date:
            warn.append(f"{c}: the last period {last.date()} is only covered up to {end_date.date()} "
                        f"and was dropped as partial (if the log is complete to a later day, give --as-of YYYY-MM-DD, "
                        f"or as_of = \"YYYY-MM-DD\" in the config).")
            last = pd.Timestamp(fq.start(np.array([(last - pd.Timedelta(days=1)).to_datetime64()]))[0])
        out[c] = (pd.Timestamp(p0), last)
    return out


def _totals(grid: pd.DataFrame) -> list[pd.DataFrame]:
    by_country = grid.groupby(["country", "event_type", "ds"], as_index=False)["y"].sum()
    by_country["province"] = ALL_LABEL
    # The whole-area total exists only for periods every country covers, so a
    # country's missing months never count as zeros in the sum.
    n_countries = grid["country"].nunique()
    area = by_country.groupby(["event_type", "ds"]).agg(y=("y", "sum"), n=("country", "nunique")).reset_index()
    area = area[area["n"] == n_countries].drop(columns="n")
    area["country"], area["province"] = ALL_LABEL, ALL_LABEL
    parts = [by_country, area]
    for p in parts:
        p["aggregate"] = True
    return parts if n_countries > 1 else parts[:1]


def _merge_exposure(grid: pd.DataFrame, exposure: pd.DataFrame) -> pd.DataFrame:
    keys = [k for k in ("country", "province", "event_type") if k in exposure.columns] + ["ds"]
    require_columns(exposure, keys + ["exposure"], what="exposure")
    ex = exposure[keys + ["exposure"]].copy()
    ex["ds"] = pd.to_datetime(ex["ds"])
    out = grid.merge(ex, how="left", on=keys)
    bad = out["exposure"].isna() | (out["exposure"] <= 0)
    if bad.any():
        sample = out.loc[bad, "unique_id"].unique()[:10]
        raise DataValidationError([Problem("exposure", "missing or non-positive exposure for covered periods",
                                           provinces=list(sample),
                                           hint="Give a positive exposure for every series and period.")],
                                  source="exposure")
    return out


__all__: Sequence[str] = ("build_panel", "parse_freq", "Frequency", "require_events")
