"""The HTML run report: structure, escaping, figures, formatting, size limit.

Fast tests, no browser (tests/test_report_browser.py drives Chromium).
"""
from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from forecast import report
from forecast.report import (
    MAX_REPORT_BYTES,
    SECTION_TITLES,
    fmt_pct,
    fmt_range,
    month_label,
    plural,
    png_data_uri,
    render_report,
    write_report,
)

EVIL = "<script>alert(1)</script>"
EVIL_ATTR = '" onerror="alert(2)'


def make_png(width: float = 4.0, height: float = 2.0, dpi: int = 60, seed: int = 0) -> bytes:
    """A small real figure drawn with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(width, height), dpi=dpi)
    x = np.arange(36)
    y = rng.poisson(3, size=36)
    ax.fill_between(x[24:], np.maximum(y[24:] - 2, 0), y[24:] + 3, color="#0072B2", alpha=0.25, lw=0)
    ax.plot(x, y, color="#0072B2", lw=1.2)
    ax.set_title("Monthly clashes")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def full_context(n_series: int = 4, png: bytes | None = None) -> dict:
    """A complete synthetic context, with hostile names in every data-driven field."""
    png = make_png() if png is None else png
    provinces = ["Khatlon", "Gorno-Badakhshan", EVIL, "Sughd"] + [f"Province {i}" for i in range(max(0, n_series - 4))]
    rows = []
    for i, prov in enumerate(provinces[:n_series]):
        rows.append({"country": "Tajikistan", "province": prov, "event_type": ["seizure", "clash"][i % 2],
                     "mean": round(6.2 * 0.8 ** i, 2), "lo": max(3 - i, 0), "hi": max(10 - i, 2),
                     "level": 80, "p_ge": {1: 0.93 if i < 8 else 0.35, 5: 0.41 - 0.05 * i if i < 8 else 0.001}, "model": "negbin_glm",
                     "fallback": "" if i else "poisson_glm"})
    top = sorted(rows, key=lambda r: -r["p_ge"][5])[:3]
    return {
        "title": "Border incident forecast",
        "subtitle": "Tajikistan\u2013Afghanistan border provinces",
        "generated": "2026-11-28 15:40 UTC",
        "as_of": "2025-12-31",
        "simulated": True,
        "headline": {"period": "2026-01", "rows": rows, "top_risks": top, "threshold": 5},
        "alerts": [{"country": "Tajikistan", "province": EVIL, "event_type": "clash", "period": "2026-02",
                    "k": 5, "probability": 0.62, "model": EVIL}],
        "alert_rule": "P(Y \u2265 5) \u2265 50%",
        "totals": [{"scope": "Tajikistan", "event_type": "seizure", "horizon_label": "Jan\u2013Jun 2026",
                    "mean": 31.4, "lo": 22, "hi": 43, "level": 80},
                   {"scope": "All areas", "event_type": "clash", "horizon_label": "Jan\u2013Jun 2026",
                    "mean": 1234.5, "lo": 1100, "hi": 1400, "level": 80}],
        "effects": [{"series": "Tajikistan/Khatlon/clash", "term": "border closure", "date": "2021-08-01",
                     "rate_ratio": 0.41, "lo": 0.30, "hi": 0.56, "p_value": 0.0001, "fallback": ""},
                    {"series": "Tajikistan/Sughd/seizure", "term": "new scanners", "date": "2023-03-01",
                     "rate_ratio": 1.2, "lo": 0.9, "hi": 1.6, "p_value": 0.21, "fallback": "poisson_glm"}],
        "figures": [{"id": "fan", "title": "Forecast fan chart", "caption": "Observed counts and 80% bands.",
                     "png": png},
                    {"id": "pit", "title": EVIL_ATTR, "caption": EVIL, "png": png}],
        "comparison": {"baseline": "climatology", "metric": "rps",
                       "rows": [{"model": "negbin_glm", "h": 1, "score": 0.41234, "baseline_score": 0.4712,
                                 "skill": 0.125, "p_value": 0.0004, "significant": True, "verdict": "better"},
                                {"model": EVIL, "h": 1, "score": 0.47, "baseline_score": 0.4712,
                                 "skill": -0.02, "p_value": 0.41, "significant": False, "verdict": "no better"}],
                       "note": "Paired Diebold\u2013Mariano tests across origins."},
        "selection": [{"unique_id": f"Tajikistan/{EVIL}/clash", "model": "negbin_glm",
                       "reason": "lowest RPS in backtest"}],
        "data": {"sources": [{"file": "events.csv", "schema": "native", "rows_read": 12345, "rows_kept": 12001,
                              "sha256": "ab" * 32}],
                 "coverage": {"Tajikistan": ["2012-01-01", "2025-12-01"], EVIL: ["2015-01-01", "2025-12-01"]},
                 "citation": "Simulated border log, incident-forecast project (2026).",
                 "dropped": {"duplicate_event_id": 3},
                 "unknown_provinces": [{"country": "Tajikistan", "province": EVIL, "n_rows": 4}],
                 "warnings": [f"province {EVIL} not in gazetteer"]},
        "methods": [{"name": "negbin_glm", "description": "Negative-binomial GLM with trend and seasonality.",
                     "equation": "y_t ~ NB2(mu_t, alpha)\nlog mu_t = b0 + b1 t + seasonal(t)",
                     "spec": f'[model]\nkind = "negbin_glm"\nnote = "{EVIL}"\n'}],
        "manifest": {"version": "0.1.0", "seed": 42, "inputs": [EVIL], "settings": {"horizon": 6}},
    }


class TagChecker(HTMLParser):
    """Checks that non-void elements nest and close properly."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.headings: list[str] = []
        self._in_h2 = False
        self._text: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "h2":
            self._in_h2, self._text = True, []
        if tag == "title":
            self._in_title = True
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
            self.headings.append("".join(self._text).strip())
        if tag == "title":
            self._in_title = False
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self._in_h2:
            self._text.append(data)
        if self._in_title:
            self.title += data


def parse(html: str) -> TagChecker:
    p = TagChecker()
    p.feed(html)
    p.close()
    return p


@pytest.fixture(scope="module")
def html() -> str:
    return render_report(full_context())


def test_every_section_heading_present_in_order(html):
    p = parse(html)
    assert p.headings == list(SECTION_TITLES.values())
    for sid in SECTION_TITLES:
        assert f'<section id="{sid}">' in html
        assert f'href="#{sid}"' in html  # table of contents


def test_well_formed(html):
    p = parse(html)
    assert p.errors == []
    assert p.stack == []
    assert html.lstrip().lower().startswith("<!doctype html>")
    names = [t for t, _ in p.tags]
    for tag in ("html", "head", "body", "header", "nav", "main", "footer"):
        assert names.count(tag) == 1, tag
    ids = [a["id"] for _, a in p.tags if "id" in a]
    assert len(ids) == len(set(ids)), "duplicate ids"


def test_title_and_simulated_banner(html):
    p = parse(html)
    assert p.title == "Border incident forecast (SIMULATED DATA)"
    assert "SIMULATED DATA" in html and 'class="banner"' in html
    ctx = full_context()
    ctx["simulated"] = False
    plain = render_report(ctx)
    assert "SIMULATED" not in plain
    assert parse(plain).title == "Border incident forecast"


def test_names_from_data_are_escaped(html):
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert re.search(r"<\s*script", html, re.I) is None
    assert "onerror=" not in html.replace("onerror=&#34;", "")
    # every occurrence of the hostile province is text, never a tag
    p = parse(html)
    assert all(t != "script" for t, _ in p.tags)
    # the hostile figure title ended up in alt as text
    alts = [a.get("alt") for t, a in p.tags if t == "img"]
    assert EVIL_ATTR in alts


def test_template_marks_nothing_safe():
    src = (Path(report.__file__).parent / "templates" / "report.html.j2").read_text(encoding="utf-8")
    assert "|safe" not in src.replace(" ", "") and "autoescape false" not in src
    assert report._environment().autoescape is True


def test_no_external_resources(html):
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", html, re.I)
    assert "@import" not in html and "url(" not in html
    assert "<link" not in html
    assert "Content-Security-Policy" in html


def test_images_are_png_data_uris(html):
    srcs = [a["src"] for t, a in parse(html).tags if t == "img"]
    assert len(srcs) == 2
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    for t, a in parse(html).tags:
        if t == "img":
            assert a.get("alt")
            assert a.get("loading") != "lazy"


def test_png_data_uri_round_trip_and_rejects_non_png():
    png = make_png()
    uri = png_data_uri(png)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri[22:]) == png
    with pytest.raises(ValueError, match="PNG"):
        png_data_uri(b"GIF89a....")
    with pytest.raises(ValueError):
        png_data_uri("data:image/png;base64,AAAA")  # type: ignore[arg-type]
    ctx = {"title": "t", "figures": [{"id": "x", "title": "x", "caption": "", "png": b"<svg onload=alert(1)>"}]}
    with pytest.raises(ValueError, match="'x'"):
        render_report(ctx)
    bad_uri = {"title": "t", "figures": [{"id": "x", "title": "x", "png": 'data:image/png;base64,AA"><b>'}]}
    with pytest.raises(ValueError):
        render_report(bad_uri)
    ok_uri = {"title": "t", "figures": [{"id": "x", "title": "x", "png": uri}]}
    assert uri in render_report(ok_uri)


def test_headline_sentences_and_numbers(html):
    assert ("Khatlon, Tajikistan: 6.2 seizures expected in January 2026 (80% range 3\u201310); "
            "41% chance of 5 or more.") in html
    assert "Chance of 5 or more" in html and "Chance of 1 or more" in html
    assert "93%" in html
    assert "(fallback: poisson_glm)" in html
    # totals: thousands separator, ranges with en dash
    assert "1,234" in html or "1,235" in html
    assert "1,100\u20131,400 (80%)" in html


def test_effect_sentences(html):
    # the strongest effect read out in words under the table
    assert ("rate ratio 0.41 (95% interval 0.30\u20130.56): the clash rate fell by 59% after August 2021.") in html
    assert "p-value &lt;0.001" not in html  # no per-effect cards any more


def _effects_section(html: str) -> str:
    return html[html.index('<section id="effects">'):html.index("</section>", html.index('<section id="effects">'))]


def test_effects_are_one_table_with_holm_and_the_forest_plot():
    ctx = full_context()
    ctx["effects"] = [dict(e, p_holm=p, kind="step") for e, p in zip(ctx["effects"], (0.0002, 0.21))]
    ctx["effects"].append({"series": "Tajikistan/Sughd/clash", "term": "new scanners", "date": "2023-03-01",
                           "rate_ratio": None, "lo": None, "hi": None, "p_value": None, "p_holm": None,
                           "fallback": "climatology"})
    ctx["figures"] = ctx["figures"] + [{"id": "effects", "title": "Estimated intervention effects",
                                        "caption": "Rate ratios with 95% intervals.", "png": make_png()}]
    out = render_report(ctx)
    sec = _effects_section(out)
    assert sec.count("<table") == 1 and "<li>" not in sec
    assert sec.count("<tr>") == 3  # header + the two estimated effects; no empty "rate ratio \u2014" row
    assert "rate ratio \u2014" not in out
    assert "0.41" in sec and "0.30\u20130.56" in sec and "&lt;0.001" in sec and "0.210" in sec
    assert "border closure (step, August 2021)" in sec
    assert "Holm p" in sec and "p-values adjusted for testing 2 effects (Holm)" in sec
    assert "Not estimated" in sec and "new scanners" in sec
    assert sec.count('id="fig-effects"') == 1 and out.count('id="fig-effects"') == 1  # shown once, with the table


def test_comparison_in_words(html):
    assert "Yes \u2014 unlikely to be chance" in html
    assert "No \u2014 could be chance" in html
    assert "+12%" in html and "\u22122%" in html
    assert "ranked probability score (RPS)" in html
    assert "0.4123" in html


def test_data_and_reproducibility(html):
    assert "January 2012" in html and "December 2025" in html
    assert "12,345" in html and "12,001" in html
    assert "duplicate event id" in html
    assert "ab" * 32 in html
    assert "<details>" in html and "&#34;seed&#34;: 42" in html


def test_formatters():
    assert fmt_pct(0.41) == "41%"
    assert fmt_pct(0.004) == "<1%"
    assert fmt_pct(0.9991) == ">99%"
    assert fmt_pct(0) == "0%" and fmt_pct(1) == "100%"
    assert fmt_pct(None) == "\u2014" and fmt_pct(float("nan")) == "\u2014"
    assert fmt_range(3, 10) == "3\u201310" and fmt_range(2, 2) == "2"
    assert month_label("2026-01") == "January 2026"
    assert month_label("2026-01-01") == "January 2026"
    assert month_label("Q1 2026") == "Q1 2026"
    assert plural("seizure") == "seizures" and plural("clash") == "clashes"
    assert plural("armed_clash") == "armed clashes" and plural("seizure", "1") == "seizure"
    assert plural("battles") == "battles"


def test_title_only_context_renders():
    out = render_report({"title": "Only a title"})
    p = parse(out)
    assert p.errors == [] and p.stack == []
    assert p.title == "Only a title"
    assert p.headings == []
    assert "<nav" not in out
    assert render_report({})  # even nothing at all


@pytest.mark.parametrize("key", ["headline", "alerts", "totals", "effects", "figures", "comparison",
                                 "selection", "data", "methods", "manifest"])
def test_each_section_optional(key):
    ctx = full_context()
    del ctx[key]
    out = render_report(ctx)
    p = parse(out)
    assert p.errors == []
    sid = {"headline": "summary", "manifest": "reproducibility"}.get(key, key)
    assert f'id="{sid}"' not in out and f'href="#{sid}"' not in out
    assert len(p.headings) == len(SECTION_TITLES) - 1


def test_empty_sections_say_so():
    ctx = {"title": "t", "headline": {"period": "2026-01", "rows": []}, "alerts": [],
           "alert_rule": "P(Y \u2265 5) \u2265 50%", "totals": [], "selection": [],
           "comparison": {"rows": []}, "effects": [], "figures": [], "methods": [],
           "data": {"dropped": {}, "unknown_provinces": [], "warnings": []}, "manifest": {}}
    out = render_report(ctx)
    assert parse(out).errors == []
    assert "No series met the alert rule" in out
    assert "No forecasts in this run." in out
    assert "Every province name was recognised." in out
    assert "No rows were dropped." in out
    # sections with nothing to say are left out
    assert 'id="effects"' not in out and 'id="figures"' not in out and 'id="methods"' not in out


def test_rows_may_be_dataframes():
    import pandas as pd
    ctx = full_context()
    ctx["totals"] = pd.DataFrame(ctx["totals"])
    ctx["selection"] = pd.DataFrame(ctx["selection"])
    out = render_report(ctx)
    assert "1,100\u20131,400 (80%)" in out and "lowest RPS in backtest" in out


def test_write_report_and_size_limit(tmp_path):
    ctx = full_context()
    out = write_report(ctx, tmp_path / "sub" / "report.html")
    assert out == tmp_path / "sub" / "report.html"
    text = out.read_text(encoding="utf-8")
    assert text == render_report(ctx)
    assert "\u2013" in text  # written as UTF-8
    size = out.stat().st_size
    target = tmp_path / "small.html"
    with pytest.raises(ValueError, match="over the"):
        write_report(ctx, target, max_bytes=size - 1)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "sub"]  # no temporary left behind
    assert write_report(ctx, target, max_bytes=size).stat().st_size == size


def test_fifty_series_fit_the_default_limit(tmp_path):
    """Tables and text for 50 series are small; the default limit leaves room for figures."""
    ctx = full_context(n_series=50)
    ctx["selection"] = [{"unique_id": f"Tajikistan/Province {i}/clash", "model": "negbin_glm",
                         "reason": "lowest RPS"} for i in range(50)]
    ctx["figures"] = [dict(f, png=make_png(10, 6, dpi=100, seed=i)) for i, f in enumerate(ctx["figures"] * 3)]
    path = write_report(ctx, tmp_path / "r.html")
    assert path.stat().st_size < MAX_REPORT_BYTES
    ctx.pop("figures")
    assert len(render_report(ctx).encode()) < 400_000


def test_markup_objects_from_callers_are_still_text():
    """Even a value already marked safe (markupsafe.Markup) is shown as text."""
    from markupsafe import Markup

    out = render_report({"title": Markup("<b>T</b>"), "alerts": [{"province": Markup("<i>p</i>")}]})
    assert "<b>" not in out and "<i>" not in out
    assert "&lt;b&gt;T&lt;/b&gt;" in out and "&lt;i&gt;p&lt;/i&gt;" in out
