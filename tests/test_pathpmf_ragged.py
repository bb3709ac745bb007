"""Path-mixture forecasts store each row over its own support only (``_raggedpmf``).

The dense grid of a path mixture is as wide as its widest row. The ragged form keeps each
row up to where the mass beyond is below 1e-15 and computes anything wider from the row's
laws. Checked against the dense grid of the same laws (the eager path of earlier versions,
itself checked against scipy in ``test_pathpmf_grid``): stored values bit for bit, every
score, quantile, exceedance and value equal to the dense path (scores to 1e-10, integers
exactly), and no dense grid built on the way.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast._pathpmf import path_mixture
from forecast._raggedpmf import _TOL, RaggedGrid
from forecast.distributions import TAIL_TOL, CountForecast
from forecast.scoring import score_all


def index(n: int) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": [f"s{i}" for i in range(n)], "ds": pd.Timestamp("2021-01-01"), "h": 1})


def means(n=40, P=150, seed=5):
    rng = np.random.default_rng(seed)
    mu = rng.gamma(1.5, 3.0, (n, P)) * np.exp(rng.uniform(-2, 2, (n, 1)))
    mu[0] = rng.uniform(720, 900, P)                 # a huge row: f(0) underflows, sets K
    mu[1] = 2.5                                      # one law (a deterministic step)
    mu[2, ::2] = 0.0                                 # paths with a zero mean
    mu[3] = rng.choice([0.02, 0.3, 4.0], P)          # few repeated laws
    return mu


def pair(mu, alpha, pi):
    """The same path mixture twice: lean (ragged) and with its dense grid built."""
    n = mu.shape[0]
    lean = CountForecast.from_path_means(index(n), mu, alpha=alpha, pi=pi, model="m", history_max=900)
    grid, tail, comps, mean, var = path_mixture(mu, alpha, pi, 9000, TAIL_TOL)
    dense = CountForecast(index(n), "m", grid, tail, comps, mean, var, family="pathmix")
    return lean, dense


CASES = {"negbin": (0.3, 0.0), "poisson": (0.0, 0.0), "zinb": (0.05, 0.25),
         "per-path": (np.random.default_rng(2).uniform(0, 1.2, (40, 150)), 0.1)}


@pytest.mark.parametrize("case", CASES)
def test_ragged_rows_equal_the_dense_grid_and_leave_out_less_than_the_tolerance(case):
    alpha, pi = CASES[case]
    mu = means()
    lean, dense = pair(mu, alpha, pi)
    g = lean._grid
    assert isinstance(g, RaggedGrid) and lean._pmf is None and lean.K == dense.K
    P = dense.pmf
    for r in range(mu.shape[0]):  # stored values are the dense row's prefix, bit for bit
        np.testing.assert_array_equal(g.flat[g.off[r]:g.off[r + 1]], P[r, :g.width[r]])
    left_out = np.array([P[r, g.width[r]:].sum() for r in range(mu.shape[0])])
    if case != "per-path":  # per-path rows keep what the law-by-law kernel writes (down to 1e-300)
        assert (left_out < _TOL).all()
        # memory: the sum of the rows' own supports (the widths leaving out < _TOL), far below rows x (K + 1)
        need = (np.cumsum(P[:, ::-1], axis=1)[:, ::-1] >= _TOL).sum(axis=1)
        assert (g.width <= need + 2).all() and g.flat.size < 0.2 * P.size
    np.testing.assert_array_equal(g.rows(np.arange(mu.shape[0]), lean.K + 1), P)  # whole rows: from the laws
    if case != "per-path":  # a narrower read: stored values, zeros beyond (mass < _TOL left out)
        w = int(np.median(g.width)) + 5
        part, ref = g.rows(np.arange(mu.shape[0]), w), P[:, :w]
        short = g.width < w
        np.testing.assert_array_equal(part[~short], ref[~short])
        assert short.any() and (ref[short] - part[short]).sum(axis=1).max() < _TOL
    np.testing.assert_array_equal(lean.pmf, P)  # the dense grid, once read, is the eager one


@pytest.mark.parametrize("case", CASES)
def test_ragged_scores_quantiles_and_values_equal_the_dense_path_without_building_the_grid(case):
    alpha, pi = CASES[case]
    mu = means()
    lean, dense = pair(mu, alpha, pi)
    _ = dense.pmf
    rng = np.random.default_rng(9)
    m = lean.mean
    y = rng.poisson(m * rng.uniform(0.3, 3, m.size))
    y[4] = lean.K + 40        # beyond the support
    y[5] = int(m[5] + 60 * np.sqrt(lean.var[5])) + 30  # far beyond the row's stored support
    assert y[5] >= lean._grid.width[5] or case == "per-path"
    a, b = score_all(lean, y), score_all(dense, y)
    for key in b:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-10, atol=1e-12, err_msg=key)
    pd.testing.assert_frame_equal(lean.to_frame(thresholds=(1, 5, 50)), dense.to_frame(thresholds=(1, 5, 50)),
                                  rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(lean.quantile([0.01, 0.5, 0.999999]), dense.quantile([0.01, 0.5, 0.999999]))
    for k in (0, 3, 40, 300, lean.K + 7):
        ks = np.full(m.size, k)
        np.testing.assert_allclose(lean.cdf(k), dense.cdf(k), rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(lean.pmf_at(ks), dense.pmf_at(ks))
        np.testing.assert_allclose(lean.logpmf_at(ks), dense.logpmf_at(ks), rtol=1e-12)
        np.testing.assert_allclose(lean.prob_at_least(k), dense.prob_at_least(k), rtol=1e-10, atol=0)
    np.testing.assert_array_equal(lean.sample(50, np.random.default_rng(1)), dense.sample(50, np.random.default_rng(1)))
    pos = np.array([7, 0, 3, 3, 12])
    sub = lean.subset(pos)
    assert isinstance(sub._grid, RaggedGrid)
    np.testing.assert_allclose(score_all(sub, y[pos])["rps"], b["rps"][pos], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(sub.pmf, dense.pmf[pos])
    assert lean._pmf is None  # nothing above built the grid of the forecast itself


def test_a_row_stored_alone_or_among_others_is_the_same():
    mu = means()
    alone = CountForecast.from_path_means(index(1), mu[6:7], alpha=0.4, model="m", history_max=900)._grid
    together = CountForecast.from_path_means(index(40), mu, alpha=0.4, model="m", history_max=900)._grid
    row = together.flat[together.off[6]:together.off[7]]
    assert alone.flat.size == min(row.size, alone.K + 1) < row.size  # alone, its own K caps it
    np.testing.assert_array_equal(alone.flat, row[:alone.flat.size])


def test_path_means_given_as_per_series_blocks_equal_the_joined_array():
    mu = means(n=36)  # 9 series x 4 steps
    blocks = [mu[i:i + 4] for i in range(0, 36, 4)]
    whole = CountForecast.from_path_means(index(36), mu, alpha=0.3, model="m", history_max=900)
    parts = CountForecast.from_path_means(index(36), blocks, alpha=0.3, model="m", history_max=900)
    np.testing.assert_array_equal(parts._grid.flat, whole._grid.flat)
    for a, b in [(parts.tail, whole.tail), (parts.mean, whole.mean), (parts.var, whole.var),
                 *zip(parts.components, whole.components)]:
        np.testing.assert_array_equal(a, b)
    bad = [b.copy() for b in blocks]
    bad[5][2, 7] = -1.0  # forecast row 22, path 7
    with pytest.raises(ValueError, match=r"'mu_paths' must be finite .*row 22, path 7"):
        CountForecast.from_path_means(index(36), bad, alpha=0.3, model="m")
