"""``numerics.needed_k`` walks the widest rows first, the others only when their survival
function does not already show them below the tolerance there, and walks in blocks of steps;
it must give the same K as the one-step-at-a-time walk of every row it replaced (kept here as
the reference)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from forecast.numerics import _LOG_TINY, _walk_k, log1p_ratio, needed_k


def needed_k_stepwise(mu, alpha, pi, cap, tail_tol):
    """The walk one count at a time (the implementation before blocks)."""
    logf0, c, K = -mu * log1p_ratio(alpha * mu), mu / (1 + alpha * mu), 0
    for in_logs in (False, True):
        sel = (logf0 < _LOG_TINY) == in_logs
        F, a, cc, scale, k = np.exp(logf0[sel]), alpha[sel], c[sel], 1 - pi[sel], 0
        f = logf0[sel] if in_logs else F
        while k < cap:
            live = scale * (1 - F) >= tail_tol
            if not live.any():
                break
            if not live.all():
                f, F, a, cc, scale = (v[live] for v in (f, F, a, cc, scale))
            k += 1
            ratio = cc * (1 + a * (k - 1)) / k
            f = f + np.log(ratio) if in_logs else f * ratio
            F = F + (np.exp(f) if in_logs else f)
        K = max(K, k)
    return K


@pytest.mark.parametrize("seed", range(3))
def test_block_walk_equals_the_stepwise_walk(seed):
    rng = np.random.default_rng(seed)
    for _ in range(15):
        n = int(rng.integers(1, 600))
        mu = np.exp(rng.uniform(np.log(1e-6), np.log(rng.choice([5, 100, 3000])), n))
        alpha = rng.choice([0.0, 1.0], n) * rng.uniform(0, rng.choice([0.1, 2, 20]), n)
        pi = rng.choice([0.0, 1.0], n) * rng.uniform(0, 0.9, n)
        cap = int(rng.choice([200, 1000, 4000, 100_000]))
        tol = float(rng.choice([1e-6, 1e-9]))
        want = needed_k_stepwise(mu, alpha, pi, cap, tol)
        assert needed_k(mu, alpha, pi, cap, tol) == want
        assert _walk_k(mu, alpha, pi, cap, tol) == want


def test_needed_k_against_scipy():
    mu, alpha = np.array([0.3, 12.0, 150.0, 900.0]), np.array([0.0, 0.5, 0.1, 0.0])
    K = needed_k(mu, alpha, np.zeros(4), 100_000, 1e-6)
    r = 1 / np.where(alpha > 0, alpha, 1)
    sf = np.where(alpha > 0, stats.nbinom.sf(K, r, r / (r + mu)), stats.poisson.sf(K, mu))
    sf1 = np.where(alpha > 0, stats.nbinom.sf(K - 1, r, r / (r + mu)), stats.poisson.sf(K - 1, mu))
    assert sf.max() < 1e-6 <= sf1.max() * (1 + 1e-9)
