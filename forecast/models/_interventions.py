"""Dated interventions of the log-linear count models: reading and checking them.

An intervention is a dated change a model's design gets a column for (a
``step``, a ``pulse`` or a ``ramp``; :mod:`forecast.models.design` builds the
columns). Re-exported from :mod:`forecast.models.design`, where callers import
them from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from forecast.exceptions import ConfigError

INTERVENTION_KINDS = ("step", "pulse", "ramp")


@dataclass(frozen=True)
class Intervention:
    """A dated change: ``name``, ``date`` (any date inside the first affected period), ``kind``."""

    name: str
    date: pd.Timestamp
    kind: str = "step"


def parse_interventions(value: Any) -> tuple[Intervention, ...]:
    """Read interventions from dicts (``{name, date, kind}``), tuples or ``"kind@date"`` strings."""
    out = []
    for i, item in enumerate(value or ()):
        if isinstance(item, Intervention):
            out.append(item)
            continue
        if isinstance(item, str):
            kind, _, date = item.partition("@") if "@" in item else ("step", "", item)
            item = {"date": date, "kind": kind}
        elif isinstance(item, (tuple, list)):
            item = dict(zip(("name", "date", "kind"), item))
        if not isinstance(item, dict) or "date" not in item:
            raise ConfigError(f"Intervention {i + 1} must give a date, e.g. "
                              "{name = \"takeover\", date = \"2021-08-01\", kind = \"step\"}. Got "
                              f"{item!r} instead.")
        unknown = set(item) - {"name", "date", "kind"}
        if unknown:
            raise ConfigError(f"Intervention {i + 1} has unknown key(s) {', '.join(sorted(unknown))}; "
                              "allowed: name, date, kind.")
        kind = item.get("kind", "step")
        if kind not in INTERVENTION_KINDS:
            raise ConfigError(f"Intervention kind must be one of {', '.join(INTERVENTION_KINDS)}. Got '{kind}'.")
        try:
            date = pd.Timestamp(item["date"])
        except (ValueError, TypeError):
            raise ConfigError(f"Intervention {i + 1} has an unreadable date {item['date']!r}; "
                              "use YYYY-MM-DD.") from None
        name = item.get("name") or f"{kind}_{date.date()}"
        out.append(Intervention(str(name), date, kind))
    names = [iv.name for iv in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"Intervention names must be unique. Got {', '.join(names)}.")
    return tuple(out)


def valid_interventions(value: Any) -> bool:
    try:
        parse_interventions(value)
    except (ConfigError, TypeError):
        return False
    return True
