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

import base64
import json
import math
import os
import re
import tempfile
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import jinja2

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

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_URI_PREFIX = "data:image/png;base64,"
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_DASH = "\u2013"
_MINUS = "\u2212"
_METRICS = {
    "rps": "ranked probability score (RPS)",
    "log": "log score",
    "logs": "log score",
    "log_score": "log score",
    "dss": "Dawid\u2013Sebastiani score",
    "brier": "Brier score",
    "interval": "interval score",
    "interval_score": "interval score",
    "mae": "mean absolute error (MAE)",
    "rmse": "root mean squared error (RMSE)",
    "crps": "continuous ranked probability score (CRPS)",
}


# --------------------------------------------------------------------------- public API

def png_data_uri(png_bytes: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes; ``ValueError`` if they are not a PNG."""
    if not isinstance(png_bytes, (bytes, bytearray, memoryview)):
        raise ValueError(f"expected PNG bytes, got {type(png_bytes).__name__}")
    png_bytes = bytes(png_bytes)
    if not png_bytes.startswith(PNG_SIGNATURE):
        raise ValueError("figure bytes are not a PNG image (missing PNG signature)")
    return _PNG_URI_PREFIX + base64.b64encode(png_bytes).decode("ascii")


def render_report(context: Mapping[str, Any]) -> str:
    """Render the run report as HTML text.

    Parameters
    ----------
    context : mapping with the keys described in the module's contract
        (``title``, ``headline``, ``alerts``, ``totals``, ``effects``, ``figures``,
        ``comparison``, ``selection``, ``data``, ``methods``, ``manifest``, ...);
        all optional. Lists of rows may also be pandas DataFrames.

    Returns
    -------
    str : a complete HTML document with no external resources.
    """
    view = _build_view(dict(context or {}))
    return _environment().get_template("report.html.j2").render(**view)


def write_report(context: Mapping[str, Any], path: str | os.PathLike, *,
                 max_bytes: int = MAX_REPORT_BYTES) -> Path:
    """Render and write the report (UTF-8), atomically.

    Raises ``ValueError`` (and writes nothing) when the file would exceed
    ``max_bytes``.
    """
    path = Path(path)
    data = render_report(context).encode("utf-8")
    if len(data) > max_bytes:
        figs = sum(len(f.get("png") or b"") for f in _records((context or {}).get("figures")))
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


# --------------------------------------------------------------------------- formatting

def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def fmt_count(x: Any, *, strip: bool = False) -> str:
    """Expected counts: one decimal below 10, whole numbers above."""
    v = _num(x)
    if v is None:
        return "\u2014"
    if abs(v) >= 10:
        return f"{v:,.0f}"
    s = f"{v:.1f}"
    return s[:-2] if strip and s.endswith(".0") else s


def fmt_int(x: Any) -> str:
    v = _num(x)
    return "\u2014" if v is None else f"{round(v):,}"


def fmt_range(lo: Any, hi: Any) -> str:
    a, b = fmt_int(lo), fmt_int(hi)
    return a if a == b else f"{a}{_DASH}{b}"


def fmt_pct(p: Any) -> str:
    """Probabilities as whole percentages; never rounds a possibility to 0% or 100%."""
    v = _num(p)
    if v is None:
        return "\u2014"
    if 0 < v < 0.005:
        return "<1%"
    if 0.995 < v < 1:
        return ">99%"
    return f"{v * 100:.0f}%"


def fmt_signed_pct(x: Any) -> str:
    v = _num(x)
    if v is None:
        return "\u2014"
    s = f"{abs(v) * 100:.0f}%"
    return s if s == "0%" else (f"+{s}" if v > 0 else f"{_MINUS}{s}")


def fmt_p(p: Any) -> str:
    v = _num(p)
    if v is None:
        return "\u2014"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def fmt_score(x: Any) -> str:
    v = _num(x)
    return "\u2014" if v is None else f"{v:.4g}"


def month_label(s: Any) -> str:
    """``2026-01`` or ``2026-01-01`` -> ``January 2026``; anything else as given."""
    text = "" if s is None else str(s)
    m = re.fullmatch(r"(\d{4})-(\d{2})(?:-01)?(?:[ T]00:00(?::00)?)?", text.strip())
    if m and 1 <= int(m.group(2)) <= 12:
        return date(int(m.group(1)), int(m.group(2)), 1).strftime("%B %Y")
    return text


def _date_label(s: Any) -> str:
    text = "" if s is None else str(s)
    return text[:10] if re.match(r"\d{4}-\d{2}-\d{2}", text) else text


def plural(event_type: Any, n: str = "") -> str:
    """``seizure`` -> ``seizures`` (singular when ``n == "1"``)."""
    word = str(event_type).replace("_", " ").strip() or "event"
    if n == "1" or word.endswith("s"):
        return word
    if re.search(r"(sh|ch|x|z)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


# --------------------------------------------------------------------------- view model

def _records(x: Any) -> list[dict]:
    if x is None:
        return []
    if hasattr(x, "to_dict") and hasattr(x, "columns"):
        return x.to_dict("records")
    return [dict(r) for r in x]


def _s(x: Any) -> str:
    """Text of a value for display (None and NaN become empty)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return str(x)


def _p_ge(row: Mapping) -> dict[int, float]:
    out: dict[int, float] = {}
    for k, v in (row.get("p_ge") or {}).items():
        try:
            out[int(k)] = v
        except (TypeError, ValueError):
            continue
    return out


def _place(row: Mapping) -> str:
    prov, country = _s(row.get("province")), _s(row.get("country"))
    return f"{prov}, {country}" if prov and country else (prov or country or _s(row.get("unique_id")))


def _headline(h: Mapping) -> dict:
    rows = _records(h.get("rows"))
    ks = sorted({k for r in rows for k in _p_ge(r)})
    k = h.get("threshold")
    k = int(k) if _num(k) is not None else (ks[-1] if ks else None)
    period = _s(h.get("period"))
    levels = {r.get("level") for r in rows if r.get("level") is not None}
    one_level = next(iter(levels)) if len(levels) == 1 else None
    table = []
    for r in rows:
        p = _p_ge(r)
        rng = fmt_range(r.get("lo"), r.get("hi"))
        if one_level is None and r.get("level") is not None:
            rng += f" ({fmt_int(r['level'])}%)"
        fb = _s(r.get("fallback"))
        table.append({"country": _s(r.get("country")), "province": _s(r.get("province")),
                      "event_type": _s(r.get("event_type")), "mean": fmt_count(r.get("mean")), "range": rng,
                      "p": [fmt_pct(p.get(j)) for j in ks], "model": _s(r.get("model")),
                      "fallback": fb if fb and fb != _s(r.get("model")) else ""})
    top = _records(h.get("top_risks"))
    if not top and k is not None:
        top = sorted(rows, key=lambda r: -(_num(_p_ge(r).get(k)) or 0))[:5]
    sentences = []
    for r in top:
        n = fmt_count(r.get("mean"), strip=True)
        when = month_label(r.get("period") or period)
        s = f"{_place(r)}: {n} {plural(r.get('event_type', 'event'), n)} expected"
        s += f" in {when}" if when else ""
        if r.get("lo") is not None and r.get("hi") is not None:
            lvl = f"{fmt_int(r['level'])}% range" if r.get("level") is not None else "range"
            s += f" ({lvl} {fmt_range(r['lo'], r['hi'])})"
        pk = _p_ge(r).get(k) if k is not None else None
        s += f"; {fmt_pct(pk)} chance of {k} or more." if _num(pk) is not None else "."
        sentences.append(s)
    return {"period": month_label(period), "threshold": k, "ks": ks, "rows": table, "sentences": sentences,
            "range_header": f"{fmt_int(one_level)}% range" if one_level is not None else "Range"}


def _alerts(rows: Iterable[Mapping]) -> list[dict]:
    return [{"country": _s(r.get("country")), "province": _s(r.get("province")),
             "event_type": _s(r.get("event_type")), "period": month_label(r.get("period")),
             "k": f"{fmt_int(r.get('k'))} or more" if r.get("k") is not None else "",
             "probability": fmt_pct(r.get("probability")), "model": _s(r.get("model"))} for r in rows]


def _totals(rows: Iterable[Mapping]) -> list[dict]:
    out = []
    for r in rows:
        rng = fmt_range(r.get("lo"), r.get("hi")) if r.get("lo") is not None else "\u2014"
        if r.get("level") is not None and rng != "\u2014":
            rng += f" ({fmt_int(r['level'])}%)"
        out.append({"scope": _s(r.get("scope")), "event_type": _s(r.get("event_type")),
                    "horizon": _s(r.get("horizon_label")), "mean": fmt_count(r.get("mean")), "range": rng})
    return out


def _effect(r: Mapping) -> dict:
    rr, lo, hi = _num(r.get("rate_ratio")), _num(r.get("lo")), _num(r.get("hi"))
    level = fmt_int(r.get("level", 95))
    series = _s(r.get("series"))
    etype = _s(r.get("event_type")) or (series.split("/")[-1] if series.count("/") == 2 else "")
    subject = f"the {etype.replace('_', ' ')} rate" if etype else "the rate"
    when = month_label(r.get("date"))
    text = f"rate ratio {fmt_score(rr) if rr is None else f'{rr:.2f}'}"
    if lo is not None and hi is not None:
        text += f" ({level}% interval {lo:.2f}{_DASH}{hi:.2f})"
    if rr is not None:
        change = abs(rr - 1) * 100
        if round(change) == 0:
            text += f": {subject} did not change"
        else:
            text += f": {subject} {'fell' if rr < 1 else 'rose'} by {change:.0f}%"
        text += f" after {when}" if when else ""
    text += "."
    if lo is not None and hi is not None and lo <= 1 <= hi:
        text += " The interval includes no change, so this may be chance."
    return {"series": series, "term": _s(r.get("term")), "text": text, "p_value": fmt_p(r.get("p_value")),
            "fallback": _s(r.get("fallback"))}


def _significance(sig: Any) -> str:
    if sig is None or (isinstance(sig, float) and math.isnan(sig)):
        return "not tested"
    return "Yes \u2014 unlikely to be chance" if bool(sig) else "No \u2014 could be chance"


def _comparison(c: Mapping) -> dict:
    rows = _records(c.get("rows"))
    has_h = any(r.get("h") is not None for r in rows)
    metric = _s(c.get("metric"))
    return {"baseline": _s(c.get("baseline")), "metric": _METRICS.get(metric.lower(), metric),
            "note": _s(c.get("note")), "has_h": has_h,
            "rows": [{"model": _s(r.get("model")), "h": fmt_int(r.get("h")) if r.get("h") is not None else "",
                      "score": fmt_score(r.get("score")), "baseline_score": fmt_score(r.get("baseline_score")),
                      "skill": fmt_signed_pct(r.get("skill")), "p_value": fmt_p(r.get("p_value")),
                      "significant": _significance(r.get("significant")), "verdict": _s(r.get("verdict"))}
                     for r in rows]}


def _data(d: Mapping) -> dict:
    coverage = [{"country": _s(c), "first": month_label(span[0]) if span else "",
                 "last": month_label(span[-1]) if span else ""}
                for c, span in (d.get("coverage") or {}).items()]
    sources = [{"file": _s(s.get("file")), "schema": _s(s.get("schema")),
                "rows_read": fmt_int(s.get("rows_read")), "rows_kept": fmt_int(s.get("rows_kept")),
                "sha256": _s(s.get("sha256"))} for s in _records(d.get("sources"))]
    dropped = [{"reason": _s(k).replace("_", " "), "n": fmt_int(v)} for k, v in (d.get("dropped") or {}).items()]
    unknown = [{"country": _s(u.get("country")), "province": _s(u.get("province")), "n_rows": fmt_int(u.get("n_rows"))}
               for u in _records(d.get("unknown_provinces"))]
    return {"coverage": coverage, "sources": sources, "citation": _s(d.get("citation")), "dropped": dropped,
            "has_dropped": "dropped" in d, "unknown": unknown, "has_unknown": "unknown_provinces" in d,
            "warnings": [_s(w) for w in d.get("warnings") or []], "has_warnings": "warnings" in d}


def _figures(figs: Iterable[Mapping]) -> list[dict]:
    out = []
    for i, f in enumerate(figs):
        png = f.get("png")
        if isinstance(png, str):
            # an already encoded data URI is accepted only in the exact form we would build
            if not (png.startswith(_PNG_URI_PREFIX) and _BASE64.fullmatch(png[len(_PNG_URI_PREFIX):])):
                raise ValueError(f"figure {f.get('id', i)!r}: png must be PNG bytes or a PNG data URI")
            uri = png
        else:
            try:
                uri = png_data_uri(png)
            except ValueError as e:
                raise ValueError(f"figure {f.get('id', i)!r}: {e}") from None
        fid = re.sub(r"[^A-Za-z0-9_-]", "-", _s(f.get("id")) or str(i))
        out.append({"id": f"fig-{fid}", "title": _s(f.get("title")), "caption": _s(f.get("caption")), "src": uri})
    return out


def _build_view(ctx: dict) -> dict:
    from forecast._version import __version__

    sec: dict[str, Any] = {}
    if ctx.get("headline") is not None:
        sec["summary"] = _headline(ctx["headline"])
    if ctx.get("alerts") is not None:
        sec["alerts"] = {"rows": _alerts(_records(ctx["alerts"])), "rule": _s(ctx.get("alert_rule"))}
    if ctx.get("totals") is not None:
        sec["totals"] = _totals(_records(ctx["totals"]))
    if ctx.get("effects"):
        sec["effects"] = [_effect(r) for r in _records(ctx["effects"])]
    if ctx.get("figures"):
        sec["figures"] = _figures(_records(ctx["figures"]))
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
        "toc": [(sid, TOC_LABELS[sid]) for sid in SECTION_TITLES if sid in sec],
        "titles": SECTION_TITLES,
        "s": sec,
        "version": __version__,
    }
