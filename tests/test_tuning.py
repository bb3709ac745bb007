"""forecast.tune: grid expansion, the pick on data with a known best parameter, the table's
numbers against a direct backtest, grid validation, and the best-vs-default paired test."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import forecast
from forecast import ConfigError
from forecast.backtesting import backtest
from forecast.comparison import paired_test
from forecast.tuning import _paired, _table, cell_scores, label_of, tune


def seasonal_panel(n_series: int = 5, length: int = 96, seed: int = 11) -> pd.DataFrame:
    """Monthly NB2 counts with a strong annual cycle (amplitude 1.2 on the log scale), no trend."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2015-01-01", periods=length, freq="MS")
    m = ds.month.to_numpy()
    rows = []
    for i in range(n_series):
        mu = np.exp(1.3 + 0.2 * i + 1.2 * np.cos(2 * np.pi * (m - 7) / 12))
        y = rng.negative_binomial(5, 5 / (5 + mu))  # NB2, alpha = 0.2
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
    return pd.concat(rows, ignore_index=True)


P = seasonal_panel()
BASE = forecast.load_model("negbin_glm").set_params(trend="none", seasonality="none")
KW = dict(horizon=1, n_origins=12, refit_every=4)


@pytest.fixture(scope="module")
def seasonal_tune():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tune(BASE, P, {"seasonality": ["none", "fourier"], "fourier_k": [1, 2]}, **KW)


def test_grid_is_expanded_into_every_combination_once_with_readable_labels(seasonal_tune):
    t = seasonal_tune.table
    combos = {(s, k) for s in ("none", "fourier") for k in (1, 2)}
    assert {(r.seasonality, r.fourier_k) for r in t.itertuples()} == combos
    assert len(t) == 4  # the default (seasonality none, fourier_k 2) is one of them: not added twice
    assert t["is_default"].sum() == 1
    assert t.loc[t["is_default"], "label"].item() == "fourier_k=2, seasonality='none'"
    assert set(t["label"]) == {label_of({"fourier_k": k, "seasonality": s}) for s, k in combos}
    assert (t["n"] == 5 * 12).all()
    # every candidate is scored on the same cells
    cells = seasonal_tune.scores.groupby("label")[["unique_id", "ds", "cutoff"]].apply(
        lambda g: tuple(map(tuple, g.to_numpy())))
    assert cells.nunique() == 1


def test_default_outside_the_grid_is_evaluated_too():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = tune(BASE, P, {"seasonality": ["fourier"], "lags": [(), (1,)]}, horizon=1, n_origins=4, refit_every=4)
    t = res.table
    assert len(t) == 3
    default = t[t["is_default"]].iloc[0]
    assert default["seasonality"] == "none" and default["lags"] == ()


def test_tune_picks_the_seasonal_model_on_seasonal_data_and_the_test_says_it_beats_the_default(seasonal_tune):
    res = seasonal_tune
    assert res.best_spec.seasonality == "fourier"
    assert res.best_spec == BASE.clone().set_params(seasonality="fourier",
                                                   fourier_k=int(res.table["fourier_k"].iloc[0]))
    assert res.best_spec is not BASE
    t = res.table
    assert list(t["log"]) == sorted(t["log"])  # sorted by the metric
    assert (t.loc[t["seasonality"] == "fourier", "log"].max() < t.loc[t["seasonality"] == "none", "log"].min())
    test = res.test
    assert test.best == t["label"].iloc[0] and test.default == "fourier_k=2, seasonality='none'"
    assert test.better and test.p_value < 0.05 and test.statistic < 0
    assert "optimistic" in test.note and test.n_cells == 5 * 12 and test.n_origins == 12


def test_paired_test_equals_comparison_paired_test_on_a_direct_backtest(seasonal_tune):
    best, default = seasonal_tune.test.best, seasonal_tune.test.default
    specs = {best: seasonal_tune.best_spec, default: BASE}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtest(P, specs, **KW)
    assert (res.point_scores["log"] < 27).all()  # no floored score: the backtest's log is the unfloored one
    ref = paired_test(res, best, default, "log")
    assert seasonal_tune.test.statistic == pytest.approx(ref.mean_diff, abs=1e-12)
    assert seasonal_tune.test.p_value == pytest.approx(ref.p_value, abs=1e-12)


def test_table_numbers_equal_a_direct_backtest_of_each_candidate(seasonal_tune):
    t = seasonal_tune.table
    for row in t.iloc[[0, -1]].itertuples():
        spec = BASE.clone().set_params(seasonality=row.seasonality, fourier_k=row.fourier_k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = backtest(P, {"x": spec}, **KW)
        # independent of tuning's scoring: -log of the pmf at y, and the backtest's own RPS
        y = res.forecasts["y"].to_numpy()
        p = np.concatenate([f.pmf_at(y[i:i + len(f)]) for i, f in
                            zip(np.cumsum([0] + [len(f) for f in res.forecast_objects()]), res.forecast_objects())])
        assert row.log == pytest.approx(np.mean(-np.log(p)), abs=1e-12, rel=1e-12)
        assert row.rps == pytest.approx(res.point_scores["rps"].mean(), abs=1e-12, rel=1e-12)
        assert row.n == len(res.forecasts) and row.n_impossible == int((p < 1e-12).sum())
        per_origin = -np.log(p)
        se = pd.Series(per_origin).groupby(res.forecasts["cutoff"].to_numpy()).mean()
        assert row.se == pytest.approx(se.std(ddof=1) / np.sqrt(len(se)), rel=1e-9)


def test_window_in_the_grid_is_the_backtest_window_on_the_same_origins():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = tune(BASE, P, {"window": [24, "expanding"]}, horizon=2, n_origins=6, refit_every=3)
        direct = backtest(P, {"w": BASE}, horizon=2, n_origins=6, refit_every=3, window=24)
    t = res.table.set_index("label")
    assert set(t.index) == {"window=24", "window='expanding'"} and t.loc["window='expanding'", "is_default"]
    s = res.scores
    assert s.groupby("label")["cutoff"].apply(lambda c: tuple(sorted(set(c)))).nunique() == 1
    assert t.loc["window=24", "rps"] == pytest.approx(direct.point_scores["rps"].mean(), abs=1e-12)
    assert t.loc["window=24", "log"] == pytest.approx(cell_scores(direct)["log"].mean(), abs=1e-12)
    assert res.best_window == (24 if res.table["label"].iloc[0] == "window=24" else "expanding")


def test_spec_names_are_resolved_and_tune_is_exported_lazily():
    assert forecast.tune is forecast.tuning.tune
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = forecast.tune("climatology", P, {"window": [12, 24]}, horizon=1, n_origins=3, metric="rps")
    assert type(res.best_spec).__name__ == "Climatology"  # window is climatology's own parameter here
    assert res.best_spec.window in (12, 24, 36) and res.best_window == "expanding"
    assert list(res.table["rps"]) == sorted(res.table["rps"])


def test_bad_grid_keys_values_and_combinations_are_all_reported_at_once():
    with pytest.raises(ConfigError) as e:
        tune(BASE, P, {"fourier_kk": [1], "lagz": [(1,)], "fourier_k": [0, 2], "penalty": 1.0}, **KW)
    msg = str(e.value)
    for part in ("'fourier_kk'", "'lagz'", "'fourier_k'", "0", "'penalty'", "must be a list"):
        assert part in msg, (part, msg)
    with pytest.raises(ConfigError, match="'window'"):
        tune(BASE, P, {"window": [0]}, **KW)
    with pytest.raises(ConfigError, match="no values for 'lags'"):
        tune(BASE, P, {"lags": []}, **KW)
    with pytest.raises(ConfigError, match="metric"):
        tune(BASE, P, {"lags": [()]}, metric="mae", **KW)


def _scores(label_vals: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for label, vals in label_vals.items():
        for i, v in enumerate(vals):
            rows.append(dict(label=label, unique_id="a", ds=i, cutoff=i, h=1, y=0, log=v, rps=v if np.isfinite(v) else 9))
    return pd.DataFrame(rows)


def test_impossible_outcomes_rank_last_and_decide_the_test_without_a_bootstrap():
    scores = _scores({"good": [0.5, 0.6, 0.4, 0.5], "default": [0.1, np.inf, 0.2, 0.1]})
    cands = {"good": dict(params={}, is_default=False), "default": dict(params={}, is_default=True)}
    table = _table(cands, scores, [], "log")
    assert list(table["label"]) == ["good", "default"]
    assert table["log"].iloc[1] == np.inf and table["n_impossible"].tolist() == [0, 1]
    t = _paired(scores, "good", "default", "log", 1, 0.05, 0)
    assert t.better and t.p_value == 0.0 and "probability 0" in t.note
    both_inf = _scores({"a": [np.inf, 1, 1], "b": [1, np.inf, 1]})
    t = _paired(both_inf, "a", "b", "log", 1, 0.05, 0)
    assert not t.better and np.isnan(t.p_value)


def test_default_best_means_no_improvement():
    scores = _scores({"d": [0.1, 0.2, 0.1], "x": [0.5, 0.6, 0.7]})
    t = _paired(scores, "d", "d", "log", 1, 0.05, 0)
    assert not t.better and t.statistic == 0.0 and "default spec scored best" in t.note
