"""Numeric safety of fits and forecasts: which errors are numeric, what a usable forecast is,
and the forecast-mean cap.

A numeric failure (a singular matrix, an SVD that does not converge, an overflow, a
non-finite likelihood or forecast) is a property of one series' data, not a bug and not a
user error: the fallback ladder (:meth:`~forecast.models.base.ModelSpec._fit_many`,
:meth:`~forecast.models.fitted.FittedModel.forecast`) turns it into a recorded fallback for
that series only. User errors (:class:`~forecast.exceptions.ForecastError`, e.g. a
``ConfigError``, although it is also a ``ValueError``) and ``KeyboardInterrupt``,
``SystemExit``, ``MemoryError`` are never caught here.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterator

import numpy as np

from forecast.exceptions import ForecastError
from forecast.models.results import FitFailure, SeriesFit, SeriesForecast

#: Forecast means above this multiple of max(largest count in the history, 1) are capped.
MEAN_CAP_FACTOR = 1e4

# ArithmeticError covers OverflowError, FloatingPointError and ZeroDivisionError; numpy's
# (and scipy's) LinAlgError is a ValueError.
_NUMERIC = (ArithmeticError, ValueError)


def is_numeric_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a numeric failure of a fit or forecast (not a user error)."""
    return isinstance(exc, _NUMERIC) and not isinstance(exc, ForecastError)


def describe(exc: BaseException) -> str:
    """A one-line reason naming the error kind, e.g. ``LinAlgError: SVD did not converge``."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def fit_each(fit_one: Callable[[Any], SeriesFit], series: list) -> list[SeriesFit | FitFailure]:
    """``fit_one(s)`` per series, with the :class:`FitFailure` it raised (or one describing a
    numeric error) in place of a fit where it fails; any other error propagates."""
    out: list[SeriesFit | FitFailure] = []
    for s in series:
        try:
            out.append(fit_one(s))
        except FitFailure as exc:
            out.append(exc)
        except Exception as exc:
            if not is_numeric_error(exc):
                raise
            out.append(FitFailure(describe(exc)))
    return out


def mean_cap(y: np.ndarray) -> float:
    """The largest forecast mean allowed for a series with history ``y``."""
    return MEAN_CAP_FACTOR * max(int(np.max(y, initial=0)), 1)


def bad_forecast(sf: SeriesForecast) -> str:
    """Why a series' forecast cannot be used ("" when it can): non-finite or negative
    means, dispersions, probabilities or paths, or a pmf whose rows exceed 1."""
    with np.errstate(invalid="ignore"):
        for name in ("mu", "alpha", "pi"):
            v = getattr(sf, name)
            if v is None:
                continue
            v = np.asarray(v, dtype=float)
            if not np.all(np.isfinite(v)):
                return f"non-finite forecast {name}"
            if np.any(v < 0) or (name == "pi" and np.any(v > 1)):
                return f"forecast {name} out of range"
        if sf.path_mu is not None and not np.all(np.isfinite(sf.path_mu) & (sf.path_mu >= 0)):
            return "non-finite or negative path means"
        if sf.paths is not None:
            p = np.asarray(sf.paths)
            if p.dtype.kind == "f" and not np.all(np.isfinite(p)):
                return "non-finite simulated paths"
            if p.size and p.min() < 0:
                return "negative simulated counts"
        if sf.pmf is not None:
            pmf = np.asarray(sf.pmf, dtype=float)
            if not np.all(np.isfinite(pmf)):
                return "non-finite forecast pmf"
            if np.any(pmf < 0) or np.any(pmf.sum(axis=-1) > 1 + 1e-9):
                return "forecast pmf out of range"
    return ""


def screen(sfs: list) -> list[str]:
    """:func:`bad_forecast` for many series (strings, the reasons already known, pass
    through): one vectorised pass over the stacked means, the exact check only for the
    series it flags (the common case, every forecast usable, costs a few numpy calls)."""
    out = [sf if isinstance(sf, str) else "" for sf in sfs]
    suspect: set[int] = set()
    for name in ("mu", "alpha", "pi"):
        idx = [i for i, sf in enumerate(sfs) if not isinstance(sf, str) and getattr(sf, name) is not None]
        if not idx:
            continue
        parts = _flat_parts([getattr(sfs[i], name) for i in idx])
        flat = np.concatenate(parts).astype(float, copy=False)
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(flat) & (flat >= 0) & ((flat <= 1) if name == "pi" else True))
        if bad.any():
            owner = np.repeat(np.arange(len(idx)), [len(p) for p in parts])
            suspect.update(idx[j] for j in np.unique(owner[bad]))
    for i, sf in enumerate(sfs):
        if not isinstance(sf, str) and (i in suspect or sf.paths is not None or sf.pmf is not None):
            out[i] = bad_forecast(sf)
    return out


def _flat_parts(parts: list) -> list:
    """Arrays as 1-D (they usually are: then as given, without a per-series numpy call)."""
    if all(isinstance(p, np.ndarray) and p.ndim == 1 for p in parts):
        return parts
    return [np.ravel(p) for p in parts]


def cap_many(sfs: list, caps: np.ndarray) -> tuple[list, np.ndarray]:
    """:func:`cap_forecast` for many series: a vectorised screen of the means, the capping
    itself only for the series above their cap. Returns (forecasts, capped flags)."""
    capped = np.zeros(len(sfs), dtype=bool)
    idx = [i for i, sf in enumerate(sfs) if sf.mu is not None]
    suspect = [i for i, sf in enumerate(sfs) if sf.mu is None and sf.paths is not None]
    if idx:
        parts = _flat_parts([sfs[i].mu for i in idx])
        lens = [len(p) for p in parts]
        over = np.concatenate(parts) > np.repeat(caps[idx], lens)
        if over.any():
            suspect += [idx[j] for j in np.unique(np.repeat(np.arange(len(idx)), lens)[over])]
    out = list(sfs)
    for i in suspect:
        out[i], capped[i] = cap_forecast(sfs[i], float(caps[i]))
    return out, capped


# -- recording capped means ----------------------------------------------------------------

_CAPPED: contextvars.ContextVar[set | None] = contextvars.ContextVar("forecast_capped", default=None)


@contextlib.contextmanager
def recording_caps() -> Iterator[set]:
    """Collect the ids of the series whose forecast means a model capped inside this block."""
    seen: set = set()
    token = _CAPPED.set(seen)
    try:
        yield seen
    finally:
        _CAPPED.reset(token)


def note_capped(uid: str) -> None:
    """Record that series ``uid`` had a forecast mean capped (no-op outside :func:`recording_caps`)."""
    seen = _CAPPED.get()
    if seen is not None:
        seen.add(uid)


def cap_forecast(sf: SeriesForecast, cap: float) -> tuple[SeriesForecast, bool]:
    """The forecast with its means held at ``cap`` or below; whether anything was capped.

    Parametric families cap ``mu``; simulated paths (and their conditional means) are
    clipped at ``cap`` in the periods whose path mean exceeds it; a dense pmf (ARIMA,
    empirical) already has its support capped below ``cap`` by construction.
    """
    if sf.mu is not None:
        mu = np.asarray(sf.mu, dtype=float)
        with np.errstate(invalid="ignore"):
            if not np.any(mu > cap):  # (NaN is not "above": screen() deals with it)
                return sf, False
        return SeriesForecast(sf.family, mu=np.minimum(mu, cap), alpha=sf.alpha, pi=sf.pi), True
    if sf.paths is not None:
        over = (sf.paths if sf.path_mu is None else sf.path_mu).mean(axis=-1) > cap  # (h,)
        if not over.any():
            return sf, False
        paths = sf.paths.copy()
        paths[over] = np.minimum(paths[over], int(cap))
        path_mu = None if sf.path_mu is None else np.where(over[:, None], np.minimum(sf.path_mu, cap), sf.path_mu)
        return SeriesForecast(sf.family, paths=paths, path_mu=path_mu, alpha=sf.alpha, pi=sf.pi), True
    return sf, False


# -- no certain zeros ------------------------------------------------------------------------

#: A forecast mean below this fraction of the series' mean count is an underflow, not a
#: forecast: it is raised to that fraction (a series that had events is never a certain zero).
MEAN_FLOOR_FRACTION = 1e-2


def mean_floor(y: np.ndarray) -> float:
    """The smallest forecast mean allowed for a series with history ``y`` (0 if it never had an event)."""
    return MEAN_FLOOR_FRACTION * float(np.mean(y)) if len(y) else 0.0


def _poisson_rows(mu: float, n: int, width: int) -> np.ndarray:
    from scipy import stats

    k = max(width, int(mu + 12 * np.sqrt(mu) + 12))
    return np.tile(stats.poisson.pmf(np.arange(k), mu), (n, 1))


def floor_forecast(sf: SeriesForecast, floor: float) -> tuple[SeriesForecast, bool]:
    """The forecast with every period's mean at ``floor`` or above; whether anything changed.

    Parametric families raise ``mu`` (dispersion and zero inflation kept), path mixtures
    their paths' conditional means in those periods. Histogram paths
    and dense pmfs cannot be shifted: the periods whose mean is below the floor (in practice
    all paths, or all mass, at 0) become Poisson(``floor``) and the forecast a dense pmf.
    """
    if floor <= 0:
        return sf, False
    if sf.mu is not None:
        mu = np.asarray(sf.mu, dtype=float)
        if not np.any(mu < floor):
            return sf, False
        return SeriesForecast(sf.family, mu=np.maximum(mu, floor), alpha=sf.alpha, pi=sf.pi), True
    if sf.path_mu is not None:  # path mixtures: raise the paths' conditional means, as mu above
        low = sf.path_mu.mean(axis=-1) < floor
        if not low.any():
            return sf, False
        path_mu = np.where(low[:, None], np.maximum(sf.path_mu, floor), sf.path_mu)
        return SeriesForecast(sf.family, paths=sf.paths, path_mu=path_mu, alpha=sf.alpha, pi=sf.pi), True
    if sf.paths is not None:
        paths = np.asarray(sf.paths)
        low = paths.mean(axis=-1) < floor
        if not low.any():
            return sf, False
        width = int(paths.max(initial=0)) + 1
        pmf = np.stack([np.bincount(row.astype(np.int64), minlength=width) / row.size for row in paths])
    elif sf.pmf is not None:
        pmf = np.asarray(sf.pmf, dtype=float)
        low = pmf @ np.arange(pmf.shape[1]) < floor
        # (a row with mass beyond its support, the tail, has a larger mean than its dense part)
        low &= pmf.sum(axis=1) > 1 - 1e-9
        if not low.any():
            return sf, False
    else:  # pragma: no cover
        return sf, False
    rows = _poisson_rows(floor, int(low.sum()), pmf.shape[1])
    out = np.zeros((len(pmf), max(pmf.shape[1], rows.shape[1])))
    out[:, :pmf.shape[1]] = pmf
    out[low] = 0.0
    out[low, :rows.shape[1]] = rows
    return SeriesForecast("pmf", pmf=out), True


def floor_many(sfs: list, floors: np.ndarray, apply: np.ndarray) -> tuple[list, np.ndarray]:
    """:func:`floor_forecast` for many series (only where ``apply``; a vectorised screen of
    the parametric means first). Returns (forecasts, floored flags)."""
    floored = np.zeros(len(sfs), dtype=bool)
    out = list(sfs)
    for i, sf in enumerate(sfs):
        if not apply[i] or floors[i] <= 0:
            continue
        if sf.mu is not None and isinstance(sf.mu, np.ndarray) and sf.mu.min(initial=np.inf) >= floors[i]:
            continue
        out[i], floored[i] = floor_forecast(sf, float(floors[i]))
    return out, floored
