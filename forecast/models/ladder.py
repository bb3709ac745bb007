"""The fallback-ladder driver: fit many series rung by rung, so no series can fail another.

Below :mod:`forecast.models.base` (specs call it) and above :mod:`forecast.models.guard`
(which says what a numeric failure is): it works on spec objects through their methods
(``_rungs``, ``_try_fit_many``) and imports no spec class.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import numpy as np

from forecast.models._pooled import SEPARATE, pooling_panel
from forecast.models.guard import describe, is_numeric_error
from forecast.models.results import FitFailure, SeriesFit

_BATCHED = [True]


def batching() -> bool:
    """Whether models with a batched engine use it (see :func:`batched_engine`)."""
    return _BATCHED[-1]


@contextlib.contextmanager
def batched_engine(enabled: bool = True) -> Iterator[None]:
    """Turn the batched fitting engine on or off inside a ``with`` block (this process).

    Batched and per-series fits give the same results; the switch exists for
    benchmarks and for the tests that check exactly that. Worker processes
    (``jobs > 1``) start with the default (on).
    """
    with _pushed(_BATCHED, enabled):
        yield


_WARM = [True]


def warm_starting() -> bool:
    """Whether backtests start refits from the previous origin's fit (see :func:`warm_starts`)."""
    return _WARM[-1]


@contextlib.contextmanager
def warm_starts(enabled: bool = True) -> Iterator[None]:
    """Turn warm-started backtest refits on or off inside a ``with`` block (this process).

    A warm start changes only the solver's path: estimates agree with cold fits to the
    solver's tolerance, not to the last bit. The switch exists for the tests that check
    a backtest against cold refits bit for bit, and for benchmarks. Worker processes
    (``jobs > 1``) start with the default (on).
    """
    with _pushed(_WARM, enabled):
        yield


@contextlib.contextmanager
def _pushed(stack: list, enabled: bool) -> Iterator[None]:
    """``enabled`` on top of a switch's ``stack`` for the ``with`` block (nested blocks restore)."""
    stack.append(bool(enabled))
    try:
        yield
    finally:
        stack.pop()


def rungs_of(top: Any) -> list[tuple[str, Any]]:
    """``top``'s ladder as it runs: its declared rungs (``top._rungs()``), where a rung below
    the top that names a replacement (``as_last_rung``: the ``zero`` rung) runs that
    replacement instead (a Poisson at the shrunk long-run rate), so no ladder ends in a
    certain zero for a series that had events."""
    out = []
    for r, (label, spec) in enumerate(top._rungs()):
        swap = getattr(spec, "as_last_rung", None) if r > 0 else None
        if swap is not None:
            spec = swap()
            label = spec.name
        out.append((label, spec))
    return out


def fit_many(top: Any, series: list, warm: dict | None = None) -> list[SeriesFit]:
    """Fit many series, each through ``top``'s fallback ladder, one rung at a time for all
    series still unfitted (so every rung can use a batched engine).

    A rung fails for a series when it raises :class:`FitFailure` or a numeric error
    (see :func:`~forecast.models.guard.is_numeric_error`), returns a fit with a
    non-finite likelihood or parameters, or does not converge; the reason, naming the
    error, is kept in the fit's ``reason``.

    A top rung that pools across series (pooled climatology) pools over the enclosing
    pooling panel (:func:`~forecast.models._pooled.pooling_panel`, set by ``fit_data`` to
    the whole panel) or, without one, over ``series``. Lower rungs pool each series with
    itself only: which series reach a rung depends on the others' failures and, in a
    backtest, on how series are chunked, and a fallback must depend on neither.

    ``warm`` (unique_id -> earlier fit; only for a ``top`` with ``warm_starts``) gives the
    top rung's solver its start values; lower rungs start cold.
    """
    with pooling_panel(series, replace=False):
        return _fit_many(top, series, warm)


def _fit_many(top: Any, series: list, warm: dict | None = None) -> list[SeriesFit]:
    rungs = rungs_of(top)
    out: list[SeriesFit | None] = [None] * len(series)
    reasons: list[list[str]] = [[] for _ in series]
    pending = list(range(len(series)))
    for r, (label, spec) in enumerate(rungs):
        if not pending:
            break
        name = spec.name if label == "none" else label
        last = r == len(rungs) - 1
        if r == 0:
            results = guarded_fit_many(spec, [series[i] for i in pending], warm)
        else:  # lower rungs pool each series alone: a fallback cannot depend on which others failed
            with pooling_panel(SEPARATE):
                results = guarded_fit_many(spec, [series[i] for i in pending])
        left = []
        for i, res in zip(pending, results):
            if isinstance(res, FitFailure):
                reasons[i].append(f"{name}: {res}")
            elif not res.converged and not last:
                reasons[i].append(f"{name}: {res.message or 'did not converge'}")
            else:
                res.fallback, res.reason = label, "; ".join(reasons[i])
                out[i] = res
                continue
            left.append(i)
        pending = left
    if pending:  # pragma: no cover
        raise AssertionError("the last fallback rung must always succeed")
    return out  # type: ignore[return-value]


def guarded_fit_many(spec: Any, series: list, warm: dict | None = None) -> list[SeriesFit | FitFailure]:
    """``spec._try_fit_many`` where no series can fail another: when a (batched) rung raises a
    numeric error for the whole call, it is retried series by series, so only the series
    that cause it fail (a singular matrix can appear only when certain series share a
    batch). Fits with non-finite likelihood or parameters become failures. ``warm``: start
    values for the whole call (see :func:`fit_many`); the series-by-series retry starts cold."""
    try:
        results = spec._try_fit_many(series, warm=warm) if warm else spec._try_fit_many(series)
    except Exception as exc:
        if not is_numeric_error(exc):
            raise
        if len(series) == 1:
            if not batching():
                return [FitFailure(describe(exc))]
            with batched_engine(False):  # the per-series engine (same results when both work)
                res = guarded_fit_many(spec, series)[0]
            if isinstance(res, SeriesFit):
                res.engine = f"per-series (the batched engine raised {type(exc).__name__})"
            return [res]
        results = []
        for s in series:
            res = guarded_fit_many(spec, [s])[0]
            if isinstance(res, SeriesFit) and not res.engine.startswith("per-series (the batched engine"):
                res.engine = f"per-series (the batch raised {type(exc).__name__})"
            results.append(res)
    # (an unconverged fit already fails the rung with its own message)
    fine = _surely_usable(results)
    return [res if fine[i] else unusable(res) or res if isinstance(res, SeriesFit) and res.converged else res
            for i, res in enumerate(results)]


#: State entries holding estimated parameters: non-finite values there make a fit unusable.
PARAM_KEYS = ("beta", "alpha", "mu", "rate", "a", "pi", "gamma")


def _surely_usable(results: list) -> np.ndarray:
    """True for each converged fit whose likelihood and every parameter are finite floats
    (the arrays of all fits checked in one pass), so :func:`unusable` would pass it; False
    for the others, which :func:`unusable` then checks one by one."""
    ok = np.zeros(len(results), dtype=bool)
    parts: list[np.ndarray] = []
    owner: list[int] = []
    for i, f in enumerate(results):
        if not (isinstance(f, SeriesFit) and f.converged and isinstance(f.loglik, float) and math.isfinite(f.loglik)):
            continue
        good = True
        for key in PARAM_KEYS:
            v = f.state.get(key)
            if v is None or isinstance(v, str):
                continue
            if isinstance(v, float):
                good = math.isfinite(v)
            elif isinstance(v, np.ndarray) and v.dtype == np.float64:
                parts.append(v.ravel())
                owner.append(i)
            else:
                good = False  # (any other type: the exact check)
            if not good:
                break
        ok[i] = good
    if parts:
        bad = ~np.isfinite(np.concatenate(parts))
        if bad.any():
            ok[np.repeat(owner, [p.size for p in parts])[bad]] = False
    return ok


def unusable(fit: SeriesFit) -> FitFailure | None:
    """A failure when a fit's numbers cannot be used (None when they can)."""
    if fit.loglik == np.inf or (np.isnan(fit.loglik) and fit.n_params > 0):
        return FitFailure(f"non-finite log-likelihood ({fit.loglik})")
    for key in PARAM_KEYS:
        v = fit.state.get(key)
        if v is None or isinstance(v, str):
            continue
        if type(v) is float:  # (the common scalar: no array round trip)
            if not math.isfinite(v):
                return FitFailure(f"non-finite fitted parameter '{key}'")
            continue
        try:
            arr = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            continue
        if not np.isfinite(arr).all():
            return FitFailure(f"non-finite fitted parameter '{key}'")
    return None
