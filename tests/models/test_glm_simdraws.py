"""The batched GLM path simulation (``simulate_many``) draws exactly what a plain per-series loop draws.

Reference: the straightforward loop over series and steps with ``rng.gamma`` then
``rng.poisson`` on each series' own stream (the simulation as first written). The batched
code lays its arrays out differently, checks caps once per step and draws the gamma part
as ``standard_gamma`` times the scale; none of that may change a single draw.
"""
from __future__ import annotations

import types

import numpy as np
import pytest

from forecast.models._glmglue import _draw, simulate_many
from forecast.models.design import capped_mean
from forecast.models.streams import series_rng


def reference(eta, gamma, lags, group, alpha, caps, seed, P):
    S, h = eta.shape
    L = max(lags)
    paths, mus = np.empty((S, h, P), np.int64), np.empty((S, h, P))
    for i, s in enumerate(group):
        rng = series_rng(seed, s.uid, s.ds_values[-1])
        hist = np.empty((P, L + h))
        hist[:, :L] = s.y[-L:]
        for j in range(h):
            lagv = np.stack([np.log1p(hist[:, L + j - k]) for k in lags], axis=-1)
            mu = capped_mean(np.exp(eta[i, j] + np.matmul(lagv, gamma[i])), caps[i], s.uid)
            lam = rng.gamma(1.0 / alpha[i], alpha[i] * mu) if alpha[i] > 0 else mu
            hist[:, L + j] = rng.poisson(lam)
            mus[i, j] = mu
        paths[i] = hist[:, L:].T
    return paths, mus


def group_of(S, rng):
    day = np.array(["2020-03-01"], dtype="datetime64[D]")
    return [types.SimpleNamespace(uid=f"s{i}", ds_values=day, y=rng.poisson(4, 5).astype(float)) for i in range(S)]


@pytest.mark.parametrize("lags", [(1,), (1, 3)])
def test_simulate_many_draws_what_the_per_series_loop_draws(lags):
    rng = np.random.default_rng(3)
    S, h, P = 7, 5, 64
    eta = rng.normal(1.0, 0.6, (S, h))
    gamma = rng.uniform(0.1, 0.5, (S, len(lags)))
    alpha = np.r_[0.0, rng.uniform(0.05, 2.0, S - 1)]  # series 0: Poisson
    caps = np.full(S, 1e4)
    caps[3] = 5.0  # a capped series
    group = group_of(S, rng)
    with pytest.warns(Warning):  # the cap warns, in both
        want = reference(eta, gamma, lags, group, alpha, caps, 11, P)
    with pytest.warns(Warning):
        got = simulate_many(eta, gamma, lags, group, alpha, caps, 11, P)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert (got[1][3] <= 5.0).all() and got[0].dtype == np.int64
    # a series alone draws what it draws in the batch
    alone = simulate_many(eta[5:6], gamma[5:6], lags, group[5:6], alpha[5:6], caps[5:6], 11, P)
    np.testing.assert_array_equal(alone[0][0], got[0][5])


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.7, 3.0])
def test_draw_is_gamma_then_poisson_on_the_same_stream(alpha):
    mu = np.random.default_rng(1).gamma(1.0, 6.0, 500)
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    want = r1.poisson(r1.gamma(1.0 / alpha, alpha * mu) if alpha > 0 else mu)
    np.testing.assert_array_equal(_draw(r2, mu, alpha), want)
    assert r1.random() == r2.random()  # the streams are left in the same state
