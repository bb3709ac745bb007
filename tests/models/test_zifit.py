"""Tests of the zero-inflated Poisson / NB2 maximum-likelihood solvers.

References: R ``pscl::zeroinfl`` fits (tests/reference_data/r_reference_fits.csv, from
``zeroinfl(y ~ sin12 | 1)`` on series ``zinb``), statsmodels' zero-inflated log-likelihoods,
a brute-force scipy.stats sum, a finite-difference Hessian, and simulation recovery.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from forecast.models._zifit import ZIFit, fit_zinb, fit_zip, zi_loglik

REF_DIR = Path(__file__).resolve().parents[1] / "reference_data"
TERMS = ["count_(Intercept)", "count_sin12", "zero_(Intercept)"]


@pytest.fixture(scope="module")
def zinb_series() -> tuple[np.ndarray, np.ndarray]:
    panel = pd.read_csv(REF_DIR / "reference_panel.csv")
    s = panel[panel["unique_id"] == "zinb"].sort_values("t")
    X = np.column_stack([np.ones(len(s)), s["sin12"].to_numpy()])
    return X, s["y"].to_numpy()


@pytest.fixture(scope="module")
def r_fits() -> pd.DataFrame:
    ref = pd.read_csv(REF_DIR / "r_reference_fits.csv")
    return ref[ref["unique_id"] == "zinb"]


@pytest.fixture(scope="module")
def fits(zinb_series) -> dict[str, ZIFit]:
    X, y = zinb_series
    return {"zip": fit_zip(X, y), "zinb": fit_zinb(X, y)}


def _rel(a, b) -> np.ndarray:
    return np.abs(np.asarray(a, float) / np.asarray(b, float) - 1.0)


# ---------------------------------------------------------------- R pscl reference
@pytest.mark.parametrize("model", ["zip", "zinb"])
def test_matches_r_pscl(model, fits, r_fits):
    fit = fits[model]
    ref = r_fits[r_fits["model"] == model].set_index("term")
    assert fit.converged, fit.message
    assert fit.n_obs == 144
    est = np.r_[fit.coef, fit.zero_coef]
    se = np.r_[fit.std_error, fit.zero_std_error]
    assert np.all(_rel(est, ref.loc[TERMS, "estimate"]) < 1e-4)
    assert np.all(_rel(se, ref.loc[TERMS, "std_error"]) < 1e-3)
    assert _rel(fit.loglik, ref.loc["loglik", "estimate"]) < 1e-6
    assert _rel(fit.aic, ref.loc["aic", "estimate"]) < 1e-6
    if model == "zinb":
        assert _rel(fit.theta, ref.loc["theta", "estimate"]) < 1e-4
        assert _rel(fit.alpha, ref.loc["alpha", "estimate"]) < 1e-4
        assert _rel(np.log(fit.theta), ref.loc["count_Log(theta)", "estimate"]) < 1e-4
        assert _rel(np.sqrt(fit.cov[-1, -1]), ref.loc["count_Log(theta)", "std_error"]) < 1e-3
        assert fit.cov.shape == (4, 4)
    else:
        assert fit.alpha == 0.0 and np.isinf(fit.theta) and fit.cov.shape == (3, 3)


def test_reported_fields_are_consistent(fits, zinb_series):
    X, y = zinb_series
    for fit in fits.values():
        assert fit.grad_norm <= 1e-8
        np.testing.assert_allclose(fit.mu, np.exp(X @ fit.coef), rtol=1e-12)
        np.testing.assert_allclose(fit.pi, special.expit(fit.zero_coef[0]), rtol=1e-12)
        k = fit.cov.shape[0]
        assert fit.aic == pytest.approx(-2 * fit.loglik + 2 * k, rel=1e-12)


# ---------------------------------------------------------------- statsmodels likelihood
def _sm_model(model, X, y, Z):
    from statsmodels.discrete.count_model import (
        ZeroInflatedNegativeBinomialP, ZeroInflatedPoisson)

    if model == "zip":
        return ZeroInflatedPoisson(y, X, exog_infl=Z, inflation="logit")
    return ZeroInflatedNegativeBinomialP(y, X, exog_infl=Z, inflation="logit", p=2)


def _sm_params(fit: ZIFit) -> np.ndarray:
    # statsmodels orders the parameters (inflation, count[, alpha])
    return np.r_[fit.zero_coef, fit.coef, [fit.alpha] if fit.alpha > 0 else []]


def _design_cases(zinb_series):
    X, y = zinb_series
    t = np.arange(len(y))
    Z2 = np.column_stack([np.ones(len(y)), t / len(y) - 0.5])  # design-based inflation
    return [("constant Z", X, y, np.ones((len(y), 1))), ("trend Z", X, y, Z2)]


@pytest.mark.parametrize("model", ["zip", "zinb"])
@pytest.mark.parametrize("case", [0, 1])
def test_loglik_matches_statsmodels(model, case, zinb_series):
    _, X, y, Z = _design_cases(zinb_series)[case]
    fitter = fit_zip if model == "zip" else fit_zinb
    fit = fitter(X, y, Z=None if case == 0 else Z)
    assert fit.converged, fit.message
    sm = _sm_model(model, X, y, Z)
    # the likelihood itself, at our optimum and at a point away from it
    assert fit.loglik == pytest.approx(sm.loglike(_sm_params(fit)), rel=1e-9)
    rng = np.random.default_rng(1)
    other = _sm_params(fit) + rng.normal(0, 0.1, size=_sm_params(fit).size)
    q = Z.shape[1]
    alpha = other[-1] if model == "zinb" else 0.0
    count = other[q:-1] if model == "zinb" else other[q:]
    assert zi_loglik(X, y, count, other[:q], alpha, Z=Z) == pytest.approx(
        sm.loglike(other), rel=1e-9)
    # and our maximum is at least as high as statsmodels' own optimiser reaches
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm_fit = sm.fit(method="bfgs", maxiter=2000, disp=0)
    assert fit.loglik >= sm_fit.llf - 1e-8


# ---------------------------------------------------------------- brute force
def test_loglik_brute_force_tiny():
    y = np.array([0, 0, 3, 1, 0, 7])
    X = np.column_stack([np.ones(6), [0.1, -0.5, 0.3, 1.0, 0.0, 0.8]])
    Z = np.column_stack([np.ones(6), [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]])
    off = np.log([1.0, 2.0, 1.0, 0.5, 1.0, 3.0])
    beta, gamma, alpha = np.array([0.4, 0.7]), np.array([-0.3, 0.9]), 0.6
    mu = np.exp(X @ beta + off)
    pi = 1 / (1 + np.exp(-(Z @ gamma)))
    for a, pmf in [(0.0, stats.poisson.pmf(y, mu)),
                   (alpha, stats.nbinom.pmf(y, 1 / alpha, 1 / (1 + alpha * mu)))]:
        p = np.where(y == 0, pi + (1 - pi) * pmf, (1 - pi) * pmf)
        expected = sum(np.log(v) for v in p)
        got = zi_loglik(X, y, beta, gamma, a, offset=off, Z=Z)
        assert got == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- metamorphic
@pytest.mark.parametrize("fitter", [fit_zip, fit_zinb])
def test_offset_shifts_intercept_and_order_is_irrelevant(fitter, fits, zinb_series):
    X, y = zinb_series
    base = fits["zip" if fitter is fit_zip else "zinb"]
    shifted = fitter(X, y, offset=np.full(len(y), 0.7))
    assert shifted.converged
    np.testing.assert_allclose(shifted.coef, base.coef - [0.7, 0.0], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(shifted.zero_coef, base.zero_coef, rtol=1e-6)
    assert shifted.loglik == pytest.approx(base.loglik, rel=1e-12)
    perm = np.random.default_rng(3).permutation(len(y))
    permuted = fitter(X[perm], y[perm])
    np.testing.assert_allclose(np.r_[permuted.coef, permuted.zero_coef],
                               np.r_[base.coef, base.zero_coef], rtol=1e-7)
    np.testing.assert_allclose(permuted.cov, base.cov, rtol=1e-6)
    np.testing.assert_allclose(permuted.mu, base.mu[perm], rtol=1e-7)


# ---------------------------------------------------------------- finite-difference Hessian
def _fd_hessian(f, x, h=1e-4):
    k = x.size
    H = np.empty((k, k))
    E = np.eye(k) * h
    for i in range(k):
        for j in range(i, k):
            H[i, j] = H[j, i] = (f(x + E[i] + E[j]) - f(x + E[i] - E[j])
                                 - f(x - E[i] + E[j]) + f(x - E[i] - E[j])) / (4 * h * h)
    return H


@pytest.mark.parametrize("model", ["zip", "zinb"])
def test_se_match_finite_difference_hessian(model, fits, zinb_series):
    X, y = zinb_series
    fit = fits[model]
    if model == "zip":
        x0 = np.r_[fit.coef, fit.zero_coef]
        f = lambda v: zi_loglik(X, y, v[:2], v[2:])  # noqa: E731
    else:
        x0 = np.r_[fit.coef, fit.zero_coef, np.log(fit.theta)]
        f = lambda v: zi_loglik(X, y, v[:2], v[2:3], np.exp(-v[3]))  # noqa: E731
    cov_fd = np.linalg.inv(-_fd_hessian(f, x0))
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), np.sqrt(np.diag(cov_fd)), rtol=1e-5)
    np.testing.assert_allclose(fit.cov, cov_fd, rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------- recovery by simulation
def test_wald_coverage_on_simulated_zinb():
    n, beta, pi, alpha = 400, np.array([1.2, 0.4]), 0.35, 0.8
    x = np.sin(2 * np.pi * (np.arange(n) % 12 + 1) / 12)
    X = np.column_stack([np.ones(n), x])
    truth = np.r_[beta, special.logit(pi)]
    mu = np.exp(X @ beta)
    hits, n_fail = np.zeros(3), 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        r = 1 / alpha
        y = np.where(rng.random(n) < pi, 0, rng.negative_binomial(r, r / (r + mu)))
        fit = fit_zinb(X, y)
        if not fit.converged:
            n_fail += 1
            continue
        est = np.r_[fit.coef, fit.zero_coef]
        se = np.r_[fit.std_error, fit.zero_std_error]
        hits += np.abs(est - truth) <= 1.959964 * se
    assert n_fail == 0
    for h in hits:  # one binomial test per parameter (beta0, beta1, logit pi)
        assert stats.binomtest(int(h), 100, 0.95).pvalue > 1e-3, hits


# ---------------------------------------------------------------- degenerate inputs
@pytest.mark.parametrize("fitter", [fit_zip, fit_zinb])
@pytest.mark.parametrize("y, word", [(np.zeros(48, int), "all counts are zero"),
                                      (np.arange(1, 49) % 5 + 1, "no zero counts"),
                                      (np.array([0, 2, 1]), "too few observations")])
def test_degenerate_inputs_do_not_raise(fitter, y, word):
    X = np.column_stack([np.ones(len(y)), np.sin(np.arange(len(y)))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fitter(X, y)
    assert not fit.converged
    assert word in fit.message
    assert fit.coef.shape == (2,) and fit.zero_coef.shape == (1,)
    assert fit.mu.shape == y.shape


def test_zinb_on_equidispersed_data_reports_boundary():
    # Poisson counts with extra zeros; for this draw the ZINB likelihood keeps rising as
    # theta -> inf, so the MLE is the ZIP fit on the boundary alpha = 0
    rng = np.random.default_rng(0)
    n = 300
    X = np.ones((n, 1))
    y = np.where(rng.random(n) < 0.3, 0, rng.poisson(3.0, n))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zip_fit = fit_zip(X, y)
        fit = fit_zinb(X, y)
    assert zip_fit.converged
    assert not fit.converged
    assert "theta -> inf" in fit.message
    assert fit.theta > 1e6
    # the NB2 likelihood must tend to the Poisson one without round-off gains
    # (lgamma(y + theta) - lgamma(theta) loses ~1e-7 per observation at theta ~ 1e8)
    assert zip_fit.loglik - 1e-4 < fit.loglik <= zip_fit.loglik + 1e-9
    assert zi_loglik(X, y, fit.coef, fit.zero_coef, 1e-12) == pytest.approx(
        zi_loglik(X, y, fit.coef, fit.zero_coef, 0.0), abs=1e-8)


def test_short_series_intercept_only_does_not_raise():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for y in ([0, 2, 1], [0, 0, 5], [0, 1, 1, 1]):
            for fitter in (fit_zip, fit_zinb):
                fit = fitter(np.ones((len(y), 1)), np.array(y))
                assert fit.converged or fit.message
                if fit.converged:
                    assert np.isfinite(fit.loglik) and np.all(np.isfinite(fit.std_error))


def test_separated_inflation_design_does_not_raise():
    # a Z group without zeros makes its inflation probability run to 0
    n = 60
    g = (np.arange(n) < 30).astype(float)
    y = np.where(g == 1, np.arange(n) % 4 + 1, np.arange(n) % 3)
    X = np.ones((n, 1))
    Z = np.column_stack([np.ones(n), g])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_zip(X, y, Z=Z)
    assert not fit.converged
    assert fit.message
