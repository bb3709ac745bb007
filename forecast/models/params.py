"""Declared hyperparameters and their shared checks.

A spec lists its hyperparameters as :class:`Param` declarations; :func:`check_params`
checks the values against them at fit time, all failures at once, in the house form
"The 'alpha' parameter of NegBinGLM must be a float > 0. Got -1 instead.".
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from forecast.exceptions import ConfigError, ForecastWarning


@dataclass(frozen=True)
class Param:
    """One declared hyperparameter.

    ``rule`` completes the sentence "The 'x' parameter of Model must be ...";
    ``check`` returns True for an allowed value.
    """

    name: str
    default: Any
    rule: str
    check: Callable[[Any], bool]
    doc: str = ""


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def positive(v: Any) -> bool:
    return _is_num(v) and v > 0 and np.isfinite(v)


def non_negative(v: Any) -> bool:
    return _is_num(v) and v >= 0 and np.isfinite(v)


def positive_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1


def one_of(*choices: Any) -> Callable[[Any], bool]:
    return lambda v: v in choices


def int_tuple(v: Any) -> bool:
    return isinstance(v, (tuple, list)) and all(positive_int(x) for x in v)


def str_tuple(v: Any) -> bool:
    return isinstance(v, (tuple, list)) and all(isinstance(x, str) for x in v)


def optional_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def check_params(owner: str, params: tuple[Param, ...], values: Mapping[str, Any]) -> None:
    """Raise one :class:`ConfigError` naming every value outside its declared rule."""
    bad = [f"The '{p.name}' parameter of {owner} must be {p.rule}. Got {values[p.name]!r} instead."
           for p in params if not p.check(values[p.name])]
    if bad:
        raise ConfigError("\n".join(bad))


#: The warning for a ``seed`` given to a spec: the seed belongs to the run, not the model.
SEED_MOVED = ("seed is no longer a model parameter; pass seed= to forecast/backtest or set [run] seed "
              "(the value given to {owner} is ignored)")


def drop_seed(owner: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without a ``seed`` key, warning when there was one.

    Old saved specs (and old code) set ``seed`` on the model; they keep loading, with a
    :class:`~forecast.exceptions.ForecastWarning`, rather than failing on an unknown key.
    """
    if "seed" not in params:
        return params
    warnings.warn(SEED_MOVED.format(owner=owner), ForecastWarning, stacklevel=3)
    return {k: v for k, v in params.items() if k != "seed"}


def check_seed(seed: Any) -> None:
    """A run's seed must be an int >= 0 (numpy seeds the random streams with it)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"The seed must be an int >= 0. Got {seed!r} instead.")
