"""Periods: one Frequency for day .. year, its dates against pandas' offsets, and yearly,
quarterly and weekly panels end to end (build, read, forecast, design columns)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import forecast.models.glm  # noqa: F401  (registers negbin_glm)
from forecast import ConfigError, DataValidationError, ForecastWarning, build_panel
from forecast.models.baselines import Climatology
from forecast.models.design import DesignSpec, deterministic_columns
from forecast.models.glm import NegBinGLM
from forecast.models.series import PanelData
from forecast.periods import Frequency, infer_freq, parse_freq
from forecast.pipeline import load_panel

ALIASES = {
    "day": ("day", "D", "daily", "DAY"),
    "week": ("week", "W", "weekly", "W-MON", "w-mon"),
    "month": ("month", "M", "MS", "monthly", "Month"),
    "quarter": ("quarter", "Q", "QS", "qs"),
    "year": ("year", "Y", "YS", "A", "annual", "yearly", "YEAR"),
}
# kind -> the pandas alias of the same periods (the independent reference for the dates)
PANDAS = {"day": "D", "week": "W-MON", "month": "MS", "quarter": "QS-JAN", "year": "YS-JAN"}


def ns(*dates: str) -> np.ndarray:
    return np.array(dates, dtype="datetime64[ns]")


# -- names -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(ALIASES))
def test_parse_freq_aliases(kind):
    for name in ALIASES[kind]:
        assert parse_freq(name) == Frequency(kind), name
    assert parse_freq(Frequency(kind)) == Frequency(kind)
    assert parse_freq(kind).label == kind


def test_week_anchors_and_unknown_names():
    assert parse_freq("W-SUN") == Frequency("week", 6) and str(parse_freq("w-sun")) == "W-SUN"
    assert parse_freq("week").weekday == 0  # ISO weeks, as build_panel always did
    for bad in ("fortnight", "W-XYZ", "2MS", ""):
        with pytest.raises(ConfigError, match="Unknown frequency.*day, week.*quarter, year"):
            parse_freq(bad)


def test_constants():
    got = {k: (Frequency(k).periods_per_year, Frequency(k).season_length) for k in ALIASES}
    assert got == {"day": (365.25, 7), "week": (365.25 / 7, 52), "month": (12.0, 12), "quarter": (4.0, 4),
                   "year": (1.0, 1)}


# -- dates against pandas' offsets -------------------------------------------------------------

@pytest.mark.parametrize("alias", ["D", "W-MON", "W-SUN", "W-WED", "MS", "QS", "YS"])
def test_start_next_shift_range_match_pandas(alias):
    fq = parse_freq(alias)
    ref = PANDAS[fq.kind] if fq.kind != "week" else alias
    days = pd.date_range("1899-12-20", "1904-03-10", freq="D")  # 1900 is no leap year, 1904 is
    starts = pd.date_range("1890-01-01", "1915-01-01", freq=ref, unit="ns")
    # start: the last pandas period start on or before each day (brute force by search)
    want = starts[np.searchsorted(starts.values, days.values, side="right") - 1]
    np.testing.assert_array_equal(fq.start(days.values), want.values)
    assert fq.is_start(starts.values).all() and fq.is_start(days.values).sum() == days.isin(starts).sum()
    inner = starts[2:-8]
    np.testing.assert_array_equal(fq.next_start(inner.values), starts[3:-7].values)
    np.testing.assert_array_equal(fq.shift(inner.values, 5), starts[7:-3].values)
    np.testing.assert_array_equal(fq.shift(inner.values, -2), starts[:-10].values)
    pd.testing.assert_index_equal(fq.range(starts[1], starts[-3]), pd.DatetimeIndex(starts[1:-2]), check_freq=False,
                                  check_names=False)
    np.testing.assert_array_equal(fq.future(inner.values[:3], 4), np.stack(
        [starts[i + 1:i + 5].values for i in range(2, 5)]))


def test_leap_days_and_year_starts():
    y, q = Frequency("year"), Frequency("quarter")
    np.testing.assert_array_equal(y.start(ns("2024-02-29", "2023-12-31", "1900-03-01")),
                                  ns("2024-01-01", "2023-01-01", "1900-01-01"))
    np.testing.assert_array_equal(q.start(ns("2024-02-29", "2024-06-30", "1969-12-31")),
                                  ns("2024-01-01", "2024-04-01", "1969-10-01"))
    np.testing.assert_array_equal(Frequency("day").next_start(ns("2024-02-28", "2023-02-28")),
                                  ns("2024-02-29", "2023-03-01"))
    np.testing.assert_array_equal(y.future(ns("2023-01-01"), 3)[0], ns("2024-01-01", "2025-01-01", "2026-01-01"))


@pytest.mark.parametrize("alias,last", [("D", "2262-04-01"), ("W-SUN", "2262-03-01"), ("MS", "2262-01-01"),
                                        ("QS", "2261-01-01"), ("YS", "2250-01-01")])
def test_future_past_2262_is_a_config_error(alias, last):
    fq = parse_freq(alias)
    with pytest.raises(ConfigError, match="would pass 2262-04-11.*shorter horizon"):
        fq.future(ns(last), 40)
    ok = fq.future(fq.start(ns(last)), 1)  # one period ahead stays inside and never wraps to 1677
    assert ok[0, 0] > fq.start(ns(last))[0] and ok.max() <= np.datetime64("2262-04-11")


# -- inferring the frequency of a panel --------------------------------------------------------

@pytest.mark.parametrize("alias", ["D", "W-MON", "W-SUN", "MS", "QS", "YS"])
def test_infer_freq_of_each_frequency(alias):
    fq = parse_freq(alias)
    ds = fq.range("2019-01-01", "2024-12-31").values
    assert infer_freq(ds) == fq
    assert infer_freq(np.r_[ds, ds][::-1]) == fq  # order and repeats (several series) do not matter


def test_month_ends_get_the_period_start_message_not_gaps():
    ends = pd.date_range("2024-01-31", periods=6, freq="ME").values
    with pytest.raises(DataValidationError, match="2024-01-31 is not the start of a month.*"
                                                  "first day, e.g. 2024-01-01"):
        infer_freq(ends, rows=np.arange(2, 8))
    mid = pd.date_range("2024-01-15", periods=6, freq="MS").values + np.timedelta64(14, "D")
    with pytest.raises(DataValidationError, match="not the start of a month"):
        infer_freq(mid)
    with pytest.raises(DataValidationError, match="2019-12-31 is not the start of a year"):
        infer_freq(ns("2019-12-31", "2020-12-31", "2021-12-31"))
    with pytest.raises(DataValidationError, match="14 days apart"):
        infer_freq(ns("2024-01-01", "2024-01-15"))


def write(tmp_path, name: str, ds, y=None, uid="a") -> str:
    y = np.arange(len(ds)) % 5 if y is None else y
    pd.DataFrame({"unique_id": uid, "ds": [str(pd.Timestamp(d).date()) for d in ds], "y": y}).to_csv(
        tmp_path / name, index=False)
    return str(tmp_path / name)


def test_panel_csv_of_month_ends_names_its_rows(tmp_path):
    path = write(tmp_path, "ends.csv", pd.date_range("2024-01-31", periods=4, freq="ME"))
    with pytest.raises(DataValidationError) as e:
        load_panel(path)
    assert "not the start of a month" in str(e.value) and "gaps" not in str(e.value)
    assert e.value.problems[0].rows[:2] == [2, 3]


def test_yearly_panel_with_a_missing_year_names_it(tmp_path):
    years = [d for d in pd.date_range("2001-01-01", periods=12, freq="YS") if d.year not in (2005, 2006)]
    panel = load_panel(write(tmp_path, "gap.csv", years))
    assert panel.attrs["freq"] == Frequency("year")
    # Issue 12: the absent years are missing periods, no longer an error.
    from forecast.models.series import PanelData, check_no_missing

    s = PanelData.from_frame(panel).series[0]
    assert [d.year for d in s.ds[~s.observed]] == [2005, 2006]
    with pytest.raises(DataValidationError, match=r"'a' lacks 2005, 2006\)"):
        check_no_missing("some_model", PanelData.from_frame(panel))
    assert Climatology().fit(panel).forecast(1).index["ds"].iloc[0] == pd.Timestamp("2013-01-01")


# -- yearly and quarterly end to end -----------------------------------------------------------

def events(dates) -> pd.DataFrame:
    return pd.DataFrame({"date": pd.to_datetime(dates), "country": "Tajikistan", "province": "Khatlon",
                         "event_type": "clash", "count": 1})


@pytest.mark.parametrize("freq,first,n", [("year", "2019-01-01", 5), ("quarter", "2019-01-01", 20)])
def test_build_panel_yearly_and_quarterly_from_events(freq, first, n):
    dates = pd.date_range("2019-01-01", "2023-12-31", freq="10D")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecastWarning)
        p = build_panel(events(dates), freq, as_of="2023-12-31")
    assert p.attrs["freq"] == parse_freq(freq)
    want = pd.date_range(first, periods=n, freq=PANDAS[freq])
    assert list(p["ds"]) == list(want)
    starts = want.values
    brute = [int(((dates >= a) & (dates < b)).sum()) for a, b in zip(starts, [*starts[1:], np.datetime64("2024-01-01")])]
    assert p["y"].tolist() == brute
    # a log ending mid-year loses its partial last year (never a quiet one)
    with pytest.warns(ForecastWarning, match="only covered up to 2023-06-29"):
        part = build_panel(events(dates[dates < "2023-07-01"]), freq)
    assert part["ds"].max() == pd.Timestamp("2023-01-01" if freq == "quarter" else "2022-01-01")


@pytest.mark.parametrize("model", [Climatology(), NegBinGLM()])
def test_yearly_csv_forecasts_are_dated_january_first(tmp_path, model):
    rng = np.random.default_rng(1)
    years = pd.date_range("1990-01-01", periods=30, freq="YS")
    panel = load_panel(write(tmp_path, "yearly.csv", years, rng.poisson(20, len(years))))
    assert panel.attrs["freq"] == Frequency("year")
    fc = model.fit(panel).forecast(3)
    assert list(pd.to_datetime(fc.index["ds"])) == list(pd.date_range("2020-01-01", periods=3, freq="YS"))
    assert np.isfinite(fc.mean).all()


def test_quarterly_csv_forecasts_are_dated_quarter_starts(tmp_path):
    qs = pd.date_range("2015-01-01", periods=24, freq="QS")
    panel = load_panel(write(tmp_path, "q.csv", qs, np.arange(24) % 4 * 3 + 5))
    fit = NegBinGLM().fit(panel)
    assert [n for n in fit.fits()["a"].state["names"] if n.startswith(("quarter", "month"))] == \
        ["quarter_2", "quarter_3", "quarter_4"]
    assert list(pd.to_datetime(fit.forecast(2).index["ds"])) == [pd.Timestamp("2021-01-01"),
                                                                 pd.Timestamp("2021-04-01")]


def test_cli_predict_from_events_with_freq_year(tmp_path):
    from typer.testing import CliRunner

    from forecast.cli import app

    ev = events(pd.date_range("2015-01-01", "2022-12-31", freq="7D"))
    ev["date"] = ev["date"].dt.strftime("%Y-%m-%d")
    ev.to_csv(tmp_path / "ev.csv", index=False)
    out = tmp_path / "fc.csv"
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "ev.csv"), "--freq", "year", "--as-of", "2022-12-31",
                                   "--model", "climatology", "-h", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out)["ds"].unique().tolist() == ["2023-01-01", "2024-01-01"]


# -- design columns by frequency ---------------------------------------------------------------

def test_weekly_negbin_glm_uses_fourier_terms_not_month_dummies():
    ds = pd.date_range("2020-01-06", periods=156, freq="W-MON")
    y = np.random.default_rng(3).poisson(5 + 3 * np.sin(2 * np.pi * ds.day_of_year / 365.25))
    panel = pd.DataFrame({"unique_id": "w", "ds": ds, "y": y})
    names = list(NegBinGLM().fit(panel).fits()["w"].state["names"])
    assert not any(n.startswith("month_") for n in names)
    assert {"sin1", "cos1", "sin2", "cos2"} <= set(names)  # negbin_glm's fourier_k = 2
    # The columns are the closed-form annual harmonics of the day of year.
    s = PanelData.from_frame(panel).series[0]
    X, cols = deterministic_columns(DesignSpec(seasonality="month", fourier_k=2), s, s.ds, np.arange(156.0))
    u = ds.day_of_year.to_numpy() / 365.25
    np.testing.assert_allclose(X[:, cols.index("sin2")], np.sin(4 * np.pi * u), atol=1e-12)
    np.testing.assert_allclose(X[:, cols.index("cos1")], np.cos(2 * np.pi * u), atol=1e-12)


def test_yearly_design_has_no_seasonal_columns():
    s = PanelData.from_frame(pd.DataFrame({"unique_id": "y", "ds": pd.date_range("2000-01-01", periods=10,
                                                                                    freq="YS"), "y": 1})).series[0]
    for seasonality in ("month", "fourier"):
        _, cols = deterministic_columns(DesignSpec(trend="linear", seasonality=seasonality), s, s.ds,
                                        np.arange(10.0))
        assert cols == ["(Intercept)", "trend"]


# -- plots name the period ---------------------------------------------------------------------

def test_plots_label_weekly_and_yearly_panels_by_their_period():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from forecast import plots

    keys = dict(country="Tajikistan", province="Khatlon", event_type="clash", unique_id="Tajikistan/Khatlon/clash")
    weekly = pd.DataFrame({"ds": pd.date_range("2024-01-07", periods=20, freq="W-SUN"), "y": 1, **keys})
    fig = plots.monthly_counts(weekly)
    assert fig.axes[0].get_ylabel() == "incidents per week" and fig._suptitle.get_text().startswith("Weekly")
    plt.close(fig)
    years = [d for d in pd.date_range("2000-01-01", periods=8, freq="YS") if d.year != 2003]
    yearly = pd.DataFrame({"ds": years, "y": np.arange(1, 8), **keys})
    yearly.attrs["freq"] = Frequency("year")
    fig = plots.history_heatmap(yearly)
    mesh = fig.axes[0].collections[0]
    values = np.ma.getdata(mesh.get_array()).ravel()
    mask = np.ma.getmaskarray(mesh.get_array()).ravel()
    assert len(values) == 8 and mask.tolist() == [False] * 3 + [True] + [False] * 4  # 2003 missing: grey
    assert fig.axes[0].get_title(loc="left").startswith("Yearly") and "per year" in fig.axes[1].get_ylabel()
    plt.close(fig)
