"""The typed contract between a run and its report: :class:`ReportContext` (``report_context.json``).

A run builds a :class:`ReportContext`, writes it with :meth:`ReportContext.to_json`, and
``forecast report`` reads it back with :meth:`ReportContext.from_json` — the two round-trip
exactly. The file carries ``schema_version``; a file without one is version 1 (written before
this module existed: NaN for missing numbers, threshold keys as strings) and is read with the
same repairs as before. A file from a newer version is refused with a :class:`ConfigError`.

Missing numbers are ``None`` here (JSON ``null``), never NaN: NaN is not JSON and is not equal
to itself, so a context holding one could not round-trip. The report shows both as a dash.

Figures are referenced by file (:class:`FigureRef`); the PNG bytes are attached only for
rendering (``FigureRef.png``, never written, not part of equality).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from forecast._report_past import AlertScore, CalibrationLine
from forecast._report_values import (  # noqa: F401 (json_values is public here too)
    _bool, _int, _level, _num, _records, _Row, _str, json_values,
)
from forecast.exceptions import ConfigError

__all__ = ["SCHEMA_VERSION", "ReportContext", "Headline", "HeadlineRow", "Alert", "Total", "Effect",
           "ComparisonRow", "Comparison", "SelectionRow", "Source", "UnknownProvince", "DataSummary",
           "Method", "FigureRef", "CalibrationLine", "AlertScore"]

#: Version of the ``report_context.json`` layout this module writes.
SCHEMA_VERSION = 2


# --------------------------------------------------------------------------- sections

@dataclass(frozen=True)
class HeadlineRow(_Row):
    """One series in the first forecast period."""

    country: str
    province: str
    event_type: str
    mean: float | None
    lo: int | None
    hi: int | None
    level: int | float
    p_ge: dict[int, float | None]  # threshold k -> P(Y >= k)
    model: str
    fallback: str = ""

    _CONVERT = {"mean": _num, "lo": _int, "hi": _int, "level": _level,
                # JSON keys are strings; thresholds are ints
                "p_ge": lambda d: {int(k): _num(v) for k, v in d.items()}}


@dataclass(frozen=True)
class Headline:
    """The summary: the first forecast period, every series, and the five highest risks."""

    period: str
    rows: tuple[HeadlineRow, ...]
    top_risks: tuple[HeadlineRow, ...]
    threshold: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Headline:
        return cls(period=_str(d["period"]), rows=tuple(map(HeadlineRow.from_dict, d["rows"])),
                   top_risks=tuple(map(HeadlineRow.from_dict, d["top_risks"])), threshold=int(d["threshold"]))

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "rows": [r.to_dict() for r in self.rows],
                "top_risks": [r.to_dict() for r in self.top_risks], "threshold": self.threshold}


@dataclass(frozen=True)
class Alert(_Row):
    """A series and period whose chance of ``k`` or more reaches the alert probability."""

    country: str
    province: str
    event_type: str
    period: str
    k: int
    probability: float | None
    model: str

    _CONVERT = {"k": int, "probability": _num}


@dataclass(frozen=True)
class Total(_Row):
    """A country's (or all areas') total of one event type over the horizon (a row of
    ``totals_horizon.csv``: ``mean`` is the exact sum of the series' means).

    ``kind`` (``country`` or ``area``), ``start``, ``end`` and ``p_ge`` (threshold k ->
    P(total >= k)) were added later: contexts written before them read with the defaults.
    """

    scope: str
    event_type: str
    horizon_label: str
    mean: float | None
    lo: int | None
    hi: int | None
    level: int | float
    kind: str = ""
    start: str = ""
    end: str = ""
    p_ge: dict[int, float | None] = field(default_factory=dict)

    _CONVERT = {"mean": _num, "lo": _int, "hi": _int, "level": _level,
                "p_ge": lambda d: {int(k): _num(v) for k, v in (d or {}).items()}}


@dataclass(frozen=True)
class Effect(_Row):
    """One intervention term of one series, as a rate ratio (see :func:`forecast.interventions.effects`)."""

    unique_id: str
    term: str
    kind: str
    date: str
    estimate: float | None
    std_error: float | None
    rate_ratio: float | None
    lo: float | None
    hi: float | None
    p_value: float | None
    fallback: str
    model: str = ""
    series: str = ""
    event_type: str = ""
    p_holm: float | None = None  # p_value adjusted for every effect of the run (Holm); absent in old contexts

    _CONVERT = {k: _num for k in ("estimate", "std_error", "rate_ratio", "lo", "hi", "p_value", "p_holm")}


@dataclass(frozen=True)
class ComparisonRow(_Row):
    """A model against the baseline, over all horizons (``h`` None) or at one horizon."""

    model: str
    metric: str
    score: float | None
    baseline_score: float | None
    n: int | None
    n_excluded: int | None
    skill: float | None
    mean_diff: float | None
    p_value: float | None
    significant: bool | None
    verdict: str
    h: int | None = None
    n_impossible: int | None = None  # forecasts among the n cells that gave the outcome p < 1e-12

    _CONVERT = {"score": _num, "baseline_score": _num, "n": _int, "n_excluded": _int, "skill": _num,
                "mean_diff": _num, "p_value": _num, "significant": _bool, "h": _int, "n_impossible": _int}

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if self.h is None:  # the all-horizons rows have no h column
            del d["h"]
        return d


@dataclass(frozen=True)
class Comparison:
    """The model comparison table and how to read it."""

    baseline: str
    metric: str
    rows: tuple[ComparisonRow, ...]
    note: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Comparison:
        return cls(baseline=_str(d["baseline"]), metric=_str(d["metric"]),
                   rows=tuple(map(ComparisonRow.from_dict, _records(d["rows"]))), note=_str(d["note"]))

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "metric": self.metric, "rows": [r.to_dict() for r in self.rows],
                "note": self.note}


@dataclass(frozen=True)
class SelectionRow(_Row):
    """Which model forecasts a series, and why."""

    unique_id: str
    model: str
    reason: str


@dataclass(frozen=True)
class Source(_Row):
    """An events file the run read."""

    file: str
    schema: str
    rows_read: int | None
    rows_kept: int | None
    sha256: str

    _CONVERT = {"rows_read": _int, "rows_kept": _int}


@dataclass(frozen=True)
class UnknownProvince(_Row):
    """A province name of the events file that the gazetteer does not know."""

    country: str
    province: str
    n_rows: int | None

    _CONVERT = {"n_rows": _int}


@dataclass(frozen=True)
class DataSummary:
    """Where the data came from, what it covers, what was dropped, what the run warned about."""

    sources: tuple[Source, ...]
    coverage: dict[str, tuple[str, ...]]  # country -> (first, last) period
    citation: str
    dropped: dict[str, int]  # reason -> rows
    unknown_provinces: tuple[UnknownProvince, ...]
    warnings: tuple[str, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataSummary:
        return cls(sources=tuple(map(Source.from_dict, d["sources"])),
                   coverage={str(c): tuple(map(_str, span)) for c, span in (d.get("coverage") or {}).items()},
                   citation=_str(d["citation"]), dropped={str(k): int(v) for k, v in (d.get("dropped") or {}).items()},
                   unknown_provinces=tuple(map(UnknownProvince.from_dict, _records(d.get("unknown_provinces")))),
                   warnings=tuple(map(_str, d.get("warnings") or ())))

    def to_dict(self) -> dict[str, Any]:
        return {"sources": [s.to_dict() for s in self.sources],
                "coverage": {c: list(span) for c, span in self.coverage.items()}, "citation": self.citation,
                "dropped": dict(self.dropped), "unknown_provinces": [u.to_dict() for u in self.unknown_provinces],
                "warnings": list(self.warnings)}


@dataclass(frozen=True)
class Method(_Row):
    """A candidate model: its name in the run, what it is, its equation and its spec (TOML)."""

    name: str
    description: str
    equation: str
    spec: str


@dataclass(frozen=True)
class FigureRef(_Row):
    """A figure of the report: its PNG ``file`` relative to the run folder.

    ``png`` holds the file's bytes once loaded for rendering; it is never written to JSON and
    does not take part in equality.
    """

    id: str
    title: str
    caption: str
    file: str
    png: bytes | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FigureRef:
        return cls(id=_str(d["id"]), title=_str(d["title"]), caption=_str(d["caption"]), file=_str(d["file"]))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "caption": self.caption, "file": self.file}


# --------------------------------------------------------------------------- the whole context

@dataclass(frozen=True)
class ReportContext:
    """Everything the report of a run shows (``report_context.json``)."""

    title: str
    subtitle: str
    generated: str  # when the run was made (UTC), as written in run.json
    as_of: str
    simulated: bool  # the data are simulated: the report carries a banner
    headline: Headline
    alerts: tuple[Alert, ...]
    alert_rule: str
    totals: tuple[Total, ...]
    figures: tuple[FigureRef, ...]
    comparison: Comparison
    selection: tuple[SelectionRow, ...]
    data: DataSummary
    methods: tuple[Method, ...]
    manifest: dict[str, Any]  # run.json, as JSON values
    effects: tuple[Effect, ...] = ()  # empty: no model with interventions (the section is dropped)
    # Checked against the past (absent from contexts written before them: nothing is shown).
    calibration: tuple[CalibrationLine, ...] = ()
    past_alerts: tuple[AlertScore, ...] = ()
    past_alerts_note: str = ""  # the naive rule in words
    #: banner lines about the data (partial, stale, coverage gaps); absent from older contexts
    data_notes: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION

    # ----------------------------------------------------------------------- dict / JSON

    def to_dict(self) -> dict[str, Any]:
        """JSON-shaped dict (threshold keys still ints; :meth:`to_json` writes them as strings)."""
        out: dict[str, Any] = {
            "schema_version": self.schema_version, "title": self.title, "subtitle": self.subtitle,
            "generated": self.generated, "as_of": self.as_of, "simulated": self.simulated,
            "headline": self.headline.to_dict(), "alerts": [a.to_dict() for a in self.alerts],
            "alert_rule": self.alert_rule, "totals": [t.to_dict() for t in self.totals]}
        if self.effects:
            out["effects"] = [e.to_dict() for e in self.effects]
        if self.calibration:
            out["calibration"] = [c.to_dict() for c in self.calibration]
        if self.data_notes:
            out["data_notes"] = list(self.data_notes)
        if self.past_alerts:
            out["past_alerts"] = [a.to_dict() for a in self.past_alerts]
            out["past_alerts_note"] = self.past_alerts_note
        out |= {"figures": [f.to_dict() for f in self.figures], "comparison": self.comparison.to_dict(),
                "selection": [s.to_dict() for s in self.selection], "data": self.data.to_dict(),
                "methods": [m.to_dict() for m in self.methods], "manifest": self.manifest}
        return out

    def to_json(self) -> str:
        """The text of ``report_context.json`` (strict JSON: no NaN)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def render_dict(self) -> dict[str, Any]:
        """The mapping :func:`forecast.report.render_report` lays out: figures carry their ``png`` bytes."""
        out = self.to_dict()
        out["figures"] = [{"id": f.id, "title": f.title, "caption": f.caption, "png": f.png} for f in self.figures]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReportContext:
        """Read a context dict of schema 2, or of schema 1 (no ``schema_version``: today's repairs).

        Raises
        ------
        ConfigError
            If it was written by a newer incident-forecast, or is not a report context.
        """
        if not isinstance(d, Mapping):
            raise ConfigError(f"report_context.json holds a JSON {type(d).__name__}, not a report context; "
                              "rerun the forecast.")
        version = d.get("schema_version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ConfigError(f"report_context.json has an invalid schema_version {version!r}; rerun the forecast.")
        if version > SCHEMA_VERSION:
            raise ConfigError(f"report_context.json was written by a newer incident-forecast (schema {version}); "
                              f"upgrade incident-forecast (this version reads schema {SCHEMA_VERSION} and older).")
        # Schema 1 differs only in what JSON made of it: NaN for missing numbers (now None) and string
        # threshold keys (the row converters turn them back into ints) — one reader serves both.
        try:
            return cls(
                title=_str(d["title"]), subtitle=_str(d["subtitle"]), generated=_str(d["generated"]),
                as_of=_str(d["as_of"]), simulated=bool(d["simulated"]), headline=Headline.from_dict(d["headline"]),
                alerts=tuple(map(Alert.from_dict, _records(d["alerts"]))), alert_rule=_str(d["alert_rule"]),
                totals=tuple(map(Total.from_dict, _records(d["totals"]))),
                effects=tuple(map(Effect.from_dict, _records(d.get("effects")))),
                calibration=tuple(map(CalibrationLine.from_dict, _records(d.get("calibration")))),
                past_alerts=tuple(map(AlertScore.from_dict, _records(d.get("past_alerts")))),
                past_alerts_note=_str(d.get("past_alerts_note")),
                data_notes=tuple(map(_str, d.get("data_notes") or ())),
                figures=tuple(map(FigureRef.from_dict, d["figures"])), comparison=Comparison.from_dict(d["comparison"]),
                selection=tuple(map(SelectionRow.from_dict, _records(d["selection"]))),
                data=DataSummary.from_dict(d["data"]), methods=tuple(map(Method.from_dict, d["methods"])),
                manifest=json_values(d["manifest"]))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            what = f"missing key {e}" if isinstance(e, KeyError) else str(e)
            raise ConfigError(f"report_context.json is not a valid report context ({what}); rerun the forecast.") \
                from None

    @classmethod
    def from_json(cls, text: str) -> ReportContext:
        """Read the text of ``report_context.json`` (see :meth:`from_dict`)."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"report_context.json is not valid JSON ({e}); rerun the forecast.") from None
        return cls.from_dict(d)

    def with_figure_bytes(self, pngs: Mapping[str, bytes]) -> ReportContext:
        """A copy whose figures carry their PNG bytes (``pngs``: file -> bytes)."""
        return replace(self, figures=tuple(replace(f, png=pngs[f.file]) for f in self.figures))
