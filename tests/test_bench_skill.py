"""The skill benchmark's protocol functions (benchmarks/bench_skill.py) on small synthetic panels.

The script itself runs on real panels that are not shipped; these tests check that its replay of
today's default choice never looks ahead, and that its unfloored log score is the exact one.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_skill as bench  # noqa: E402  (a repository file: never skipped)

from forecast._backtest_result import BacktestResult  # noqa: E402
from forecast.comparison import select_models  # noqa: E402

PERIODS = pd.date_range("2018-01-01", periods=60, freq="MS")
O_STAR = PERIODS[30]  # negbin_glm is bad on targets up to here, far better after


def _fake(label: str, good_after: pd.Timestamp | None, point_mass_at: pd.Timestamp | None = None) -> bench.Rolling:
    """Hand-made rolling forecasts of one series at every origin, horizons 1-6: floored log 1.0
    (climatology) or 1.02 up to ``good_after`` and 0 after it (negbin_glm)."""
    recs = []
    for i, c in enumerate(PERIODS[:-1]):
        for h in range(1, 7):
            if i + h >= len(PERIODS):
                continue
            ds = PERIODS[i + h]
            log = 1.0 if good_after is None else (0.0 if ds > good_after else 1.02)
            pmax = 1.0 if c == point_mass_at else 0.5
            recs.append(dict(unique_id="a", ds=ds, cutoff=c, h=h, y=3, mean=2.0, log=log, rps=log / 2,
                             abs_error=1.0, log_unfloored=log, pmax=pmax))
    rows = pd.DataFrame(recs)
    fc = rows[["unique_id", "ds", "cutoff", "h", "y", "mean"]].assign(model=label)
    res = BacktestResult(fc, rows[["log", "rps", "abs_error"]].copy(), pd.DataFrame(), {"horizon": 6})
    return bench.Rolling(label, rows, res, 0.0, 0.0)


def _panel() -> pd.DataFrame:
    return pd.DataFrame({"unique_id": "a", "ds": PERIODS, "y": 3})


def test_default_today_uses_only_targets_up_to_the_origin():
    cands = {"climatology": _fake("climatology", None), "seasonal_naive": _fake("seasonal_naive", None),
             "negbin_glm": _fake("negbin_glm", O_STAR)}
    o_late = PERIODS[50]  # selection origins 33..44: every target after O_STAR
    out = bench.default_today(cands, _panel(), [O_STAR, o_late], horizon=1)
    chosen = dict(zip(out["cutoff"], out["chosen"]))
    # Up to O_STAR negbin_glm only ever scored worse: honest selection keeps the baseline.
    assert chosen[O_STAR] == "climatology"
    # Scores whose targets lie after O_STAR (the 12 next origins) favour negbin_glm: a selection
    # that looked ahead would switch, so the check above can fail.
    leaky = PERIODS[31:43]
    fcs = pd.concat([c.result.forecasts for c in cands.values()], ignore_index=True)
    pts = pd.concat([c.result.point_scores for c in cands.values()], ignore_index=True)
    keep = fcs["cutoff"].isin(leaky).to_numpy()
    sub = BacktestResult(fcs[keep].reset_index(drop=True), pts[keep].reset_index(drop=True), pd.DataFrame(),
                         {"horizon": 6})
    assert select_models(sub, baseline="climatology", metric="log")["model"].iloc[0] == "negbin_glm"
    # Once 12 whole selection origins lie after O_STAR, the better model is chosen and its own cell is used.
    assert chosen[o_late] == "negbin_glm"
    late = out[out["cutoff"] == o_late].iloc[0]
    assert late["log"] == pytest.approx(0.0) and late["h"] == 1 and late["n_sel"] == 12


def test_selection_origins_have_every_target_observed_by_the_origin():
    o = PERIODS[40]
    sel = bench.selection_origins(PERIODS[:45], o)
    assert len(sel) == 12 and sel[-1] == PERIODS[34] and sel[0] == PERIODS[23]
    assert bench.selection_origins(PERIODS, PERIODS[3]) == []  # too early for any horizon-6 backtest
    need = bench.needed_origins(PERIODS[:45], [o])
    assert need == sorted(set(sel) | {o})


def test_point_mass_choice_reverts_to_the_baseline():
    cands = {"climatology": _fake("climatology", None), "seasonal_naive": _fake("seasonal_naive", None),
             "negbin_glm": _fake("negbin_glm", O_STAR, point_mass_at=PERIODS[52])}
    out = bench.default_today(cands, _panel(), [PERIODS[51], PERIODS[52]], horizon=1)
    chosen = dict(zip(out["cutoff"], out["chosen"]))
    assert chosen[PERIODS[51]] == "negbin_glm"
    assert chosen[PERIODS[52]] == "climatology"  # negbin_glm won, but forecast a point mass there
    assert out.loc[out["cutoff"] == PERIODS[52], "log"].iloc[0] == pytest.approx(1.0)


def test_evaluate_panel_unfloored_log_matches_poisson_and_default_row():
    rng = np.random.default_rng(0)
    y = rng.poisson(3.0, size=(2, 40))
    y[:, 35:39] = np.maximum(y[:, 35:39], 1)  # naive after a positive count is Poisson(y_t)
    y[0, 39] = 0  # one zero target: the point mass at 0 gets it right once
    ds = pd.date_range("2019-01-01", periods=40, freq="MS")
    panel = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 40), "ds": np.tile(ds, 2), "y": y.ravel()})
    table = bench.evaluate_panel(panel, ["climatology", "naive", "zero"], name="sim",
                                 protocol={"month": ((1, 4),)}, log=lambda s: None)
    assert list(table["model"]) == ["climatology", "naive", "zero", bench.DEFAULT_LABEL]
    assert (table["n"] == 8).all()
    naive = table.set_index("model").loc["naive"]
    # naive at origin t is Poisson(y_t) for y_{t+1}: brute force over the 4 last targets of both series
    ref = [-stats.poisson.logpmf(y[s, t + 1], y[s, t]) for s in range(2) for t in range(35, 39)]
    assert naive["log"] == pytest.approx(np.mean(ref), rel=1e-9) and naive["impossible"] == 0
    # the point mass at 0: every positive target is impossible (+inf), the zero one costs nothing
    zero = table.set_index("model").loc["zero"]
    assert np.isinf(zero["log"]) and zero["impossible"] == 7
    assert zero["log_floored"] == pytest.approx(-7 * np.log(1e-12) / 8, rel=1e-9)
    clim = table.set_index("model").loc["climatology"]
    assert np.isfinite(clim["log"]) and clim["log"] == pytest.approx(clim["log_floored"], rel=1e-12)
