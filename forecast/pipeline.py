"""Stages tied together for the CLI and notebooks.

For now the pipeline covers ingest → panel → summary and figures; the
modelling, backtest and report stages join it as they are built.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

DEMO_DIR = Path("reports") / "demo"


def load_panel(path: str | Path, *, freq: str = "month", as_of=None, schema: str = "auto",
               gazetteer=None) -> pd.DataFrame:
    """A panel from a panel CSV (``unique_id, ds, y``) or from an events file (built with ``build_panel``).

    A panel CSV is validated like an events file (see :mod:`forecast.panel_csv`)
    and must hold at least one event; its frequency (day .. year) is read from its
    dates, which must be period starts, and ``freq`` is not used. An events file
    is counted per ``freq`` (see :func:`forecast.periods.parse_freq`). Either way
    ``panel.attrs["freq"]`` holds the :class:`~forecast.periods.Frequency`.
    """
    from forecast.ingest import read_events
    from forecast.panel import build_panel, require_events
    from forecast.panel_csv import read_panel_csv

    path = Path(path)
    if path.suffix.lower() in (".csv", ".tsv", ".txt") and path.is_file():
        with path.open("rb") as fh:
            # Undecodable bytes are the events reader's to report; here only the header matters.
            first = fh.readline(65536).decode("utf-8-sig", errors="replace")
        sep = max((",", ";", "\t"), key=first.count)
        if {"unique_id", "ds", "y"} <= {c.strip().strip('"').lower() for c in first.split(sep)}:
            panel = read_panel_csv(path)
            require_events(panel, source=path.name)
            return panel
    events = read_events(path, schema, gazetteer=gazetteer, as_of=as_of)
    return build_panel(events, freq, as_of=as_of, gazetteer=gazetteer)


def backtest(panel: pd.DataFrame, models: Any, horizon: int, *args: Any, **kwargs: Any):
    """:func:`forecast.backtesting.backtest` where ``models`` may also name specs
    (``"negbin_glm"``, ``"models/my.toml"``): they are loaded once, here (see
    :func:`forecast.combine.resolve_models`). Exported as ``forecast.backtest``."""
    from forecast.backtesting import backtest as run_backtest
    from forecast.combine import resolve_models

    return run_backtest(panel, resolve_models(models), horizon, *args, **kwargs)


def summarise_panel(panel: pd.DataFrame) -> pd.DataFrame:
    """Per series: covered periods, total, mean, share of active periods, max.

    Returns
    -------
    pandas.DataFrame with ``unique_id, country, province, event_type, first,
    last, periods, total, mean, share_active, max, all_zero``.
    """
    g = panel.groupby("unique_id", sort=True)
    out = pd.DataFrame({
        "first": g["ds"].min().dt.date,
        "last": g["ds"].max().dt.date,
        "periods": g["y"].size(),
        "total": g["y"].sum(),
        "mean": g["y"].mean().round(3),
        "share_active": g["y"].apply(lambda s: (s > 0).mean()).round(3),
        "max": g["y"].max(),
    })
    out["all_zero"] = out["total"] == 0
    keys = g[["country", "province", "event_type"]].first()
    return keys.join(out).reset_index()


def demo_config_path() -> Path:
    """The bundled demo configuration (``forecast/templates/demo.toml``)."""
    import importlib.resources

    return Path(str(importlib.resources.files("forecast") / "templates" / "demo.toml"))


def run_demo(out: str | Path | None = None, *, force: bool = False, quiet: bool = False) -> Path:
    """The full run on the bundled simulated border log.

    Writes into ``reports/demo`` under the working directory (replaced when
    an earlier demo or run of this tool wrote it) or into ``out`` (never
    overwritten without ``force``). A folder the tool did not write is never
    replaced.
    """
    from forecast.config import load_config
    from forecast.run import run

    default = out is None
    dest = Path(out) if out is not None else Path.cwd() / DEMO_DIR
    # The default folder may be replaced (force), but like any other only when the tool wrote it.
    cfg = load_config(demo_config_path()).with_overrides(out=str(dest.resolve()), force=force or default,
                                                         quiet=quiet)
    return run(cfg, simulated=True, title="Border incident forecast — demo on SIMULATED data")
