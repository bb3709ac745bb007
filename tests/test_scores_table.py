"""Scores and the forecast table from one pass over the pmf (``scoring.scores_and_table``).

A backtest block needs both ``score_all`` and ``to_frame``; both read the central-interval
quantiles and the exceedances. ``scores_and_table`` reads them once: its scores must equal
``score_all`` and its table columns ``to_frame``'s bit for bit, on every family, including
near-ties where the two searches could round differently (those fall back to ``quantile``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast import _scorescan
from forecast.distributions import CountForecast
from forecast.scoring import score_all, scores_and_table

LEVELS, THRESHOLDS = (50, 80, 95), (1, 5, 40)


def index(n: int, h: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n // h)], h), "ds": pd.Timestamp("2021-01-01"),
                         "h": np.tile(np.arange(1, h + 1), n // h)})


def forecasts(n: int = 600, seed: int = 4) -> dict:
    rng = np.random.default_rng(seed)
    mu = np.exp(rng.uniform(np.log(0.02), np.log(300), n))
    mu[:3] = [1e-9, 800.0, 2500.0]
    alpha = rng.uniform(0, 2, n)
    paths = rng.negative_binomial(2, 2 / (2 + mu[: n // 3 * 3].reshape(-1, 3, 1)), size=(n // 3, 3, 200))
    nb = CountForecast.negbin(index(n), mu, alpha, model="m", history_max=400)
    samples = CountForecast.from_samples(index(n // 3 * 3, 3), paths, model="m")
    return {
        "poisson": CountForecast.poisson(index(n), mu, model="m", history_max=400),
        "negbin": nb,
        "zinb": CountForecast.zero_inflated(index(n), mu, np.linspace(0, 0.6, n), 0.3, model="m"),
        "samples": samples,
        "pathmix": CountForecast.from_path_means(index(n // 3 * 3, 3), mu[: n // 3 * 3, None] * rng.uniform(
            0.5, 2, (n // 3 * 3, 50)), alpha=0.4, model="m"),
        "mixture": CountForecast.mixture([nb, CountForecast.poisson(index(n), mu * 1.5, model="m")], [0.3, 0.7],
                                         model="mix"),
        "pmf": CountForecast.from_pmf(index(n), rng.dirichlet(np.ones(30), n) * 0.999999, model="m"),
    }


def _check(fc: CountForecast, y: np.ndarray) -> None:
    sc, cols = scores_and_table(fc, y, levels=LEVELS, thresholds=THRESHOLDS)
    ref = score_all(fc, y, levels=LEVELS, thresholds=THRESHOLDS)
    assert list(sc) == list(ref)
    for k in ref:
        np.testing.assert_array_equal(sc[k], ref[k], err_msg=k)
    table = fc.to_frame(levels=LEVELS, thresholds=THRESHOLDS)
    assert list(cols) == list(table.columns[table.columns.get_loc("mean"):])
    for k, v in cols.items():
        np.testing.assert_array_equal(v, table[k].to_numpy(), err_msg=k)
        assert v.dtype == table[k].dtype, k


@pytest.mark.parametrize("family", ["poisson", "negbin", "zinb", "samples", "pathmix", "mixture", "pmf"])
def test_one_pass_gives_the_scores_and_the_table_bit_for_bit(family):
    fc = forecasts()[family]
    rng = np.random.default_rng(1)
    y = rng.poisson(np.maximum(fc.mean, 0.1) * rng.uniform(0.2, 3, fc.n_rows))
    y[7] = fc.K + 30  # beyond the support
    _check(fc, y)


def test_a_usual_block_searches_no_quantile_again(monkeypatch):
    rng = np.random.default_rng(2)
    n = 900
    mu = np.exp(rng.uniform(np.log(0.05), np.log(200), n))
    fc = CountForecast.negbin(index(n), mu, rng.uniform(0, 1, n), model="m", history_max=300)
    y = rng.poisson(mu)
    calls = []
    real = CountForecast.quantile
    monkeypatch.setattr(CountForecast, "quantile", lambda self, q: calls.append(1) or real(self, q))
    _check(fc, y)
    assert calls == [1]  # to_frame's own: the shared table searched none


def test_a_near_tie_falls_back_to_the_quantile_search():
    # F(1) sits 1e-14 away from the 25% target (0.25 - 1e-12): the offset search of
    # ``quantile`` rounds there, so the shared table must not use the scan's count.
    n = 300
    t = 0.25 - 1e-12
    pmf = np.zeros((n, 4))
    pmf[:, 0], pmf[:, 1] = 0.1, t - 0.1 + np.linspace(-3e-14, 3e-14, n)
    pmf[:, 2] = 0.5
    pmf[:, 3] = 1 - pmf[:, :3].sum(axis=1)
    fc = CountForecast.from_pmf(index(n), pmf, model="m")
    y = np.arange(n) % 4
    f = np.cumsum(fc.pmf, axis=1)[:, 1]
    assert (np.abs(f - t) < _scorescan._TIE).all() and (f < t).any() and (f >= t).any()
    _check(fc, y)
