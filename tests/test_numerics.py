"""forecast.numerics, the one home of the NB2/Poisson numerics, against scipy.stats and brute force.

scipy's nbinom(n = 1/alpha, p = 1/(1 + alpha mu)) is NB2(mu, alpha); the Poisson is alpha = 0.
Tolerances: 1e-10 relative on log-pmf and pmf grids, 1e-9 relative on survival values that
are not tiny (scipy's own betainc-based sf carries ~1e-12..1e-10 there).
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from forecast import numerics

PKG = Path(numerics.__file__).parent


def nbinom(mu, alpha):
    return stats.nbinom(1 / alpha, 1 / (1 + alpha * mu))


CASES = [(0.3, 0.5), (2.0, 0.01), (7.5, 1.3), (40.0, 0.2), (900.0, 0.05), (3.0, 1e-4)]


@pytest.mark.parametrize("mu, alpha", CASES)
def test_nb_logpmf_matches_scipy(mu, alpha):
    y = np.arange(0, 300, dtype=float)
    got = numerics.nb_logpmf(y, np.full(y.size, mu), np.full(y.size, alpha))
    want = nbinom(mu, alpha).logpmf(y)
    ok = want > -700  # compare where scipy's value is a normal float
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-10, atol=1e-10)


def test_nb_logpmf_poisson_limit_and_large_counts():
    y = np.array([0.0, 1, 5, 300, 10_000])
    mu = np.array([2.0, 2.0, 4.0, 290.0, 9_800.0])
    got = numerics.nb_logpmf(y, mu, np.zeros(y.size))
    np.testing.assert_allclose(got, stats.poisson(mu).logpmf(y), rtol=1e-12)
    # alpha below 1e-3: direct sums (y <= 256) and Stirling's series (y > 256). scipy forms
    # gammaln(y + 1e5) - gammaln(1e5), which itself cancels ~1e-10 relative: compare at 1e-9
    a = np.full(y.size, 1e-5)
    np.testing.assert_allclose(numerics.nb_logpmf(y, mu, a), nbinom(mu, a).logpmf(y), rtol=1e-9)


@pytest.mark.parametrize("mu, alpha", CASES + [(5.0, 0.0), (1e3, 0.0)])
def test_nb_sf_and_cdf_match_scipy(mu, alpha):
    k = np.arange(-2, 150, dtype=float)
    ref = stats.poisson(mu) if alpha == 0 else nbinom(mu, alpha)
    sf, cdf = numerics.nb_sf(k, np.full(k.size, mu), np.full(k.size, alpha)), \
        numerics.nb_cdf(k, np.full(k.size, mu), np.full(k.size, alpha))
    want_sf = np.where(k < 0, 1.0, ref.sf(k))
    big = want_sf > 1e-200
    np.testing.assert_allclose(sf[big], want_sf[big], rtol=1e-9)
    np.testing.assert_allclose(cdf, np.where(k < 0, 0.0, ref.cdf(k)), rtol=1e-9, atol=1e-300)


def test_pmf_grid_matches_scipy_including_underflowing_rows():
    mu = np.array([0.0, 0.4, 12.0, 800.0, 2500.0])
    alpha = np.array([0.3, 0.0, 0.7, 1e-3, 0.0])
    K = 3000
    grid = numerics.nb_pmf_grid(mu, alpha, K)
    k = np.arange(K + 1)
    for i in range(mu.size):
        want = (stats.poisson(mu[i]) if alpha[i] == 0 else nbinom(mu[i], alpha[i])).pmf(k)
        np.testing.assert_allclose(grid[i], want, rtol=1e-9, atol=1e-300)


def test_needed_k_is_the_smallest_support_by_brute_force():
    mu = np.array([0.5, 3.0, 30.0, 750.0])
    alpha = np.array([0.0, 0.4, 0.05, 0.01])
    pi = np.array([0.0, 0.3, 0.0, 0.5])
    tol = 1e-6
    K = numerics.needed_k(mu, alpha, pi, 100_000, tol)
    sf = lambda k: (1 - pi) * np.array([(stats.poisson(m) if a == 0 else nbinom(m, a)).sf(k)  # noqa: E731
                                         for m, a in zip(mu, alpha)])
    assert (sf(K) < tol).all() and not (sf(K - 1) < tol).all()
    assert numerics.needed_k(mu, alpha, pi, 50, tol) == 50  # the cap binds


def test_search_beyond_inverts_the_parametric_cdf_by_brute_force():
    # two-component mixture rows; base = F(K) from the same components
    w = np.array([[0.4, 1.0], [0.6, 0.0]])
    mu = np.array([[30.0, 5000.0], [200.0, 1.0]])
    alpha = np.array([[0.1, 0.0], [0.02, 0.0]])
    pi = np.zeros((2, 2))
    comps, K = (w, mu, alpha, pi), 40
    F = lambda k, r: sum(w[c, r] * (stats.poisson(mu[c, r]) if alpha[c, r] == 0  # noqa: E731
                                    else nbinom(mu[c, r], alpha[c, r])).cdf(k) for c in range(2))
    base = np.array([F(K, 0), F(K, 1)])
    target = np.array([0.9, 0.5])
    got = numerics.search_beyond(K, base, comps, target)
    for r in range(2):
        k = np.arange(K + 1, 20_000)
        want = k[np.argmax(F(k, r) >= target[r])]
        assert got[r] == want


# -- layering: the pure numerics sit below distributions and the models ---------------------

def _forecast_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("forecast"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("forecast")}
    return out


def test_numerics_imports_only_numpy_and_scipy():
    tree = ast.parse((PKG / "numerics.py").read_text(encoding="utf-8"))
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert roots <= {"__future__", "numpy", "scipy"}, roots


def test_scoring_numerics_do_not_reach_up_to_distributions():
    assert "forecast.distributions" not in _forecast_imports(PKG / "_countnum.py")


@pytest.mark.parametrize("solver", ["_arma", "_ingarchfit", "_glmstack", "_glmcheck", "_zilik", "_glmfit",
                                    "_zifit", "_glmbatch"])
def test_solver_modules_do_not_import_model_specs(solver):
    imports = _forecast_imports(PKG / "models" / f"{solver}.py")
    assert not imports & {"forecast.models.base", "forecast.models.design", "forecast.backtesting",
                          "forecast.distributions"}, imports


# -- the split modules stay small and the old import paths keep working ---------------------

SPLIT = ["distributions.py", "numerics.py", "_fcrows.py", "_countnum.py", "report.py", "_report_view.py",
         "config.py", "_config_rules.py", "_config_models.py", "ingest.py", "_ingest_cols.py", "models/arima.py", "models/_arma.py",
         "models/autoregressive.py", "models/_ingarchfit.py", "models/_glmbatch.py", "models/_glmstack.py",
         "models/_glmfit.py", "models/_glmcheck.py", "models/_zifit.py", "models/_zilik.py", "models/glm.py",
         "models/_glmglue.py", "models/_sarimax.py",
         "models/design.py", "models/_interventions.py",
         "models/baselines.py", "models/_pooled.py",
         "scoring.py", "_scorescan.py"]


@pytest.mark.parametrize("module", SPLIT)
def test_module_is_under_400_lines(module):
    n = len((PKG / module).read_text(encoding="utf-8").splitlines())
    assert n < 400, f"{module} has {n} lines: split it by responsibility"


@pytest.mark.parametrize("old, new, names", [
    ("forecast.models.arima", "forecast.models._arma",
     ["arma_acov", "arma_exact_llf", "kpss_differences", "_pacf_to_poly", "KPSS_CRIT_5PCT"]),
    ("forecast.models.arima", "forecast.models._sarimax",
     ["z_forecast", "FIT_OPTIONS", "MODEL_OPTIONS", "_fit_candidate", "_sarimax", "_scale", "_fourier_exog"]),
    ("forecast.models.autoregressive", "forecast.models._ingarchfit",
     ["IngarchFit", "fit_ingarch", "ingarch_objective", "initial_log_mean"]),
    ("forecast.models.design", "forecast.models._interventions",
     ["Intervention", "INTERVENTION_KINDS", "parse_interventions", "valid_interventions"]),
    ("forecast.models.baselines", "forecast.models._pooled", ["_within_alpha"]),
    ("forecast.scoring", "forecast._scorescan", ["_scan", "_beyond_support", "_predict_width", "_enqueue",
                                                 "RPS_TOL", "_W0", "_W_STEP", "_CELLS", "_SUM_TERMS"]),
    ("forecast.models._zifit", "forecast.models._zilik", ["zi_loglik"]),
    ("forecast.models._glmbatch", "forecast.models._glmstack", ["_dispersion_sums"]),
    ("forecast.distributions", "forecast._fcrows", ["K_CAP_MAX", "K_CAP_MIN"]),
    ("forecast._countnum", "forecast.numerics", ["nb_sf", "nb_cdf"]),
    ("forecast.report", "forecast._report_view", ["png_data_uri", "fmt_pct", "fmt_range", "month_label",
                                                  "plural"]),
    ("forecast.config", "forecast._config_rules", ["_Bad", "_date"]),
    ("forecast.ingest", "forecast._ingest_cols", ["_resolve_gazetteer"]),
])
def test_moved_names_are_still_importable_from_their_old_module(old, new, names):
    import importlib

    a, b = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(a, name) is getattr(b, name), name
