"""Closed-form GLM fits on designs of groups of periods (forecast.models._glmgroups).

References: statsmodels GLM / discrete NegativeBinomial fits of the same data, a brute-force
1-D maximisation of the NB2 log-likelihood (scipy), the sample means themselves, and
finite differences of the profile.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special

from forecast.models._glmbatch import fit_batch
from forecast.models._glmfit import fit_negbin, fit_poisson, negbin_loglik
from forecast.models._glmgroupnb import AlphaProfile
from forecast.models._glmgroups import group_design, group_diverging, group_means_start, profile_newton, unique_rows


def month_design(n: int, trend: bool = False) -> np.ndarray:
    t = np.arange(n)
    cols = [np.ones(n)] + [(t % 12 == m) * 1.0 for m in range(1, 12)]
    if trend:
        cols.insert(1, t / n)
    return np.column_stack(cols)


def nb_panel(S: int, n: int, alpha: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.5, 3.0, S)
    season = 1 + 0.5 * np.sin(2 * np.pi * np.arange(n) / 12)
    mu = np.outer(np.exp(level), season)
    return mu, rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))


def test_group_designs_are_recognised() -> None:
    X = month_design(60)
    groups, R_inv = group_design(X)
    assert np.array_equal(np.bincount(groups), np.full(12, 5))
    rep = np.array([np.flatnonzero(groups == g)[0] for g in range(12)])  # each group's row of X
    np.testing.assert_allclose(X[rep] @ R_inv, np.eye(12), atol=1e-12)
    assert group_design(np.ones((10, 1))) is not None  # an intercept alone: one group
    assert group_design(month_design(60, trend=True)) is None  # a trend: 60 distinct rows
    aliased = np.column_stack([X, X[:, 1]])  # 12 distinct rows but 13 columns
    assert group_design(aliased) is None
    assert group_design(X[:12]) is None  # one period per group: no more rows than columns


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_poisson_closed_form_equals_statsmodels_and_takes_no_iteration(seed) -> None:
    import statsmodels.api as sm
    X = month_design(96)
    _, Y = nb_panel(1, 96, 0.3, seed)
    y = Y[0]
    fit = fit_poisson(X, y)
    ref = sm.GLM(y, X, family=sm.families.Poisson()).fit(tol=1e-13)
    np.testing.assert_allclose(fit.coef, ref.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.std_error, ref.bse, rtol=1e-8)
    assert fit.loglik == pytest.approx(ref.llf, rel=1e-12)
    assert fit.n_iter == 0 and fit.converged
    # the fitted means are the months' sample means
    np.testing.assert_allclose(fit.mu, np.array([y[m::12].mean() for m in range(12)])[np.arange(96) % 12],
                               rtol=1e-12)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_negbin_closed_form_equals_a_brute_force_maximum_and_statsmodels(seed) -> None:
    import statsmodels.api as sm
    X = month_design(120)
    _, Y = nb_panel(1, 120, 0.4, seed)
    y = Y[0]
    fit = fit_negbin(X, y)
    assert fit.converged and fit.alpha > 0
    assert fit.n_iter <= 8  # the profile's Newton steps only; beta needs none
    means = np.array([y[m::12].mean() for m in range(12)])[np.arange(120) % 12]
    # alpha: brute-force 1-D maximisation of the NB2 log-likelihood at the group means
    res = optimize.minimize_scalar(lambda la: -negbin_loglik(y, means, np.exp(la)).sum(),
                                   bounds=(-12, 3), method="bounded", options={"xatol": 1e-10})
    assert fit.alpha == pytest.approx(np.exp(res.x), rel=1e-6)
    # the joint MLE (statsmodels' discrete NB, its own Newton on beta and alpha)
    disc = sm.NegativeBinomial(y, X).fit(method="newton", disp=0, maxiter=500, tol=1e-12)
    np.testing.assert_allclose(fit.coef, disc.params[:-1], rtol=1e-6, atol=1e-8)
    assert fit.alpha == pytest.approx(disc.params[-1], rel=1e-6)
    assert fit.loglik >= disc.llf - 1e-8
    assert fit.alpha_se == pytest.approx(disc.bse[-1], rel=1e-5)
    ref = sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=fit.alpha)).fit(tol=1e-13)
    np.testing.assert_allclose(fit.std_error, ref.bse, rtol=1e-6)


def test_batch_closed_form_equals_the_per_series_fits_with_missing_periods() -> None:
    X = month_design(84)
    _, Y = nb_panel(40, 84, 0.5, 7)
    rng = np.random.default_rng(8)
    rows = rng.uniform(size=Y.shape) > 0.1  # ~10% missing counts
    Y[3] = rng.poisson(4.0, 84)  # an equidispersed series: alpha on the boundary
    for nb, solver in ((False, fit_poisson), (True, fit_negbin)):
        res = fit_batch(np.broadcast_to(X, (40, 84, 12)), Y, np.zeros(Y.shape), nb=nb, rows=rows)
        assert res.ok.sum() >= 38 and set(np.flatnonzero(~res.ok)) <= set(res.diverging)  # (a month of zeros)
        for s in np.flatnonzero(res.ok):
            one = solver(X[rows[s]], Y[s][rows[s]])
            np.testing.assert_allclose(res.coef[s], one.coef, rtol=1e-9, atol=1e-12)
            assert res.alpha[s] == pytest.approx(one.alpha, rel=1e-9, abs=1e-14)
            assert res.n_iter[s] == one.n_iter
            if nb and one.alpha > 0:
                assert res.alpha_se[s] == pytest.approx(one.alpha_se, rel=1e-7)
    assert res.boundary[3] and res.alpha[3] == 0.0


def test_empty_groups_are_separation_and_varying_offsets_take_the_iterative_path() -> None:
    X = month_design(48)
    _, Y = nb_panel(3, 48, 0.3, 9)
    Y[0, np.arange(48) % 12 == 5] = 0  # a month with no events: separation, no finite MLE
    off = np.zeros(Y.shape)
    off[1] = np.log(np.linspace(1, 2, 48))  # exposure that changes within a month group
    off[2] = np.log(3.0)  # constant exposure: still closed form
    beta, exact, _ = group_means_start(X, Y.astype(float), off)
    assert exact.tolist() == [True, False, True]
    for solver in (fit_poisson, fit_negbin):
        sep = solver(X, Y[0])  # starts at the empty month's mean 1e-12: the separation test names it
        assert not sep.converged and sep.n_iter <= 8
        assert sep.message.startswith("separation: coefficient of column 5 diverges")
        assert sep.coef[5] < -20
        others = np.r_[0:5, 6:12]  # the other months keep their sample means
        np.testing.assert_allclose(sep.mu[np.isin(np.arange(48) % 12, others)],
                                   fit_poisson(X[np.arange(48) % 12 != 5][:, others],
                                               Y[0][np.arange(48) % 12 != 5]).mu, rtol=1e-9)
    res = fit_batch(np.broadcast_to(X, (3, 48, 12)), Y, off, nb=True)
    assert not res.ok[0] and res.diverging[0].tolist() == [5]
    varying = fit_poisson(X, Y[1], off[1])
    assert varying.n_iter > 0 and varying.converged  # the ascent, from R's start
    const = fit_poisson(X, Y[2], off[2])
    assert const.n_iter == 0
    np.testing.assert_allclose(const.coef, beta[2], rtol=1e-12)


def test_alpha_profile_values_and_derivatives() -> None:
    X = month_design(72)
    mu, Y = nb_panel(5, 72, 0.7, 10)
    mask = np.random.default_rng(11).uniform(size=Y.shape) > 0.2
    groups, _ = group_design(X)
    mu_g = np.stack([[Y[s][mask[s] & (groups == g)].mean() for g in range(12)] for s in range(5)])
    prof = AlphaProfile(Y, mask, groups, mu_g)
    theta = np.log(np.array([0.05, 0.3, 0.7, 1.5, 4.0]))
    ll, g, H = prof(theta, 2)
    # values: the NB2 log-likelihood summed directly, up to terms free of alpha
    direct = np.array([negbin_loglik(Y[s][mask[s]], mu_g[s][groups[mask[s]]], np.exp(theta[s])).sum()
                       for s in range(5)])
    const = np.array([np.sum(Y[s][mask[s]] * np.log(mu_g[s][groups[mask[s]]]) - special.gammaln(Y[s][mask[s]] + 1.0))
                      for s in range(5)])
    np.testing.assert_allclose(ll, direct - const, rtol=1e-10)
    eps = 1e-5
    fd = (prof(theta + eps, 0) - prof(theta - eps, 0)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6)
    fd2 = (prof(theta + eps, 2)[1] - prof(theta - eps, 2)[1]) / (2 * eps)
    np.testing.assert_allclose(H, fd2, rtol=1e-5, atol=1e-5)
    sub = prof.take(np.array([4, 1]))
    np.testing.assert_allclose(sub(theta[[4, 1]], 0), ll[[4, 1]], rtol=1e-14)


def test_profile_newton_recovers_known_dispersions() -> None:
    """Simulation: 200 series of 1,200 periods with alpha = 0.5 give estimates centred on it
    (100 periods per mean: the MLE's small-sample bias, ~ -9% at 20, is ~ -2% here)."""
    X = month_design(1200)
    _, Y = nb_panel(200, 1200, 0.5, 12)
    groups, _ = group_design(X)
    mu_g = np.stack([np.bincount(groups, weights=y) / 100 for y in Y])
    theta, n_iter, conv, H = profile_newton(AlphaProfile(Y, None, groups, mu_g), np.zeros(200), 1e-8, 100)
    assert conv.all() and n_iter.max() <= 12 and (H < 0).all()
    a = np.exp(theta)
    assert abs(np.median(a) - 0.5) < 0.03
    se = a * np.sqrt(-1 / H)  # the delta-method SE is about the estimates' spread
    assert 0.8 < np.std(a) / np.median(se) < 1.25


def test_unique_rows_equals_numpy_unique() -> None:
    rng = np.random.default_rng(13)
    A = rng.integers(0, 3, (200, 4)).astype(float)
    A[:, 2] = np.where(A[:, 2] > 1, 1e-300, A[:, 2])  # tiny and zero entries stay apart
    uniq, at = unique_rows(A)
    np.testing.assert_array_equal(uniq[at], A)
    ref = np.unique(A, axis=0)
    assert len(uniq) == len(ref) and np.array_equal(np.unique(uniq, axis=0), ref)
    D = month_design(36)
    DD = (D[:, :, None] * D[:, None, :]).reshape(36, -1).T  # the batched solver's use
    uniq, at = unique_rows(DD)
    assert len(uniq) == 13 and np.array_equal(uniq[at], DD)  # 1, each month, and 0


def test_group_separation_equals_the_general_test() -> None:
    """Empty groups (a month, the base month, several) name the same columns as the LP route."""
    from forecast.models._glmcheck import _diverging_columns
    X = month_design(60)
    groups, _ = group_design(X)
    _, Y = nb_panel(6, 60, 0.3, 14)
    Y = np.maximum(Y, 1)
    empties = [[], [4], [0], [0, 7], [3, 4, 5], list(range(1, 12))]
    for y, empty in zip(Y, empties):
        y[np.isin(groups, empty)] = 0
        expected = _diverging_columns(X, y, np.ones(12, dtype=bool))
        np.testing.assert_array_equal(group_diverging(X, y, groups), expected)
        assert (expected.size > 0) == bool(empty)


def test_closed_form_equals_the_iterative_fit_on_random_panels(monkeypatch) -> None:
    """80 random panels (intercept only, quarters, months; Poisson and NB data; empty groups
    included): the fit from the closed form equals the Newton ascent from R's start (the
    closed form switched off) in coefficients, alpha, log-likelihood, convergence and message."""
    from forecast.models import _glmfit

    rng = np.random.default_rng(15)
    real = _glmfit.group_means_start
    for _ in range(80):
        q = int(rng.choice([1, 4, 12]))
        n = int(rng.integers(2 * q + 1, 150))
        t = np.arange(n)
        X = np.column_stack([np.ones(n)] + [(t % q == m) * 1.0 for m in range(1, q)])
        a = float(rng.choice([0.0, 0.05, 1.0, 5.0]))
        mu = np.exp(rng.uniform(-2, 4) + rng.normal(0, 0.5, q))[t % q]
        y = rng.poisson(mu) if a == 0 else rng.negative_binomial(1 / a, 1 / (1 + a * mu))
        if not y.any():
            continue
        for solver in (fit_poisson, fit_negbin):
            closed = solver(X, y)
            monkeypatch.setattr(_glmfit, "group_means_start", lambda *args: None)
            iterated = solver(X, y)
            monkeypatch.setattr(_glmfit, "group_means_start", real)
            assert closed.converged == iterated.converged
            assert closed.message.split("diverge")[0] == iterated.message.split("diverge")[0]
            if closed.converged:
                np.testing.assert_allclose(closed.coef, iterated.coef, rtol=1e-7, atol=1e-8)
                assert closed.alpha == pytest.approx(iterated.alpha, rel=1e-8, abs=1e-12)
                assert closed.loglik == pytest.approx(iterated.loglik, rel=1e-12, abs=1e-9)
            # the batch takes closed forms without a Newton check: the same numbers
            batch = fit_batch(X[None], y[None], np.zeros((1, n)), nb=solver is fit_negbin)
            assert batch.ok[0] == closed.converged
            if batch.ok[0]:
                np.testing.assert_allclose(batch.coef[0], iterated.coef, rtol=1e-7, atol=1e-8)
                assert batch.alpha[0] == pytest.approx(iterated.alpha, rel=1e-8, abs=1e-12)
                assert batch.loglik[0] == pytest.approx(iterated.loglik, rel=1e-12, abs=1e-9)
