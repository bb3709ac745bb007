"""The design hyperparameters of the log-linear count models (GLM, zero-inflated, INGARCH),
declared once; :mod:`forecast.models.design` re-exports them."""
from __future__ import annotations

from typing import Any, Callable

from forecast.models._interventions import valid_interventions
from forecast.models._trend import TREND_OPTIONS
from forecast.models.params import Param, int_tuple, one_of, optional_str, positive_int, str_tuple


def distinct(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """A hyperparameter check that also requires the tuple's items to be distinct."""
    return lambda v: check(v) and len(set(v)) == len(v)


def _is_unit(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= float(v) <= 1


def design_params(*, trend: str = "none", damping: float = 0.0, seasonality: str = "fourier", fourier_k: int = 1,
                  lags: bool = True, exposure: bool = True) -> tuple[Param, ...]:
    """The design hyperparameters shared by the log-linear count models, declared once.

    Models differ only in their defaults and in whether they take ``lags``
    (INGARCH has its own ``past_obs``) and an ``exposure`` offset.
    """
    out = [
        Param("trend", trend, "one of 'none', 'damped', 'linear'", one_of(*TREND_OPTIONS),
              "'damped' and 'linear' estimate a log-linear trend (coefficient per year); 'damped' holds it "
              "at the last training period in forecasts (or damps it, see damping), 'linear' extrapolates it"),
        Param("damping", damping, "a float in [0, 1]", lambda v: _is_unit(v),
              "trend='damped': the trend moves on by damping^j in forecast period j (0 holds it)"),
        Param("seasonality", seasonality, "one of 'none', 'month', 'fourier'", one_of("none", "month", "fourier"),
              "'month': calendar dummies (months, or quarters) on monthly and quarterly data, fourier_k "
              "annual sin/cos pairs on weekly and daily data, none on yearly data; 'fourier': fourier_k "
              "annual sin/cos pairs"),
        Param("fourier_k", fourier_k, "an int >= 1", positive_int, "number of Fourier pairs (seasonality='fourier')"),
    ]
    if lags:
        out.append(Param("lags", (), "a tuple of distinct ints >= 1", distinct(int_tuple),
                         "autoregressive terms log(1 + y_{t-k})"))
    out += [
        Param("exog", (), "a tuple of distinct column names", distinct(str_tuple),
              "panel columns used as covariates (future values needed to forecast)"),
        Param("interventions", (), "a tuple of interventions, each {name, date, kind} with kind 'step', "
              "'pulse' or 'ramp'", lambda v: isinstance(v, (tuple, list)) and valid_interventions(v),
              "dated changes whose effect is estimated (see forecast.effects)"),
    ]
    if exposure:
        out.append(Param("exposure", None, "a column name or None", optional_str,
                         "panel column entering as offset log(exposure)"))
    return tuple(out)

