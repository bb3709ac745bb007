"""`forecast effects`: the score test at a date, change detection, Holm column, errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.interventions import score_test

runner = CliRunner()


@pytest.fixture(scope="module")
def panel_csv(tmp_path_factory) -> tuple:
    rng = np.random.default_rng(4)
    ds = pd.date_range("2019-01-01", periods=48, freq="MS")
    t = np.arange(48)
    frames = [pd.DataFrame({"unique_id": "A/North/clash", "ds": ds, "y": rng.poisson(np.exp(1.5 + 0.8 * (t >= 30)))}),
              pd.DataFrame({"unique_id": "A/South/clash", "ds": ds, "y": rng.poisson(4.0, 48)})]
    panel = pd.concat(frames, ignore_index=True)
    path = tmp_path_factory.mktemp("eff") / "panel.csv"
    panel.assign(ds=panel.ds.dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    return path, panel


def test_effects_at_a_date_prints_and_writes_the_table(panel_csv, tmp_path):
    path, panel = panel_csv
    out = tmp_path / "effects.csv"
    res = runner.invoke(app, ["effects", str(path), "--date", "2021-07", "--model", "poisson_glm", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "A/North/clash" in res.output and "p_holm" in res.output and "(Holm)" in res.output
    got = pd.read_csv(out)
    ref = score_test(panel, "poisson_glm", "2021-07")
    np.testing.assert_allclose(got.score_stat, ref.score_stat, rtol=1e-9)
    p = np.sort(ref.p_score.to_numpy())
    np.testing.assert_allclose(np.sort(got.p_holm), [min(1, 2 * p[0]), min(1, max(2 * p[0], p[1]))], rtol=1e-9)
    assert got.p_score[got.unique_id == "A/North/clash"].iloc[0] < 1e-4


def test_effects_detect_finds_the_date(panel_csv):
    path, _ = panel_csv
    res = runner.invoke(app, ["effects", str(path), "--detect", "-B", "9", "--series", "A/North/clash",
                              "--model", "poisson_glm"])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.strip().startswith("A/North/clash"))
    assert any(f"2021-{m:02d}-01" in line for m in (5, 6, 7, 8, 9))  # the shift is at 2021-07
    assert "bootstrap (9 replicates" in res.output


@pytest.mark.parametrize("args, msg", [([], "--date"), (["--date", "2021-13"], "not a date"),
                                       (["--date", "2021-07", "--model", "climatology"], "none of"),
                                       (["--date", "2021-07", "--kind", "inner"], "kind")])
def test_effects_errors_are_one_line(panel_csv, args, msg):
    res = runner.invoke(app, ["effects", str(panel_csv[0]), *args])
    assert res.exit_code == 1
    assert res.output.startswith("error: ") and msg in res.output


def test_effects_help_has_an_example():
    res = runner.invoke(app, ["effects", "--help"])
    assert res.exit_code == 0 and "Example: forecast effects" in res.output
