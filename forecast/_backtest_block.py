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
    table = pd.DataFrame(data, index=pd.RangeIndex(n), copy=False)
    m = len(diagnostics)
    diag = pd.DataFrame({"model": _constant(label, m), "cutoff": _constant(cutoff, m),
                         **{c: _copy(diagnostics[c]) for c in DIAGNOSTICS if c in diagnostics.columns}},
                        index=pd.RangeIndex(m), copy=False)
    return dict(cutoff=cutoff, forecasts=table, scores=pd.DataFrame(sc), diagnostics=diag,
                pmf=fc if keep_pmf else None)


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
