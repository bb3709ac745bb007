"""Comparison, selection and ensembles; calibration and skill of a known true model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecast import load_model
from forecast.pipeline import backtest  # takes spec names too
from forecast.calibration import pit_histogram
from forecast.comparison import block_bootstrap_test, compare, paired_test, select_models
from forecast.combine import Ensemble
from forecast.models import Climatology, Naive
from forecast.models.base import ModelSpec, SeriesFit, SeriesForecast

ALPHA_TRUE = 0.4


def true_mu(ds: pd.DatetimeIndex, level: float) -> np.ndarray:
    return np.exp(level + 1.0 * np.sin(2 * np.pi * ds.month.to_numpy() / 12))


class TrueNB(ModelSpec):
    """The generating process itself (test oracle).

    Notes
    -----
    Y_t ~ NB2(exp(level_s + sin(2π m_t / 12)), alpha = 0.4), level_s from the series id.
    """

    name = "test_true_nb"
    params = ()
    fallbacks = ()

    def _fit_series(self, s):
        return SeriesFit(self, n_obs=len(s.y))

    def _forecast_series(self, fit, s, h, future, rng):
        level = float(s.uid.split("_")[1])
        return SeriesForecast("negbin", mu=true_mu(s.future_ds(h), level), alpha=np.full(h, ALPHA_TRUE))


class TruePoisson(TrueNB):
    """The true mean with Poisson noise: under-dispersed against the NB truth.

    Notes
    -----
    Y_t ~ Poisson(exp(level_s + sin(2π m_t / 12))).
    """

    name = "test_true_poisson"

    def _forecast_series(self, fit, s, h, future, rng):
        sf = super()._forecast_series(fit, s, h, future, rng)
        return SeriesForecast("poisson", mu=sf.mu)


def simulate(n_series=30, length=96, seed=11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2015-01-01", periods=length, freq="MS")
    rows = []
    for i in range(n_series):
        level = round(rng.uniform(-0.5, 1.5), 3)
        mu = true_mu(ds, level)
        r = 1 / ALPHA_TRUE
        rows.append(pd.DataFrame({"unique_id": f"s{i}_{level}", "ds": ds,
                                  "y": rng.negative_binomial(r, r / (r + mu))}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def result():
    return backtest(simulate(), {"true": TrueNB(), "climatology": Climatology(window=24),
                                 "underdispersed": TruePoisson()}, horizon=3, n_origins=24)


def test_true_model_pit_is_uniform_all_and_active(result):
    mask = (result.forecasts["model"] == "true").to_numpy()
    pts = result.point_scores[mask]
    n_bins = 10
    pit = pit_histogram((pts["pit_lo"].to_numpy(), pts["pit_hi"].to_numpy()), bins=n_bins)
    counts = pit.density * pit.n / n_bins
    assert stats.chisquare(counts).pvalue > 1e-3
    f0 = result.pmf[mask, 0]
    y = result.forecasts["y"].to_numpy()[mask]
    act = pit_histogram((pts["pit_lo"].to_numpy(), pts["pit_hi"].to_numpy(), f0), y, bins=n_bins, active_only=True)
    assert stats.chisquare(act.density * act.n / n_bins).pvalue > 1e-3
    # the right mean with Poisson noise is too confident: U-shaped PIT
    um = (result.forecasts["model"] == "underdispersed").to_numpy()
    under = pit_histogram((result.point_scores["pit_lo"][um].to_numpy(), result.point_scores["pit_hi"][um].to_numpy()),
                          bins=n_bins)
    assert stats.chisquare(under.density * under.n / n_bins).pvalue < 1e-3
    assert under.density[0] > 1.2 and under.density[-1] > 1.2


def test_true_model_beats_climatology_significantly(result):
    table = compare(result, baseline="climatology", metrics=("rps", "log"))
    true = table[table["model"] == "true"].set_index("metric")
    assert (true["skill"] > 0).all()
    assert true.loc["rps", "significant"] and true.loc["log", "significant"]
    assert (true["verdict"] == "beats baseline").all()
    assert (true["p_value"] < 0.01).all()


def test_selection_switches_only_when_significant(result):
    sel = select_models(result, baseline="climatology", by="global")
    assert set(sel["model"]) == {"true"}
    same = backtest(simulate(n_series=5, length=60), {"a": Climatology(window=24), "climatology": Climatology(window=25)},
                    horizon=3, n_origins=12)
    kept = select_models(same, baseline="climatology", by="series")
    # near-identical models: keep the baseline unless a difference is significant
    assert (kept["model"] == "climatology").mean() >= 0.6
    assert kept["reason"].str.len().gt(0).all()


def test_block_bootstrap_size_and_power():
    rng = np.random.default_rng(0)
    # Under H0 with the dependence overlapping 3-step forecasts create (MA(2)),
    # the rejection rate at 5% is consistent with 5%.
    pvals = []
    for _ in range(300):
        e = rng.normal(size=26)
        d = e[2:] + e[1:-1] + e[:-2]
        pvals.append(block_bootstrap_test(d, 3, n_boot=500, seed=1).p_value)
    k = int(np.sum(np.array(pvals) < 0.05))
    assert stats.binomtest(k, 300, 0.05).pvalue > 1e-3, k
    # a clear improvement is detected
    assert block_bootstrap_test(rng.normal(-1.0, 1.0, 40), 4, seed=1).p_value < 0.01
    # too few origins for two blocks: no power, p = 1
    assert block_bootstrap_test(np.array([-1.0, -2.0, -1.5]), 3).p_value == 1.0


def test_paired_test_of_a_model_with_itself_has_no_difference(result):
    t = paired_test(result, "climatology", "climatology", "rps")
    assert t.mean_diff == 0.0


def test_ensemble_equal_weights_is_the_average_pmf():
    panel = simulate(n_series=4, length=48)
    fit = Ensemble(members=("climatology", "naive")).fit(panel)
    fc = fit.forecast(2)
    a = load_model("climatology").fit(panel).forecast(2)
    b = Naive().fit(panel).forecast(2)
    K = max(a.K, b.K)
    pa = np.pad(a.pmf, ((0, 0), (0, K - a.K)))
    pb = np.pad(b.pmf, ((0, 0), (0, K - b.K)))
    # members' pmfs stop where their own tail is < 1e-6; the pool extends them exactly
    assert np.allclose(fc.pmf[:, : K + 1], 0.5 * (pa + pb), atol=1e-6)
    assert np.allclose(fc.mean, 0.5 * (a.mean + b.mean))


def test_score_weights_use_training_data_only_and_favour_the_better_member():
    panel = simulate(n_series=3, length=60)
    cut = panel["ds"] <= "2018-12-01"
    spec = Ensemble(members=("climatology", "zero"), weights="score", metric="log", weight_origins=6)
    w1 = spec.fit(panel[cut]).weights().set_index("unique_id")
    later = panel.copy()
    later.loc[~cut, "y"] = 0  # the future would favour 'zero': it must not leak into the weights
    w2 = spec.fit(later[later["ds"] <= "2018-12-01"]).weights().set_index("unique_id")
    pd.testing.assert_frame_equal(w1, w2)
    assert (w1["climatology"] > w1["zero"]).all()


def test_ensemble_spec_backtests_like_any_model():
    panel = simulate(n_series=3, length=48)
    res = backtest(panel, ["ensemble", "climatology"], horizon=2, n_origins=3, refit_every=2)
    assert set(res.forecasts["model"]) == {"ensemble", "climatology"}
    assert np.isfinite(res.point_scores["rps"]).all()


def unequal_result():
    """12 cells (3 series x 4 origins, h = 1); 'naive' has a finite RPS on only 4 of them."""
    from forecast.backtesting import BacktestResult

    cut = pd.date_range("2020-01-01", periods=4, freq="MS")
    cells = pd.DataFrame([(u, c + pd.offsets.MonthBegin(1), c, 1) for u in ("a", "b", "c") for c in cut],
                         columns=["unique_id", "ds", "cutoff", "h"])
    rng = np.random.default_rng(5)
    base = rng.uniform(1.0, 2.0, len(cells))
    naive = base * 0.5
    naive[4:] = np.nan  # series b and c: no finite score (e.g. a failed fit)
    fc = pd.concat([cells.assign(model="climatology"), cells.assign(model="naive")], ignore_index=True)
    ps = pd.DataFrame({"rps": np.r_[base, naive], "log": np.r_[base, base * 0.9]})
    return BacktestResult(fc, ps, pd.DataFrame(), {"horizon": 1}), base, naive


def test_compare_uses_only_cells_every_model_scored_and_reports_exclusions():
    from forecast.exceptions import ForecastWarning

    res, base, naive = unequal_result()
    with pytest.warns(ForecastWarning, match=r"'naive' has no finite rps on 8 of 12 cells"):
        table = compare(res, baseline="climatology", metrics=("rps", "log"))
    t = table.set_index(["model", "metric"])
    # same 4 cells for both: naive is exactly half the baseline there -> skill 0.5
    assert t.loc[("naive", "rps"), "skill"] == pytest.approx(0.5, rel=1e-12)
    assert t.loc[("climatology", "rps"), "score"] == pytest.approx(base[:4].mean(), rel=1e-12)
    assert (t.loc[(slice(None), "rps"), "n"] == 4).all()
    assert (t.loc[(slice(None), "rps"), "n_excluded"] == 8).all()
    # log is finite everywhere: all 12 cells, nothing excluded
    assert (t.loc[(slice(None), "log"), "n"] == 12).all() and (t.loc[(slice(None), "log"), "n_excluded"] == 0).all()
    assert t.loc[("naive", "log"), "skill"] == pytest.approx(0.1, rel=1e-12)


def test_select_models_compares_on_common_cells():
    from forecast.exceptions import ForecastWarning

    res, base, naive = unequal_result()
    with pytest.warns(ForecastWarning, match="naive"):
        sel = select_models(res, baseline="climatology", metric="rps", by="global")
    # on the 4 common cells naive is exactly half the baseline every time: chosen (p = 0)
    assert (sel["model"] == "naive").all()
    assert sel["score"].iloc[0] == pytest.approx(0.5 * base[:4].mean(), rel=1e-12)
    assert sel["baseline_score"].iloc[0] == pytest.approx(base[:4].mean(), rel=1e-12)
    assert (sel["n"] == 4).all() and (sel["n_excluded"] == 16).all()
    assert (sel["best_scoring"] == "naive").all()


def test_nothing_excluded_means_no_warning():
    import warnings

    res, base, naive = unequal_result()
    res.point_scores["rps"] = np.r_[base, base * 0.5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = compare(res, baseline="climatology", metrics=("rps",))
    assert (table["n"] == 12).all() and (table["n_excluded"] == 0).all()


def test_summary_shows_unequal_score_counts():
    res, base, naive = unequal_result()
    s = res.summary(metrics=("rps", "log")).set_index("model")
    assert (s["n"] == 12).all()
    assert s.loc["climatology", "n_rps"] == 12 and s.loc["naive", "n_rps"] == 4
    assert "n_log" not in s.columns  # every forecast has a log score
    assert s.loc["naive", "rps"] == pytest.approx(naive[:4].mean(), rel=1e-12)
