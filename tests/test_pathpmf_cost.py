"""The cost rules of the path-mixture kernels keep their numbers.

- the mass beyond ``K`` is computed only for the laws that can reach ``2**-56`` of a row's
  tail (``_pathpmf._beyond``): tails equal the sum over every path of scipy's NB survival
  function, and the parametric form beyond ``K`` is the one of the all-law sum;
- one-alpha rows are computed in short first chunks (``_mixgrid.chunk_len``): a light row
  stops after 32 or 64 counts instead of a full chunk of 256, with the same values.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

import forecast._pathpmf as pathpmf
import forecast._raggedpmf as raggedpmf
from forecast._mixgrid import _B, _CHUNK, chunk_len
from forecast.distributions import TAIL_TOL, CountForecast


def spread_means(n: int = 30, P: int = 400, seed: int = 4) -> np.ndarray:
    """Rows of many distinct path means spread over two orders of magnitude, one wide row."""
    rng = np.random.default_rng(seed)
    mu = rng.gamma(0.8, 3.0, (n, P)) * np.exp(rng.uniform(-1, 1, (n, 1)))
    mu[0] = rng.uniform(100, 160, P)  # sets K far beyond the other rows
    return mu


def all_laws(K, starts, mu, alpha, pi, w, per_path):
    """The reference rule: every law's mass beyond K."""
    return w * (1 - pi) * pathpmf.nb_sf(np.full(mu.size, float(K)), mu, alpha)


def test_tails_equal_the_all_paths_survival_sum_with_far_fewer_evaluations(monkeypatch):
    mu, alpha, pi = spread_means(), 0.3, 0.1
    calls = []
    sf = pathpmf.nb_sf
    monkeypatch.setattr(pathpmf, "nb_sf", lambda k, m, a: calls.append(np.size(m)) or sf(k, m, a))
    pmf, tail, comps, mean, var = pathpmf.path_mixture(mu, alpha, pi, 5000, TAIL_TOL)
    K = pmf.shape[1] - 1
    n_laws = sum(np.unique(row).size for row in mu)
    assert sum(calls) < 0.5 * n_laws  # (all laws, plus the bisection for K, before)
    r, p = 1 / alpha, 1 / (1 + alpha * mu)
    ref = (1 - pi) * stats.nbinom.sf(K, r, p).mean(axis=1)  # path by path, scipy
    np.testing.assert_allclose(tail, ref, rtol=1e-12, atol=0)
    monkeypatch.setattr(pathpmf, "nb_sf", sf)
    monkeypatch.setattr(pathpmf, "_beyond", all_laws)
    _, tail_all, comps_all, *_ = pathpmf.path_mixture(mu, alpha, pi, 5000, TAIL_TOL)
    np.testing.assert_allclose(tail, tail_all, rtol=2.0 ** -52 * 8, atol=0)
    for a, b in zip(comps, comps_all):  # the same laws kept beyond K, in the same order
        np.testing.assert_array_equal(a, b)


def test_rows_with_per_path_dispersion_compute_every_law(monkeypatch):
    rng = np.random.default_rng(8)
    mu, alpha = spread_means(n=8, P=60), rng.uniform(0.1, 0.9, (8, 60))
    calls = []
    sf = pathpmf.nb_sf
    monkeypatch.setattr(pathpmf, "nb_sf", lambda k, m, a: calls.append(np.size(m)) or sf(k, m, a))
    pmf, tail, *_ = pathpmf.path_mixture(mu, alpha, 0.0, 5000, TAIL_TOL)
    assert mu.size in calls  # one evaluation of every path's law
    K = pmf.shape[1] - 1
    ref = stats.nbinom.sf(K, 1 / alpha, 1 / (1 + alpha * mu)).mean(axis=1)
    np.testing.assert_allclose(tail, ref, rtol=1e-12, atol=0)


def test_chunks_start_short_and_keep_block_edges():
    edges, k0 = [], 1
    while k0 < 2000:
        edges.append(k0)
        k0 += chunk_len(k0)
    assert edges[:6] == [1, 33, 65, 129, 257, 513] and all((e - 1) % _B == 0 for e in edges)
    assert max(chunk_len(e) for e in edges) == _CHUNK


def test_a_light_row_is_computed_over_its_first_short_chunks_only(monkeypatch):
    rng = np.random.default_rng(3)
    mu = np.vstack([rng.uniform(1.0, 3.0, 200), rng.uniform(150, 200, 200)])  # light row 0, K set by row 1
    seen = {0: 0, 1: 0}
    put = raggedpmf._Ragged.put

    def counting(self, rows, k0, block, used=None):
        for r in (0, 1):
            seen[r] += block.shape[1] * int((rows == r).sum())
        return put(self, rows, k0, block, used)

    monkeypatch.setattr(raggedpmf._Ragged, "put", counting)
    idx = pd.DataFrame({"unique_id": ["a", "b"], "ds": pd.Timestamp("2021-01-01"), "h": 1})
    fc = CountForecast.from_path_means(idx, mu, alpha=0.2, model="m", history_max=200)
    assert fc.K > 2 * _CHUNK and seen[0] <= 64 < _CHUNK  # the light row: 32 or 64 counts, not 256
    k = np.arange(fc.K + 1)
    ref = stats.nbinom.pmf(k[None, :], 5.0, 1 / (1 + 0.2 * mu[0])[:, None]).mean(axis=0)
    np.testing.assert_allclose(fc.pmf[0], ref, rtol=0, atol=1e-14)
    np.testing.assert_allclose(fc.pmf[0][ref > 1e-250], ref[ref > 1e-250], rtol=1e-10)
