"""Honest zeros (issue 12): the pooled Gamma–Poisson climatology, windows in years, the
long-run last rung, naive after a zero and the forecast mean floor."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import forecast.backtesting as bt
from forecast.combine import load_model
from forecast.models import Climatology, Empirical, Naive, NegBinGLM, Zero
from forecast.models._pooled import fit_prior_strength, long_run_rates, marginal_loglik
from forecast.models.base import FitFailure, ModelSpec, SeriesFit, SeriesForecast
from forecast.models.baselines import LongRunRate, nb_intercept_mle, window_periods
from forecast.models.ladder import rungs_of
from forecast.periods import parse_freq
from forecast.specs import available_models


def panel(series: dict[str, list[int]], start="2020-01-06", freq="W-MON", **keys) -> pd.DataFrame:
    rows = []
    for uid, y in series.items():
        f = pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq=freq), "y": y})
        for k, v in keys.items():
            f[k] = v[uid]
        rows.append(f)
    return pd.concat(rows, ignore_index=True)


def active(seed: int, n: int, rate: float) -> list[int]:
    return np.random.default_rng(seed).poisson(rate, n).tolist()


# A weekly panel: one series with 9 events long ago and 156 quiet weeks since, three active ones.
QUIET = [2, 0, 3, 0, 1, 0, 0, 2, 1] + [0] * 11 + [0] * 156
WEEKLY = panel({"quiet": QUIET, "a": active(1, 176, 2.0), "b": active(2, 176, 0.4), "c": active(3, 176, 5.0)})


def coef(fitted, uid: str, term: str) -> float:
    c = fitted.coefficients()
    return float(c.loc[(c["unique_id"] == uid) & (c["term"] == term), "estimate"].item())


def test_quiet_window_after_old_events_is_neither_certain_nor_the_long_run_frequency():
    fitted = Climatology().fit(WEEKLY)
    fc = fitted.forecast(3)
    rows = (fc.index["unique_id"] == "quiet").to_numpy()
    p1 = fc.prob_at_least(1)[rows]
    nonzero_share = np.mean(np.array(QUIET) > 0)
    assert np.all(p1 > 1e-4) and np.all(p1 < nonzero_share)
    assert fitted.diagnostics().set_index("unique_id").loc["quiet", "n_obs"] == 156  # 3 years of weeks
    # the estimator without a prior saw only the quiet window: a point mass (floored only
    # by the forecast guard at 1% of the series' mean)
    none = Climatology(prior="none").fit(WEEKLY).forecast(3)
    assert np.all(none.prob_at_least(1)[rows] < p1 / 3)


def test_predictive_pmf_is_the_documented_negative_binomial():
    fitted = Climatology().fit(WEEKLY)
    fc = fitted.forecast(1)
    y = {u: np.asarray(g["y"]) for u, g in WEEKLY.groupby("unique_id")}
    rbar = sum(v.sum() for v in y.values()) / sum(len(v) for v in y.values())
    for r, uid in enumerate(fc.index["unique_id"]):
        v = y[uid]
        b = coef(fitted, uid, "prior_strength")
        m = (v.sum() + rbar) / (len(v) + 1)
        assert coef(fitted, uid, "long_run_rate") == pytest.approx(m, rel=1e-12)
        w = v[-156:]
        S, W = w.sum(), len(w)
        _, alpha_w, _ = nb_intercept_mle(w)
        shape = b * m + S
        mu = shape / (b + W)
        alpha = alpha_w * (1 + 1 / shape) + 1 / shape
        k = np.arange(fc.pmf.shape[1])
        ref = stats.nbinom.pmf(k, 1 / alpha, 1 / (1 + alpha * mu))
        np.testing.assert_allclose(fc.pmf[r], ref, rtol=0, atol=1e-10)


def test_prior_strength_maximises_the_pooled_negative_binomial_likelihood():
    rng = np.random.default_rng(5)
    m = rng.gamma(2.0, 1.0, 60)
    W = rng.integers(5, 40, 60).astype(float)
    S = rng.poisson(W * rng.gamma(3.0 * m, 1 / 3.0)).astype(float)
    for b in (0.1, 2.0, 50.0):  # the likelihood against scipy's NB pmf of the window sums
        ref = stats.nbinom.logpmf(S, b * m, b / (b + W)).sum()
        assert marginal_loglik(b, m, S, W) == pytest.approx(ref, rel=1e-10)
    b_hat = fit_prior_strength(m, S, W)
    grid = np.exp(np.linspace(np.log(1e-3), np.log(1e5), 4001))
    ll = np.array([stats.nbinom.logpmf(S, g * m, g / (g + W)).sum() for g in grid])
    best = grid[np.argmax(ll)]
    assert b_hat == pytest.approx(best, rel=0.01)
    assert marginal_loglik(b_hat, m, S, W) >= ll.max() - 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulated_gamma_poisson_panel_recovers_the_prior_strength(seed):
    # 1000 series: long-run rate m_i, the window's rate λ_i ~ Gamma(b·m_i, b), b = 4.
    # The MLE's standard error here is about 0.35 (from 200 replications): a 40% band is
    # over 4 standard errors.
    rng = np.random.default_rng(seed)
    b, n, W = 4.0, 1000, 12
    m = rng.gamma(2.0, 0.75, n)
    S = rng.poisson(W * rng.gamma(b * m, 1 / b))
    assert fit_prior_strength(m, S, np.full(n, W)) == pytest.approx(b, rel=0.4)


def test_end_to_end_recovery_through_the_climatology_fit():
    # The same through Climatology: 200 series with 400 periods at rate m_i before a 12-period
    # window at λ_i ~ Gamma(b·m_i, b): m_i is then estimated from the history (b = 4).
    rng = np.random.default_rng(11)
    b, n = 4.0, 200
    m = rng.gamma(2.0, 0.75, n)
    lam = rng.gamma(b * m, 1 / b)
    ys = {f"s{i:03d}": np.r_[rng.poisson(m[i], 400), rng.poisson(lam[i], 12)].tolist() for i in range(n)}
    fitted = Climatology(window=12).fit(panel(ys, freq="MS"))
    assert coef(fitted, "s000", "prior_strength") == pytest.approx(b, rel=0.5)


def test_long_run_rates_shrink_to_the_group_rate_and_are_positive_after_events():
    totals, lengths = np.array([9.0, 0.0, 300.0]), np.array([176.0, 176.0, 176.0])
    m = long_run_rates(totals, lengths, np.array(["x", "x", "y"]))
    rx = 9 / 176  # (the series without events neither dilutes the rate nor gets one)
    np.testing.assert_allclose(m, [(9 + rx) / 177, 0.0, (300 + 300 / 176) / 177], rtol=1e-14)


def test_a_series_without_events_changes_no_other_series():
    more = pd.concat([WEEKLY, panel({"never": [0] * 176})], ignore_index=True)
    a, b = Climatology().fit(WEEKLY).forecast(2), Climatology().fit(more).forecast(2)
    rows = (b.index["unique_id"] != "never").to_numpy()
    np.testing.assert_array_equal(a.pmf, b.pmf[rows][:, :a.pmf.shape[1]])
    assert np.all(b.pmf[~rows, 0] == 1.0)


def test_groups_are_event_types_when_the_panel_has_them():
    keys = {"country": {u: "X" for u in ("quiet", "a", "b", "c")},
            "province": {u: u for u in ("quiet", "a", "b", "c")},
            "event_type": {"quiet": "riots", "a": "riots", "b": "battles", "c": "battles"}}
    typed = panel({u: WEEKLY.loc[WEEKLY.unique_id == u, "y"].tolist() for u in ("quiet", "a", "b", "c")}, **keys)
    base = Climatology().fit(typed).forecast(1)
    # changing the battles leaves the riots alone ...
    other = typed.copy()
    other.loc[other.unique_id == "c", "y"] = 40
    moved = Climatology().fit(other).forecast(1)
    riots = (base.index["unique_id"].isin(["quiet", "a"])).to_numpy()
    np.testing.assert_array_equal(base.pmf[riots], moved.pmf[riots][:, :base.pmf.shape[1]])
    # ... and without the keys every series pools together
    flat = Climatology().fit(typed[["unique_id", "ds", "y"]]).forecast(1)
    assert not np.allclose(flat.mean[riots], base.mean[riots])


def test_backtests_pool_over_the_panel_whatever_the_chunks_and_jobs(monkeypatch):
    keys = {"country": {u: "X" for u in "pqrstuv"}, "province": {u: u for u in "pqrstuv"},
            "event_type": {u: ("riots" if u in "pqr" else "battles") for u in "pqrstuv"}}
    ys = {u: active(i, 60, 0.3 + i) for i, u in enumerate("pqrstuv")}
    ys["q"] = [3, 1, 2] + [0] * 57
    p = panel(ys, freq="MS", **keys)
    ref = bt.backtest(p, [Climatology()], horizon=2, n_origins=3, progress=False)
    monkeypatch.setattr(bt, "SERIES_CHUNK", 2)
    chunked = bt.backtest(p, [Climatology()], horizon=2, n_origins=3, progress=False)
    pd.testing.assert_frame_equal(ref.point_scores, chunked.point_scores)
    two = bt.backtest(p, [Climatology()], horizon=2, n_origins=3, jobs=2, progress=False)
    pd.testing.assert_frame_equal(ref.point_scores, two.point_scores)
    # and each origin equals a fit on the data up to it (event-type groups included)
    cut = pd.Timestamp(ref.settings["origins"][0])
    direct = Climatology().fit(p[p["ds"] <= cut]).forecast(2)
    got = ref.forecasts[ref.forecasts["cutoff"] == cut]
    np.testing.assert_allclose(got["mean"].to_numpy(), direct.mean, rtol=1e-13)


class _FailsOnQuiet(ModelSpec):
    """A model whose own fit fails for the series 'quiet' (its ladder: climatology, zero)."""

    name = "fails_on_quiet"
    draws = False
    fallbacks = (Climatology, Zero)

    def _fit_series(self, s):
        if s.uid == "quiet":
            raise FitFailure("no")
        return SeriesFit(self, n_obs=len(s.y), loglik=0.0)

    def _forecast_series(self, fit, s, h, future, rng):
        return SeriesForecast("poisson", mu=np.full(h, 1.0))


class _FailsOnQuietToZero(_FailsOnQuiet):
    name = "fails_on_quiet_to_zero"
    fallbacks = (Zero,)


def test_a_climatology_rung_pools_each_series_alone():
    # A lower rung must not depend on which other series failed (nor on backtest chunks):
    # there each series is its own group.
    fitted = _FailsOnQuiet().fit(WEEKLY)
    assert fitted.diagnostics().set_index("unique_id").loc["quiet", "fallback"] == "climatology"
    got = fitted.forecast(1)
    rows = (got.index["unique_id"] == "quiet").to_numpy()
    # its own rate m = T/n, prior strength b = W (156): mean (b·m + S)/(b + W) = m/2
    assert got.mean[rows][0] == pytest.approx(sum(QUIET) / len(QUIET) / 2, rel=1e-13)
    assert 0 < got.prob_at_least(1)[rows][0] < np.mean(np.array(QUIET) > 0)
    # and the same whatever the other series are
    again = _FailsOnQuiet().fit(WEEKLY[WEEKLY.unique_id.isin(["quiet", "c"])]).forecast(1)
    assert again.mean[(again.index["unique_id"] == "quiet").to_numpy()][0] == got.mean[rows][0]


def test_batched_and_per_series_pooled_fits_agree():
    from forecast.models.base import batched_engine

    a = Climatology().fit(WEEKLY).forecast(2)
    with batched_engine(False):
        b = Climatology().fit(WEEKLY).forecast(2)
    np.testing.assert_array_equal(a.pmf, b.pmf)


def test_windows_are_three_years_of_the_panel_frequency():
    got = {k: window_periods(None, parse_freq(k)) for k in ("day", "week", "month", "quarter", "year")}
    assert got == {"day": 1095, "week": 156, "month": 36, "quarter": 12, "year": 3}
    assert window_periods(7, parse_freq("week")) == 7
    y = active(4, 200, 3.0)
    for freq, W in (("W-MON", 156), ("MS", 36), ("QS", 12), ("YS", 3)):
        p = panel({"s": y}, start="1800-01-01" if freq == "YS" else "2000-01-03" if freq == "W-MON" else "2000-01-01",
                  freq=freq)
        c = Climatology(prior="none").fit(p).coefficients().set_index("term")["estimate"]
        assert c["mean"] == pytest.approx(np.mean(y[-W:]), rel=1e-12), freq
        e = Empirical().fit(p).forecast(1)
        np.testing.assert_allclose(e.pmf[0, :max(y[-W:]) + 1], np.bincount(y[-W:]) / W, atol=1e-15)


def test_the_last_rung_is_the_long_run_rate_not_zero():
    rungs = rungs_of(NegBinGLM())
    assert rungs[-1][0] == "long_run" and isinstance(rungs[-1][1], LongRunRate)
    assert rungs_of(Zero())[0][1] == Zero()  # the zero model itself stays a point mass
    fc = Zero().fit(WEEKLY).forecast(2)
    assert np.all(fc.pmf[:, 0] == 1.0)
    fitted = LongRunRate().fit(WEEKLY)
    n = len(QUIET)
    rbar = WEEKLY["y"].sum() / len(WEEKLY)
    assert fitted.forecast(1).mean[list(fitted.unique_ids).index("quiet")] == pytest.approx(
        (sum(QUIET) + rbar) / (n + 1), rel=1e-13)
    # as the last rung (a fit that fails everywhere above it): the series' own rate
    fc = _FailsOnQuietToZero().fit(WEEKLY).forecast(1)
    assert fc.mean[(fc.index["unique_id"] == "quiet").to_numpy()][0] == pytest.approx(sum(QUIET) / n, rel=1e-13)


def test_naive_after_a_zero_is_the_rate_after_zeros():
    y = [0, 3, 0, 0, 1, 4, 0]
    fc = Naive().fit(panel({"s": y})).forecast(2)
    after = [y[t] for t in range(1, len(y)) if y[t - 1] == 0]  # 3, 0, 1
    assert fc.mean.tolist() == pytest.approx([(sum(after) + np.mean(y)) / (len(after) + 1)] * 2, rel=1e-14)
    assert Naive().fit(panel({"s": [0, 0, 0]})).forecast(1).mean.tolist() == [0.0]  # never an event


class _Underflows(ModelSpec):
    """Means that underflow to 0 (INGARCH / GLM style), as Poisson means or simulated paths."""

    name = "underflows"
    draws = False
    fallbacks = (Zero,)

    def _fit_series(self, s):
        return SeriesFit(self, n_obs=len(s.y), loglik=0.0)

    def _forecast_series(self, fit, s, h, future, rng):
        if s.uid == "b":
            return SeriesForecast("samples", paths=np.zeros((h, 50), dtype=np.int64))
        return SeriesForecast("poisson", mu=np.full(h, 1e-300 if s.uid != "a" else 2.0))


def test_forecast_means_that_underflow_are_floored_for_series_with_events():
    p = panel({"quiet": QUIET, "a": active(1, 176, 2.0), "b": active(2, 176, 0.4), "none": [0] * 176})
    fitted = _Underflows().fit(p)
    fc = fitted.forecast(3)
    d = fitted.diagnostics().set_index("unique_id")
    assert d["mean_floored"].to_dict() == {"quiet": True, "a": False, "b": True, "none": False}
    floor = {u: 0.01 * np.mean(g["y"]) for u, g in p.groupby("unique_id")}
    for uid in ("quiet", "b"):
        rows = (fc.index["unique_id"] == uid).to_numpy()
        np.testing.assert_allclose(fc.mean[rows], floor[uid], rtol=1e-9)
        np.testing.assert_allclose(fc.pmf[rows, 0], np.exp(-floor[uid]), rtol=1e-12)
    rows = (fc.index["unique_id"] == "none").to_numpy()
    assert np.all(fc.prob_at_least(1)[rows] < 1e-290)  # no events: no floor


def _quiet_monthly() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    t = np.arange(72)
    season = np.exp(0.8 * np.sin(2 * np.pi * t / 12))
    ys = {f"s{i}": rng.poisson((1 + i) * season).tolist() for i in range(4)}
    ys["quiet"] = [2, 0, 1, 3, 0, 0, 1, 0, 2, 0, 0, 1] + [0] * 60
    return panel(ys, start="2015-01-01", freq="MS")


@pytest.mark.parametrize("name", sorted(set(available_models()) - {"zero"}))
def test_no_bundled_model_forecasts_a_certain_zero_after_past_events(name):
    spec = load_model(name)
    if hasattr(spec, "n_paths"):
        spec.set_params(n_paths=200)  # (fast; the guard is what is tested)
    if name == "arima":
        spec.set_params(order=(1, 0, 0), seasonal=False)  # (no order search: seconds, not minutes)
    panel, extra = _quiet_monthly(), {}
    if name in ("endemic_epidemic", "ingarch_spillover"):  # spill-over needs neighbours: a chain
        ids = sorted(panel["unique_id"].unique())
        extra = {"adjacency": pd.DataFrame({"region_a": ids[:-1], "region_b": ids[1:]})}
    fc = spec.fit(panel, **extra).forecast(6)
    rows = (fc.index["unique_id"] == "quiet").to_numpy()
    assert np.all(fc.prob_at_least(1)[rows] > 0), name
