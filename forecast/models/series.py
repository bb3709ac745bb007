"""The data handed to the models: one :class:`Series` per ``unique_id``, split from a long panel.

:class:`PanelData` validates a long frame (``unique_id, ds, y`` + exogenous columns) once and
splits it into series of regular periods; the helpers here compute period starts and the
per-series random streams that make results independent of batching and workers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError, DataValidationError, Problem
from forecast.models.streams import series_rng  # noqa: F401  (re-exported: the streams live there)
from forecast.schema import MAX_PANEL_COUNT, require_columns


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
        # Above MAX_PANEL_COUNT (inf and 1e300 included) the int64 cast below would wrap.
        bad = y.isna() | (y < 0) | (y != np.round(y)) | (y > MAX_PANEL_COUNT)
        if bad.any():
            problems.append(Problem("y", f"missing, negative or non-integer count (or above {MAX_PANEL_COUNT})",
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
    ``date_range`` costs milliseconds per call, which adds up over thousands of series).

    Raises
    ------
    ConfigError
        If the last period would start after 2262-04-11, the last date pandas holds.
    """
    t0 = np.datetime64(pd.Timestamp(start).value, "ns")
    return pd.DatetimeIndex(_steps(np.array([t0]), 0, n, freq)[0])


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
    """The ``h`` period starts after each date of ``last`` (datetime64[ns], shape (S,)): (S, h).

    Raises
    ------
    ConfigError
        If a forecast date would pass 2262-04-11 (it would wrap around to 1677).
    """
    return _steps(last, 1, h, freq)


# Last period starts pandas can hold (datetime64[ns] ends on 2262-04-11).
_LAST_DAY = np.datetime64("2262-04-11", "D")
_LAST_MONTH = np.datetime64("2262-04", "M")


def _steps(origin: np.ndarray, first: int, n: int, freq: str) -> np.ndarray:
    """Period starts ``origin + first .. first + n - 1`` periods, (S, n), checked against the last date first."""
    k_max = int(first) + int(n) - 1 if n > 0 else 0
    if freq == "MS":
        base = origin.astype("datetime64[M]")
        limit, unit = _LAST_MONTH, 1
    else:
        base = origin.astype("datetime64[D]")
        limit, unit = _LAST_DAY, 1 if freq == "D" else 7
    # Checked in Python integers: numpy's datetime arithmetic would wrap silently.
    if len(base) and int(base.max().astype("int64")) + k_max * unit > int(limit.astype("int64")):
        raise ConfigError(f"forecast dates would pass {_LAST_DAY}, the last date supported "
                          f"(last observed period {str(base.max())}, {k_max} periods ahead); "
                          "use a shorter horizon.")
    k = np.arange(first, first + n)
    if freq == "MS":
        return (base[:, None] + k).astype("datetime64[ns]")
    return (base[:, None] + np.timedelta64(unit, "D") * k).astype("datetime64[ns]")


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
