"""Missing periods inside a series, for the models that fit around them.

A :class:`~forecast.models.series.Series` marks missing periods in ``observed``
(``None`` when every period is observed, the fast path). A fit row is kept when its
own count and every lagged count it reads are observed; the others get weight 0
(rows are masked, not deleted, so series that share a calendar still share a design).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def kept_rows(observed: np.ndarray | None, lags: Sequence[int], first: int) -> np.ndarray | None:
    """Which design rows (periods ``first`` .. n-1) a fit may use: None when all of them.

    Row t is kept when y_t and every y_{t-k}, k in ``lags``, are observed.
    """
    if observed is None:
        return None
    ok = np.asarray(observed, dtype=bool).copy()
    for k in lags:
        ok[k:] &= observed[:-k]
        ok[:k] = False
    return ok[first:]


def lag_window(observed: np.ndarray | None, lags: Sequence[int]) -> int:
    """How many periods before the end must be simulated before forecasting (0: none).

    The first forecast reads y_{T-k}, k in ``lags``; a missing one is simulated from the
    model, which reads its own lags, and so on back: this is the distance from the end
    of the series to the earliest missing period that a forecast depends on.
    """
    if observed is None or not lags:
        return 0
    n = len(observed)
    need = {n - k for k in lags if n - k >= 0}
    start = n
    todo = sorted(need)
    seen: set[int] = set()
    while todo:
        t = todo.pop()
        if t in seen or t < 0:
            continue
        seen.add(t)
        if not observed[t]:
            start = min(start, t)
            todo.extend(t - k for k in lags if t - k >= 0)
    return n - start
