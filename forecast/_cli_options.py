"""Options several ``forecast`` commands share, defined once so their help and checks cannot drift.

typer copies an ``Option`` per command, so one object here serves every command that
reads an incident log: ``--schema``, ``--gazetteer``, ``--country``, ``--monthfirst``,
``--as-of`` and ``--freq`` mean the same everywhere.
"""
from __future__ import annotations

from typing import Optional

import typer

from forecast._boundary import escape


def check_as_of(value: Optional[str]) -> Optional[str]:
    """Check ``--as-of`` with the same rule as the config's ``as_of`` (a real date, YYYY-MM-DD)."""
    if value is None:
        return None
    from forecast.config import _Bad, _date

    try:
        return _date(value).isoformat()
    except _Bad as bad:
        raise typer.BadParameter(f"expected {bad}, a real calendar date; got {escape(value)!r}.") from None


ASOF_HELP = "Date up to which the log is complete (its export date), YYYY-MM-DD."
DASK_HELP = ("Run the backtest on this Dask cluster (scheduler address, e.g. tcp://host:8786) instead of "
             "local processes; needs pip install \"incident-forecast[dask]\".")
EVENTS_FILE = typer.Argument(..., help="Events file (CSV or Parquet).")
EVENTS_OR_PANEL = typer.Argument(..., help="Events file or panel CSV (unique_id, ds, y).")
SCHEMA = typer.Option("auto", help="File layout: auto, native, acled or ucdp.")
GAZETTEER = typer.Option(None, help="CSV of extra province aliases (country,province,alias).")
COUNTRY = typer.Option(None, "--country", help="Include every province of this country (repeatable), "
                                               "even those without events.")
MONTHFIRST = typer.Option(False, help="Read ambiguous dates like 03/04/2024 as month first "
                                      "(default: day first).")
AS_OF = typer.Option(None, "--as-of", help=ASOF_HELP, callback=check_as_of)
FREQ = typer.Option("month", help="Period when the file holds events: day, week (W-MON; W-SUN etc. for weeks "
                                  "from another day), month, quarter or year (a panel CSV keeps its own).")
SEED = typer.Option(0, min=0, help="Seed of the per-series random streams.")
QUIET = typer.Option(False, help="No progress bars or messages (errors and warnings still print).")


def data_options(schema: str, gazetteer, country, monthfirst: bool, as_of, freq: str) -> dict:
    """The shared log options as the pipeline's keyword arguments."""
    return {"schema": schema, "gazetteer": gazetteer, "countries": list(country) if country else None,
            "dayfirst": not monthfirst, "as_of": as_of, "freq": freq}


# ``forecast run`` reads its log through the config: the same options, unset by default, override
# the config's [data] keys only when given.
RUN_SCHEMA = typer.Option(None, "--schema", help="File layout: auto, native, acled or ucdp (overrides [data] schema).")
RUN_GAZETTEER = typer.Option(None, "--gazetteer", help="CSV of extra province aliases (overrides [data] gazetteer).")
RUN_MONTHFIRST = typer.Option(None, "--monthfirst/--dayfirst", help="Read ambiguous dates month first "
                                                                    "(overrides [data] dayfirst).", show_default=False)
RUN_AS_OF = typer.Option(None, "--as-of", help=ASOF_HELP + " Overrides [data] as_of.", callback=check_as_of)
RUN_FREQ = typer.Option(None, "--freq", help="day, week, month, quarter or year (overrides [data] freq).")
REFIT_EVERY = typer.Option(None, "--refit-every", min=1, help="Re-estimate parameters every k backtest origins "
                                                              "(overrides [backtest] refit_every).")


def run_data_overrides(schema, gazetteer, country, monthfirst, as_of, freq) -> dict:
    """The given log options of ``forecast run`` as config overrides (unset ones left out)."""
    out = {"schema": schema, "gazetteer": str(gazetteer.resolve()) if gazetteer else None,
           "countries": list(country) if country else None, "as_of": as_of, "freq": freq,
           "dayfirst": None if monthfirst is None else not monthfirst}
    return {k: v for k, v in out.items() if v is not None}
