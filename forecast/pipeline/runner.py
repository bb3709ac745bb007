"""The monthly run: ingest → panel → backtest → choose → forecast → figures → report.

:func:`run` does everything ``forecast run CONFIG`` does and writes into the
output folder (built in a temporary folder and moved into place only when
complete): ``index.html``, ``figures/*.png``, ``forecasts.csv``, ``totals.csv`` and
``totals_horizon.csv`` (country and whole-area totals, :mod:`forecast.pipeline.totals`),
``scores.csv``, ``comparison.csv``, ``selection.csv``, ``alerts.csv`` (the alert rule
applied to every backtest forecast, see :mod:`forecast.alert_scores`), ``run.json`` (resolved
config, input hashes, package versions, seed, fallbacks, warnings, timings)
and ``report_context.json`` (what ``forecast report RUN_DIR`` re-renders from).
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

from forecast.exceptions import ForecastWarning
from forecast.pipeline import stages
from forecast.pipeline.context import context as report_context
from forecast.pipeline.context import render_run_dir
from forecast.pipeline.manifest import Timer, manifest
from forecast.pipeline.stages import Progress


def _say(cfg, msg: str) -> None:
    if not cfg.run.quiet:
        print(msg, flush=True)


def run(cfg, *, simulated: bool = False, title: str | None = None, progress: Progress | None = None) -> Path:
    """Execute a run described by a :class:`forecast.config.RunConfig`; return the output folder.

    Parameters
    ----------
    cfg : RunConfig
        The resolved run configuration (:func:`forecast.config.load_config`).
    simulated : bool
        The data are simulated (the demo): the report says so.
    title : str, optional
        Report title (default "Incident forecast").
    progress : callable, optional
        ``progress(stage, done, total)`` is called as the run advances through the stages
        ``ingest``, ``panel``, ``backtest`` (per model and origin, the ``auto`` model's
        member backtests included: see :mod:`forecast._progress_tally`), ``choose``, ``final
        fit`` (per chosen model, and the ``auto`` model's internal backtest), ``checks``
        (tables, effects, past alerts), ``figures`` (per figure) and ``html``. A callback with
        a ``detail`` parameter also hears what a step does ("fitting auto on 40 series").
        Without it the backtest shows a tqdm bar on a terminal (unless ``cfg.run.quiet``).
    """
    from forecast.outputs import check_writable, staged_dir

    out = Path(cfg.output.dir)
    # The output folder is replaced as a whole: never one holding the config or an input.
    protected = [cfg.path, cfg.data.source, cfg.data.gazetteer,
                 *(v for v in (cfg.models.baseline, *cfg.models.labelled().values()) if isinstance(v, Path))]
    where = {"force": cfg.output.force, "protected": protected, "option": "--out or [output] dir"}
    check_writable(out, **where)
    warned: list[str] = []
    with warnings.catch_warnings():
        # Warnings are recorded for run.json AND shown at once (through whatever showwarning was
        # active: the CLI's printer, a test's recorder), not held back until after the run.
        warnings.simplefilter("always", ForecastWarning)
        warnings.showwarning = _recording(warnings.showwarning, warned)
        with staged_dir(out, command="demo" if simulated else "run", **where) as tmp:
            result = _execute(cfg, tmp, simulated=simulated, title=title, warned=lambda: list(warned),
                              progress=progress)
    _say(cfg, f"report: {out / 'index.html'}  ({result['n_series']} series, {result['seconds']:.0f} s)")
    return out


def _recording(show, warned: list[str]):
    """A showwarning that appends ForecastWarning messages to ``warned`` and forwards each new one to ``show``."""
    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ForecastWarning):
            if str(message) in warned:  # "always" above is for the record; the user sees it once
                return
            warned.append(str(message))
        show(message, category, filename, lineno, file, line)
    return showwarning


def _execute(cfg, tmp: Path, *, simulated: bool, title: str | None, warned, progress: Progress | None) -> dict:
    import pandas as pd

    from forecast.outputs import write_csv
    from forecast.pipeline.figures import check_backtest_series, figures
    from forecast.pipeline.past import naive_rule_text, past_checks
    from forecast.pipeline.spill import spill_figure
    from forecast.pipeline.totals import report_rows, totals
    from forecast.report_context import json_values

    progress = stages.reporter(progress)  # detail= only for a callback that takes it

    def step(stage: str, done: int = 0, total: int = 1, detail: str = "") -> None:
        if progress:
            progress(stage, done, total, detail)

    timer = Timer()
    t_start = time.perf_counter()
    step("ingest")
    with timer("ingest"):
        events = stages.read_run_events(cfg)
    step("ingest", 1)
    _say(cfg, f"read {len(events):,} {'panel rows' if cfg.data.panel else 'events'} from {Path(cfg.data.source).name}")
    step("panel")
    with timer("panel"):
        panel = stages.run_panel(cfg, events)
    step("panel", 1)
    n_series = panel["unique_id"].nunique()
    check_backtest_series(cfg, panel)  # a misspelt series fails now, not after the backtest
    _say(cfg, f"panel: {n_series} series, {panel['ds'].min().date()} to {panel['ds'].max().date()}")

    labelled, baseline = stages.candidates(cfg)
    # With a progress callback the backtest reports through it (per task); without one, as before:
    # a tqdm bar on a terminal unless quiet.
    bt_progress = (lambda done, total: progress("backtest", done, total)) if progress else (
        None if not cfg.run.quiet else False)
    with timer("backtest"):
        res = stages.backtest_candidates(cfg, panel, labelled, bt_progress)
    step("choose")
    with timer("compare"):
        comparison, comparison_h, selection = stages.choose(cfg, res, panel, baseline)
    step("choose", 1)
    with timer("forecast"):
        fc, fitted, selection = stages.final_forecast(cfg, panel, labelled, selection, baseline, progress,
                                                         cells=res.member_cells)
    step("checks", 0, 1, "forecast table, totals, intervention effects, past alerts and calibration")
    table, diag, keys = stages.forecast_table(cfg, fc, fitted, panel)
    totals_ds, totals_h = totals(fc, keys, cfg, panel)
    total = report_rows(totals_h, cfg.forecast.levels)
    effects = stages.effects(cfg, panel, labelled)
    with timer("past checks"):
        past = past_checks(cfg, res, panel, selection)
    step("checks", 1)

    step("figures")  # (the stage starts before the figures are drawn, not when the first is saved)
    with timer("figures"):
        figs = figures(panel, table, res, effects, cfg, tmp / "figures", progress)
        spill = spill_figure(fitted, panel, tmp / "figures")
        if spill is not None:
            figs.append(spill)
    files = {"forecasts.csv": table, "totals.csv": totals_ds, "totals_horizon.csv": totals_h,
             "scores.csv": res.scores(("model", "h")),
             "comparison.csv": pd.concat([comparison.assign(h="all"), comparison_h], ignore_index=True),
             "selection.csv": selection, "diagnostics.csv": diag, "panel.csv": panel, "alerts.csv": past["alerts"]}
    step("html", 0, 1, f"writing {len(files)} tables, run.json and index.html")
    for name, frame in files.items():
        write_csv(frame, tmp / name, index=False, date_format="%Y-%m-%d")
    man = manifest(cfg, events, panel, diag, warned(), timer, t_start, selection)
    note = naive_rule_text(past["naive_window"], past["unit"])
    # NaN (a ratio with no events or no alerts) is not JSON: None, as in report_context.json.
    man["calibration"] = json_values(past["calibration"].to_dict("records"))
    man["past_alerts"] = {"rule": f"P(Y >= {max(cfg.forecast.thresholds)}) >= {cfg.forecast.alert_probability}",
                          "naive_rule": note, "rows": json_values(past["alerts"].to_dict("records"))}
    (tmp / "run.json").write_text(json.dumps(man, indent=2, default=str), encoding="utf-8")
    context = report_context(cfg, events, panel, table, total, effects, comparison, comparison_h, selection,
                             labelled, figs, man, simulated=simulated, title=title, baseline=baseline,
                             past={**past, "note": note})
    (tmp / "report_context.json").write_text(context.to_json(), encoding="utf-8")
    render_run_dir(tmp)
    step("html", 1)
    return {"n_series": n_series, "seconds": time.perf_counter() - t_start}
