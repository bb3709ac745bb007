"""Checked against the past, end to end: backtest.png, alerts.csv, run.json, the report's
calibration sentence and past-alerts table, old folders, and [report] backtest_series."""
from __future__ import annotations

import json
import shutil
import struct

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.report import render_report
from tests.test_run import CONFIG, small_log, write_config

runner = CliRunner()
CSS_COLUMN_PX = 1024  # main is 1080 px wide with 28 px padding each side (report.css)


def png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("past")
    small_log(tmp)
    cfg = write_config(tmp, CONFIG + '\n[report]\nbacktest_series = ["Tajikistan/Sughd/clash"]\n')
    res = runner.invoke(app, ["run", str(cfg), "--quiet"])
    assert res.exit_code == 0, res.output
    return tmp / "out"


def test_backtest_figure_is_written_at_over_one_and_a_half_times_its_css_width(done):
    width, height = png_size(done / "figures" / "backtest.png")
    assert width >= 1.5 * CSS_COLUMN_PX and height > 200
    ctx = json.loads((done / "report_context.json").read_text())
    fig = next(f for f in ctx["figures"] if f["id"] == "backtest")
    assert "series named in [report] backtest_series" in fig["caption"]
    assert "one month ahead (left) and 3 months ahead (right)" in fig["caption"]


def test_alerts_csv_has_a_row_per_model_overall_and_naive_rule_per_step(done):
    alerts = pd.read_csv(done / "alerts.csv", dtype={"h": str})
    models = set(pd.read_csv(done / "scores.csv")["model"])
    assert set(alerts["model"]) == models | {"overall (model used per series)", "naive rule"}
    assert sorted(set(alerts["h"])) == ["1", "all"]
    a = alerts.set_index(["model", "h"])
    assert (a["alerts"] == a["hits"] + a["false_alarms"]).all()
    assert (a["events"] == a["hits"] + a["misses"]).all()
    # the naive rule is scored on the overall row's cells
    assert (a.xs("naive rule", level="model")["cells"] == a.xs("overall (model used per series)", level="model")
            ["cells"]).all()


def test_run_json_and_report_carry_calibration_in_words_and_past_alerts(done):
    text = (done / "run.json").read_text()
    assert "NaN" not in text
    man = json.loads(text)
    assert man["calibration"] and man["calibration"][0]["sentence"].startswith("Over the last ")
    assert all(r["mass"] >= r["level"] / 100 - 1e-9 for r in man["calibration"])
    assert {r["model"] for r in man["past_alerts"]["rows"]} >= {"naive rule"}
    html = (done / "index.html").read_text()
    assert "How often the ranges held" in html and "probability on average" in html
    assert 'id="past-alerts"' in html and "Past alerts, one step ahead:" in html and "(naive rule: " in html
    assert "Naive rule: alert when the last observed count exceeded the highest count of the 12 months" in html


def test_an_old_report_context_without_the_new_fields_still_renders(done, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(done, old)
    ctx = json.loads((old / "report_context.json").read_text())
    for key in ("calibration", "past_alerts", "past_alerts_note"):
        ctx.pop(key)
    ctx["figures"] = [f for f in ctx["figures"] if f["id"] != "backtest"]
    (old / "report_context.json").write_text(json.dumps(ctx))
    (old / "index.html").unlink()
    res = runner.invoke(app, ["report", str(old)])
    assert res.exit_code == 0, res.output
    html = (old / "index.html").read_text()
    assert "Model comparison" in html and "Past alerts" not in html and "How often the ranges held" not in html


def test_an_unknown_backtest_series_fails_before_the_backtest(tmp_path):
    small_log(tmp_path)
    cfg = write_config(tmp_path, CONFIG + '\n[report]\nbacktest_series = ["Tajikistan/Sughd/clsh"]\n')
    res = runner.invoke(app, ["run", str(cfg), "--quiet"])
    assert res.exit_code == 1
    assert "[report] backtest_series: 'Tajikistan/Sughd/clsh' is not a series" in res.output
    assert "did you mean 'Tajikistan/Sughd/clash'?" in res.output
    assert not (tmp_path / "out").exists()


def test_a_wrong_report_key_is_a_config_error(tmp_path):
    small_log(tmp_path)
    cfg = write_config(tmp_path, CONFIG + '\n[report]\nbacktest_series = "Khatlon"\n')
    res = runner.invoke(app, ["run", str(cfg), "--quiet"])
    assert res.exit_code == 1 and "[report] backtest_series must be a list of names" in res.output


def test_repeated_current_alerts_for_one_series_are_one_line():
    base = {"country": "Tajikistan", "province": "Khatlon", "event_type": "seizure", "k": 5, "model": "auto"}
    alerts = [{**base, "period": "Jan 2026", "probability": 0.7}, {**base, "period": "Feb 2026", "probability": 0.54},
              {**base, "period": "Mar 2026", "probability": 0.61},
              {**base, "province": "Sughd", "period": "Jan 2026", "probability": 0.5}]
    html = render_report({"title": "t", "alerts": alerts, "alert_rule": "P(Y ≥ 5) ≥ 50%"})
    section = html[html.index('id="alerts"'):html.index("</section>", html.index('id="alerts"'))]
    assert section.count("<tr>") == 3  # header + two series
    assert "Jan 2026, Feb 2026, Mar 2026" in section and "54\u201370%" in section
    assert "<th>Periods</th>" in section


def test_most_active_and_the_figure_function():
    from forecast import plots
    from forecast._plots_backtest import backtest_panels, most_active

    ds = pd.date_range("2025-01-01", periods=4, freq="MS")
    fc = pd.DataFrame({"unique_id": ["a", "a", "b", "b", "c", "c"] * 2, "ds": list(ds[[1, 2]]) * 6,
                       "cutoff": list(ds[[0, 1]]) * 6, "h": 1, "model": ["m"] * 6 + ["n"] * 6,
                       "y": [1, 2, 5, 0, 3, 3] * 2, "mean": 1.0, "lo-50": 0, "hi-50": 2, "lo-80": 0, "hi-80": 3})
    assert most_active(fc, 2) == ["c", "b"]  # 6, 5, 3 events: each period counted once, not per model
    hist = pd.DataFrame({"unique_id": "a", "ds": ds, "y": [0, 1, 2, 1]})
    fig = backtest_panels(hist, fc, [("a", "m", "A, Land — clash")], steps=[1], unit="month")
    assert "A, Land — clash (m): 1 month ahead" in fig.axes[0].get_title(loc="left")
    plots.save(fig, "/dev/null")
