"""Scores against independent references: kernel-form CRPS, scoringrules, scipy.stats, hand cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from forecast import scoring
from forecast.distributions import CountForecast

MUS = np.array([0.05, 0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0])
ALPHAS = np.array([0.0, 0.5, 2.0])
YS = np.arange(0, 21)


def index(n: int) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": [f"s{i}" for i in range(n)],
                         "ds": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n), "D"),
                         "h": np.ones(n, dtype=np.int64)})


def ref_dist(mu: float, alpha: float):
    """scipy reference: NB2 as nbinom(n=1/alpha, p=1/(1+alpha*mu))."""
    return stats.poisson(mu) if alpha == 0 else stats.nbinom(1 / alpha, 1 / (1 + alpha * mu))


def ref_cdf(k, mu, alpha):
    """Vectorised scipy cdf of NB2 (Poisson where alpha = 0)."""
    k, mu, alpha = np.broadcast_arrays(np.asarray(k, float), np.asarray(mu, float), np.asarray(alpha, float))
    a = np.where(alpha > 0, alpha, 1.0)
    return np.where(alpha > 0, stats.nbinom.cdf(k, 1 / a, 1 / (1 + a * mu)), stats.poisson.cdf(k, mu))


def brute_rps(dist, y: int) -> float:
    """sum_k (F(k) - 1{y <= k})^2 by an explicit sum up to where 1 - F < 1e-17 (and past y)."""
    kmax = y + 64
    while dist.sf(kmax) > 1e-17:  # (isf is nan for some laws: walk instead)
        kmax *= 2
    k = np.arange(kmax)
    return float(np.sum((dist.cdf(k) - (y <= k)) ** 2))


def grid():
    mu, alpha, y = (a.ravel() for a in np.meshgrid(MUS, ALPHAS, YS, indexing="ij"))
    return mu, alpha, y


@pytest.fixture(scope="module")
def grid_forecast():
    mu, alpha, y = grid()
    return mu, alpha, y, CountForecast.negbin(index(mu.size), mu, alpha, model="nb")


# --------------------------------------------------------------------------- RPS
def test_rps_equals_kernel_form_on_same_pmf(grid_forecast):
    """CRPS = E|X - y| - 1/2 E|X - X'| by explicit double sums over the renormalised pmf."""
    mu, alpha, y, fc = grid_forecast
    p = fc.pmf / fc.pmf.sum(axis=1, keepdims=True)
    dense = CountForecast.from_pmf(index(mu.size), p, model="dense")  # tail 0: same law as p
    ours = scoring.rps(dense, y)
    k = np.arange(p.shape[1])
    absdiff = np.abs(k[:, None] - k[None, :])
    for i in range(mu.size):
        e_xy = np.sum(p[i] * np.abs(k - y[i]))
        e_xx = np.sum(p[i][:, None] * p[i][None, :] * absdiff)
        assert abs(ours[i] - (e_xy - 0.5 * e_xx)) < 1e-10, (mu[i], alpha[i], y[i])


def test_rps_matches_scoringrules_negbin_and_poisson(grid_forecast):
    import scoringrules as sr  # a test dependency (pyproject [test])
    mu, alpha, y, fc = grid_forecast
    ours = scoring.rps(fc, y)
    nb = alpha > 0
    # scoringrules' NB is (n, prob) with mean n(1-p)/p; its mu= keyword maps to prob = n/(n+mu)
    ref_nb = sr.crps_negbinom(y[nb].astype(float), 1 / alpha[nb], mu=mu[nb])
    np.testing.assert_allclose(ours[nb], ref_nb, rtol=0, atol=1e-8)
    # Poisson: float inputs only. scoringrules 0.10's Poisson pmf is mean ** obs * exp(-mean)
    # / obs!: with int arrays mean ** obs is int64 and wraps, so crps_poisson(20, 10) gives
    # 8.19827 (exact 8.23269) and crps_poisson(20, 20) gives -2.51521 (exact 1.03820); with
    # floats it overflows for large counts (crps_poisson(200., 180.) is nan). With floats
    # its closed form is right on this grid (outcomes <= 20).
    ref_p = sr.crps_poisson(y[~nb].astype(float), mu[~nb].astype(float))
    np.testing.assert_allclose(ours[~nb], ref_p, rtol=0, atol=1e-8)


def test_rps_poisson_values_where_scoringrules_int_inputs_fail():
    fc = CountForecast.poisson(index(2), [10.0, 20.0], model="p")
    ours = scoring.rps(fc, [20, 20])
    ref = [brute_rps(stats.poisson(10.0), 20), brute_rps(stats.poisson(20.0), 20)]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours, [8.232691072361666, 1.0382025166898616], rtol=0, atol=1e-10)


def test_rps_beyond_support_exact_and_not_clipped():
    # K is capped at 200 while NB(50, alpha=2) keeps 4.6% of its mass beyond: the terms
    # beyond K come from the parametric form; y = 400 and y = 250 lie above K
    mu, alpha = np.array([50.0, 50.0, 50.0, 3.0, 3.0]), np.array([2.0, 2.0, 2.0, 0.0, 0.0])
    y = np.array([10, 250, 400, 40, 30])
    fc = CountForecast.negbin(index(5), mu, alpha, model="nb")
    assert fc.K < 250 and fc.tail[0] > 0.01
    ours = scoring.rps(fc, y)
    ref = [brute_rps(ref_dist(m, a), yy) for m, a, yy in zip(mu, alpha, y)]
    np.testing.assert_allclose(ours, ref, rtol=1e-13, atol=1e-10)
    assert ours[2] - ours[1] > 100 and ours[3] - ours[4] > 9  # not clipped to K


def test_rps_empirical_tail_sits_at_k_plus_1():
    # pmf [0.5, 0.3] + tail 0.2 placed at 2: F = 0.5, 0.8, 1, 1, ...
    fc = CountForecast.from_pmf(index(1), [[0.5, 0.3]], model="e", tail=[0.2])
    assert scoring.rps(fc, [0])[0] == pytest.approx(0.25 + 0.04, abs=1e-15)
    assert scoring.rps(fc, [5])[0] == pytest.approx(0.25 + 0.64 + 1 + 1 + 1, abs=1e-14)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 80.0), st.sampled_from([0.0, 1e-3, 0.3, 1.0, 4.0]),
                          st.integers(0, 300)), min_size=1, max_size=12))
def test_rps_brute_force_property(rows):
    """Mixed widths in one forecast (narrow and heavy rows, large outcomes) change nothing."""
    mu, alpha, y = (np.array(c) for c in zip(*rows))
    fc = CountForecast.negbin(index(mu.size), mu, alpha, model="nb", history_max=50)
    ours = scoring.rps(fc, y)
    ref = [brute_rps(ref_dist(m, a), yy) for m, a, yy in zip(mu, alpha, y)]
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-11)


def test_rps_truncated_rows_are_exact():
    """Rows are scored on the narrowest prefix 0..w-1 holding all but ~1e-10 of their mass:
    a fine grid of means puts rows just either side of every width; all must be exact."""
    mu, alpha, y = (a.ravel() for a in np.meshgrid(np.linspace(0.2, 40, 120), [0.3, 1.0, 3.0], [0, 3],
                                                   indexing="ij"))
    fc = CountForecast.negbin(index(mu.size), mu, alpha, model="nb", history_max=500)
    ours = scoring.rps(fc, y)
    ref = np.array([brute_rps(ref_dist(m, a), yy) for m, a, yy in zip(mu, alpha, y)])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-12)


def test_scores_do_not_depend_on_row_order_or_company(grid_forecast):
    mu, alpha, y, fc = grid_forecast
    full = scoring.score_all(fc, y)
    perm = np.random.default_rng(3).permutation(mu.size)
    shuffled = scoring.score_all(fc.subset(perm), y[perm])
    alone = scoring.score_all(fc.subset(perm[:5]), y[perm[:5]])
    for key in full:
        np.testing.assert_allclose(shuffled[key], full[key][perm], rtol=0, atol=1e-13, err_msg=key)
        np.testing.assert_allclose(alone[key], full[key][perm[:5]], rtol=0, atol=1e-13, err_msg=key)


# --------------------------------------------------------------------------- log score
def test_log_score_matches_scipy(grid_forecast):
    mu, alpha, y, fc = grid_forecast
    ref = np.array([-ref_dist(m, a).logpmf(yy) for m, a, yy in zip(mu, alpha, y)])
    ours = scoring.log_score(fc, y, floor=0.0)
    np.testing.assert_allclose(ours, ref, rtol=1e-9)
    floored = scoring.log_score(fc, y, floor=scoring.LOG_FLOOR)
    np.testing.assert_allclose(floored, np.minimum(ref, -np.log(1e-12)), rtol=1e-9)


def test_log_score_far_above_support():
    fc = CountForecast.poisson(index(3), 3.0, model="p")
    y = np.array([40, 20, fc.K + 1])
    assert (y > fc.K).all()
    ref = -stats.poisson(3.0).logpmf(y)
    ours = scoring.log_score(fc, y, floor=0.0)
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, ref, rtol=1e-11)  # 69.376..., exact, not clipped to K
    # unfloored by default; the explicit floor: p(40) = 7e-31 is floored, p(20) = 7.1e-11 is not
    np.testing.assert_allclose(scoring.log_score(fc, y), ref, rtol=1e-11)
    np.testing.assert_allclose(scoring.log_score(fc, y, floor=scoring.LOG_FLOOR)[:2], [-np.log(1e-12), ref[1]],
                               rtol=1e-11)


def test_log_floor_applies_only_below_floor():
    fc = CountForecast.from_pmf(index(2), [[1 - 2e-12, 2e-12, 0.0], [1 - 5e-13, 5e-13, 0.0]], model="e")
    floor = scoring.LOG_FLOOR
    np.testing.assert_allclose(scoring.log_score(fc, [1, 1], floor=floor), [-np.log(2e-12), -np.log(1e-12)],
                               rtol=1e-12)
    assert scoring.log_score(fc, [2, 2], floor=floor) == pytest.approx([-np.log(1e-12)] * 2)
    assert (scoring.log_score(fc, [2, 2]) == np.inf).all()  # unfloored by default


# --------------------------------------------------------------------------- other scores
HAND = [[0.1, 0.2, 0.4, 0.2, 0.1]]  # F = 0.1, 0.3, 0.7, 0.9, 1.0


def test_interval_score_and_coverage_hand_case():
    fc = CountForecast.from_pmf(index(3), HAND * 3, model="e")
    y = np.array([0, 2, 4])
    # 80%: quantiles 0.1 -> 0 (F(0) = 0.1), 0.9 -> 3; [0, 3], 2/alpha = 10
    np.testing.assert_allclose(scoring.interval_score(fc, y, 80), [3, 3, 3 + 10 * 1], rtol=1e-14)
    np.testing.assert_array_equal(scoring.coverage(fc, y, 0.8), [1, 1, 0])
    # 50%: quantiles 0.25 -> 1, 0.75 -> 3; [1, 3], 2/alpha = 4
    np.testing.assert_allclose(scoring.interval_score(fc, y, 50), [2 + 4 * 1, 2, 2 + 4 * 1], rtol=1e-14)
    np.testing.assert_array_equal(scoring.coverage(fc, y, 50), [0, 1, 0])


def test_all_levels_at_once_hand_case():
    # HAND: 50% [1, 3], 80% [0, 3], 95% [0, 4]; a point mass at 2 gives [2, 2] at every level
    fc = CountForecast.from_pmf(index(2), HAND + [[0, 0, 1.0, 0, 0]], model="e")
    sc = scoring.score_all(fc, [2, 2])
    np.testing.assert_allclose([sc["interval_50"][0], sc["interval_80"][0], sc["interval_95"][0]], [2, 3, 4])
    np.testing.assert_allclose([sc["interval_50"][1], sc["interval_80"][1], sc["interval_95"][1]], [0, 0, 0])
    sc = scoring.score_all(fc, [5, 0])
    np.testing.assert_allclose(sc["interval_95"], [4 + 40 * 1, 40 * 2], rtol=1e-12)
    np.testing.assert_allclose(sc["interval_50"], [2 + 4 * 2, 4 * 2], rtol=1e-12)


def test_intervals_are_the_forecasts_own(grid_forecast):
    mu, alpha, y, _ = grid_forecast
    fc = CountForecast.negbin(index(mu.size), mu * 3, alpha * 2, model="nb")  # K capped: beyond-K quantiles
    assert fc.tail.max() > 0.025
    sc = scoring.score_all(fc, y)
    for level in (50, 80, 95):
        lo, hi = fc.interval(level)
        a = 1 - level / 100
        expected = (hi - lo) + 2 / a * np.maximum(lo - y, 0) + 2 / a * np.maximum(y - hi, 0)
        np.testing.assert_array_equal(sc[f"interval_{level}"], expected)
        np.testing.assert_array_equal(sc[f"coverage_{level}"], (lo <= y) & (y <= hi))


def test_brier_hand_case():
    fc = CountForecast.from_pmf(index(3), HAND * 3, model="e")
    y = np.array([0, 2, 3])
    np.testing.assert_allclose(scoring.brier(fc, y, 1), [0.81, 0.01, 0.01], atol=1e-15)
    np.testing.assert_allclose(scoring.brier(fc, y, [3, 5]), [[0.09, 0], [0.09, 0], [0.49, 0]], atol=1e-15)


def test_brier_matches_scipy_exceedance(grid_forecast):
    mu, alpha, y, fc = grid_forecast
    ks = [1, 5, 30]
    p = 1 - ref_cdf(np.array(ks)[None, :] - 1, mu[:, None], alpha[:, None])
    np.testing.assert_allclose(scoring.brier(fc, y, ks), (p - (y[:, None] >= ks)) ** 2, rtol=0, atol=1e-12)


def test_dss_closed_form_and_point_forecast():
    fc = CountForecast.negbin(index(4), [2.0, 2.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0], model="nb")
    y = np.array([5, 5, 0, 1])
    expected = [9 / 2 + np.log(2), 9 / 4 + np.log(4), np.log(1e-12), 1e12 + np.log(1e-12)]
    np.testing.assert_allclose(scoring.dss(fc, y), expected, rtol=1e-14)


def test_point_errors():
    fc = CountForecast.poisson(index(3), [1.5, 0.0, 4.0], model="p")
    y = np.array([3, 0, 1])
    np.testing.assert_allclose(scoring.abs_error(fc, y), [1.5, 0, 3])
    np.testing.assert_allclose(scoring.sq_error(fc, y), [2.25, 0, 9])
    np.testing.assert_allclose(scoring.bias(fc, y), [-1.5, 0, 3])


def test_mase_scale_hand_cases():
    assert scoring.mase_scale([1, 3, 2, 5], 1) == pytest.approx(2.0)         # |2|, |-1|, |3|
    assert scoring.mase_scale([1, 3, 2, 5], 2) == pytest.approx(1.5)         # |2-1|, |5-3|
    assert scoring.mase_scale([1, 3, 2], 12) == pytest.approx(1.5)           # short: lag 1
    assert np.isnan(scoring.mase_scale([0, 0, 0, 0], 1))
    assert np.isnan(scoring.mase_scale([4, 4, 4], 1))
    assert np.isnan(scoring.mase_scale([1, 2, 1, 2, 1, 2], 2))               # seasonal: exact repeat
    assert np.isnan(scoring.mase_scale([7], 1))
    np.testing.assert_allclose(scoring.mase([1.0, 3.0, 2.0], [2.0, np.nan, 0.0]), [0.5, np.nan, np.nan])


def test_score_all_equals_single_scores(grid_forecast):
    mu, alpha, y, fc = grid_forecast
    sc = scoring.score_all(fc, y, levels=(0.5, 95), thresholds=(1, 5))
    assert set(sc) == {"log", "log_floored", "impossible", "rps", "dss", "brier_ge_1", "brier_ge_5", "coverage_50", "interval_50",
                       "coverage_95", "interval_95", "mass_50", "mass_95", "abs_error", "sq_error", "bias", "pit_lo", "pit_hi"}
    np.testing.assert_array_equal(sc["rps"], scoring.rps(fc, y))
    np.testing.assert_array_equal(sc["log"], scoring.log_score(fc, y))
    np.testing.assert_array_equal(sc["log_floored"], scoring.log_score(fc, y, floor=scoring.LOG_FLOOR))
    np.testing.assert_array_equal(sc["impossible"], scoring.impossible(fc, y))
    np.testing.assert_array_equal(sc["dss"], scoring.dss(fc, y))
    np.testing.assert_array_equal(sc["brier_ge_5"], scoring.brier(fc, y, 5))
    np.testing.assert_array_equal(sc["interval_95"], scoring.interval_score(fc, y, 0.95))
    lo, hi = fc.interval(0.95)  # the probability the forecast gives its own interval, against scipy
    np.testing.assert_allclose(sc["mass_95"], ref_cdf(hi, mu, alpha) - ref_cdf(lo - 1, mu, alpha), rtol=0, atol=1e-12)
    assert (sc["mass_95"] >= 0.95 - 1e-12).all() and (sc["mass_50"] >= 0.5 - 1e-12).all()
    pit_lo, pit_hi = ref_cdf(y - 1, mu, alpha), ref_cdf(y, mu, alpha)
    np.testing.assert_allclose(sc["pit_lo"], pit_lo, rtol=0, atol=1e-13)
    np.testing.assert_allclose(sc["pit_hi"], pit_hi, rtol=0, atol=1e-13)


def test_proper_scores_prefer_the_truth():
    rng = np.random.default_rng(11)
    n = 20_000
    mu = rng.gamma(1.0, 3.0, n)
    y = rng.negative_binomial(2.0, 1 / (1 + 0.5 * mu))  # NB2 alpha = 0.5
    fcs = {"truth": CountForecast.negbin(index(n), mu, 0.5, model="t"),
           "shifted": CountForecast.negbin(index(n), mu * 1.3, 0.5, model="s"),
           "overdispersed": CountForecast.negbin(index(n), mu, 2.0, model="o")}
    rps_mean = {k: scoring.rps(f, y).mean() for k, f in fcs.items()}
    log_mean = {k: scoring.log_score(f, y).mean() for k, f in fcs.items()}
    for other in ("shifted", "overdispersed"):
        assert rps_mean["truth"] < rps_mean[other]
        assert log_mean["truth"] < log_mean[other]


@pytest.mark.parametrize("bad", [[-1, 0], [0.5, 1], [np.nan, 1], [1, 2, 3]])
def test_bad_outcomes_raise(bad):
    fc = CountForecast.poisson(index(2), 1.0, model="p")
    with pytest.raises(ValueError, match="y must be"):
        scoring.rps(fc, bad)


def test_pit_bounds_are_the_cdf_below_and_at_the_outcome():
    from forecast.distributions import CountForecast
    from forecast.scoring import pit

    idx = pd.DataFrame({"unique_id": ["a"] * 4, "ds": pd.date_range("2020-01-01", periods=4, freq="MS"),
                        "h": [1, 2, 3, 4]})
    fc = CountForecast.negbin(idx, [0.5, 2.0, 7.0, 30.0], [0.3, 0.0, 1.0, 0.5], model="m")
    y = np.array([0, 3, 1, 80])
    lo, hi = pit(fc, y)
    r, mu, a = 1 / 0.3, 0.5, 0.3
    assert lo[0] == 0.0 and hi[0] == pytest.approx(stats.nbinom.pmf(0, r, 1 / (1 + a * mu)), rel=1e-12)
    assert lo[1] == pytest.approx(stats.poisson.cdf(2, 2.0), rel=1e-12)
    assert hi[1] == pytest.approx(stats.poisson.cdf(3, 2.0), rel=1e-12)
    assert lo[3] == pytest.approx(stats.nbinom.cdf(79, 2, 1 / (1 + 0.5 * 30)), rel=1e-12)
    assert np.all(lo <= hi)
