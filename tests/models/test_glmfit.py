"""Tests of the Poisson / NB2 GLM maximum-likelihood solvers (forecast.models._glmfit).

References: R ``glm`` / ``MASS::glm.nb`` fits (tests/reference_data, produced by
tests/reference_data/reference_fits.R), statsmodels (GLM at fixed alpha, discrete
NegativeBinomial), scipy.stats pmfs, finite differences, and simulation recovery.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from forecast.models._glmfit import (GLMFit, _objective, fit_negbin, fit_poisson, negbin_loglik,
                                     poisson_loglik)

REF_DIR = Path(__file__).resolve().parents[1] / "reference_data"
GLM_MODELS = ["poisson_glm", "negbin_glm", "poisson_glm_month_dummies", "poisson_glm_ar1", "negbin_glm_ar1"]
# Tolerances against R (the reference README's "about 1e-4 / 1e-6 / 1e-3").
COEF_REL, COEF_ABS = 1e-4, 1e-6  # abs floor only matters for a coefficient within 1e-2 of 0
SE_REL, LOGLIK_REL, ALPHA_REL = 1e-3, 1e-6, 1e-4
SEPARATED = ("nb_sparse", "poisson_glm_month_dummies", "month_f9")  # no finite MLE (README)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "reference_panel.csv")


@pytest.fixture(scope="module")
def r_fits() -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "r_reference_fits.csv")


def r_design(panel: pd.DataFrame, uid: str, model: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """X and y as the R formulas in the reference README build them, with R's term names."""
    s = panel[panel["unique_id"] == uid].sort_values("t")
    if model.endswith("_ar1"):  # y ~ lag1 + sin12, rows with lag1 present
        s = s[s["lag1"].notna()]
        cols = {"lag1": s["lag1"], "sin12": s["sin12"]}
    elif model.endswith("_month_dummies"):  # y ~ I(t/144) + factor(month), January the base
        cols = {"I(t/144)": s["t"] / 144} | {f"month_f{m}": (s["month"] == m) * 1.0 for m in range(2, 13)}
    else:  # y ~ I(t/144) + sin12 + cos12
        cols = {"I(t/144)": s["t"] / 144, "sin12": s["sin12"], "cos12": s["cos12"]}
    X = np.column_stack([np.ones(len(s))] + [np.asarray(c, dtype=float) for c in cols.values()])
    return X, s["y"].to_numpy(), ["(Intercept)", *cols]


def _reference_cases() -> list[tuple[str, str]]:
    ref = pd.read_csv(REF_DIR / "r_reference_fits.csv")
    ref = ref[ref["model"].isin(GLM_MODELS)]
    return list(ref[["unique_id", "model"]].drop_duplicates().itertuples(index=False, name=None))


def _fit(model: str, X: np.ndarray, y: np.ndarray, **kw) -> GLMFit:
    return (fit_negbin if model.startswith("negbin") else fit_poisson)(X, y, **kw)


def test_reference_covers_all_models() -> None:
    cases = _reference_cases()
    assert len(cases) == 11 and {m for _, m in cases} == set(GLM_MODELS)


# --- against R ---------------------------------------------------------------------------

@pytest.mark.parametrize(("uid", "model"), _reference_cases())
def test_matches_r(panel, r_fits, uid, model) -> None:
    X, y, names = r_design(panel, uid, model)
    fit = _fit(model, X, y)
    ref = r_fits[(r_fits["unique_id"] == uid) & (r_fits["model"] == model)].set_index("term")
    for j, name in enumerate(names):
        if (uid, model, name) == SEPARATED:
            continue  # no finite MLE: see test_separated_month_dummy_against_r
        assert fit.coef[j] == pytest.approx(ref.loc[name, "estimate"], rel=COEF_REL, abs=COEF_ABS), name
        assert fit.std_error[j] == pytest.approx(ref.loc[name, "std_error"], rel=SE_REL), name
    assert fit.loglik == pytest.approx(ref.loc["loglik", "estimate"], rel=LOGLIK_REL)
    assert fit.aic == pytest.approx(ref.loc["aic", "estimate"], rel=LOGLIK_REL)
    if model.startswith("negbin"):
        assert fit.alpha == pytest.approx(ref.loc["alpha", "estimate"], rel=ALPHA_REL)
        assert fit.converged and fit.grad_norm <= 1e-8 and fit.message == ""
    else:
        assert fit.alpha == 0.0 and np.isnan(fit.alpha_se)
    assert fit.n_obs == len(y)


def test_separated_month_dummy_against_r(panel, r_fits) -> None:
    """Our choice: report separation (converged=False, column named, SE NaN), keep the
    last iterate (< -20, i.e. mu ~ 1e-9) and match R's loglik, which is the supremum."""
    X, y, names = r_design(panel, "nb_sparse", "poisson_glm_month_dummies")
    j = names.index("month_f9")
    assert y[X[:, j] == 1].sum() == 0  # the premise: no event in any September
    fit = fit_poisson(X, y)
    ref = r_fits[(r_fits["unique_id"] == "nb_sparse") & (r_fits["model"] == "poisson_glm_month_dummies")]
    r_loglik = ref.set_index("term").loc["loglik", "estimate"]
    assert not fit.converged
    assert f"separation: coefficient of column {j} diverges" in fit.message
    assert fit.coef[j] < -20 and np.isnan(fit.std_error[j]) and np.all(np.isnan(fit.cov[j]))
    assert np.all(np.isfinite(np.delete(fit.std_error, j)))
    assert fit.loglik == pytest.approx(r_loglik, rel=LOGLIK_REL)
    assert fit.loglik >= r_loglik  # R stopped at -17.6, a little further from the supremum
    nb = fit_negbin(X, y)
    assert not nb.converged and f"column {j}" in nb.message


def test_pois_seasonal_interior_alpha(panel, r_fits) -> None:
    X, y, _ = r_design(panel, "pois_seasonal", "negbin_glm")
    fit = fit_negbin(X, y)
    r_alpha = r_fits.query("unique_id == 'pois_seasonal' and term == 'alpha'")["estimate"].item()
    assert fit.alpha == pytest.approx(r_alpha, rel=1e-4)
    assert fit.alpha == pytest.approx(0.005840, rel=1e-4)
    assert fit.converged and fit.grad_norm <= 1e-8
    assert fit.loglik - fit_poisson(X, y).loglik == pytest.approx(0.0047, abs=1e-4)


# --- against statsmodels --------------------------------------------------------------------

def _simulated(seed: int, n: int = 200, alpha: float = 0.6):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    X = np.column_stack([np.ones(n), t / n, np.sin(2 * np.pi * t / 12), np.cos(2 * np.pi * t / 12),
                         rng.normal(size=n)])
    off = np.log(rng.uniform(0.5, 2.0, n))
    mu = np.exp(X @ np.array([0.8, 0.5, 0.4, -0.3, 0.2]) + off)
    return X, rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu)), off


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_against_statsmodels(seed) -> None:
    import statsmodels.api as sm
    X, y, off = _simulated(seed)
    pois = fit_poisson(X, y, off)
    ref = sm.GLM(y, X, family=sm.families.Poisson(), offset=off).fit(tol=1e-12)
    np.testing.assert_allclose(pois.coef, ref.params, rtol=1e-8, atol=1e-10)
    assert pois.loglik == pytest.approx(ref.llf, rel=1e-12)
    nb = fit_negbin(X, y, off)
    ref = sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=nb.alpha), offset=off).fit(tol=1e-12)
    np.testing.assert_allclose(nb.coef, ref.params, rtol=1e-6)
    np.testing.assert_allclose(nb.std_error, ref.bse, rtol=1e-6)
    disc = sm.NegativeBinomial(y, X, offset=off).fit(method="newton", disp=0, maxiter=500)
    assert nb.loglik >= disc.llf - 1e-8
    # alpha_se: profile observed information = full observed Hessian of (beta, alpha).
    assert nb.alpha_se == pytest.approx(disc.bse[-1], rel=1e-6)


def test_penalised_against_direct_optimisation() -> None:
    X, y, off = _simulated(5)
    for fit_fn in (fit_poisson, fit_negbin):
        fit = fit_fn(X, y, off, penalty=2.0)
        a = max(fit.alpha, 0.0)

        def negobj(b: np.ndarray) -> float:
            return -(negbin_loglik(y, np.exp(X @ b + off), a).sum() - np.sum(b[1:] ** 2))

        ref = optimize.minimize(negobj, np.zeros(X.shape[1]), method="BFGS", options={"gtol": 1e-10})
        np.testing.assert_allclose(fit.coef, ref.x, rtol=1e-5, atol=1e-6)
        assert fit.converged and fit.grad_norm <= 1e-8
        # The unpenalised intercept satisfies its score equation exactly.
        assert np.sum((y - fit.mu) / (1 + a * fit.mu)) == pytest.approx(0.0, abs=1e-8)


# --- log-likelihood functions and derivatives -----------------------------------------------

def test_loglik_functions_against_scipy() -> None:
    y = np.array([0, 1, 2, 5, 17, 60, 250_000])
    mu = np.array([0.3, 1.0, 2.5, 4.0, 20.0, 55.0, 240_000.0])
    np.testing.assert_allclose(poisson_loglik(y, mu), stats.poisson.logpmf(y, mu), rtol=1e-12)
    for a in (1e-3, 0.5, 3.0):  # the last y exercises the digamma branch (> 100000)
        r = 1 / a
        np.testing.assert_allclose(negbin_loglik(y, mu, a), stats.nbinom.logpmf(y, r, r / (r + mu)), rtol=1e-10)
    # alpha -> 0 tends to Poisson with no cancellation, and alpha = 0 is Poisson exactly.
    np.testing.assert_allclose(negbin_loglik(y[:-1], mu[:-1], 1e-13), poisson_loglik(y[:-1], mu[:-1]), rtol=1e-10)
    np.testing.assert_array_equal(negbin_loglik(y, mu, 0.0), poisson_loglik(y, mu))
    assert negbin_loglik(0, 0.0, 0.5) == 0.0 and poisson_loglik(0, 0.0) == 0.0


def test_score_in_alpha_at_zero() -> None:
    """d/d alpha of the NB log-lik at alpha = 0 is ((y - mu)^2 - y) / 2 (the boundary test)."""
    y, mu, h = np.array([0, 1, 3, 8]), np.array([0.5, 1.2, 2.0, 6.0]), 1e-7
    fd = (negbin_loglik(y, mu, h) - negbin_loglik(y, mu, 0.0)) / h
    np.testing.assert_allclose(fd, ((y - mu) ** 2 - y) / 2, rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.004, 0.5, 4.0])
def test_analytic_derivatives(alpha) -> None:
    X, y, off = _simulated(3, n=60)
    pen = np.r_[0.0, np.full(X.shape[1] - 1, 0.3)]
    fun = _objective(X, y, off, pen, np.zeros(len(y)), with_alpha=True)
    x = np.r_[0.7, 0.4, 0.3, -0.2, 0.1, np.log(alpha)]
    _, g, H = fun(x, 2)
    eps = 1e-6
    e = np.eye(x.size) * eps
    g_fd = np.array([(fun(x + d, 0) - fun(x - d, 0)) / (2 * eps) for d in e])
    H_fd = np.array([(fun(x + d, 2)[1] - fun(x - d, 2)[1]) / (2 * eps) for d in e])
    np.testing.assert_allclose(g, g_fd, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(H, H_fd, rtol=1e-6, atol=1e-5)


# --- recovery ---------------------------------------------------------------------------------

def test_nb_parameter_recovery() -> None:
    """200 NB2 series (seeds 0..199, n = 300): Wald 95% coverage and mean alpha-hat."""
    beta, alpha, n = np.array([0.7, 0.5, 0.4, -0.3]), 0.5, 300
    t = np.arange(n)
    X = np.column_stack([np.ones(n), t / n, np.sin(2 * np.pi * t / 12), np.cos(2 * np.pi * t / 12)])
    mu = np.exp(X @ beta)
    covered, alphas = np.zeros(len(beta), dtype=int), []
    for seed in range(200):
        y = np.random.default_rng(seed).negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
        fit = fit_negbin(X, y)
        assert fit.converged
        covered += np.abs(fit.coef - beta) <= stats.norm.ppf(0.975) * fit.std_error
        alphas.append(fit.alpha)
    for j, k in enumerate(covered):
        assert stats.binomtest(int(k), 200, 0.95).pvalue > 1e-3, (j, k)
    # SD(alpha-hat) ~ 0.076, so SE of the mean ~ 0.0054; the ML estimator is biased down by
    # O(1/n) (~0.015 here). 0.03 allows both; the alpha = 1 default would be 0.5 off.
    assert np.mean(alphas) == pytest.approx(alpha, abs=0.03)


# --- degenerate inputs ----------------------------------------------------------------------

def _seasonal(n: int) -> np.ndarray:
    t = np.arange(n)
    return np.column_stack([np.ones(n), t / 144, np.sin(2 * np.pi * (t + 1) / 12), np.cos(2 * np.pi * (t + 1) / 12)])


def _month_dummies(n: int) -> np.ndarray:
    month = np.arange(n) % 12 + 1
    return np.column_stack([np.ones(n), np.arange(n) / 144] + [(month == m) * 1.0 for m in range(2, 13)])


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("fit_fn", [fit_poisson, fit_negbin])
@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_all_zero(no_warnings, fit_fn, penalty) -> None:
    fit = fit_fn(_seasonal(144), np.zeros(144, dtype=int), penalty=penalty)
    assert not fit.converged and "all counts are zero" in fit.message
    assert np.all(np.isnan(fit.coef)) and np.all(fit.mu == 0) and fit.loglik == 0.0


@pytest.mark.parametrize("fit_fn", [fit_poisson, fit_negbin])
def test_single_event(no_warnings, fit_fn) -> None:
    y = np.zeros(144, dtype=int)
    y[40] = 1
    fit = fit_fn(np.ones((144, 1)), y)  # intercept only: MLE exp(b) = mean(y)
    assert fit.converged and fit.coef[0] == pytest.approx(np.log(1 / 144), rel=1e-10)
    # With harmonics, a single event is separable: mu -> 0 in every other month.
    fit = fit_fn(_seasonal(144), y)
    assert not fit.converged and fit.message.startswith("separation: coefficients of columns")
    fit = fit_fn(_seasonal(144), y, penalty=1.0)
    assert fit.converged and fit.grad_norm <= 1e-8 and np.all(np.isfinite(fit.std_error))


@pytest.mark.parametrize("fit_fn", [fit_poisson, fit_negbin])
def test_length_three(no_warnings, fit_fn) -> None:
    fit = fit_fn(_seasonal(3), np.array([2, 0, 1]))
    assert "rank-deficient design (rank 3 < 4): column(s) 3 aliased" in fit.message
    assert fit.coef[3] == 0.0 and np.isnan(fit.std_error[3]) and np.all(np.isfinite(fit.mu))
    fit = fit_fn(_seasonal(3), np.array([2, 0, 1]), penalty=1.0)
    assert fit.converged and "rank-deficient" not in fit.message  # the ridge makes it well posed


@pytest.mark.parametrize("fit_fn", [fit_poisson, fit_negbin])
def test_separation_and_penalty(no_warnings, fit_fn) -> None:
    X = _month_dummies(144)
    y = np.random.default_rng(7).negative_binomial(2, 0.4, 144)
    y[X[:, 9] == 1] = 0  # never an event in September
    fit = fit_fn(X, y, max_iter=100)
    assert not fit.converged and "separation: coefficient of column 9 diverges" in fit.message
    assert fit.n_iter < 60  # stopped by the gradient, not by running out of iterations
    fit = fit_fn(X, y, penalty=1.0)
    assert fit.converged and "separation" not in fit.message
    assert fit.grad_norm <= 1e-8 and -5 < fit.coef[9] < 0 and np.all(np.isfinite(fit.std_error))


def test_rank_deficient_matches_reduced_fit(no_warnings) -> None:
    X, y, _ = _simulated(4)
    full = fit_negbin(np.column_stack([X, 2 * X[:, 1]]), y)
    reduced = fit_negbin(X, y)
    assert "column(s) 5 aliased" in full.message and full.coef[5] == 0 and np.isnan(full.std_error[5])
    np.testing.assert_allclose(full.coef[:5], reduced.coef, rtol=1e-10)
    assert full.loglik == pytest.approx(reduced.loglik, rel=1e-12) and full.aic == pytest.approx(reduced.aic)


def test_max_iter_reported(no_warnings) -> None:
    X, y, _ = _simulated(4)
    fit = fit_negbin(X, y, max_iter=2)
    assert not fit.converged and "did not converge" in fit.message


def test_boundary_alpha_zero(no_warnings) -> None:
    rng = np.random.default_rng(2)
    X = _seasonal(144)
    y = rng.poisson(np.exp(X @ [1.0, 0.2, 0.5, -0.3]))
    pois, nb = fit_poisson(X, y), fit_negbin(X, y)
    assert np.sum((y - pois.mu) ** 2 - y) < 0  # the premise: underdispersed at the Poisson fit
    assert nb.alpha == 0.0 and nb.converged and "alpha at the boundary 0" in nb.message
    np.testing.assert_array_equal(nb.coef, pois.coef)
    assert nb.loglik == pois.loglik and nb.aic == pois.aic + 2 and np.isnan(nb.alpha_se)
    # Independent check that no alpha > 0 does better: statsmodels' fixed-alpha NB fits.
    import statsmodels.api as sm
    for a in (1e-4, 1e-2, 0.1):
        ref = sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=a)).fit(tol=1e-12)
        assert negbin_loglik(y, ref.mu, a).sum() < nb.loglik


# --- invariances and house rules ------------------------------------------------------------

def test_row_order_and_column_scale() -> None:
    X, y, off = _simulated(8)
    fit = fit_negbin(X, y, off)
    perm = np.random.default_rng(0).permutation(len(y))
    shuffled = fit_negbin(X[perm], y[perm], off[perm])
    np.testing.assert_allclose(shuffled.coef, fit.coef, rtol=1e-9)
    np.testing.assert_allclose(shuffled.mu, fit.mu[perm], rtol=1e-9)
    scaled = fit_negbin(X * [1, 10, 1, 1, 1], y, off)
    np.testing.assert_allclose(scaled.coef * [1, 10, 1, 1, 1], fit.coef, rtol=1e-8)
    assert scaled.alpha == pytest.approx(fit.alpha, rel=1e-9)


def test_module_does_not_import_statsmodels() -> None:
    code = "import sys, forecast.models._glmfit; sys.exit('statsmodels' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2]).returncode == 0
