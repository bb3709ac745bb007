"""Parametric forecasts score and tabulate without building their dense pmf (``_leanpmf``).

A Poisson/NB/ZI forecast builds its ``(n_rows, K+1)`` grid only when ``pmf`` is read. Every
score, quantile, exceedance, cdf and draw must equal those of the same forecast with its grid
built (the dense path) -- scores to 1e-10, integers exactly -- and match scipy where a
closed form exists.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecast.distributions import CountForecast
from forecast.scoring import score_all


def index(n: int) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": [f"s{i}" for i in range(n)], "ds": pd.Timestamp("2021-01-01"), "h": 1})


def means(n=240, seed=3):
    rng = np.random.default_rng(seed)
    mu = np.exp(rng.uniform(np.log(0.05), np.log(60), n))
    mu[:4] = [1e-8, 0.3, 155.0, 820.0]  # tiny, light, the widest row, f(0) underflows
    return mu


def families(mu):
    n = mu.size
    pi = np.linspace(0, 0.4, n)
    return {"poisson": lambda: CountForecast.poisson(index(n), mu, model="m", history_max=900),
            "negbin": lambda: CountForecast.negbin(index(n), mu, np.linspace(0, 1.5, n), model="m",
                                                   history_max=900),
            "zinb": lambda: CountForecast.zero_inflated(index(n), mu, pi, 0.2, model="m", history_max=900)}


@pytest.mark.parametrize("family", ["poisson", "negbin", "zinb"])
def test_lean_scores_and_table_equal_the_dense_path_without_building_the_grid(family):
    mu = means()
    make = families(mu)[family]
    lean, dense = make(), make()
    _ = dense.pmf  # the dense path: grid built, every reader uses it
    assert lean._pmf is None and dense._pmf is not None
    rng = np.random.default_rng(9)
    y = rng.poisson(mu * rng.uniform(0.3, 3, mu.size))
    y[5] = lean.K + 40  # an outcome beyond the support
    a, b = score_all(lean, y), score_all(dense, y)
    for key in b:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-10, atol=1e-12, err_msg=key)
    for lv in (50, 80, 95):  # interval masses, read from the scan's sums, are F(hi) - F(lo - 1)
        lo, hi = dense.interval(lv)
        np.testing.assert_allclose(a[f"mass_{lv}"], dense.cdf(hi) - dense.cdf(lo - 1), rtol=1e-12, atol=1e-14)
    pd.testing.assert_frame_equal(lean.to_frame(thresholds=(1, 5, 50)), dense.to_frame(thresholds=(1, 5, 50)),
                                  rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(lean.quantile([0.01, 0.5, 0.999999]), dense.quantile([0.01, 0.5, 0.999999]))
    for k in (0, 3, 40, lean.K + 7):
        np.testing.assert_allclose(lean.cdf(k), dense.cdf(k), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(lean.pmf_at(np.full(mu.size, k)), dense.pmf_at(np.full(mu.size, k)),
                                   rtol=1e-11, atol=1e-300)
    np.testing.assert_array_equal(lean.sample(50, np.random.default_rng(1)), dense.sample(50, np.random.default_rng(1)))
    sub = lean.subset(np.arange(0, mu.size, 3))
    np.testing.assert_allclose(score_all(sub, y[::3])["rps"], b["rps"][::3], rtol=1e-10, atol=1e-12)
    assert lean._pmf is None and sub._pmf is None  # nothing above built a grid
    np.testing.assert_array_equal(lean.pmf, dense.pmf)  # and the grid, once read, is the eager one
    assert not lean.pmf.flags.writeable


def test_small_exceedances_come_from_the_survival_function():
    mu = np.array([0.01, 0.5, 3.0, 20.0])
    f = CountForecast.negbin(index(4), mu, 0.4, model="m")
    for k in (5, 12, 30, 60):
        want = stats.nbinom.sf(k - 1, 1 / 0.4, 1 / (1 + 0.4 * mu))
        np.testing.assert_allclose(f.prob_at_least(k), want, rtol=1e-10, atol=0)
    assert f._pmf is None
