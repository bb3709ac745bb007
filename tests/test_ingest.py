"""Ingest: the three source layouts on real and hand-made rows, and every validation rule."""
from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from forecast import DataValidationError, ForecastWarning, read_events
from forecast.datasets import sample_path

UCDP = sample_path("ucdp_candidate_2026q1")


def write(tmp_path: Path, text: str, name: str = "events.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def read_quiet(*args, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecastWarning)
        return read_events(*args, **kwargs)


# -- UCDP: the real extract -------------------------------------------------------

@pytest.fixture(scope="module")
def ucdp() -> pd.DataFrame:
    return read_quiet(UCDP)


def test_ucdp_loads_every_row_with_canonical_columns(ucdp):
    assert list(ucdp.columns[:7]) == ["event_id", "date", "country", "province", "event_type", "count",
                                      "fatalities"]
    assert ucdp.attrs["ingest"]["schema"] == "ucdp"
    assert len(ucdp) == 348
    assert ucdp.groupby("country").size().to_dict() == {"Afghanistan": 74, "Pakistan": 274}
    # best is the fatality estimate: 452 and 951 per the data README.
    assert ucdp.groupby("country")["fatalities"].sum().to_dict() == {"Afghanistan": 452, "Pakistan": 951}
    assert ucdp["date"].min() == pd.Timestamp("2026-01-01")
    assert ucdp["date"].max() == pd.Timestamp("2026-03-31")
    assert (ucdp["count"] == 1).all()


def test_ucdp_provinces_lose_their_suffix_and_resolve(ucdp):
    afg = ucdp[ucdp["country"] == "Afghanistan"].groupby("province").size()
    assert afg["Faryab"] == 1 and afg["Kunar"] == 15 and afg["Badakhshan"] == 3
    assert afg["Herat"] == 2  # UCDP writes "Hirat province"
    assert afg["Paktia"] == 4 and afg["Panjshir"] == 1  # "Paktya", "Panjsher"
    pak = ucdp[ucdp["country"] == "Pakistan"].groupby("province").size()
    assert pak["Khyber Pakhtunkhwa"] == 145 and pak["Balochistan"] == 119
    assert pak["Islamabad Capital Territory"] == 1
    assert not ucdp["province"].str.contains("province", case=False).any()
    assert ucdp.attrs["ingest"]["unknown_provinces"] == []


def test_ucdp_events_without_province_are_kept_as_unknown_and_warned():
    with pytest.warns(ForecastWarning, match="13 events name no province"):
        ev = read_events(UCDP)
    assert (ev["province"] == "unknown").sum() == 13
    assert ev.attrs["ingest"]["no_province"] == 13


def test_ucdp_event_types_follow_the_documented_mapping(ucdp):
    # type_of_violence 1 and 2 -> clash, 3 -> attack (Afg 70/0/4, Pak 226/8/40).
    got = ucdp.groupby(["country", "event_type"]).size().to_dict()
    assert got == {("Afghanistan", "attack"): 4, ("Afghanistan", "clash"): 70,
                   ("Pakistan", "attack"): 40, ("Pakistan", "clash"): 234}


def test_ucdp_event_type_mapping_is_overridable():
    ev = read_quiet(UCDP, event_types={"2": "nonstate", "3": "one-sided"})
    assert ev["event_type"].value_counts().to_dict() == {"clash": 296, "one-sided": 44, "nonstate": 8}


def test_ucdp_precision_levels_and_filters(ucdp):
    assert ucdp["date_precision"].value_counts().to_dict() == {"day": 299, "week": 45, "month": 4, "year": 0}
    ev = read_quiet(UCDP, max_date_precision="day", max_location_precision="admin1")
    # where_prec 5 and 6 (15 rows) are coarser than admin1; date_prec 2 and 4 coarser than a day.
    kept = ucdp[(ucdp["date_precision"] == "day") & (ucdp["location_precision"] <= "admin1")]
    assert len(ev) == len(kept)
    assert ev.attrs["ingest"]["dropped"]["date_precision"] == 49
    assert (ev["province"] != "unknown").all()  # the rows without adm_1 are all where_prec 5-6


def test_multi_day_events_count_at_their_start_date(ucdp):
    multi = ucdp[ucdp["date_end"] > ucdp["date"]]
    assert len(multi) == 49
    assert (multi["date"] < multi["date_end"]).all()


# -- ACLED and native hand-made files ------------------------------------------------

ACLED_TEXT = """event_id_cnty,event_date,year,time_precision,disorder_type,event_type,sub_event_type,actor1,country,admin1,admin2,geo_precision,fatalities
TJK101,15 January 2024,2024,1,Political violence,Battles,Armed clash,Military Forces of Tajikistan,Tajikistan,Khatlon,Panj,1,2
TJK102,2024-01-20,2024,2,Political violence,Explosions/Remote violence,Remote explosive,Unidentified,Tajikistan,GBAO,Ishkoshim,2,0
TJK103,2024-02-03,2024,1,Strategic developments,Strategic developments,Disrupted weapons use,Border Forces,Tajikistan,Sogd,Isfara,1,0
TJK104,2024-02-05,2024,3,Strategic developments,Strategic developments,Arrests,Police,Tajikistan,Dushanbe,,3,0
AFG201,2024-02-11,2024,1,Political violence,Violence against civilians,Attack,Unidentified,Afghanistan,Hirat,Hirat,1,1
"""


def test_acled_export_is_recognised_and_mapped(tmp_path):
    ev = read_quiet(write(tmp_path, ACLED_TEXT))
    assert ev.attrs["ingest"]["schema"] == "acled"
    assert ev["event_id"].tolist() == ["TJK101", "TJK102", "TJK103", "TJK104", "AFG201"]
    assert ev["event_type"].tolist() == ["clash", "attack", "seizure", "other", "attack"]
    assert ev["province"].tolist() == ["Khatlon", "Gorno-Badakhshan", "Sughd", "Dushanbe", "Herat"]
    assert ev["date"].tolist()[:2] == [pd.Timestamp("2024-01-15"), pd.Timestamp("2024-01-20")]
    assert ev["date_precision"].astype(str).tolist() == ["day", "week", "day", "month", "day"]
    assert ev["source"].unique().tolist() == ["acled"]


def test_native_semicolon_with_bom_and_cyrillic(tmp_path):
    text = "date;province;event_type;count\n2024-03-01;Хатлон;clash;2\n2024-03-02;Согд;seizure;1\n"
    ev = read_quiet(write(tmp_path, "\ufeff" + text))
    assert ev.attrs["ingest"]["schema"] == "native"
    assert ev["province"].tolist() == ["Khatlon", "Sughd"]
    assert ev["country"].tolist() == ["Tajikistan", "Tajikistan"]  # inferred from the gazetteer
    assert ev["count"].tolist() == [2, 1]
    assert ev["fatalities"].isna().all()


def test_native_tab_separated_and_dayfirst_dates(tmp_path):
    text = "date\tcountry\tprovince\tevent_type\n03.04.2024\tTajikistan\tKhatlon\tClash\n"
    ev = read_quiet(write(tmp_path, text, "events.tsv"))
    assert ev["date"].iloc[0] == pd.Timestamp("2024-04-03")
    assert ev["event_type"].iloc[0] == "clash"
    us = read_quiet(write(tmp_path, text.replace("03.04.2024", "03/04/2024"), "us.tsv"), dayfirst=False)
    assert us["date"].iloc[0] == pd.Timestamp("2024-03-04")


def test_parquet_reads_like_csv(tmp_path):
    frame = pd.DataFrame({"date": pd.to_datetime(["2024-01-05", "2024-02-10"]),
                          "country": ["Afghanistan", "Afghanistan"], "province": ["Kunduz", "Takhar"],
                          "event_type": ["clash", "attack"], "count": [1, 3], "event_id": ["a", "b"]})
    path = tmp_path / "events.parquet"
    frame.to_parquet(path)
    ev = read_quiet(path)
    assert ev["count"].tolist() == [1, 3]
    assert ev["date"].tolist() == frame["date"].tolist()


def test_unknown_province_kept_and_warned_or_error_when_strict(tmp_path):
    text = "date,country,province,event_type\n2024-01-01,Tajikistan,Atlantis,clash\n2024-01-02,Tajikistan,Khatlon,clash\n"
    path = write(tmp_path, text)
    with pytest.warns(ForecastWarning, match="Atlantis"):
        ev = read_events(path)
    assert ev["province"].tolist() == ["Atlantis", "Khatlon"]
    with pytest.raises(DataValidationError) as err:
        read_events(path, strict=True)
    msg = str(err.value)
    assert "province" in msg and "Atlantis" in msg and "(2)" in msg


def test_user_gazetteer_extends_aliases(tmp_path):
    gz = write(tmp_path, "country,province,alias\nTajikistan,Khatlon,Kurgan-Tyube\n", "gaz.csv")
    text = "date,country,province,event_type\n2024-01-01,Tajikistan,Kurgan-Tyube,clash\n"
    ev = read_quiet(write(tmp_path, text), gazetteer=gz)
    assert ev["province"].tolist() == ["Khatlon"]


# -- validation: one test per rule, each message names column and rows ----------------

def problems_of(path, **kwargs) -> str:
    with pytest.raises(DataValidationError) as err:
        read_quiet(path, **kwargs)
    return str(err.value)


def test_missing_required_columns_are_named_with_the_columns_found(tmp_path):
    msg = problems_of(write(tmp_path, "when,province,event_type\n2024-01-01,Khatlon,clash\n"), schema="native")
    assert "'date'" in msg and "Columns found: when, province, event_type" in msg


def test_unrecognised_layout_lists_what_each_layout_needs(tmp_path):
    msg = problems_of(write(tmp_path, "a,b\n1,2\n"))
    assert "could not recognise" in msg and "native: date, province, event_type" in msg
    assert "Columns found: a, b" in msg


def test_unparseable_dates_name_column_rows_and_provinces(tmp_path):
    rows = ["2024-01-01,Khatlon,clash"] * 3 + ["not a date,Sughd,clash", "2024-13-45,Khatlon,attack"]
    msg = problems_of(write(tmp_path, "date,province,event_type\n" + "\n".join(rows) + "\n"))
    assert "column 'date': unparseable or missing date" in msg
    assert "2 rows (5, 6)" in msg and "Khatlon, Sughd" in msg and "YYYY-MM-DD" in msg


def test_negative_and_fractional_counts(tmp_path):
    text = "date,province,event_type,count\n2024-01-01,Khatlon,clash,1\n2024-01-02,Khatlon,clash,-1\n" \
           "2024-01-03,Sughd,clash,1.5\n2024-01-04,Sughd,clash,two\n"
    msg = problems_of(write(tmp_path, text))
    assert "column 'count'" in msg and "3 rows (3, 4, 5)" in msg and "whole numbers" in msg


def test_negative_fatalities(tmp_path):
    text = "date,province,event_type,fatalities\n2024-01-01,Khatlon,clash,-2\n"
    assert "column 'fatalities'" in problems_of(write(tmp_path, text))


def test_dates_after_the_run_date(tmp_path):
    text = "date,province,event_type\n2024-01-01,Khatlon,clash\n2031-05-01,Dushanbe,clash\n"
    msg = problems_of(write(tmp_path, text), as_of="2025-01-01")
    assert "date after the run date 2025-01-01" in msg and "(3)" in msg and "Dushanbe" in msg


def test_empty_file_and_header_only(tmp_path):
    assert "the file is empty" in problems_of(write(tmp_path, "", "empty.csv"))
    assert "no data rows" in problems_of(write(tmp_path, "date,province,event_type\n", "header.csv"))


def test_missing_event_type(tmp_path):
    text = "date,province,event_type\n2024-01-01,Khatlon,\n"
    assert "column 'event_type': missing event type; in 1 row (2)" in problems_of(write(tmp_path, text))


def test_every_problem_is_reported_at_once(tmp_path):
    text = "date,province,event_type,count\nbad,Khatlon,clash,1\n2024-01-01,Khatlon,,-3\n"
    with pytest.raises(DataValidationError) as err:
        read_quiet(write(tmp_path, text))
    checks = [p.check for p in err.value.problems]
    assert len(checks) == 3 and len(err.value.lines()) == 3


def test_duplicate_event_ids_are_dropped_and_counted(tmp_path):
    text = "event_id,date,province,event_type\nA,2024-01-01,Khatlon,clash\nB,2024-01-02,Khatlon,clash\n" \
           "A,2024-01-01,Khatlon,clash\n"
    with pytest.warns(ForecastWarning, match=r"1 rows repeat an earlier event_id.*rows 4"):
        ev = read_events(write(tmp_path, text))
    assert ev["event_id"].tolist() == ["A", "B"]
    assert ev.attrs["ingest"]["dropped"] == {"duplicate_event_id": 1}


def test_not_utf8(tmp_path):
    path = write(tmp_path, "date,province,event_type\n2024-01-01,Khatlón,clash\n", encoding="latin-1")
    assert "not UTF-8" in problems_of(path)


def test_file_not_found(tmp_path):
    assert "file not found" in problems_of(tmp_path / "nope.csv")


def test_row_order_does_not_change_the_events(tmp_path):
    ev = read_quiet(UCDP)
    raw = pd.read_csv(UCDP, dtype=str, keep_default_na=False).sample(frac=1.0, random_state=3)
    path = tmp_path / "shuffled.csv"
    raw.to_csv(path, index=False)
    sh = read_quiet(path)
    key = ["event_id"]
    a = ev.sort_values(key).reset_index(drop=True)
    b = sh.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
