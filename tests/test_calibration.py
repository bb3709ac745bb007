"""Calibration: PIT histograms on simulated data, the Wei-Held test, reliability data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from forecast import calibration, scoring
from forecast.distributions import CountForecast

SIG = 1e-3  # significance level of every statistical test (fixed seeds)


def index(n: int) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": [f"s{i}" for i in range(n)],
                         "ds": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n), "D"),
                         "h": np.ones(n, dtype=np.int64)})


@pytest.fixture(scope="module")
def simulated():
    """20,000 outcomes from NB2 (alpha = 1) with means varying over rows."""
    rng = np.random.default_rng(20260501)
    n = 20_000
    mu = rng.gamma(2.0, 1.5, n)
    y = rng.negative_binomial(1.0, 1 / (1 + mu))
    truth = CountForecast.negbin(index(n), mu, 1.0, model="truth")
    poisson = CountForecast.poisson(index(n), mu, model="under")  # under-dispersed
    return y, truth, poisson


def chi2_p(h: calibration.PITHistogram) -> float:
    """Chi-square against equal expected counts. The non-randomised PIT spreads each
    forecast over its interval, which makes bin counts less variable than multinomial
    ones: the test is conservative, so a small p is strong evidence."""
    return stats.chisquare(h.counts).pvalue


# --------------------------------------------------------------------------- PIT
def test_pit_hand_case():
    # one forecast, PIT uniform on [0.2, 0.6]: half of it in each of the bins (0.2, 0.4), (0.4, 0.6)
    h = calibration.pit_histogram((np.array([0.2]), np.array([0.6])), bins=5)
    np.testing.assert_allclose(h.edges, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(h.density, [0, 2.5, 2.5, 0, 0], atol=1e-12)
    assert h.n == 1
    # a point PIT (p(y) = 0) sits in one bin; one at exactly 0 lands in the first
    h = calibration.pit_histogram((np.array([0.6, 0.0]), np.array([0.6, 0.0])), bins=4)
    np.testing.assert_allclose(h.density, [2, 0, 2, 0], atol=1e-12)


def test_pit_true_model_is_uniform(simulated):
    y, truth, _ = simulated
    h = calibration.pit_histogram(truth, y, bins=10)
    assert h.n == y.size and h.density.sum() == pytest.approx(10)
    assert chi2_p(h) > SIG
    np.testing.assert_allclose(h.density, 1, atol=0.06)


def test_active_pit_true_model_is_uniform(simulated):
    y, truth, _ = simulated
    h = calibration.pit_histogram(truth, y, bins=10, active_only=True)
    assert h.n == (y > 0).sum() and h.n_excluded == 0
    assert chi2_p(h) > SIG
    np.testing.assert_allclose(h.density, 1, atol=0.08)


def test_under_dispersed_forecast_is_u_shaped(simulated):
    y, _, poisson = simulated
    for active in (False, True):
        h = calibration.pit_histogram(poisson, y, bins=10, active_only=active)
        assert h.density[0] > 1.3 and h.density[-1] > 1.3, (active, h.density)
        assert h.density[4:6].max() < 0.8
        assert chi2_p(h) < 1e-6


def test_naive_selection_distorts_a_perfect_forecast(simulated):
    """Keeping y > 0 without conditioning the forecast: the PIT of a perfect forecast
    can no longer fall below F(0), so the low bins empty out."""
    y, truth, _ = simulated
    sc = scoring.score_all(truth, y)
    act = y > 0
    naive = calibration.pit_histogram((sc["pit_lo"][act], sc["pit_hi"][act]), bins=10)
    conditioned = calibration.pit_histogram({**sc, "pit_f0": truth.pmf[:, 0]}, y, bins=10, active_only=True)
    assert naive.density[0] < 0.2 and naive.density[-1] > 1.3
    assert chi2_p(naive) < 1e-6
    assert chi2_p(conditioned) > SIG
    np.testing.assert_allclose(conditioned.density,
                               calibration.pit_histogram(truth, y, active_only=True).density, atol=1e-12)


def test_pit_inputs_agree(simulated):
    y, truth, _ = simulated
    sc = scoring.score_all(truth, y)
    a = calibration.pit_histogram(truth, y, bins=7)
    b = calibration.pit_histogram((sc["pit_lo"], sc["pit_hi"]), bins=7)
    c = calibration.pit_histogram(pd.DataFrame(sc), bins=7)
    np.testing.assert_allclose(a.density, b.density, atol=1e-12)
    np.testing.assert_allclose(a.density, c.density, atol=1e-12)


def test_active_pit_excludes_certain_zero_forecasts():
    fc = CountForecast.poisson(index(3), [0.0, 2.0, 2.0], model="p")
    h = calibration.pit_histogram(fc, [2, 0, 3], active_only=True)
    assert (h.n, h.n_excluded) == (1, 1)  # the certain zero that was wrong has no law given Y > 0
    with pytest.raises(ValueError, match="active_only"):
        calibration.pit_histogram((np.zeros(3), np.ones(3)), [1, 1, 1], active_only=True)


def test_active_pit_conditional_values_hand_case():
    # F = 0.5, 0.8, 1 (pmf 0.5, 0.3, 0.2); given Y > 0: F+ = 0, 0.6, 1 -> y = 1 is uniform on [0, 0.6]
    fc = CountForecast.from_pmf(index(1), [[0.5, 0.3, 0.2]], model="e")
    h = calibration.pit_histogram(fc, [1], bins=5, active_only=True)
    np.testing.assert_allclose(h.density, [5 / 3, 5 / 3, 5 / 3, 0, 0], atol=1e-12)


# --------------------------------------------------------------------------- calibration test
@pytest.mark.parametrize("score", ["dss", "log", "rps"])
def test_calibration_test_true_model_not_rejected(simulated, score):
    y, truth, _ = simulated
    res = calibration.calibration_test(truth, y, score=score)
    assert res.n == y.size and res.p_value > SIG, res
    assert calibration.calibration_test(truth, y, score=score, method=2).p_value > SIG


@pytest.mark.parametrize("score", ["dss", "log", "rps"])
def test_calibration_test_rejects_under_dispersion(simulated, score):
    y, _, poisson = simulated
    z, p, n = calibration.calibration_test(poisson, y, score=score)
    assert p < 1e-6 and z > 0  # scores worse than the forecast itself expects


def test_expectations_and_variances_against_brute_force():
    mu = np.array([0.3, 2.0, 7.0, 40.0, 40.0, 3.0])
    alpha = np.array([0.0, 0.0, 0.5, 0.0, 2.0, 1.0])
    fc = CountForecast.negbin(index(mu.size), mu, alpha, model="nb")  # K capped: the 40/2 row needs its tail
    k = np.arange(60_000)
    pmf = np.array([stats.poisson.pmf(k, m) if a == 0 else stats.nbinom.pmf(k, 1 / a, 1 / (1 + a * m))
                    for m, a in zip(mu, alpha)])
    var = mu + alpha * mu**2
    # DSS: E = 1 + log var; V = (mu4 - var^2) / var^2 (Poisson closed form 2 + 1/mu as in surveillance)
    m4 = (pmf * (k - mu[:, None]) ** 4).sum(axis=1)
    E, V = calibration._score_ev(fc, "dss", 1e-12)
    np.testing.assert_allclose(E, 1 + np.log(var), rtol=1e-12)
    np.testing.assert_allclose(V, (m4 - var**2) / var**2, rtol=1e-9)
    np.testing.assert_allclose(V[alpha == 0], 2 + 1 / mu[alpha == 0], rtol=1e-9)
    # log score: entropy and variance of -log p
    s = np.minimum(-special.xlogy(1, np.where(pmf > 0, pmf, 1)), -np.log(1e-12))
    E, V = calibration._score_ev(fc, "log", 1e-12)
    e1 = (pmf * s).sum(axis=1)
    np.testing.assert_allclose(E, e1, rtol=1e-10)
    np.testing.assert_allclose(V, (pmf * s * s).sum(axis=1) - e1**2, rtol=1e-8)
    np.testing.assert_allclose(E[alpha == 0][:2], stats.poisson(mu[alpha == 0][:2]).entropy(), rtol=1e-10)
    # RPS: E = 1/2 E|X - X'| = sum_k F(k)(1 - F(k))
    F = np.cumsum(pmf, axis=1)
    E, V = calibration._score_ev(fc, "rps", 1e-12)
    np.testing.assert_allclose(E, (F * (1 - F)).sum(axis=1), rtol=1e-9)
    small = mu < 10  # V by brute force: RPS(F, j) for every j of the support
    for i in np.flatnonzero(small):
        kk = k[:400]
        r = np.array([np.sum((F[i, :400] - (j <= kk)) ** 2) for j in kk])
        e = np.sum(pmf[i, :400] * r)
        assert V[i] == pytest.approx(np.sum(pmf[i, :400] * r * r) - e**2, rel=1e-9)


def test_expectations_with_mass_of_unknown_location():
    # pmf 0.5, 0.3 and 0.2 beyond K = 1 without a form: the log score there is the floor
    # (p = 0); the RPS places it at K + 1 = 2
    fc = CountForecast.from_pmf(index(1), [[0.5, 0.3]], model="e", tail=[0.2])
    cap = -np.log(1e-12)
    s = np.array([-np.log(0.5), -np.log(0.3), cap])
    p = np.array([0.5, 0.3, 0.2])
    E, V = calibration._score_ev(fc, "log", 1e-12)
    assert E[0] == pytest.approx(p @ s, rel=1e-13)
    assert V[0] == pytest.approx(p @ s**2 - (p @ s) ** 2, rel=1e-12)
    F = np.array([0.5, 0.8, 1.0])
    r = np.array([np.sum((F - (j <= np.arange(3))) ** 2) for j in range(3)])
    E, V = calibration._score_ev(fc, "rps", 1e-12)
    assert E[0] == pytest.approx(p @ r, rel=1e-13)
    assert V[0] == pytest.approx(p @ r**2 - (p @ r) ** 2, rel=1e-12)


def test_calibration_test_statistic_by_hand():
    fc = CountForecast.poisson(index(3), [1.0, 2.0, 4.0], model="p")
    y = np.array([0, 5, 3])
    s = (y - fc.mean) ** 2 / fc.mean + np.log(fc.mean)
    E, V = 1 + np.log(fc.mean), 2 + 1 / fc.mean
    z = (s - E).sum() / np.sqrt(V.sum())
    res = calibration.calibration_test(fc, y, "dss")
    assert res.z == pytest.approx(z, rel=1e-12)
    assert res.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)
    z2 = ((s - E) / np.sqrt(V)).sum() / np.sqrt(3)
    assert calibration.calibration_test(fc, y, "dss", method=2).z == pytest.approx(z2, rel=1e-12)


# --------------------------------------------------------------------------- reliability
def test_reliability_hand_case():
    prob = np.array([0.05, 0.05, 0.15, 0.95, 1.0])
    out = np.array([0, 1, 0, 1, 1])
    r = calibration.reliability(prob, out, bins=10)
    assert list(r["n"]) == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert r["mean_prob"][0] == pytest.approx(0.05) and r["obs_freq"][0] == pytest.approx(0.5)
    assert r["mean_prob"][9] == pytest.approx(0.975) and r["obs_freq"][9] == 1.0
    assert np.isnan(r["obs_freq"][3]) and np.isnan(r["band_lo"][3])
    # band: Binomial(2, 0.05) 5% and 95% quantiles over n
    assert (r["band_lo"][0], r["band_hi"][0]) == (0.0, stats.binom.ppf(0.95, 2, 0.05) / 2)


def test_reliability_band_holds_calibrated_frequencies(simulated):
    y, truth, poisson = simulated
    inside = {}
    for name, fc in (("truth", truth), ("poisson", poisson)):
        r = calibration.reliability(fc.prob_at_least(5), y >= 5, bins=10)
        used = r[r["n"] >= 50]
        inside[name] = ((used["obs_freq"] >= used["band_lo"]) & (used["obs_freq"] <= used["band_hi"])).mean()
    assert inside["truth"] >= 0.7 and inside["poisson"] <= 0.5
