"""The data handed to the models: one :class:`Series` per ``unique_id``, split from a long panel.

:class:`PanelData` validates a long frame (``unique_id, ds, y`` + exogenous columns) once and
splits it into series of regular periods (their :class:`~forecast.periods.Frequency` does
all date arithmetic); the helpers here wrap it for the models, and give the
per-series random streams that make results independent of batching and workers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from forecast.exceptions import DataValidationError, Problem
from forecast.models.streams import series_rng  # noqa: F401  (re-exported: the streams live there)
from forecast.periods import Frequency, check_starts, format_dates, missing_periods, parse_freq
from forecast.periods import infer_freq as infer_freq_of_dates
from forecast.schema import MAX_PANEL_COUNT, require_columns


class Series:
    """One series, as arrays: counts ``y`` on the regular period starts ``ds``.

    ``ds`` may be given as a DatetimeIndex or a datetime64 array; ``ds_values``
    (datetime64[ns]) is always there, the DatetimeIndex is built on first use
    (thousands of series in a batched fit never need theirs).
    """

    __slots__ = ("uid", "ds_values", "y", "freq", "exog", "observed", "_ds", "_calendar")

    def __init__(self, uid: str, ds: pd.DatetimeIndex | np.ndarray, y: np.ndarray, freq: Frequency | str,
                 exog: pd.DataFrame | None = None, observed: np.ndarray | None = None) -> None:
        self.uid, self.y, self.freq, self.exog = uid, y, parse_freq(freq), exog
        # None: every period observed; else bool (len(y),), False where y is missing (y holds 0 there)
        self.observed = observed
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
        return f"Series({self.uid!r}, {len(self.y)} periods, freq={str(self.freq)!r})"

    @property
    def periods_per_year(self) -> float:
        return self.freq.periods_per_year

    @property
    def season_length(self) -> int:
        return self.freq.season_length

    def future_ds(self, h: int) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.freq.future(self.ds_values[-1:], h)[0])


@dataclass
class PanelData:
    """A validated long frame split into :class:`Series` (arrays inside)."""

    series: list[Series]
    freq: Frequency
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
        _check_regular(freq, uids, ds_all, bounds)
        exog = frame[cols].reset_index(drop=True) if cols else None
        out = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            out.append(Series(uids[a], ds_all[a:b], y_all[a:b], freq,
                              exog.iloc[a:b].reset_index(drop=True) if exog is not None else None))
        keys = None
        if {"country", "province", "event_type"} <= set(frame.columns):
            keys = frame.groupby("unique_id", sort=False)[["country", "province", "event_type"]].first()
        return cls(out, freq, keys)


def _check_regular(freq: Frequency, uids: np.ndarray, ds_all: np.ndarray, bounds: np.ndarray) -> None:
    """Every date a period start and every series without gaps, else one clear error."""
    if not len(ds_all):
        return
    check_starts(freq, ds_all)
    # Period numbers of the few distinct dates, looked up for every row.
    uniq = np.sort(pd.unique(ds_all))
    idx = freq.index(uniq, uniq[0])[np.searchsorted(uniq, ds_all)]
    step_ok = np.ones(len(ds_all), dtype=bool)
    step_ok[1:] = np.diff(idx) == 1
    step_ok[bounds[:-1]] = True  # a new series starts anywhere
    if step_ok.all():
        return
    bad = list(dict.fromkeys(uids[~step_ok]))
    a = int(bounds[np.searchsorted(bounds, np.flatnonzero(~step_ok)[0], side="right") - 1])
    b = int(bounds[np.searchsorted(bounds, a, side="right")])
    gone = format_dates(missing_periods(freq, ds_all[a:b]), freq)
    raise DataValidationError([Problem("ds", f"series {', '.join(repr(u) for u in bad[:10])} "
                                             f"{'have' if len(bad) > 1 else 'has'} gaps or irregular periods"
                                             + (f" ({bad[0]!r} lacks {gone})" if gone else ""),
                                       hint=f"Give one row per {freq.label}; missing {freq.label}s "
                                            "inside a series are not supported by the models yet.")],
                              source="panel")


def period_range(start: pd.Timestamp, n: int, freq: Frequency | str) -> pd.DatetimeIndex:
    """``n`` period starts from ``start`` (see :meth:`Frequency.steps`).

    Raises
    ------
    ConfigError
        If the last period would start after 2262-04-11, the last date pandas holds.
    """
    t0 = np.datetime64(pd.Timestamp(start).value, "ns")
    return pd.DatetimeIndex(parse_freq(freq).steps(np.array([t0]), 0, n)[0])


def infer_freq(frame: pd.DataFrame) -> Frequency:
    """The panel's :class:`~forecast.periods.Frequency` (from ``attrs["freq"]``, else from the dates)."""
    f = frame.attrs.get("freq")
    if f:
        return parse_freq(f)
    return infer_freq_of_dates(frame["ds"].to_numpy(dtype="datetime64[ns]"))


def future_dates(last: np.ndarray, h: int, freq: Frequency | str) -> np.ndarray:
    """The ``h`` period starts after each date of ``last`` (datetime64[ns], shape (S,)): (S, h).

    Raises
    ------
    ConfigError
        If a forecast date would pass 2262-04-11 (it would wrap around to 1677).
    """
    return parse_freq(freq).future(last, h)


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
