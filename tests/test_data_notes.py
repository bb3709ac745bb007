"""The report's banner about the data: partial last period, stale data, coverage gaps, simulated logs."""
from __future__ import annotations

import pandas as pd

from forecast.periods import parse_freq
from forecast.pipeline.completeness import data_notes, is_simulated, last_day_of_panel
from forecast.report import render_report

from tests.test_report import full_context


def _panel(last: str, freq: str = "month", gaps=()):
    fq = parse_freq(freq)
    ds = pd.date_range("2024-01-01", last, freq=fq.alias)
    p = pd.DataFrame({"unique_id": "a", "ds": ds, "y": 1})
    p.attrs = {"freq": fq, "coverage_gaps": list(gaps)}
    return p


def _events(last_day: str, source: str = "own"):
    return pd.DataFrame({"date": pd.to_datetime(["2024-01-03", last_day]), "source": source})


def test_last_day_is_the_end_of_the_last_period_not_its_start():
    assert last_day_of_panel(_panel("2025-11-01")) == pd.Timestamp("2025-11-30")
    assert last_day_of_panel(_panel("2025-10-01", "quarter")) == pd.Timestamp("2025-12-31")
    assert last_day_of_panel(_panel("2025-12-01", "week")) == pd.Timestamp("2025-12-07")


def test_partial_last_month_is_noted_and_a_complete_one_is_not():
    notes = data_notes(_events("2025-12-12"), _panel("2025-11-01"), today="2025-12-15")
    assert len(notes) == 1 and notes[0].startswith("Partial data") and "12 December 2025" in notes[0]
    assert data_notes(_events("2025-11-30"), _panel("2025-11-01"), today="2025-12-15") == []
    # the log said to be complete to the month's end: not partial
    assert data_notes(_events("2025-12-12"), _panel("2025-12-01"), as_of="2025-12-31", today="2026-01-05") == []


def test_stale_data_depend_on_the_frequency():
    stale = data_notes(_events("2025-06-30"), _panel("2025-06-01"), today="2025-12-15")
    assert any(n.startswith("Stale data") and "30 June 2025" in n for n in stale)
    # a yearly panel that ended last December is not stale in March
    assert data_notes(_events("2024-12-31"), _panel("2024-01-01", "year"), today="2025-03-01") == []


def test_coverage_gaps_are_noted():
    notes = data_notes(_events("2025-11-30"), _panel("2025-11-01", gaps=["2025-03", "2025-04"]), today="2025-12-02")
    assert len(notes) == 1 and "2 months" in notes[0] and "2025-03" in notes[0]


def test_simulated_logs_are_recognised_by_their_source_column():
    assert is_simulated(_events("2025-01-01", source="simulated")) is True
    assert not is_simulated(_events("2025-01-01"))
    assert not is_simulated(pd.DataFrame({"date": []}))


def test_report_opens_with_the_data_banner():
    ctx = full_context()
    assert "CHECK THE DATA" not in render_report(ctx)
    ctx["data_notes"] = ["Partial data: the log ends 12 December 2025, inside a month."]
    html = render_report(ctx)
    assert "CHECK THE DATA" in html and "ends 12 December 2025" in html
    assert html.index("CHECK THE DATA") < html.index('class="toc"')
