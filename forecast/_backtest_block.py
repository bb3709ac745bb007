"""One (model, cutoff) block of a backtest: forecast table, scores and diagnostics.

Split from :mod:`forecast.backtesting` (the loop; import :func:`score_block` from there) to
keep each module small. Each block's frames are built column by column in their final
order: a block is small, and there are thousands of them.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def score_block(label: str, cutoff: pd.Timestamp, fc: Any, y: np.ndarray, scales: np.ndarray,
                diagnostics: pd.DataFrame, *, levels: tuple, thresholds: tuple, keep_pmf: bool) -> dict:
    """One (model, cutoff) block of a backtest: the forecast table, its scores against the
    observed ``y`` (rows of ``fc``), the diagnostics and (``keep_pmf``) the forecast itself.

    Shared with combinations that assemble their backtest from their members' (the
    ``auto`` model), so every block is scored the same way.
    """
    from forecast.scoring import scores_and_table

    # the scores and the table's quantiles and exceedances from one pass over the pmf
    sc, cols = scores_and_table(fc, y, levels=levels, thresholds=thresholds)
    sc["mase"] = sc["abs_error"] / scales
    # Interval bounds and steps as int32 (counts are read up to 1e9 < 2**31): a large backtest
    # holds a row per forecast, and these are 7 of its ~13 numeric columns.
    top = np.iinfo(np.int32).max
    idx, n = fc.index, fc.n_rows
    # (columns in their final order: inserting into a frame copies its blocks)
    data = {"unique_id": idx["unique_id"].array, "ds": idx["ds"].array, "cutoff": _constant(cutoff, n),
            "h": np.minimum(idx["h"].to_numpy(), top).astype(np.int32), "model": _constant(label, n), "y": y}
    for name, v in cols.items():
        data[name] = np.minimum(v, top).astype(np.int32) if name.startswith(("lo-", "hi-")) else v
    m = len(diagnostics)
    diag = {"model": _constant(label, m), "cutoff": _constant(cutoff, m),
            **{c: _copy(diagnostics[c]) for c in DIAGNOSTICS if c in diagnostics.columns}}
    return Block(cutoff, fc if keep_pmf else None, forecasts=(data, n), scores=(sc, n), diagnostics=(diag, m))


class Block(dict):
    """What :func:`score_block` returns: a dict of ``cutoff``, ``pmf`` (None unless kept) and the
    frames ``forecasts``, ``scores`` and ``diagnostics``, each built from its columns on first
    read. The collector of a backtest reads the columns (:meth:`columns`) and never builds the
    frames: thousands of blocks, each built as frames only to be taken apart again.
    """

    def __init__(self, cutoff: Any, pmf: Any, **frames: tuple[dict, int]) -> None:
        super().__init__(cutoff=cutoff, pmf=pmf)
        self.frames = frames  # kind -> (column name -> 1-D array, rows)

    def __missing__(self, key: str) -> pd.DataFrame:
        if key not in self.frames:
            raise KeyError(key)
        cols, n = self.frames[key]
        self[key] = frame = pd.DataFrame(cols, index=pd.RangeIndex(n), copy=False)
        return frame

    def __contains__(self, key: object) -> bool:
        return key in self.frames or super().__contains__(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def columns(self, kind: str) -> tuple[dict, int] | None:
        """The columns and rows of frame ``kind`` when each is a 1-D array a frame keeps as it
        is (numbers, times, bool, pandas text); None otherwise (then read the frame)."""
        if kind in self.keys():  # (already built: the frame is what counts)
            return None
        cols, n = self.frames[kind]
        for v in cols.values():
            if isinstance(v, np.ndarray):
                if v.ndim != 1 or v.dtype.kind not in "biufmM" or len(v) != n:
                    return None
            elif not (isinstance(v, (pd.arrays.StringArray, pd.arrays.ArrowStringArray, pd.arrays.DatetimeArray))
                      and len(v) == n):
                return None
        return cols, n


#: The diagnostics columns a backtest keeps (after ``model, cutoff``), when the model reports them.
DIAGNOSTICS = ("unique_id", "fallback", "reason", "model_used", "converged", "engine")


def _constant(value: Any, n: int) -> Any:
    """A column of ``n`` copies of a label (text) or cutoff (a Timestamp), of the dtype
    ``DataFrame.insert`` gives such a scalar (the same values, built without the insert's copy)."""
    if isinstance(value, pd.Timestamp):
        return np.full(n, value.to_datetime64())
    if isinstance(value, str):
        return pd.Series(np.asarray([value])).array.take(np.zeros(n, dtype=np.intp))
    return pd.Series(value, index=pd.RangeIndex(n)).array


def _copy(col: pd.Series) -> Any:
    """A column's values, copied (numpy dtypes as numpy arrays)."""
    return col.to_numpy(copy=True) if isinstance(col.dtype, np.dtype) else col.array.copy()
