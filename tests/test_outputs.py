"""Outputs never destroy what is not ours; hostile names stay text (CSV cells, figure labels)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from typer.testing import CliRunner

import forecast
from forecast import plots
from forecast.cli import app
from forecast.config import load_config
from forecast.exceptions import ConfigError, OutputExistsError
from forecast.outputs import (MARKER, check_file_writable, check_writable, is_ours, marker, remove_stale,
                              staged_dir, write_csv)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

runner = CliRunner()
ADVICE = "--force only replaces folders written by incident-forecast"


def user_folder(path: Path) -> Path:
    """A folder of the user's own files (no marker, no run.json)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "thesis.docx").write_text("years of work")
    (path / "sub").mkdir(exist_ok=True)
    (path / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return path


def snapshot(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def ours(path: Path, command: str = "run") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text(json.dumps(marker(command)))
    (path / "forecasts.csv").write_text("old\n")
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # exited and reaped: os.kill(pid, 0) now fails
    return proc.pid


def write_into(dest: Path, **kw) -> None:
    with staged_dir(dest, **kw) as tmp:
        (tmp / "forecasts.csv").write_text("new\n")


# ----------------------------------------------------------------------------- refusals
def test_force_never_replaces_a_user_folder(tmp_path):
    dest = user_folder(tmp_path / "mine")
    before = snapshot(dest)
    with pytest.raises(OutputExistsError) as err:
        write_into(dest, force=True)
    msg = str(err.value)
    assert str(dest) in msg and "not written by incident-forecast" in msg and ADVICE in msg and MARKER in msg
    assert snapshot(dest) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging left behind


def test_run_with_force_refuses_a_user_folder_before_any_work(tmp_path):
    (tmp_path / "events.csv").write_text("date,province,event_type\n2024-01-03,Khatlon,clash\n")
    (tmp_path / "config.toml").write_text('[data]\nevents = "events.csv"\n[output]\ndir = "mine"\nforce = true\n')
    dest = user_folder(tmp_path / "mine")
    before = snapshot(dest)
    from forecast.run import run

    with pytest.raises(OutputExistsError, match="not written by incident-forecast"):
        run(load_config(tmp_path / "config.toml"))
    assert snapshot(dest) == before
    res = runner.invoke(app, ["run", str(tmp_path / "config.toml"), "--force", "--quiet"])
    assert res.exit_code == 1 and "[output] dir" in res.output and ADVICE in res.output
    assert snapshot(dest) == before


def test_backtest_out_force_refuses_a_user_folder_before_reading_data(tmp_path):
    dest = user_folder(tmp_path / "bt")
    before = snapshot(dest)
    res = runner.invoke(app, ["backtest", str(tmp_path / "missing.csv"), "--out", str(dest), "--force", "--quiet"])
    assert res.exit_code == 1 and "not written by incident-forecast" in res.output, res.output
    assert "missing.csv" not in res.output  # refused before the input was looked at
    assert snapshot(dest) == before


def _cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(ours(tmp_path / "w"))
    return Path("."), "working folder"


def _ancestor(tmp_path, monkeypatch):
    top = ours(tmp_path / "top")
    (top / "deep").mkdir()
    monkeypatch.chdir(top / "deep")
    return top, "holds the working folder"


def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(ours(tmp_path / "home")))
    return tmp_path / "home", "home folder"


def _git(tmp_path, monkeypatch):
    (ours(tmp_path / "clone") / ".git").mkdir()
    return tmp_path / "clone", ".git"


def _symlink(tmp_path, monkeypatch):
    user_folder(tmp_path / "mine")
    (tmp_path / "link").symlink_to(tmp_path / "mine", target_is_directory=True)
    return tmp_path / "link", "not written by incident-forecast"


def _link_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(ours(tmp_path / "w"))
    (tmp_path / "link").symlink_to(tmp_path / "w", target_is_directory=True)
    return tmp_path / "link", "working folder"


@pytest.mark.parametrize("case", [_cwd, _ancestor, _home, _git, _symlink, _link_to_cwd])
def test_folders_that_are_never_replaced(case, tmp_path, monkeypatch):
    # all but the symlinked user folder even hold the marker: the rule beats ownership
    dest, why = case(tmp_path, monkeypatch)
    real = dest.resolve()
    before = snapshot(real)
    with pytest.raises(OutputExistsError) as err:
        write_into(dest, force=True)
    assert why in str(err.value) and ADVICE in str(err.value)
    assert snapshot(real) == before and real.is_dir()
    assert not [p for p in real.parent.iterdir() if p.name.startswith(".")]


def test_a_folder_holding_the_config_or_an_input_is_never_replaced(tmp_path):
    dest = ours(tmp_path / "out")
    (dest / "config.toml").write_text("[data]\n")
    for protected in ([dest / "config.toml"], [tmp_path / "x.csv", dest / "config.toml"]):
        with pytest.raises(OutputExistsError, match="holds config.toml, an input"):
            check_writable(dest, force=True, protected=protected)
    check_writable(dest, force=True, protected=[tmp_path / "x.csv", None])  # not an input there: ours, replaced


def test_a_run_whose_config_sits_in_the_output_folder_is_refused(tmp_path):
    out = ours(tmp_path / "out")
    (out / "events.csv").write_text("date,province,event_type\n2024-01-03,Khatlon,clash\n")
    (out / "config.toml").write_text('[data]\nevents = "events.csv"\n[output]\ndir = "."\n')
    before = snapshot(out)
    res = runner.invoke(app, ["run", str(out / "config.toml"), "--force", "--quiet"])
    assert res.exit_code == 1 and "an input of this command" in res.output, res.output
    assert snapshot(out) == before


def test_root_is_refused_by_the_check_before_any_write():
    with pytest.raises(OutputExistsError, match="root folder"):
        check_writable(Path("/"), force=True)
    with pytest.raises(OutputExistsError):
        check_writable(Path("/"), force=False)


def test_a_file_where_a_folder_is_wanted_is_refused(tmp_path):
    (tmp_path / "out").write_text("mine")
    with pytest.raises(OutputExistsError, match="is a file, not a folder"):
        check_writable(tmp_path / "out", force=True)
    assert (tmp_path / "out").read_text() == "mine"


def test_default_demo_folder_is_replaced_only_when_ours(tmp_path, monkeypatch):
    from forecast.pipeline import run_demo

    monkeypatch.chdir(tmp_path)
    dest = user_folder(tmp_path / "reports" / "demo")
    before = snapshot(dest)
    with pytest.raises(OutputExistsError, match="not written by incident-forecast"):
        run_demo(quiet=True)
    assert snapshot(dest) == before


# ----------------------------------------------------------------------------- what may be replaced
def test_marker_folder_is_replaced_and_the_new_one_has_the_marker(tmp_path):
    dest = ours(tmp_path / "out")
    with pytest.raises(OutputExistsError, match="--force"):  # ours, but still only with --force
        write_into(dest)
    write_into(dest, force=True, command="backtest")
    assert (dest / "forecasts.csv").read_text() == "new\n"
    m = json.loads((dest / MARKER).read_text())
    assert m["tool"] == "incident-forecast" and m["command"] == "backtest" and m["pid"] == os.getpid()
    assert m["version"] == forecast.__version__ and m["created"].endswith("+00:00")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("files", [
    {"run.json": json.dumps({"tool": "incident-forecast 0.3.1", "seed": 0}), "index.html": "<html>"},
    {"backtest.csv": "", "scores.csv": "", "comparison.csv": ""},
])
def test_folders_of_an_earlier_version_are_replaced(tmp_path, files):
    dest = tmp_path / "out"
    dest.mkdir()
    for name, text in files.items():
        (dest / name).write_text(text)
    assert is_ours(dest)
    write_into(dest, force=True)
    assert sorted(p.name for p in dest.iterdir()) == [MARKER, "forecasts.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("files", [
    {"run.json": json.dumps({"tool": "someone-else 1.0"})},
    {"run.json": "not json"},
    {"backtest.csv": "", "scores.csv": "", "comparison.csv": "", "notes.txt": ""},
    {MARKER: json.dumps({"tool": "other"})},
])
def test_look_alikes_are_not_ours(tmp_path, files):
    dest = tmp_path / "out"
    dest.mkdir()
    for name, text in files.items():
        (dest / name).write_text(text)
    assert not is_ours(dest)
    with pytest.raises(OutputExistsError):
        check_writable(dest, force=True)


def test_empty_folder_is_written_without_force_and_parents_are_created(tmp_path):
    (tmp_path / "empty").mkdir()
    write_into(tmp_path / "empty")
    assert (tmp_path / "empty" / MARKER).exists()
    write_into(tmp_path / "reports" / "2026-01")
    assert (tmp_path / "reports" / "2026-01" / "forecasts.csv").exists()


def test_failure_leaves_the_old_folder_in_place(tmp_path):
    dest = ours(tmp_path / "out")
    with pytest.raises(RuntimeError):
        with staged_dir(dest, force=True):
            raise RuntimeError("boom")
    assert (dest / "forecasts.csv").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_folder_that_became_the_users_during_the_run_is_not_replaced(tmp_path):
    dest = tmp_path / "out"
    with pytest.raises(OutputExistsError):
        with staged_dir(dest, force=True) as tmp:
            (tmp / "forecasts.csv").write_text("new\n")
            user_folder(dest)  # e.g. the user made the folder while the run was going
    assert (dest / "thesis.docx").exists() and not (dest / "forecasts.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ----------------------------------------------------------------------------- stale staging
def test_stale_staging_of_dead_runs_is_removed_live_and_unmarked_kept(tmp_path):
    def staging(name: str, pid: int | None, **extra) -> Path:
        p = tmp_path / name
        p.mkdir()
        (p / "forecasts.csv").write_text("x")
        if pid is not None:
            (p / MARKER).write_text(json.dumps({**marker("run"), "pid": pid, **extra}))
        return p

    dead = [staging(".out.tmp-dead1", dead_pid()), staging(".out.old-dead2", dead_pid())]
    live = staging(".out.tmp-live", os.getpid())
    unmarked = staging(".out.tmp-nomark", None)
    other = staging(".other.tmp-dead", dead_pid())  # staging of another destination
    elsewhere = staging(".out.tmp-host", dead_pid(), host="another-machine")  # its pid means nothing here
    write_into(tmp_path / "out")
    assert not any(p.exists() for p in dead)
    assert live.exists() and unmarked.exists() and other.exists() and elsewhere.exists()
    assert remove_stale(tmp_path / "out") == []


# ----------------------------------------------------------------------------- report and files
def test_report_refuses_a_folder_that_is_not_a_run_and_writes_nothing(tmp_path):
    dest = user_folder(tmp_path / "mine")
    (dest / "report_context.json").write_text(json.dumps({"figures": []}))
    before = snapshot(dest)
    res = runner.invoke(app, ["report", str(dest)])
    assert res.exit_code == 1 and "not a run folder written by incident-forecast" in res.output
    assert snapshot(dest) == before and not (dest / "index.html").exists()


def test_output_file_needs_an_existing_folder_and_must_not_be_a_folder_or_input(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        check_file_writable(tmp_path / "nope" / "fc.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(OutputExistsError, match="is a folder"):
        check_file_writable(tmp_path / "dir.csv", force=True)
    (tmp_path / "events.csv").write_text("x")
    with pytest.raises(OutputExistsError, match="input"):
        check_file_writable(tmp_path / "events.csv", force=True, protected=[tmp_path / "events.csv"])
    res = runner.invoke(app, ["predict", str(tmp_path / "events.csv"), "--model", "climatology",
                              "--out", str(tmp_path / "nope" / "fc.csv")])
    assert res.exit_code == 1 and "does not exist" in res.output and not (tmp_path / "nope").exists()
    res = runner.invoke(app, ["panel", str(tmp_path / "events.csv"), "--out", str(tmp_path / "dir.csv")])
    assert res.exit_code == 1 and "is a folder" in res.output
    res = runner.invoke(app, ["panel", str(tmp_path / "events.csv"), "--out", str(tmp_path / "events.csv"),
                              "--force"])
    assert res.exit_code == 1 and "input" in res.output and (tmp_path / "events.csv").read_text() == "x"


# ----------------------------------------------------------------------------- CSV injection
def test_write_csv_defuses_formulas_in_text_and_leaves_numbers(tmp_path):
    frame = pd.DataFrame({
        "province": ['=HYPERLINK("x")', "-Kunduz", "+1", "@SUM(A1)", "\tTab", "\rCR", "Khatlon", None],
        "kind": pd.Categorical(["=cat", "a", "a", "a", "a", "a", "a", "a"]),
        "mean": [-1.5, 2.0, -0.25, 0.0, 1.0, 1.0, 1.0, 1.0],
        "h": [-1, 1, 2, 3, 4, 5, 6, 7],
    })
    original = frame.copy()
    write_csv(frame, tmp_path / "x.csv", index=False)
    pd.testing.assert_frame_equal(frame, original)  # the caller's frame is untouched
    back = pd.read_csv(tmp_path / "x.csv", keep_default_na=False)
    assert back["province"].tolist() == ["'=HYPERLINK(\"x\")", "'-Kunduz", "'+1", "'@SUM(A1)", "'\tTab", "'\rCR",
                                         "Khatlon", ""]
    assert back["kind"].iloc[0] == "'=cat"
    assert back["mean"].tolist() == [-1.5, 2.0, -0.25, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert back["h"].tolist() == [-1, 1, 2, 3, 4, 5, 6, 7]
    assert (tmp_path / "x.csv").read_bytes().split(b"\r\n")[1].endswith(b",-1.5,-1")
    write_csv(frame.iloc[[0, 1]], tmp_path / "y.csv", index=False)  # no carriage return: plain \n lines
    assert (tmp_path / "y.csv").read_bytes().count(b"\r") == 0


# ----------------------------------------------------------------------------- math text in figures
MATH = r"$\undefinedmacro$"


@pytest.fixture(scope="module")
def math_panel() -> pd.DataFrame:
    full = forecast.build_panel(forecast.load_sample("border_sim"), as_of="2025-12-31")
    small = full[full["province"].isin(["Khatlon", "Kunduz"])].copy()
    small["province"] = small["province"].replace({"Khatlon": MATH})
    return small.reset_index(drop=True)


def test_dollar_names_are_drawn_literally_by_every_figure(math_panel):
    from forecast.calibration import pit_histogram, reliability

    table = forecast.load_model("climatology").fit(math_panel).forecast(3).to_frame(thresholds=(1, 3))
    hist = math_panel[["unique_id", "ds", "y", "country", "province", "event_type"]]
    eff = pd.DataFrame({"unique_id": math_panel["unique_id"].unique()[:2], "term": MATH, "kind": "step",
                        "date": pd.Timestamp("2023-03-01"), "estimate": [0.4, -0.2], "std_error": 0.1,
                        "rate_ratio": [1.5, 0.8], "lo": [1.1, 0.6], "hi": [2.0, 1.1], "p_value": [0.01, 0.2],
                        "fallback": "none"})
    pit = pit_histogram(([0.1, 0.5], [0.3, 0.9]), bins=5)
    rel = reliability([0.1, 0.9, 0.5], [False, True, True])
    figs = [plots.monthly_counts(math_panel), plots.history_heatmap(math_panel),
            plots.small_multiples(hist, table), plots.risk_heatmap(table, k=1),
            plots.fan_chart(hist, table, unique_id=math_panel["unique_id"].iloc[0]),
            plots.pit_histograms({MATH: pit}), plots.reliability_diagram({MATH: rel}, k=1),
            plots.effects_plot(eff, keys=math_panel.drop_duplicates("unique_id"))]
    assert matplotlib.rcParams["text.parse_math"]  # the setting is scoped, not left changed
    texts = []
    for fig in figs[:2]:  # drawn outside plots.save: the figure itself must keep math text off
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        texts += [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    assert any(MATH in t for t in texts)
    for fig in figs:
        assert plots.to_png_bytes(fig).startswith(b"\x89PNG")
    plt.close("all")


RUN_CONFIG = """
[data]
events = "events.csv"
as_of = "2025-12-31"
[models]
candidates = ["climatology", "negbin_glm"]
[backtest]
horizon = 2
origins = 3
[forecast]
horizon = 2
thresholds = [1, 5]
[output]
dir = "out"
"""


def test_a_run_with_hostile_province_names_escapes_csv_and_draws_figures(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = forecast.load_sample("border_sim")
    ev = ev[ev["province"].isin(["Khatlon", "Sughd"]) & (ev["date"] >= "2021-01-01")].copy()
    ev["province"] = ev["province"].replace({"Khatlon": "=cmd|' /C calc'!A0", "Sughd": MATH})
    ev[["event_id", "date", "country", "province", "event_type", "fatalities"]].to_csv(
        tmp_path / "events.csv", index=False, date_format="%Y-%m-%d")
    cfg = tmp_path / "config.toml"
    cfg.write_text(RUN_CONFIG)
    res = runner.invoke(app, ["run", str(cfg), "--quiet"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    fc = pd.read_csv(out / "forecasts.csv")
    assert set(fc["province"]) == {"'=cmd|' /C calc'!A0", MATH}
    assert (fc["mean"] >= 0).all()
    assert (out / "figures" / "forecasts.png").stat().st_size > 1000
    assert json.loads((out / MARKER).read_text())["command"] == "run"
    assert json.loads((out / "run.json").read_text())["tool"].startswith("incident-forecast ")


def test_math_text_stays_off_for_labels_made_when_the_figure_is_drawn():
    """Tick labels beyond those made with the figure are created at draw time (here: by savefig
    outside any rc context), so the figure's own draw must keep math text off."""
    from forecast import _plot_helpers as H

    def make():
        fig, ax = plt.subplots(layout="constrained")
        ax.bar([f"p{i}" for i in range(30)] + [MATH], range(31))
        return fig

    fig = H.plain_text(make)()
    assert matplotlib.rcParams["text.parse_math"]
    fig.savefig(io.BytesIO(), format="png")
    assert MATH in [t.get_text() for t in fig.axes[0].get_xticklabels()]
    plt.close(fig)
