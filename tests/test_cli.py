"""CLI: summaries, one line per problem with exit 1, no traceback, no silent overwrite."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast import __version__
from forecast.cli import app
from forecast.datasets import sample_path

runner = CliRunner()
UCDP = str(sample_path("ucdp_candidate_2026q1"))


def run(*args: str):
    return runner.invoke(app, list(args))


def test_version():
    res = run("--version")
    assert res.exit_code == 0 and __version__ in res.output


def test_help_lists_every_command():
    res = run("--help")
    assert res.exit_code == 0
    for cmd in ("validate", "panel", "demo"):
        assert cmd in res.output


def test_validate_accepts_the_real_ucdp_extract():
    res = run("validate", UCDP)
    assert res.exit_code == 0, res.output
    assert "layout:      ucdp" in res.output
    assert "348 read, 348 kept" in res.output
    assert "2026-01-01 to 2026-03-31" in res.output
    assert "warning:" in res.output and "13 events name no province" in res.output


def test_validate_rejects_a_broken_file_one_line_per_problem(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("date,province,event_type,count\nnope,Khatlon,clash,1\n2024-01-01,Sughd,clash,-4\n")
    res = run("validate", str(bad))
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 2
    assert "column 'date'" in lines[0] and "(2)" in lines[0]
    assert "column 'count'" in lines[1] and "(3)" in lines[1]


def test_bad_input_prints_no_traceback_and_exits_1(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    proc = subprocess.run([sys.executable, "-m", "forecast.cli", "validate", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: bad.csv: column '<header>': could not recognise")


def test_usage_error_exits_2():
    assert run("validate").exit_code == 2
    assert run("nonsense-command").exit_code == 2


def test_panel_writes_csv_and_never_overwrites_without_force(tmp_path):
    out = tmp_path / "panel.csv"
    res = run("panel", UCDP, "--freq", "M", "--out", str(out))
    assert res.exit_code == 0, res.output
    p = pd.read_csv(out)
    assert set(p["ds"]) == {"2026-01-01", "2026-02-01", "2026-03-01"}
    assert p["y"].sum() == 348
    first = out.read_bytes()
    again = run("panel", UCDP, "--out", str(out), "--freq", "week")
    assert again.exit_code == 1 and "--force" in again.output
    assert out.read_bytes() == first
    forced = run("panel", UCDP, "--out", str(out), "--freq", "week", "--force")
    assert forced.exit_code == 0
    assert out.read_bytes() != first


def test_panel_with_countries_declares_quiet_provinces(tmp_path):
    out = tmp_path / "panel.csv"
    res = run("panel", UCDP, "--out", str(out), "--country", "Tajikistan")
    assert res.exit_code == 0, res.output
    p = pd.read_csv(out)
    taj = p[p["country"] == "Tajikistan"]
    assert taj["province"].nunique() == 5 and taj["y"].sum() == 0
    assert len(taj) == 5 * 2 * 3  # provinces x event types x months


def test_failed_panel_leaves_nothing_behind(tmp_path):
    out = tmp_path / "panel.csv"
    res = run("panel", UCDP, "--out", str(out), "--freq", "fortnightly")
    assert res.exit_code == 1 and "Unknown frequency" in res.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow(100)  # the real demo, end to end
def test_demo_into_a_new_folder_then_refuses_to_overwrite(tmp_path):
    out = tmp_path / "demo"
    res = run("demo", "--out", str(out), "--quiet")
    assert res.exit_code == 0, res.output
    for name in ("index.html", "forecasts.csv", "scores.csv", "comparison.csv", "run.json", "panel.csv"):
        assert (out / name).exists(), name
    assert {"forecasts.png", "risk.png", "pit.png", "history.png"} <= {p.name for p in (out / "figures").iterdir()}
    fc = pd.read_csv(out / "forecasts.csv")
    assert fc["unique_id"].nunique() == 27 and set(fc["h"]) == set(range(1, 7))
    # a model chosen over the baseline never forecasts a series with past incidents as certainly
    # quiet (the baseline itself can, when its 36-month window holds no event: see climatology)
    past = pd.read_csv(out / "panel.csv").groupby("unique_id")["y"].sum()
    active = fc[(fc["unique_id"].map(past) > 0) & (fc["chosen_model"] != "climatology")]
    assert len(active) and (active["p_ge_1"] > 0).all()
    stamp = (out / "index.html").stat().st_mtime_ns
    time.sleep(0.01)
    again = run("demo", "--out", str(out), "--quiet")
    assert again.exit_code == 1 and "already exists" in again.output
    assert (out / "index.html").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no temporary folder left


def _quick_demo_config(tmp_path, monkeypatch):
    """The demo's config with one cheap model and two origins (the folder rules are the point
    here; test_demo_into_a_new_folder_then_refuses_to_overwrite runs the real demo)."""
    import forecast.pipeline as pipeline_module

    real = pipeline_module.demo_config_path()
    text = real.read_text(encoding="utf-8").replace('"../_data/', f'"{(real.parent.parent / "_data").as_posix()}/')
    text = text.replace('candidates = ["auto", "demo_intervention.toml"]', 'candidates = ["climatology"]')
    text = text.replace('selection = "auto"', 'selection = "series"').replace("origins = 12", "origins = 2")
    cfg = tmp_path / "quick_demo.toml"
    cfg.write_text(text, encoding="utf-8")
    monkeypatch.setattr(pipeline_module, "demo_config_path", lambda: cfg)


@pytest.mark.slow(15)
def test_demo_replaces_its_own_folder(tmp_path, monkeypatch):
    _quick_demo_config(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    marker = Path("reports/demo/old.txt")
    marker.parent.mkdir(parents=True)
    marker.write_text("from an earlier demo")
    # written by an earlier version: the demo replaces only folders of the tool
    (marker.parent / "run.json").write_text('{"tool": "incident-forecast 0.1.0"}')
    assert run("demo", "--quiet").exit_code == 0
    assert not marker.exists() and Path("reports/demo/index.html").exists()
    assert sorted(p.name for p in Path("reports").iterdir()) == ["demo"]
    assert json.loads(Path("reports/demo/run.json").read_text())["tool"].startswith("incident-forecast")


@pytest.mark.parametrize("args", [["--help"], ["validate", "--help"], ["panel", "--help"], ["demo", "--help"]])
def test_help_has_examples_and_descriptions(args):
    res = run(*args)
    assert res.exit_code == 0
    if args != ["--help"]:
        assert "Example" in res.output


def test_models_lists_every_bundled_spec():
    res = run("models")
    assert res.exit_code == 0
    for name in ("climatology", "negbin_glm", "zinb", "ingarch", "arima", "croston", "ensemble"):
        assert name in res.output


def test_predict_writes_distribution_summaries(tmp_path):
    out = tmp_path / "fc.csv"
    res = run("predict", UCDP, "--model", "climatology", "--horizon", "2", "--out", str(out))
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out)
    assert {"mean", "lo-80", "hi-80", "p_ge_1", "p_ge_5", "fallback", "model_used"} <= set(fc.columns)
    assert set(fc["h"]) == {1, 2} and (fc["lo-80"] <= fc["hi-80"]).all()
    bad = run("predict", UCDP, "--model", "climatolgy", "--out", str(tmp_path / "x.csv"))
    assert bad.exit_code == 1 and "Did you mean 'climatology'" in bad.output
    assert not (tmp_path / "x.csv").exists()


def test_backtest_cli_writes_three_tables_and_prints_significance(tmp_path):
    import warnings

    import forecast

    panel_csv = tmp_path / "panel.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = forecast.build_panel(forecast.load_sample(), as_of="2025-12-31")
    p[p["country"] == "Tajikistan"].to_csv(panel_csv, index=False)
    out = tmp_path / "bt"
    res = run("backtest", str(panel_csv), "--models", "climatology,seasonal_naive", "--horizon", "2",
              "--origins", "6", "--out", str(out), "--quiet")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [".incident-forecast.json", "backtest.csv", "comparison.csv",
                                                     "scores.csv"]
    comp = pd.read_csv(out / "comparison.csv")
    assert {"skill", "p_value", "significant", "verdict"} <= set(comp.columns)
    loud = run("backtest", str(panel_csv), "--models", "seasonal_naive", "--horizon", "2", "--origins", "6",
               "--out", str(tmp_path / "bt2"))
    assert loud.exit_code == 0 and "verdict" in loud.output and "rps" in loud.output
    again = run("backtest", str(panel_csv), "--out", str(out))
    assert again.exit_code == 1 and "already exists" in again.output


def test_backtest_and_run_take_dask_and_say_jobs_is_then_unused():
    for cmd in ("backtest", "run"):
        res = run(cmd, "--help")
        text = " ".join(res.output.split())  # help is wrapped to the terminal width
        assert res.exit_code == 0 and "--dask <address>" in text and "tcp://host:8786" in text
        assert "forecast[dask]" in text and "(not used with dask)" in text.replace("--dask)", "dask)")


def test_backtest_with_a_malformed_dask_address_fails_before_reading_data(tmp_path):
    # The events file does not exist: the address is checked first, so that is the one error.
    res = run("backtest", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "bt"), "--dask", "localhost")
    assert res.exit_code == 1 and "Traceback" not in res.output
    lines = res.output.strip().splitlines()
    assert lines == ["error: dask must be a Dask scheduler address such as 'tcp://host:8786' (schemes: tcp, tls, "
                     "ws, wss, ucx). Got 'localhost' instead."]
    assert not (tmp_path / "bt").exists()


def test_run_with_a_malformed_dask_flag_names_the_config_key(tmp_path):
    (tmp_path / "events.csv").write_text("date,province,event_type\n2024-01-03,Khatlon,clash\n")
    (tmp_path / "config.toml").write_text('[data]\nevents = "events.csv"\n')
    res = run("run", str(tmp_path / "config.toml"), "--dask", "tcp://host", "--quiet")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "[run] dask must be a Dask scheduler address" in res.output and "'tcp://host'" in res.output


@pytest.mark.parametrize("cmd", [("validate",), ("panel", "-o", "p.csv"), ("predict", "-m", "naive", "-o", "f.csv"),
                                 ("backtest", "-o", "bt")])
def test_shared_as_of_option_checks_the_date_in_every_command(cmd, tmp_path):
    """The commands share one --as-of option: each rejects an impossible date before any work."""
    res = runner.invoke(app, [cmd[0], UCDP, *[str(tmp_path / a) if a.endswith((".csv", "bt")) else a for a in cmd[1:]],
                              "--as-of", "2024-02-30"])
    assert res.exit_code == 2 and "real calendar date" in res.output, res.output
    assert not any(tmp_path.iterdir())
