"""Model specs and fitted models: the contract every count model follows.

A *spec* (:class:`ModelSpec`) holds hyperparameters only: a keyword-only
constructor that stores them as given, declared limits checked at ``fit``,
scikit-learn style ``get_params`` / ``set_params`` / ``clone``. ``spec.fit``
returns a new, immutable :class:`FittedModel` whose ``forecast(h)`` returns a
:class:`~forecast.distributions.CountForecast`, so backtest folds cannot leak
state.

Models fit each series on its own through :meth:`ModelSpec._fit_series`. The
base class runs the model's *fallback ladder*: when a rung fails (raises
:class:`FitFailure` or returns an unconverged fit) the next, simpler rung is
tried, ending at ``climatology`` and ``zero``, so degenerate series (all
zeros, one event, separation) never crash a run; ``diagnostics()`` records the
rung that ran and why.
"""
from __future__ import annotations

import contextlib
import inspect
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError, DataValidationError, Problem
from forecast.schema import require_columns

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

    def _fit_many(self, series: list["Series"]) -> list["SeriesFit"]:
        """Fit many series, each through the fallback ladder, one rung at a time for all
        series still unfitted (so every rung can use a batched engine)."""
        rungs: list[tuple[str, ModelSpec]] = [("none", self)]
        for label, spec in self.fallback_specs():
            rungs.append((label, spec))
            # A penalisable fallback (a GLM) gets its ridge-penalised variant right
            # after it, so separation in the fallback does not skip to climatology.
            if label != "none" and spec.get_params().get("penalty") == 0:
                rungs.append((f"{label}+penalty", spec.clone().set_params(penalty=PENALTY_FALLBACK)))
        out: list[SeriesFit | None] = [None] * len(series)
        reasons: list[list[str]] = [[] for _ in series]
        pending = list(range(len(series)))
        for r, (label, spec) in enumerate(rungs):
            if not pending:
                break
            name = spec.name if label == "none" else label
            last = r == len(rungs) - 1
            results = spec._try_fit_many([series[i] for i in pending])
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
        series. Models with a batched engine override this; the result must equal
        :meth:`_fit_series` on each series (see :func:`batched_engine`)."""
        out: list[SeriesFit | FitFailure] = []
        for s in series:
            try:
                out.append(self._fit_series(s))
            except FitFailure as exc:
                out.append(exc)
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


# -- data handed to the models --------------------------------------------------------


class Series:
    """One series, as arrays: counts ``y`` on the regular period starts ``ds``.

    ``ds`` may be given as a DatetimeIndex or a datetime64 array; ``ds_values``
    (datetime64[ns]) is always there, the DatetimeIndex is built on first use
    (thousands of series in a batched fit never need theirs).
    """

    __slots__ = ("uid", "ds_values", "y", "freq", "exog", "_ds", "_calendar")

    def __init__(self, uid: str, ds: pd.DatetimeIndex | np.ndarray, y: np.ndarray, freq: str,
                 exog: pd.DataFrame | None = None) -> None:
        self.uid, self.y, self.freq, self.exog = uid, y, freq, exog
        self._ds = ds if isinstance(ds, pd.DatetimeIndex) else None
        self.ds_values = np.asarray(ds).astype("datetime64[ns]", copy=False)
        self._calendar: tuple | None = None

    @property
    def calendar(self) -> tuple:
        """(first period in ns, length, freq): series with equal calendars share a design."""
        if self._calendar is None:
            n = len(self.ds_values)
            self._calendar = (int(self.ds_values[0].astype(np.int64)) if n else None, n, self.freq)
        return self._calendar

    @property
    def ds(self) -> pd.DatetimeIndex:
        if self._ds is None:
            self._ds = pd.DatetimeIndex(self.ds_values)
        return self._ds

    def __repr__(self) -> str:
        return f"Series({self.uid!r}, {len(self.y)} periods, freq={self.freq!r})"

    @property
    def periods_per_year(self) -> float:
        return {"MS": 12.0, "D": 365.25}.get(self.freq, 365.25 / 7)

    @property
    def season_length(self) -> int:
        return {"MS": 12, "D": 7}.get(self.freq, 52)

    def future_ds(self, h: int) -> pd.DatetimeIndex:
        return period_range(self.ds[-1], h + 1, self.freq)[1:]


@dataclass
class PanelData:
    """A validated long frame split into :class:`Series` (arrays inside)."""

    series: list[Series]
    freq: str
    keys: pd.DataFrame | None  # unique_id -> country, province, event_type when present

    @classmethod
    def from_frame(cls, panel: pd.DataFrame, extra: Sequence[str] = ()) -> "PanelData":
        require_columns(panel, ("unique_id", "ds", "y", *extra), what="panel")
        frame = panel.copy()
        frame["ds"] = pd.to_datetime(frame["ds"])
        frame = frame.sort_values(["unique_id", "ds"], kind="stable")
        problems = []
        y = pd.to_numeric(frame["y"], errors="coerce")
        bad = y.isna() | (y < 0) | (y != np.round(y))
        if bad.any():
            problems.append(Problem("y", "missing, negative or non-integer count",
                                    rows=(np.flatnonzero(bad.to_numpy()) + 1).tolist(),
                                    provinces=frame.loc[bad, "unique_id"].unique().tolist(),
                                    hint="Models need whole counts >= 0 on every period of a series."))
        if frame.duplicated(["unique_id", "ds"]).any():
            problems.append(Problem("unique_id, ds", "a series has the same period twice"))
        if problems:
            raise DataValidationError(problems, source="panel")
        freq = infer_freq(frame)
        cols = [c for c in extra if c in frame.columns]
        # Contiguous blocks of the sorted frame, one per series: numpy slicing is
        # far cheaper than a pandas group-by when there are thousands of series.
        uids = frame["unique_id"].astype(str).to_numpy()
        ds_all = frame["ds"].to_numpy(dtype="datetime64[ns]")
        y_all = frame["y"].to_numpy(dtype="int64")
        bounds = np.r_[0, np.flatnonzero(uids[1:] != uids[:-1]) + 1, len(uids)]
        step_ok = _regular_steps(ds_all, freq)
        new_series = np.zeros(len(uids), dtype=bool)
        new_series[bounds[:-1]] = True
        irregular = ~step_ok & ~new_series
        if irregular.any():
            bad = sorted(set(uids[irregular]))
            raise DataValidationError([Problem("ds", f"series {', '.join(repr(b) for b in bad[:10])} "
                                                     f"{'have' if len(bad) > 1 else 'has'} gaps or irregular periods",
                                               hint=f"Give one row per period ({freq}); missing months "
                                                    "inside a series are not supported by the models.")],
                                      source="panel")
        exog = frame[cols].reset_index(drop=True) if cols else None
        out = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            out.append(Series(uids[a], ds_all[a:b], y_all[a:b], freq,
                              exog.iloc[a:b].reset_index(drop=True) if exog is not None else None))
        keys = None
        if {"country", "province", "event_type"} <= set(frame.columns):
            keys = frame.groupby("unique_id", sort=False)[["country", "province", "event_type"]].first()
        return cls(out, freq, keys)


def _regular_steps(ds: np.ndarray, freq: str) -> np.ndarray:
    """True where a date is exactly one period after the previous one (first row: True)."""
    ok = np.ones(len(ds), dtype=bool)
    if len(ds) < 2:
        return ok
    if freq == "MS":
        months = ds.astype("datetime64[M]")
        on_start = months.astype("datetime64[ns]") == ds
        ok[1:] = (np.diff(months.astype("int64")) == 1) & on_start[1:]
        return ok
    step = 1 if freq == "D" else 7
    ok[1:] = np.diff(ds.astype("datetime64[D]").astype("int64")) == step
    return ok


def period_range(start: pd.Timestamp, n: int, freq: str) -> pd.DatetimeIndex:
    """``n`` period starts from ``start``; numpy arithmetic (pandas' monthly
    ``date_range`` costs milliseconds per call, which adds up over thousands of series)."""
    t0 = np.datetime64(pd.Timestamp(start).value, "ns")
    if freq == "MS":
        return pd.DatetimeIndex((t0.astype("datetime64[M]") + np.arange(n)).astype("datetime64[ns]"))
    step = np.timedelta64(1 if freq == "D" else 7, "D")
    return pd.DatetimeIndex((t0.astype("datetime64[D]") + step * np.arange(n)).astype("datetime64[ns]"))


def infer_freq(frame: pd.DataFrame) -> str:
    """The panel's period as ``MS``, ``W-XXX`` or ``D`` (from attrs, else from the dates)."""
    f = frame.attrs.get("freq")
    if f:
        return str(f)
    ds = pd.DatetimeIndex(frame["ds"].drop_duplicates().sort_values())
    if len(ds) < 2:
        return "MS"
    step = np.diff(ds.values).astype("timedelta64[D]").astype(int).min()
    if step >= 28:
        return "MS"
    if step == 7:
        return f"W-{ds[0].day_name()[:3].upper()}"
    return "D"


def future_dates(last: np.ndarray, h: int, freq: str) -> np.ndarray:
    """The ``h`` period starts after each date of ``last`` (datetime64[ns], shape (S,)): (S, h)."""
    if freq == "MS":
        months = last.astype("datetime64[M]")[:, None] + np.arange(1, h + 1)
        return months.astype("datetime64[ns]")
    step = np.timedelta64(1 if freq == "D" else 7, "D")
    days = last.astype("datetime64[D]")[:, None] + step * np.arange(1, h + 1)
    return days.astype("datetime64[ns]")


def series_rng(seed: int, uid: str, origin: pd.Timestamp | np.datetime64) -> np.random.Generator:
    """The random stream of one series at one forecast origin.

    Derived from (seed, series id, origin), never from batching or worker, so a
    series' draws are the same whether it is fitted alone, in a panel, or in
    another job.
    """
    day = int(np.datetime64(origin, "D").astype(np.int64))  # days since 1970-01-01, whatever the unit
    # Seed words must be >= 0: origins before 1970 wrap (no collision with any plausible later date).
    return np.random.default_rng([int(seed), zlib.crc32(uid.encode()), day % 2**32])


# -- per-series results ---------------------------------------------------------------


@dataclass
class SeriesFit:
    """What a model learned from one series (model-specific ``state``)."""

    spec: ModelSpec
    converged: bool = True
    loglik: float = float("nan")
    n_params: int = 0
    n_obs: int = 0
    coef: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # term -> (estimate, std_error)
    state: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    fallback: str = "none"
    reason: str = ""
    engine: str = "per-series"  # "batched", "per-series", or why the batch handed it back

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.n_params


@dataclass
class SeriesForecast:
    """A series' predictive distribution for h periods, in one of the families
    :class:`~forecast.distributions.CountForecast` is built from."""

    family: str  # "poisson", "negbin", "zi", "samples", "pmf"
    mu: np.ndarray | None = None
    alpha: np.ndarray | None = None
    pi: np.ndarray | None = None
    paths: np.ndarray | None = None  # (h, n_paths)
    pmf: np.ndarray | None = None  # (h, K+1)


class FittedModel:
    """A spec fitted to every series of a panel. Immutable; ``forecast`` has no side effects."""

    def __init__(self, spec: ModelSpec, data: PanelData, fits: list[SeriesFit]) -> None:
        self._spec, self._data, self._fits = spec, data, fits

    @property
    def spec(self) -> ModelSpec:
        return self._spec.clone()

    @property
    def model(self) -> str:
        return self._spec.name

    @property
    def unique_ids(self) -> list[str]:
        return [s.uid for s in self._data.series]

    def fits(self) -> dict[str, SeriesFit]:
        """Per-series fit objects (read-only use)."""
        return {s.uid: f for s, f in zip(self._data.series, self._fits)}

    def forecast(self, h: int, *, future: pd.DataFrame | None = None, history_max: int | None = None):
        """Predictive count distributions for the next ``h`` periods of every series.

        Parameters
        ----------
        h : horizon (periods ahead), >= 1.
        future : values known ahead (exogenous columns, exposure) with ``unique_id, ds``
            for every series and future period the model needs them for.

        Returns
        -------
        CountForecast
            Rows ordered by series (as fitted), then ``h``.
        """
        from forecast.distributions import CountForecast

        if not positive_int(h):
            raise ConfigError(f"The horizon h must be an int >= 1. Got {h!r} instead.")
        series, fits = self._data.series, self._fits
        seed = getattr(self._spec, "seed", 0)
        sfs: list[SeriesForecast | None] = [None] * len(fits)
        groups: dict[int, list[int]] = {}
        for i, fit in enumerate(fits):  # rungs of a ladder are separate specs: forecast each group together
            groups.setdefault(id(fit.spec), []).append(i)  # one spec object per rung and fit call
        for idx in groups.values():
            spec = fits[idx[0]].spec
            for i, sf in zip(idx, spec._forecast_many([fits[i] for i in idx], [series[i] for i in idx], h,
                                                       future, seed)):
                sfs[i] = sf
        hmaxes = [int(max(s.y.max(initial=0), 1)) if history_max is None else history_max for s in series]
        ahead = future_dates(np.array([s.ds_values[-1] for s in series]).astype("datetime64[ns]"), h,
                             self._data.freq)
        # One CountForecast per distribution family (vectorised over its series),
        # then back to the fitted series order.
        parts, order = [], []
        for family in dict.fromkeys(sf.family for sf in sfs):
            idx = [i for i, sf in enumerate(sfs) if sf.family == family]
            index = pd.DataFrame({
                "unique_id": np.repeat([series[i].uid for i in idx], h),
                "ds": ahead[idx].ravel(),
                "h": np.tile(np.arange(1, h + 1), len(idx))})
            parts.append(_stacked_forecast(family, [sfs[i] for i in idx], index, self.model,
                                           max(hmaxes[i] for i in idx)))
            order += idx
        out = CountForecast.concat(parts) if len(parts) > 1 else parts[0]
        if order != sorted(order):
            rows = np.argsort(np.asarray(order), kind="stable")
            out = out.subset((rows[:, None] * h + np.arange(h)).ravel())
        return out

    def update(self, panel: pd.DataFrame) -> "FittedModel":
        """The same fitted parameters applied to newer data (no re-estimation).

        Used by backtests with ``refit_every > 1``: between refits, forecasts use
        the last estimated parameters with the data up to the new cutoff (lags,
        last values, trend index and dates come from ``panel``). Series absent
        from the original fit are fitted afresh.
        """
        return self._update_data(PanelData.from_frame(panel, self._spec.required_columns()))

    def _update_data(self, data: PanelData) -> "FittedModel":
        old = self.fits()
        new = [s for s in data.series if s.uid not in old]
        fresh = dict(zip((s.uid for s in new), self._spec._fit_many(new))) if new else {}
        fits = [old[s.uid] if s.uid in old else fresh[s.uid] for s in data.series]
        return FittedModel(spec=self._spec, data=data, fits=fits)

    def coefficients(self) -> pd.DataFrame:
        """Tidy ``unique_id, term, estimate, std_error`` for every series."""
        rows = [(s.uid, term, est, se) for s, f in zip(self._data.series, self._fits)
                for term, (est, se) in f.coef.items()]
        return pd.DataFrame(rows, columns=["unique_id", "term", "estimate", "std_error"])

    def diagnostics(self) -> pd.DataFrame:
        """Per series: ``unique_id, converged, fallback, reason, model_used, loglik, aic, n_obs,
        message, engine`` (``engine``: "batched", or "per-series" and why the batch handed it back)."""
        return pd.DataFrame([{
            "unique_id": s.uid, "converged": f.converged, "fallback": f.fallback, "reason": f.reason,
            "model_used": f.spec.name, "loglik": f.loglik, "aic": f.aic, "n_obs": f.n_obs, "message": f.message,
            "engine": f.engine,
        } for s, f in zip(self._data.series, self._fits)])

    def __repr__(self) -> str:
        n_fb = sum(f.fallback != "none" for f in self._fits)
        return f"Fitted {self._spec!r} on {len(self._fits)} series ({n_fb} fell back)"


def _future_of(future: pd.DataFrame, s: Series, h: int) -> pd.DataFrame:
    f = future[future["unique_id"] == s.uid].copy()
    f["ds"] = pd.to_datetime(f["ds"])
    want = s.future_ds(h)
    f = f.set_index("ds").reindex(want)
    if f.drop(columns="unique_id", errors="ignore").isna().any().any():
        missing = [str(d.date()) for d in want[f.drop(columns="unique_id", errors="ignore").isna().any(axis=1)]]
        raise DataValidationError([Problem("future", f"series '{s.uid}' lacks future values",
                                           hint=f"Give every needed column for {', '.join(missing[:10])}.")],
                                  source="future")
    return f.reset_index(names="ds")


def _stacked_forecast(family: str, sfs: list[SeriesForecast], index: pd.DataFrame, model: str,
                      history_max: int):
    from forecast.distributions import CountForecast

    def cat(name: str) -> np.ndarray:
        parts = [getattr(sf, name) for sf in sfs]
        if all(isinstance(p, np.ndarray) and p.shape == sf.mu.shape for p, sf in zip(parts, sfs)):
            return np.concatenate(parts)  # the usual case: no broadcasting needed
        return np.concatenate([np.broadcast_to(p, sf.mu.shape if sf.mu is not None else ())
                               for p, sf in zip(parts, sfs)])

    if family == "poisson":
        return CountForecast.poisson(index, cat("mu"), model=model, history_max=history_max)
    if family == "negbin":
        return CountForecast.negbin(index, cat("mu"), cat("alpha"), model=model, history_max=history_max)
    if family == "zi":
        alpha = None if all(sf.alpha is None for sf in sfs) else np.concatenate(
            [np.broadcast_to(0.0 if sf.alpha is None else sf.alpha, sf.mu.shape) for sf in sfs])
        return CountForecast.zero_inflated(index, cat("mu"), cat("pi"), alpha, model=model, history_max=history_max)
    if family == "samples":
        return CountForecast.from_samples(index, np.stack([sf.paths for sf in sfs]), model=model,
                                          history_max=history_max)
    if family == "pmf":
        width = max(sf.pmf.shape[1] for sf in sfs)
        pmf = np.concatenate([np.pad(sf.pmf, ((0, 0), (0, width - sf.pmf.shape[1]))) for sf in sfs])
        return CountForecast.from_pmf(index, pmf, model=model)
    raise ValueError(f"unknown family {family}")  # pragma: no cover


def as_tuple(v: Iterable[Any] | None) -> tuple[Any, ...]:
    return tuple(v) if v is not None else ()
