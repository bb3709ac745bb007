"""The typed run -> report contract: ReportContext round trip, schema-1 folders, newer schemas."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.exceptions import ConfigError
from forecast.report_context import SCHEMA_VERSION, ComparisonRow, HeadlineRow, ReportContext
from tests.test_run import small_log, write_config

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real run folder, and the ReportContext the pipeline built in memory for it."""
    import forecast.pipeline.runner as pipeline_runner

    tmp = tmp_path_factory.mktemp("ctx")
    small_log(tmp)
    cfg = write_config(tmp)
    built = []
    original = pipeline_runner.report_context

    def capture(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline_runner, "report_context", capture)
        res = runner.invoke(app, ["run", str(cfg), "--quiet"])
    assert res.exit_code == 0, res.output
    assert len(built) == 1
    return tmp / "out", built[0]


def test_the_pipeline_builds_a_typed_context_that_round_trips_exactly(run):
    folder, built = run
    assert isinstance(built, ReportContext)
    text = (folder / "report_context.json").read_text(encoding="utf-8")
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION == 2
    read = ReportContext.from_json(text)
    assert read == built  # built in memory, written, read back: equal
    assert read.to_json() == text  # and written again: the same file
    # Typed as promised: thresholds are int keys, rows are dataclasses, lists are tuples.
    assert all(isinstance(r, HeadlineRow) for r in read.headline.rows)
    assert {type(k) for r in read.headline.rows for k in r.p_ge} == {int}
    assert sorted(read.headline.rows[0].p_ge) == [1, 5] and read.headline.threshold == 5
    assert {f.file for f in read.figures} >= {"figures/forecasts.png", "figures/risk.png"}


def test_the_file_is_strict_json_missing_numbers_are_null(run):
    folder, built = run
    text = (folder / "report_context.json").read_text(encoding="utf-8")

    def no_nan(name):
        raise AssertionError(f"{name} in report_context.json")

    json.loads(text, parse_constant=no_nan)
    # The baseline's own comparison row has no p-value: None, not NaN (NaN would break equality).
    base = [r for r in built.comparison.rows if r.verdict == "baseline"]
    assert base and all(r.p_value is None for r in base)


def _as_schema_1(ctx: ReportContext) -> str:
    """report_context.json as the version before schema 2 wrote it: no schema_version, NaN for missing
    numbers, json.dumps(..., default=str) (int threshold keys become strings)."""
    d = ctx.to_dict()
    del d["schema_version"]

    def nan_for_none(rows, keys):
        for r in rows:
            for k in keys:
                if k in r and r[k] is None:
                    r[k] = math.nan

    nan_for_none(d["comparison"]["rows"], ["p_value", "mean_diff", "score", "baseline_score", "skill"])
    nan_for_none(d.get("effects", []), ["estimate", "std_error", "rate_ratio", "lo", "hi", "p_value"])
    return json.dumps(d, indent=2, default=str)


def test_a_schema_1_folder_renders_the_same_html(run, tmp_path):
    folder, built = run
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    text = _as_schema_1(built)
    assert "schema_version" not in text and '"1": ' in text and "NaN" in text  # really the old shape
    (old / "report_context.json").write_text(text, encoding="utf-8")
    (old / "index.html").unlink()
    res = runner.invoke(app, ["report", str(old)])
    assert res.exit_code == 0, res.output
    assert (old / "index.html").read_bytes() == (folder / "index.html").read_bytes()
    # Read as schema 1 with today's repairs: the same typed context.
    assert ReportContext.from_json(text) == built


def test_a_newer_schema_is_refused_with_a_clear_error(run, tmp_path):
    folder, _ = run
    new = tmp_path / "new"
    shutil.copytree(folder, new)
    d = json.loads((new / "report_context.json").read_text(encoding="utf-8"))
    d["schema_version"] = SCHEMA_VERSION + 1
    (new / "report_context.json").write_text(json.dumps(d), encoding="utf-8")
    before = (new / "index.html").read_bytes()
    res = runner.invoke(app, ["report", str(new)])
    assert res.exit_code == 1
    assert f"written by a newer incident-forecast (schema {SCHEMA_VERSION + 1})" in res.output
    assert "upgrade" in res.output and "Traceback" not in res.output
    assert (new / "index.html").read_bytes() == before  # nothing written
    with pytest.raises(ConfigError, match="newer incident-forecast"):
        ReportContext.from_dict(d)


@pytest.mark.parametrize("text, match", [("[]", "JSON list, not a report context"),
                                         ('{"figures": []}', "not a valid report context .*missing key"),
                                         ('{"schema_version": "2"}', "invalid schema_version"),
                                         ("{not json", "not valid JSON")])
def test_a_broken_context_is_a_config_error(text, match):
    with pytest.raises(ConfigError, match=match):
        ReportContext.from_json(text)


def test_figure_bytes_are_attached_for_rendering_only(run):
    folder, built = run
    pngs = {f.file: (folder / f.file).read_bytes() for f in built.figures}
    loaded = built.with_figure_bytes(pngs)
    assert loaded == built and loaded.to_json() == built.to_json()  # bytes are neither compared nor written
    assert all(f.png == pngs[f.file] for f in loaded.figures)
    assert all(f.png is None for f in built.figures)  # frozen: the original is unchanged
    assert [f["png"] for f in loaded.render_dict()["figures"]] == [pngs[f.file] for f in built.figures]


def test_rows_normalise_numpy_and_nan_values():
    import numpy as np

    row = ComparisonRow.from_dict({"model": "m", "metric": "rps", "score": np.float64(1.5),
                                   "baseline_score": 2.0, "n": np.int64(10), "n_excluded": 0,
                                   "skill": 0.25, "mean_diff": np.nan, "p_value": float("nan"),
                                   "significant": np.bool_(True), "verdict": "better"})
    assert row.score == 1.5 and type(row.score) is float and type(row.n) is int
    assert row.mean_diff is None and row.p_value is None and row.significant is True and row.h is None
    assert "h" not in row.to_dict()  # the all-horizons rows have no h column, as before
    h_row = ComparisonRow.from_dict({**row.to_dict(), "h": 3.0})
    assert h_row.h == 3 and h_row.to_dict()["h"] == 3


def test_report_context_sits_on_the_lowest_floor():
    from tests.test_layers import import_graph

    graph = import_graph()
    assert graph["forecast.report_context"] <= {"forecast.exceptions", "forecast._report_values",
                                                "forecast._report_past"}
    assert graph["forecast._report_past"] <= {"forecast._report_values"}
    assert graph["forecast._report_values"] == set()
