"""Column helpers of :mod:`forecast.ingest`: the gazetteer, event-type mapping, counts, id conflicts.

Each takes a column (or the rows built so far) and returns the cleaned values and,
where input can be wrong, :class:`~forecast.exceptions.Problem` s naming the rows;
``read_events`` collects every problem and raises them together.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from forecast._parse import EMPTY, count_problems, parse_counts
from forecast.exceptions import Problem
from forecast.schema import MAX_EVENT_COUNT
from forecast.sources import SourceSchema


def _resolve_gazetteer(gazetteer: Any):
    from forecast.gazetteer import Gazetteer

    if gazetteer is None:
        return Gazetteer.default()
    if isinstance(gazetteer, Gazetteer):
        return gazetteer
    return Gazetteer.default().extend(gazetteer)


def _strip_suffixes(names: pd.Series, suffixes: tuple[str, ...]) -> pd.Series:
    pattern = "(?i)(" + "|".join(s.strip() for s in suffixes) + r")\s*$"
    return names.str.replace(pattern, "", regex=True).str.strip()


def _map_event_types(keys: pd.Series, src: SourceSchema,
                     overrides: Mapping[str, str] | None) -> tuple[pd.Series, list[str]]:
    mapping = {str(k).strip().lower(): str(v).strip() for k, v in src.event_types.items()}
    for k, v in (overrides or {}).items():
        mapping[str(k).strip().lower()] = str(v).strip()
    codes, uniques = pd.factorize(keys.str.lower())
    mapped, unmapped = [], []
    for key in uniques:
        if key in mapping:
            mapped.append(mapping[key])
            continue
        # "Event type / Sub-event type" falls back to the plain event type.
        base = key.split(" / ")[0]
        if base in mapping:
            mapped.append(mapping[base])
        else:
            mapped.append(base)
            if src.event_types and base:
                unmapped.append(base)
    values = np.asarray(mapped, dtype=object)[codes] if len(mapped) else np.array([], dtype=object)
    return pd.Series(values, index=keys.index, dtype="string").fillna(""), sorted(set(unmapped))


def _counts(values: pd.Series | None, column: str, rows: np.ndarray, province: pd.Series,
            problems: list[Problem], *, empty: int | None,
            empty_ok: bool = True) -> np.ndarray | pd.arrays.IntegerArray:
    """Whole numbers 0..MAX_EVENT_COUNT, checked exactly on the text (see :mod:`forecast._parse`)."""
    n = len(rows)
    if values is None:
        return np.full(n, empty, dtype="int64") if empty is not None else pd.array([pd.NA] * n, dtype="Int64")
    num, status = parse_counts(values, MAX_EVENT_COUNT)
    problems += count_problems(status, values, column, MAX_EVENT_COUNT, rows, province, empty_ok=empty_ok)
    if empty is not None:
        return np.where(status == EMPTY, empty, num).astype("int64")
    return pd.arrays.IntegerArray(num, status == EMPTY)


def _conflicting_ids(out: pd.DataFrame, repeated: np.ndarray, column: str, rows: np.ndarray) -> list[Problem]:
    """An id repeated with a different date, place, type or count: which copy is right is unknown."""
    fields = [c for c in ("date", "country", "province", "event_type", "count", "fatalities") if c in out.columns]
    sub = out.loc[repeated, ["event_id", *fields]]
    differs = sub.groupby("event_id", sort=False)[fields].nunique(dropna=False).gt(1)
    bad_ids = differs.index[differs.any(axis=1)]
    if not len(bad_ids):
        return []
    which = sorted({f for f in fields if differs.loc[bad_ids, f].any()})
    mask = repeated & out["event_id"].isin(bad_ids).to_numpy()
    shown = ", ".join(map(str, bad_ids[:5])) + (f" and {len(bad_ids) - 5} more" if len(bad_ids) > 5 else "")
    return [Problem(column, f"the same event id with a different {', '.join(which)} (ids {shown})",
                    rows=rows[mask], provinces=out.loc[mask, "province"],
                    hint="Give each event its own id, or delete the wrong copy.")]


def _first_rows(rows: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")
