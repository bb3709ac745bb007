"""The report's view: every number formatted for people, every section built as plain data.

:func:`forecast.report.render_report` hands the context to these helpers and the Jinja
template only lays out what they return. Names from data files stay plain strings (the
template autoescapes them); figures are accepted only as PNG bytes or a PNG data URI.
"""
from __future__ import annotations

import base64
import math
import re
from datetime import date
from typing import Any, Iterable, Mapping

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
def png_data_uri(png_bytes: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes; ``ValueError`` if they are not a PNG."""
    if not isinstance(png_bytes, (bytes, bytearray, memoryview)):
        raise ValueError(f"expected PNG bytes, got {type(png_bytes).__name__}")
    png_bytes = bytes(png_bytes)
    if not png_bytes.startswith(PNG_SIGNATURE):
        raise ValueError("figure bytes are not a PNG image (missing PNG signature)")
    return _PNG_URI_PREFIX + base64.b64encode(png_bytes).decode("ascii")


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
    if math.isinf(v):
        return "+\u221e" if v > 0 else f"{_MINUS}\u221e"
    s = f"{abs(v) * 100:.0f}%"
    return s if s == "0%" else (f"+{s}" if v > 0 else f"{_MINUS}{s}")


def fmt_p(p: Any) -> str:
    v = _num(p)
    if v is None:
        return "\u2014"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def fmt_score(x: Any, n_impossible: Any = None) -> str:
    """A mean score to 4 significant digits; an infinite one as "∞ (k impossible outcomes)"."""
    v = _num(x)
    if v is None:
        return "\u2014"
    if math.isinf(v):
        k = _num(n_impossible)
        note = f" ({k:,.0f} impossible outcome{'s' if k != 1 else ''})" if k else ""
        return ("\u221e" if v > 0 else f"{_MINUS}\u221e") + note
    return f"{v:.4g}"


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


# --------------------------------------------------------------------------- sections

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
    """One line per series, threshold and model: an alert repeated over several periods lists
    them ("Jan 2026, Feb 2026") with the range of its chances."""
    groups: dict[tuple, dict] = {}
    for r in rows:
        key = tuple(_s(r.get(c)) for c in ("country", "province", "event_type", "k", "model"))
        g = groups.setdefault(key, {"row": r, "periods": [], "p": []})
        g["periods"].append(month_label(r.get("period")))
        g["p"].append(_num(r.get("probability")))
    out = []
    for g in groups.values():
        r, ps = g["row"], [p for p in g["p"] if p is not None]
        lo, hi = (fmt_pct(min(ps)), fmt_pct(max(ps))) if ps else ("\u2014", "\u2014")
        out.append({"country": _s(r.get("country")), "province": _s(r.get("province")),
                    "event_type": _s(r.get("event_type")), "period": ", ".join(g["periods"]),
                    "n_periods": len(g["periods"]),
                    "k": f"{fmt_int(r.get('k'))} or more" if r.get("k") is not None else "",
                    "probability": lo if lo == hi else f"{lo[:-1]}{_DASH}{hi}" if lo.endswith("%") and
                    lo[:-1].isdigit() else f"{lo}{_DASH}{hi}", "model": _s(r.get("model"))})
    return out


def _totals(rows: Iterable[Mapping]) -> list[dict]:
    """Rows of the totals table; ``chance`` lists P(total >= k) for the totals' thresholds
    (empty for contexts written before totals had them)."""
    out = []
    for r in rows:
        rng = fmt_range(r.get("lo"), r.get("hi")) if r.get("lo") is not None else "\u2014"
        if r.get("level") is not None and rng != "\u2014":
            rng += f" ({fmt_int(r['level'])}%)"
        chance = "; ".join(f"{fmt_int(k)}+: {fmt_pct(v)}" for k, v in sorted(_p_ge(r).items()))
        out.append({"scope": _s(r.get("scope")), "event_type": _s(r.get("event_type")),
                    "horizon": _s(r.get("horizon_label")), "mean": fmt_count(r.get("mean")), "range": rng,
                    "chance": chance})
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


def _effects(rows: list[Mapping], figure: dict | None = None) -> dict:
    """The effects section: one table (series, effect, rate ratio, interval, p, Holm p) beside the
    forest plot; terms without an estimate are listed once, not as empty rows."""
    def name(r: Mapping) -> str:  # one series per event type: "Balkh (Afghanistan) · clash"
        etype = _s(r.get("event_type")).replace("_", " ")
        return " \u00b7 ".join(filter(None, [_s(r.get("series")) or _s(r.get("unique_id")), etype]))

    done = [r for r in rows if _num(r.get("rate_ratio")) is not None]
    by_model = len({_s(r.get("model")) for r in rows}) > 1
    table = []
    for r in done:
        when = month_label(r.get("date"))
        kind = _s(r.get("kind"))
        table.append({"series": name(r), "model": _s(r.get("model")),
                      "effect": _s(r.get("term")) + (f" ({kind}, {when})" if kind and when else ""),
                      "rate_ratio": f"{_num(r['rate_ratio']):.2f}",
                      "interval": fmt_range_f(r.get("lo"), r.get("hi")),
                      "p_value": fmt_p(r.get("p_value")), "p_holm": fmt_p(r.get("p_holm")),
                      "fallback": _s(r.get("fallback"))})
    missing = sorted({f"{name(r)} ({_s(r.get('term'))})"
                      for r in rows if _num(r.get("rate_ratio")) is None})
    n = sum(_num(r.get("p_value")) is not None for r in rows)
    holm = any(_num(r.get("p_holm")) is not None for r in rows)
    note = (f"p-values adjusted for testing {n} effect{'s' if n != 1 else ''} (Holm): read the Holm p, "
            "not p, when asking whether any of these changes is real." if holm and n else "")
    ranked = sorted(done, key=lambda r: _num(r.get("p_value")) if _num(r.get("p_value")) is not None else 2.0)
    example = ""
    if ranked:
        r = ranked[0]
        example = f"Reading the strongest row ({name(r)}, {_s(r.get('term'))}): {_effect(r)['text']}"
    return {"rows": table, "by_model": by_model, "not_estimated": missing, "holm_note": note,
            "example": example, "figure": figure, "level": fmt_int(rows[0].get("level", 95)) if rows else "95"}


def fmt_range_f(lo: Any, hi: Any) -> str:
    """An interval of ratios, "0.30–0.56" ("—" when either end is missing)."""
    a, b = _num(lo), _num(hi)
    return "\u2014" if a is None or b is None else f"{a:.2f}{_DASH}{b:.2f}"


def _significance(sig: Any) -> str:
    if sig is None or (isinstance(sig, float) and math.isnan(sig)):
        return "not tested"
    return "Yes \u2014 unlikely to be chance" if bool(sig) else "No \u2014 could be chance"


#: What each comparison metric rewards, one sentence for the report.
_REWARDS = {
    "rps": "The ranked probability score (RPS) rewards forecasts whose whole distribution sits close to "
           "the count that happened (near misses cost little; it is in counts, like an absolute error).",
    "log": "The log score rewards giving the count that happened a high probability, and punishes "
           "without limit a forecast that called it impossible.",
}


def _comparison(c: Mapping) -> dict:
    """The comparison as one table per metric (each labelled, the baseline row first, then by
    score), all-horizons rows before per-horizon ones."""
    rows = _records(c.get("rows"))
    metric = _s(c.get("metric"))
    tables: dict[str, list] = {}
    for r in rows:
        tables.setdefault(_s(r.get("metric")) or metric, []).append(r)

    def order(r: Mapping) -> tuple:
        h = r.get("h")
        score = r.get("score")
        score = float("inf") if not isinstance(score, (int, float)) or math.isnan(score) else score
        return (h is not None, h or 0, r.get("verdict") != "baseline", score)

    out = []
    for m, rs in tables.items():
        rs = sorted(rs, key=order)
        name = _METRICS.get(m.lower(), m)
        out.append({"metric": name, "title": name[:1].upper() + name[1:], "rewards": _REWARDS.get(m.lower(), ""),
                    "has_h": any(r.get("h") is not None for r in rs),
                    "rows": [{"model": _s(r.get("model")) + (" (baseline)" if r.get("verdict") == "baseline" else ""),
                              "h": fmt_int(r.get("h")) if r.get("h") is not None else "all",
                              "score": fmt_score(r.get("score"), r.get("n_impossible")),
                              "baseline_score": fmt_score(r.get("baseline_score")),
                              "skill": fmt_signed_pct(r.get("skill")), "p_value": fmt_p(r.get("p_value")),
                              "significant": "\u2014" if r.get("verdict") == "baseline"
                              else _significance(r.get("significant")), "verdict": _s(r.get("verdict"))}
                             for r in rs]})
    return {"baseline": _s(c.get("baseline")), "metric": _METRICS.get(metric.lower(), metric),
            "note": _s(c.get("note")), "tables": out, "rows": [r for t in out for r in t["rows"]]}


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
