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
converge) the next, simpler rung is tried, ending at ``climatology`` and a
Poisson at the series' long-run rate (in place of ``zero``), so degenerate series (all zeros, one event, separation, a huge
spike) never crash a run; a batch that raises is retried series by series, so
one series never fails another. Forecasts that come out unusable (non-finite
means) move the series further down at forecast time. ``diagnostics()``
records the rung that ran and why (see :mod:`forecast.models.guard`).
"""
from __future__ import annotations

import inspect
from typing import Any, ClassVar, Iterable

import numpy as np
import pandas as pd

from forecast.adjacency import read_adjacency
from forecast.exceptions import ConfigError
from forecast.models._pooled import groups_of, pooling_panel
from forecast.models.fitted import FittedModel
from forecast.models.guard import fit_each
from forecast.models.ladder import (  # noqa: F401  (re-exported)
    batched_engine, batching, fit_many, warm_starting, warm_starts)
from forecast.models.params import (  # noqa: F401  (re-exported: models import them from here)
    Param,
    check_params,
    drop_seed,
    int_tuple,
    non_negative,
    one_of,
    optional_str,
    positive,
    positive_int,
    str_tuple,
)
from forecast.models.results import FitFailure, SeriesFit, SeriesForecast  # noqa: F401  (re-exported)
from forecast.models.series import (  # noqa: F401  (re-exported: models import them from here)
    PanelData,
    Series,
    _future_of,
    check_no_missing,
    future_dates,
    infer_freq,
    period_range,
    series_rng,
)

#: Ridge penalty of the penalised rung added after a penalisable fallback model.
PENALTY_FALLBACK = 1.0


class ModelSpec:
    """Base of every model spec (hyperparameters only; ``fit`` makes the model)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    #: fallback rungs after the model's own fit: spec classes, simplest last (every ladder
    #: should end at a rung that cannot fail, such as ``Zero``)
    fallbacks: ClassVar[tuple[type["ModelSpec"], ...]] = ()
    #: whether forecasts draw random numbers (if not, no per-series stream is made)
    draws: ClassVar[bool] = True
    #: whether the fit honours ``Series.observed`` (missing periods); a spec that does
    #: not is refused a panel with missing periods rather than reading the placeholder zeros
    handles_missing: ClassVar[bool] = False
    #: whether ``_try_fit_many`` takes ``warm`` (start values from an earlier fit, see ``fit_data``)
    warm_starts: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A real keyword-only signature, so help(), IDEs and sklearn.clone see the params.
        cls.__signature__ = inspect.Signature(
            [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
            + [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default) for p in cls.params])

    def __init__(self, **params: Any) -> None:
        params = drop_seed(type(self).__name__, params)
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
        params = drop_seed(type(self).__name__, params)
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
        check_params(type(self).__name__, self.params, self.get_params())

    # fitting ------------------------------------------------------------------
    def fit(self, panel: pd.DataFrame, *, seed: int = 0, adjacency: Any = None) -> FittedModel:
        """Fit every series of a long frame with ``unique_id, ds, y`` (+ exogenous columns).

        ``seed`` seeds any random draws the *fit* makes: none for models fitted series by
        series (their draws happen in :meth:`FittedModel.forecast`, which takes its own
        ``seed``); a combination that backtests its members (the score-weighted ensemble)
        uses it there. ``adjacency`` (any form :func:`forecast.adjacency.read_adjacency`
        accepts) overrides the panel's own (``panel.attrs["adjacency"]``) for models with
        neighbour terms.
        """
        self.validate()
        self.check_panel(panel)
        data = PanelData.from_frame(panel, self.required_columns())
        if adjacency is not None:
            data.adjacency = read_adjacency(adjacency)
        return self.fit_data(data)

    def check_panel(self, panel: pd.DataFrame) -> None:
        """Model-specific checks of the panel's columns, all failures at once (default: none)."""

    def fit_data(self, data: PanelData, *, warm: FittedModel | None = None) -> FittedModel:
        """Fit already split and validated series (backtests split the panel once, not per origin).

        ``warm``: an earlier fit of these series by this spec (a backtest's previous origin),
        whose estimates start the top rung's solver where the model supports it
        (``warm_starts``); the optimum is the same to the solver's tolerance. Ignored otherwise.

        Raises
        ------
        DataValidationError
            When a series has missing periods and the model does not handle them.
        """
        if not self.handles_missing:
            check_no_missing(self.name or type(self).__name__, data)
        spec = self.clone()  # the fitted model keeps a frozen copy of the hyperparameters
        with pooling_panel(data.series, groups_of(data)):  # a top rung that pools reads the whole panel
            if warm is not None and self.warm_starts and type(self)._fit_many is ModelSpec._fit_many:
                return FittedModel(spec=spec, data=data, fits=fit_many(spec, data.series, warm=warm.fits()))
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

    def _fit_many(self, series: list[Series]) -> list[SeriesFit]:
        """Fit many series, each through the fallback ladder (see :func:`forecast.models.ladder.fit_many`)."""
        return fit_many(self, series)

    def _try_fit_many(self, series: list["Series"]) -> list["SeriesFit | FitFailure"]:
        """This rung alone on many series: a fit, or the :class:`FitFailure` it raised, per
        series (a numeric error of one series becomes its :class:`FitFailure`). Models with
        a batched engine override this; the result must equal :meth:`_fit_series` on each
        series (see :func:`batched_engine`)."""
        return fit_each(self._fit_series, series)

    def _fit_with_fallbacks(self, s: "Series") -> "SeriesFit":
        """One series through the fallback ladder (see :meth:`_fit_many`)."""
        return self._fit_many([s])[0]

    def fallback_specs(self) -> list[tuple[str, "ModelSpec"]]:
        """The ladder after the model's own fit: (label, spec) pairs, simplest last.

        Default: the spec classes in ``fallbacks``, labelled by their names. A model may
        override this to add rungs such as its own penalised fit.
        """
        return [(cls.name, cls._fallback_from(self)) for cls in self.fallbacks if cls.name != self.name]

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


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def as_tuple(v: Iterable[Any] | None) -> tuple[Any, ...]:
    return tuple(v) if v is not None else ()
