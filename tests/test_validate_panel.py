"""`forecast validate` on a panel CSV (unique_id, ds, y): a summary read as every command reads it,
or one line per problem and exit 1."""
from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from forecast.cli import app

runner = CliRunner()


def _write(tmp_path, frame, name="panel.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def test_a_weekly_panel_is_summarised_with_its_own_numbers(tmp_path):
    rng = np.random.default_rng(0)
    ds = pd.date_range("2022-01-03", periods=110, freq="W-MON")
    ys = {"north": rng.poisson(3.0, 110), "south": rng.poisson(0.4, 110)}
    frame = pd.concat([pd.DataFrame({"unique_id": u, "ds": ds, "y": y}) for u, y in ys.items()])
    res = runner.invoke(app, ["validate", _write(tmp_path, frame)])
    assert res.exit_code == 0, res.output
    total = int(frame.y.sum())
    zeros = (frame.y == 0).mean()
    assert "layout:      panel CSV (unique_id, ds, y)" in res.output
    assert "220 (2 series x 110 periods, weekly (W-MON))" in res.output
    assert "dates:       2022-01-03 to 2024-02-05" in res.output
    assert f"counts:      {total} in all, {zeros:.0%} of the cells 0" in res.output
    assert f"series:      north {ys['north'].sum()}, south {ys['south'].sum()}" in res.output
    assert "warnings:    0" in res.output


def test_a_broken_panel_is_one_line_per_problem(tmp_path):
    frame = pd.DataFrame({"unique_id": ["a"] * 3, "ds": ["2024-01-01", "2024-02-01", "2024-02-01"], "y": [1, -2, 3]})
    res = runner.invoke(app, ["validate", _write(tmp_path, frame)])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert any("column 'y'" in ln and "row (3)" in ln for ln in lines), res.output
    assert any("the same period of a series more than once" in ln for ln in lines), res.output
    assert "Traceback" not in res.output


def test_a_short_panel_warns_and_counts_the_warning(tmp_path):
    frame = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=8, freq="MS"), "y": 1})
    res = runner.invoke(app, ["validate", _write(tmp_path, frame)])
    assert res.exit_code == 0, res.output
    assert "too short to forecast well" in res.output and "warnings:    1" in res.output
