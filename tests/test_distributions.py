"""CountForecast: pmf/cdf/quantiles against scipy.stats and brute-force sums, sampling, mixtures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from forecast.distributions import TAIL_TOL, CountForecast

MUS = np.array([0.01, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0])
ALPHAS = np.array([0.0, 1e-3, 0.1, 0.5, 1.0, 3.0])
SIG = 1e-3  # significance level of every statistical test


def index(n: int, cutoff: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame({"unique_id": [f"s{i}" for i in range(n)],
                          "ds": pd.Timestamp("2026-05-01") + pd.to_timedelta(np.arange(n), "D"),
                          "h": np.ones(n, dtype=np.int64)})
    if cutoff:
        frame.insert(2, "cutoff", pd.Timestamp("2026-04-01"))
    return frame


def series_index(n_series: int, horizon: int) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n_series)], horizon),
                         "ds": np.tile(pd.date_range("2026-05-01", periods=horizon, freq="MS"), n_series),
                         "h": np.tile(np.arange(1, horizon + 1), n_series)})


def ref_dist(mu: float, alpha: float):
    """Independent scipy reference: NB2 as nbinom(n=1/alpha, p=1/(1+alpha*mu))."""
    if alpha == 0:
        return stats.poisson(mu)
    return stats.nbinom(1 / alpha, 1 / (1 + alpha * mu))


def ref_zi_pmf(k: np.ndarray, mu: float, alpha: float, pi: float) -> np.ndarray:
    return pi * (k == 0) + (1 - pi) * ref_dist(mu, alpha).pmf(k)


@pytest.fixture(scope="module")
def grid():
    mu, alpha = (a.ravel() for a in np.meshgrid(MUS, ALPHAS))
    return mu, alpha, CountForecast.negbin(index(mu.size), mu, alpha, model="nb", history_max=1000)


# --------------------------------------------------------------------------- support and tail
def test_rows_sum_to_one_minus_tail_and_tail_small(grid):
    mu, alpha, f = grid
    assert f.pmf.shape == (mu.size, f.K + 1) and f.pmf.dtype == np.float64
    np.testing.assert_allclose(f.pmf.sum(axis=1), 1 - f.tail, rtol=0, atol=1e-12)
    assert f.K < 10_000 and f.tail.max() < TAIL_TOL  # cap = 10 * history_max not reached
    ref_tail = np.array([ref_dist(m, a).sf(f.K) for m, a in zip(mu, alpha)])
    np.testing.assert_allclose(f.tail, ref_tail, rtol=1e-8, atol=1e-300)
    # K is the smallest such support: one row still needs K itself
    assert max(ref_dist(m, a).sf(f.K - 1) for m, a in zip(mu, alpha)) >= TAIL_TOL


def test_cap_truncates_and_records_tail():
    f = CountForecast.negbin(index(2), [50.0, 1.0], [3.0, 0.0], model="nb")  # no history: cap 200
    assert f.K == 200
    np.testing.assert_allclose(f.tail[0], ref_dist(50.0, 3.0).sf(200), rtol=1e-9)
    assert f.tail[0] > 1e-2
    np.testing.assert_allclose(f.pmf.sum(axis=1), 1 - f.tail, atol=1e-12)
    assert CountForecast.negbin(index(1), 50.0, 3.0, model="nb", history_max=300).K > 200


def test_pmf_matches_scipy(grid):
    mu, alpha, f = grid
    k = np.arange(f.K + 1)
    ref = np.array([ref_dist(m, a).pmf(k) for m, a in zip(mu, alpha)])
    np.testing.assert_allclose(f.pmf, ref, rtol=1e-9, atol=1e-300)


# --------------------------------------------------------------------------- moments
def test_moments_closed_form_and_pmf_sums(grid):
    mu, alpha, f = grid
    np.testing.assert_allclose(f.mean, mu, rtol=1e-15)
    np.testing.assert_allclose(f.var, mu + alpha * mu**2, rtol=1e-15)
    k = np.arange(f.K + 1)
    m1, m2 = f.pmf @ k, f.pmf @ k**2
    light = alpha * mu <= 20  # where the mass beyond K moves the moments by < 1e-6
    assert light.sum() == 55
    np.testing.assert_allclose(m1[light], f.mean[light], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose((m2 - m1**2)[light], f.var[light], rtol=1e-6, atol=1e-6)
    # heavy rows (alpha * mu > 20): add the exact contribution from beyond K
    big = np.arange(f.K + 1, 200_000)
    for i in np.flatnonzero(~light):
        p = ref_dist(mu[i], alpha[i]).pmf(big)
        np.testing.assert_allclose(m1[i] + p @ big, f.mean[i], rtol=1e-9)
        np.testing.assert_allclose(m2[i] + p @ big**2.0 - f.mean[i] ** 2, f.var[i], rtol=1e-6)


@pytest.mark.parametrize("alpha", [None, 0.0, 0.7, 3.0])
def test_zero_inflated_moments_against_brute_force(alpha):
    mu = np.array([0.0, 0.3, 2.0, 8.0, 25.0])
    pi = np.array([0.5, 0.9, 0.2, 0.0, 0.6])
    f = CountForecast.zero_inflated(index(5), mu, pi, alpha, model="zi", history_max=500)
    a = 0.0 if alpha is None else alpha
    k = np.arange(20_000)
    for i in range(5):
        p = ref_zi_pmf(k, mu[i], a, pi[i])
        m = p @ k
        np.testing.assert_allclose(f.mean[i], m, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(f.var[i], p @ (k - m) ** 2, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(f.pmf[i], p[: f.K + 1], rtol=1e-9, atol=1e-300)
    assert f.family == ("zip" if alpha is None else "zinb")
    y = np.array([0, 0, 3, 7, 40])
    np.testing.assert_allclose(f.logpmf_at(y), [np.log(ref_zi_pmf(y[i], mu[i], a, pi[i])) for i in range(5)],
                               rtol=1e-10)
    np.testing.assert_allclose(f.pmf.sum(axis=1), 1 - f.tail, atol=1e-12)


# --------------------------------------------------------------------------- cdf / pmf_at beyond K
def test_cdf_and_pmf_at_below_and_above_K(grid):
    mu, alpha, f = grid
    for k in (0, 3, f.K - 1, f.K, f.K + 1, f.K + 40, 2 * f.K):
        ref_cdf = np.array([ref_dist(m, a).cdf(k) for m, a in zip(mu, alpha)])
        ref_pmf = np.array([ref_dist(m, a).pmf(k) for m, a in zip(mu, alpha)])
        np.testing.assert_allclose(f.cdf(k), ref_cdf, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(f.pmf_at(np.full(mu.size, k)), ref_pmf, rtol=1e-9, atol=1e-300)
    k = np.arange(mu.size) * 7  # per-row points
    ref = np.array([ref_dist(m, a).cdf(kk) for m, a, kk in zip(mu, alpha, k)])
    np.testing.assert_allclose(f.cdf(k), ref, rtol=1e-10, atol=1e-14)
    assert (f.cdf(-1) == 0).all()


def test_far_tail_outcome_is_finite_not_clipped():
    f = CountForecast.negbin(index(2), [3.0, 3.0], [1.0, 0.0], model="nb")
    y = np.array([500, 500])
    p = f.pmf_at(y)
    assert f.K < 500 and p[0] > 0
    np.testing.assert_allclose(p[0], stats.nbinom(1.0, 0.25).pmf(500), rtol=1e-9)
    # Poisson(3) at 500 underflows as a probability but its log is finite and exact
    lp = f.logpmf_at(y)
    ref = [stats.nbinom(1.0, 0.25).logpmf(500), stats.poisson(3.0).logpmf(500)]
    np.testing.assert_allclose(lp, ref, rtol=1e-10)
    np.testing.assert_allclose(f.prob_at_least(60)[0], stats.nbinom(1.0, 0.25).sf(59), rtol=1e-9)
    assert 0 < f.prob_at_least(60)[1] < 1e-30  # tiny, kept in relative precision


def test_logpmf_near_poisson_alpha_uses_stable_path():
    # alpha < 1e-3 takes the direct-sum branch; check it against scipy's gammaln formula where that is exact enough
    f = CountForecast.negbin(index(3), [4.0, 4.0, 4.0], [1e-4, 9.99e-4, 1e-3], model="nb")
    y = np.array([30, 120, 120])
    ref = [ref_dist(4.0, a).logpmf(yy) for a, yy in zip([1e-4, 9.99e-4, 1e-3], y)]
    np.testing.assert_allclose(f.logpmf_at(y), ref, rtol=1e-9)


# --------------------------------------------------------------------------- quantiles and intervals
def test_quantile_equals_brute_force_search(grid):
    mu, alpha, f = grid
    qs = np.array([0.0, 0.01, 0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975, 0.99, 1 - 1e-7])
    Q = f.quantile(qs)
    assert Q.shape == (mu.size, qs.size) and Q.dtype == np.int64
    assert (np.diff(Q, axis=1) >= 0).all()
    kmax = Q.max() + 5
    for i, (m, a) in enumerate(zip(mu, alpha)):
        F = ref_dist(m, a).cdf(np.arange(kmax))  # independent cdf
        brute = [int(np.argmax(F >= q - 1e-12)) for q in qs]
        assert list(Q[i]) == brute, (m, a)
    np.testing.assert_array_equal(f.quantile(0.5), Q[:, 5])


def test_quantile_tolerance_absorbs_float_noise():
    f = CountForecast.from_pmf(index(1), np.full((1, 10), 0.1), model="u")  # uniform on 0..9
    assert np.cumsum(f.pmf[0])[7] < 0.8  # 0.7999999999999999: exactly 0.8 in real arithmetic
    assert f.quantile(0.8)[0] == 7 and f.quantile(0.8 + 1e-9)[0] == 8
    assert f.cdf(7)[0] >= 0.8 - 1e-12


def test_large_means_whose_zero_probability_underflows():
    mu, alpha = np.array([800.0, 800.0, 2.0]), np.array([0.0, 1e-4, 0.0])
    f = CountForecast.negbin(index(3), mu, alpha, model="nb", history_max=150)  # cap 1500
    assert f.K < 1500 and f.tail.max() < TAIL_TOL
    assert max(ref_dist(m, a).sf(f.K - 1) for m, a in zip(mu, alpha)) >= TAIL_TOL
    k = np.arange(f.K + 1)
    ref = np.array([ref_dist(m, a).pmf(k) for m, a in zip(mu, alpha)])
    np.testing.assert_allclose(f.pmf, ref, rtol=1e-8, atol=1e-300)
    np.testing.assert_allclose(f.pmf.sum(axis=1), 1 - f.tail, atol=1e-12)


def test_quantile_beyond_K_uses_parametric_form():
    f = CountForecast.negbin(index(1), 50.0, 3.0, model="nb")  # capped: 6 % mass beyond K = 200
    q = f.quantile([0.97, 0.999])[0]
    ref = ref_dist(50.0, 3.0)
    assert (q > f.K).all()
    assert list(q) == [int(ref.ppf(0.97)), int(ref.ppf(0.999))]


@pytest.mark.parametrize("level", [0.5, 0.8, 0.95, 0.99])
def test_interval_coverage_at_least_level(grid, level):
    mu, alpha, f = grid
    lo, hi = f.interval(level)
    cov = np.array([ref_dist(m, a).cdf(h) - ref_dist(m, a).cdf(l - 1) for m, a, l, h in zip(mu, alpha, lo, hi)])
    assert (cov >= level - 1e-12).all()  # float slack only; discreteness makes most rows over-cover
    # and the interval is tight: shrinking either end drops below (1 - level) / 2 on that side
    a = (1 - level) / 2
    F_lo = np.array([ref_dist(m, al).cdf(l - 1) for m, al, l in zip(mu, alpha, lo)])
    assert (F_lo < a + 1e-12).all()


def test_intervals_nested_and_percent_levels(grid):
    _, _, f = grid
    (l50, h50), (l80, h80), (l95, h95) = (f.interval(lv) for lv in (50, 80, 95))
    assert ((l95 <= l80) & (l80 <= l50) & (h50 <= h80) & (h80 <= h95)).all()
    np.testing.assert_array_equal(f.interval(0.8)[1], h80)
    with pytest.raises(ValueError):
        f.interval(1.0)


def test_prob_at_least(grid):
    mu, alpha, f = grid
    assert (f.prob_at_least(0) == 1).all()
    np.testing.assert_allclose(f.prob_at_least(1), 1 - f.pmf[:, 0], rtol=0, atol=1e-15)
    ref = np.array([ref_dist(m, a).sf(4) for m, a in zip(mu, alpha)])
    np.testing.assert_allclose(f.prob_at_least(5), ref, rtol=1e-9, atol=1e-15)


# --------------------------------------------------------------------------- sampling
def chisq_p(draws: np.ndarray, probs: np.ndarray) -> float:
    """Chi-square GOF p-value, pooling the upper bins until every expected count is >= 5."""
    n = draws.size
    counts = np.bincount(draws, minlength=probs.size)[: probs.size].astype(float)
    counts[-1] += (draws >= probs.size).sum()
    exp = probs * n
    keep = np.flatnonzero(exp >= 5)
    last = keep[-1]
    obs_b, exp_b = list(counts[: last]), list(exp[: last])
    obs_b.append(counts[last:].sum())
    exp_b.append(n - sum(exp_b))
    obs_b, exp_b = np.array(obs_b), np.array(exp_b)
    merge = exp_b < 5  # small low bins (e.g. P(0) for large mu) go to their neighbour
    if merge.any():
        obs_b, exp_b = obs_b[~merge], exp_b[~merge]
        obs_b[0] += counts.sum() - obs_b.sum()
        exp_b[0] += n - exp_b.sum()
    return stats.chisquare(obs_b, exp_b).pvalue


def test_samples_match_pmf_chi_square():
    mu, alpha, pi = np.array([0.2, 2.0, 7.0, 30.0]), np.array([0.0, 0.5, 0.1, 1.5]), np.array([0.0, 0.3, 0.0, 0.1])
    f = CountForecast.zero_inflated(index(4), mu, pi, alpha, model="zinb")
    draws = f.sample(20_000, np.random.default_rng(20260501))
    assert draws.shape == (4, 20_000) and draws.dtype == np.int64
    for i in range(4):
        k = np.arange(400)
        p = chisq_p(draws[i], ref_zi_pmf(k, mu[i], alpha[i], pi[i]))
        assert p > SIG, (i, p)
    np.testing.assert_array_equal(draws, f.sample(20_000, np.random.default_rng(20260501)))


def test_samples_beyond_K_follow_parametric_tail():
    f = CountForecast.negbin(index(1), 50.0, 3.0, model="nb")  # 6 % of draws land beyond K = 200
    draws = f.sample(50_000, np.random.default_rng(7))[0]
    ref = ref_dist(50.0, 3.0)
    assert (draws > f.K).any()
    edges = np.array([0, 1, 5, 20, 50, 100, 200, 201, 300, 500, 1000, 10**9])  # bins [e_i, e_{i+1})
    obs = np.histogram(draws, edges)[0]
    exp = np.diff(ref.cdf(edges - 1)) * draws.size
    assert stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue > SIG


def test_sample_requires_generator():
    f = CountForecast.poisson(index(2), 1.0, model="p")
    with pytest.raises(TypeError):
        f.sample(3, 42)


# --------------------------------------------------------------------------- limits
def test_alpha_to_zero_equals_poisson():
    mu = np.array([0.0, 0.05, 1.0, 4.0, 15.0, 40.0])
    p = CountForecast.poisson(index(6), mu, model="p")
    for a in (0.0, 1e-12, 1e-30):
        nb = CountForecast.negbin(index(6), mu, a, model="nb")
        assert nb.K == p.K
        np.testing.assert_allclose(nb.pmf, p.pmf, rtol=0, atol=1e-8)
        for k in (p.K + 3, 90):
            np.testing.assert_allclose(nb.cdf(k), p.cdf(k), rtol=0, atol=1e-8)
            np.testing.assert_allclose(nb.logpmf_at(np.full(6, k))[1:], p.logpmf_at(np.full(6, k))[1:], rtol=1e-8)
    # smooth: no jump between a tiny positive alpha and the exact Poisson rows
    nb = CountForecast.negbin(index(6), mu, 1e-7, model="nb")
    assert 0 < np.abs(nb.pmf - p.pmf).max() < 1e-6


@pytest.mark.parametrize("make", [
    lambda i: CountForecast.poisson(i, 0.0, model="m"),
    lambda i: CountForecast.negbin(i, 0.0, 2.0, model="m"),
    lambda i: CountForecast.zero_inflated(i, 0.0, 0.4, 1.0, model="m"),
])
def test_all_zero_series(make):
    f = make(index(3))
    assert f.K == 0 and (f.pmf[:, 0] == 1).all() and (f.tail == 0).all()
    lo, hi = f.interval(95)
    assert (lo == 0).all() and (hi == 0).all()
    assert (f.mean == 0).all() and (f.var == 0).all()
    frame = f.to_frame()
    assert not frame.isna().any().any()
    assert (f.pmf_at(np.array([0, 1, 7])) == [1, 0, 0]).all()
    assert (f.sample(10, np.random.default_rng(0)) == 0).all()
    assert np.isfinite(f.cdf(5)).all() and (f.prob_at_least(1) == 0).all()


def test_invalid_parameters_raise():
    with pytest.raises(ValueError, match="alpha"):
        CountForecast.negbin(index(2), 1.0, [0.1, -1.0], model="nb")
    with pytest.raises(ValueError, match="mu"):
        CountForecast.poisson(index(2), [np.nan, 1.0], model="p")
    with pytest.raises(ValueError, match="pi"):
        CountForecast.zero_inflated(index(1), 1.0, 1.5, model="z")
    with pytest.raises(ValueError, match="index"):
        CountForecast.poisson(pd.DataFrame({"unique_id": ["a"], "h": [1]}), 1.0, model="p")


# --------------------------------------------------------------------------- from_samples / from_pmf
@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(11)
    paths = rng.negative_binomial(2, 0.4, size=(3, 4, 500))
    paths[1] = 0  # an all-zero series
    return paths, CountForecast.from_samples(series_index(3, 4), paths, model="ar")


def test_from_samples_empirical(simulated):
    paths, f = simulated
    v = paths.reshape(12, 500)
    assert f.K == v.max() and (f.tail == 0).all()
    for r in range(12):
        np.testing.assert_array_equal(f.pmf[r], np.bincount(v[r], minlength=f.K + 1) / 500)
    np.testing.assert_array_equal(f.paths, paths)
    np.testing.assert_allclose(f.mean, v.mean(axis=1), rtol=1e-15)
    np.testing.assert_allclose(f.var, v.var(axis=1), rtol=1e-12)
    np.testing.assert_allclose(f.pmf @ np.arange(f.K + 1), f.mean, rtol=1e-12)
    assert f.components[0].shape == (0, 12)


def test_from_samples_cap_and_order_checks():
    paths = np.array([[[0, 1, 500, 2]]])
    f = CountForecast.from_samples(series_index(1, 1), paths, model="ar")  # cap 200
    assert f.K == 200 and f.tail[0] == 0.25 and f.mean[0] == 503 / 4
    bad = series_index(2, 2).iloc[[1, 0, 2, 3]]
    with pytest.raises(ValueError, match="series-major"):
        CountForecast.from_samples(bad, np.zeros((2, 2, 3), dtype=int), model="ar")


def test_subset_keeps_paths_only_for_whole_series(simulated):
    paths, f = simulated
    whole = f.subset(np.arange(4, 12))
    np.testing.assert_array_equal(whole.paths, paths[1:])
    np.testing.assert_array_equal(whole.pmf, f.pmf[4:])
    assert list(whole.index["unique_id"].unique()) == ["s1", "s2"]
    assert f.subset(np.arange(12) % 4 != 0).paths is None
    assert f.subset([1, 2, 3, 4]).paths is None  # four rows, but not one whole series
    assert f.subset([0, 2, 1, 3]).paths is None  # whole series, periods out of order
    np.testing.assert_array_equal(f.subset([8, 9, 10, 11, 0, 1, 2, 3]).paths, paths[[2, 0]])


def test_from_pmf_tail_and_renormalisation():
    g = CountForecast.from_pmf(index(1), [[0.5, 0.3 - 4e-10]], model="arima", tail=0.2)
    np.testing.assert_allclose(g.pmf.sum(axis=1) + g.tail, 1.0, rtol=0, atol=1e-15)
    pmf = np.array([[0.5, 0.3, 0.2 + 5e-10], [0.5, 0.3, 0.1]])
    f = CountForecast.from_pmf(index(2), pmf, model="arima")
    np.testing.assert_allclose(f.pmf.sum(axis=1), [1.0, 0.9], rtol=0, atol=1e-15)
    np.testing.assert_allclose(f.tail, [0.0, 0.1], atol=1e-15)
    assert pmf[0, 2] == 0.2 + 5e-10  # the caller's array is untouched
    np.testing.assert_array_equal(f.quantile(0.95), [2, 3])  # beyond K without a parametric form: K + 1
    assert (f.pmf_at(np.array([5, 5])) == 0).all()
    with pytest.raises(ValueError, match="more than 1"):
        CountForecast.from_pmf(index(1), [[0.6, 0.6]], model="arima")
    with pytest.raises(ValueError, match="tail"):
        CountForecast.from_pmf(index(1), [[0.6, 0.3]], model="arima", tail=0.2)


# --------------------------------------------------------------------------- mixtures and concat
def test_mixture_pmf_moments_and_beyond_K():
    mu = np.array([0.5, 3.0, 12.0])
    a = CountForecast.poisson(index(3), mu, model="p")
    b = CountForecast.negbin(index(3), mu * 2, 1.5, model="nb")
    w = np.array([[0.3, 0.6, 0.9], [0.7, 0.4, 0.1]])
    m = CountForecast.mixture([a, b], w, model="ens")
    assert m.K == max(a.K, b.K) > a.K
    k = np.arange(m.K + 1)
    ref = np.array([w[0, i] * stats.poisson(mu[i]).pmf(k) + w[1, i] * ref_dist(2 * mu[i], 1.5).pmf(k)
                    for i in range(3)])
    np.testing.assert_allclose(m.pmf, ref, rtol=1e-9, atol=1e-300)  # includes a's padding beyond its own K
    np.testing.assert_allclose(m.pmf.sum(axis=1), 1 - m.tail, atol=1e-12)
    kk = np.arange(20_000)
    for i in range(3):
        p = w[0, i] * stats.poisson(mu[i]).pmf(kk) + w[1, i] * ref_dist(2 * mu[i], 1.5).pmf(kk)
        np.testing.assert_allclose(m.mean[i], p @ kk, rtol=1e-9)
        np.testing.assert_allclose(m.var[i], p @ (kk - p @ kk) ** 2, rtol=1e-9)
    y = np.full(3, m.K + 25)
    ref_y = w[0] * stats.poisson(mu).pmf(y) + w[1] * np.array([ref_dist(2 * x, 1.5).pmf(m.K + 25) for x in mu])
    np.testing.assert_allclose(m.pmf_at(y), ref_y, rtol=1e-9)
    np.testing.assert_allclose(m.logpmf_at(y), np.log(ref_y), rtol=1e-10)
    ref_sf = w[0] * stats.poisson(mu).sf(y - 1) + w[1] * np.array([ref_dist(2 * x, 1.5).sf(m.K + 24) for x in mu])
    np.testing.assert_allclose(m.prob_at_least(y), ref_sf, rtol=1e-9)  # tiny, yet in relative precision
    # scalar weights broadcast; unnormalised weights are renormalised per row
    m2 = CountForecast.mixture([a, b], [2.0, 2.0], model="ens")
    np.testing.assert_allclose(m2.pmf, 0.5 * a._padded(m2.K)[0] + 0.5 * b.pmf, rtol=1e-12)


def test_mixture_tiny_exceedances_keep_relative_precision():
    rng = np.random.default_rng(3)
    mu, w = rng.gamma(1.0, 3.0, 40), rng.uniform(0.1, 1, 40)
    pa, pb = rng.uniform(0, 0.9, 40), rng.uniform(0, 0.9, 40)
    a = CountForecast.zero_inflated(index(40), mu, pa, model="zip")
    b = CountForecast.zero_inflated(index(40), 2 * mu, pb, 0.7, model="zinb")
    m = CountForecast.mixture([a, b], np.stack([w, 1 - w]), model="ens")
    for k in (m.K // 2, m.K + 60):  # inside the padded support and beyond it
        ref = w * (1 - pa) * stats.poisson(mu).sf(k - 1) + (1 - w) * (1 - pb) * np.array(
            [ref_dist(2 * x, 0.7).sf(k - 1) for x in mu])
        np.testing.assert_allclose(m.prob_at_least(k), ref, rtol=1e-9, atol=0)


def test_mixture_index_mismatch_raises():
    a = CountForecast.poisson(index(3), 1.0, model="p")
    other = index(3)
    other.loc[2, "h"] = 2
    b = CountForecast.poisson(other, 1.0, model="p")
    with pytest.raises(ValueError, match="share"):
        CountForecast.mixture([a, b], [0.5, 0.5], model="ens")
    with pytest.raises(ValueError, match="weights"):
        CountForecast.mixture([a, a], [0.5, -0.5], model="ens")


def test_mixture_with_empirical_member_and_paths(simulated):
    paths, s = simulated
    nb = CountForecast.negbin(series_index(3, 4), 1.5, 0.5, model="nb")
    m = CountForecast.mixture([s, nb], [0.25, 0.75], model="ens")
    np.testing.assert_allclose(m.pmf, 0.25 * s._padded(m.K)[0] + 0.75 * nb._padded(m.K)[0], rtol=1e-12)
    assert m.paths is None  # nb has no paths
    y = np.full(12, m.K + 3)
    np.testing.assert_allclose(m.pmf_at(y), 0.75 * ref_dist(1.5, 0.5).pmf(m.K + 3), rtol=1e-9)
    # both members simulate: stratified allocation, 1/4 of paths from the first member
    s2 = CountForecast.from_samples(series_index(3, 4), paths + 100, model="ar2")
    mp = CountForecast.mixture([s, s2], [0.25, 0.75], model="ens")
    assert mp.paths.shape == paths.shape
    from_first = (mp.paths < 100).all(axis=1)  # whole paths come from one member
    assert (from_first.sum(axis=1) == 125).all()
    assert ((mp.paths < 100) == from_first[:, None, :]).all()


def test_concat_and_reordering_rows_changes_nothing_else():
    mu = np.array([0.2, 9.0, 1.0, 0.0])
    whole = CountForecast.negbin(index(4), mu, 0.4, model="nb")
    a = CountForecast.negbin(index(4).iloc[:2], mu[:2], 0.4, model="nb")
    b = CountForecast.negbin(index(4).iloc[2:], mu[2:], 0.4, model="nb")
    c = CountForecast.concat([b, a])
    assert c.K == whole.K and len(c) == 4
    np.testing.assert_allclose(c.pmf, whole.pmf[[2, 3, 0, 1]], rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(c.tail, whole.tail[[2, 3, 0, 1]], rtol=1e-10, atol=1e-300)
    pd.testing.assert_frame_equal(c.to_frame(), whole.subset([2, 3, 0, 1]).to_frame())
    other = CountForecast.poisson(index(2), 1.0, model="pois")
    mixed = CountForecast.concat([a, other])
    assert list(mixed.to_frame()["model"]) == ["nb", "nb", "pois", "pois"]


# --------------------------------------------------------------------------- frame
def test_to_frame_columns_and_dtypes():
    f = CountForecast.negbin(index(5), [0.0, 0.3, 2.0, 6.0, 20.0], 0.5, model="nb")
    frame = f.to_frame()
    assert list(frame.columns) == ["unique_id", "ds", "h", "model", "mean", "lo-50", "hi-50", "lo-80", "hi-80",
                                   "lo-95", "hi-95", "p_ge_1", "p_ge_5"]
    for c in ("lo-50", "hi-50", "lo-80", "hi-80", "lo-95", "hi-95"):
        assert frame[c].dtype == np.int64
    for c in ("mean", "p_ge_1", "p_ge_5"):
        assert frame[c].dtype == np.float64
    assert isinstance(frame.index, pd.RangeIndex) and (frame["model"] == "nb").all()
    np.testing.assert_array_equal(frame["hi-80"], f.interval(0.8)[1])
    np.testing.assert_allclose(frame["p_ge_5"], f.prob_at_least(5))
    with_cut = CountForecast.poisson(index(2, cutoff=True), 1.0, model="p").to_frame(levels=(90,), thresholds=(3,))
    assert list(with_cut.columns) == ["unique_id", "ds", "cutoff", "h", "model", "mean", "lo-90", "hi-90",
                                      "p_ge_3"]


# --------------------------------------------------------------------------- property
@settings(max_examples=60, deadline=None)
@given(mu=st.floats(0.0, 60.0), alpha=st.floats(0.0, 3.0), pi=st.floats(0.0, 1.0))
def test_cdf_nondecreasing_and_ends_at_one_minus_tail(mu, alpha, pi):
    f = CountForecast.zero_inflated(index(1), mu, pi, alpha, model="z")
    F = np.array([f.cdf(k)[0] for k in range(f.K + 30)])
    assert (np.diff(F) >= 0).all()
    assert abs(F[f.K] - (1 - f.tail[0])) <= 1e-12
    assert F[-1] <= 1.0
    assert f.tail[0] < TAIL_TOL or f.K == 200
