"""The climatology's dispersion solver from per-row tail counts (issue 15, the baselines'
part): its dispersion sums against brute force, its roots against an independent root of
the brute-force score and against statsmodels' intercept-only NB2 fit, and the number of
score evaluations."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import optimize, special
from statsmodels.discrete import discrete_model as sm

import forecast.models._nbintercept as nbi
import forecast.models._nbtails as nbt
from forecast.models._nbintercept import LOG_ALPHA_BOUNDS, nb_intercept_mle_batch
from forecast.models._nbtails import _Tails

from tests.models.test_climatology_solver import EQUI, nb_loglik


def brute_sums(y: np.ndarray, a: float) -> tuple[float, float, float]:
    """Σ_t Σ_{k<y_t} of log(1 + ak), k/(1 + ak), k²/(1 + ak)², term by term."""
    s0 = s1 = s2 = 0.0
    for v in y.tolist():
        k = np.arange(v, dtype=float)
        s0 += float(np.sum(np.log1p(a * k)))
        s1 += float(np.sum(k / (1 + a * k)))
        s2 += float(np.sum((k / (1 + a * k)) ** 2))
    return s0, s1, s2


def brute_score(theta: float, y: np.ndarray) -> float:
    """d ℓ/d log α of the NB2 profile log-likelihood at the row mean, from the per-count
    derivative of ℓ = Σ [Σ_{k<y} log(1+αk) − log y! + y log μ − (y + 1/α) log(1 + αμ)]."""
    a, mu = float(np.exp(theta)), float(y.mean())
    _, s1, _ = brute_sums(y, a)
    d = s1 + np.sum(np.log1p(a * mu) / a**2 - (y + 1.0 / a) * mu / (1 + a * mu))
    return a * float(d)


def windows(n_rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.choice([0.3, 0.8, 2.0, 6.0, 40.0], n_rows)
    m = rng.choice([0.2, 1.0, 4.0, 15.0, 60.0], n_rows)
    return np.stack([rng.negative_binomial(ri, ri / (ri + mi), 36) for ri, mi in zip(r, m)])


def test_tail_sums_equal_brute_force_and_do_not_depend_on_the_batch():
    Y = windows(40, 1)
    a = np.exp(np.linspace(-12, 3, len(Y)))
    tails = _Tails(Y)
    s1, s2 = tails.sums(a, np.arange(len(Y)))
    s0 = tails.log_sum(a)
    for i, y in enumerate(Y):
        want = brute_sums(y, a[i])
        np.testing.assert_allclose([s0[i], s1[i], s2[i]], want, rtol=1e-12, atol=1e-300)
        # Alone, and as part of a subset: the same bits (a row's width is its own).
        one = _Tails(Y[i:i + 1])
        assert one.sums(a[i:i + 1], np.arange(1)) == (s1[i:i + 1], s2[i:i + 1])
        assert one.log_sum(a[i:i + 1])[0] == s0[i]
    sub = np.array([3, 17, 29])
    got = tails.sums(a[sub], sub)
    assert np.array_equal(got[0], s1[sub]) and np.array_equal(got[1], s2[sub])


def test_rows_with_counts_above_the_table_use_the_closed_forms(monkeypatch):
    monkeypatch.setattr(nbt, "_TABLE_MAX_Y", 30)  # (so small counts take the digamma route)
    Y = np.array([[0, 3, 45, 7, 12, 80], [1, 2, 0, 4, 2, 3]])
    a = np.array([0.3, 0.05])
    tails = _Tails(Y)
    s1, s2 = tails.sums(a, np.arange(2))
    s0 = tails.log_sum(a)
    for i, y in enumerate(Y):
        np.testing.assert_allclose([s0[i], s1[i], s2[i]], brute_sums(y, a[i]), rtol=1e-9)


def test_roots_match_an_independent_root_of_the_brute_force_score():
    """Alpha to 1e-9 relative (the solver stops at |Δ log α| <= 1e-10), log-likelihood to 1e-12."""
    Y = windows(60, 2)
    mu, alpha, ll = nb_intercept_mle_batch(Y)
    checked = 0
    for i, y in enumerate(Y):
        assert mu[i] == y.mean()
        if np.mean((y - y.mean()) ** 2) <= y.mean():
            assert alpha[i] == 0
            continue
        lo, hi = LOG_ALPHA_BOUNDS
        if brute_score(lo, y) <= 0:  # the maximum is at (or below) the lower bound
            assert alpha[i] == pytest.approx(np.exp(lo), rel=1e-6)
            continue
        root = optimize.brentq(brute_score, lo, hi, args=(y,), xtol=1e-13, rtol=1e-15)
        assert alpha[i] == pytest.approx(np.exp(root), rel=1e-9)
        assert ll[i] == pytest.approx(nb_loglik(alpha[i], y), rel=1e-12)
        checked += 1
    assert checked > 30


def test_matches_statsmodels_intercept_only_negative_binomial():
    Y = windows(8, 3)
    mu, alpha, ll = nb_intercept_mle_batch(Y)
    for i, y in enumerate(Y):
        if alpha[i] < 1e-3:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.NegativeBinomial(y, np.ones((len(y), 1)), loglike_method="nb2").fit(
                start_params=[np.log(mu[i]), alpha[i] * 1.5], method="newton", tol=1e-12, maxiter=200, disp=0)
        assert np.exp(res.params[0]) == pytest.approx(mu[i], rel=1e-6)
        assert res.params[1] == pytest.approx(alpha[i], rel=1e-5)
        assert ll[i] == pytest.approx(res.llf, rel=1e-10)
        assert ll[i] >= res.llf - 1e-9 * abs(res.llf)


def test_score_sums_come_from_the_tails_not_per_count_tables(monkeypatch):
    """The Newton loop reads the tail counts: no per-count cumulative tables (the old cost),
    and a window over-dispersed by rounding only still stops at the bound after two scores."""
    calls = {"sums": 0, "tables": 0}
    real_sums, real_tables = nbt._Tails.sums, nbi._dispersion_sums

    def sums(self, a, sub):
        calls["sums"] += 1
        return real_sums(self, a, sub)

    def tables(*args):
        calls["tables"] += 1
        return real_tables(*args)

    monkeypatch.setattr(nbt._Tails, "sums", sums)
    monkeypatch.setattr(nbi, "_dispersion_sums", tables)
    monkeypatch.setattr(nbt, "_dispersion_sums", tables)
    _, alpha, _ = nb_intercept_mle_batch(np.array(EQUI)[None, :])
    assert alpha[0] == np.exp(LOG_ALPHA_BOUNDS[0])
    assert calls == {"sums": 2, "tables": 0}
    nb_intercept_mle_batch(windows(20, 4))
    assert calls["tables"] == 0


def test_log_factorials_are_gammaln_to_the_bit():
    from forecast.models._baselinebatch import log_factorials
    rng = np.random.default_rng(5)
    for y in (rng.poisson(4.0, (50, 36)), np.array([[0, 1, 2, 10**6]]), np.zeros((0, 3), dtype=int),
              rng.poisson(3.0, 12).astype(float)):
        assert np.array_equal(log_factorials(y), special.gammaln(y + 1.0))
