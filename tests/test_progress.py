"""Progress that tells the truth: a count per (model, origin) with a rate-based time left,
the auto model's member backtests in the same count, stage lines for the final fit, figures
and HTML, plain throttled lines off a terminal, and nothing but warnings with ``--quiet``.

No test sleeps: a fake clock drives the printer.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import forecast.cli as cli
from forecast import pipeline
from forecast._cli_progress import ProgressPrinter, duration, time_left
from forecast._progress_tally import Tally
from forecast.backtesting import backtest
from forecast.config import load_config
from forecast.models.baselines import Climatology, Naive
from forecast.parallel import run_tasks
from forecast.pipeline.stages import reporter
from tests.test_auto import _panel, _small_auto
from tests.test_parallel import cluster  # noqa: F401 (a fixture: a two-process Dask cluster)
from tests.test_run import CONFIG, small_log, write_config


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- the printer
def test_time_left_is_the_rate_so_far_times_the_units_left():
    # 10 units in 20 s: 2 s a unit, 90 left -> 180 s
    assert time_left(20.0, 10, 100) == "about 3 min left"
    assert time_left(5.0, 10, 48) == "about 19 s left"  # 0.5 s x 38 = 19 s
    assert time_left(5.0, 0, 48) == "" and time_left(5.0, 48, 48) == ""
    assert [duration(s) for s in (0.42, 12.4, 125, 3720)] == ["0.4 s", "12 s", "2 min 05 s", "1 h 02 min"]


def test_printer_off_a_terminal_throttles_lines_gives_percent_time_left_and_a_last_line(capsys):
    clock = Clock()
    show = ProgressPrinter(tty=False, every=5.0, clock=clock)
    stamps = []
    for done in range(101):
        clock.now = 2.0 * done  # a unit every 2 s: the time left is 2 s per unit left
        show("backtest", done, 100)
        out = capsys.readouterr().out
        if out:
            stamps.append((clock.now, out.strip()))
    lines = [line for _, line in stamps]
    assert lines[0] == "backtest …" and lines[-1] == "backtest: 100/100 in 3 min 20 s"
    middle = stamps[1:-1]
    # at most one line every 5 s, and a line as soon as 5 s have passed
    times = [t for t, _ in stamps[:-1]]
    assert all(b - a >= 5.0 for a, b in zip(times, times[1:]))
    assert [t for t, _ in middle][:3] == [6.0, 12.0, 18.0]
    for t, line in middle:
        done = int(t / 2)
        left = 2.0 * (100 - done)
        want = f"about {int(round(left / 60))} min left" if left >= 60 else f"about {int(round(left))} s left"
        assert line == f"backtest: {done}/100 ({done} %), {want}"


def test_printer_prints_stage_lines_details_and_each_stage_once_done(capsys):
    clock = Clock()
    show = ProgressPrinter(tty=False, every=5.0, clock=clock)
    show("choose", 0, 1)
    clock.now = 0.5
    show("choose", 1, 1)
    show("final fit", 0, 2, detail="fitting auto on 40 series")
    clock.now = 3.0
    show("final fit", 1, 2, detail="fitting climatology on 2 series")
    show("final fit", 1, 2, detail="fitting climatology on 2 series")  # the same detail: once
    clock.now = 4.0
    show("final fit", 2, 2)
    show("figures", 0, 3)
    clock.now = 16.0
    show("figures", 3, 3)
    show("html", 0, 1, detail="writing 9 tables, run.json and index.html")
    clock.now = 16.25
    show("html", 1, 1)
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "choose …", "choose: done in 0.5 s",
        "final fit …", "final fit: fitting auto on 40 series", "final fit: fitting climatology on 2 series",
        "final fit: 2/2 in 3.5 s",
        "figures …", "figures: 3/3 in 12 s",
        "html …", "html: writing 9 tables, run.json and index.html", "html: done in 0.2 s"]
    assert err == ""


def test_quiet_gives_no_printer_and_the_cli_run_prints_only_warnings(tmp_path):
    assert cli._progress_printer(quiet=True) is None
    small_log(tmp_path)
    cfg = write_config(tmp_path, CONFIG.replace("origins = 4", "origins = 2"))
    res = CliRunner().invoke(cli.app, ["run", str(cfg), "--quiet"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "index.html").is_file()
    assert all(line.startswith("warning:") for line in res.output.splitlines()), res.output


# --------------------------------------------------------------------------- the count
def test_tally_adds_parts_into_one_count_that_says_done_only_at_the_end():
    seen = []
    tally = Tally(lambda d, t: seen.append((d, t)), total=3)
    tasks = tally.part(reserved=3)
    nested = tally.part()
    nested(0, 2)  # a nested backtest announces its 2 units
    nested(1, 2)
    nested(2, 2)
    tasks(0, 3)
    for k in (1, 2, 3):
        tasks(k, 3)
    second = nested.part()  # the nested run's second backtest counts from zero again
    second(0, 1)
    second(1, 1)
    tally.finish()
    assert seen[0] == (0, 5) and seen[-1] == (6, 6)
    done = [d for d, _ in seen]
    assert all(0 <= b - a <= 1 for a, b in zip(done, done[1:]))
    assert all(d < t for d, t in seen[:-1])  # never "complete" before finish()


def test_run_tasks_counts_units_one_by_one_in_process_and_by_task_size_in_workers():
    seen = []
    out = run_tasks(_units, [(3,), (2,)], progress=lambda d, t: seen.append((d, t)), sizes=[3, 2], tick="tick")
    assert out == [3, 2]
    assert seen == [(0, 5), (1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    seen.clear()
    out = run_tasks(_units, [(3,), (2,)], jobs=2, progress=lambda d, t: seen.append((d, t)), sizes=[3, 2],
                    tick="tick")
    assert out == [3, 2] and seen == [(0, 5), (3, 5), (5, 5)]


def _units(n, tick=None):
    for _ in range(n):
        if tick:
            tick()
    return n


def test_backtest_counts_each_model_and_origin_and_keeps_its_numbers():
    panel = _panel(n_series=3, n=40)
    models = {"climatology": Climatology(), "naive": Naive()}
    seen = []
    res = backtest(panel, models, 2, n_origins=6, progress=lambda d, t: seen.append((d, t)))
    quiet = backtest(panel, models, 2, n_origins=6, progress=False)
    pd.testing.assert_frame_equal(res.forecasts, quiet.forecasts)
    pd.testing.assert_frame_equal(res.point_scores, quiet.point_scores)
    # one unit per (model, origin): 12 units, one event each, where a task per model gave 2
    assert seen == [(d, 12) for d in range(13)]


def test_auto_member_backtests_move_the_same_count():
    panel = _panel()
    seen = []
    res = backtest(panel, {"climatology": Climatology(), "auto": _small_auto()}, 1, n_origins=4,
                   progress=lambda d, t: seen.append((d, t)))
    quiet = backtest(panel, {"climatology": Climatology(), "auto": _small_auto()}, 1, n_origins=4, progress=False)
    np.testing.assert_array_equal(res.point_scores["log"].to_numpy(), quiet.point_scores["log"].to_numpy())
    done = [d for d, _ in seen]
    total = seen[-1][1]
    # 4 climatology units + auto's 3 members at the 4 outer and their internal cutoffs
    assert total > 4 + 3 * 4 and seen[-1] == (total, total)
    assert all(0 <= b - a <= 1 for a, b in zip(done, done[1:]))
    assert all(d < t for d, t in seen[:-1])
    assert all(t == total for _, t in seen[1:])  # known from the first unit: the time left is right early


# --------------------------------------------------------------------------- the pipeline
def test_reporter_passes_detail_only_to_a_callback_that_takes_it():
    plain, rich = [], []
    reporter(lambda *e: plain.append(e))("final fit", 0, 1, "fitting auto on 6 series")
    reporter(lambda s, d, t, detail="": rich.append((s, d, t, detail)))("final fit", 0, 1, "fitting x on 6 series")
    assert plain == [("final fit", 0, 1)] and rich == [("final fit", 0, 1, "fitting x on 6 series")]


@pytest.fixture(scope="module")
def detailed_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("progress")
    small_log(tmp)
    cfg = load_config(write_config(tmp, CONFIG.replace("refit_every = 2", "refit_every = 1"))).with_overrides(
        quiet=True)
    events: list[tuple] = []
    pipeline.run(cfg, progress=lambda stage, done, total, detail="": events.append((stage, done, total, detail)))
    return events


def test_run_backtest_moves_one_unit_at_a_time(detailed_run):
    bt = [(d, t) for s, d, t, _ in detailed_run if s == "backtest"]
    # 3 models x 4 origins: 12 units (one task per model would be 3 events)
    assert bt == [(d, 12) for d in range(13)]


def test_run_has_stage_lines_for_final_fit_figures_and_html_in_order(detailed_run):
    stages = list(dict.fromkeys(s for s, *_ in detailed_run))
    assert stages[-4:] == ["final fit", "checks", "figures", "html"]
    details = [(s, x) for s, _, _, x in detailed_run if x]
    fits = [x for s, x in details if s == "final fit"]
    assert fits and all(x.startswith("fitting ") and x.endswith(" series") for x in fits)
    assert sum(int(x.split(" on ")[1].split()[0]) for x in fits) == 6  # every series fitted once
    assert [s for s, _ in details][-1] == "html"
    figs = [(d, t) for s, d, t, _ in detailed_run if s == "figures"]
    assert figs[0][0] == 0 and figs[-1][0] == figs[-1][1] > 1


def test_auto_refitted_per_cutoff_counts_each_cutoff():
    # a rolling window: auto is refitted at every cutoff (no compute-once), one unit per cutoff
    seen = []
    backtest(_panel(), {"auto": _small_auto()}, 1, n_origins=3, window=40, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_auto_fit_reports_its_internal_backtest():
    seen = []
    _small_auto().fit(_panel(), seed=0, progress=lambda d, t: seen.append((d, t)))
    total = seen[-1][1]
    # 3 members at the internal cutoffs, one unit each
    assert total >= 3 * 2 and total % 3 == 0 and [d for d, _ in seen] == list(range(total + 1))


def test_final_fit_counts_the_auto_models_internal_backtest_after_a_stage_line():
    from types import SimpleNamespace

    from forecast.pipeline.stages import _fit_chosen

    panel = _panel()
    cfg = SimpleNamespace(run=SimpleNamespace(seed=0), forecast=SimpleNamespace(horizon=2))
    selection = pd.DataFrame({"unique_id": ["s0", "s1", "s2", "s3"],
                              "model": ["auto", "auto", "climatology", "climatology"]})
    events = []
    _fit_chosen(cfg, panel, {"auto": "auto", "climatology": "climatology"}, selection,
                lambda stage, done, total, detail="": events.append((stage, done, total, detail)))
    assert {s for s, *_ in events} == {"final fit"}
    assert [x for *_, x in events if x] == ["fitting auto on 2 series", "fitting climatology on 2 series"]
    assert events[0][:3] == ("final fit", 0, 2)
    done = [d for _, d, _, _ in events]
    total = events[-1][2]
    assert total > 2 and events[-1][1] == total  # the two models and auto's internal units
    assert all(0 <= b - a <= 1 for a, b in zip(done, done[1:])) and all(d < t for _, d, t, _ in events[:-1])


@pytest.mark.parametrize("where", ["jobs", "dask"])
def test_tasks_in_workers_count_their_origins_when_they_finish(where, request):
    # a callback cannot reach back from a worker: each task moves the count by its origins
    panel = _panel(n_series=3, n=40)
    models = {"climatology": Climatology(), "naive": Naive()}
    run = {"jobs": 2} if where == "jobs" else {"dask": request.getfixturevalue("cluster")}
    seen = []
    res = backtest(panel, models, 2, n_origins=6, progress=lambda d, t: seen.append((d, t)), **run)
    pd.testing.assert_frame_equal(res.point_scores, backtest(panel, models, 2, n_origins=6,
                                                             progress=False).point_scores)
    done = [d for d, _ in seen]
    assert seen[0] == (0, 12) and seen[-1] == (12, 12) and {t for _, t in seen} == {12}
    assert done == sorted(done) and len(seen) > 2  # more than one task per model
