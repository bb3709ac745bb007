"""Bad input at the edge: counts, dates, headers, odd files, event ids, empty panels, far horizons.

Each case asserts the exact one-line message (column, check, spreadsheet rows,
hint) and, through the CLI, that no traceback reaches the user.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast import ConfigError, DataValidationError, ForecastWarning, build_panel, read_events
from forecast._parse import parse_counts, parse_date_text
from forecast.cli import app
from forecast.models.series import future_dates, period_range
from forecast.pipeline import load_panel
from forecast.schema import MAX_EVENT_COUNT, MAX_PANEL_COUNT

HEAD = "date,province,event_type,count\n"


def write(tmp_path: Path, text: str | bytes, name: str = "events.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecastWarning)
        return fn(*args, **kwargs)


def error_lines(fn, *args, **kwargs) -> list[str]:
    with pytest.raises(DataValidationError) as err:
        quiet(fn, *args, **kwargs)
    return err.value.lines()


def counts_file(tmp_path: Path, values: list[str], column: str = "count") -> Path:
    rows = "".join(f"2024-01-{i + 1:02d},Khatlon,clash,{v}\n" for i, v in enumerate(values))
    return write(tmp_path, HEAD.replace("count", column) + rows)


# -- counts ---------------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [("3", 3), ("3.0", 3), (" 3 ", 3), ("1e3", 1000), ("+2", 2),
                                        ("0", 0), ("-0", 0), (str(MAX_EVENT_COUNT), MAX_EVENT_COUNT),
                                        ("1.000e7", MAX_EVENT_COUNT)])
def test_whole_counts_in_range_are_read_exactly(tmp_path, text, value):
    ev = quiet(read_events, counts_file(tmp_path, [text]))
    assert ev["count"].tolist() == [value]


BAD_COUNTS = ["inf", "nan", "1e300", "9223372036854775808", "-1", "1.5", "0x10", "\uff11", "10000001",
              "18446744073709551617", "1e-5", "Infinity", "3,0"]


def test_bad_counts_are_one_line_naming_rows_values_and_the_rule(tmp_path):
    # "3,0" in a comma CSV is two fields: use a semicolon file for it.
    rows = "".join(f"2024-01-{i + 1:02d};Khatlon;clash;{v}\n" for i, v in enumerate(BAD_COUNTS))
    path = write(tmp_path, HEAD.replace(",", ";") + "2024-02-01;Sughd;clash;2\n" + rows)
    lines = error_lines(read_events, path)
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith(f"events.csv: column 'count': not a whole number from 0 to {MAX_EVENT_COUNT}; "
                           f"in {len(BAD_COUNTS)} rows (3, 4, 5, 6, 7, 8, 9, 10, 11, 12 and 3 more); "
                           "provinces: Khatlon.")
    assert "Values found: 'inf', 'nan', '1e300', '9223372036854775808', '-1'." in line
    assert "whole numbers >= 0 with the digits 0-9" in line


def test_huge_counts_never_wrap_to_negative_numbers():
    # The old path cast float -> int64: 1e300 and 2**63 became -9.2e18.
    values = pd.Series(["1e300", str(2**63), "inf", "5"], dtype="string")
    num, status = parse_counts(values, MAX_PANEL_COUNT)
    assert num.tolist() == [0, 0, 0, 5] and status.tolist()[3] == 0 and (status[:3] != 0).all()
    assert (num >= 0).all()


def test_empty_count_is_an_error_and_empty_fatalities_unknown(tmp_path):
    text = "date,province,event_type,count,fatalities\n2024-01-01,Khatlon,clash,,\n2024-01-02,Khatlon,clash,4,2\n"
    lines = error_lines(read_events, write(tmp_path, text))
    assert len(lines) == 1 and "column 'count': missing count" in lines[0] and "(2)" in lines[0]
    text = "date,province,event_type,count,fatalities\n2024-01-01,Khatlon,clash,1,\n2024-01-02,Khatlon,clash,4,2\n"
    ev = quiet(read_events, write(tmp_path, text))
    assert ev["fatalities"].isna().tolist() == [True, False] and ev["fatalities"].iloc[1] == 2


def test_fatalities_above_the_maximum_are_an_error(tmp_path):
    lines = error_lines(read_events, counts_file(tmp_path, ["1", "1e8"], column="fatalities"))
    assert lines == [f"events.csv: column 'fatalities': not a whole number from 0 to {MAX_EVENT_COUNT}; "
                     "in 1 row (3); provinces: Khatlon. Values found: '1e8'. Write counts as whole numbers "
                     ">= 0 with the digits 0-9."]


def test_parquet_float_counts_are_checked_exactly(tmp_path):
    frame = pd.DataFrame({"date": ["2024-01-01", "2024-01-02", "2024-01-03"], "province": ["Khatlon"] * 3,
                          "event_type": ["clash"] * 3, "count": [2.0, 1e300, np.inf]})
    frame.to_parquet(tmp_path / "ev.parquet")
    lines = error_lines(read_events, tmp_path / "ev.parquet")
    assert len(lines) == 1 and "column 'count'" in lines[0] and "2 rows (2, 3)" in lines[0]


# -- dates ----------------------------------------------------------------------------

def test_utc_offsets_keep_the_calendar_date_as_written(tmp_path):
    text = ("date,province,event_type\n2024-01-05T23:30:00+05:00,Khatlon,clash\n"
            "2024-01-06T01:00:00-08:00,Khatlon,clash\n2024-01-07 22:15,Khatlon,clash\n"
            "2024-01-31T23:59:59Z,Khatlon,clash\n")
    ev = quiet(read_events, write(tmp_path, text))
    assert ev["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-05", "2024-01-06", "2024-01-07",
                                                           "2024-01-31"]


def test_bad_dates_one_line_per_kind(tmp_path):
    text = ("date,province,event_type\n2024-01-01,Khatlon,clash\n45291,Sughd,clash\n2024-02-30,Khatlon,clash\n"
            "1500-06-01,Khatlon,clash\n9999-12-31,Sughd,clash\nyesterday,Khatlon,clash\n")
    lines = error_lines(read_events, write(tmp_path, text), as_of="2030-01-01")
    assert lines == [
        "events.csv: column 'date': unparseable or missing date; in 1 row (7); provinces: Khatlon. "
        "Write dates as YYYY-MM-DD.",
        "events.csv: column 'date': impossible calendar date (no such day in that month); in 1 row (4); "
        "provinces: Khatlon. Correct the day or month; write dates as YYYY-MM-DD. Values found: '2024-02-30'.",
        "events.csv: column 'date': a number, not a date (an Excel serial day number?); in 1 row (3); "
        "provinces: Sughd. Format the column as a date (YYYY-MM-DD) in the spreadsheet before saving the CSV. "
        "Values found: '45291'.",
        "events.csv: column 'date': date outside the supported range 1678-01-01 to 2262-04-11; in 2 rows (5, 6); "
        "provinces: Khatlon, Sughd. Correct the year; dates must lie between those two days. "
        "Values found: '1500-06-01', '9999-12-31'.",
    ]


def test_dates_at_both_ends_of_the_range_are_accepted(tmp_path):
    text = "date,province,event_type\n1678-01-01,Khatlon,clash\n2262-04-11,Khatlon,clash\n"
    ev = quiet(read_events, write(tmp_path, text), as_of="2262-04-11")
    assert ev["date"].tolist() == [pd.Timestamp("1678-01-01"), pd.Timestamp("2262-04-11")]


def test_as_of_follows_the_same_date_rules():
    assert str(parse_date_text("2024-03-05")) == "2024-03-05"
    with pytest.raises(DataValidationError, match="as_of': impossible calendar date"):
        parse_date_text("2024-02-30", what="as_of")
    with pytest.raises(DataValidationError, match="supported range 1678-01-01 to 2262-04-11"):
        parse_date_text("2300-01-01", what="as_of")


# -- header and file kinds ------------------------------------------------------------

@pytest.mark.parametrize("header", ["date,province,event_type,date", "Date,province,event_type, DATE "])
def test_duplicated_column_name_is_an_error(tmp_path, header):
    lines = error_lines(read_events, write(tmp_path, header + "\n2024-01-01,Khatlon,clash,2024-01-02\n"))
    assert lines == ["events.csv: column 'date': column name given twice (columns 1 and 4 of the header). "
                     "Rename or delete one of them, so it is clear which one to read."]


FILES = {
    "empty": (b"", "the file is empty"),
    "header_only": (b"date,province,event_type\n", "the file has a header but no data rows"),
    "random": (bytes(np.random.default_rng(7).integers(1, 256, 2000, dtype=np.uint8)), "not UTF-8 text"),
    "utf16_damaged": ("date,province,event_type\n2024-01-01,Khatlon,clash\n".encode("utf-16")[:-1] + b"\x00\xd8",
                      "damaged UTF-16 text"),
    "nul": (b"date,province,event_type\n2024-01-01,Khat\x00lon,clash\n", "contains NUL bytes"),
    "parquet_named_csv": (b"PAR1\x00\x01garbage", "is a Parquet file with a text-file name"),
}


@pytest.mark.parametrize("case", list(FILES))
def test_odd_files_give_one_clear_line(tmp_path, case):
    data, expected = FILES[case]
    lines = error_lines(read_events, write(tmp_path, data))
    assert len(lines) == 1 and expected in lines[0] and lines[0].startswith("events.csv: column '<file>'")


@pytest.mark.parametrize("data", [b"not parquet at all", b"PAR1 truncated PAR1"])
def test_a_parquet_name_on_something_else(tmp_path, data):
    lines = error_lines(read_events, write(tmp_path, data, "events.parquet"))
    assert len(lines) == 1 and "Parquet" in lines[0] and "Export it again" in lines[0]


def test_utf8_with_and_without_bom_and_utf16_read_the_same(tmp_path):
    text = "date,province,event_type\n2024-01-01,Хатлон,clash\n"
    a = quiet(read_events, write(tmp_path, text, "a.csv"))
    b = quiet(read_events, write(tmp_path, b"\xef\xbb\xbf" + text.encode(), "b.csv"))
    c = quiet(read_events, write(tmp_path, text.encode("utf-16"), "c.csv"))  # Excel's "Unicode text"
    d = quiet(read_events, write(tmp_path, b"\xfe\xff" + text.encode("utf-16-be"), "d.csv"))
    assert a["province"].tolist() == b["province"].tolist() == c["province"].tolist() == d["province"].tolist() \
        == ["Khatlon"]


def test_cp1252_is_not_guessed_the_user_is_told_to_save_as_utf8(tmp_path):
    path = write(tmp_path, "date,province,event_type\n2024-01-01,Khatlón,clash\n".encode("cp1252"))
    assert error_lines(read_events, path) == [
        "events.csv: column '<file>': not UTF-8 text (first bad byte on line 2). "
        "Save the file as UTF-8 CSV (Excel: 'CSV UTF-8')."]


# -- event ids ------------------------------------------------------------------------

def test_ids_repeated_with_different_content_are_an_error(tmp_path):
    text = ("event_id,date,province,event_type,count\nA,2024-01-01,Khatlon,clash,1\nB,2024-01-02,Sughd,clash,1\n"
            "A,2024-01-01,Khatlon,clash,3\nB,2024-01-09,Sughd,clash,1\nC,2024-01-03,Khatlon,clash,1\n"
            "C,2024-01-03,Khatlon,clash,1\n")
    assert error_lines(read_events, write(tmp_path, text)) == [
        "events.csv: column 'event_id': the same event id with a different count, date (ids A, B); "
        "in 4 rows (2, 3, 4, 5); provinces: Khatlon, Sughd. Give each event its own id, or delete the wrong copy."]


def test_identical_repeats_stay_a_warning(tmp_path):
    text = "event_id,date,province,event_type\nA,2024-01-01,Khatlon,clash\nA,01.01.2024,Khatlon,clash\n"
    with pytest.warns(ForecastWarning, match="1 rows repeat an earlier event_id"):
        ev = read_events(write(tmp_path, text))
    assert ev["event_id"].tolist() == ["A"]


# -- formula guard round trip ------------------------------------------------------------

def test_formula_guard_is_taken_off_names_ids_and_types(tmp_path):
    text = ("event_id,date,province,event_type\n'=A1,2024-01-01,'+Zone,'-raid\n'@x,2024-01-02,'Amran,'=SUM(1)\n"
            "\"'\tB\",2024-01-03,Khatlon,clash\n")
    ev = quiet(read_events, write(tmp_path, text))
    assert ev["event_id"].tolist() == ["=A1", "@x", "\tB"]
    assert ev["province"].tolist() == ["+Zone", "'Amran", "Khatlon"]  # a plain apostrophe stays
    assert ev["event_type"].tolist() == ["-raid", "=sum(1)", "clash"]


def test_panel_csv_round_trip_keeps_guarded_ids(tmp_path):
    text = ("unique_id,ds,y,country,province,event_type\n'=X/+P/clash,2024-01-01,1,'=X,'+P,clash\n"
            "'=X/+P/clash,2024-02-01,0,'=X,'+P,clash\n")
    p = load_panel(write(tmp_path, text, "panel.csv"))
    assert p["unique_id"].unique().tolist() == ["=X/+P/clash"]
    assert p["country"].tolist() == ["=X", "=X"] and p["province"].tolist() == ["+P", "+P"]


# -- panel CSV ------------------------------------------------------------------------------

def test_panel_csv_valid_values_and_types(tmp_path):
    text = "unique_id,ds,y,exposure,aggregate\nA,2024-01-01,3,1.5,False\nA,2024-02-01,1e3,2,True\n"
    p = load_panel(write(tmp_path, text, "panel.csv"))
    assert p["y"].tolist() == [3, 1000] and p["y"].dtype == "int64"
    assert p["ds"].dtype == "datetime64[ns]" and p["exposure"].tolist() == [1.5, 2.0]
    assert p["aggregate"].tolist() == [False, True]


def test_panel_csv_problems_name_spreadsheet_rows(tmp_path):
    text = ("unique_id,ds,y\nA,2024-01-01,1\nA,2024-02-30,2\nA,2024-03-01,\nA,2024-04-01,1e300\n"
            "A,2024-05-01,2\nA,2024-05-01,3\n,2024-06-01,1\n")
    assert error_lines(load_panel, write(tmp_path, text, "panel.csv")) == [
        "panel.csv: column 'unique_id': missing series id; in 1 row (8). "
        "Give every row its series id (country/province/event_type).",
        "panel.csv: column 'ds': impossible calendar date (no such day in that month); in 1 row (3). "
        "Correct the day or month; write dates as YYYY-MM-DD. Values found: '2024-02-30'.",
        f"panel.csv: column 'y': not a whole number from 0 to {MAX_PANEL_COUNT}; in 1 row (5). "
        "Values found: '1e300'. Write counts as whole numbers >= 0 with the digits 0-9.",
        # (issue 12: the empty y of row 4 is a missing count, no longer an error)
        "panel.csv: column 'unique_id, ds': the same period of a series more than once (series A); "
        "in 2 rows (6, 7). Keep one row per series and period (sum the counts).",
    ]


def test_panel_csv_missing_column_and_duplicate_header(tmp_path):
    assert error_lines(load_panel, write(tmp_path, "unique_id,ds,y,y\nA,2024-01-01,1,2\n", "p.csv")) == [
        "p.csv: column 'y': column name given twice (columns 3 and 4 of the header). "
        "Rename or delete one of them, so it is clear which one to read."]


def test_panel_csv_without_any_event_is_refused(tmp_path):
    text = "unique_id,ds,y\nA,2024-01-01,0\nA,2024-02-01,0\n"
    lines = error_lines(load_panel, write(tmp_path, text, "zeros.csv"))
    assert len(lines) == 1 and "nothing to forecast from" in lines[0] and "all 2 counts are 0" in lines[0]


# -- honest coverage -------------------------------------------------------------------

def _events(dates):
    return pd.DataFrame({"date": pd.to_datetime(dates), "country": "Tajikistan", "province": "Khatlon",
                         "event_type": "clash", "count": 1, "fatalities": pd.array([0] * len(dates), "Int64")})


def test_events_all_outside_coverage_are_an_error_not_zeros():
    lines = error_lines(build_panel, _events(["2023-05-03", "2023-06-10"]), coverage=("2024-01-01", "2024-06-01"))
    assert lines == ["panel: column 'y': nothing to forecast from: no event in the covered periods (2 events dated "
                     "2023-05-03 to 2023-06-10 all fall outside coverage Tajikistan 2024-01-01 to 2024-06-01). "
                     "Check the coverage and as_of dates against the event dates, or the country and precision "
                     "filters; a forecast needs at least one event."]


def test_quiet_declared_provinces_beside_events_are_still_fine():
    p = quiet(build_panel, _events(["2024-01-03"]), provinces={"Tajikistan": ["Sughd"]}, as_of="2024-02-29")
    assert p.groupby("province")["y"].sum().to_dict() == {"Khatlon": 1, "Sughd": 0}


# -- forecast dates past pandas' last day --------------------------------------------------

@pytest.mark.parametrize("freq", ["MS", "D", "W-MON"])
def test_future_dates_refuse_to_pass_2262(freq):
    last = np.array(["2262-01-01"], dtype="datetime64[ns]")
    with pytest.raises(ConfigError, match="would pass 2262-04-11, the last date supported.*shorter horizon"):
        future_dates(last, 400, freq)
    with pytest.raises(ConfigError, match="shorter horizon"):
        period_range(pd.Timestamp("2262-01-01"), 10**12, freq)
    # A horizon that stays inside is unchanged and never wraps to 1677.
    ok = future_dates(last, 3, freq)
    assert (ok > last[:, None]).all() and ok.max() <= np.datetime64("2262-04-11")


def test_future_dates_match_pandas_offsets():
    last = np.array(["2024-01-01", "2024-11-04"], dtype="datetime64[ns]")
    got = future_dates(last, 3, "MS")
    want = np.stack([pd.date_range(pd.Timestamp(t) + pd.offsets.MonthBegin(1), periods=3, freq="MS").values
                     for t in last])
    np.testing.assert_array_equal(got, want)


# -- CLI: one line per problem, exit 1, no traceback -----------------------------------------

@pytest.mark.parametrize("command", ["validate", "backtest"])
def test_cli_prints_error_lines_without_traceback(tmp_path, command):
    if command == "validate":
        path = counts_file(tmp_path, ["1e300", "2024-02-30"])
        args = ["validate", str(path)]
    else:
        path = write(tmp_path, "unique_id,ds,y\nA,2024-01-01,inf\n", "panel.csv")
        args = ["backtest", str(path), "--out", str(tmp_path / "bt")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    assert not (tmp_path / "bt").exists()
    assert any(line.startswith("error: ") and "column" in line for line in res.output.splitlines())


# -- typed columns (Parquet, frames) ------------------------------------------------------

def test_parquet_timestamps_with_offsets_and_old_dates(tmp_path):
    f = pd.DataFrame({"date": pd.to_datetime(["2024-01-05T23:30:00+05:00", "2024-01-06T03:00:00+05:00"]),
                      "province": ["Khatlon"] * 2, "event_type": ["clash"] * 2})
    f.to_parquet(tmp_path / "tz.parquet")
    assert quiet(read_events, tmp_path / "tz.parquet")["date"].tolist() == [pd.Timestamp("2024-01-05"),
                                                                            pd.Timestamp("2024-01-06")]
    old = f.assign(date=pd.Series(["1500-01-01", "2024-01-01"]).astype("datetime64[s]"))
    old.to_parquet(tmp_path / "old.parquet")
    assert error_lines(read_events, tmp_path / "old.parquet") == [
        "old.parquet: column 'date': date outside the supported range 1678-01-01 to 2262-04-11; in 1 row (1); "
        "provinces: Khatlon. Correct the year; dates must lie between those two days. Values found: '1500-01-01'."]


def test_frame_with_a_column_twice_after_lower_casing():
    from forecast.ingest import events_from_frame

    frame = pd.DataFrame([["2024-01-01", "Khatlon", "clash", "2024-01-02"]],
                         columns=["date", "province", "event_type", "Date"])
    assert error_lines(events_from_frame, frame) == [
        "frame: column 'date': column name given twice (columns 1 and 4 of the header). "
        "Rename or delete one of them, so it is clear which one to read."]


def test_impossible_as_of_is_an_error_line(tmp_path):
    path = counts_file(tmp_path, ["1"])
    assert error_lines(read_events, path, as_of="2024-02-30") == [
        "column 'as_of': impossible calendar date. Got '2024-02-30'; write it as YYYY-MM-DD."]


def test_panel_written_by_build_panel_reads_back_identically(tmp_path):
    ev = _events(["2024-01-03", "2024-02-10", "2024-02-11", "2024-04-30"])
    p = quiet(build_panel, ev, as_of="2024-04-30", provinces={"Tajikistan": ["Sughd"]})
    p.to_csv(tmp_path / "panel.csv", index=False)
    back = load_panel(tmp_path / "panel.csv")
    pd.testing.assert_frame_equal(back, p.reset_index(drop=True), check_like=False, check_dtype=True)


def test_rows_longer_than_the_header_are_named_not_shifted(tmp_path):
    text = "date,province,event_type\n2024-01-01,Khatlon,clash\n2024-01-02,Khatlon,clash,extra,more\n"
    assert error_lines(read_events, write(tmp_path, text)) == [
        "events.csv: column '<file>': more fields than the header's 3; in 1 row (3). "
        "Quote fields that contain the separator ',', or remove the extra separators."]


def test_old_mac_line_endings_are_read(tmp_path):
    ev = quiet(read_events, write(tmp_path, "date,province,event_type\r2024-01-01,Khatlon,clash\r"))
    assert ev["province"].tolist() == ["Khatlon"]


# -- no traceback on any text or bytes -------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CELL = st.text(alphabet=st.sampled_from(list("0123456789-+.eE:T /,;\t\"'=@xX\u0445\uff11\x00\r\n ")), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(CELL, CELL, CELL, CELL), max_size=6), raw=st.binary(max_size=64),
       use_raw=st.booleans(), header=st.sampled_from(["date,province,event_type,count", "unique_id,ds,y,exposure"]))
def test_any_file_is_read_or_refused_with_error_lines(tmp_path, rows, raw, use_raw, header):
    body = raw if use_raw else (header + "\n"
                                + "".join(",".join(r) + "\n" for r in rows)).encode("utf-8")
    path = write(tmp_path, body, "fuzz.csv")
    for reader in (read_events, load_panel):
        try:
            quiet(reader, path, as_of="2262-04-11")
        except DataValidationError as err:
            assert err.lines() and all(line.startswith(("fuzz.csv: ", "panel: ", "column ")) for line in err.lines())
        except ConfigError:
            pass


def test_control_characters_in_names_never_split_the_error_line(tmp_path):
    # str.splitlines breaks on \x0b, \x1c and \u2028: found by the fuzz test above.
    lines = error_lines(read_events, write(tmp_path, "da\x0bte,prov\u2028ince\n1,2\n"))
    assert len(lines) == 1 and "Columns found: da\\x0bte, prov\\u2028ince." in lines[0]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_blank_lines_do_not_shift_row_numbers(tmp_path, newline):
    lines = ["date,province,event_type,count", "2024-01-01,Khatlon,clash,1", "", "2024-01-02,Khatlon,clash,-1",
             '2024-01-03,"Khat', 'lon",clash,1', "", "", "2024-01-04,Khatlon,clash,1.5", ""]
    assert error_lines(read_events, write(tmp_path, newline.join(lines)))[0].split("; ")[1] == "in 2 rows (4, 8)"
    panel = ["unique_id,ds,y", "A,2024-01-01,1", "", "A,2024-02-01,x"]
    assert "in 1 row (4)" in error_lines(load_panel, write(tmp_path, newline.join(panel), "p.csv"))[0]


def test_cli_predict_past_2262_is_one_error_line_and_no_file(tmp_path):
    ds = pd.date_range("2259-01-01", periods=36, freq="MS").strftime("%Y-%m-%d")
    text = "unique_id,ds,y\n" + "".join(f"A,{d},{i % 3}\n" for i, d in enumerate(ds))
    path = write(tmp_path, text, "late.csv")
    res = CliRunner().invoke(app, ["predict", str(path), "--model", "climatology", "--horizon", "12",
                                   "--out", str(tmp_path / "f.csv")])
    assert res.exit_code == 1, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "would pass 2262-04-11, the last date supported" in errors[0]
    assert "shorter horizon" in errors[0] and not (tmp_path / "f.csv").exists()
    ok = CliRunner().invoke(app, ["predict", str(path), "--model", "climatology", "--horizon", "3",
                                  "--out", str(tmp_path / "g.csv")])
    assert ok.exit_code == 0, ok.output
    assert pd.read_csv(tmp_path / "g.csv")["ds"].max() == "2262-03-01"


def test_fullwidth_digits_are_refused_in_dates_as_in_counts(tmp_path):
    text = ("date,province,event_type\n\uff12\uff10\uff12\uff14-01-05,Khatlon,clash\n"
            "\uff11\uff15.03.2024,Khatlon,clash\n")
    lines = error_lines(read_events, write(tmp_path, text))
    assert len(lines) == 1 and "unparseable or missing date; in 2 rows (2, 3)" in lines[0]


@pytest.mark.parametrize("text", ["2024-01-05", "2024-1-5", "20240105", "2024/01/05", "2024-01-05T10",
                                  "2024-01-05 10:00", "2024-01-05T10:00:00.123+05:30", "2024-01-05T10:00:00+0530",
                                  "05.01.2024", "05/01/2024", "5 January 2024", "5 Jan 2024"])
def test_date_forms_read_before_keep_being_read(tmp_path, text):
    ev = quiet(read_events, write(tmp_path, f"date,province,event_type\n{text},Khatlon,clash\n"))
    assert ev["date"].tolist() == [pd.Timestamp("2024-01-05")]


def test_a_month_without_day_counts_on_its_first_day_as_before(tmp_path):
    ev = quiet(read_events, write(tmp_path, "date,province,event_type\n2024-03,Khatlon,clash\n"))
    assert ev["date"].tolist() == [pd.Timestamp("2024-03-01")]


def test_panel_csv_problems_name_provinces_when_the_panel_has_them(tmp_path):
    text = ("unique_id,ds,y,country,province,event_type\nT/Khatlon/clash,2024-01-01,2,T,Khatlon,clash\n"
            "T/Sughd/clash,2024-01-01,-4,T,Sughd,clash\n")
    assert error_lines(load_panel, write(tmp_path, text, "p.csv")) == [
        f"p.csv: column 'y': not a whole number from 0 to {MAX_PANEL_COUNT}; in 1 row (3); provinces: Sughd. "
        "Values found: '-4'. Write counts as whole numbers >= 0 with the digits 0-9."]


@pytest.mark.parametrize("value", [np.inf, 1e300, float(2**63)])
def test_in_memory_panels_with_huge_counts_are_refused_not_wrapped(value):
    from forecast.models.series import PanelData
    from forecast.schema import check_panel

    panel = pd.DataFrame({"unique_id": "A", "ds": pd.date_range("2024-01-01", periods=4, freq="MS"),
                          "y": [1.0, 2.0, value, 0.0]})
    for check in (check_panel, PanelData.from_frame):
        with pytest.raises(DataValidationError, match=rf"count \(or above {MAX_PANEL_COUNT}\); in 1 row \(3\)"):
            check(panel)


def test_hostile_names_survive_write_csv_then_read_events_and_load_panel(tmp_path):
    """run -> panel.csv -> backtest keeps the same ids: the writer's guard is what the readers take off."""
    from forecast.outputs import write_csv
    from forecast.panel import build_panel

    names = ["=HYPERLINK(1)", "-Kunduz", "+P", "@x", "\tTab", "'Amran", "Khatlon"]
    ev = pd.DataFrame({"event_id": [f"=id{i}" for i in range(len(names))], "date": "2024-01-05",
                       "country": "Tajikistan", "province": names, "event_type": "armed_clash", "count": 1,
                       "fatalities": [-0.0 + i for i in range(len(names))]})
    write_csv(ev, tmp_path / "ev.csv", index=False)
    raw = (tmp_path / "ev.csv").read_text()
    assert "'=HYPERLINK(1)" in raw and "'-Kunduz" in raw and ",'Amran," in raw
    back = quiet(read_events, tmp_path / "ev.csv", "native")
    assert sorted(back["event_id"]) == sorted(ev["event_id"])
    panel = build_panel(back, "month", as_of="2024-01-31")
    write_csv(panel, tmp_path / "panel.csv", index=False, date_format="%Y-%m-%d")
    again = load_panel(tmp_path / "panel.csv")
    assert sorted(again["unique_id"]) == sorted(panel["unique_id"])
    assert sorted(again["province"]) == sorted(panel["province"])
