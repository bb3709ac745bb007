"""Warm starts across backtest origins (forecast.models._warm, issue 15 item 5).

A GLM refitted at the next origin starts Newton from the previous origin's estimates:
the optimum is the same (to the solver's gradient tolerance), reached in fewer
iterations; the chains restart cold at fixed blocks so every task plan gives the same numbers.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import forecast
from forecast import backtesting
from forecast.models import glm as glm_module
from forecast.models._warm import start_values
from forecast.models.base import PanelData
from forecast.models.results import SeriesFit


def _panel(n_series: int = 40, n: int = 72, seed: int = 3) -> pd.DataFrame:
    """NB2 series with a seasonal cycle (rates 2-20), monthly."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2015-01-01", periods=n, freq="MS")
    rows = []
    for i in range(n_series):
        mu = np.exp(np.log(rng.uniform(2, 20)) + 0.4 * np.sin(2 * np.pi * (np.arange(n) + i) / 12))
        y = rng.negative_binomial(5, 5 / (5 + mu))
        rows.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": ds, "y": y}))
    return pd.concat(rows, ignore_index=True)


def _data(panel: pd.DataFrame, last: int) -> PanelData:
    frame = panel[panel["ds"] <= panel["ds"].unique()[last]].copy()
    return PanelData.from_frame(frame, ())


@pytest.fixture()
def spy(monkeypatch):
    """Every fit_batch call of the GLMs: (warm start given?, total Newton iterations, result)."""
    calls = []
    real = glm_module.fit_batch

    def wrapped(*args, **kw):
        res = real(*args, **kw)
        calls.append((kw.get("start") is not None, int(res.n_iter[res.ok].sum()), res))
        return res

    monkeypatch.setattr(glm_module, "fit_batch", wrapped)
    return calls


# NB: a series fitted with alpha > 0 before goes straight to the joint ascent (no Poisson pre-fit).
# A design with a trend: the default (month dummies only) is fitted in closed form, where
# only NB's dispersion profile iterates (the last case: there a warm alpha saves steps).
@pytest.mark.parametrize("name, params, most", [("poisson_glm", {"trend": "linear"}, 0.85),
                                                ("negbin_glm", {"trend": "linear"}, 0.7),
                                                ("negbin_glm", {}, 0.95)])
def test_a_warm_start_reaches_the_cold_optimum_in_fewer_iterations(name, params, most, spy):
    panel = _panel()
    spec = forecast.load_model(name).set_params(**params)
    before = spec.fit_data(_data(panel, 60))
    spy.clear()
    cold = spec.fit_data(_data(panel, 61))
    warm = spec.fit_data(_data(panel, 61), warm=before)
    (c_warm, c_iter, c_res), (w_warm, w_iter, w_res) = spy[0], spy[-1]
    assert not c_warm and w_warm
    assert w_iter < most * c_iter, (w_iter, c_iter)
    assert np.array_equal(c_res.ok, w_res.ok)
    # Same optimum: both stop at max |gradient| <= 1e-8, so estimates agree far below their SEs.
    cb = np.stack([f.state["beta"] for f in cold.fits().values()])
    wb = np.stack([f.state["beta"] for f in warm.fits().values()])
    se = np.stack([f.state["cov"].diagonal() for f in cold.fits().values()]) ** 0.5
    assert np.nanmax(np.abs(cb - wb)) < 1e-6
    assert np.nanmax(np.abs(cb - wb) / se) < 1e-6
    ca = np.array([f.state["alpha"] for f in cold.fits().values()])
    wa = np.array([f.state["alpha"] for f in warm.fits().values()])
    np.testing.assert_allclose(wa, ca, rtol=1e-6, atol=1e-9)
    assert [f.fallback for f in cold.fits().values()] == [f.fallback for f in warm.fits().values()]


def test_series_that_fell_back_or_changed_design_start_cold():
    spec = forecast.load_model("negbin_glm")

    class S:  # (a series is read for its id only)
        def __init__(self, uid):
            self.uid = uid

    names = ["(intercept)", "x"]
    good = SeriesFit(spec, state={"beta": np.array([1.0, 2.0]), "alpha": 0.5, "names": names})
    fell = SeriesFit(spec, state={"beta": np.array([3.0, 4.0]), "alpha": 0.1, "names": names})
    fell.fallback = "penalised"
    other = SeriesFit(spec, state={"beta": np.array([1.0, 2.0, 3.0]), "alpha": 0.5, "names": names + ["z"]})
    start, alpha = start_values({"a": good, "b": fell, "c": other}, [S("a"), S("b"), S("c"), S("d")], names, True)
    assert start[0].tolist() == [1.0, 2.0] and alpha[0] == 0.5
    assert np.isnan(start[1:]).all() and np.isnan(alpha[1:]).all()
    assert start_values({"b": fell}, [S("b")], names, True) == (None, None)
    assert start_values(None, [S("a")], names, False) == (None, None)
    start, alpha = start_values({"a": good}, [S("a")], names, False)
    assert alpha is None and start[0].tolist() == [1.0, 2.0]


def test_warm_chains_restart_cold_at_fixed_blocks_so_every_plan_gives_the_same_numbers(monkeypatch, spy):
    panel = _panel(n_series=12, n=60)
    models = {"nb": forecast.load_model("negbin_glm")}
    kw = dict(horizon=2, n_origins=9, seed=1, progress=False, keep_pmf=False)
    monkeypatch.setattr(backtesting, "WARM_CHAIN", 4)
    monkeypatch.setattr(backtesting, "SERIES_CHUNK", 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serial = forecast.backtest(panel, models, **kw)
        # 2 chunks x 9 origins; cold at blocks 0, 4 and 8 of each chunk, warm at the other 6
        assert sum(w for w, _, _ in spy) == 2 * 6 and len(spy) == 2 * 9
        spy.clear()
        # A plan for 8 workers splits the origins into several tasks (only at chain starts)
        tasks = backtesting._plan({"nb": models["nb"]}, panel.assign(ds=pd.to_datetime(panel["ds"])),
                                  sorted(pd.to_datetime(panel["ds"]).unique())[-11:-2], 1, 8)
        assert len(tasks) > 2 and all(len(t[2]) % 4 == 0 or t[2][-1] == tasks[-1][2][-1] for t in tasks)
        monkeypatch.setattr(backtesting, "_plan", lambda s, f, c, r, w: _orig_plan(s, f, c, r, 8))
        split = forecast.backtest(panel, models, **kw)
    assert sum(w for w, _, _ in spy) == 2 * 6
    pd.testing.assert_frame_equal(serial.point_scores, split.point_scores, check_exact=True)
    pd.testing.assert_frame_equal(serial.forecasts, split.forecasts, check_exact=True)


_orig_plan = backtesting._plan
