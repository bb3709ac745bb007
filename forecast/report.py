"""The run report: one self-contained HTML file (Jinja2, autoescaped).

The report is read by people who will not open Python, so every number is
formatted here, in words where it helps ("41% chance of 5 or more"), and the
file carries everything it shows: the CSS is inlined and figures are PNG data
URIs. It loads nothing from the network and runs no JavaScript; a
Content-Security-Policy in the page forbids both.

Names that come from data files (provinces, event types, model names,
warnings) are never markup: the template autoescapes every value, and no
value is marked safe. Figures are embedded only after checking that their
bytes are PNG.

Every section of the context is optional: an absent key drops the section
(and its table-of-contents entry); an empty list shows a short "none" line
where that is informative (no alerts is news).
"""
from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import jinja2

from forecast._report_view import (  # noqa: F401 (formatters and png_data_uri: re-exported)
    PNG_SIGNATURE,
    _alerts,
    _comparison,
    _data,
    _date_label,
    _effect,
    _effects,
    _headline,
    _records,
    _s,
    _totals,
    fmt_count,
    fmt_int,
    fmt_p,
    fmt_pct,
    fmt_range,
    fmt_score,
    fmt_signed_pct,
    month_label,
    plural,
    png_data_uri,
)
from forecast._report_figs import _figures
from forecast._report_past import calibration_view, past_alerts_view
from forecast.report_context import ReportContext

__all__ = ["render_report", "write_report", "png_data_uri", "MAX_REPORT_BYTES", "SECTION_TITLES"]

#: Default size limit of a written report (bytes); figures dominate the size.
MAX_REPORT_BYTES = 5_000_000

#: Section ids and their headings, in report order.
SECTION_TITLES: dict[str, str] = {
    "summary": "Summary",
    "alerts": "Alerts",
    "totals": "Totals over the horizon",
    "effects": "Intervention effects",
    "figures": "Figures",
    "comparison": "Model comparison",
    "selection": "Model selection",
    "data": "Data",
    "methods": "Methods",
    "reproducibility": "Reproducibility",
}

#: Short labels for the table of contents (one line on a laptop screen).
TOC_LABELS: dict[str, str] = {
    "summary": "Summary", "alerts": "Alerts", "totals": "Totals", "effects": "Effects", "figures": "Figures",
    "comparison": "Model comparison", "selection": "Model selection", "data": "Data", "methods": "Methods",
    "reproducibility": "Reproducibility",
}


# --------------------------------------------------------------------------- public API


def render_report(context: ReportContext | Mapping[str, Any]) -> str:
    """Render the run report as HTML text.

    Parameters
    ----------
    context : ReportContext or mapping
        A run's :class:`~forecast.report_context.ReportContext` (its figures carrying their
        PNG bytes), or a mapping with the same keys (``title``, ``headline``, ``alerts``,
        ``totals``, ``effects``, ``figures`` with ``png``, ``comparison``, ``selection``,
        ``data``, ``methods``, ``manifest``, ...); in a mapping all are optional and lists
        of rows may also be pandas DataFrames.

    Returns
    -------
    str : a complete HTML document with no external resources.
    """
    view = _build_view(_as_mapping(context))
    return _environment().get_template("report.html.j2").render(**view)


def write_report(context: ReportContext | Mapping[str, Any], path: str | os.PathLike, *,
                 max_bytes: int = MAX_REPORT_BYTES) -> Path:
    """Render and write the report (UTF-8), atomically.

    Raises ``ValueError`` (and writes nothing) when the file would exceed
    ``max_bytes``.
    """
    path = Path(path)
    context = _as_mapping(context)
    data = render_report(context).encode("utf-8")
    if len(data) > max_bytes:
        figs = sum(len(f.get("png") or b"") for f in _records(context.get("figures")))
        raise ValueError(
            f"The report would be {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit "
            f"(figures: {figs * 4 / 3 / 1e6:.1f} MB encoded). Lower the figure dpi, or show fewer figures.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _as_mapping(context: ReportContext | Mapping[str, Any] | None) -> dict:
    """The view reads a mapping: a typed context is converted here, at the edge."""
    if isinstance(context, ReportContext):
        return context.render_dict()
    return dict(context or {})


# --------------------------------------------------------------------------- environment

@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    # PackageLoader finds the templates in a wheel, an sdist install or an editable checkout.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("forecast", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a typo in the template fails loudly, in tests
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# --------------------------------------------------------------------------- view model (sections: _report_view)

def _attach_past(figs: list[dict], ctx: Mapping[str, Any]) -> None:
    """Calibration in words after the PIT figure, the scored past alerts after the
    reliability figure (each after the last figure when its figure is absent)."""
    for f in figs:
        f["calibration"], f["past_alerts"] = [], None
    ids = [f["id"] for f in figs]

    def at(*names: str) -> dict:
        return figs[next((ids.index(n) for n in names if n in ids), len(figs) - 1)]

    if ctx.get("calibration"):
        at("fig-pit")["calibration"] = calibration_view(_records(ctx["calibration"]))
    if ctx.get("past_alerts"):
        at("fig-reliability", "fig-pit")["past_alerts"] = past_alerts_view(
            _records(ctx["past_alerts"]), _s(ctx.get("alert_rule")), _s(ctx.get("past_alerts_note")))


def _build_view(ctx: dict) -> dict:
    from forecast._version import __version__

    sec: dict[str, Any] = {}
    if ctx.get("headline") is not None:
        sec["summary"] = _headline(ctx["headline"])
    if ctx.get("alerts") is not None:
        rows = _alerts(_records(ctx["alerts"]))
        sec["alerts"] = {"rows": rows, "rule": _s(ctx.get("alert_rule")),
                         "period_header": "Periods" if any(r["n_periods"] > 1 for r in rows) else "Period"}
    if ctx.get("totals") is not None:
        sec["totals"] = _totals(_records(ctx["totals"]))
    figs = _figures(_records(ctx["figures"])) if ctx.get("figures") else []
    if ctx.get("effects"):  # the forest plot goes with its table, not into the figures section
        forest = next((f for f in figs if f["id"] == "fig-effects"), None)
        figs = [f for f in figs if f is not forest]
        sec["effects"] = _effects(_records(ctx["effects"]), forest)
    if figs:
        sec["figures"] = figs
        _attach_past(sec["figures"], ctx)
    if ctx.get("comparison") is not None:
        sec["comparison"] = _comparison(ctx["comparison"])
    if ctx.get("selection") is not None:
        sec["selection"] = [{"unique_id": _s(r.get("unique_id")), "model": _s(r.get("model")),
                             "reason": _s(r.get("reason"))} for r in _records(ctx["selection"])]
    if ctx.get("data") is not None:
        sec["data"] = _data(ctx["data"])
    if ctx.get("methods"):
        sec["methods"] = [{"name": _s(m.get("name")), "description": _s(m.get("description")),
                           "equation": _s(m.get("equation")), "spec": _s(m.get("spec"))}
                          for m in _records(ctx["methods"])]
    if ctx.get("manifest") is not None:
        sec["reproducibility"] = json.dumps(ctx["manifest"], indent=2, ensure_ascii=False, default=str)
    title = _s(ctx.get("title")) or "Incident forecast report"
    return {
        "title": title,
        "subtitle": _s(ctx.get("subtitle")),
        "generated": _s(ctx.get("generated")),
        "as_of": _date_label(ctx.get("as_of")),
        "simulated": bool(ctx.get("simulated")),
        "data_notes": [_s(n) for n in (ctx.get("data_notes") or ())],
        "toc": [(sid, TOC_LABELS[sid]) for sid in SECTION_TITLES if sid in sec],
        "titles": SECTION_TITLES,
        "s": sec,
        "version": __version__,
    }
