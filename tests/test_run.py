"""forecast run end to end: outputs, reproducibility, bad input, hostile names."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.datasets import load_sample

runner = CliRunner()

CONFIG = """
[data]
events = "events.csv"
as_of = "2025-12-31"

[models]
candidates = ["climatology", "seasonal_naive", "negbin_glm"]
selection = "series"

[backtest]
horizon = 3
origins = 4
refit_every = 2

[forecast]
horizon = 3
thresholds = [1, 5]

[output]
dir = "out"
"""


def small_log(tmp_path: Path, rename: dict[str, str] | None = None) -> Path:
    """Two Tajik provinces of the simulated log, from 2019 (fast to run)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = load_sample("border_sim")
    ev = ev[(ev["province"].isin(["Khatlon", "Sughd"])) & (ev["date"] >= "2019-01-01")]
    ev = ev[["event_id", "date", "country", "province", "event_type", "fatalities"]].copy()
    if rename:
        ev["province"] = ev["province"].replace(rename)
    path = tmp_path / "events.csv"
    ev.to_csv(path, index=False, date_format="%Y-%m-%d")
    return path


def write_config(tmp_path: Path, text: str = CONFIG) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    return cfg


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    small_log(tmp)
    cfg = write_config(tmp)
    res = runner.invoke(app, ["run", str(cfg), "--quiet"])
    assert res.exit_code == 0, res.output
    return tmp / "out"


def test_run_writes_every_output(done):
    for name in ("index.html", "forecasts.csv", "scores.csv", "comparison.csv", "run.json", "selection.csv"):
        assert (done / name).exists(), name
    fc = pd.read_csv(done / "forecasts.csv")
    assert {"mean", "lo-80", "hi-80", "p_ge_1", "p_ge_5", "chosen_model", "fallback"} <= set(fc.columns)
    assert fc["unique_id"].nunique() == 6 and set(fc["h"]) == {1, 2, 3}
    manifest = json.loads((done / "run.json").read_text())
    assert manifest["seed"] == 0 and manifest["inputs"] and all(len(h) == 64 for h in manifest["inputs"].values())
    assert {"ingest", "backtest", "forecast", "figures", "total"} <= set(manifest["timings_s"])
    assert manifest["packages"]["numpy"]
    # The mean cap is recorded per series (none is hit on this quiet log).
    assert manifest["mean_capped"] == [] and fc["mean_capped"].dtype == bool and not fc["mean_capped"].any()
    comp = pd.read_csv(done / "comparison.csv")
    assert {"skill", "p_value", "significant", "verdict"} <= set(comp.columns)


def test_run_is_reproducible(done, tmp_path):
    small_log(tmp_path)
    cfg = write_config(tmp_path)
    assert runner.invoke(app, ["run", str(cfg), "--quiet"]).exit_code == 0
    a = pd.read_csv(done / "forecasts.csv")
    b = pd.read_csv(tmp_path / "out" / "forecasts.csv")
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(pd.read_csv(done / "scores.csv"), pd.read_csv(tmp_path / "out" / "scores.csv"))


def test_existing_run_is_never_overwritten_without_force(done):
    cfg = done.parent / "config.toml"
    stamp = (done / "index.html").stat().st_mtime_ns
    res = runner.invoke(app, ["run", str(cfg), "--quiet"])
    assert res.exit_code == 1 and "already exists" in res.output and "--force" in res.output
    assert (done / "index.html").stat().st_mtime_ns == stamp


def test_report_rerenders_from_the_run_folder(done):
    (done / "index.html").unlink()
    res = runner.invoke(app, ["report", str(done)])
    assert res.exit_code == 0 and (done / "index.html").exists()
    bad = runner.invoke(app, ["report", str(done.parent)])
    assert bad.exit_code == 1 and "not a run folder" in bad.output


def test_malformed_config_exits_1_names_the_problem_and_leaves_nothing(tmp_path):
    small_log(tmp_path)
    cfg = write_config(tmp_path, CONFIG.replace("horizon = 3\norigins", "horizn = 3\norigins"))
    res = runner.invoke(app, ["run", str(cfg), "--quiet"])
    assert res.exit_code == 1
    assert "horizn" in res.output and "did you mean 'horizon'" in res.output
    assert not (tmp_path / "out").exists()


def test_malformed_data_exits_1_and_leaves_no_output_folder(tmp_path):
    (tmp_path / "events.csv").write_text("date,province,event_type\nnot-a-date,Khatlon,clash\n")
    cfg = write_config(tmp_path)
    res = runner.invoke(app, ["run", str(cfg), "--quiet"])
    assert res.exit_code == 1 and "unparseable or missing date" in res.output and "(2)" in res.output
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_report_survives_a_hostile_province_name(tmp_path):
    evil = "<script>alert(1)</script>"
    small_log(tmp_path, rename={"Sughd": evil})
    cfg = write_config(tmp_path, CONFIG.replace('as_of = "2025-12-31"', 'as_of = "2025-12-31"'))
    res = runner.invoke(app, ["run", str(cfg), "--quiet"])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "out" / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
