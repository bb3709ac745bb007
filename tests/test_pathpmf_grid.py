"""The ragged mixture grid of ``_mixgrid``: every value of a path mixture's pmf, far tail included.

Checked against a brute-force average of scipy's NB2/Poisson log-pmfs over paths (log-sum-exp,
so tiny probabilities keep their relative precision): to 1e-12 absolute everywhere and 1e-9
relative wherever the reference is above 1e-250, on rows mixing tiny, zero, moderate and huge
(f(0) underflows) means, grids over several chunks, and per-path dispersion.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

import forecast._mixgrid as mixgrid
from forecast._pathpmf import path_mixture


def brute_log(mu, alpha, pi, K):
    """log of the path average of (ZI)NB2 pmfs on 0..K, (n, K+1), from scipy's log-pmfs."""
    n, P = mu.shape
    k = np.arange(K + 1)[None, :]
    out = np.empty((n, K + 1))
    for i in range(n):
        m, a, z = mu[i][:, None], alpha[i][:, None], pi[i][:, None]
        with np.errstate(divide="ignore"):
            lp = np.where(a == 0, stats.poisson.logpmf(k, m),
                          stats.nbinom.logpmf(k, 1 / np.where(a == 0, 1, a), 1 / (1 + a * m)))
            lz = np.log1p(-z) + lp
            lz[:, 0] = np.logaddexp(np.log(z[:, 0]), lz[:, 0])
        out[i] = special.logsumexp(lz, axis=0) - np.log(P)
    return out


def rows_of_means(rng, P=120):
    mu = rng.gamma(1.5, 6.0, (8, P))
    mu[0] = rng.choice([1e-12, 0.0, 3.0, 40.0], P)  # tiny, zero and moderate laws in one row
    mu[1] = rng.uniform(720, 900, P)                # every law's f(0) underflows: log space
    mu[2, :P // 2] = 0.05                            # huge and tiny laws mixed in one row
    mu[2, P // 2:] = rng.uniform(700, 800, P - P // 2)
    mu[3] = 2.5                                      # one law (a deterministic step)
    mu[4] *= 30                                      # a wide row: several chunks of counts
    return mu


@pytest.mark.parametrize("alpha, pi", [(0.0, 0.0), (0.4, 0.0), (0.02, 0.3), (2.5, 0.0)])
def test_mixture_grid_equals_scipy_average_everywhere(alpha, pi):
    rng = np.random.default_rng(11)
    mu = rows_of_means(rng)
    n, P = mu.shape
    a, z = np.full((n, P), alpha), np.full((n, P), pi)
    pmf, tail, *_ = path_mixture(mu, alpha, pi, cap=3000, tail_tol=1e-6)
    ref = np.exp(brute_log(mu, a, z, pmf.shape[1] - 1))
    assert pmf.shape[1] - 1 > 2 * mixgrid._CHUNK  # the wide row spans several chunks
    np.testing.assert_allclose(pmf, ref, rtol=0, atol=1e-12)
    big = ref > 1e-250
    np.testing.assert_allclose(pmf[big], ref[big], rtol=1e-9)
    assert (pmf[~big] <= 1e-250 * 1.000001).all()


def test_per_path_dispersion_rows_and_one_alpha_rows_together():
    rng = np.random.default_rng(4)
    mu = rows_of_means(rng, P=60)
    alpha = np.full(mu.shape, 0.3)
    alpha[::2] = rng.uniform(0, 1.2, (alpha[::2].shape))  # even rows: a dispersion per path
    pi = rng.uniform(0, 0.2, mu.shape)
    pmf, *_ = path_mixture(mu, alpha, pi, cap=3000, tail_tol=1e-6)
    ref = np.exp(brute_log(mu, alpha, pi, pmf.shape[1] - 1))
    np.testing.assert_allclose(pmf, ref, rtol=0, atol=1e-12)
    big = ref > 1e-250
    np.testing.assert_allclose(pmf[big], ref[big], rtol=1e-9)


def test_a_row_stops_early_and_its_numbers_do_not_depend_on_the_call(monkeypatch):
    rng = np.random.default_rng(8)
    mu = rows_of_means(rng)
    alone, *_ = path_mixture(mu[5:6], 0.4, 0.0, cap=3000, tail_tol=1e-6)
    together, *_ = path_mixture(mu, 0.4, 0.0, cap=3000, tail_tol=1e-6)
    np.testing.assert_array_equal(together[5, :alone.shape[1]], alone[0])
    monkeypatch.setattr(mixgrid, "_CELLS", 1)  # one row per pass
    np.testing.assert_array_equal(path_mixture(mu, 0.4, 0.0, cap=3000, tail_tol=1e-6)[0], together)
    # a light row (mean ~ 0.3) is left at zero far beyond its own support
    light, *_ = path_mixture(np.vstack([np.full((1, mu.shape[1]), 0.3), mu[4:5]]), 0.1, 0.0, cap=3000, tail_tol=1e-6)
    assert light.shape[1] > 1000 and (light[0, 2 * mixgrid._CHUNK:] == 0).all() and light[0, 100] > 0
