"""One orchestrator, a thin CLI: the CLI's imports, a light ``import forecast.cli``, progress events."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import forecast
import forecast.cli as cli
from forecast import pipeline
from forecast.config import load_config
from forecast.parallel import run_tasks
from tests.test_run import CONFIG, small_log, write_config

ROOT = Path(forecast.__file__).parent


def _forecast_imports(path: Path) -> set[str]:
    """The ``forecast`` modules a file imports, at module level and inside functions."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "forecast"}
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "forecast":
            # "from forecast import pipeline" imports forecast.pipeline; "from forecast.x import y" forecast.x.
            out |= ({f"forecast.{a.name}" for a in node.names} if node.module == "forecast" else {node.module})
    return out


def test_cli_imports_at_most_four_package_modules():
    # Commands and shared options kept in their own modules (forecast/_cli_*.py, imported by cli.py)
    # are part of the thin CLI: cli.py and they together import at most four other package modules.
    mods = _forecast_imports(ROOT / "cli.py")
    for path in ROOT.glob("_cli_*.py"):
        mods |= _forecast_imports(path)
    assert "forecast.pipeline" in mods
    assert len({m for m in mods if not m.startswith("forecast._cli_")}) <= 4, sorted(mods)


def test_import_counter_sees_imports_inside_functions(tmp_path):
    # Guards the test above: a function-level import is counted.
    src = tmp_path / "m.py"
    src.write_text("from forecast import pipeline\ndef f():\n    from forecast.ingest import read_events\n"
                   "    import forecast.panel\n")
    assert _forecast_imports(src) == {"forecast.pipeline", "forecast.ingest", "forecast.panel"}


def test_importing_the_cli_and_pipeline_loads_no_heavy_library():
    code = ("import forecast.cli, forecast.pipeline, sys; "
            "heavy = sorted(m for m in ('pandas', 'numpy', 'matplotlib', 'scipy', 'statsmodels') if m in sys.modules); "
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_pipeline_modules_stay_small():
    for path in sorted((ROOT / "pipeline").glob("*.py")):
        assert len(path.read_text(encoding="utf-8").splitlines()) < 400, path.name


def test_run_module_is_a_shim_over_the_pipeline():
    import forecast.run

    assert forecast.run.run is pipeline.run
    assert forecast.run.render_run_dir is pipeline.render_run_dir
    assert forecast.backtest is pipeline.backtest


@pytest.mark.parametrize("jobs", [1, 2])
def test_run_tasks_reports_each_task_to_a_callback(jobs):
    seen: list[tuple[int, int]] = []
    out = run_tasks(pow, [(2, 1), (2, 2), (2, 3)], jobs=jobs,
                    progress=lambda done, total: seen.append((done, total)))
    assert out == [2, 4, 8]
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]


@pytest.fixture(scope="module")
def progress_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("progress")
    small_log(tmp)
    cfg = load_config(write_config(tmp, CONFIG)).with_overrides(quiet=True)
    events: list[tuple[str, int, int]] = []
    pipeline.run(cfg, progress=lambda *e: events.append(e))
    return events


def test_run_reports_every_stage_in_order(progress_run):
    stages = list(dict.fromkeys(stage for stage, _, _ in progress_run))
    assert stages == ["ingest", "panel", "backtest", "choose", "final fit", "checks", "figures", "html"]
    for stage in stages:
        mine = [(d, t) for s, d, t in progress_run if s == stage]
        assert mine[0][0] == 0 and mine[-1][0] == mine[-1][1] > 0, (stage, mine)
        assert all(0 <= d <= t for d, t in mine)


def test_backtest_progress_counts_every_task(progress_run):
    bt = [(d, t) for s, d, t in progress_run if s == "backtest"]
    total = bt[0][1]
    # 3 models x 4 origins refitted every 2 -> one task per model (chunks of series): at least 3.
    assert total >= 3 and [d for d, _ in bt] == list(range(total + 1))


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_printer_off_a_terminal_prints_plain_lines_at_most_every_few_seconds(capsys):
    clock = _Clock()
    show = cli._ProgressPrinter(tty=False, every=5.0, clock=clock)
    show("ingest", 0, 1)
    show("ingest", 1, 1)
    for done in range(49):
        clock.now = done * 0.5  # a task every half second: a line every 5 s
        show("backtest", done, 48)
    clock.now = 30.0
    show("figures", 0, 7)
    show("figures", 7, 7)
    out, err = capsys.readouterr()
    # (with the share done, the time left from the rate so far, and a last line per stage: see test_progress.py)
    assert out.splitlines() == ["ingest …", "ingest: done in 0.0 s", "backtest …",
                                "backtest: 10/48 (20 %), about 19 s left", "backtest: 20/48 (41 %), about 14 s left",
                                "backtest: 30/48 (62 %), about 9 s left", "backtest: 40/48 (83 %), about 4 s left",
                                "backtest: 48/48 in 24 s", "figures …", "figures: 7/7 in 0.0 s"]
    assert err == ""  # stderr is for warning:/error: lines only


def test_quiet_commands_show_no_progress():
    assert cli._progress_printer(quiet=True) is None
    assert isinstance(cli._progress_printer(quiet=False), cli._ProgressPrinter)


def test_cli_run_prints_stage_lines_on_stdout(tmp_path):
    from typer.testing import CliRunner

    small_log(tmp_path)
    cfg = write_config(tmp_path, CONFIG.replace("origins = 4", "origins = 2"))
    res = CliRunner().invoke(cli.app, ["run", str(cfg)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    for stage in ("ingest", "panel", "backtest", "choose", "final fit", "figures", "html"):
        assert f"{stage} …" in lines
    assert lines[-1].startswith("report: ")


def test_package_exports_the_pipeline_entry_points():
    assert forecast.load_panel is pipeline.load_panel
    assert forecast.run_demo is pipeline.run_demo
