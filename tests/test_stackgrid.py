"""A concat of lazy forecasts stays lazy (``_stackgrid.StackGrid``) and equals the dense concat.

``CountForecast.concat`` used to build every part's dense grid (a path mixture's ragged
rows recomputed out to K) although a backtest block is only scored. The stack now keeps
the parts' grids; checked here against the dense concat of the same parts (each part's
grid built first: the eager path) and, for the path-mixture rows, against a brute-force
mixture of scipy NB pmfs summed law by law.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from forecast._stackgrid import StackGrid
from forecast.distributions import CountForecast
from forecast.scoring import score_all


def index(uids, h: int) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": np.repeat(uids, h), "ds": pd.Timestamp("2021-01-01"),
                         "h": np.tile(np.arange(1, h + 1), len(uids))})


def parts(seed: int = 3):
    """A path mixture (ragged, K ~ 100s), a negative binomial (parametric, smaller K) and
    an empirical forecast (dense) of different series."""
    rng = np.random.default_rng(seed)
    mu = rng.gamma(2.0, 4.0, (12, 300)) * np.exp(rng.uniform(-1.5, 1.5, (12, 1)))
    mu[3] = rng.choice([0.5, 2.0, 9.0], 300)  # few laws: its components are exact
    alpha = 0.25
    path = CountForecast.from_path_means(index([f"p{i}" for i in range(4)], 3), mu, alpha=alpha,
                                         model="pm", history_max=40)
    nb = CountForecast.negbin(index(["n0", "n1"], 3), rng.uniform(0.2, 6, 6), 0.4, model="nb", history_max=3)
    draws = rng.poisson(3.0, (2, 3, 50))
    emp = CountForecast.from_samples(index(["e0", "e1"], 3), draws, model="emp", history_max=30)
    return [path, nb, emp], mu, alpha


def dense_copy(f: CountForecast) -> CountForecast:
    """The same forecast with its grid built (the eager path of earlier versions)."""
    g = f.subset(np.arange(f.n_rows))
    _ = g.pmf
    return g


def test_a_concat_of_lazy_parts_stays_lazy_and_equals_the_dense_concat():
    fs, mu, alpha = parts()
    assert fs[1].K < fs[0].K  # the parametric part is padded by its own form
    lazy = CountForecast.concat(fs)
    eager = CountForecast.concat([dense_copy(f) for f in fs])
    assert isinstance(lazy._grid, StackGrid) and lazy._pmf is None  # nothing densified on the way
    assert eager._grid is None and lazy.K == eager.K
    for a, b in [(lazy.tail, eager.tail), (lazy.mean, eager.mean), (lazy.var, eager.var),
                 *zip(lazy.components, eager.components)]:
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(1)
    y = rng.poisson(lazy.mean * rng.uniform(0.3, 3, lazy.n_rows))
    y[0], y[13] = lazy.K + 25, fs[1].K + 3  # beyond all support; beyond the NB part's own K
    a, b = score_all(lazy, y), score_all(eager, y)
    for key in b:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-10, atol=1e-12, err_msg=key)
    np.testing.assert_array_equal(lazy.quantile([0.02, 0.5, 0.99, 0.999999]),
                                  eager.quantile([0.02, 0.5, 0.99, 0.999999]))
    for k in (0, 2, fs[1].K + 1, fs[1].K + 9, 150, lazy.K, lazy.K + 4):
        ks = np.full(lazy.n_rows, k)
        np.testing.assert_allclose(lazy.pmf_at(ks), eager.pmf_at(ks), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(lazy.cdf(k), eager.cdf(k), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(lazy.prob_at_least(k), eager.prob_at_least(k), rtol=1e-10, atol=1e-16)
    pd.testing.assert_frame_equal(lazy.to_frame(thresholds=(1, 5)), eager.to_frame(thresholds=(1, 5)),
                                  rtol=1e-10, atol=1e-13)
    assert lazy._pmf is None  # scores, quantiles and values read prefixes only
    np.testing.assert_array_equal(lazy.pmf, eager.pmf)  # once read, the dense grid is the eager one


def test_stacked_path_rows_are_the_mixture_of_their_laws():
    fs, mu, alpha = parts()
    lazy = CountForecast.concat(fs[::-1])  # the path mixture last: rows 12..23
    K = lazy.K
    k = np.arange(K + 1)
    r, p = 1 / alpha, 1 / (1 + alpha * mu)  # scipy's NB(n, p) with mean mu: n = 1/alpha
    ref = np.array([stats.nbinom.pmf(k[None, :], r, p[i][:, None]).mean(axis=0) for i in range(mu.shape[0])])
    got = lazy._grid.rows(np.arange(12, 24), K + 1)  # whole rows: exact, not densified
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)
    big = ref > 1e-200
    np.testing.assert_allclose(got[big], ref[big], rtol=1e-11)
    assert lazy._pmf is None
    np.testing.assert_allclose(lazy.pmf[12:], ref, rtol=0, atol=1e-13)


def test_subsets_and_nested_concats_stay_lazy_and_keep_their_rows():
    fs, *_ = parts()
    lazy = CountForecast.concat(fs)
    eager = CountForecast.concat([dense_copy(f) for f in fs])
    pos = np.array([20, 0, 7, 7, 13, 4, 19])
    sub = lazy.subset(pos)
    assert isinstance(sub._grid, StackGrid) and sub._pmf is None
    np.testing.assert_array_equal(sub.pmf, eager.pmf[pos])
    nested = CountForecast.concat([lazy.subset(np.arange(10)), fs[1], lazy.subset(np.arange(10, 24))])
    flat = CountForecast.concat([eager.subset(np.arange(10)), dense_copy(fs[1]), eager.subset(np.arange(10, 24))])
    assert isinstance(nested._grid, StackGrid)
    y = np.arange(nested.n_rows) % 7
    np.testing.assert_allclose(score_all(nested, y)["rps"], score_all(flat, y)["rps"], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(nested.pmf, flat.pmf)


def test_a_concat_of_dense_parts_is_dense_as_before():
    fs, *_ = parts()
    out = CountForecast.concat([dense_copy(f) for f in fs])
    assert out._grid is None and out.pmf.flags.writeable is False
