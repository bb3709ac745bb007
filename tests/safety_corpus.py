"""Build the corpus of broken and hostile inputs that ``tests/test_safety.py`` runs.

Each :class:`Case` is a small folder of files (written by :func:`materialise`) and
one ``forecast`` command line run in that folder. The expectations are what a
user is promised: the exit code, a phrase of the one-line message, never a
traceback or a hang, and no file outside the output changed.

Run as a script to write every case into a folder for trying by hand::

    python tests/safety_corpus.py /tmp/corpus
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HEADER = "event_id,date,country,province,event_type,count,fatalities\n"


@dataclass(frozen=True)
class Case:
    """One hostile input and what the CLI must do with it.

    ``files`` maps a path relative to the case folder to its bytes; ``argv`` is the
    command after ``forecast``; ``code`` the exit code; every phrase in ``says``
    must appear (case-insensitive) in stderr; ``out`` names the output the command
    may create or change (everything else in the folder must stay byte-identical).
    """

    name: str
    files: dict[str, bytes]
    argv: tuple[str, ...]
    code: int
    says: tuple[str, ...] = ()
    out: str | None = None
    keep: tuple[str, ...] = field(default_factory=tuple)  # files that must survive inside ``out``


def _log(rows: list[str], header: str = HEADER) -> bytes:
    return (header + "".join(r + "\n" for r in rows)).encode("utf-8")


def _row(i: int = 1, date: str = "2024-01-05", province: str = "Khatlon", count: str = "1",
         fatalities: str = "0", event_type: str = "armed_clash", country: str = "Tajikistan") -> str:
    return f"E{i},{date},{country},{province},{event_type},{count},{fatalities}"


def good_log(n_months: int = 48, seed: int = 1) -> bytes:
    """A small valid log: three Tajik provinces, ``n_months`` months from 2020-01."""
    rng = np.random.default_rng(seed)
    rows, i = [], 0
    for m in range(n_months):
        year, month = 2020 + m // 12, m % 12 + 1
        for prov, rate in (("Khatlon", 2.0), ("Sughd", 0.7), ("GBAO", 0.3)):
            for _ in range(rng.poisson(rate)):
                i += 1
                rows.append(_row(i, f"{year}-{month:02d}-{rng.integers(1, 28):02d}", prov))
    return _log(rows)


def _panel(rows: list[str]) -> bytes:
    return ("unique_id,ds,y\n" + "".join(r + "\n" for r in rows)).encode("utf-8")


def good_panel_rows(n: int = 36) -> list[str]:
    rng = np.random.default_rng(2)
    return [f"{uid},{2020 + m // 12}-{m % 12 + 1:02d}-01,{rng.poisson(lam)}"
            for uid, lam in (("a", 2.0), ("b", 0.5)) for m in range(n)]


def _config(events: str = "events.csv", out: str = "out", extra: str = "") -> bytes:
    return (f'[data]\nevents = "{events}"\nas_of = "2023-12-31"\n\n'
            '[models]\ncandidates = ["climatology"]\nbaseline = "climatology"\n\n'
            "[backtest]\nhorizon = 2\norigins = 2\n\n"
            "[forecast]\nhorizon = 2\n\n"
            f'[output]\ndir = "{out}"\n' + extra).encode("utf-8")


def cases() -> list[Case]:
    """Every case of the corpus (at least 40)."""
    v = ("validate", "events.csv")
    c: list[Case] = []

    def ev(name, rows, code, *says, header=HEADER, argv=v):
        c.append(Case(name, {"events.csv": _log(rows, header)}, argv, code, says))

    # Counts: whole numbers 0..10**7, checked before any cast.
    for name, val in [("count_1e300", "1e300"), ("count_inf", "inf"), ("count_minus_inf", "-inf"),
                      ("count_2pow63", str(2**63)), ("count_negative", "-1"), ("count_fraction", "1.5"),
                      ("count_nan_text", "NaN"), ("count_over_max", "10000001"), ("count_hex", "0x10"),
                      ("count_word", "three")]:
        ev(name, [_row(1), _row(2, count=val)], 1, "count", "3")
    ev("fatalities_1e300", [_row(1, fatalities="1e300")], 1, "fatalities", "2")
    ev("count_whole_float_ok", [_row(1, count="3.0"), _row(2, count="1e3")], 0, "")
    # Dates.
    ev("date_feb_30", [_row(1), _row(2, date="2024-02-30")], 1, "date", "3")
    ev("date_before_1678", [_row(1), _row(2, date="1677-12-31")], 1, "date", "1678-01-01")
    ev("date_after_2262", [_row(1), _row(2, date="2263-01-01")], 1, "date", "2262-04-11")
    ev("date_excel_serial", [_row(1), _row(2, date="45291")], 1, "date", "3")
    ev("date_mixed_utc_offsets", [_row(1, date="2024-01-05T23:30:00+05:00"),
                                  _row(2, date="2024-01-06T01:00:00-08:00")], 0, "")
    ev("date_empty", [_row(1, date="")], 1, "date")
    ev("date_garbage", [_row(1, date="yesterday")], 1, "date", "2")
    # Header and file shape.
    ev("duplicate_column", [_row(1) + ",2024-01-05"], 1, "date",
       header="event_id,date,country,province,event_type,count,fatalities,date\n")
    ev("unrecognised_columns", ["1,2"], 1, "column", header="a,b\n")
    c.append(Case("empty_file", {"events.csv": b""}, v, 1, ("events.csv",)))
    c.append(Case("header_only", {"events.csv": HEADER.encode()}, v, 1, ("events.csv",)))
    c.append(Case("whitespace_only", {"events.csv": b"\n \n\t\n"}, v, 1, ("events.csv",)))
    c.append(Case("random_bytes", {"events.csv": bytes(np.random.default_rng(3).integers(0, 256, 4000,
                                                                                         dtype=np.uint8))},
                  v, 1, ("events.csv",)))
    c.append(Case("nul_bytes", {"events.csv": _log([_row(1)]).replace(b"Khatlon", b"Khat\x00lon")}, v, 1,
                  ("events.csv",)))
    c.append(Case("fake_parquet", {"events.parquet": b"not parquet at all\n"}, ("validate", "events.parquet"),
                  1, ("events.parquet",)))
    c.append(Case("utf16_file", {"events.csv": _log([_row(1)]).decode().encode("utf-16")}, v, 0))
    c.append(Case("latin1_names", {"events.csv": _log([_row(1, province="Khatlon"),
                                                       _row(2, province="Duschanbé")]).decode().encode("latin-1")},
                  v, 1, ("utf-8", "line 3")))
    c.append(Case("missing_file", {}, v, 1, ("events.csv",)))
    c.append(Case("input_is_a_folder", {"events.csv/x.txt": b"x"}, v, 1, ("events.csv",)))
    c.append(Case("huge_field", {"events.csv": _log([_row(1, province="K" * 1_000_000)])}, v, 0))
    # Event ids.
    ev("id_repeat_conflicting", [_row(1), _row(1, date="2024-02-01")], 1, "event_id", "3")
    ev("id_repeat_identical", [_row(1), _row(1)], 0, "")
    # Hostile names stay text: no forged error line, no crash.
    ev("name_with_newline", ['E1,2024-01-05,Tajikistan,"Khat\nerror: forged",armed_clash,1,0'], 0, "")
    ev("name_with_escape_codes", [_row(1, province="Khat\x1b[31mlon")], 0, "")
    # CLI arguments.
    c.append(Case("as_of_feb_30", {"events.csv": good_log(6)}, ("validate", "events.csv", "--as-of", "2025-02-30"),
                  2, ("2025-02-30",)))
    c.append(Case("seed_negative", {"events.csv": good_log(6)},
                  ("predict", "events.csv", "--model", "climatology", "--seed", "-1", "--out", "f.csv"), 2))
    c.append(Case("unknown_model", {"events.csv": good_log(24)},
                  ("predict", "events.csv", "--model", "no_such_model", "--out", "f.csv"), 1, ("no_such_model",)))
    # Panel CSVs: y whole 0..10**9, CSV rows named.
    rows = good_panel_rows()
    pred = ("predict", "panel.csv", "--model", "climatology", "--horizon", "2", "--out", "f.csv")
    for name, val in [("panel_y_1e300", "1e300"), ("panel_y_negative", "-1"), ("panel_y_fraction", "0.5"),
                      ("panel_y_over_max", "1000000001")]:
        bad = rows[:4] + [rows[4].rsplit(",", 1)[0] + "," + val] + rows[5:]
        c.append(Case(name, {"panel.csv": _panel(bad)}, pred, 1, ("y", "6")))
    # Issue 12: an empty y in a panel CSV is a missing count (not a zero, not an error).
    gap = rows[:4] + [rows[4].rsplit(",", 1)[0] + ","] + rows[5:]
    c.append(Case("panel_y_empty_is_missing", {"panel.csv": _panel(gap)}, pred, 0, (), "f.csv"))
    # The largest count a panel may hold: fitted without building a table as long as the count.
    big = rows[:4] + [rows[4].rsplit(",", 1)[0] + ",1000000000"] + rows[5:]
    for model in ("climatology", "negbin_glm", "zinb", "ingarch"):
        c.append(Case(f"panel_y_1e9_{model}", {"panel.csv": _panel(big)},
                      ("predict", "panel.csv", "--model", model, "--horizon", "2", "--out", "f.csv"), 0))
    c.append(Case("panel_ds_garbage", {"panel.csv": _panel(rows[:2] + ["a,someday,1"] + rows[2:])}, pred, 1,
                  ("ds",)))
    c.append(Case("panel_duplicate_period", {"panel.csv": _panel(rows + rows[:1])}, pred, 1, ("a",)))
    c.append(Case("horizon_past_2262", {"panel.csv": _panel(rows)},
                  ("predict", "panel.csv", "--model", "climatology", "--horizon", "3000", "--out", "f.csv"), 1,
                  ("2262",)))
    # Nothing to forecast from.
    c.append(Case("panel_of_events_outside_coverage", {"events.csv": good_log(6)},
                  ("panel", "events.csv", "--as-of", "2019-06-30", "--out", "p.csv"), 1, ()))
    # Outputs never destroy what is not ours.
    user = {"events.csv": good_log(24), "mine/notes.txt": b"my thesis\n"}
    c.append(Case("panel_out_is_user_folder", user, ("panel", "events.csv", "--out", "mine", "--force"), 1,
                  ("mine",)))
    c.append(Case("panel_out_missing_parent", {"events.csv": good_log(6)},
                  ("panel", "events.csv", "--out", "nowhere/p.csv"), 1, ("nowhere",)))
    bt = ("backtest", "events.csv", "--models", "climatology", "--horizon", "1", "--origins", "2", "--quiet")
    c.append(Case("backtest_force_onto_user_folder", user, bt + ("--out", "mine", "--force"), 1, ("mine",)))
    c.append(Case("backtest_force_onto_cwd", {"events.csv": good_log(24), "notes.txt": b"keep\n"},
                  bt + ("--out", ".", "--force"), 1, ()))
    c.append(Case("backtest_force_onto_git_clone", {"events.csv": good_log(24), "repo/.git/HEAD": b"ref\n",
                                                    "repo/code.py": b"x = 1\n"},
                  bt + ("--out", "repo", "--force"), 1, ("repo",)))
    c.append(Case("report_on_user_folder", {"mine/notes.txt": b"keep\n"}, ("report", "mine"), 1, ("mine",)))
    c.append(Case("run_force_onto_folder_holding_config", {"events.csv": good_log(48),
                                                           "config.toml": _config(out=".")},
                  ("run", "config.toml", "--force", "--quiet"), 1, ()))
    c.append(Case("run_out_user_folder", {"events.csv": good_log(48), "config.toml": _config(out="mine"),
                                          "mine/notes.txt": b"keep\n"},
                  ("run", "config.toml", "--force", "--quiet"), 1, ("mine",)))
    c.append(Case("init_over_existing_file", {"config.toml": b"# mine\n"}, ("init", "config.toml"), 1,
                  ("config.toml",)))
    # Config files.
    c.append(Case("config_not_toml", {"config.toml": b"[data\nevents = \n"}, ("run", "config.toml"), 1,
                  ("config.toml",)))
    c.append(Case("config_unknown_key", {"events.csv": good_log(48),
                                         "config.toml": _config(extra="[forecast]\nhorizn = 3\n")},
                  ("run", "config.toml"), 1, ()))
    c.append(Case("config_missing_events", {"config.toml": _config(events="nope.csv")}, ("run", "config.toml"),
                  1, ("nope.csv",)))
    # A hostile-named province through a whole run: drawn literally, escaped in CSV, exit 0.
    hostile = good_log(48).decode().replace("GBAO", "$\\undefinedmacro$").replace("Sughd", "=HYPERLINK(1)")
    c.append(Case("run_hostile_names", {"events.csv": hostile.encode(), "config.toml": _config()},
                  ("run", "config.toml", "--quiet"), 0, out="out"))
    return c


def materialise(case: Case, folder: Path) -> None:
    """Write the files of ``case`` under ``folder``."""
    for rel, data in case.files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "safety_corpus")
    for case in cases():
        (root / case.name).mkdir(parents=True, exist_ok=True)
        materialise(case, root / case.name)
        (root / case.name / "COMMAND").write_text("forecast " + " ".join(case.argv) + "\n")
    print(f"wrote {len(cases())} cases into {root}")
