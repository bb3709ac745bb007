"""Warm NB refits go straight to the joint ascent, and still end where a cold fit ends.

A series fitted with alpha > 0 at the previous origin starts the NB2 Newton ascent from
there (no Poisson pre-fit). A series whose cold fit puts alpha on the boundary 0 must stay
there: the warm ascent heading to alpha -> 0 is handed back to the cold path.
"""
from __future__ import annotations

import numpy as np

from forecast.models._glmbatch import fit_batch


def _design(S, n, seed, dispersion):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    X = np.broadcast_to(np.c_[np.ones(n), np.sin(2 * np.pi * t / 12), np.cos(2 * np.pi * t / 12)], (S, n, 3)).copy()
    mu = np.exp(np.log(rng.uniform(2, 15, S))[:, None] + 0.4 * X[:, :, 1])
    y = rng.poisson(mu) if dispersion == 0 else rng.negative_binomial(1 / dispersion, 1 / (1 + dispersion * mu))
    return X, y, np.zeros((S, n))


def _refit(X, y, off, **kw):
    """The fit on all but the last period, then cold and warm fits on all of them."""
    prev = fit_batch(X[:, :-1], y[:, :-1], off[:, :-1], nb=True, **kw)
    cold = fit_batch(X, y, off, nb=True, **kw)
    warm = fit_batch(X, y, off, nb=True, start=prev.coef, alpha_start=prev.alpha, **kw)
    return prev, cold, warm


def test_warm_nb_refits_reach_the_cold_optimum_in_far_fewer_iterations():
    X, y, off = _design(60, 72, 1, 0.3)
    prev, cold, warm = _refit(X, y, off)
    assert (prev.alpha > 0).all() and cold.ok.all() and warm.ok.all()
    np.testing.assert_allclose(warm.coef, cold.coef, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(warm.alpha, cold.alpha, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(warm.alpha_se, cold.alpha_se, rtol=1e-4)
    np.testing.assert_allclose(warm.loglik, cold.loglik, rtol=1e-12)
    assert not warm.boundary.any()
    # cold: Poisson pre-fit + NB ascent, 7.3 iterations a series; warm: the NB ascent alone, 3.0
    # (6.0 when the warm fit still ran the Poisson pre-fit from the NB estimates)
    assert warm.n_iter.sum() < 0.5 * cold.n_iter.sum(), (warm.n_iter.sum(), cold.n_iter.sum())


def test_a_series_whose_cold_fit_is_on_the_boundary_stays_there_when_warm_started_inside():
    X, y, off = _design(40, 72, 2, 0.0)  # Poisson counts: many cold fits put alpha at 0
    cold = fit_batch(X, y, off, nb=True)
    prev = fit_batch(X[:, :-1], y[:, :-1], off[:, :-1], nb=True)
    start_alpha = np.full(len(y), 0.5)  # as if the previous fits had been clearly overdispersed
    warm = fit_batch(X, y, off, nb=True, start=prev.coef, alpha_start=start_alpha)
    assert cold.boundary.sum() >= 10
    np.testing.assert_array_equal(warm.boundary, cold.boundary)
    np.testing.assert_array_equal(warm.alpha[cold.boundary], 0.0)
    np.testing.assert_allclose(warm.coef, cold.coef, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(warm.alpha, cold.alpha, rtol=1e-5, atol=1e-8)
