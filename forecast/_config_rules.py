"""Value checks of the run configuration (:mod:`forecast.config`): one checker per kind of key.

A checker takes ``(value, base)`` (``base`` the config file's folder, for relative paths),
returns the stored value, ``None`` for "not set" ("" or []), or raises :class:`_Bad` with
what was expected; :func:`forecast.config.config_from_dict` turns those into one line each
of a single :class:`~forecast.exceptions.ConfigError`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import field
from pathlib import Path
from typing import Any, Callable

from forecast.exceptions import ConfigError
from forecast.limits import DATE_RANGE_TEXT, FIRST_DATE, LAST_DATE


class _Bad(Exception):
    """A value failed its check; the argument says what was expected."""


_NOT_SET = object()


def _rule(expect: str, ok: Callable[[Any], bool], conv: Callable = lambda v, base: v,
          unset: Any = _NOT_SET) -> Callable:
    """A checker: ``unset`` ("" or []) -> None, ``ok(v)`` false -> _Bad(expect), else ``conv(v, base)``."""
    def check(v, base):
        if type(v) is type(unset) and v == unset:
            return None
        if not ok(v):
            raise _Bad(expect)
        return conv(v, base)
    return check


# Value tests (TOML gives bool as a subclass of int: true is never a number here).
def _is_num(v: Any, lo: float = 1, hi: float = float("inf"), kind: type | tuple = (int, float)) -> bool:
    return isinstance(v, kind) and not isinstance(v, bool) and lo <= v <= hi
_is_int = lambda v, lo=1: _is_num(v, lo, kind=int)  # noqa: E731
_is_name = lambda v: isinstance(v, str) and bool(v.strip())  # noqa: E731
_is_list = lambda item, nonempty=False: lambda v: (  # noqa: E731
    isinstance(v, list) and (bool(v) or not nonempty) and all(item(x) for x in v))


def _enum(*choices: str, optional: bool = False) -> Callable:
    return _rule("one of " + ", ".join(f"'{c}'" for c in choices) + (" or '' (no limit)" if optional else ""),
                 lambda v: v in choices, unset="" if optional else _NOT_SET)


def _abs(v: str | Path, base: Path) -> Path:
    return (base / Path(v).expanduser()).resolve()


def _date(v: Any, base: Any = None) -> dt.date:
    if isinstance(v, dt.date):
        day = v.date() if isinstance(v, dt.datetime) else v
    else:
        try:
            day = dt.date.fromisoformat(v)
        except (TypeError, ValueError):
            raise _Bad("a date written YYYY-MM-DD") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise _Bad(f"a date from {DATE_RANGE_TEXT} (the range supported)")
    return day


def _date_pair(p: Any, base: Any = None) -> tuple[dt.date, dt.date]:
    if not isinstance(p, list) or len(p) != 2:
        raise _Bad("[] or [start, end] (dates YYYY-MM-DD), or a table country = [start, end]")
    a, b = _date(p[0]), _date(p[1])
    if a > b:
        raise _Bad("a [start, end] pair with start <= end")
    return (a, b)


def _per_country(check: Callable) -> Callable:
    """Accept one value for all countries, or a table country = value."""
    return lambda v, base: {str(k): check(x, base) for k, x in v.items()} if isinstance(v, dict) else check(v, base)


def _freq_ok(v: Any) -> bool:
    from forecast.periods import parse_freq

    try:
        return isinstance(v, str) and bool(parse_freq(v))
    except ConfigError:
        return False


_names = _rule("a list of names in quotes", _is_list(_is_name), lambda v, base: tuple(v))
_prob = _rule("a number between 0 and 1 (exclusive)", lambda v: _is_num(v, 0, 1) and 0 < v < 1,
              lambda v, base: float(v))
_bool = _rule("true or false", lambda v: isinstance(v, bool))
_sorted = lambda v, base: tuple(sorted(set(v)))  # noqa: E731


def _key(check: Callable, default: Any = dataclasses.MISSING) -> Any:
    """A section field: its default (the starter file states the same) and its checker."""
    return field(default=default, metadata={"check": check})


_int1 = _rule("an int >= 1", _is_int)
_PATH = "a file path in quotes"
