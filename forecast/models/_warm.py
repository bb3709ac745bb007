"""Warm starts of batched GLM fits from an earlier fit of the same series.

A backtest refits every series at each origin on one more period of data: the previous
origin's estimates are then close to the new optimum, so Newton's ascent started there
needs fewer iterations. Start values change only the path, not the optimum (the solver
stops at the same gradient tolerance), so estimates agree with a cold start to that
tolerance. A series starts cold when it has no earlier fit, when that fit fell back down
its ladder (or did not converge), or when its design columns differ.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from forecast.models.results import SeriesFit


def start_values(warm: Mapping[str, SeriesFit] | None, series: Sequence, names: Sequence[str],
                 nb: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(start, alpha_start)`` for ``fit_batch``: rows of NaN (a cold start) where ``warm``
    (unique_id -> earlier fit) has no usable fit; ``(None, None)`` when no row has one."""
    if not warm:
        return None, None
    names = list(names)
    start = np.full((len(series), len(names)), np.nan)
    alpha = np.full(len(series), np.nan)
    hit = False
    for j, s in enumerate(series):
        f = warm.get(s.uid)
        if f is None or f.fallback != "none" or not f.converged:
            continue  # (a fallback's state is another model's: start cold)
        st = f.state
        beta, known = st.get("beta"), st.get("names")
        if beta is None or known is None or (known is not names and list(known) != names):
            continue  # the design changed shape (or its columns): start cold
        start[j] = beta
        if nb:
            alpha[j] = st.get("alpha", np.nan)
        hit = True
    if not hit:
        return None, None
    return start, (alpha if nb else None)
