"""``forecast effects``: test for an intervention effect at a known date, or look for one.

Registered on the ``forecast`` app by :mod:`forecast.cli` (``register``): the command takes
the app's error boundary and shared options from there, so it behaves as every other command,
and like them it is one call into :mod:`forecast.pipeline` plus printing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import typer

from forecast import pipeline
from forecast._cli_options import AS_OF, COUNTRY, FREQ, GAZETTEER, MONTHFIRST, SCHEMA, SEED, data_options


def register(app: typer.Typer, friendly: Callable) -> None:
    """Add the ``effects`` command to ``app`` (``friendly``: the CLI's error boundary)."""

    @app.command("effects")
    @friendly
    def effects_cmd(
        file: Path = typer.Argument(..., help="Run config (.toml), events file or panel CSV (unique_id, ds, y)."),
        date: Optional[str] = typer.Option(None, "--date", help="A date in the first affected period, e.g. "
                                                                "2024-03 or 2024-03-15 (a score test at that date)."),
        detect: bool = typer.Option(False, "--detect", help="Look for a change at an unknown date instead: the "
                                                            "largest score statistic over the dates, with a "
                                                            "bootstrap p-value."),
        delta: float = typer.Option(1.0, "--delta", min=0.0, max=1.0,
                                    help="Shape of the effect: 1 a level shift, 0 a one-period spike, in between "
                                         "a transient shift that decays by this factor per period."),
        kind: str = typer.Option("internal", "--kind", help="For ingarch: 'internal' (the effect propagates "
                                                            "through the model's feedback) or 'external' (it "
                                                            "changes the observed count only)."),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="Null model: poisson_glm, negbin_glm, "
                                                                        "ingarch or a .toml spec (default: the "
                                                                        "config's candidates of these kinds, "
                                                                        "else negbin_glm)."),
        series: Optional[str] = typer.Option(None, "--series", help="Comma-separated unique_ids to test "
                                                                    "(default: every series)."),
        bootstrap: int = typer.Option(99, "--bootstrap", "-B", min=1, help="--detect: bootstrap replicates."),
        margin: int = typer.Option(3, "--margin", min=1, help="--detect: periods left out at each end."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the table to this CSV."),
        seed: int = SEED,
        force: bool = typer.Option(False, help="Overwrite OUT if it exists."),
        schema: str = SCHEMA, gazetteer: Optional[Path] = GAZETTEER, country: Optional[list[str]] = COUNTRY,
        monthfirst: bool = MONTHFIRST, as_of: Optional[str] = AS_OF, freq: str = FREQ,
    ) -> None:
        """Test for an intervention effect: score and likelihood-ratio tests at a known date (--date),
        or the largest change at an unknown date (--detect), per series.

        Example: forecast effects panel.csv --date 2024-03 --model negbin_glm --delta 1

        Example: forecast effects config.toml --detect --bootstrap 199 --series "Tajikistan/Khatlon/clash"
        """
        read = data_options(schema, gazetteer, country, monthfirst, as_of, freq)
        table, note = pipeline.effects_table(file, date=date, detect=detect, delta=delta, kind=kind, model=model,
                                             series=series, bootstrap=bootstrap, margin=margin, seed=seed,
                                             out=out, force=force, **read)
        import pandas as pd

        with pd.option_context("display.width", 160, "display.max_rows", 500):
            num = table.select_dtypes("number").columns
            typer.echo(table.assign(**{c: table[c].round(4) for c in num}).to_string(index=False))
        typer.echo(note + (f" Written to {out}." if out else ""))
