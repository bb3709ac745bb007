"""RPS exact for every mean: closed form and tail sums against brute-force sums (relative 1e-9).

The reference sums :math:`(F(k) - [y \\le k])^2` over the whole support, ``F`` accumulated
from the left and ``1 - F`` from the right in long double, so neither side suffers
cancellation. Its pmf comes from the ratio recurrence f(k)/f(k-1) run outwards from the
mean in long double and normalised (``ref_pmf``): scipy's float64 ``logpmf`` loses ~1e-9
at k ~ 1e6 (log-gamma values near 1e7), too coarse for a 1e-9 check.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecast import scoring
from forecast.distributions import CountForecast

MEANS = [10.0**e for e in range(-3, 7)]  # 1e-3 .. 1e6, log-spaced
REL = 1e-9


def index(n: int) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": [f"s{i}" for i in range(n)],
                         "ds": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n), "D"),
                         "h": np.ones(n, dtype=np.int64)})


def law(mu: float, alpha: float):
    return stats.poisson(mu) if alpha == 0 else stats.nbinom(1 / alpha, 1 / (1 + alpha * mu))


def brute_rps(pmf, sf_end: float, ys) -> list[float]:
    """Reference RPS for outcomes ``ys`` from a pmf on 0..k_hi and P(Y > k_hi) = ``sf_end``."""
    p = np.asarray(pmf, dtype=np.longdouble)
    F = np.cumsum(p)
    S = np.cumsum(p[::-1])[::-1] - p + np.longdouble(sf_end)
    out = []
    for y in ys:
        cut = min(y, p.size)
        out.append(float(np.sum(F[:cut] ** 2) + np.sum(S[cut:] ** 2) + max(y - p.size, 0)))
    return out


def k_high(dist, ys) -> int:
    # beyond P(Y > k) < 1e-14 the terms before y are 1 to 1e-14 and brute_rps counts them
    return int(dist.isf(1e-14)) + 20


def ref_pmf(mu: float, alpha: float, k_hi: int) -> np.ndarray:
    """NB2/Poisson pmf on 0..k_hi in long double: ratios from the mean outwards, normalised."""
    k = np.arange(1, k_hi + 1, dtype=np.longdouble)
    mu_l, a_l = np.longdouble(mu), np.longdouble(alpha)
    ratio = mu_l / (1 + a_l * mu_l) * (1 + a_l * (k - 1)) / k  # f(k) / f(k-1), k = 1..k_hi
    m0 = min(int(mu), k_hi)
    f = np.empty(k_hi + 1, dtype=np.longdouble)
    f[m0] = 1
    f[m0 + 1:] = np.cumprod(ratio[m0:])
    f[:m0] = np.cumprod(1 / ratio[:m0][::-1])[::-1]
    return f / f.sum()


def outcomes(mu: float) -> list[int]:
    return [0, int(round(mu)), 10 * int(round(mu)) + 1]


GRID = [(a, m) for a in (0.0, 0.01, 0.5, 2.0) for m in MEANS if not (a == 2.0 and m == 1e6)]
# tiny dispersion: r = 1/alpha = 1e6, where scipy's hyp2f1 gives NaN and the closed form integrates
GRID += [(1e-6, m) for m in (1e2, 1e3, 1e4, 1e5)]


@pytest.mark.parametrize("alpha, mu", GRID)
def test_rps_matches_brute_force_for_every_mean(alpha, mu):
    # NB(alpha=2) at mean 1e6 is left out: its reference sum needs 5e7 terms (too slow here).
    ys = outcomes(mu)
    d = law(mu, alpha)
    ref = brute_rps(ref_pmf(mu, alpha, k_high(d, ys)), 0.0, ys)
    fc = CountForecast.negbin(index(3), mu, alpha, model="m")
    got = scoring.rps(fc, ys)
    np.testing.assert_allclose(got, ref, rtol=REL, atol=0)
    if 100 <= mu <= 1e5:  # the same law as a two-member mixture goes through the tail sum instead
        mixed = CountForecast.mixture([fc, fc], [0.5, 0.5], model="mix")
        np.testing.assert_allclose(scoring.rps(mixed, ys), ref, rtol=REL, atol=0)


def test_issue_numbers_poisson_2000_and_5000():
    fc = CountForecast.poisson(index(2), [2000.0, 5000.0], model="p")
    got = scoring.rps(fc, [0, 0])
    assert np.isfinite(got).all()
    refs = [brute_rps(ref_pmf(mu, 0.0, int(mu + 60 * np.sqrt(mu))), 0.0, [0])[0] for mu in (2000.0, 5000.0)]
    assert got[0] == pytest.approx(1974.76946329, rel=1e-10)
    np.testing.assert_allclose(got, refs, rtol=REL)


def test_nb_alpha2_mean_1e6_finite_and_between_neighbours():
    # No brute force (see above); the RPS at y = 0 is E|X| - E|X - X'|/2 and must lie
    # strictly between the values at means 0.9e6 and 1.1e6, which are scaled copies
    # (NB2 with alpha * mu fixed is nearly scale invariant at this size).
    fc = CountForecast.negbin(index(3), [0.9e6, 1e6, 1.1e6], 2.0, model="m")
    r = scoring.rps(fc, [0, 0, 0])
    assert np.isfinite(r).all() and r[0] < r[1] < r[2]
    np.testing.assert_allclose(r / [0.9e6, 1e6, 1.1e6], r[1] / 1e6, rtol=1e-6)


@pytest.mark.parametrize("mu", [300.0, 3000.0, 30000.0])
def test_mixture_and_zero_inflated_at_large_means(mu):
    ys = [0, int(mu), int(1.7 * mu), 12 * int(mu)]
    n = len(ys)
    a = CountForecast.poisson(index(n), mu, model="a")
    b = CountForecast.negbin(index(n), 2 * mu, 0.05, model="b")
    mix = CountForecast.mixture([a, b], [0.3, 0.7], model="mix")
    zinb = CountForecast.zero_inflated(index(n), mu, 0.2, alpha=0.5, model="zinb")
    zip_ = CountForecast.zero_inflated(index(n), mu, 0.35, model="zip")
    k_hi = k_high(law(mu, 0.5), ys)
    pa, pb, pz = ref_pmf(mu, 0.0, k_hi), ref_pmf(2 * mu, 0.05, k_hi), ref_pmf(mu, 0.5, k_hi)
    np.testing.assert_allclose(scoring.rps(mix, ys), brute_rps(0.3 * pa + 0.7 * pb, 0.0, ys), rtol=REL)
    for f, pi, p in ((zinb, 0.2, pz), (zip_, 0.35, pa)):
        p = (1 - pi) * p
        p[0] += pi
        np.testing.assert_allclose(scoring.rps(f, ys), brute_rps(p, 0.0, ys), rtol=REL)


@pytest.mark.parametrize("mu", [1e6, 1e-300])
def test_other_scores_finite_at_huge_and_tiny_means(mu):
    ys = np.array([0, 1, int(mu), int(mu) + 3000, 10 * int(mu) + 1])
    fc = CountForecast.poisson(index(ys.size), mu, model="p")
    out = scoring.score_all(fc, ys)
    for name, v in out.items():
        assert np.isfinite(v).all(), name
    d = stats.poisson(mu)
    np.testing.assert_allclose(out["log"], -d.logpmf(ys), rtol=1e-9, atol=1e-12)  # -log p(0) = 1e-300
    expect_log = np.minimum(-d.logpmf(ys), -np.log(scoring.LOG_FLOOR))
    np.testing.assert_allclose(out["log_floored"], expect_log, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out["pit_hi"], d.cdf(ys), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(out["pit_lo"], d.cdf(ys - 1), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(out["dss"], (ys - mu) ** 2 / max(mu, scoring.VAR_FLOOR)
                               + np.log(max(mu, scoring.VAR_FLOOR)), rtol=1e-9)
    lo, hi = d.ppf(0.1), d.ppf(0.9)
    np.testing.assert_allclose(out["coverage_80"], ((ys >= lo) & (ys <= hi)).astype(float))
    np.testing.assert_allclose(out["brier_ge_5"], (d.sf(4) - (ys >= 5)) ** 2, rtol=1e-9, atol=1e-15)


def test_log_score_small_dispersion_huge_outcome_is_exact_and_cheap():
    # For alpha < 1e-3 the NB log-pmf needs log G(y+r) - log G(r) - y log r; it used to be
    # summed term by term (y floats: 8 GB for y = 1e9). Reference: math.fsum of the terms.
    import math

    mu, alpha = 2e5, 1e-6
    ys = np.array([300, 2e5, 2.5e5])
    fc = CountForecast.negbin(index(3), mu, alpha, model="m")
    got = scoring.log_score(fc, ys, floor=0.0)
    x = alpha * mu
    ref = [-(math.fsum(math.log1p(alpha * j) for j in range(int(y))) - math.lgamma(y + 1) + y * math.log(mu)
             - y * math.log1p(x) - mu * math.log1p(x) / x) for y in ys]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    huge = CountForecast.negbin(index(1), 1e9, 1e-9, model="m")
    assert np.isfinite(scoring.score_all(huge, [10**9])["log"]).all()
