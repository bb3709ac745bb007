"""The scoring scan (``forecast._scorescan``) against a brute-force dense computation.

The reference reads each row's whole pmf on ``0..K`` (the numbers the scan reads:
``_leanpmf.block``), accumulates it with ``np.cumsum`` and sums the RPS terms exactly (long
double over the float64 cdf). PIT bounds, quantiles (and F at them), exceedances must equal
it bit for bit; the RPS may differ by the truncation bound (1e-13) plus the float64
summation of the scan (a few 1e-16 of the score). Rows of every kind: tiny means, mean 500,
alpha near 0 and large, zero inflation, mixtures, path mixtures, dense pmfs, outcomes far
beyond the bulk.
"""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from forecast import _scorescan, scoring
from forecast._leanpmf import ParamGrid, _accumulate, block, cdf_block, scratch, trim_scratch
from forecast._raggedpmf import RaggedGrid
from forecast.distributions import QUANTILE_TOL, CountForecast

PROBS = (0.025, 0.975, 0.1, 0.9, 0.25, 0.75)
KS = (1, 5)


def index(n: int) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": [f"s{i}" for i in range(n)], "ds": pd.Timestamp("2026-01-01"), "h": 1})


def dense_reference(fc: CountForecast, y: np.ndarray, probs=PROBS, ks=KS) -> dict:
    """Everything ``_scan`` returns for rows with ``y <= K``, from the full grid."""
    n, K = fc.n_rows, fc.K
    P = np.zeros((n, K + 1))
    # (a path mixture read below its whole support stops at each row's stored width, as the
    # scan reads it: the mass beyond, < 1e-15, is recomputed only on a read of all K + 1 counts)
    full = not isinstance(fc._grid, RaggedGrid)
    P[:, :K + full] = block(fc, np.arange(n), K + full)
    F = np.cumsum(P, axis=1)
    r = np.arange(n)
    t = np.asarray(probs) - QUANTILE_TOL
    q = (F[:, :, None] < t).sum(axis=1)
    D = F.astype(np.longdouble) - (np.arange(K + 1) >= y[:, None])
    return dict(lo=np.where(y >= 1, F[r, np.clip(y - 1, 0, K)], 0.0), hi=F[r, np.minimum(y, K)],
                q=q, fq=F[r[:, None], np.minimum(q, K)], fq1=np.where(q >= 1, F[r[:, None], np.clip(q - 1, 0, K)], 0.0),
                ge=np.stack([1 - F[:, k - 1] for k in ks], axis=1), rps=(D * D).sum(axis=1).astype(float))


def outcomes(fc: CountForecast, rng) -> np.ndarray:
    """Draws, zeros and outcomes far beyond each row's bulk (but below ``K``)."""
    n = fc.n_rows
    sd = np.sqrt(np.maximum(fc.var, 0))
    y = np.minimum(rng.poisson(np.maximum(fc.mean, 0)), fc.K - 1)
    y[::5] = 0
    far = np.arange(2, n, 5)
    y[far] = np.minimum(np.ceil(fc.mean[far] + 25 * sd[far] + 20), fc.K - 1).astype(np.int64)
    return y.astype(np.int64)


def kinds() -> dict:
    mu = np.array([1e-3, 0.02, 0.3, 1.0, 4.0, 12.0, 40.0, 120.0, 500.0])
    alpha = np.array([0.0, 1e-9, 1e-4, 0.05, 0.5, 1.0, 3.0])
    m, a = (v.ravel() for v in np.meshgrid(mu, alpha, indexing="ij"))
    n = m.size
    nb = lambda: CountForecast.negbin(index(n), m, a, model="nb", history_max=4000)  # noqa: E731
    rng = np.random.default_rng(5)
    paths = np.exp(rng.normal(np.log(np.repeat(mu, 3))[:, None], 0.6, (27, 40)))
    return {
        "negbin": nb,
        "poisson": lambda: CountForecast.poisson(index(mu.size), mu, model="p", history_max=4000),
        "zinb": lambda: CountForecast.zero_inflated(index(n), m, np.linspace(0, 0.7, n), a, model="zi",
                                                    history_max=4000),
        "mixture": lambda: CountForecast.mixture(
            [nb(), CountForecast.poisson(index(n), m[::-1] * 2, model="p", history_max=4000)], [0.3, 0.7],
            model="mix"),
        "pathmix": lambda: CountForecast.from_path_means(index(27), paths, alpha=0.3, model="pm", history_max=4000),
        "dense": lambda: CountForecast.from_pmf(index(4), np.array([[0.5, 0.25, 0.125, 0.0625, 0.0625],
                                                                     [1.0, 0, 0, 0, 0], [0, 0, 0, 0, 1.0],
                                                                     [0.2, 0.2, 0.2, 0.2, 0.2]]), model="d"),
    }


@pytest.mark.parametrize("kind", list(kinds()))
def test_scan_equals_the_dense_computation(kind):
    fc = kinds()[kind]()
    y = outcomes(fc, np.random.default_rng(11))
    got, ref = _scorescan._scan(fc, y, PROBS, KS), dense_reference(fc, y)
    inside = np.flatnonzero((ref["q"] <= fc.K).all(axis=1))  # (a quantile beyond K is searched beyond)
    assert inside.size >= fc.n_rows - 3
    for key in ("lo", "hi"):
        np.testing.assert_array_equal(got[key], ref[key], err_msg=key)
    for key in ("q", "fq", "fq1"):
        np.testing.assert_array_equal(got[key][inside], ref[key][inside], err_msg=key)
    np.testing.assert_array_equal(got["ge"], ref["ge"])
    # RPS: rows whose terms beyond K (where the dense sum stops) are surely below 1e-14
    # (S(K)^(3/2) sqrt(E Y^2), the module's bound); the others add them from the parametric form.
    short = np.flatnonzero(fc.tail**1.5 * np.sqrt(fc.var + fc.mean**2) < 1e-14)
    assert short.size >= fc.n_rows - 4
    np.testing.assert_allclose(got["rps"][short], ref["rps"][short], rtol=2e-14, atol=1.5e-13)


def test_rows_guessed_too_narrow_are_widened_to_the_same_numbers(monkeypatch):
    """First widths of 2 for every row: each row fails the check and goes round again."""
    fc = kinds()["negbin"]()
    y = outcomes(fc, np.random.default_rng(3))
    ref = _scorescan._scan(fc, y, PROBS, KS)
    monkeypatch.setattr(_scorescan, "_first_width", lambda fc, y, ks, r: np.minimum(np.full(fc.n_rows, 2), fc.K + 1))
    got = _scorescan._scan(fc, y, PROBS, KS)
    for key in ("lo", "hi", "q", "fq", "fq1", "ge"):
        np.testing.assert_array_equal(got[key], ref[key], err_msg=key)
    np.testing.assert_allclose(got["rps"], ref["rps"], rtol=2e-14, atol=2e-13)


def test_the_comparison_catches_a_row_truncated_too_early(monkeypatch):
    """With a truncation tolerance of 1e-3 the scan stops early on heavy tails: the dense
    reference sees the lost RPS terms (so the comparison above would fail on such a bug)."""
    fc = kinds()["negbin"]()
    y = outcomes(fc, np.random.default_rng(11))
    monkeypatch.setattr(_scorescan, "RPS_TOL", 1e-3)
    monkeypatch.setattr(_scorescan, "_first_width", lambda fc, y, ks, r: np.full(fc.n_rows, 8))
    got, ref = _scorescan._scan(fc, y, PROBS, KS), dense_reference(fc, y)
    lost = ref["rps"] - got["rps"]
    assert lost.max() > 1e-8 and lost.min() > -1e-12  # terms left out, never added
    np.testing.assert_array_equal(got["q"], ref["q"])  # (quantiles still read within the width)


@pytest.mark.parametrize("case", ["nb", "poisson", "zi", "huge_mean", "two"])
def test_cdf_cols_is_the_row_recurrence_and_cumsum_bit_for_bit(case):
    rng = np.random.default_rng(2)
    n, W = 37, 90
    mu = np.exp(rng.uniform(np.log(0.01), np.log(60), n))
    alpha = rng.uniform(0, 2, n) if case != "poisson" else np.zeros(n)
    pi = rng.uniform(0, 0.6, n) if case == "zi" else np.zeros(n)
    if case == "huge_mean":
        mu[::4] = 900.0  # f(0) underflows: log space
        W = 1200
    if case == "two":
        W = 2
    g = ParamGrid(mu, alpha, pi, 5000)
    rows = np.arange(0, n, 2)[::-1]
    P = g.rows(rows, W)
    F, last2 = g.cdf_cols(rows, W)
    np.testing.assert_array_equal(F, np.cumsum(P, axis=1).T)
    np.testing.assert_array_equal(last2, P[:, -2:])
    np.testing.assert_array_equal(g.cols(rows, W), P.T)


def test_cdf_block_of_a_built_grid_is_its_cumsum():
    fc = kinds()["mixture"]()
    rows = np.array([4, 0, 9])
    F, last2 = cdf_block(fc, rows, 17)
    np.testing.assert_array_equal(F, np.cumsum(fc.pmf[rows, :17], axis=1).T)
    np.testing.assert_array_equal(last2, fc.pmf[rows, 15:17])


def test_accumulate_with_zero_inflation_matches_the_two_steps():
    rng = np.random.default_rng(4)
    ratio = rng.uniform(0.1, 2, (6, 5))
    f0, keep = rng.uniform(0.1, 0.5, 5), rng.uniform(0.3, 1, 5)
    out = ratio.copy()
    out[0] = f0 * keep
    prev, cur = f0.copy(), np.empty(5)
    _accumulate(out, prev, cur, keep)
    prod = np.cumprod(np.vstack([f0, ratio[1:]]), axis=0) * keep
    np.testing.assert_array_equal(out, np.cumsum(prod, axis=0))


def test_blocks_cover_every_row_once_at_its_width_or_wider():
    rng = np.random.default_rng(8)
    widths = np.sort(np.concatenate([rng.integers(8, 40, 5000), rng.integers(100, 3000, 300), [5000] * 3, [90000] * 200]))
    seen = np.zeros(widths.size, int)
    for sl, w in _scorescan._blocks(widths):
        seen[sl] += 1
        assert (widths[sl] <= w).all() and w in widths  # read at its block's largest width
        assert sl.stop - sl.start <= max(_scorescan._ROWS_MIN, _scorescan._CELLS // w)
        assert (sl.stop - sl.start) * w <= max(_scorescan._CELLS_MAX, w)  # bounded buffers
    assert (seen == 1).all()


def test_scratch_buffers_are_reused_and_per_thread():
    a = scratch("test", (3, 4))
    b = scratch("test", (2, 5))
    assert a.shape == (3, 4) and b.shape == (2, 5) and np.shares_memory(a, b)
    other = []
    t = threading.Thread(target=lambda: other.append(scratch("test", (3, 4))))
    t.start()
    t.join()
    assert not np.shares_memory(other[0], a)
    big = scratch("test", (10, 1000))
    trim_scratch(5000)
    assert not np.shares_memory(scratch("test", (3, 4)), big)  # a large buffer is not kept


@pytest.mark.parametrize("pi", [0.0, 0.3])
def test_log_score_fast_path_equals_logpmf_at(pi):
    rng = np.random.default_rng(6)
    mu = np.exp(rng.uniform(-5, 7, 300))
    alpha = np.where(rng.random(300) < 0.3, 0.0, rng.uniform(0, 3, 300))
    fc = CountForecast.zero_inflated(index(300), mu, np.full(300, pi), alpha, model="z")
    y = rng.poisson(mu * rng.uniform(0.1, 4, 300))
    y[:5] = [0, 10**6, 3, 0, 7]
    np.testing.assert_array_equal(scoring._logpmf(fc, y), fc.logpmf_at(y))
