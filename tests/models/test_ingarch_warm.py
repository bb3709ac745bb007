"""Warm starts of the INGARCH solver: the cold fit's optimum, in fewer Newton steps.

A backtest refits every series at each origin on one more period; started from the previous
origin's estimates the ascent must end where a cold fit ends (both stop at max |score| <= 1e-8),
fall back to the cold fit when the start is useless, and keep the cold fit's Poisson/NB decision.
"""
from __future__ import annotations

import numpy as np
import pytest

from forecast.models._ingarchfit import fit_ingarch, initial_log_mean


def _simulate(seed, n, b0=0.5, b1=0.4, a1=0.3, alpha=0.2, burn=100):
    """NB2 INGARCH(1,1) by a plain loop (alpha 0: Poisson)."""
    rng = np.random.default_rng(seed)
    nu, y, out = 0.0, 0, []
    for _ in range(n + burn):
        nu = b0 + b1 * np.log1p(y) + a1 * nu
        if alpha > 0:
            r = 1 / alpha
            y = rng.negative_binomial(r, r / (r + np.exp(nu)))
        else:
            y = rng.poisson(np.exp(nu))
        out.append(y)
    return np.array(out[burn:])


def _fit(y, m, **kw):
    """The fit on the first ``m`` fitted periods of ``y`` (lag-1 design, as the model builds it)."""
    X = np.column_stack([np.ones(m), np.log1p(y[:m])])
    return fit_ingarch(X, y[1:m + 1], past_mean=(1,), obs_cols=(1,), nu_init=initial_log_mean(y, 12), **kw)


@pytest.mark.parametrize("seed, alpha, dist", [(1, 0.2, "negbin"), (2, 0.5, "negbin"), (3, 0.0, "negbin"),
                                               (4, 0.0, "poisson"), (5, 0.3, "poisson")])
def test_warm_fit_from_the_previous_origin_equals_the_cold_fit_in_fewer_steps(seed, alpha, dist):
    y = _simulate(seed, 160, alpha=alpha)
    iters = np.zeros(2)
    for m in range(120, 130):
        before = _fit(y, m - 1, distribution=dist)
        cold = _fit(y, m, distribution=dist)
        warm = _fit(y, m, distribution=dist, start=(before.coef, before.alpha))
        assert cold.converged and warm.converged
        # both stop at max |score| <= 1e-8; the information is O(n): estimates agree to ~1e-9
        np.testing.assert_allclose(warm.coef, cold.coef, rtol=0, atol=1e-7)
        assert warm.alpha == pytest.approx(cold.alpha, abs=1e-7)
        assert (warm.alpha == 0) == (cold.alpha == 0)  # the same Poisson/NB decision
        assert warm.loglik == pytest.approx(cold.loglik, rel=1e-12, abs=1e-9)
        np.testing.assert_allclose(warm.std_error, cold.std_error, rtol=1e-5)
        iters += (cold.n_iter, warm.n_iter)
    # measured over these ten origins: 80 -> 34, 90 -> 34, 80 -> 38 (NB), 60 -> 31, 40 -> 30 (Poisson)
    assert iters[1] <= 0.8 * iters[0], iters


@pytest.mark.parametrize("start", [(np.array([0.5, 0.99, 0.9]), 0.2),      # outside the stationary region
                                   (np.array([np.nan, 0.4, 0.3]), 0.2),     # not finite
                                   (np.array([0.5, 0.4]), 0.2),             # another design
                                   (np.array([30.0, -5.0, 0.5]), 1e-9)])    # far off, alpha ~ 0
def test_a_useless_start_gives_the_cold_fit(start):
    y = _simulate(7, 150)
    cold = _fit(y, 140)
    warm = _fit(y, 140, start=start)
    np.testing.assert_allclose(warm.coef, cold.coef, rtol=0, atol=1e-7)
    assert warm.alpha == pytest.approx(cold.alpha, abs=1e-7) and warm.converged


def test_warm_fit_with_missing_periods_equals_the_cold_fit():
    y = _simulate(8, 150)
    m = 140
    rows = np.ones(m, dtype=bool)
    rows[[30, 31, 90]] = False  # missing counts: out of the likelihood, their lags filled
    fills = [(i + 1, 1, i) for i in (30, 31, 90)]
    kw = dict(rows=rows, fills=fills)
    before = _fit(y, m, **kw)
    cold = _fit(y, m, **kw)
    warm = _fit(y, m, start=(before.coef * 0.9, before.alpha * 1.2), **kw)
    np.testing.assert_allclose(warm.coef, cold.coef, rtol=0, atol=1e-7)
    assert warm.alpha == pytest.approx(cold.alpha, abs=1e-7)
