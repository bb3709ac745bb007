"""incident-forecast: per-province count forecasts of security incidents.

The package top level stays light (no pandas, statsmodels or matplotlib at
import time) so that ``forecast --help`` starts fast; the public functions are
loaded on first use.

Main entry points
-----------------
read_events(path, schema="auto", ...)   events file -> canonical events frame
build_panel(events, freq="month", ...)  events -> zero-filled count panel
load_sample(name)                        bundled sample logs
load_model(name)                         model spec from models/<name>.toml
backtest(panel, models, horizon, ...)    rolling-origin backtest (specs or spec names)
tune(spec, panel, grid, horizon, ...)    hyperparameter grid search by backtest, vs the default
accuracy(result, by=("model",))          a backtest's mean scores as one table (fable's accuracy)
load_panel(path, freq="month", ...)      panel from an events file or a panel CSV
run_demo(out=None)                       the whole run on the bundled simulated log
Gazetteer                                province-name normalisation

Everything the ``forecast`` commands do is in :mod:`forecast.pipeline` (one function per command).
"""
from __future__ import annotations

import importlib
from typing import Any

from forecast._version import __version__
from forecast.exceptions import (
    ConfigError,
    DataValidationError,
    ForecastError,
    ForecastWarning,
    OutputExistsError,
)

_LAZY = {
    "read_events": ("forecast.ingest", "read_events"),
    "events_from_frame": ("forecast.ingest", "events_from_frame"),
    "build_panel": ("forecast.panel", "build_panel"),
    "load_sample": ("forecast.datasets", "load_sample"),
    "Gazetteer": ("forecast.gazetteer", "Gazetteer"),
    "CountForecast": ("forecast.distributions", "CountForecast"),
    "load_model": ("forecast.combine", "load_model"),  # every spec type known (ensembles too)
    "save_model": ("forecast.specs", "save_model"),
    "effects": ("forecast.interventions", "effects"),
    "backtest": ("forecast.pipeline", "backtest"),  # takes spec names too
    "tune": ("forecast.tuning", "tune"),
    "accuracy": ("forecast._backtest_result", "accuracy"),
    "load_panel": ("forecast.pipeline", "load_panel"),
    "run_demo": ("forecast.pipeline", "run_demo"),
    "load_config": ("forecast.config", "load_config"),
}
_SUBMODULES = ("datasets", "ingest", "panel", "gazetteer", "schema", "sources", "distributions", "plots",
               "backtesting", "comparison", "scoring", "calibration", "report", "config",
               "models", "specs", "combine", "tuning", "pipeline")

__all__ = [
    "__version__",
    "ConfigError",
    "DataValidationError",
    "ForecastError",
    "ForecastWarning",
    "OutputExistsError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"forecast.{name}")
    raise AttributeError(f"module 'forecast' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
