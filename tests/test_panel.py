"""Panel: zero-filling inside coverage only, frequencies, totals, and properties."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast import ConfigError, DataValidationError, ForecastWarning, build_panel
from forecast.panel import parse_freq


def events(rows, **extra) -> pd.DataFrame:
    """Canonical events frame from (date, country, province, event_type[, count]) tuples."""
    recs = [dict(date=pd.Timestamp(r[0]), country=r[1], province=r[2], event_type=r[3],
                 count=r[4] if len(r) > 4 else 1) for r in rows]
    frame = pd.DataFrame(recs, columns=["date", "country", "province", "event_type", "count"])
    frame["fatalities"] = pd.array([0] * len(frame), dtype="Int64")
    for k, v in extra.items():
        frame[k] = v
    return frame


def quiet(*args, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecastWarning)
        return build_panel(*args, **kwargs)


BASE = events([
    ("2024-01-03", "Tajikistan", "Khatlon", "clash"),
    ("2024-01-20", "Tajikistan", "Khatlon", "clash", 2),
    ("2024-03-05", "Tajikistan", "Sughd", "seizure"),
    ("2024-04-30", "Tajikistan", "Khatlon", "seizure"),
])


def test_zero_filled_grid_of_provinces_types_and_months():
    p = quiet(BASE)
    assert list(p.columns) == ["unique_id", "ds", "y", "country", "province", "event_type"]
    assert p["unique_id"].nunique() == 4  # 2 provinces x 2 types
    assert p.groupby("unique_id").size().eq(4).all()  # Jan..Apr 2024 (April ends on the 30th)
    assert p["y"].dtype == np.int64 and p["y"].sum() == 5
    k = p.set_index(["unique_id", "ds"])["y"]
    assert k[("Tajikistan/Khatlon/clash", pd.Timestamp("2024-01-01"))] == 3
    assert k[("Tajikistan/Sughd/clash", pd.Timestamp("2024-02-01"))] == 0
    assert p.attrs["coverage"] == {"Tajikistan": ("2024-01-01", "2024-04-01")}


def test_trailing_partial_month_is_dropped_and_warned_not_counted_as_zero():
    ev = pd.concat([BASE, events([("2024-05-12", "Tajikistan", "Khatlon", "clash")])])
    with pytest.warns(ForecastWarning, match=r"last period 2024-05-01 is only covered up to 2024-05-12"):
        p = build_panel(ev)
    assert p["ds"].max() == pd.Timestamp("2024-04-01")
    # With as_of at the month's end the log is complete and May counts.
    full = quiet(ev, as_of="2024-05-31")
    assert full["ds"].max() == pd.Timestamp("2024-05-01")
    assert full.loc[full["ds"] == "2024-05-01", "y"].sum() == 1


def test_periods_outside_coverage_are_missing_never_zero():
    ev = pd.concat([BASE, events([("2024-02-10", "Afghanistan", "Kunduz", "clash"),
                                  ("2024-03-31", "Afghanistan", "Kunduz", "clash")])])
    p = quiet(ev, coverage={"Tajikistan": ("2024-01-01", "2024-04-01"),
                            "Afghanistan": ("2024-02-01", "2024-03-01")})
    afg = p[p["country"] == "Afghanistan"]
    assert sorted(afg["ds"].unique()) == [pd.Timestamp("2024-02-01"), pd.Timestamp("2024-03-01")]
    assert not afg["y"].isna().any()
    assert len(p[(p["country"] == "Afghanistan") & (p["ds"] == "2024-01-01")]) == 0


def test_declared_provinces_and_countries_appear_without_events():
    p = quiet(BASE, countries=["Tajikistan"])
    assert sorted(p["province"].unique()) == sorted(["Sughd", "Khatlon", "Gorno-Badakhshan",
                                                     "Districts of Republican Subordination", "Dushanbe"])
    assert p.loc[p["province"] == "Dushanbe", "y"].sum() == 0
    q = quiet(BASE, provinces={"Tajikistan": ["GBAO"]})
    assert "Gorno-Badakhshan" in set(q["province"])


def test_week_and_day_frequencies_start_on_the_right_day():
    ev = events([("2024-01-03", "Tajikistan", "Khatlon", "clash"),   # Wednesday
                 ("2024-01-14", "Tajikistan", "Khatlon", "clash")])  # Sunday
    w = quiet(ev, "week")
    assert w["ds"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-08")]
    assert w["y"].tolist() == [1, 1]
    sun = quiet(ev, "W-SUN", as_of="2024-01-20")
    assert sun["ds"].dt.day_of_week.eq(6).all()
    d = quiet(ev, "D")
    assert len(d) == 12 and d["y"].sum() == 2


def test_no_complete_period_is_a_clear_error():
    ev = events([("2024-01-03", "Tajikistan", "Khatlon", "clash")])
    with pytest.raises(DataValidationError, match="no complete month is covered"):
        quiet(ev)


def test_freq_aliases():
    assert parse_freq("M").kind == "month" and parse_freq("MS").kind == "month"
    assert parse_freq("W-MON").weekday == 0 and parse_freq("W-FRI").weekday == 4
    with pytest.raises(ConfigError, match="Unknown frequency 'fortnight'"):
        parse_freq("fortnight")


def test_fatalities_instead_of_events():
    ev = BASE.copy()
    ev["fatalities"] = pd.array([1, 4, 0, 2], dtype="Int64")
    p = quiet(ev, value="fatalities")
    assert p["y"].sum() == 7


def test_totals_are_marked_and_sum_the_provinces():
    p = quiet(BASE, totals=True)
    agg = p[p["aggregate"]]
    assert set(agg["province"]) == {"(all)"}
    prov = p[~p["aggregate"]].groupby(["event_type", "ds"])["y"].sum()
    tot = agg.set_index(["event_type", "ds"])["y"]
    pd.testing.assert_series_equal(prov.sort_index(), tot.sort_index(), check_names=False)


def test_exposure_and_adjacency_travel_with_the_panel():
    ds = pd.date_range("2024-01-01", periods=4, freq="MS")
    ex = pd.DataFrame({"country": "Tajikistan", "province": np.repeat(["Khatlon", "Sughd"], 4),
                       "ds": np.tile(ds, 2), "exposure": 2.0})
    adj = pd.DataFrame({"country_a": ["Tajikistan"], "province_a": ["Khatlon"],
                        "country_b": ["Afghanistan"], "province_b": ["Kunduz"]})
    p = quiet(BASE, exposure=ex, adjacency=adj)
    assert (p["exposure"] == 2.0).all()
    # carried in the canonical form of forecast.adjacency.read_adjacency
    assert p.attrs["adjacency"].frame[["country_a", "region_a", "country_b", "region_b"]].values.tolist() == [
        ["Tajikistan", "Khatlon", "Afghanistan", "Kunduz"]]


# -- properties (Hypothesis) ---------------------------------------------------------

PROVS = [("Tajikistan", "Khatlon"), ("Tajikistan", "Sughd"), ("Afghanistan", "Kunduz")]
event_rows = st.lists(
    st.tuples(st.dates(min_value=pd.Timestamp("2023-01-01").date(), max_value=pd.Timestamp("2024-12-31").date()),
              st.sampled_from(PROVS), st.sampled_from(["clash", "attack"]), st.integers(1, 4)),
    min_size=1, max_size=60)


def to_events(rows) -> pd.DataFrame:
    return events([(str(d), c, p, t, n) for d, (c, p), t, n in rows])


@settings(max_examples=40, deadline=None)
@given(event_rows, st.sampled_from(["month", "week"]))
def test_total_in_equals_total_in_panel_within_coverage(rows, freq):
    ev = to_events(rows)
    # The log is complete to the end of the month after its last event, so the last
    # week is complete too; the trailing-period rule has its own test.
    as_of = ev["date"].max() + pd.Timedelta(days=7) + pd.offsets.MonthEnd(0)
    p = quiet(ev, freq, as_of=as_of)
    first = p["ds"].min()
    last_end = parse_freq(freq).next_start(np.array([p["ds"].max().to_datetime64()]))[0]
    inside = ev[(ev["date"] >= first) & (ev["date"] < last_end)]
    assert p["y"].sum() == inside["count"].sum()


@settings(max_examples=40, deadline=None)
@given(event_rows)
def test_every_series_has_every_covered_period_once(rows):
    p = quiet(to_events(rows), as_of="2024-12-31")
    for country, (a, b) in p.attrs["coverage"].items():
        periods = pd.date_range(a, b, freq="MS")
        sub = p[p["country"] == country]
        assert (sub.groupby("unique_id")["ds"].apply(lambda s: list(s)) .map(lambda s: s == list(periods))).all()
    assert not p.duplicated(["unique_id", "ds"]).any()
    assert not p["y"].isna().any()


@settings(max_examples=40, deadline=None)
@given(event_rows, st.randoms(use_true_random=False))
def test_shuffling_rows_changes_nothing(rows, rnd):
    ev = to_events(rows)
    shuffled = ev.sample(frac=1.0, random_state=rnd.randint(0, 2**31 - 1)).reset_index(drop=True)
    pd.testing.assert_frame_equal(quiet(ev, as_of="2024-12-31"), quiet(shuffled, as_of="2024-12-31"))


@settings(max_examples=40, deadline=None)
@given(event_rows)
def test_missing_stays_missing_outside_explicit_coverage(rows):
    ev = to_events(rows)
    inside = ev[(ev["date"] >= "2024-03-01") & (ev["date"] < "2024-07-01")]
    if inside.empty:
        # No event inside coverage: an error, never a panel of certain zeros.
        with pytest.raises(DataValidationError, match="nothing to forecast from"):
            quiet(ev, coverage=("2024-03-01", "2024-06-01"))
        return
    p = quiet(ev, coverage=("2024-03-01", "2024-06-01"))
    assert p["ds"].min() >= pd.Timestamp("2024-03-01") and p["ds"].max() <= pd.Timestamp("2024-06-01")
    assert p["y"].sum() == inside["count"].sum()
