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
