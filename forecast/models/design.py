"""The design matrix shared by the log-linear count models (GLM, zero-inflated, INGARCH).

Columns, in order: intercept; trend; seasonality; autoregressive terms
log(1 + y_{t-k}); neighbour terms log(1 + s_{t-k}), s the weighted sum of the
neighbours' counts (:mod:`forecast.models._neighbours`); exogenous columns; interventions. An exposure column enters
as the offset log(exposure).

Column definitions
------------------
trend ``"linear"``, ``"damped"``
    t / P, with t = 0, 1, … the period index from the series' first period and P
    the periods per year: the coefficient is a change of log-rate per year. Both
    fit the same column; ``"damped"`` holds (or geometrically damps, ``damping``)
    the trend after the last training period instead of extrapolating it
    (:mod:`forecast.models._trend` gives the equations).
seasonality ``"month"`` (calendar seasonality; what it builds depends on the frequency)
    monthly data: dummies for calendar months 2..12 of the period start (January
    is the base); quarterly: dummies for quarters 2..4; weekly and daily data:
    the ``fourier_k`` annual Fourier pairs below (period 365.25/7 weeks, 365.25
    days), never month dummies, which would change value inside a season;
    yearly data: no seasonal column (a year has no season).
seasonality ``"fourier"``
    ``fourier_k`` pairs sin(2πk·u), cos(2πk·u), with u the position in the year
    (:meth:`forecast.periods.Frequency.year_fraction`): m/12 for monthly data
    (m = month number 1..12), q/4 for quarterly, day of year / 365.25 for weekly
    and daily; none for yearly data.
interventions
    ``step``: 1 from the intervention's period on; ``pulse``: 1 in that period
    only; ``ramp``: periods since the intervention / P (0 before), a change of
    log-rate per year since it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import warnings

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError, DataValidationError, ForecastWarning, Problem
from forecast.models._missing import kept_rows
from forecast.models._neighbours import nsum_of, unmasked
from forecast.models._trend import future_trend_index, has_trend
from forecast.models.base import Series
from forecast.models._designparams import design_params, distinct  # noqa: F401 (re-exported)
from forecast.models._interventions import (  # noqa: F401 (re-exported: callers import them from here)
    INTERVENTION_KINDS,
    Intervention,
    parse_interventions,
    valid_interventions,
)


@dataclass(frozen=True)
class DesignSpec:
    """What goes into the design (the GLM-family hyperparameters)."""

    trend: str = "none"
    damping: float = 0.0
    seasonality: str = "none"
    fourier_k: int = 1
    lags: tuple[int, ...] = ()
    exog: tuple[str, ...] = ()
    interventions: tuple[Intervention, ...] = ()
    exposure: str | None = None
    #: lags k of log(1 + weighted sum of the neighbours' y_{t-k}) (:mod:`forecast.models._neighbours`)
    neighbour_lags: tuple[int, ...] = ()

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "DesignSpec":
        return cls(trend=params.get("trend", "none"), damping=float(params.get("damping", 0.0)),
                   seasonality=params.get("seasonality", "none"),
                   fourier_k=int(params.get("fourier_k", 1)), lags=tuple(params.get("lags") or ()),
                   exog=tuple(params.get("exog") or ()),
                   interventions=parse_interventions(params.get("interventions")),
                   exposure=params.get("exposure"),
                   neighbour_lags=tuple(params.get("neighbour_lags") or ()))

    @property
    def max_lag(self) -> int:
        return max(self.lags, default=0)

    @property
    def first_row(self) -> int:
        """The first period with a design row: every own and neighbour lag must exist."""
        return max((*self.lags, *self.neighbour_lags), default=0)

    def needed_columns(self) -> tuple[str, ...]:
        return tuple(self.exog) + ((self.exposure,) if self.exposure else ())


@dataclass(frozen=True)
class Design:
    """Design arrays for the rows a model is fitted on."""

    X: np.ndarray  # (n, p)
    y: np.ndarray  # (n,)
    offset: np.ndarray  # (n,)
    names: tuple[str, ...]
    lag_cols: tuple[int, ...]  # positions of the lag columns in X
    keep: np.ndarray  # bool (p,): columns with information in the fit window
    rows: np.ndarray | None = None  # bool (n,): rows a fit uses (missing y or lag: False); None: all


def deterministic_columns(spec: DesignSpec, s: Series, ds: pd.DatetimeIndex, t: np.ndarray
                          ) -> tuple[np.ndarray, list[str]]:
    """Intercept, trend and seasonal columns (those placed before the lag block).

    Exogenous and intervention columns come after the lags (:func:`_after_lags`).
    """
    cols, names = [np.ones(len(ds))], ["(Intercept)"]
    ppy = s.periods_per_year
    if has_trend(spec.trend):
        cols.append(t / ppy)
        names.append("trend")
    kind = s.freq.kind
    if spec.seasonality == "month" and kind in ("month", "quarter"):
        m, top, word = (ds.month.to_numpy(), 12, "month") if kind == "month" else (ds.quarter.to_numpy(), 4, "quarter")
        for k in range(2, top + 1):
            cols.append((m == k).astype(float))
            names.append(f"{word}_{k}")
    elif spec.seasonality in ("month", "fourier") and kind != "year":
        # Weekly and daily data get smooth annual terms under "month" too: 52 weeks or 365
        # days are too many dummies, and month dummies would jump inside a week's season.
        u = s.freq.year_fraction(ds)
        for k in range(1, spec.fourier_k + 1):
            cols += [np.sin(2 * np.pi * k * u), np.cos(2 * np.pi * k * u)]
            names += [f"sin{k}", f"cos{k}"]
    return np.column_stack(cols), names


def _after_lags(spec: DesignSpec, s: Series, ds: pd.DatetimeIndex, exog: pd.DataFrame | None
                ) -> tuple[np.ndarray, list[str]]:
    cols, names = [], []
    for c in spec.exog:
        cols.append(exog[c].to_numpy(dtype=float))
        names.append(c)
    if spec.interventions:
        start = s.ds[0]
        for iv in spec.interventions:
            p0 = _period_of(iv.date, s)
            idx = _period_index(ds, start, s)
            i0 = _period_index(pd.DatetimeIndex([p0]), start, s)[0]
            if iv.kind == "step":
                cols.append((idx >= i0).astype(float))
            elif iv.kind == "pulse":
                cols.append((idx == i0).astype(float))
            else:
                cols.append(np.maximum(idx - i0, 0) / s.periods_per_year)
            names.append(iv.name)
    if not cols:
        return np.empty((len(ds), 0)), []
    return np.column_stack(cols), names


def _period_index(ds: pd.DatetimeIndex, start: pd.Timestamp, s: Series) -> np.ndarray:
    return s.freq.index(ds.to_numpy(dtype="datetime64[ns]"), start).astype(int)


def _period_of(date: pd.Timestamp, s: Series) -> pd.Timestamp:
    return pd.Timestamp(s.freq.start(np.array([np.datetime64(pd.Timestamp(date).value, "ns")]))[0])


def build_design(spec: DesignSpec, s: Series) -> Design:
    """Design for fitting: rows max(lags) .. n-1 of the series.

    Columns that carry no information in the fit window (an intervention after
    the last observation, a step already in force from the first row) are
    flagged in ``keep`` so the model can drop them and report their effect as
    not estimable.
    """
    n = len(s.y)
    t = np.arange(n, dtype=float)
    det, names = deterministic_columns(spec, s, s.ds, t)
    after, after_names = _after_lags(spec, s, s.ds, s.exog)
    lags = np.column_stack([_lagged(s.y, k) for k in spec.lags]) if spec.lags else np.empty((n, 0))
    X = np.column_stack([det, lags, _neighbour_block(spec, s, n), after])
    all_names = tuple(names + [f"lag{k}" for k in spec.lags] + neighbour_names(spec) + after_names)
    lag_cols = tuple(range(det.shape[1], det.shape[1] + len(spec.lags)))
    first = spec.first_row
    X, y = X[first:], s.y[first:].astype(float)
    offset = np.zeros(len(y))
    if spec.exposure:
        offset = np.log(s.exog[spec.exposure].to_numpy(dtype=float))[first:]
    rows = kept_rows(s.observed, spec.lags, first)
    keep = np.ones(X.shape[1], dtype=bool)
    Xk = X if rows is None else X[rows]
    for j in range(1, X.shape[1]):
        col = Xk[:, j]
        if j not in lag_cols and (np.ptp(col) == 0 if len(col) else True):
            keep[j] = False  # constant in the window: confounded with the intercept or empty
    return Design(X, y, offset, all_names, lag_cols, keep, rows)


@dataclass(frozen=True)
class BatchDesign:
    """Stacked designs of series that share their periods (same start and length).

    Kept in two parts: ``D`` (n, pd), the columns every series has alike (intercept,
    trend, seasonality, interventions), and ``Z`` (S, n, pz), each series' own columns
    (lags, neighbour terms, covariates); ``shared`` (p,) is True at the design columns in
    ``D``. The batched solver works on the parts; ``X`` assembles the (S, n, p) stack.
    """

    D: np.ndarray  # (n, pd)
    Z: np.ndarray  # (S, n, pz)
    shared: np.ndarray  # (p,) bool
    y: np.ndarray  # (S, n)
    offset: np.ndarray  # (S, n)
    names: tuple[str, ...]
    lag_cols: tuple[int, ...]
    keep: np.ndarray  # (S, p)
    rows: np.ndarray | None = None  # (S, n) bool, rows each fit uses; None: all rows of every series

    @property
    def X(self) -> np.ndarray:
        """The full designs, (S, n, p) (built on each call: the solver never needs them)."""
        X = np.empty((self.Z.shape[0], self.D.shape[0], len(self.shared)))
        X[:, :, self.shared] = self.D
        X[:, :, ~self.shared] = self.Z
        return X


def group_by_periods(series: Sequence[Series]) -> list[list[int]]:
    """Indices of series with the same first period, length and frequency (one design each)."""
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(series):
        groups.setdefault(s.calendar, []).append(i)
    return list(groups.values())


def build_design_batch(spec: DesignSpec, series: Sequence[Series]) -> BatchDesign:
    """:func:`build_design` for series sharing their periods (see :func:`group_by_periods`).

    The deterministic and intervention columns are built once (``D``); lag, neighbour and
    exogenous columns (``Z``) and exposure offsets are filled per series, without an
    (S, n, p) array. Row s of ``X`` equals ``build_design(spec, series[s]).X``.
    """
    s0 = series[0]
    # The shared columns and the column check of a fully observed series (masks come below).
    d0 = build_design(spec, s0 if s0.observed is None else unmasked(s0))
    S, (n, p), first = len(series), d0.X.shape, spec.first_row
    start = p - len(spec.exog) - len(spec.interventions)  # first exogenous column
    nb0 = start - len(spec.neighbour_lags)
    own0 = nb0 - len(spec.lags)  # own columns: lags, neighbour terms, covariates
    shared = np.ones(p, dtype=bool)
    shared[own0:start + len(spec.exog)] = False
    Z = np.empty((S, n, int((~shared).sum())))
    Y = np.stack([s.y for s in series])
    for col, k in zip(d0.lag_cols, spec.lags):
        Z[:, :, col - own0] = np.log1p(Y[:, first - k:Y.shape[1] - k])
    for j, k in enumerate(spec.neighbour_lags):
        Z[:, :, nb0 - own0 + j] = np.log1p(np.stack([s.nsum[first - k:len(s.y) - k] for s in series]))
    for j, c in enumerate(spec.exog):
        Z[:, :, start - own0 + j] = np.stack([s.exog[c].to_numpy(dtype=float)[first:] for s in series])
    offset = np.zeros((S, n))
    if spec.exposure:
        offset = np.log(np.stack([s.exog[spec.exposure].to_numpy(dtype=float)[first:] for s in series]))
    keep = np.broadcast_to(d0.keep, (S, p)).copy()
    rows = None
    if any(s.observed is not None for s in series):
        rows = np.ones((S, n), dtype=bool)
        for i, s in enumerate(series):
            r = kept_rows(s.observed, spec.lags, first)
            if r is not None:
                rows[i] = r
                keep[i] = build_design(spec, s).keep  # columns constant on the kept rows
    if (spec.exog or spec.neighbour_lags) and n:  # per-series columns: information per series
        cols = np.arange(nb0, start + len(spec.exog))
        V = Z[:, :, cols - own0]
        if rows is None:
            keep[:, cols] = np.ptp(V, axis=1) != 0
        else:
            big = np.where(rows[:, :, None], V, np.inf)
            small = np.where(rows[:, :, None], V, -np.inf)
            keep[:, cols] = big.min(axis=1) != small.max(axis=1)
    return BatchDesign(np.ascontiguousarray(d0.X[:, shared]), Z, shared, Y[:, first:].astype(float), offset,
                       d0.names, d0.lag_cols, keep, rows)


def future_design(spec: DesignSpec, s: Series, h: int, future: pd.DataFrame | None
                  ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Design rows for the next ``h`` periods with the lag columns left at 0.

    Returns (X_future (h, p), offset (h,), lag column positions); the caller
    fills the lag columns from observed or simulated counts.
    """
    ds = s.future_ds(h)
    t = future_trend_index(spec.trend, spec.damping, len(s.y), h) if has_trend(spec.trend) else np.zeros(h)
    need = spec.needed_columns()
    if need and future is None:
        raise ConfigError(f"This model needs future values of {', '.join(need)}: pass "
                          "forecast(h, future=frame) with unique_id, ds and those columns.")
    det, _ = deterministic_columns(spec, s, ds, t)
    after, _ = _after_lags(spec, s, ds, future)
    lags = np.zeros((h, len(spec.lags) + len(spec.neighbour_lags)))  # own and neighbour lags: filled by the caller
    X = np.column_stack([det, lags, after])
    offset = np.log(future[spec.exposure].to_numpy(dtype=float)) if spec.exposure else np.zeros(h)
    lag_cols = tuple(range(det.shape[1], det.shape[1] + len(spec.lags)))
    return X, offset, lag_cols


def neighbour_names(spec: DesignSpec) -> list[str]:
    """Names of the neighbour-lag columns (placed right after the own lags)."""
    return [f"neighbour_lag{k}" for k in spec.neighbour_lags]


def _neighbour_block(spec: DesignSpec, s: Series, n: int) -> np.ndarray:
    """log(1 + s_{t-k}) for each neighbour lag k, from the sums the series carries."""
    if not spec.neighbour_lags:
        return np.empty((n, 0))
    nsum = nsum_of(s)
    return np.column_stack([_lagged(nsum, k) for k in spec.neighbour_lags])


def _lagged(y: np.ndarray, k: int) -> np.ndarray:
    out = np.full(len(y), np.nan)
    out[k:] = np.log1p(y[:-k])
    return out


def lag_values(history: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """log(1 + y_{t-k}) for the next period, from the counts so far (last axis = time)."""
    return np.stack([np.log1p(history[..., -k]) for k in lags], axis=-1)


def as_names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


from forecast.models.guard import MEAN_CAP_FACTOR, note_capped  # noqa: E402  (re-exported)


def capped_mean(mu: np.ndarray, cap: float, uid: str) -> np.ndarray:
    """Means above ``cap`` are capped (a guard against extrapolating past any plausible count).

    NaN means stay NaN (the ladder then replaces that forecast); capping is recorded for
    ``diagnostics()`` (see :func:`~forecast.models.guard.recording_caps`).
    """
    with np.errstate(invalid="ignore"):
        if not np.any(mu > cap):
            return mu
    note_capped(uid)  # reported per series in FittedModel.diagnostics()["mean_capped"]
    warnings.warn(f"series '{uid}': forecast mean capped at {cap:.3g} (1e4 x the largest count seen); "
                  "the fitted model extrapolates beyond any plausible count.", ForecastWarning, stacklevel=4)
    return np.minimum(mu, cap)  # NaN stays NaN: the forecast check then moves down the ladder


def check_design_columns(panel: pd.DataFrame, dspec: DesignSpec) -> None:
    """Covariates must be finite numbers and exposure > 0 on every row (all failures at once)."""
    problems = []
    for col in dspec.needed_columns():
        if col not in panel.columns:
            continue  # PanelData reports missing columns
        v = pd.to_numeric(panel[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) | ((v <= 0) if col == dspec.exposure else False)
        if bad.any():
            what = ("exposure must be a finite number > 0" if col == dspec.exposure
                    else "covariate must be a finite number")
            problems.append(Problem(col, what, rows=(np.flatnonzero(bad) + 2).tolist(),
                                    provinces=panel.loc[bad, "unique_id"].astype(str).unique().tolist()
                                    if "unique_id" in panel.columns else (),
                                    hint="Fill or drop those rows, or leave the column out of the spec."))
    if problems:
        raise DataValidationError(problems, source="panel")
