"""Rolling-origin backtests: no look-ahead, refit schedule, parallel = serial, score tables."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from forecast import ConfigError, ForecastWarning
from forecast.backtesting import backtest, choose_origins
from forecast.models import Climatology, Naive, NegBinGLM, SeasonalNaive
from forecast.models.base import ModelSpec, SeriesFit, SeriesForecast
from forecast.specs import load_model


class LastPlusH(ModelSpec):
    """Oracle for y_t = t: a point mass at y_T + h.

    Notes
    -----
    P(Y_{T+h} = y_T + h) = 1.
    """

    name = "test_last_plus_h"
    params = ()
    fallbacks = ()

    def _fit_series(self, s):
        return SeriesFit(self, n_obs=len(s.y))

    def _forecast_series(self, fit, s, h, future, rng):
        target = s.y[-1] + np.arange(1, h + 1)
        pmf = np.zeros((h, int(target.max()) + 1))
        pmf[np.arange(h), target] = 1.0
        return SeriesForecast("pmf", pmf=pmf)


def sim_panel(n_series=4, length=60, seed=3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2018-01-01", periods=length, freq="MS")
    rows = []
    for i in range(n_series):
        mu = np.exp(0.8 + 0.5 * np.sin(2 * np.pi * ds.month.to_numpy() / 12) + 0.3 * i)
        y = rng.negative_binomial(2, 2 / (2 + mu))
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
    rows.append(pd.DataFrame({"unique_id": "zeros", "ds": ds, "y": 0}))
    return pd.concat(rows, ignore_index=True)


P = sim_panel()


def test_oracle_on_a_line_scores_exactly_zero_error():
    line = pd.DataFrame({"unique_id": "line", "ds": pd.date_range("2020-01-01", periods=30, freq="MS"),
                         "y": np.arange(30)})
    res = backtest(line, {"oracle": LastPlusH()}, horizon=4, n_origins=8)
    assert len(res.forecasts) == 8 * 4
    assert (res.point_scores["abs_error"] == 0).all()
    assert (res.point_scores["rps"] == 0).all()
    assert (res.forecasts["y"] == res.forecasts["mean"]).all()


def test_perturbing_data_after_the_cutoffs_changes_no_forecast():
    res = backtest(P, [Climatology(), NegBinGLM(lags=(1,), n_paths=200)], horizon=3, n_origins=5)
    last_target = pd.Timestamp(res.settings["origins"][-1]) + pd.DateOffset(months=3)
    changed = P.copy()
    later = changed["ds"] > last_target
    changed.loc[later, "y"] = changed.loc[later, "y"] * 7 + 11
    # also perturb everything after the first cutoff and compare the first origin only
    res2 = backtest(changed, [Climatology(), NegBinGLM(lags=(1,), n_paths=200)], horizon=3, n_origins=5)
    cols = ["unique_id", "ds", "cutoff", "h", "model", "mean", "lo-80", "hi-80", "p_ge_1"]
    pd.testing.assert_frame_equal(res.forecasts[cols], res2.forecasts[cols])
    assert np.array_equal(res.pmf, res2.pmf)
    first = pd.Timestamp(res.settings["origins"][0])
    changed3 = P.copy()
    changed3.loc[changed3["ds"] > first, "y"] += 5
    r1 = backtest(P, [Climatology()], horizon=3, origins=[first])
    r3 = backtest(changed3, [Climatology()], horizon=3, origins=[first])
    assert np.array_equal(r1.pmf, r3.pmf)
    assert not np.array_equal(r1.forecasts["y"], r3.forecasts["y"])


def test_refit_every_reuses_parameters_but_not_data():
    res = backtest(P, {"clim": Climatology(window=12), "naive": Naive()}, horizon=1, n_origins=6, refit_every=3)
    f = res.forecasts[res.forecasts["unique_id"] == "s0"].set_index(["model", "cutoff"])["mean"]
    cut = [pd.Timestamp(c) for c in res.settings["origins"]]
    # climatology's mean is a parameter: constant within each refit block of 3 origins
    assert f[("clim", cut[0])] == f[("clim", cut[1])] == f[("clim", cut[2])]
    assert f[("clim", cut[3])] == f[("clim", cut[4])] == f[("clim", cut[5])]
    assert f[("clim", cut[0])] != f[("clim", cut[3])]
    # naive's last value is data: it follows every cutoff (after a zero: the mean count after
    # zeros up to the cutoff, shrunk to the series' mean; issue 12)
    y = P[P["unique_id"] == "s0"].set_index("ds")["y"]

    def after_zero(v):
        after = [v[t] for t in range(1, len(v)) if v[t - 1] == 0]
        return (sum(after) + np.mean(v)) / (len(after) + 1)

    want = [float(y[c]) if y[c] > 0 else after_zero(y[y.index <= c].to_numpy()) for c in cut]
    assert [f[("naive", c)] for c in cut] == pytest.approx(want, rel=1e-14)


def test_refit_every_one_equals_fitting_at_each_origin():
    a = backtest(P, [SeasonalNaive(), Climatology()], horizon=2, n_origins=4, refit_every=1)
    cut = a.settings["origins"]
    for c in cut:
        train = P[P["ds"] <= c]
        fc = Climatology().fit(train).forecast(2)
        got = a.forecasts[(a.forecasts["model"] == "climatology") & (a.forecasts["cutoff"] == c)]
        assert np.allclose(got["mean"].to_numpy(), fc.mean[: len(got)])


def test_parallel_jobs_equal_serial():
    models = [Climatology(), NegBinGLM(lags=(1,), n_paths=100)]
    a = backtest(P, models, horizon=3, n_origins=4, jobs=1)
    b = backtest(P, models, horizon=3, n_origins=4, jobs=2)
    pd.testing.assert_frame_equal(a.forecasts, b.forecasts)
    pd.testing.assert_frame_equal(a.point_scores, b.point_scores)
    assert np.array_equal(a.pmf, b.pmf)


def test_seed_changes_simulated_forecasts_and_same_seed_reproduces():
    m = [NegBinGLM(lags=(1,), n_paths=100)]
    a = backtest(P, m, horizon=3, n_origins=2, seed=1)
    b = backtest(P, m, horizon=3, n_origins=2, seed=1)
    c = backtest(P, m, horizon=3, n_origins=2, seed=2)
    pd.testing.assert_frame_equal(a.forecasts, b.forecasts)
    h3 = a.forecasts["h"] == 3
    assert not np.allclose(a.forecasts.loc[h3, "mean"], c.forecasts.loc[h3, "mean"])


def test_pmf_rows_align_with_forecast_rows():
    res = backtest(P, [Climatology(), Naive()], horizon=2, n_origins=3)
    pmf = res.pmf
    assert pmf.shape[0] == len(res.forecasts)
    k = np.arange(pmf.shape[1])
    # the dense pmf stops where the tail is < 1e-6, so its mean falls short of the
    # exact mean by sum_{k>K} k p_k: small, not zero
    assert np.allclose((pmf * k).sum(axis=1), res.forecasts["mean"], rtol=1e-4, atol=1e-6)
    y = res.forecasts["y"].to_numpy()
    ok = y < pmf.shape[1]
    assert np.allclose(-np.log(np.maximum(pmf[ok, y[ok]], 1e-12)), res.point_scores["log_floored"][ok], atol=1e-9)
    with np.errstate(divide="ignore"):
        assert np.allclose(-np.log(pmf[ok, y[ok]]), res.point_scores["log"][ok], atol=1e-9)


def test_scores_by_any_grouping_and_mase_skips_zero_scale_series():
    res = backtest(P, [Climatology()], horizon=2, n_origins=3)
    by_h = res.scores(("model", "h"))
    assert set(by_h["h"]) == {1, 2} and {"rps", "log", "mase", "coverage_80"} <= set(by_h["metric"])
    by_cut = res.scores(("cutoff",), metrics=["rps"])
    assert len(by_cut) == 3
    mase = res.scores(("model",), metrics=["mase"]).iloc[0]
    rps = res.scores(("model",), metrics=["rps"]).iloc[0]
    # the all-zero series has no in-sample error, so no MASE: 2 horizons x 3 origins fewer
    assert rps["n"] - mase["n"] == 6
    assert res.point_scores.loc[res.forecasts["unique_id"] == "zeros", "mase"].isna().all()


def test_window_limits_the_training_data():
    res = backtest(P, {"clim": Climatology(window=1000, prior="none")}, horizon=1, n_origins=1, window=6)
    c = pd.Timestamp(res.settings["origins"][0])
    y = P[(P["unique_id"] == "s1") & (P["ds"] <= c)]["y"].to_numpy()[-6:]
    got = res.forecasts[res.forecasts["unique_id"] == "s1"]["mean"].item()
    assert got == pytest.approx(y.mean())


def test_origin_choice_and_errors():
    periods = pd.date_range("2020-01-01", periods=24, freq="MS")
    cut = choose_origins(periods, 3, n_origins=4, step=2)
    assert cut == [periods[14], periods[16], periods[18], periods[20]]
    with pytest.raises(ConfigError, match="not periods of the panel"):
        choose_origins(periods, 3, origins=["2030-01-01"])
    with pytest.raises(ConfigError, match="too few"):
        choose_origins(periods[:3], 3)
    with pytest.raises(ConfigError, match="horizon must be an int >= 1"):
        backtest(P, [Naive()], horizon=0)
    with pytest.raises(ConfigError, match="refit_every"):
        backtest(P, [Naive()], horizon=1, refit_every=0)


def test_keys_are_carried_from_build_panel_output():
    import warnings

    import forecast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = forecast.build_panel(forecast.load_sample(), as_of="2025-12-31")
    res = backtest(panel, [load_model("climatology")], horizon=2, n_origins=2, keep_pmf=False)
    assert {"country", "province", "event_type"} <= set(res.forecasts.columns)
    assert res.forecasts["province"].notna().all()
    with pytest.raises(ConfigError, match="keep_pmf"):
        res.pmf


def test_series_chunks_and_engines_change_no_result(monkeypatch):
    """Chunking series into tasks and the batched engine are invisible in the results."""
    import forecast.backtesting as bt
    from forecast.models.base import batched_engine

    panel = pd.concat([_sample_panel_for_chunks(i) for i in range(7)], ignore_index=True)
    models = {"clim": load_model("climatology"), "nb": load_model("negbin_glm"),
              "ar": load_model("poisson_glm").set_params(lags=(1,))}
    kw = dict(n_origins=4, refit_every=2, progress=False)
    one = bt.backtest(panel, models, 3, **kw)
    monkeypatch.setattr(bt, "SERIES_CHUNK", 2)
    chunked = bt.backtest(panel, models, 3, **kw)
    parallel = bt.backtest(panel, models, 3, jobs=2, **kw)  # chunks made here, fitted in two workers
    with batched_engine(False):
        single = bt.backtest(panel, models, 3, **kw)
    for other in (chunked, parallel, single):
        pd.testing.assert_frame_equal(one.forecasts, other.forecasts, rtol=1e-9)
        pd.testing.assert_frame_equal(one.point_scores, other.point_scores, rtol=1e-8)
        cols = ["model", "cutoff", "unique_id", "fallback", "reason", "model_used", "converged"]
        pd.testing.assert_frame_equal(one.diagnostics[cols], other.diagnostics[cols])


def _sample_panel_for_chunks(i: int) -> pd.DataFrame:
    rng = np.random.default_rng(i)
    n = 48 if i % 3 else 40  # two calendars: a later-starting series joins at later origins
    ds = pd.date_range("2018-01-01" if i % 3 else "2018-09-01", periods=n, freq="MS")
    y = rng.negative_binomial(2, 2 / (2 + np.exp(rng.uniform(0, 2))), n)
    if i == 0:
        y[:] = 0
    return pd.DataFrame({"unique_id": f"u{i}", "ds": ds, "y": y})


@pytest.mark.parametrize("freq", ["MS", "W-MON"])
def test_split_once_path_equals_filtering_the_frame_at_every_origin(monkeypatch, freq):
    """Covariates, exposure, interventions, a rolling window and weekly data through the
    split-once path give what filtering the frame at each origin gives."""
    import forecast.backtesting as bt

    rng = np.random.default_rng(5)
    n = 60
    rows = []
    for i in range(4):
        ds = pd.date_range("2019-01-07" if freq != "MS" else "2019-01-01", periods=n - 6 * i, freq=freq)
        pop = rng.uniform(50, 150, len(ds))
        x = rng.normal(0, 1, len(ds))
        mu = pop / 100 * np.exp(0.5 + 0.3 * x)
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.poisson(mu), "pop": pop, "x": x}))
    panel = pd.concat(rows, ignore_index=True)
    when = str(panel["ds"].sort_values().iloc[40].date())
    spec = load_model("negbin_glm").set_params(exog=("x",), exposure="pop", seasonality="fourier",
                                               interventions=({"name": "iv", "date": when},))
    models = {"nb": spec, "clim": load_model("climatology")}
    kw = dict(n_origins=5, window=36, refit_every=2, progress=False)
    # Future covariates come from the panel: said in a warning and in the settings (exposure is
    # known ahead, so only 'x' is named).
    with pytest.warns(ForecastWarning, match="'nb': the observed future values of x are used"):
        fast = bt.backtest(panel, models, 3, **kw)
    assert fast.settings["covariates_known_ahead"] == {"nb": ["x"]}
    only_exposure = {"nb": load_model("negbin_glm").set_params(exposure="pop", seasonality="fourier")}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecastWarning)
        assert bt.backtest(panel, only_exposure, 3, **kw).settings["covariates_known_ahead"] == {}
    monkeypatch.setattr(bt, "_splits_once", lambda spec: False)
    slow = bt.backtest(panel, models, 3, **kw)
    assert fast.forecasts["model"].eq("nb").sum() >= 12
    pd.testing.assert_frame_equal(fast.forecasts, slow.forecasts)
    pd.testing.assert_frame_equal(fast.point_scores, slow.point_scores)
    cols = ["model", "cutoff", "unique_id", "fallback", "reason", "model_used", "converged"]
    pd.testing.assert_frame_equal(fast.diagnostics[cols], slow.diagnostics[cols])


def test_backtest_result_stays_importable_from_backtesting():
    import forecast.backtesting as bt
    from forecast._backtest_result import BacktestResult

    assert bt.BacktestResult is BacktestResult
    assert isinstance(bt.backtest(_sample_panel_for_chunks(1), {"c": load_model("climatology")}, 2, n_origins=2,
                                  progress=False), BacktestResult)
