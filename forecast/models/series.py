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

from forecast.adjacency import ADJACENCY_COLUMNS, read_adjacency
from forecast.exceptions import DataValidationError, Problem
from forecast.models.streams import series_rng  # noqa: F401  (re-exported: the streams live there)
from forecast.periods import Frequency, check_starts, format_dates, parse_freq
from forecast.periods import infer_freq as infer_freq_of_dates
from forecast.schema import MAX_PANEL_COUNT, require_columns


class Series:
    """One series, as arrays: counts ``y`` on the regular period starts ``ds``.

    ``ds`` may be given as a DatetimeIndex or a datetime64 array; ``ds_values``
    (datetime64[ns]) is always there, the DatetimeIndex is built on first use
    (thousands of series in a batched fit never need theirs).

    Missing periods: ``observed`` is ``None`` when every period has a count (the fast
    path, and every panel without missing values), else a bool array of ``len(y)``,
    False where the count is missing. At a missing period ``y`` holds 0, a placeholder
    that keeps ``y`` an int64 array (and batched designs shared by calendar) working;
    ``observed`` says not to use it. The mask is per series, not part of ``calendar``.
    """

    __slots__ = ("uid", "ds_values", "y", "freq", "exog", "observed", "_ds", "_calendar")

    def __init__(self, uid: str, ds: pd.DatetimeIndex | np.ndarray, y: np.ndarray, freq: Frequency | str,
                 exog: pd.DataFrame | None = None, observed: np.ndarray | None = None) -> None:
        self.uid, self.y, self.freq, self.exog = uid, y, parse_freq(freq), exog
        self._ds = ds if isinstance(ds, pd.DatetimeIndex) else None
        self.ds_values = np.asarray(ds).astype("datetime64[ns]", copy=False)
        # None: every period observed; else bool (len(y),), False where y is missing (y holds 0 there)
        if observed is not None:
            observed = np.asarray(observed, dtype=bool)
            if observed.all():  # an all-True mask is the fast path
                observed = None
        self.observed: np.ndarray | None = observed
        self._calendar: tuple | None = None

    @classmethod
    def _regular(cls, uid: str, ds_values: np.ndarray, y: np.ndarray, freq: Frequency, exog: pd.DataFrame | None,
                 observed: np.ndarray | None, first_ns: int | None = None) -> "Series":
        """A series from arrays already in form (datetime64[ns] dates, a parsed frequency,
        ``observed`` None or with a False): what ``__init__`` builds, without its checks,
        for the thousands of series a panel splits into."""
        s = object.__new__(cls)
        s.uid, s.y, s.freq, s.exog, s.observed = uid, y, freq, exog, observed
        s.ds_values, s._ds = ds_values, None
        s._calendar = None if first_ns is None else (first_ns, len(ds_values), freq)  # (as ``calendar`` gives it)
        return s

    @property
    def n_observed(self) -> int:
        """The number of periods with a count (``len(y)`` when none is missing)."""
        return len(self.y) if self.observed is None else int(self.observed.sum())

    def observed_mask(self) -> np.ndarray:
        """``observed`` as a bool array of ``len(y)`` (all True on the fast path)."""
        return np.ones(len(self.y), dtype=bool) if self.observed is None else self.observed

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
        miss = "" if self.observed is None else f", {len(self.y) - self.n_observed} missing"
        return f"Series({self.uid!r}, {len(self.y)} periods{miss}, freq={str(self.freq)!r})"

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
    #: neighbour pairs in the canonical form of :func:`forecast.adjacency.read_adjacency`
    #: (from ``panel.attrs["adjacency"]``), or None
    adjacency: pd.DataFrame | None = None

    @classmethod
    def from_frame(cls, panel: pd.DataFrame, extra: Sequence[str] = ()) -> "PanelData":
        """Validate a long frame and split it into series.

        ``y`` may be NaN (a missing count), and a period absent between a series'
        first and last period is added as missing; both end up as ``y = 0`` with
        ``Series.observed`` False there. Exogenous values of an added period are
        carried from the nearest earlier period of the series (the model gives the
        period no weight, but a design must stay finite).

        Raises
        ------
        DataValidationError
            Negative, fractional or too large counts, a period given twice, dates
            that are not period starts.
        """
        require_columns(panel, ("unique_id", "ds", "y", *extra), what="panel")
        # Arrays, not frames: one factorisation of the ids (sorted as sort_values sorts
        # them, missing ids last), one stable sort on (id code, date), no per-series frame.
        ds_raw = pd.to_datetime(panel["ds"]).to_numpy(dtype="datetime64[ns]")
        codes, uniques = pd.factorize(panel["unique_id"], sort=True, use_na_sentinel=False)
        order = _sort_order(codes, ds_raw)
        if order is not None:
            codes, ds_all = codes[order], ds_raw[order]
        else:
            ds_all = ds_raw
        names = pd.Index(uniques).astype(str).to_numpy(dtype=object)
        problems = []
        y_col = panel["y"] if order is None else panel["y"].iloc[order]
        y = pd.to_numeric(y_col, errors="coerce")
        if isinstance(y.dtype, np.dtype) and y.dtype.kind in "iu":  # plain integers: only the range to check
            yv = y.to_numpy()
            bad_at = (yv < 0) | (yv > MAX_PANEL_COUNT)
        else:
            # A text cell that is no number is an error, not a missing count (a numeric column has none).
            unreadable = (False if pd.api.types.is_numeric_dtype(y_col) else
                          y.isna() & y_col.notna() & ~y_col.astype(str).str.strip().isin(["", "nan", "<NA>"]))
            # Above MAX_PANEL_COUNT (inf and 1e300 included) the int64 cast below would wrap.
            bad = unreadable | (y < 0) | (y.notna() & (y != np.round(y))) | (y > MAX_PANEL_COUNT)
            bad_at = bad.to_numpy(dtype=bool, na_value=False)  # (a missing count is not a bad one)
        if bad_at.any():
            bad_rows = np.flatnonzero(bad_at)
            problems.append(Problem("y", f"negative or non-integer count (or above {MAX_PANEL_COUNT})",
                                    rows=(bad_rows + 1).tolist(),
                                    provinces=pd.unique(names[codes[bad_rows]]).tolist(),
                                    hint="Give whole counts >= 0; leave y empty (NaN) where the count is missing."))
        ds_key = ds_all.view("int64")  # (NaT equals NaT here, as in pandas' duplicated)
        if np.any((codes[1:] == codes[:-1]) & (ds_key[1:] == ds_key[:-1])):  # sorted: repeats are neighbours
            problems.append(Problem("unique_id, ds", "a series has the same period twice"))
        if problems:
            raise DataValidationError(problems, source="panel")
        f = panel.attrs.get("freq")
        freq = parse_freq(f) if f else infer_freq_of_dates(ds_all)  # (which checks the period starts)
        cols = [c for c in extra if c in panel.columns]
        obs_all = y.notna().to_numpy()
        y_num = y.to_numpy()
        y_all = (np.array(y_num) if obs_all.all() and y_num.dtype == np.int64 else
                 np.where(obs_all, y.fillna(0).to_numpy(), 0).astype("int64"))
        # Contiguous blocks of the sorted arrays, one per series.
        bounds = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1, len(codes)] if len(codes) else np.zeros(1, int)
        idx = _period_numbers(freq, ds_all, checked=not f)
        exog = None
        if cols:
            exog = (panel[cols] if order is None else panel[cols].iloc[order]).reset_index(drop=True)
        a_s, b_s = bounds[:-1], bounds[1:]
        span = (idx[b_s - 1] - idx[a_s] + 1) if len(a_s) else np.zeros(0, dtype=np.int64)
        n_obs = np.add.reduceat(obs_all, a_s, dtype=np.int64) if len(a_s) else np.zeros(0, dtype=np.int64)
        full = np.minimum.reduceat(obs_all, a_s) if len(a_s) else np.zeros(0, dtype=bool)
        uid_of = names[codes[a_s]].tolist()
        first_ns = ds_all[a_s].view("int64").tolist()
        out = []
        for k, (a, b, n) in enumerate(zip(a_s.tolist(), b_s.tolist(), span.tolist())):
            ds, yy, ob = ds_all[a:b], y_all[a:b], obs_all[a:b]
            ex = exog.iloc[a:b].reset_index(drop=True) if exog is not None else None
            if n != b - a:  # absent periods inside the series: fill them as missing
                pos = (idx[a:b] - idx[a]).astype(np.int64)
                ds = freq.steps(ds_all[a:a + 1], 0, n)[0]
                full_y, full_ob = np.zeros(n, dtype="int64"), np.zeros(n, dtype=bool)
                full_y[pos], full_ob[pos] = yy, ob
                yy, ob = full_y, full_ob
                if ex is not None:
                    ex = ex.set_axis(pos).reindex(np.arange(n)).ffill().reset_index(drop=True)
                out.append(Series(uid_of[k], ds, yy, freq, ex, ob))
            else:
                out.append(Series._regular(uid_of[k], ds, yy, freq, ex, None if full[k] else ob, first_ns[k]))
        empty = [uid_of[k] for k in np.flatnonzero(n_obs == 0).tolist()]
        if empty:
            raise DataValidationError([Problem("y", f"series {', '.join(map(repr, empty[:10]))} "
                                                    f"{'have' if len(empty) > 1 else 'has'} no observed count",
                                               hint="Drop the series, or give at least one count.")],
                                      source="panel")
        keys = None
        if {"country", "province", "event_type"} <= set(panel.columns):
            kcols = panel[["unique_id", "country", "province", "event_type"]]
            kframe = kcols if order is None else kcols.iloc[order]
            keys = kframe.groupby("unique_id", sort=False)[["country", "province", "event_type"]].first()
        adjacency = panel.attrs.get("adjacency")  # any accepted form, e.g. set by hand
        if adjacency is not None and not set(ADJACENCY_COLUMNS) <= set(getattr(adjacency, "columns", ())):
            adjacency = read_adjacency(adjacency)  # (an AdjacencyTable gives its frame)
        return cls(out, freq, keys, adjacency)


def _sort_order(codes: np.ndarray, ds: np.ndarray) -> np.ndarray | None:
    """Stable order by (id code, date), missing dates last in their series (as pandas'
    ``sort_values``); None when the rows are in that order already (the usual panel)."""
    key = ds.view("int64")
    nat = np.isnat(ds)
    if nat.any():
        key = np.where(nat, np.iinfo(np.int64).max, key)
    if len(codes) < 2:
        return None
    same = codes[1:] == codes[:-1]
    if np.all(codes[1:] >= codes[:-1]) and np.all(~same | (key[1:] >= key[:-1])) and not nat.any():
        return None
    return np.lexsort((key, codes))


def observed_values(s: Series, span: int | None = None) -> np.ndarray:
    """The observed counts among the last ``span`` periods of ``s`` (all periods: None)."""
    y = s.y if span is None else s.y[len(s.y) - min(span, len(s.y)):]
    if s.observed is None:
        return y
    return y[s.observed[len(s.observed) - len(y):]]


def count_summaries(series: Sequence[Series]) -> tuple[np.ndarray, np.ndarray]:
    """Per series, the largest count (0 for an empty series) and the mean of ``y`` (placeholders
    of missing periods included, as ``np.mean(s.y)``; 0 for an empty series), as (S,) arrays.

    One concatenation and two segment reductions instead of two numpy calls per series.
    Integer counts sum exactly in float64 (below 2**53), so the means equal ``np.mean``'s.
    """
    S = len(series)
    ys = [s.y for s in series]
    lens = np.fromiter(map(len, ys), dtype=np.int64, count=S)
    top, mean = np.zeros(S, dtype=np.int64), np.zeros(S)
    full = np.flatnonzero(lens > 0)
    if not full.size:
        return top, mean
    flat = np.concatenate(ys)
    # (integer counts, bool among them, concatenate to integers; a fractional value would round
    # differently, and then every series is summarised on its own as ``np.max``/``np.mean`` do)
    if flat.dtype.kind not in "iu":
        for i in full.tolist():
            y = ys[i]
            top[i], mean[i] = max(int(np.max(y)), 0), float(np.mean(y))
        return top, mean
    starts = np.r_[0, np.cumsum(lens[full])[:-1]]
    top[full] = np.maximum(np.maximum.reduceat(flat, starts), 0)
    mean[full] = np.add.reduceat(flat, starts, dtype=float) / lens[full]
    return top, mean


def last_observed(s: Series) -> float:
    """The last observed count of ``s``."""
    if s.observed is None:
        return float(s.y[-1])
    return float(s.y[np.flatnonzero(s.observed)[-1]])


def check_no_missing(model: str, data: PanelData) -> None:
    """Raise a :class:`DataValidationError` naming the series with missing periods, if any."""
    gaps = [s for s in data.series if s.observed is not None]
    if not gaps:
        return
    s = gaps[0]
    when = format_dates(s.ds_values[~s.observed], s.freq)
    raise DataValidationError([Problem(
        "y", f"model '{model}' does not handle missing periods, and {len(gaps)} series "
             f"{'have' if len(gaps) > 1 else 'has'} them ({s.uid!r} lacks {when})",
        provinces=[g.uid for g in gaps[:10]],
        hint="Use a model that handles missing periods (climatology, naive, seasonal_naive, empirical, "
             "croston, tsb, ...), or fill the missing counts before fitting.")], source="panel")


def _period_numbers(freq: Frequency, ds_all: np.ndarray, checked: bool = False) -> np.ndarray:
    """Every date a period start (else the "write the period start" error, unless ``checked``
    already); its period number."""
    if not len(ds_all):
        return np.zeros(0, dtype=np.int64)
    if not checked:
        check_starts(freq, ds_all)
    # Period numbers of the few distinct dates, looked up for every row.
    uniq = np.sort(pd.unique(ds_all))
    return np.asarray(freq.index(uniq, uniq[0]), dtype=np.int64)[np.searchsorted(uniq, ds_all)]


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
