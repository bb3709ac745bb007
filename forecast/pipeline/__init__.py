"""The pipeline: every stage of the tool, and the one place that strings them together.

The CLI and notebooks call these; each ``forecast`` command is one call here plus printing.

========================  ==========================================================
:func:`load_panel`        panel from a panel CSV or an events file
:func:`backtest`          rolling-origin backtest taking spec names too (``forecast.backtest``)
:func:`run`               the monthly run: ingest → panel → backtest → choose → final fit →
                          totals → figures → files, manifest and report (``forecast run``)
:func:`run_demo`          the run on the bundled simulated log (``forecast demo``)
:func:`render_run_dir`    re-render a run folder's report (``forecast report``)
:func:`validate_summary`  read and summarise an events file (``forecast validate``)
:func:`write_panel`       write the count panel of an events file (``forecast panel``)
:func:`predict`           fit one model, write its forecasts (``forecast predict``)
:func:`backtest_to_folder` backtest into a folder of CSVs (``forecast backtest``)
:func:`list_models`       the model specs available (``forecast models``)
:func:`summarise_panel`   per-series summary of a panel
:func:`effects_table`     intervention score tests / change detection (``forecast effects``)
========================  ==========================================================

Stages report progress through an optional ``progress(stage, done, total)`` callback.
This module imports no pandas, numpy or matplotlib (``forecast --help`` stays fast): the
functions are loaded from the submodules on first use.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from forecast.config import RunConfig

DEMO_DIR = Path("reports") / "demo"

_LAZY = {
    "load_panel": "forecast.pipeline.stages",
    "Progress": "forecast.pipeline.stages",
    "run": "forecast.pipeline.runner",
    "render_run_dir": "forecast.pipeline.context",
    "validate_summary": "forecast.pipeline.commands",
    "write_panel": "forecast.pipeline.commands",
    "predict": "forecast.pipeline.commands",
    "backtest_to_folder": "forecast.pipeline.commands",
    "list_models": "forecast.pipeline.commands",
    "summarise_panel": "forecast.pipeline.summary",
    "effects_table": "forecast.pipeline.effects",
}

__all__ = ["DEMO_DIR", "backtest", "demo_config_path", "run_demo", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'forecast.pipeline' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def backtest(panel: pd.DataFrame, models: Any, horizon: int, *args: Any, **kwargs: Any):
    """:func:`forecast.backtesting.backtest` where ``models`` may also name specs
    (``"negbin_glm"``, ``"models/my.toml"``): they are loaded once, here (see
    :func:`forecast.combine.resolve_models`). Exported as ``forecast.backtest``."""
    from forecast.backtesting import backtest as run_backtest
    from forecast.combine import resolve_models

    return run_backtest(panel, resolve_models(models), horizon, *args, **kwargs)


def demo_config_path() -> Path:
    """The bundled demo configuration (``forecast/templates/demo.toml``)."""
    import importlib.resources

    return Path(str(importlib.resources.files("forecast") / "templates" / "demo.toml"))


def run_demo(out: str | Path | None = None, *, force: bool = False, quiet: bool = False,
             progress=None) -> Path:
    """The full run on the bundled simulated border log.

    Writes into ``reports/demo`` under the working directory (replaced when
    an earlier demo or run of this tool wrote it) or into ``out`` (never
    overwritten without ``force``). A folder the tool did not write is never
    replaced. ``progress`` is as in :func:`run`.
    """
    from forecast.config import load_config
    from forecast.pipeline.runner import run as run_config

    default = out is None
    dest = Path(out) if out is not None else Path.cwd() / DEMO_DIR
    # The default folder may be replaced (force), but like any other only when the tool wrote it.
    cfg: RunConfig = load_config(demo_config_path()).with_overrides(out=str(dest.resolve()),
                                                                    force=force or default, quiet=quiet)
    return run_config(cfg, simulated=True, title="Border incident forecast — demo on SIMULATED data",
                      progress=progress)
