"""Value normalisation for :mod:`forecast.report_context`: numbers, ints, text and flat rows.

Missing numbers become ``None`` (JSON ``null``), never NaN, so a context round-trips exactly.
Infinite numbers (the mean log score of a model that gave an observed count probability 0)
stay ``inf`` in the typed rows and are written as the strings ``"inf"`` / ``"-inf"``: strict
JSON has no infinity, and ``null`` would read as "missing". :func:`_num` reads them back.
"""
from __future__ import annotations

import json
import math
from dataclasses import fields
from typing import Any, Mapping

def _num(x: Any) -> float | None:
    """A float, or None for missing (None, NaN, NaT); ``"inf"``/``"-inf"`` (as written) read as infinities."""
    if x is None:
        return None
    v = float(x)
    return None if math.isnan(v) else v


def _int(x: Any) -> int | None:
    v = _num(x)
    if v is not None and math.isinf(v):
        raise ValueError(f"{x!r} is not a whole number")
    return None if v is None else int(v)


def _str(x: Any) -> str:
    return "" if x is None else str(x)


def _level(x: Any) -> int | float:
    """A prediction level as written today: 80, not 80.0 (the report prints it)."""
    v = float(x)
    return int(v) if v.is_integer() else v


def _bool(x: Any) -> bool | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return bool(x)


def json_values(x: Any) -> Any:
    """Plain JSON values (what writing and reading a file gives), with NaN as None."""
    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(w) for k, w in v.items()}
        if isinstance(v, list):
            return [clean(w) for w in v]
        return v
    return clean(json.loads(json.dumps(x, default=str)))


def _records(x: Any) -> list[Mapping]:
    return [] if x is None else list(x)


class _Row:
    """``from_dict``/``to_dict`` for the flat row classes below (each field normalised by ``_CONVERT``)."""

    _CONVERT: dict[str, Any] = {}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        kw = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in d:
                kw[f.name] = cls._CONVERT.get(f.name, _str)(d[f.name])
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _json_number(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def _json_number(v: Any) -> Any:
    """An infinite float as the string ``"inf"``/``"-inf"`` (strict JSON has no infinity); else ``v``."""
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v
