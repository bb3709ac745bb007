"""The honest (unfloored) log score, impossible outcomes, and every aggregate that must survive +inf.

References: scipy.stats ``logpmf`` (Poisson, empirical pmfs), and for the negative binomial at
tiny means the closed form written with ``scipy.special`` (``scipy.stats.nbinom`` takes
``p = 1 / (1 + alpha mu)``, which rounds to 1 there and loses up to 1e-3 relative accuracy).
Relative tolerance 1e-9 throughout.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from forecast import scoring
from forecast.distributions import CountForecast

RTOL = 1e-9
CAP = -np.log(1e-12)  # 27.631...: the floored penalty, and the "impossible" threshold


def index(n: int) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": [f"s{i}" for i in range(n)],
                         "ds": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n), "D"),
                         "h": np.ones(n, dtype=np.int64)})


def nb_logpmf_ref(y, mu, alpha):
    """NB2 log-pmf by its closed form (r = 1/alpha), well conditioned for tiny means."""
    y = np.asarray(y, float)
    r = 1 / alpha
    return (special.gammaln(y + r) - special.gammaln(r) - special.gammaln(y + 1)
            - r * np.log1p(alpha * mu) + special.xlogy(y, alpha * mu) - y * np.log1p(alpha * mu))


def assert_scores(got, ref):
    """Equal infinities, finite values at RTOL relative (1e-15 absolute: -log p(0) = mu rounds to 0)."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    fin = np.isfinite(ref)
    np.testing.assert_allclose(got[fin], ref[fin], rtol=RTOL, atol=1e-15)


Y = np.array([0, 1, 2, 18, 1000, 10**6])


# --------------------------------------------------------------------------- per-row scores
def test_point_mass_at_zero_gives_inf_not_nan_nor_the_floor():
    fc = CountForecast.poisson(index(Y.size), 0.0, model="zero")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from log(0) or inf - inf
        sc = scoring.score_all(fc, Y)
        log = scoring.log_score(fc, Y)
    ref = -stats.poisson(0.0).logpmf(Y)  # [0, inf, inf, ...]
    assert_scores(log, ref)
    assert log[0] == 0.0 and np.isposinf(log[1:]).all()
    np.testing.assert_array_equal(sc["log"], log)
    np.testing.assert_allclose(sc["log_floored"], np.minimum(ref, CAP), rtol=RTOL)
    np.testing.assert_array_equal(sc["impossible"], [0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(scoring.log_score(fc, Y, floor=scoring.LOG_FLOOR), np.minimum(ref, CAP))


@pytest.mark.parametrize("mu", [1e-300, 1e-30, 1e-8, 1e-3])
def test_poisson_tiny_mean_matches_scipy(mu):
    fc = CountForecast.poisson(index(Y.size), mu, model="p")
    assert fc.K < Y[3]  # most outcomes lie far beyond the dense support
    assert_scores(scoring.score_all(fc, Y)["log"], -stats.poisson(mu).logpmf(Y))


@pytest.mark.parametrize("mu", [1e-300, 1e-30, 1e-8, 1e-3])
@pytest.mark.parametrize("alpha", [1e-6, 0.5, 10.0])
def test_negbin_tiny_mean_matches_closed_form(mu, alpha):
    fc = CountForecast.negbin(index(Y.size), mu, alpha, model="nb")
    got = scoring.score_all(fc, Y)["log"]
    assert np.isfinite(got).all()  # tiny but positive probabilities: large, finite scores
    assert_scores(got, -nb_logpmf_ref(Y, mu, alpha))


def test_closed_form_reference_agrees_with_scipy_where_scipy_is_well_conditioned():
    y = np.arange(0, 40)
    for mu, alpha in [(0.01, 0.5), (2.0, 2.0), (30.0, 0.1)]:
        np.testing.assert_allclose(nb_logpmf_ref(y, mu, alpha),
                                   stats.nbinom.logpmf(y, 1 / alpha, 1 / (1 + alpha * mu)), rtol=1e-10)


def test_large_mean_at_zero_is_exact_not_inf():
    # p(0) = exp(-1e6) underflows; the zero branch of the mixture log-pmf used to take exp first
    ys = np.array([0, 0, 3])
    fc = CountForecast.poisson(index(3), [1e6, 900.0, 1e6], model="p")
    assert_scores(scoring.log_score(fc, ys), -stats.poisson([1e6, 900.0, 1e6]).logpmf(ys))
    zi = CountForecast.zero_inflated(index(3), 1e6, 0.0, alpha=0.01, model="zinb")
    assert_scores(scoring.log_score(zi, ys), -nb_logpmf_ref(ys, 1e6, 0.01))


def test_zero_inflated_tiny_mean_matches_reference():
    pi, mu = 0.3, 1e-20
    fc = CountForecast.zero_inflated(index(Y.size), mu, pi, model="zip")
    ref = np.where(Y == 0, np.log(pi + (1 - pi) * stats.poisson(mu).pmf(0)), np.log1p(-pi) + stats.poisson(mu).logpmf(Y))
    assert_scores(scoring.score_all(fc, Y)["log"], -ref)


def test_pmf_family_beyond_support_and_zero_cells_are_inf():
    pmf = np.array([[0.5, 0.5, 0.0, 0.0]] * 4)
    fc = CountForecast.from_pmf(index(4), pmf, model="e")
    ys = np.array([1, 2, fc.K + 1, 10**6])  # in support, zero cell, just beyond K, far beyond
    ref = -np.array([stats.rv_discrete(values=([0, 1], [0.5, 0.5])).logpmf(v) for v in ys])
    sc = scoring.score_all(fc, ys)
    assert_scores(sc["log"], ref)
    assert np.isposinf(sc["log"][1:]).all()
    np.testing.assert_array_equal(sc["impossible"], [0, 1, 1, 1])
    np.testing.assert_allclose(sc["log_floored"], [np.log(2), CAP, CAP, CAP], rtol=RTOL)


def test_samples_family_beyond_support_is_inf():
    fc = CountForecast.from_samples(index(1), np.zeros((1, 1, 50), int), model="s")
    assert np.isposinf(scoring.log_score(fc, [3])).all()
    assert scoring.log_score(fc, [0])[0] == 0.0


def test_mixture_with_a_point_mass_member_is_finite_and_exact():
    a = CountForecast.poisson(index(Y.size), 0.0, model="zero")
    b = CountForecast.poisson(index(Y.size), 3.0, model="p")
    mix = CountForecast.mixture([a, b], [0.9, 0.1], model="mix")
    ref = -np.logaddexp(np.log(0.9) + stats.poisson(0.0).logpmf(Y), np.log(0.1) + stats.poisson(3.0).logpmf(Y))
    assert_scores(scoring.log_score(mix, Y), ref)


def test_impossible_threshold_is_strictly_below_1e_12():
    pmf = [[1 - 2e-12, 2e-12, 0], [1 - 1e-12, 1e-12, 0], [1 - 5e-13, 5e-13, 0]]
    fc = CountForecast.from_pmf(index(3), pmf, model="e")
    sc = scoring.score_all(fc, [1, 1, 1])
    np.testing.assert_array_equal(sc["impossible"], [0, 0, 1])
    np.testing.assert_allclose(sc["log"], -np.log([2e-12, 1e-12, 5e-13]), rtol=RTOL)
    np.testing.assert_allclose(sc["log_floored"], [-np.log(2e-12), CAP, CAP], rtol=RTOL)


def test_log_score_default_is_unfloored_and_floor_is_validated():
    fc = CountForecast.poisson(index(2), 3.0, model="p")
    np.testing.assert_allclose(scoring.log_score(fc, [40, 2]), -stats.poisson(3.0).logpmf([40, 2]), rtol=RTOL)
    assert scoring.log_score(fc, [40, 2])[0] > CAP  # above the old floor's cap
    with pytest.raises(ValueError, match="floor"):
        scoring.log_score(fc, [1, 1], floor=1.0)


# --------------------------------------------------------------------------- aggregates
def fake_result(scores: dict, with_flags: bool = True, n_series: int = 3, n_origins: int = 8):
    """A BacktestResult of given per-cell log (and RPS) scores, one h, cells in a fixed order."""
    from forecast.backtesting import BacktestResult

    cut = pd.date_range("2020-01-01", periods=n_origins, freq="MS")
    cells = pd.DataFrame([(u, c + pd.offsets.MonthBegin(1), c, 1) for u in "abc"[:n_series] for c in cut],
                         columns=["unique_id", "ds", "cutoff", "h"])
    fc = pd.concat([cells.assign(model=m) for m in scores], ignore_index=True)
    log = np.concatenate([np.asarray(v, float) for v in scores.values()])
    ps = pd.DataFrame({"rps": np.where(np.isfinite(log), log, 50.0), "log": log})
    if with_flags:
        ps["impossible"] = (log > CAP).astype(float)
    return BacktestResult(fc, ps, pd.DataFrame(), {"horizon": 1}), cells


def scores_for(n=24, seed=3):
    rng = np.random.default_rng(seed)
    base = rng.uniform(1.8, 2.2, n)
    bad = base - 1.0  # far better on every finite cell...
    bad[5] = np.inf  # ...but one outcome it called impossible
    tiny = base * 0.05
    tiny[7] = 29.9  # p = 1e-13: finite, still an impossible outcome
    return base, bad, tiny


def per_origin_mean_diff(a, b, cells):
    ok = np.isfinite(a) & np.isfinite(b)
    return pd.Series((a - b)[ok]).groupby(cells["cutoff"].to_numpy()[ok]).mean().mean()


@pytest.mark.parametrize("with_flags", [True, False])
def test_compare_keeps_infinite_cells_and_a_model_with_impossible_outcomes_is_never_better(with_flags):
    from forecast.comparison import compare

    base, bad, tiny = scores_for()
    res, cells = fake_result({"climatology": base, "bad": bad, "tiny": tiny}, with_flags=with_flags)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # +inf log scores are scores, not exclusions: no warning
        t = compare(res, baseline="climatology", metrics=("log",)).set_index("model")
    assert (t["n"] == 24).all() and (t["n_excluded"] == 0).all()
    assert t.loc["bad", "score"] == np.inf and t.loc["bad", "skill"] == -np.inf
    assert t.loc["tiny", "score"] == pytest.approx(tiny.mean(), rel=1e-12)
    np.testing.assert_array_equal(t.loc[["climatology", "bad", "tiny"], "n_impossible"], [0, 1, 1])
    assert t.loc["bad", "share_impossible"] == pytest.approx(1 / 24)
    # the p-value and mean difference come from the cells where both are finite ...
    assert t.loc["bad", "mean_diff"] == pytest.approx(per_origin_mean_diff(bad, base, cells), rel=1e-12)
    assert t.loc["bad", "p_value"] < 0.05 and t.loc["tiny", "mean_diff"] < 0 and t.loc["tiny", "skill"] > 0
    # ... but neither is better than a baseline without impossible outcomes
    assert not t.loc["bad", "significant"] and not t.loc["tiny", "significant"]
    assert t.loc["bad", "verdict"] == "no better: 1 impossible outcome"
    assert t.loc["tiny", "verdict"] == "no better: 1 impossible outcome"


def test_compare_a_finite_model_beats_a_baseline_with_infinite_mean():
    from forecast.comparison import compare

    base, _, _ = scores_for()
    inf_base = base.copy()
    inf_base[3] = np.inf
    worse = base + 0.05  # slightly worse on every finite cell
    res, _ = fake_result({"climatology": inf_base, "steady": worse})
    t = compare(res, baseline="climatology", metrics=("log", "rps")).set_index(["model", "metric"])
    row = t.loc[("steady", "log")]
    assert row["significant"] and row["verdict"].startswith("beats baseline") and row["skill"] == 1.0
    assert row["p_value"] > 0.5  # the test on finite cells alone would not say so
    assert t.loc[("climatology", "log"), "n_impossible"] == 1
    # the RPS comparison is untouched by the log-score rules
    assert not t.loc[("steady", "rps"), "significant"]


def test_select_models_ranks_impossible_outcomes_last():
    from forecast.comparison import select_models

    base, bad, tiny = scores_for()
    good = base - 0.3
    res, _ = fake_result({"climatology": base, "bad": bad, "tiny": tiny, "good": good})
    sel = select_models(res, baseline="climatology", metric="log", by="global")
    assert (sel["best_scoring"] == "good").all() and (sel["model"] == "good").all()
    assert (sel["n_impossible"] == 0).all()
    # by RPS (no such rule) the lowest mean wins
    rps = select_models(res, baseline="climatology", metric="rps", by="global")
    assert (rps["best_scoring"] == "tiny").all()


def test_select_models_replaces_a_baseline_with_infinite_mean_and_breaks_ties_by_count():
    from forecast.comparison import _rank, select_models

    base, _, _ = scores_for()
    inf_base = base.copy()
    inf_base[[3, 9]] = np.inf
    one_inf = base - 0.5
    one_inf[4] = np.inf
    steady = base + 0.05
    res, _ = fake_result({"climatology": inf_base, "one_inf": one_inf, "steady": steady})
    sel = select_models(res, baseline="climatology", metric="log", by="global")
    assert (sel["model"] == "steady").all() and "infinite mean log score" in sel["reason"].iloc[0]
    scores = pd.Series({"climatology": np.inf, "one_inf": np.inf})
    vals = pd.Series(np.r_[inf_base, one_inf])
    model = pd.Series(["climatology"] * 24 + ["one_inf"] * 24)
    assert _rank(scores, vals, model, {"climatology": 2, "one_inf": 1}, True) == ["one_inf", "climatology"]


def test_select_models_without_a_finite_common_cell_keeps_the_baseline():
    from forecast.comparison import select_models

    res, _ = fake_result({"climatology": np.full(24, np.inf), "other": np.full(24, np.inf)})
    sel = select_models(res, baseline="climatology", metric="log", by="series")
    assert (sel["model"] == "climatology").all() and sel["p_value"].isna().all()


def test_summary_counts_impossible_outcomes_per_model_and_horizon():
    base, bad, tiny = scores_for()
    res, _ = fake_result({"climatology": base, "bad": bad, "tiny": tiny})
    s = res.summary(metrics=("rps", "log")).set_index("model")
    assert s.loc["bad", "log"] == np.inf and s.loc["tiny", "log"] == pytest.approx(tiny.mean(), rel=1e-12)
    np.testing.assert_array_equal(s.loc[["climatology", "bad", "tiny"], "n_impossible"], [0, 1, 1])
    np.testing.assert_allclose(s.loc[["climatology", "bad", "tiny"], "share_impossible"], [0, 1 / 24, 1 / 24])
    assert "n_log" not in s.columns  # an infinite score is a score
    tidy = res.scores(("model",)).set_index(["model", "metric"])["value"]
    assert tidy[("bad", "impossible")] == pytest.approx(1 / 24)


# --------------------------------------------------------------------------- report and figure
def test_scores_figure_marks_an_infinite_mean_instead_of_crashing_or_hiding_it():
    import io

    from forecast import plots

    tidy = pd.DataFrame({"model": ["a"] * 4 + ["b"] * 4, "h": [1, 1, 2, 2] * 2, "cutoff": [1, 2, 1, 2] * 2,
                         "metric": "log", "value": [1.0, np.inf, 1.0, 2.0, 2.0, 2.5, 2.0, 2.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.scores_by_horizon(tidy, metric="log")
        fig.savefig(io.BytesIO(), format="png")
    ax = fig.axes[0]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["a (mean \u221e at h = 1)", "b"]
    a = [c for c in ax.containers if c.get_label().startswith("a")][0].lines[0]
    assert np.isnan(a.get_ydata()[0]) and a.get_ydata()[1] == pytest.approx(1.5)  # finite h = 2 kept
    tops = [ln for ln in ax.get_lines() if ln.get_marker() == "^"]
    assert len(tops) == 1 and tops[0].get_ydata()[0] == pytest.approx(0.97)
    assert "\u221e" in [t.get_text() for t in ax.texts]
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_report_writes_infinity_as_a_string_and_shows_the_impossible_count():
    import json

    from forecast._report_view import _comparison, fmt_score, fmt_signed_pct
    from forecast.report_context import Comparison, ComparisonRow

    rows = [dict(model="zero", metric="log", score=np.inf, baseline_score=2.0, n=24, n_excluded=0,
                 skill=-np.inf, mean_diff=-1.0, p_value=0.01, significant=False,
                 verdict="no better: 3 impossible outcomes", n_impossible=3),
            dict(model="climatology", metric="log", score=2.0, baseline_score=2.0, n=24, n_excluded=0, skill=0.0,
                 mean_diff=0.0, p_value=None, significant=False, verdict="baseline", n_impossible=0)]
    comp = Comparison(baseline="climatology", metric="log", rows=tuple(map(ComparisonRow.from_dict, rows)), note="")
    text = json.dumps(comp.to_dict(), allow_nan=False)  # strict JSON: would raise on a bare inf
    d = json.loads(text)
    assert d["rows"][0]["score"] == "inf" and d["rows"][0]["skill"] == "-inf" and d["rows"][0]["n_impossible"] == 3
    back = Comparison.from_dict(d)
    assert back == comp and back.rows[0].score == np.inf
    view = _comparison(d)
    by_model = {r["model"]: r for r in view["rows"]}  # one table per metric, the baseline row first
    assert [r["model"] for r in view["tables"][0]["rows"]] == ["climatology (baseline)", "zero"]
    assert by_model["zero"]["score"] == "\u221e (3 impossible outcomes)"
    assert by_model["zero"]["skill"] == "\u2212\u221e" and by_model["climatology (baseline)"]["score"] == "2"
    assert fmt_score("inf", 1) == "\u221e (1 impossible outcome)" and fmt_score(np.inf) == "\u221e"
    assert fmt_signed_pct(np.inf) == "+\u221e"
    # a row written before n_impossible existed still reads
    old = {k: v for k, v in d["rows"][1].items() if k != "n_impossible"}
    assert ComparisonRow.from_dict(old).n_impossible is None


def test_an_infinite_count_in_a_context_file_is_refused_not_a_traceback():
    from forecast.report_context import ComparisonRow

    with pytest.raises(ValueError, match="whole number"):
        ComparisonRow.from_dict(dict(model="a", metric="log", score=1, baseline_score=1, n="inf", n_excluded=0,
                                     skill=0, mean_diff=0, p_value=None, significant=False, verdict=""))


# --------------------------------------------------------------------------- end to end
def _specs():
    """Two test specs: a point mass at 0, and a Poisson baseline that never is one."""
    from forecast.models.base import ModelSpec, SeriesFit, SeriesForecast

    class Zero(ModelSpec):
        """Point mass at zero (test oracle of an over-confident model).

        Notes
        -----
        Y_t ~ Poisson(0).
        """

        name = "test_point_zero"
        params = ()
        fallbacks = ()
        floors_mean = False  # opts out of the no-certain-zero guard, to stay over-confident

        def _fit_series(self, s):
            return SeriesFit(self, n_obs=len(s.y))

        def _forecast_series(self, fit, s, h, future, rng):
            return SeriesForecast("poisson", mu=np.zeros(h))

    class Mean(Zero):
        """Poisson at the history's mean plus one half (test baseline, never a point mass).

        Notes
        -----
        Y_t ~ Poisson(mean(y) + 0.5).
        """

        name = "test_hist_mean"

        def _forecast_series(self, fit, s, h, future, rng):
            return SeriesForecast("poisson", mu=np.full(h, float(np.mean(s.y)) + 0.5))

    return Zero(), Mean()


def test_backtest_scores_summary_and_comparison_end_to_end():
    from forecast.backtesting import backtest
    from forecast.comparison import compare, select_models

    ds = pd.date_range("2018-01-01", periods=30, freq="MS")
    y = np.zeros(30, int)
    y[[3, 11, 26]] = [2, 1, 3]  # one event inside the 6 scored months (origin 26)
    panel = pd.DataFrame({"unique_id": "s", "ds": ds, "y": y, "country": "C", "province": "P",
                          "event_type": "E"})
    zero, mean = _specs()
    res = backtest(panel, {"base": mean, "zero": zero}, horizon=1, n_origins=6)
    ps, f = res.point_scores, res.forecasts
    z = (f["model"] == "zero").to_numpy()
    hit = z & (f["y"] > 0).to_numpy()
    assert hit.sum() == 1
    assert np.isposinf(ps.loc[hit, "log"]).all()
    np.testing.assert_allclose(ps.loc[hit, "log_floored"], CAP, rtol=RTOL)
    assert (ps.loc[z & ~hit, "log"] == 0).all() and (ps.loc[z, "impossible"] == hit[z]).all()
    s = res.summary().set_index("model")
    assert s.loc["zero", "log"] == np.inf and s.loc["zero", "n_impossible"] == 1
    assert s.loc["zero", "share_impossible"] == pytest.approx(1 / 6) and s.loc["base", "n_impossible"] == 0
    t = compare(res, baseline="base", metrics=("log", "rps")).set_index(["model", "metric"])
    assert t.loc[("zero", "log"), "n"] == 6 and t.loc[("zero", "log"), "verdict"].startswith("no better")
    sel = select_models(res, baseline="base", metric="log", by="series")
    assert (sel["model"] == "base").all() and (sel["best_scoring"] == "base").all()


def test_more_impossible_outcomes_than_the_baseline_is_never_better():
    # the finite cells leave out exactly the outcomes the over-confident model called impossible
    from forecast.comparison import compare, select_models

    base, _, _ = scores_for()
    one = base.copy()
    one[2] = np.inf
    over = base * 0.1
    over[[5, 9, 17]] = np.inf
    res, _ = fake_result({"climatology": one, "over": over})
    t = compare(res, baseline="climatology", metrics=("log",)).set_index("model")
    assert t.loc["over", "p_value"] < 0.05  # the test on finite cells alone says "better"
    assert not t.loc["over", "significant"]
    assert t.loc["over", "verdict"] == "no better: 3 impossible outcomes (baseline: 1)"
    sel = select_models(res, baseline="climatology", metric="log", by="global")
    assert (sel["best_scoring"] == "climatology").all() and (sel["model"] == "climatology").all()
