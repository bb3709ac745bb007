"""Read a panel CSV (``unique_id, ds, y`` plus optional columns), validated like an events file.

A panel written by ``forecast panel`` or a run (``panel.csv``) can be read back
for backtests and forecasts. Every problem is reported at once, one line each,
naming the column, the check and the rows as a spreadsheet shows them (header =
row 1): missing columns, a column given twice, unreadable or out-of-range
period dates, counts that are not whole numbers ``0..MAX_PANEL_COUNT``, empty
series ids, a series with the same period twice, and dates that are not period
starts (the frequency is inferred here, once, and kept in ``panel.attrs["freq"]``).

An empty ``y`` cell is a *missing* count (a period without data), read as NaN and
treated as missing by every model, backtest and plot; it is not a zero. (In an
events file an empty count cell stays an error: there a row is one incident.) A
period absent from a series is missing in the same way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecast._files import read_table
from forecast._parse import count_problems, date_problems, parse_counts, parse_date_values, unquote_formula
from forecast.exceptions import DataValidationError, Problem
from forecast.periods import infer_freq
from forecast.schema import MAX_PANEL_COUNT, PANEL_COLUMNS, PANEL_KEYS

_TEXT_COLUMNS = ("unique_id", *PANEL_KEYS)


def read_panel_csv(path: str | Path) -> pd.DataFrame:
    """The panel in ``path``: ``ds`` datetime64[ns], ``y`` int64 (float64 with NaN where a
    cell is empty: a missing count), other columns as inferred.

    Raises
    ------
    DataValidationError
        One line per problem, all problems at once.
    """
    path = Path(path)
    raw, first_row = read_table(path)
    missing = [c for c in PANEL_COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError([Problem(", ".join(missing), "required panel column missing",
                                           hint=f"Columns found: {', '.join(raw.columns) or '(none)'}.")],
                                  source=path.name)
    if len(raw) == 0:
        raise DataValidationError([Problem("<file>", "the file has a header but no data rows",
                                           hint="Write the panel again with its rows.")], source=path.name)
    rows = np.asarray(raw.attrs.get("rows", np.arange(len(raw)) + first_row))
    problems: list[Problem] = []
    panel = pd.DataFrame(index=raw.index)
    for c in raw.columns:
        if c in _TEXT_COLUMNS:
            panel[c] = unquote_formula(raw[c].astype("string").fillna("").str.strip()).astype(str)
    uid = panel["unique_id"]
    prov = panel["province"] if "province" in panel.columns else None
    no_id = (uid == "").to_numpy()
    if no_id.any():
        problems.append(Problem("unique_id", "missing series id", rows=rows[no_id],
                                provinces=prov[no_id] if prov is not None else (),
                                hint="Give every row its series id (country/province/event_type)."))

    ds_text = raw["ds"].astype("string").fillna("").str.strip()
    ds, ds_status = parse_date_values(ds_text)
    problems += date_problems(ds_status, ds_text, "ds", rows, prov)
    y_text = raw["y"].astype("string").fillna("").str.strip()
    y, y_status = parse_counts(y_text, MAX_PANEL_COUNT)
    # An empty y is a missing count (NaN below), not an error.
    problems += count_problems(y_status, y_text, "y", MAX_PANEL_COUNT, rows, prov, empty_ok=True)

    key = pd.DataFrame({"u": uid.to_numpy(), "d": ds})
    dup = key.duplicated(keep=False).to_numpy() & ~np.isnat(ds) & ~no_id
    if dup.any():
        shown = ", ".join(pd.unique(key.loc[dup, "u"])[:3])
        problems.append(Problem("unique_id, ds", f"the same period of a series more than once (series {shown})",
                                rows=rows[dup], provinces=prov[dup] if prov is not None else (),
                                hint="Keep one row per series and period (sum the counts)."))
    if problems:
        raise DataValidationError(problems, source=path.name)

    freq = infer_freq(ds, rows=rows, source=path.name)
    panel["ds"] = ds
    empty = (y_text == "").to_numpy()
    panel["y"] = np.where(empty, np.nan, y) if empty.any() else y
    for c in raw.columns:
        if c not in panel.columns:
            panel[c] = _infer(raw[c])
    order = list(PANEL_COLUMNS) + [c for c in raw.columns if c not in PANEL_COLUMNS]
    out = panel[order].reset_index(drop=True)
    out.attrs["freq"] = freq
    return out


def _infer(values: pd.Series) -> pd.Series:
    """Booleans and numbers as pandas would read them; anything else stays text."""
    text = values.astype("string").fillna("").str.strip()
    if text.isin(["True", "False"]).all():
        return text == "True"
    num = pd.to_numeric(text.replace("", pd.NA), errors="coerce")
    if (num.notna() | (text == "")).all():
        return num.astype("float64") if num.isna().any() or (num % 1 != 0).any() else num.astype("int64")
    return values
