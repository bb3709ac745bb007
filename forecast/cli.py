"""The ``forecast`` command line.

Only this module imports typer. Every command is one call into
:mod:`forecast.pipeline` plus printing; heavy libraries (pandas, statsmodels,
matplotlib) are imported by the pipeline when a command runs, so
``forecast --help`` is fast.
Bad input prints one line per problem to stderr and exits 1 (no traceback);
usage errors exit 2.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, Optional

import typer

try:  # typer >= 0.24 carries its own copy of click
    from typer._click import ClickException
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - older typer on top of click
    from click import ClickException, get_current_context

from forecast import pipeline
from forecast._cli_options import (AS_OF, COUNTRY, DASK_HELP, EVENTS_FILE, EVENTS_OR_PANEL, FREQ, GAZETTEER,
                                   MONTHFIRST, QUIET, REFIT_EVERY, RUN_AS_OF, RUN_FREQ, RUN_GAZETTEER,
                                   RUN_MONTHFIRST, RUN_SCHEMA, SCHEMA, SEED, data_options, run_data_overrides)
from forecast._cli_progress import ProgressPrinter, progress_printer
from forecast._boundary import (EXIT_INPUT, EXIT_INTERRUPT, EXIT_TERM, ForecastError, Terminated, error_lines,
                                escape, input_error_line, install_sigterm_handler, printing_warnings,
                                report_internal_error)
from forecast._version import __version__

app = typer.Typer(
    name="forecast",
    help="Forecast per-province counts of security incidents (clashes, attacks, seizures) "
         "with honest count distributions.\n\n"
         "\b\nExamples:\n"
         "  forecast demo                        # the whole pipeline on bundled simulated data\n"
         "  forecast init config.toml            # a commented starter configuration\n"
         "  forecast validate events.csv         # check a log before you count it\n"
         "  forecast run config.toml             # backtest, choose, forecast, write the report\n"
         "  forecast backtest events.csv --models climatology,negbin_glm --out bt/\n"
         "  forecast COMMAND --help              # options and an example for each command",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"incident-forecast {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="On an internal error show the traceback here "
                                                      "instead of writing a crash log."),
) -> None:
    """Forecast per-province counts of security incidents."""


def _debug_requested() -> bool:
    ctx = get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("debug"))


def _friendly(func: Callable) -> Callable:
    """The error boundary of a command: exit 1 with one line per input problem, 3 on a bug.

    Warnings are printed as they occur, once each (see :mod:`forecast._boundary`).
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with printing_warnings(quiet=bool(kwargs.get("quiet", False))):
            try:
                return func(*args, **kwargs)
            except ForecastError as exc:
                for line in error_lines(exc):
                    typer.echo(f"error: {line}", err=True)
                raise typer.Exit(EXIT_INPUT) from None
            except (ClickException, typer.Exit, typer.Abort):  # typer's own exits and usage errors
                raise
            except Exception as exc:  # noqa: BLE001 - this is the boundary: nothing may escape as a traceback
                source = next((kwargs[k] for k in ("file", "config", "run_dir") if kwargs.get(k)), None)
                line = input_error_line(exc, source)
                if line is not None:
                    typer.echo(f"error: {line}", err=True)
                    raise typer.Exit(EXIT_INPUT) from None
                raise typer.Exit(report_internal_error(exc, debug=_debug_requested())) from None
            except KeyboardInterrupt:
                typer.echo("error: interrupted", err=True)
                raise typer.Exit(EXIT_INTERRUPT) from None
            except Terminated:  # raised by the SIGTERM handler main() installs; staging is gone by now
                typer.echo("error: terminated", err=True)
                raise typer.Exit(EXIT_TERM) from None

    return wrapper


@app.command()
@_friendly
def validate(
    file: Path = EVENTS_FILE,
    strict: bool = typer.Option(False, help="Treat unknown province names as errors."),
    schema: str = SCHEMA, gazetteer: Optional[Path] = GAZETTEER, country: Optional[list[str]] = COUNTRY,
    monthfirst: bool = MONTHFIRST, as_of: Optional[str] = AS_OF, freq: str = FREQ,
) -> None:
    """Check an events file or a panel CSV and print a summary (exit 1 with the problems if it is broken).

    Warnings (a partial last period, unknown provinces or countries, a short history) print as
    they are found. A panel CSV (columns unique_id, ds, y) is checked as every command reads it;
    the log options do not apply to it.

    Example: forecast validate data/ucdp_candidate_2026q1_central_asia.csv --freq month
    """
    opts = data_options(schema, gazetteer, country, monthfirst, as_of, freq)
    info = pipeline.validate_summary(file, opts.pop("schema"), strict=strict, **opts)
    typer.echo(f"file:        {file}")
    if info["schema"] == "panel":
        _echo_panel_summary(info)
        return
    typer.echo(f"layout:      {info['schema']}")
    typer.echo(f"rows:        {info['rows_read']} read, {info['rows_kept']} kept"
               + (f" ({', '.join(f'{k}: {v}' for k, v in info['dropped'].items())} dropped)"
                  if info["dropped"] else ""))
    if info["dates"]:
        typer.echo(f"dates:       {info['dates'][0]} to {info['dates'][1]}")
    typer.echo("countries:   " + ", ".join(f"{c} ({n} provinces)" for c, n in info["countries"].items()))
    top = info["provinces"]
    typer.echo("provinces:   " + ", ".join(f"{p} {n}" for p, n in top[:12])
               + (f", … {len(top) - 12} more" if len(top) > 12 else ""))
    typer.echo("event types: " + ", ".join(f"{t} {n}" for t, n in info["event_types"].items()))
    typer.echo(f"warnings:    {info['warnings']}")


def _echo_panel_summary(info: dict) -> None:
    typer.echo("layout:      panel CSV (unique_id, ds, y)")
    typer.echo(f"rows:        {info['rows_read']} ({info['series']} series x {info['periods']} periods, "
               f"{info['frequency']})")
    typer.echo(f"dates:       {info['dates'][0]} to {info['dates'][1]}")
    typer.echo(f"counts:      {info['events']} in all, {info['zeros']:.0%} of the cells 0"
               + (f", {info['missing']} missing" if info["missing"] else ""))
    top = info["top"]
    typer.echo("series:      " + ", ".join(f"{u} {n}" for u, n in top[:8])
               + (f", … {len(top) - 8} more" if len(top) > 8 else ""))
    typer.echo(f"warnings:    {info['warnings']}")


@app.command()
@_friendly
def panel(
    file: Path = EVENTS_FILE,
    out: Path = typer.Option(..., "--out", "-o", help="Panel CSV to write."),
    value: str = typer.Option("events", help="Count 'events' or sum 'fatalities'."),
    totals: bool = typer.Option(False, help="Add country and whole-area totals as extra series."),
    force: bool = typer.Option(False, help="Overwrite OUT if it exists."),
    schema: str = SCHEMA, gazetteer: Optional[Path] = GAZETTEER, country: Optional[list[str]] = COUNTRY,
    monthfirst: bool = MONTHFIRST, as_of: Optional[str] = AS_OF, freq: str = FREQ,
) -> None:
    """Build the zero-filled per-province count panel and write it as CSV.

    Example: forecast panel events.csv --freq month --out panel.csv
    """
    p = pipeline.write_panel(file, out, value=value, totals=totals, force=force,
                             **data_options(schema, gazetteer, country, monthfirst, as_of, freq))
    cov = "; ".join(f"{c} {a}..{b}" for c, (a, b) in p.attrs["coverage"].items())
    typer.echo(f"wrote {out}: {p['unique_id'].nunique()} series, {len(p)} rows; coverage {cov}")


@app.command("models")
@_friendly
def models_cmd() -> None:
    """List the model specs (bundled and in ./models) with their descriptions.

    Example: forecast models
    """
    specs = pipeline.list_models()
    width = max(map(len, specs), default=0)
    for name, desc in specs.items():
        typer.echo(f"{name:<{width}}  {desc}")


@app.command()
@_friendly
def predict(
    file: Path = EVENTS_OR_PANEL,
    model: str = typer.Option(..., "--model", "-m", help="Model spec name (see 'forecast models') or .toml path."),
    horizon: int = typer.Option(6, "--horizon", "-h", min=1, help="Periods ahead."),
    out: Path = typer.Option(..., "--out", "-o", help="Forecast CSV to write."),
    seed: int = SEED,
    force: bool = typer.Option(False, help="Overwrite OUT if it exists."),
    schema: str = SCHEMA, gazetteer: Optional[Path] = GAZETTEER, country: Optional[list[str]] = COUNTRY,
    monthfirst: bool = MONTHFIRST, as_of: Optional[str] = AS_OF, freq: str = FREQ,
) -> None:
    """Fit one model on all data and write its forecasts (mean, intervals, P(Y >= k)).

    Example: forecast predict events.csv --model negbin_glm --horizon 6 --out forecast.csv
    """
    table = pipeline.predict(file, model, horizon, out, seed=seed, force=force,
                             **data_options(schema, gazetteer, country, monthfirst, as_of, freq))
    n_fb = int((table.drop_duplicates("unique_id")["fallback"] != "none").sum())
    typer.echo(f"wrote {out}: {table['unique_id'].nunique()} series x {horizon} periods "
               f"({n_fb} series used a fallback model)")


@app.command("backtest")
@_friendly
def backtest_cmd(
    file: Path = EVENTS_OR_PANEL,
    models: str = typer.Option("climatology,seasonal_naive,negbin_glm", "--models",
                               help="Comma-separated model spec names or .toml paths."),
    horizon: int = typer.Option(6, "--horizon", "-h", min=1, help="Periods ahead at each origin."),
    origins: int = typer.Option(12, "--origins", min=1, help="Number of forecast origins (the latest ones)."),
    step: int = typer.Option(1, min=1, help="Periods between origins."),
    refit_every: int = typer.Option(1, min=1, help="Re-estimate parameters every k origins."),
    baseline: str = typer.Option("climatology", help="Model that others must beat significantly."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for backtest.csv, scores.csv, comparison.csv."),
    jobs: int = typer.Option(1, min=1, help="Parallel worker processes on this machine (not used with --dask)."),
    dask: Optional[str] = typer.Option(None, "--dask", metavar="<address>", help=DASK_HELP),
    seed: int = SEED,
    force: bool = typer.Option(False, help="Replace OUT if it exists."),
    quiet: bool = QUIET,
    schema: str = SCHEMA, gazetteer: Optional[Path] = GAZETTEER, country: Optional[list[str]] = COUNTRY,
    monthfirst: bool = MONTHFIRST, as_of: Optional[str] = AS_OF, freq: str = FREQ,
) -> None:
    """Rolling-origin backtest: proper scores per model and horizon, and which differences are significant.

    Example: forecast backtest events.csv --models climatology,negbin_glm --horizon 6 --origins 24 --out bt/
    """
    names = [m.strip() for m in models.split(",") if m.strip()]
    progress = _progress_printer(quiet)
    table = pipeline.backtest_to_folder(
        file, names, horizon, out, baseline=baseline, origins=origins, step=step, refit_every=refit_every,
        jobs=jobs, dask=dask, seed=seed, force=force,
        progress=(lambda done, total: progress("backtest", done, total)) if progress else False,
        **data_options(schema, gazetteer, country, monthfirst, as_of, freq))
    if not quiet:
        with _pandas_display():
            typer.echo(table.round(4).to_string(index=False))
        typer.echo(f"skill = 1 - RPS / RPS({baseline}); p_value: one-sided block-bootstrap test over origins "
                   f"that the model beats {baseline}. log: unfloored log score (inf: some observed count had "
                   f"probability 0); n_impossible: forecasts that gave the observed count probability "
                   f"< 1e-12. Files in {out}")


def _pandas_display():
    import pandas as pd

    return pd.option_context("display.width", 160, "display.max_rows", 500)


_ProgressPrinter = ProgressPrinter  # (its old name here)


def _progress_printer(quiet: bool) -> Optional[ProgressPrinter]:
    """The progress display of a command: none with ``--quiet``."""
    return progress_printer(quiet, tty=sys.stdout.isatty() and sys.stderr.isatty())


@app.command("run")
@_friendly
def run_cmd(
    config: Path = typer.Argument(..., help="Run configuration (TOML; 'forecast init' writes a starter)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (overrides [output] dir)."),
    horizon: Optional[int] = typer.Option(None, "--horizon", "-h", min=1, help="Forecast and backtest horizon."),
    origins: Optional[int] = typer.Option(None, "--origins", min=1, help="Backtest origins."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated candidate models."),
    seed: Optional[int] = typer.Option(None, min=0, help="Seed of the per-series random streams."),
    jobs: Optional[int] = typer.Option(None, min=1, help="Parallel worker processes on this machine "
                                                         "(not used with dask)."),
    dask: Optional[str] = typer.Option(None, "--dask", metavar="<address>",
                                       help=DASK_HELP + " Overrides [run] dask; --dask '' runs locally."),
    refit_every: Optional[int] = REFIT_EVERY,
    force: bool = typer.Option(False, help="Replace the output folder if it exists."),
    quiet: bool = QUIET,
    schema: Optional[str] = RUN_SCHEMA, gazetteer: Optional[Path] = RUN_GAZETTEER,
    country: Optional[list[str]] = COUNTRY, monthfirst: Optional[bool] = RUN_MONTHFIRST,
    as_of: Optional[str] = RUN_AS_OF, freq: Optional[str] = RUN_FREQ,
) -> None:
    """Ingest, backtest every model, choose, forecast, and write the report into the output folder.

    Options given here override the config's keys of the same name.

    Example: forecast run config.toml --out reports/2026-01 --jobs 2 --as-of 2026-01-31
    """
    from forecast.config import load_config

    flags = {"out": str(out.resolve()) if out else None, "horizon": horizon, "origins": origins, "seed": seed,
             "jobs": jobs, "dask": dask, "force": force or None, "quiet": quiet or None,
             "refit_every": refit_every, "models": [m.strip() for m in models.split(",")] if models else None,
             **run_data_overrides(schema, gazetteer, country, monthfirst, as_of, freq)}
    cfg = load_config(config, {k: v for k, v in flags.items() if v is not None})
    pipeline.run(cfg, progress=_progress_printer(quiet))


@app.command()
@_friendly
def init(
    path: Path = typer.Argument(Path("config.toml"), help="Where to write the starter configuration."),
    force: bool = typer.Option(False, help="Overwrite PATH if it exists."),
) -> None:
    """Write a commented starter run configuration.

    Example: forecast init config.toml
    """
    from forecast.config import write_starter

    write_starter(path, force=force)
    typer.echo(f"wrote {path}: edit [data] events to point at your log, then: forecast run {path}")


@app.command()
@_friendly
def report(
    run_dir: Path = typer.Argument(..., help="A run folder written by 'forecast run' or 'forecast demo'."),
) -> None:
    """Re-render index.html of a run folder from its saved results and figures.

    Example: forecast report reports/demo
    """
    typer.echo(f"wrote {pipeline.render_run_dir(run_dir)}")


@app.command()
@_friendly
def demo(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write here instead of reports/demo "
                                                                 "(never overwritten without --force)."),
    force: bool = typer.Option(False, help="Replace OUT if it exists."),
    quiet: bool = typer.Option(False, help="Print nothing but errors."),
) -> None:
    """Run the pipeline on the bundled SIMULATED border sample into reports/demo.

    Example: forecast demo
    """
    result = pipeline.run_demo(out, force=force, quiet=quiet, progress=_progress_printer(quiet))
    if not quiet:
        typer.echo(f"demo written to {result}")


from forecast._cli_effects import register as _register_effects  # noqa: E402 (its command: `forecast effects`)
_register_effects(app, _friendly)


def main() -> None:
    """Console-script entry point: exit 0, 1 (input), 2 (usage), 3 (bug), 130 (SIGINT), 143 (SIGTERM)."""
    install_sigterm_handler()
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPT)
    except Terminated:
        typer.echo("error: terminated", err=True)
        sys.exit(EXIT_TERM)
    except Exception as exc:  # noqa: BLE001 - the last net, outside any command (e.g. argument parsing)
        sys.exit(report_internal_error(exc, debug="--debug" in sys.argv[1:]))


if __name__ == "__main__":
    main()
