"""Run configuration (TOML): strict validation, path resolution, overrides, starter file."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from forecast.config import (
    OVERRIDES,
    RunConfig,
    config_from_dict,
    load_config,
    starter_text,
    write_starter,
)
from forecast.exceptions import ConfigError, OutputExistsError

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "border_sim_events.csv"


@pytest.fixture
def project(tmp_path):
    """A folder with an events file at data/events.csv; returns (folder, events path)."""
    (tmp_path / "data").mkdir()
    ev = tmp_path / "data" / "events.csv"
    ev.write_text("date,province,event_type\n2024-01-03,Khatlon,clash\n", encoding="utf-8")
    return tmp_path, ev


def write(folder: Path, text: str, name: str = "config.toml") -> Path:
    p = folder / name
    p.write_text(text, encoding="utf-8")
    return p


def problems(excinfo) -> list[str]:
    return str(excinfo.value).splitlines()


# --- starter -------------------------------------------------------------------------------

def test_starter_round_trips_with_the_events_file_present(tmp_path):
    cfg_path = write_starter(tmp_path / "config.toml")
    (tmp_path / "data").mkdir()
    shutil.copy(SAMPLE, tmp_path / "data" / "border_sim_events.csv")
    cfg = load_config(cfg_path)
    assert cfg.path == cfg_path.resolve()
    assert cfg.data.events == (tmp_path / "data" / "border_sim_events.csv").resolve()
    # The starter states the defaults: it loads to the same config as one naming only the events file.
    minimal = config_from_dict({"data": {"events": "data/border_sim_events.csv"}}, base_dir=tmp_path)
    assert dataclasses.replace(cfg, path=None) == minimal


def test_starter_without_its_events_file_names_the_resolved_path(tmp_path):
    cfg_path = write_starter(tmp_path / "config.toml")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_path)
    assert str((tmp_path / "data" / "border_sim_events.csv").resolve()) in str(err.value)
    # ... and the --events flag repairs it (overrides apply before validation)
    assert load_config(cfg_path, overrides={"events": str(SAMPLE)}).data.events == SAMPLE


def test_starter_documents_every_key_with_a_comment():
    from forecast.config import CHECKS

    commented: dict[tuple[str, str], bool] = {}
    section, previous = "", ""
    for line in starter_text().splitlines():
        if line.startswith("["):
            section = line.strip("[] ")
        elif " = " in line and not line.startswith("#"):
            commented[(section, line.split(" = ")[0])] = previous.startswith("#")
        previous = line
    expected = {(sec, key) for sec, keys in CHECKS.items() for key in keys}
    assert set(commented) == expected  # every key, each in its own section, nothing else
    assert all(commented.values()), [k for k, ok in commented.items() if not ok]
    assert "[event_types]" in starter_text()


def test_write_starter_refuses_to_overwrite_without_force(tmp_path):
    p = write(tmp_path, "# my edited config\n")
    with pytest.raises(OutputExistsError):
        write_starter(p)
    assert p.read_text() == "# my edited config\n"
    write_starter(p, force=True)
    assert p.read_text() == starter_text()


# --- paths ---------------------------------------------------------------------------------

def test_relative_paths_resolve_against_the_config_folder(project, tmp_path, monkeypatch):
    folder, ev = project
    sub = folder / "configs"
    sub.mkdir()
    (folder / "aliases.csv").write_text("country,province,alias\nTajikistan,Sughd,Sogdiana\n")
    (sub / "mine.toml").write_text('model = "climatology"\nwindow = 12\n')
    cfg_path = write(sub, '[data]\nevents = "../data/events.csv"\ngazetteer = "../aliases.csv"\n'
                          '[models]\ncandidates = ["mine.toml", "zip"]\n[output]\ndir = "out/run1"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory must not matter
    cfg = load_config(cfg_path)
    assert cfg.data.events == ev.resolve()
    assert cfg.data.gazetteer == (folder / "aliases.csv").resolve()
    assert cfg.output.dir == (sub / "out" / "run1").resolve()
    assert cfg.models.candidates == ("climatology", (sub / "mine.toml").resolve(), "zip")
    assert list(cfg.models.labelled()) == ["climatology", "mine", "zip"]
    assert all(Path(p).is_absolute() for p in (cfg.data.events, cfg.output.dir))


def test_models_folder_beside_the_config_wins_over_bundled_specs(project):
    folder, _ = project
    (folder / "models").mkdir()
    (folder / "models" / "climatology.toml").write_text('model = "climatology"\nwindow = 7\n')
    cfg = load_config(write(folder, '[data]\nevents = "data/events.csv"\n'))
    assert cfg.models.candidates[0] == (folder / "models" / "climatology.toml").resolve()
    assert cfg.models.baseline == "climatology"


# --- unknown keys and sections -------------------------------------------------------------

def test_unknown_key_is_named_with_the_nearest_valid_one(project):
    folder, _ = project
    p = write(folder, '[data]\nevents = "data/events.csv"\n[backtest]\nhorizn = 6\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    (line,) = problems(err)
    assert "[backtest] unknown key 'horizn'" in line
    assert "did you mean 'horizon'?" in line
    assert "refit_every" in line  # the allowed keys are listed


def test_unknown_section_and_misplaced_key(project):
    folder, _ = project
    p = write(folder, 'seed = 3\n[data]\nevents = "data/events.csv"\njobs = 2\n[modles]\nbaseline = "zip"\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "unknown section [modles] (did you mean [models]?)" in msg
    assert "unknown top-level key 'seed' (did you mean [run] seed?)" in msg
    assert "[data] unknown key 'jobs'" in msg and "belongs in [run]" in msg
    assert len(problems(err)) == 3


def test_several_problems_are_reported_at_once_one_line_each(project):
    folder, _ = project
    p = write(folder, '[data]\nevents = "data/events.csv"\nfreq = "fortnight"\n'
                      '[backtest]\nhorizon = "6"\nwindow = 0\n[run]\njobs = 0\nquiet = "no"\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    lines = problems(err)
    assert len(lines) == 5
    assert all(line.startswith(f"{p.resolve()}: ") for line in lines)
    assert any("[backtest] horizon must be an int >= 1. Got '6' instead." in ln for ln in lines)
    assert any("[data] freq must be 'month'" in ln and "'fortnight'" in ln for ln in lines)
    assert any("[backtest] window must be 'expanding' or an int >= 1" in ln for ln in lines)
    assert any("[run] jobs must be an int >= 1. Got 0 instead." in ln for ln in lines)
    assert any("[run] quiet must be true or false" in ln for ln in lines)


@pytest.mark.parametrize("section,key,value,expect", [
    ("data", "schema", "acled2", "one of 'auto', 'native', 'acled', 'ucdp'"),
    ("data", "value", "deaths", "one of 'events', 'fatalities'"),
    ("data", "max_location_precision", "province", "one of 'point'"),
    ("data", "as_of", "31.12.2025", "a date written YYYY-MM-DD"),
    ("data", "as_of", "2025-02-30", "a date written YYYY-MM-DD"),
    ("data", "as_of", "1677-12-31", "a date from 1678-01-01 to 2262-04-11"),
    ("data", "coverage", ["2020-01-01", "2263-01-01"], "a date from 1678-01-01 to 2262-04-11"),
    ("data", "coverage", ["2025-01-01"], "[start, end]"),
    ("data", "coverage", ["2025-06-01", "2025-01-01"], "start <= end"),
    ("data", "countries", "Tajikistan", "a list of names"),
    ("data", "events", 3, "a file path"),
    ("data", "schema", "", "one of 'auto'"),
    ("data", "dayfirst", 0, "true or false"),
    ("output", "dir", "", "a folder path"),
    ("models", "baseline", " ", "a model spec name"),
    ("models", "selection", "best", "one of 'auto', 'series', 'event_type', 'global', 'ensemble'"),
    ("models", "alpha", 0, "a number between 0 and 1"),
    ("models", "candidates", [], "a non-empty list"),
    ("backtest", "origins", 0, "an int >= 1"),
    ("backtest", "step", 1.5, "an int >= 1"),
    ("forecast", "levels", [50, 100], "percentages between 0 and 100"),
    ("forecast", "thresholds", [0, 5], "ints >= 1"),
    ("forecast", "alert_probability", 1.0, "between 0 and 1"),
    ("output", "force", "yes", "true or false"),
    ("run", "seed", -1, "an int >= 0"),
    ("run", "seed", True, "an int >= 0"),
])
def test_wrong_types_and_enum_values(project, section, key, value, expect):
    folder, _ = project
    doc = {"data": {"events": "data/events.csv"}}
    doc.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError) as err:
        config_from_dict(doc, base_dir=folder)
    (line,) = problems(err)
    assert line.startswith(f"[{section}] {key} must be ")
    assert expect in line and f"Got {value!r} instead." in line


def test_good_values_of_every_kind_are_accepted(project):
    folder, ev = project
    cfg = config_from_dict({
        "data": {"events": str(ev), "schema": "native", "as_of": dt.date(2025, 12, 31), "freq": "W-SUN",
                 "coverage": {"Tajikistan": ["2012-01-01", "2025-12-01"]}, "provinces": {"Tajikistan": ["Khatlon"]},
                 "max_date_precision": "month", "value": "fatalities", "dayfirst": False},
        "event_types": {"Battles": "clash"},
        "models": {"candidates": ["negbin_glm"], "baseline": "climatology", "selection": "global", "alpha": 0.01},
        "backtest": {"horizon": 12, "window": 60, "origins": 24, "step": 2, "refit_every": 3},
        "forecast": {"horizon": 3, "levels": [95, 50], "thresholds": [5, 1, 10]},
        "run": {"seed": 7, "jobs": 4, "quiet": True},
    }, base_dir=folder)
    assert cfg.data.coverage == {"Tajikistan": (dt.date(2012, 1, 1), dt.date(2025, 12, 1))}
    assert cfg.data.as_of == dt.date(2025, 12, 31) and cfg.data.freq == "W-SUN"
    assert cfg.models.candidates == ("climatology", "negbin_glm")  # the baseline joins the candidates
    assert cfg.forecast.levels == (50, 95) and cfg.forecast.thresholds == (1, 5, 10)
    assert cfg.event_types == {"Battles": "clash"} and cfg.backtest.window == 60


def test_missing_events_key_and_missing_file(project):
    folder, _ = project
    with pytest.raises(ConfigError) as err:
        config_from_dict({"run": {"seed": 1}}, base_dir=folder)
    assert len(problems(err)) == 1 and "[data] events is required" in str(err.value)
    p = write(folder / "data", '[data]\nevents = "missing/log.csv"\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert str((folder / "data" / "missing" / "log.csv").resolve()) in str(err.value)
    # a missing gazetteer, and a folder where a file belongs, are reported the same way
    with pytest.raises(ConfigError) as err:
        config_from_dict({"data": {"events": "data", "gazetteer": "aliases.csv"}}, base_dir=folder)
    assert problems(err) == [
        f"[data] events: file {(folder / 'data').resolve()} not found (relative paths are read from {folder}).",
        f"[data] gazetteer: file {(folder / 'aliases.csv').resolve()} not found "
        f"(relative paths are read from {folder}).",
    ]


def test_toml_syntax_error_gives_the_line(project):
    folder, _ = project
    p = write(folder, '[data]\nevents = "data/events.csv"\nhorizon = \n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert "not valid TOML" in str(err.value) and "line 3" in str(err.value)
    with pytest.raises(ConfigError, match="not found"):
        load_config(folder / "nope.toml")


def test_unknown_model_name_suggests_the_nearest_spec(project):
    folder, _ = project
    p = write(folder, '[data]\nevents = "data/events.csv"\n[models]\ncandidates = ["negbin_glmm", "climatology"]\n'
                      'baseline = "climatolgy"\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    lines = problems(err)
    assert len(lines) == 2
    assert any("[models] candidates" in ln and "'negbin_glmm'" in ln and "Did you mean 'negbin_glm'?" in ln
               for ln in lines)
    assert any("[models] baseline" in ln and "Did you mean 'climatology'?" in ln for ln in lines)


def test_a_bad_spec_file_is_reported(project):
    folder, _ = project
    (folder / "bad.toml").write_text('model = "climatology"\nwindows = 3\n')
    with pytest.raises(ConfigError, match=r"\[models\] candidates: .*unknown key 'windows'"):
        config_from_dict({"data": {"events": "data/events.csv"}, "models": {"candidates": ["bad.toml"]}},
                         base_dir=folder)


def test_backtest_horizon_must_cover_the_forecast_horizon(project):
    folder, _ = project
    with pytest.raises(ConfigError, match=r"\[backtest\] horizon \(3\) must be at least \[forecast\] horizon \(6\)"):
        config_from_dict({"data": {"events": "data/events.csv"}, "backtest": {"horizon": 3}}, base_dir=folder)


# --- overrides and serialisation -----------------------------------------------------------

def test_overrides_take_precedence(project, tmp_path, monkeypatch):
    folder, _ = project
    cfg = load_config(write(folder, '[data]\nevents = "data/events.csv"\n[run]\nseed = 1\n'))
    monkeypatch.chdir(tmp_path)
    new = cfg.with_overrides(horizon=3, out="x", seed=2, jobs=2, force=True, quiet=True, origins=4,
                             models="zip,negbin_glm", as_of=None)
    assert cfg.with_overrides(countries="Tajikistan, Afghanistan").data.countries == ("Tajikistan", "Afghanistan")
    assert (new.forecast.horizon, new.backtest.horizon, new.backtest.origins) == (3, 3, 4)
    assert new.output.dir == (tmp_path / "x").resolve()  # a flag's path is read from the working directory
    assert (new.run.seed, new.run.jobs, new.run.quiet, new.output.force) == (2, 2, True, True)
    assert new.models.candidates == ("climatology", "zip", "negbin_glm")
    assert new.path == cfg.path and new.data == cfg.data  # None means "flag not given"
    assert cfg.run.seed == 1 and cfg.forecast.horizon == 6  # the original is unchanged


def test_overrides_are_validated_and_unknown_ones_error(project):
    folder, _ = project
    cfg = config_from_dict({"data": {"events": "data/events.csv"}}, base_dir=folder)
    with pytest.raises(ConfigError) as err:
        cfg.with_overrides(horizn=3, seed=1)
    assert "unknown override 'horizn' (did you mean 'horizon'?)" in str(err.value)
    with pytest.raises(ConfigError, match=r"\[run\] jobs must be an int >= 1"):
        cfg.with_overrides(jobs=0)
    assert set(OVERRIDES) >= {"horizon", "out", "seed", "jobs", "force", "quiet", "origins", "events", "models"}


def test_to_dict_is_json_serialisable_and_round_trips(project):
    folder, ev = project
    (folder / "mine.toml").write_text('model = "zip"\n')
    cfg = config_from_dict({"data": {"events": "data/events.csv", "as_of": "2025-12-31",
                                     "coverage": ["2012-01-01", "2025-12-01"]},
                            "models": {"candidates": [str(folder / "data" / ".." / "mine.toml")]}}, base_dir=folder)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["data"]["events"] == str(ev.resolve())
    assert d["data"]["as_of"] == "2025-12-31" and d["data"]["coverage"] == ["2012-01-01", "2025-12-01"]
    assert d["models"]["candidates"] == ["climatology", str((folder / "mine.toml").resolve())]
    assert set(d) == {"path", "data", "event_types", "models", "backtest", "forecast", "output", "run", "report"}
    d.pop("path")
    assert config_from_dict(d, base_dir=folder) == cfg


def test_run_config_is_frozen(project):
    folder, _ = project
    cfg = config_from_dict({"data": {"events": "data/events.csv"}}, base_dir=folder)
    assert isinstance(cfg, RunConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.run.seed = 3  # type: ignore[misc]


# --- [run] dask ----------------------------------------------------------------------------

def test_dask_address_is_read_stripped_and_empty_means_local(project):
    folder, _ = project
    cfg = load_config(write(folder, '[data]\nevents = "data/events.csv"\n[run]\njobs = 2\n'
                                    'dask = " tcp://10.0.0.5:8786 "\n'))
    assert (cfg.run.dask, cfg.run.jobs) == ("tcp://10.0.0.5:8786", 2)
    assert cfg.to_dict()["run"]["dask"] == "tcp://10.0.0.5:8786"
    assert load_config(write(folder, '[data]\nevents = "data/events.csv"\n[run]\ndask = ""\n')).run.dask is None
    assert load_config(write(folder, '[data]\nevents = "data/events.csv"\n')).run.dask is None


@pytest.mark.parametrize("value", ['"localhost"', '"http://host:8786"', '"tcp://host"', "8786", "true"])
def test_a_malformed_dask_address_is_one_line_saying_the_form(project, value):
    folder, _ = project
    p = write(folder, f'[data]\nevents = "data/events.csv"\n[run]\ndask = {value}\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    (line,) = problems(err)
    assert "[run] dask must be a Dask scheduler address such as 'tcp://host:8786', or '' (run on this machine)" in line
    assert line.endswith(" instead.")


def test_misspelt_or_misplaced_dask_key_gets_a_suggestion(project):
    folder, _ = project
    with pytest.raises(ConfigError) as err:
        load_config(write(folder, '[data]\nevents = "data/events.csv"\n[run]\ndsak = "tcp://h:8786"\n'))
    assert "[run] unknown key 'dsak' (did you mean 'dask'?); allowed: seed, jobs, dask, quiet." in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(write(folder, 'dask = "tcp://h:8786"\n[data]\nevents = "data/events.csv"\n'))
    assert "unknown top-level key 'dask' (did you mean [run] dask?)" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(write(folder, '[data]\nevents = "data/events.csv"\n[backtest]\ndask = "tcp://h:8786"\n'))
    assert "[backtest] unknown key 'dask'" in str(err.value) and "belongs in [run]" in str(err.value)


def test_dask_override_sets_validates_and_clears(project):
    folder, _ = project
    cfg = load_config(write(folder, '[data]\nevents = "data/events.csv"\n[run]\ndask = "tcp://h:8786"\n'))
    assert "dask" in OVERRIDES
    assert cfg.with_overrides(dask="tls://other:9000").run.dask == "tls://other:9000"
    assert cfg.with_overrides(dask=None).run.dask == "tcp://h:8786"  # flag not given
    assert cfg.with_overrides(dask="").run.dask is None  # --dask '': this machine
    with pytest.raises(ConfigError, match=r"\[run\] dask must be a Dask scheduler address"):
        cfg.with_overrides(dask="h")
    assert load_config(cfg.path, {"dask": ""}).run.dask is None


def test_starter_explains_dask_and_leaves_it_off():
    text = starter_text()
    assert 'dask = ""' in text and "incident-forecast[dask]" in text and "jobs is not used" in text


def test_auto_is_the_default_and_explicit_candidates_choose_as_before(tmp_path):
    events = tmp_path / "e.csv"
    events.write_text("date,country,province,event_type\n2020-01-05,Tajikistan,Khatlon,clash\n", encoding="utf-8")
    (tmp_path / "a.toml").write_text('[data]\nevents = "e.csv"\n', encoding="utf-8")
    cfg = load_config(tmp_path / "a.toml")
    assert cfg.models.selection == "auto" and "auto" in cfg.models.labelled()
    (tmp_path / "b.toml").write_text('[data]\nevents = "e.csv"\n[models]\ncandidates = ["negbin_glm"]\n',
                                     encoding="utf-8")
    assert load_config(tmp_path / "b.toml").models.selection == "series"
    (tmp_path / "c.toml").write_text('[data]\nevents = "e.csv"\n[models]\ncandidates = ["negbin_glm"]\n'
                                     'selection = "auto"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="add \"auto\" to candidates"):
        load_config(tmp_path / "c.toml")
