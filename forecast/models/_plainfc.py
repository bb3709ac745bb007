"""The usual forecast of a fitted panel, stacked: every series Poisson or NB2 with finite means
inside their guards, so no per-series guard has anything to do.

:meth:`~forecast.models.fitted.FittedModel.forecast` screens every series' forecast for
unusable numbers (:func:`~forecast.models.guard.screen`), caps means that ran away
(:func:`~forecast.models.guard.cap_many`) and floors means that underflowed
(:func:`~forecast.models.guard.floor_many`): three passes over per-series objects, which on
a backtest of thousands of series cost more than the forecasts themselves, and which change
nothing for almost every call. Here the means (and dispersions) are stacked once and the
three conditions checked on the stacked arrays; when any series needs a guard, the caller
takes its per-series path, so the result is the same either way.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecast.models.results import SeriesForecast

#: The families served here: one parametric component per row.
PLAIN = ("poisson", "negbin")


class Plain:
    """The stacked forecasts: ``family`` per series, means ``mu`` (S, h), dispersions
    ``alpha`` (S, h; 0 for the Poisson rows, which never read them)."""

    __slots__ = ("family", "mu", "alpha")

    def __init__(self, family: list[str], mu: np.ndarray, alpha: np.ndarray) -> None:
        self.family, self.mu, self.alpha = family, mu, alpha


def stack_plain(sfs: list, h: int) -> Plain | None:
    """The forecasts stacked when every one is a :class:`SeriesForecast` of a :data:`PLAIN`
    family with float means of shape (h,) (and, for NB2, dispersions of that shape; a Poisson
    forecast with none), and nothing else set; None otherwise."""
    S = len(sfs)
    if not S or {type(sf) for sf in sfs} != {SeriesForecast}:  # (a reason, a string: the guards)
        return None
    # Attribute by attribute over the list (the checks in C: ``count``, ``np.stack``), not series by series.
    family = [sf.family for sf in sfs]
    kinds = set(family)
    if not kinds <= set(PLAIN):
        return None
    for name in ("pi", "paths", "pmf", "path_mu"):
        if [getattr(sf, name) for sf in sfs].count(None) != S:
            return None
    try:
        mu = np.stack([sf.mu for sf in sfs])
    except (ValueError, TypeError):  # (shapes differ, or a mean is missing)
        return None
    if mu.shape != (S, h) or mu.dtype != np.float64:
        return None
    alphas = [sf.alpha for sf in sfs]
    if "negbin" not in kinds:
        return Plain(family, mu, np.zeros_like(mu)) if alphas.count(None) == S else None
    if "poisson" in kinds:
        if [a for f, a in zip(family, alphas) if f == "poisson"].count(None) != family.count("poisson"):
            return None
        zero = np.zeros(h)
        alphas = [zero if f == "poisson" else a for f, a in zip(family, alphas)]
    try:
        alpha = np.stack(alphas)
    except (ValueError, TypeError):
        return None
    if alpha.shape != (S, h) or alpha.dtype != np.float64:
        return None
    return Plain(family, mu, alpha)


def unguarded(plain: Plain, caps: np.ndarray, floors: np.ndarray) -> bool:
    """Whether no series needs a guard: every mean and dispersion finite and >= 0, no mean
    above its series' cap, and none below its floor (``floors``: 0 where no floor applies).
    These are the conditions under which ``screen``, ``cap_many`` and ``floor_many`` leave
    every forecast as it is."""
    mu, alpha = plain.mu, plain.alpha
    with np.errstate(invalid="ignore"):
        if not (np.isfinite(mu).all() and (mu >= 0).all() and np.isfinite(alpha).all() and (alpha >= 0).all()):
            return False
        if (mu > caps[:, None]).any():
            return False
        low = floors > 0
        return not (low.any() and (mu[low].min(axis=1) < floors[low]).any())


def index_frame(uids: Any, rows: np.ndarray, ahead: np.ndarray) -> pd.DataFrame:
    """The ``unique_id, ds, h`` index of a forecast of series ``rows`` (in that order), ``h``
    rows each: ``uids`` the ids of every series as one pandas array (built once per call,
    taken per row), ``ahead`` their (S, h) forecast dates. The frame equals the one built
    from a list of ids repeated (same values and dtypes)."""
    h = ahead.shape[1]
    return pd.DataFrame({"unique_id": uids.take(np.repeat(rows, h)), "ds": ahead[rows].ravel(),
                         "h": np.tile(np.arange(1, h + 1), len(rows))}, copy=False)


def id_array(series: list) -> Any:
    """The series' ids as the pandas array a frame column built from them would hold."""
    return pd.Series(np.asarray([s.uid for s in series])).array
