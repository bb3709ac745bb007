"""Rao-Blackwellised pmfs of simulated paths (``CountForecast.from_path_means``).

The pmf of a simulated step is the average over paths of the step's conditional law
given the path, checked against brute-force scipy sums; models with lags use it, so no
count is impossible at h >= 2, and it agrees with a large histogram of the same model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import forecast._mixgrid as mixgrid
import forecast._pathpmf as pathpmf
from forecast.distributions import CountForecast
from forecast.models import NegBinGLM
from forecast.models.guard import cap_forecast, floor_forecast
from forecast.models.results import SeriesForecast

LEVEL = 1e-3


def index(n_series: int, h: int) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n_series)], h),
                         "ds": pd.Timestamp("2020-01-01"), "h": np.tile(np.arange(1, h + 1), n_series)})


def brute(mu, alpha, pi, K):
    """(pmf on 0..K, P(Y > K), mean, var) of the path mixture by scipy, path by path (vectorised
    over a row's paths: one scipy call per row and quantity)."""
    n, P = mu.shape
    alpha, pi = (np.broadcast_to(np.asarray(v, float).reshape(-1, 1) if np.ndim(v) == 1 else v, (n, P))
                 for v in (alpha, pi))
    k = np.arange(K + 1)
    pmf, sf, m1, m2 = np.zeros((n, K + 1)), np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        m, a, z = mu[i][:, None], alpha[i][:, None], pi[i][:, None]
        nb = a > 0
        safe = np.where(nb, a, 1.0)  # (Poisson paths take the Poisson column below)
        size, prob = 1 / safe, 1 / (1 + safe * m)
        f = np.where(nb, stats.nbinom.pmf(k, size, prob), stats.poisson.pmf(k, m))
        f = (1 - z) * f
        f[:, 0] += z[:, 0]
        pmf[i] = f.sum(axis=0) / P
        sf[i] = np.sum((1 - z) * np.where(nb, stats.nbinom.sf(K, size, prob), stats.poisson.sf(K, m))) / P
        mean, var = (np.where(nb, x, y) for x, y in zip(stats.nbinom.stats(size, prob, moments="mv"),
                                                       stats.poisson.stats(m, moments="mv")))
        m1[i] = np.sum((1 - z) * mean) / P
        m2[i] = np.sum((1 - z) * (var + mean ** 2)) / P
    return pmf, sf, m1, m2 - m1**2


def means(seed=1, n=5, P=300):
    rng = np.random.default_rng(seed)
    mu = rng.gamma(2.0, 4.0, (n, P))
    mu[0] = 6.5                       # one law: a deterministic step
    mu[1] = np.round(mu[1])           # repeated values: merged laws
    mu[2, ::2] = 0.0                  # paths with a zero mean
    mu[3] += 750                      # f(0) underflows: the log-space route
    return mu


CASES = {"negbin": (0.3, 0.0), "poisson": (0.0, 0.0), "zinb": (0.05, 0.25), "zip": (0.0, 0.4)}


@pytest.mark.parametrize("case", CASES)
def test_pmf_tail_and_moments_equal_brute_force(case):
    alpha, pi = CASES[case]
    mu = means()
    f = CountForecast.from_path_means(index(1, 5), mu, alpha=alpha, pi=pi, model="m", history_max=1500)
    pmf, sf, mean, var = brute(mu, np.full(5, alpha), np.full(5, pi), f.K)
    np.testing.assert_allclose(f.pmf, pmf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f.tail, sf, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(f.pmf.sum(axis=1) + f.tail, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(f.var, var, rtol=1e-10)
    assert f.family == "pathmix" and (f.tail < 1e-6).all()


def test_per_path_dispersion_and_inflation():
    mu = means(2, n=5, P=80)[:3]
    rng = np.random.default_rng(3)
    alpha, pi = rng.uniform(0, 0.5, (3, 80)), rng.uniform(0, 0.3, (3, 80))
    f = CountForecast.from_path_means(index(1, 3), mu, alpha=alpha, pi=pi, model="m", history_max=300)
    pmf, sf, mean, var = brute(mu, alpha, pi, f.K)
    np.testing.assert_allclose(f.pmf, pmf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f.tail, sf, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose([f.mean, f.var], [mean, var], rtol=1e-10)


def test_a_row_with_one_law_keeps_its_exact_parametric_form():
    mu = means()
    f = CountForecast.from_path_means(index(1, 5), mu, alpha=0.3, model="m")
    exact = CountForecast.negbin(index(1, 1), 6.5, 0.3, model="m")
    w, m, a, p = f.components
    assert f.components[0].shape[0] == 8  # the 8 laws with the most mass beyond K, at most
    assert w[0, 0] == 1 and (w[1:, 0] == 0).all() and m[0, 0] == 6.5 and a[0, 0] == 0.3 and p[0, 0] == 0
    assert (w.sum(axis=0)[1:] < 1).all()  # many laws: a part of each row beyond K
    np.testing.assert_allclose(f.pmf[0, :exact.K + 1], exact.pmf[0], rtol=1e-13, atol=1e-300)
    far = f.K + 50  # beyond K: exact through the parametric form
    assert f.logpmf_at(np.r_[far, 0, 0, 0, 0])[0] == pytest.approx(stats.nbinom.logpmf(far, 1 / 0.3, 1 / 2.95),
                                                                     rel=1e-12)


def test_a_rows_numbers_do_not_depend_on_the_other_rows_or_the_block_size(monkeypatch):
    mu = means(P=200)
    one = CountForecast.from_path_means(index(1, 1), mu[1:2], alpha=0.2, model="m")
    both = CountForecast.from_path_means(index(1, 2), mu[1:3] * [[1], [40]], alpha=[0.2, 0.05], model="m",
                                         history_max=2000)
    assert both.K > one.K
    np.testing.assert_array_equal(both.pmf[0, :one.K + 1], one.pmf[0])
    monkeypatch.setattr(mixgrid, "_CELLS", 100)  # one row per pass
    np.testing.assert_array_equal(CountForecast.from_path_means(index(1, 1), mu[1:2], alpha=0.2, model="m").pmf,
                                  one.pmf)


def test_paths_are_kept_and_checked():
    paths = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    f = CountForecast.from_path_means(index(2, 3), np.ones((6, 4)), paths=paths, model="m")
    assert f.paths.shape == (2, 3, 4) and not f.paths.flags.writeable and paths.flags.writeable
    with pytest.raises(ValueError, match=r"paths must be \(n_series, horizon, 4\)"):
        CountForecast.from_path_means(index(2, 3), np.ones((6, 4)), paths=paths[..., :3], model="m")
    with pytest.raises(ValueError, match="one row per index row"):
        CountForecast.from_path_means(index(2, 3), np.ones((5, 4)), model="m")
    with pytest.raises(ValueError, match="'mu_paths' must be finite"):
        CountForecast.from_path_means(index(1, 1), [[1.0, np.nan]], model="m")
    with pytest.raises(ValueError, match="'pi' must be finite and in"):
        CountForecast.from_path_means(index(1, 1), [[1.0, 2.0]], pi=1.5, model="m")


# -- a model with lags ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ar_series():
    rng = np.random.default_rng(12)
    n, y = 120, [5]
    t = np.arange(n)
    for i in range(1, n):
        mu = np.exp(0.6 + 0.5 * np.log1p(y[-1]) + 0.3 * np.sin(2 * np.pi * t[i] / 12))
        y.append(rng.negative_binomial(1 / 0.2, 1 / (1 + 0.2 * mu)))
    return pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2010-01-01", periods=n, freq="MS"), "y": y})


def test_glm_with_a_lag_gives_every_count_a_probability_and_matches_a_large_histogram(ar_series):
    spec = NegBinGLM(seasonality="fourier", fourier_k=1, lags=(1,), n_paths=200_000)
    fitted = spec.fit(ar_series)
    big = fitted.forecast(6, seed=4)
    assert big.family == "pathmix" and big.paths.shape == (1, 6, 200_000)
    assert (big.pmf_at(np.zeros(6)) > 0).all()
    for y in range(201):  # no impossible outcome anywhere in 0..200, at any step
        assert (big.pmf_at(np.full(6, y)) > 1e-300).all() and np.isfinite(big.logpmf_at(np.full(6, y))).all()
    hist = CountForecast.from_samples(big.index, big.paths, model="hist")
    # the same paths: the difference has mean 0 and variance below p(1-p)/N per cell
    K = min(hist.K, big.K)
    p, q = big.pmf[1:, :K + 1], hist.pmf[1:, :K + 1]
    z = np.abs(p - q) / np.sqrt(np.maximum(p * (1 - p), 1e-12) / 200_000)
    assert z.max() < 5.5  # ~6 x 60 cells: P(max |z| > 5.5) < 1e-3
    # 1000 paths (the default), another seed: within Monte-Carlo error of the big histogram
    small = spec.set_params(n_paths=1000).fit(ar_series).forecast(6, seed=9)
    r = small.pmf[1:, :K + 1]
    z = np.abs(r - q) / np.sqrt(np.maximum(r * (1 - r) / 1000 + q * (1 - q) / 200_000, 1e-15))
    assert z.max() < 5.5
    # the histogram of 1000 paths leaves counts at probability 0; the path mixture does not
    few = CountForecast.from_samples(small.index, small.paths, model="hist")
    ks = np.arange(few.K + 1)
    assert (few.pmf[1:] == 0).any() and (small.pmf[1:, ks] > 0).all()


def test_glm_first_step_is_the_exact_negbin(ar_series):
    fitted = NegBinGLM(seasonality="fourier", fourier_k=1, lags=(1,), n_paths=500).fit(ar_series)
    one, six = fitted.forecast(1, seed=3), fitted.forecast(6, seed=3)
    assert one.family == "negbin"
    w, mu, alpha, pi = six.components
    assert w[0, 0] == 1 and (w[1:, 0] == 0).all() and mu[0, 0] == one.mean[0]
    assert alpha[0, 0] == one.components[2][0, 0] and pi[0, 0] == 0
    np.testing.assert_allclose(six.pmf[0, :one.K + 1], one.pmf[0], rtol=1e-13, atol=1e-300)
    assert six.mean[0] == one.mean[0] and six.var[0] == pytest.approx(one.var[0], rel=1e-15)
    y = np.full(6, one.K + 40)
    assert six.logpmf_at(y)[0] == one.logpmf_at(y[:1])[0]


def test_batched_and_per_series_forecasts_agree(ar_series):
    from forecast.models.ladder import batched_engine

    two = pd.concat([ar_series, ar_series.assign(unique_id="b", y=ar_series["y"][::-1].to_numpy())])
    spec = NegBinGLM(seasonality="fourier", fourier_k=1, lags=(1,), n_paths=300)
    with batched_engine(True):
        fitted = spec.fit(two)
        batched = fitted.forecast(4, seed=2)
    with batched_engine(False):
        single = fitted.forecast(4, seed=2)
    assert batched.family == single.family == "pathmix" and batched.K == single.K
    np.testing.assert_array_equal(batched.paths, single.paths)  # the same draws
    # the same laws, up to the rounding of the batched linear predictor (x'b summed in another order)
    for a, b in [(batched.pmf, single.pmf), (batched.tail, single.tail), (batched.mean, single.mean),
                 *zip(batched.components, single.components)]:
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("model", ["ingarch", "zinb"])
def test_other_simulating_models_have_no_impossible_counts(model, ar_series):
    from forecast.combine import load_model

    spec = load_model(model)
    if model == "zinb":
        spec = spec.set_params(lags=(1,))
    f = spec.fit(ar_series).forecast(4, seed=2)
    assert f.family == "pathmix" and f.paths.shape == (1, 4, spec.n_paths)
    for y in range(0, 201, 5):
        assert (f.pmf_at(np.full(4, y)) > 0).all()
    # the paths' own means agree with the mixture means within Monte-Carlo error
    draws = f.paths[0].astype(float)
    assert (np.abs(draws.mean(axis=1) - f.mean) < 5 * np.sqrt(f.var / draws.shape[1])).all()


# -- the guard: caps and floors act on the paths' conditional means ------------------------------

def test_guard_caps_and_floors_path_means():
    paths = np.array([[0, 0, 0], [50, 70, 90]])
    sf = SeriesForecast("pathmix", paths=paths, path_mu=np.array([[1e-9, 2e-9, 0.0], [60.0, 70.0, 80.0]]),
                        alpha=np.full(2, 0.1))
    floored, changed = floor_forecast(sf, 0.05)
    assert changed and floored.family == "pathmix" and floored.paths is paths
    np.testing.assert_array_equal(floored.path_mu, [[0.05, 0.05, 0.05], [60, 70, 80]])
    capped, changed = cap_forecast(sf, 65.0)
    assert changed and capped.family == "pathmix" and capped.alpha is sf.alpha
    np.testing.assert_array_equal(capped.path_mu, [[1e-9, 2e-9, 0.0], [60, 65, 65]])
    np.testing.assert_array_equal(capped.paths, [[0, 0, 0], [50, 65, 65]])
    assert floor_forecast(sf, 1e-12) == (sf, False) and cap_forecast(sf, 100.0) == (sf, False)


def test_support_bisection_follows_the_parametric_rule():
    from forecast.numerics import needed_k

    rng = np.random.default_rng(5)
    for _ in range(20):
        n = int(rng.integers(1, 30))
        mu, alpha = rng.gamma(1.0, 30.0, n), rng.choice([0.0, 0.05, 0.5, 2.0], n)
        pi = rng.choice([0.0, 0.3], n)
        for cap in (200, 5000):
            assert pathpmf._support(mu, alpha, pi, cap, 1e-6) == needed_k(mu, alpha, pi, cap, 1e-6)
