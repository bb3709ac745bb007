"""Model specs and fitted models: the contract every count model follows.

A *spec* (:class:`ModelSpec`) holds hyperparameters only: a keyword-only
constructor that stores them as given, declared limits checked at ``fit``,
scikit-learn style ``get_params`` / ``set_params`` / ``clone``. ``spec.fit``
returns a new, immutable :class:`FittedModel` whose ``forecast(h)`` returns a
:class:`~forecast.distributions.CountForecast`, so backtest folds cannot leak
state.

Models fit each series on its own through :meth:`ModelSpec._fit_series`. The
base class runs the model's *fallback ladder*: when a rung fails for a series
(raises :class:`FitFailure` or a numeric error such as ``LinAlgError`` or
``OverflowError``, gives a non-finite likelihood or parameters, or does not
converge) the next, simpler rung is tried, ending at ``climatology`` and
``zero``, so degenerate series (all zeros, one event, separation, a huge
spike) never crash a run; a batch that raises is retried series by series, so
one series never fails another. Forecasts that come out unusable (non-finite
means) move the series further down at forecast time. ``diagnostics()``
records the rung that ran and why (see :mod:`forecast.models.guard`).
"""
from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError
from forecast.models.guard import describe, is_numeric_error
from forecast.models.series import (  # noqa: F401  (re-exported: models import them from here)
    PanelData,
    Series,
    _future_of,
    future_dates,
    infer_freq,
    period_range,
    series_rng,
)

# -- hyperparameters ------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One declared hyperparameter.

    ``rule`` completes the sentence "The 'x' parameter of Model must be ...";
    ``check`` returns True for an allowed value.
    """

    name: str
    default: Any
    rule: str
    check: Callable[[Any], bool]
    doc: str = ""


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def positive(v: Any) -> bool:
    return _is_num(v) and v > 0 and np.isfinite(v)


def non_negative(v: Any) -> bool:
    return _is_num(v) and v >= 0 and np.isfinite(v)


def positive_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1


def one_of(*choices: Any) -> Callable[[Any], bool]:
    return lambda v: v in choices


def int_tuple(v: Any) -> bool:
    return isinstance(v, (tuple, list)) and all(positive_int(x) for x in v)


def str_tuple(v: Any) -> bool:
    return isinstance(v, (tuple, list)) and all(isinstance(x, str) for x in v)


def optional_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


#: Ridge penalty of the penalised rung added after a penalisable fallback model.
PENALTY_FALLBACK = 1.0

SEED = Param("seed", 0, "an int >= 0", lambda v: isinstance(v, (int, np.integer)) and v >= 0,
             "seed of the per-series random streams")


class ModelSpec:
    """Base of every model spec (hyperparameters only; ``fit`` makes the model)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    #: fallback rungs after the model's own fit, names of other registered specs
    fallbacks: ClassVar[tuple[str, ...]] = ("climatology", "zero")
    #: whether forecasts draw random numbers (if not, no per-series stream is made)
    draws: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A real keyword-only signature, so help(), IDEs and sklearn.clone see the params.
        cls.__signature__ = inspect.Signature(
            [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
            + [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default) for p in cls.params])
        if cls.name:
            REGISTRY[cls.name] = cls

    def __init__(self, **params: Any) -> None:
        allowed = [p.name for p in self.params]
        unknown = [k for k in params if k not in allowed]
        if unknown:
            raise ConfigError(f"{type(self).__name__} got unknown parameter(s) {', '.join(map(repr, unknown))}; "
                              f"allowed: {', '.join(allowed)}.")
        for p in self.params:  # stored as given; checked at fit
            setattr(self, p.name, params.get(p.name, p.default))

    # sklearn protocol ---------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {p.name: getattr(self, p.name) for p in self.params}

    def set_params(self, **params: Any) -> "ModelSpec":
        allowed = {p.name for p in self.params}
        for k, v in params.items():
            if k not in allowed:
                raise ConfigError(f"{type(self).__name__} has no parameter '{k}'; allowed: "
                                  f"{', '.join(sorted(allowed))}.")
            setattr(self, k, v)
        return self

    def clone(self) -> "ModelSpec":
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        changed = [f"{p.name}={getattr(self, p.name)!r}" for p in self.params
                   if not _same(getattr(self, p.name), p.default)]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            _same(a, b) for a, b in zip(self.get_params().values(), other.get_params().values()))  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]  # mutable through set_params

    def validate(self) -> None:
        """Check every hyperparameter against its declared rule (all failures at once)."""
        bad = [f"The '{p.name}' parameter of {type(self).__name__} must be {p.rule}. "
               f"Got {getattr(self, p.name)!r} instead." for p in self.params if not p.check(getattr(self, p.name))]
        if bad:
            raise ConfigError("\n".join(bad))

    # fitting ------------------------------------------------------------------
    def fit(self, panel: pd.DataFrame) -> "FittedModel":
        """Fit every series of a long frame with ``unique_id, ds, y`` (+ exogenous columns)."""
        self.validate()
        self.check_panel(panel)
        return self._fit_data(PanelData.from_frame(panel, self.required_columns()))

    def check_panel(self, panel: pd.DataFrame) -> None:
        """Model-specific checks of the panel's columns, all failures at once (default: none)."""

    def _fit_data(self, data: "PanelData") -> "FittedModel":
        """Fit already split and validated series (backtests split the panel once, not per origin)."""
        spec = self.clone()  # the fitted model keeps a frozen copy of the hyperparameters
        return FittedModel(spec=spec, data=data, fits=spec._fit_many(data.series))

    def required_columns(self) -> tuple[str, ...]:
        """Extra panel columns the model reads (exogenous, exposure)."""
        return ()

    def _fit_series(self, s: "Series") -> "SeriesFit":
        """Fit one series; raise :class:`FitFailure` when it cannot be fitted."""
        raise NotImplementedError

    def _rungs(self) -> list[tuple[str, "ModelSpec"]]:
        """The whole ladder, (label, spec) pairs: ("none", self) first, simplest last."""
        rungs: list[tuple[str, ModelSpec]] = [("none", self)]
        for label, spec in self.fallback_specs():
            rungs.append((label, spec))
            # A penalisable fallback (a GLM) gets its ridge-penalised variant right
            # after it, so separation in the fallback does not skip to climatology.
            if label != "none" and spec.get_params().get("penalty") == 0:
                rungs.append((f"{label}+penalty", spec.clone().set_params(penalty=PENALTY_FALLBACK)))
        return rungs

    def _fit_many(self, series: list["Series"]) -> list["SeriesFit"]:
        """Fit many series, each through the fallback ladder, one rung at a time for all
        series still unfitted (so every rung can use a batched engine).

        A rung fails for a series when it raises :class:`FitFailure` or a numeric error
        (see :func:`~forecast.models.guard.is_numeric_error`), returns a fit with a
        non-finite likelihood or parameters, or does not converge; the reason, naming the
        error, is kept in the fit's ``reason``.
        """
        rungs = self._rungs()
        out: list[SeriesFit | None] = [None] * len(series)
        reasons: list[list[str]] = [[] for _ in series]
        pending = list(range(len(series)))
        for r, (label, spec) in enumerate(rungs):
            if not pending:
                break
            name = spec.name if label == "none" else label
            last = r == len(rungs) - 1
            results = _guarded_fit_many(spec, [series[i] for i in pending])
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

    def _try_fit_many(self, series: list["Series"]) -> list["SeriesFit | FitFailure"]:
        """This rung alone on many series: a fit, or the :class:`FitFailure` it raised, per
        series (a numeric error of one series becomes its :class:`FitFailure`). Models with
        a batched engine override this; the result must equal :meth:`_fit_series` on each
        series (see :func:`batched_engine`)."""
        out: list[SeriesFit | FitFailure] = []
        for s in series:
            try:
                out.append(self._fit_series(s))
            except FitFailure as exc:
                out.append(exc)
            except Exception as exc:
                if not is_numeric_error(exc):
                    raise
                out.append(FitFailure(describe(exc)))
        return out

    def _fit_with_fallbacks(self, s: "Series") -> "SeriesFit":
        """One series through the fallback ladder (see :meth:`_fit_many`)."""
        return self._fit_many([s])[0]

    def fallback_specs(self) -> list[tuple[str, "ModelSpec"]]:
        """The ladder after the model's own fit: (label, spec) pairs, simplest last.

        Default: the registered models named in ``fallbacks``. A model may
        override this to add rungs such as its own penalised fit.
        """
        return [(name, REGISTRY[name]._fallback_from(self)) for name in self.fallbacks if name != self.name]

    @classmethod
    def _fallback_from(cls, spec: "ModelSpec") -> "ModelSpec":
        """This model as a fallback rung for ``spec`` (carries over the shared params)."""
        shared = {k: v for k, v in spec.get_params().items() if k in {p.name for p in cls.params}}
        return cls(**shared)

    # forecasting (per series) -----------------------------------------------------
    def _forecast_series(self, fit: "SeriesFit", s: "Series", h: int, future: pd.DataFrame | None,
                         rng: np.random.Generator) -> "SeriesForecast":
        raise NotImplementedError

    def _forecast_many(self, fits: list["SeriesFit"], series: list["Series"], h: int,
                       future: pd.DataFrame | None, seed: int) -> list["SeriesForecast"]:
        """Forecast many series fitted by this spec (``fit.spec`` equal to ``self``).

        Per series by default, each with its own random stream
        (:func:`series_rng`); batched overrides must give the same result.
        """
        out = []
        for fit, s in zip(fits, series):
            fut = None if future is None else _future_of(future, s, h)
            rng = series_rng(seed, s.uid, s.ds_values[-1]) if self.draws else None
            out.append(self._forecast_series(fit, s, h, fut, rng))
        return out

    def equation(self) -> str:
        """The model equation, for reports (first paragraph of the class Notes)."""
        doc = inspect.getdoc(type(self)) or ""
        return doc.split("Notes\n-----\n", 1)[-1].split("\n\n")[0].strip() if "Notes" in doc else doc


REGISTRY: dict[str, type[ModelSpec]] = {}

_BATCHED = [True]


def batching() -> bool:
    """Whether models with a batched engine use it (see :func:`batched_engine`)."""
    return _BATCHED[-1]


@contextlib.contextmanager
def batched_engine(enabled: bool = True):
    """Turn the batched fitting engine on or off inside a ``with`` block (this process).

    Batched and per-series fits give the same results; the switch exists for
    benchmarks and for the tests that check exactly that. Worker processes
    (``jobs > 1``) start with the default (on).
    """
    _BATCHED.append(bool(enabled))
    try:
        yield
    finally:
        _BATCHED.pop()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


class FitFailure(Exception):
    """A series cannot be fitted by this rung; the next rung of the ladder is tried."""


def _guarded_fit_many(spec: ModelSpec, series: list["Series"]) -> list["SeriesFit | FitFailure"]:
    """``spec._try_fit_many`` where no series can fail another: when a (batched) rung raises a
    numeric error for the whole call, it is retried series by series, so only the series
    that cause it fail (a singular matrix can appear only when certain series share a
    batch). Fits with non-finite likelihood or parameters become failures."""
    try:
        results = spec._try_fit_many(series)
    except Exception as exc:
        if not is_numeric_error(exc):
            raise
        if len(series) == 1:
            if not batching():
                return [FitFailure(describe(exc))]
            with batched_engine(False):  # the per-series engine (same results when both work)
                res = _guarded_fit_many(spec, series)[0]
            if isinstance(res, SeriesFit):
                res.engine = f"per-series (the batched engine raised {type(exc).__name__})"
            return [res]
        results = []
        for s in series:
            res = _guarded_fit_many(spec, [s])[0]
            if isinstance(res, SeriesFit) and not res.engine.startswith("per-series (the batched engine"):
                res.engine = f"per-series (the batch raised {type(exc).__name__})"
            results.append(res)
    # (an unconverged fit already fails the rung with its own message)
    return [_unusable(res) or res if isinstance(res, SeriesFit) and res.converged else res for res in results]


#: State entries holding estimated parameters: non-finite values there make a fit unusable.
_PARAM_KEYS = ("beta", "alpha", "mu", "rate", "a", "pi", "gamma")


def _unusable(fit: "SeriesFit") -> "FitFailure | None":
    """A failure when a fit's numbers cannot be used (None when they can)."""
    if fit.loglik == np.inf or (np.isnan(fit.loglik) and fit.n_params > 0):
        return FitFailure(f"non-finite log-likelihood ({fit.loglik})")
    for key in _PARAM_KEYS:
        v = fit.state.get(key)
        if v is None or isinstance(v, str):
            continue
        try:
            arr = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            continue
        if not np.all(np.isfinite(arr)):
            return FitFailure(f"non-finite fitted parameter '{key}'")
    return None


def as_tuple(v: Iterable[Any] | None) -> tuple[Any, ...]:
    return tuple(v) if v is not None else ()


# The data and result classes live in their own modules; they are re-exported here, where
# every model imports them from.
from forecast.models.fitted import FittedModel, SeriesFit, SeriesForecast  # noqa: E402
