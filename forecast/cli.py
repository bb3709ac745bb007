"""The ``forecast`` command line.

Only this module imports typer. Heavy libraries (pandas, statsmodels,
matplotlib) are imported inside the commands, so ``forecast --help`` is fast.
Bad input prints one line per problem to stderr and exits 1 (no traceback);
usage errors exit 2.
"""
from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path
from typing import Callable, Optional

import typer

from forecast._version import __version__
from forecast.exceptions import ForecastError, ForecastWarning

app = typer.Typer(
    name="forecast",
    help="Forecast per-province counts of security incidents (clashes, attacks, seizures) "
         "with honest count distributions.",
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
) -> None:
    """Forecast per-province counts of security incidents."""


def _friendly(func: Callable) -> Callable:
    """Turn input errors into one line per problem and exit code 1; show warnings plainly."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ForecastWarning)
            try:
                return func(*args, **kwargs)
            except ForecastError as exc:
                for line in exc.lines():
                    typer.echo(f"error: {line}", err=True)
                raise typer.Exit(1) from None
            except OSError as exc:  # unreadable file, full disk, no permission: input, not a bug
                typer.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
                raise typer.Exit(1) from None
            finally:
                quiet = kwargs.get("quiet", False)
                for w in caught:
                    if issubclass(w.category, ForecastWarning) and not quiet:
                        typer.echo(f"warning: {w.message}", err=True)
                    elif not issubclass(w.category, ForecastWarning):
                        warnings.showwarning(w.message, w.category, w.filename, w.lineno)

    return wrapper


SCHEMA_HELP = "File layout: auto, native, acled or ucdp."
ASOF_HELP = "Date up to which the log is complete (its export date), YYYY-MM-DD."


@app.command()
@_friendly
def validate(
    file: Path = typer.Argument(..., help="Events file (CSV or Parquet)."),
    schema: str = typer.Option("auto", help=SCHEMA_HELP),
    gazetteer: Optional[Path] = typer.Option(None, help="CSV of extra province aliases (country,province,alias)."),
    strict: bool = typer.Option(False, help="Treat unknown province names as errors."),
    as_of: Optional[str] = typer.Option(None, help=ASOF_HELP),
    monthfirst: bool = typer.Option(False, help="Read ambiguous dates like 03/04/2024 as month first."),
) -> None:
    """Check an events file and print a summary (exit 1 with the problems if it is broken).

    Example: forecast validate data/ucdp_candidate_2026q1_central_asia.csv
    """
    from forecast.ingest import read_events

    events = read_events(file, schema, gazetteer=gazetteer, strict=strict, as_of=as_of, dayfirst=not monthfirst)
    info = events.attrs["ingest"]
    typer.echo(f"file:        {file}")
    typer.echo(f"layout:      {info['schema']}")
    typer.echo(f"rows:        {info['rows_read']} read, {info['rows_kept']} kept"
               + (f" ({', '.join(f'{k}: {v}' for k, v in info['dropped'].items())} dropped)"
                  if info["dropped"] else ""))
    if len(events):
        typer.echo(f"dates:       {events['date'].min().date()} to {events['date'].max().date()}")
    by_country = events.groupby("country")["province"].nunique()
    typer.echo("countries:   " + ", ".join(f"{c} ({n} provinces)" for c, n in by_country.items()))
    top = events.groupby(["country", "province"]).size().sort_values(ascending=False)
    typer.echo("provinces:   " + ", ".join(f"{p} {n}" for (_, p), n in top.head(12).items())
               + (f", … {len(top) - 12} more" if len(top) > 12 else ""))
    types = events["event_type"].value_counts()
    typer.echo("event types: " + ", ".join(f"{t} {n}" for t, n in types.items()))
    typer.echo(f"warnings:    {len(info['warnings'])}")


@app.command()
@_friendly
def panel(
    file: Path = typer.Argument(..., help="Events file (CSV or Parquet)."),
    out: Path = typer.Option(..., "--out", "-o", help="Panel CSV to write."),
    freq: str = typer.Option("month", help="month, week or day (pandas MS, M, W-MON, D accepted)."),
    schema: str = typer.Option("auto", help=SCHEMA_HELP),
    as_of: Optional[str] = typer.Option(None, help=ASOF_HELP),
    value: str = typer.Option("events", help="Count 'events' or sum 'fatalities'."),
    totals: bool = typer.Option(False, help="Add country and whole-area totals as extra series."),
    country: Optional[list[str]] = typer.Option(None, help="Include every province of this country "
                                                           "(repeatable), even without events."),
    gazetteer: Optional[Path] = typer.Option(None, help="CSV of extra province aliases."),
    force: bool = typer.Option(False, help="Overwrite OUT if it exists."),
) -> None:
    """Build the zero-filled per-province count panel and write it as CSV.

    Example: forecast panel events.csv --freq month --out panel.csv
    """
    from forecast.ingest import read_events
    from forecast.outputs import staged_file
    from forecast.panel import build_panel

    events = read_events(file, schema, gazetteer=gazetteer, as_of=as_of)
    with staged_file(out, force=force) as tmp:
        p = build_panel(events, freq, as_of=as_of, value=value, totals=totals, countries=country or None,
                        gazetteer=gazetteer)
        p.to_csv(tmp, index=False, date_format="%Y-%m-%d")
    cov = "; ".join(f"{c} {a}..{b}" for c, (a, b) in p.attrs["coverage"].items())
    typer.echo(f"wrote {out}: {p['unique_id'].nunique()} series, {len(p)} rows; coverage {cov}")


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
    from forecast.pipeline import run_demo

    result = run_demo(out, force=force, quiet=quiet)
    if not quiet:
        typer.echo(f"demo written to {result}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
