"""Warm starts of INGARCH refits from an earlier fit of the same series (backtests).

A backtest refits every series at consecutive origins on one more period of data, so the
previous origin's estimate is close to the new optimum: :func:`start_of` turns that fit
into the start values of :func:`~forecast.models._ingarchfit.fit_ingarch`, which then
skips the Poisson GLM and Poisson INGARCH stages, and falls back to the cold path where
the warm ascent does not converge cleanly (see its Notes). Where the likelihood has one
maximum in reach the result is the cold fit's to the solver's tolerance; where it has
several, the warm fit may keep to another one, which is why ``INGARCH.warm_starts`` is
off by default. A series starts cold when it has no earlier fit, when that fit fell down
its ladder or did not converge, or when the spec's parameters or the design's columns
(neighbour columns included) differ.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from forecast.models.results import SeriesFit


def start_of(fit: SeriesFit | None, spec: Any, names: Sequence[str],
             cols: np.ndarray) -> tuple[np.ndarray, float] | None:
    """``(start, start_alpha)`` for :func:`~forecast.models._ingarchfit.fit_ingarch` from an
    earlier fit of the series by an equal ``spec``, or None (start cold).

    ``names`` are the design's column names now and ``cols`` the columns kept in the fit
    (aliased ones dropped); the start is the earlier beta on those columns (0 where the
    earlier fit dropped one), then its mean-lag coefficients.
    """
    if fit is None or fit.fallback != "none" or not fit.converged:
        return None  # (a fallback's state is another model's)
    st, other = fit.state, fit.spec
    if type(other) is not type(spec) or other.get_params() != spec.get_params():
        return None
    beta, a, known = st.get("beta"), st.get("a"), st.get("names")
    if beta is None or a is None or known is None or list(known) != list(names):
        return None  # the design's columns changed: start cold
    beta, a = np.asarray(beta, dtype=float), np.asarray(a, dtype=float)
    if beta.shape != (len(names),) or a.shape != (len(spec.past_mean),):
        return None
    return np.r_[beta[cols], a], float(st.get("alpha", 0.0))
