"""CLI habits: examples in every --help, the same log options on every command that reads a log,
warnings about incomplete data up front in CLI words, and the one-meaning rename of countries."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import forecast
from forecast import cli
from forecast.cli import app
from forecast.datasets import sample_path
from forecast.exceptions import ForecastWarning

runner = CliRunner()
UCDP = str(sample_path("ucdp_candidate_2026q1"))
LOG_COMMANDS = ("validate", "panel", "predict", "backtest", "run", "effects")
DATA_OPTIONS = ("--schema", "--gazetteer", "--country", "--monthfirst", "--as-of", "--freq")


def _help(*cmd: str) -> str:
    res = runner.invoke(app, [*cmd, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    return res.output


def test_top_level_help_has_examples_and_every_command_has_one():
    top = _help()
    assert "Examples:" in top and "forecast run config.toml" in top
    commands = re.findall(r"^  (\w+)\s{2,}", top.split("Commands:")[1], flags=re.M)
    assert {"validate", "run", "demo", "backtest"} <= set(commands)
    for cmd in commands:
        assert "Example: forecast" in _help(cmd), cmd


@pytest.mark.parametrize("command", LOG_COMMANDS)
def test_every_command_that_reads_a_log_has_the_same_data_options(command):
    text = _help(command)
    missing = [o for o in DATA_OPTIONS if o not in text]
    assert not missing, f"forecast {command} lacks {missing}"


def test_run_flags_override_the_config(tmp_path, monkeypatch):
    (tmp_path / "ev.csv").write_text("date,country,province,event_type\n2024-01-05,Tajikistan,Khatlon,clash\n")
    (tmp_path / "c.toml").write_text('[data]\nevents = "ev.csv"\n')
    seen = {}
    monkeypatch.setattr(cli.pipeline, "run", lambda cfg, progress=None: seen.setdefault("cfg", cfg))
    res = runner.invoke(app, ["run", str(tmp_path / "c.toml"), "--refit-every", "3", "--as-of", "2024-06-30",
                              "--monthfirst", "--country", "Tajikistan", "--freq", "quarter", "--schema", "native"])
    assert res.exit_code == 0, res.output
    cfg = seen["cfg"]
    assert cfg.backtest.refit_every == 3 and str(cfg.data.as_of) == "2024-06-30"
    assert cfg.data.dayfirst is False and cfg.data.countries == ("Tajikistan",)
    assert cfg.data.freq == "quarter" and cfg.data.schema == "native"


def _log(tmp_path, last_day: str, country: str = "Tajikistan"):
    days = pd.date_range("2023-01-03", last_day, freq="9D")
    f = tmp_path / "log.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "country": country, "province": "Khatlon",
                  "event_type": "clash"}).to_csv(f, index=False)
    return str(f)


def test_validate_warns_about_a_partial_last_month_in_cli_words(tmp_path):
    path = _log(tmp_path, "2025-12-12")
    res = runner.invoke(app, ["validate", path])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if "partial" in ln)
    assert line.startswith("warning:") and "--as-of" in line and "as_of=" not in line
    assert "data up to 2025-11-30" in line
    assert "warnings:    1" in res.output
    # a complete month (or a log said to be complete) is not partial
    full = runner.invoke(app, ["validate", path, "--as-of", "2025-12-31"])
    assert "partial" not in full.output and "warnings:    0" in full.output


def test_validate_warns_about_an_unknown_country_with_did_you_mean(tmp_path):
    res = runner.invoke(app, ["validate", _log(tmp_path, "2025-11-30", country="Tajikstan")])
    line = next(ln for ln in res.output.splitlines() if "unknown country" in ln)
    assert "did you mean 'Tajikistan'" in line and "--gazetteer" in line


def test_a_three_month_log_is_said_to_be_too_short(tmp_path):
    res = runner.invoke(app, ["predict", UCDP, "-m", "climatology", "-o", str(tmp_path / "f.csv")])
    assert res.exit_code == 0, res.output
    assert "only 3 months" in res.output and "too short" in res.output


def test_only_countries_filters_and_the_old_keyword_warns():
    kept = forecast.read_events(UCDP, only_countries=["Pakistan"])
    assert set(kept["country"]) == {"Pakistan"}
    assert kept.attrs["ingest"]["dropped"]["other_countries"] > 0
    with pytest.warns(ForecastWarning, match="renamed only_countries"):
        old = forecast.read_events(UCDP, countries=["Pakistan"])
    assert len(old) == len(kept)


def test_accuracy_is_the_mean_of_the_point_scores():
    from forecast.datasets import simulate_border_log

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecastWarning)
        panel = forecast.build_panel(simulate_border_log(end="2014-12").events, "month")
        res = forecast.backtest(panel, ["climatology", "naive"], 2, n_origins=3, progress=False)
    acc = forecast.accuracy(res)
    assert list(acc["model"]) == ["climatology", "naive"]
    for model, row in acc.set_index("model").iterrows():
        m = (res.forecasts["model"] == model).to_numpy()
        assert row["mae"] == pytest.approx(res.point_scores.loc[m, "abs_error"].mean())
        assert row["rmse"] == pytest.approx(np.sqrt(res.point_scores.loc[m, "sq_error"].mean()))
        assert row["rps"] == pytest.approx(res.point_scores.loc[m, "rps"].mean())
        assert row["n"] == m.sum()
    by_h = forecast.accuracy(res, by=("model", "h"), metrics=("rps",))
    assert len(by_h) == 4 and list(by_h.columns) == ["model", "h", "rps", "n"]
    with pytest.raises(ValueError, match="unknown metric"):
        forecast.accuracy(res, metrics=("nope",))


def test_to_frame_accepts_statsforecast_level():
    fc = forecast.CountForecast.poisson(pd.DataFrame({"unique_id": ["a"], "ds": [pd.Timestamp("2024-01-01")],
                                                      "h": [1]}), np.array([3.0]), model="m")
    assert fc.to_frame(level=[80]).equals(fc.to_frame(levels=[80]))
    assert "lo-90" in fc.to_frame(level=90).columns and "lo-50" not in fc.to_frame(level=90).columns


def test_readme_config_example_is_the_starter_with_example_values(tmp_path):
    """`forecast init` writes every key of the README's example (in the same sections), and the
    example itself is a valid configuration: the two cannot drift apart."""
    import tomllib
    from pathlib import Path

    from forecast.config import config_from_dict, starter_text

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    example, starter = tomllib.loads(block), tomllib.loads(starter_text())
    for section, keys in example.items():
        assert section in starter, section
        assert set(keys) <= set(starter[section]), (section, set(keys) - set(starter[section]))
    for name in ("my_log.csv", "neighbours.csv"):
        (tmp_path / name).write_text("x\n")
    config_from_dict(example, base_dir=tmp_path)  # raises on any invalid key or value
