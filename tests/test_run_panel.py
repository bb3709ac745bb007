"""`[data] panel` in the run config, and backtest origins by frequency (issue 12)."""
from __future__ import annotations

import json
import shutil
import sys
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from forecast.backtesting import choose_origins, default_origins
from forecast.config import config_from_dict, load_config
from forecast.exceptions import ConfigError
from forecast.periods import parse_freq

DATA = Path(__file__).parent / "data"
WEEKLY = DATA / "measlesDE_weekly_excerpt.csv"
YEARLY = DATA / "prussian_yearly_excerpt.csv"


@pytest.mark.parametrize(("freq", "n"), [("W-MON", 52), ("month", 12), ("quarter", 4), ("year", 5), ("day", 28)])
def test_default_origins_are_one_year_of_periods(freq, n) -> None:
    fq = parse_freq(freq)
    assert default_origins(fq) == n
    periods = fq.range(pd.Timestamp("2000-01-01") if freq != "W-MON" else pd.Timestamp("2000-01-03"),
                       pd.Timestamp("2030-01-01"))
    cut = choose_origins(periods, 1, freq=fq)
    assert len(cut) == n and cut[-1] == periods[-2]
    assert len(choose_origins(periods, 1, n_origins=3, freq=fq)) == 3  # explicit wins


def test_panel_or_events_exactly_one(tmp_path) -> None:
    shutil.copy(WEEKLY, tmp_path / "p.csv")
    (tmp_path / "e.csv").write_text("date,province,event_type\n2024-01-03,Khatlon,clash\n", encoding="utf-8")
    cfg = config_from_dict({"data": {"panel": "p.csv"}}, base_dir=tmp_path)
    assert cfg.data.panel == (tmp_path / "p.csv").resolve() and cfg.data.events is None
    assert cfg.data.source == cfg.data.panel and cfg.data.freq is None and cfg.backtest.origins is None
    with pytest.raises(ConfigError, match=r"\[data\] events and \[data\] panel are both set"):
        config_from_dict({"data": {"panel": "p.csv", "events": "e.csv"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"\[data\] events is required \(or \[data\] panel\)"):
        config_from_dict({"data": {"panel": ""}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"\[data\] panel: file .*missing.csv not found"):
        config_from_dict({"data": {"panel": "missing.csv"}}, base_dir=tmp_path)


def test_freq_that_disagrees_with_the_panel_is_an_error(tmp_path) -> None:
    from forecast.pipeline.stages import read_run_events

    shutil.copy(YEARLY, tmp_path / "p.csv")
    cfg = config_from_dict({"data": {"panel": "p.csv", "freq": "month"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="freq is 'month' but the panel p.csv has"):
        read_run_events(cfg)
    ok = config_from_dict({"data": {"panel": "p.csv", "freq": "year"}}, base_dir=tmp_path)
    assert read_run_events(ok).attrs["freq"].kind == "year"


@pytest.mark.parametrize(("src", "kind", "step"), [(WEEKLY, "week", pd.Timedelta(weeks=1)),
                                                   (YEARLY, "year", None)])
def test_forecast_run_on_a_panel_csv(tmp_path, src, kind, step) -> None:
    shutil.copy(src, tmp_path / "panel.csv")
    (tmp_path / "config.toml").write_text(
        '[data]\npanel = "panel.csv"\n[models]\ncandidates = ["climatology", "negbin_glm"]\n'
        '[backtest]\nhorizon = 2\norigins = 3\n[forecast]\nhorizon = 2\n[output]\ndir = "out"\n',
        encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "forecast.cli", "run", str(tmp_path / "config.toml"), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    fc = pd.read_csv(tmp_path / "out" / "forecasts.csv", parse_dates=["ds"])
    last = pd.read_csv(src, parse_dates=["ds"])["ds"].max()
    first = last + (step if step is not None else pd.DateOffset(years=1))
    assert sorted(fc["ds"].unique()) == [first, first + (step if step is not None else pd.DateOffset(years=1))]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert str((tmp_path / "panel.csv").resolve()) in json.dumps(run)


def test_load_config_reads_panel_relative_to_the_file(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    shutil.copy(YEARLY, tmp_path / "sub" / "p.csv")
    (tmp_path / "sub" / "c.toml").write_text('[data]\npanel = "p.csv"\n', encoding="utf-8")
    assert load_config(tmp_path / "sub" / "c.toml").data.panel == (tmp_path / "sub" / "p.csv").resolve()
