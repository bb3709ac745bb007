"""Neighbour terms ``neighbour_lags`` in the Poisson / NB2 GLMs.

References: neighbour columns built by hand from the pair list (degrees counted in a loop)
and fitted with statsmodels; closed-form one-step means; a brute-force Monte Carlo of the
joint recursion (plain Python loops, its own random numbers) for multi-step path means;
simulation with a known neighbour effect for recovery.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast import ConfigError
from forecast.models._neighbourjoint import simulate_joint
from forecast.models._neighbours import neighbour_weights
from forecast.models.baselines import Climatology
from forecast.models.glm import NegBinGLM, PoissonGLM
from forecast.models.series import PanelData

# A chain A-B-C-D-E plus a pendant F on C; G is isolated (no neighbours).
PAIRS = [("A", "B"), ("B", "C"), ("C", "D"), ("D", "E"), ("C", "F")]
NAMES = list("ABCDEFG")


def _adjacency() -> pd.DataFrame:
    return pd.DataFrame({"region_from": [a for a, _ in PAIRS], "region_to": [b for _, b in PAIRS]})


def _hand_weights() -> dict[tuple[str, str], float]:
    """w[(j, i)] = 1/deg(j) for each first-order pair (hhh4's normalize = TRUE), by counting."""
    deg = {n: 0 for n in NAMES}
    for a, b in PAIRS:
        deg[a] += 1
        deg[b] += 1
    w = {}
    for a, b in PAIRS:
        w[(a, b)] = 1 / deg[a]
        w[(b, a)] = 1 / deg[b]
    return w


def _hand_sums(Y: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    w = _hand_weights()
    out = {i: np.zeros(len(Y[i])) for i in NAMES}
    for (j, i), wj in w.items():
        out[i] = out[i] + wj * Y[j]
    return out


def _simulate(T: int, b0: dict[str, float], gamma: float, delta: float, alpha: float, seed: int
              ) -> dict[str, np.ndarray]:
    """NB2 counts from log mu_it = b0_i + gamma log(1 + y_i,t-1) + delta log(1 + s_i,t-1)."""
    rng = np.random.default_rng(seed)
    Y = {n: np.zeros(T, dtype=np.int64) for n in NAMES}
    w = _hand_weights()
    for t in range(T):
        prev = {n: (Y[n][t - 1] if t else 0) for n in NAMES}
        s = {n: sum(wj * prev[j] for (j, i), wj in w.items() if i == n) for n in NAMES}
        for n in NAMES:
            mu = np.exp(b0[n] + gamma * np.log1p(prev[n]) + delta * np.log1p(s[n]))
            lam = rng.gamma(1 / alpha, alpha * mu) if alpha > 0 else mu
            Y[n][t] = rng.poisson(lam)
    return Y


def _panel(Y: dict[str, np.ndarray], adjacency: bool = True) -> pd.DataFrame:
    T = len(Y["A"])
    frame = pd.concat([pd.DataFrame({"unique_id": n, "ds": pd.date_range("2000-01-01", periods=T, freq="MS"),
                                     "y": Y[n]}) for n in NAMES], ignore_index=True)
    if adjacency:
        frame.attrs["adjacency"] = _adjacency()
    return frame


B0 = {"A": 0.8, "B": 1.0, "C": 0.6, "D": 1.2, "E": 0.9, "F": 0.7, "G": 1.1}


@pytest.fixture(scope="module")
def sim() -> dict[str, np.ndarray]:
    return _simulate(300, B0, gamma=0.2, delta=0.4, alpha=0.2, seed=11)


def test_first_order_weights_each_source_sums_to_one_and_equal_inverse_degree():
    orders = np.zeros((7, 7), dtype=int)
    for a, b in PAIRS:
        orders[NAMES.index(a), NAMES.index(b)] = orders[NAMES.index(b), NAMES.index(a)] = 1
    W = neighbour_weights(orders, "first_order")
    for (j, i), wj in _hand_weights().items():
        assert W[NAMES.index(j), NAMES.index(i)] == pytest.approx(wj, abs=1e-15)
    assert np.allclose(W[:6].sum(axis=1), 1.0) and not W[6].any() and not W[:, 6].any()
    # power law over orders 1 and 2: w ∝ o^-d, each source's row normalised
    orders2 = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    P = neighbour_weights(orders2, "powerlaw", decay=2.0)
    assert P[0].tolist() == pytest.approx([0, 1 / 1.25, 0.25 / 1.25])
    assert np.allclose(P.sum(axis=1), 1.0)


def test_neighbour_sums_equal_hand_built_sums(sim):
    from forecast.models._neighbours import panel_weights, with_neighbours

    data = PanelData.from_frame(_panel(sim))
    got = with_neighbours(data, panel_weights(data, "first_order", 1.0, "m"))
    want = _hand_sums(sim)
    for s in got.series:
        assert np.allclose(s.nsum, want[s.uid], atol=1e-12)


def _hand_design(Y, uid: str) -> tuple[np.ndarray, np.ndarray]:
    """Intercept, own lag 1 and neighbour lag 1 (log1p of the hand-built sum), rows 1..T-1."""
    s = _hand_sums(Y)[uid]
    y = Y[uid]
    X = np.column_stack([np.ones(len(y) - 1), np.log1p(y[:-1]), np.log1p(s[:-1])])
    return X, y[1:]


@pytest.mark.parametrize("uid", ["A", "C", "F"])
def test_poisson_fit_equals_statsmodels_on_hand_built_design(sim, uid):
    import statsmodels.api as sm

    spec = PoissonGLM(seasonality="none", lags=(1,), neighbour_lags=(1,))
    fit = spec.fit(_panel(sim)).fits()[uid]
    X, y = _hand_design(sim, uid)
    ref = sm.GLM(y, X, family=sm.families.Poisson()).fit(tol=1e-12)
    assert list(fit.state["names"]) == ["(Intercept)", "lag1", "neighbour_lag1"]
    assert np.allclose(fit.state["beta"], ref.params, atol=1e-5)
    assert np.allclose([fit.coef[n][1] for n in fit.state["names"]], ref.bse, rtol=1e-4)


@pytest.mark.parametrize("uid", ["B", "D"])
def test_negbin_fit_equals_statsmodels_on_hand_built_design(sim, uid):
    import statsmodels.api as sm

    spec = NegBinGLM(seasonality="none", lags=(1,), neighbour_lags=(1,))
    fit = spec.fit(_panel(sim)).fits()[uid]
    X, y = _hand_design(sim, uid)
    ref = sm.NegativeBinomial(y, X, loglike_method="nb2").fit(method="newton", maxiter=200, tol=1e-12, disp=0)
    assert np.allclose(fit.state["beta"], ref.params[:3], atol=1e-5)
    assert fit.state["alpha"] == pytest.approx(ref.params[3], abs=1e-5)


def test_batched_and_per_series_engines_agree(sim):
    from forecast.models.ladder import batched_engine

    spec = NegBinGLM(seasonality="none", lags=(1,), neighbour_lags=(1,))
    a = spec.fit(_panel(sim)).coefficients()
    with batched_engine(False):
        b = spec.fit(_panel(sim)).coefficients()
    assert np.allclose(a["estimate"], b["estimate"], atol=1e-7, equal_nan=True)


def test_known_neighbour_effect_is_recovered_within_3_se():
    Y = _simulate(500, B0, gamma=0.1, delta=0.5, alpha=0.15, seed=3)
    fits = NegBinGLM(seasonality="none", lags=(1,), neighbour_lags=(1,)).fit(_panel(Y)).fits()
    for uid in "ABCDEF":  # G has no neighbours: its column carries nothing
        est, se = fits[uid].coef["neighbour_lag1"]
        assert abs(est - 0.5) < 3 * se, (uid, est, se)
    assert np.isnan(fits["G"].coef["neighbour_lag1"][0])  # dropped, reported as not estimable


def test_one_step_forecast_equals_closed_form(sim):
    fm = NegBinGLM(seasonality="none", lags=(1,), neighbour_lags=(1,)).fit(_panel(sim))
    fc = fm.forecast(1)
    sums = _hand_sums(sim)
    for uid, fit in fm.fits().items():
        b = fit.state["beta"]
        b = np.where(np.isnan(b), 0.0, b)
        want = np.exp(b[0] + b[1] * np.log1p(sim[uid][-1]) + b[2] * np.log1p(sums[uid][-1]))
        got = fc.mean[fc.index["unique_id"].to_numpy() == uid]
        assert got[0] == pytest.approx(want, rel=1e-10)


def test_no_adjacency_is_a_clear_error(sim):
    with pytest.raises(ConfigError, match=r"build_panel\(adjacency=\.\.\.\).*\[data\] adjacency"):
        NegBinGLM(neighbour_lags=(1,)).fit(_panel(sim, adjacency=False))


def _brute_force_means(Y, fits, h: int, n: int, seed: int, fixed: dict[str, np.ndarray] | None = None
                       ) -> dict[str, np.ndarray]:
    """Mean of y_{T+j} by plain Monte Carlo of the joint recursion (all series step together);
    ``fixed``: series whose future counts are held at given means (fallen series)."""
    rng = np.random.default_rng(seed)
    w = _hand_weights()
    fixed = fixed or {}
    acc = {u: np.zeros(h) for u in NAMES}
    for _ in range(n):
        last = {u: float(Y[u][-1]) for u in NAMES}
        for j in range(h):
            s = {u: sum(wj * last[src] for (src, i), wj in w.items() if i == u) for u in NAMES}
            new = {}
            for u in NAMES:
                if u in fixed:
                    new[u] = fixed[u][j]
                    continue
                b = np.nan_to_num(fits[u].state["beta"])
                a = fits[u].state["alpha"]
                mu = np.exp(b[0] + b[1] * np.log1p(last[u]) + b[2] * np.log1p(s[u]))
                new[u] = rng.poisson(rng.gamma(1 / a, a * mu) if a > 0 else mu)
                acc[u][j] += new[u]
            last = new
    return {u: v / n for u, v in acc.items()}


def test_joint_path_means_agree_with_brute_force_monte_carlo(sim):
    fm = NegBinGLM(seasonality="none", lags=(1,), neighbour_lags=(1,), n_paths=4000).fit(_panel(sim))
    fc = fm.forecast(3, seed=5)
    ref = _brute_force_means(sim, fm.fits(), 3, 4000, seed=99)
    mean, var = fc.mean, fc.var
    for uid in NAMES:
        rows = fc.index["unique_id"].to_numpy() == uid
        se = np.sqrt(2 * var[rows] / 4000)  # two independent Monte Carlo means
        assert np.all(np.abs(mean[rows] - ref[uid]) < 4.5 * se), (uid, mean[rows], ref[uid])


def test_joint_forecast_is_reproducible_for_a_seed(sim):
    fm = NegBinGLM(seasonality="none", lags=(1,), neighbour_lags=(1,), n_paths=500).fit(_panel(sim))
    a, b = fm.forecast(3, seed=1), fm.forecast(3, seed=1)
    assert np.array_equal(a.mean, b.mean)
    assert a.joint and a.paths is not None  # path p is one world across series (coherent totals)
    assert not NegBinGLM(seasonality="none", lags=(1,), n_paths=500).fit(_panel(sim)).forecast(3, seed=1).joint


def test_fallen_series_feed_their_forecast_mean_into_the_joint_simulation(sim):
    fm = NegBinGLM(seasonality="none", lags=(1,), neighbour_lags=(1,), n_paths=4000).fit(_panel(sim))
    data, fits = fm._data, list(fm._fits)
    c = NAMES.index("C")  # the hub: pretend it fell to climatology
    clim = Climatology()._fit_many([data.series[c]])[0]
    fits[c] = clim
    cmean = Climatology()._forecast_many([clim], [data.series[c]], 3, None, 0)[0]
    cmu = np.broadcast_to(np.asarray(cmean.mu, dtype=float), (3,))
    joint = simulate_joint(data, fits, 3, None, 7, 4000)
    assert "C" not in joint
    assert all(np.ptp(f.path_mu[0]) == 0 for f in joint.values())  # step 1: known inputs, one mean
    ref = _brute_force_means(sim, fm.fits(), 3, 4000, seed=8, fixed={"C": cmu})
    for uid in "BDF":  # C's neighbours
        got = joint[uid].path_mu.mean(axis=1)
        paths = joint[uid].paths.astype(float)
        se = np.sqrt(2 * paths.var(axis=1) / 4000)
        assert np.all(np.abs(got - ref[uid]) < 4.5 * se + 1e-9), (uid, got, ref[uid])


def test_update_rebuilds_neighbour_sums_from_the_new_data(sim):
    """A backtest between refits (update) reads the new data's neighbour counts."""
    panel = _panel(sim)
    short = panel[panel["ds"] < panel["ds"].max()].copy()
    short.attrs["adjacency"] = _adjacency()
    spec = PoissonGLM(seasonality="none", lags=(1,), neighbour_lags=(1,))
    updated = spec.fit(short).update(panel).forecast(1).mean
    sums = _hand_sums(sim)
    fits = spec.fit(short).fits()
    for k, uid in enumerate(NAMES):
        b = np.nan_to_num(fits[uid].state["beta"])
        want = np.exp(b[0] + b[1] * np.log1p(sim[uid][-1]) + b[2] * np.log1p(sums[uid][-1]))
        assert updated[k] == pytest.approx(want, rel=1e-10)


def test_neighbour_terms_need_fit_through_the_panel():
    """A series without neighbour sums (fitted alone, not through fit/fit_data) is refused."""
    from forecast.models.series import Series

    s = Series("A", pd.date_range("2000-01-01", periods=30, freq="MS"), np.arange(30), "MS")
    with pytest.raises(ConfigError, match="neighbour sums"):
        PoissonGLM(neighbour_lags=(1,))._fit_series(s)


def test_missing_neighbour_count_contributes_zero_and_multi_step_runs(sim):
    from forecast.models._neighbours import panel_weights, with_neighbours

    panel = _panel(sim)
    gap = (panel["unique_id"] == "B") & (panel.index % 300 == 100)
    panel.loc[gap, "y"] = np.nan
    data = PanelData.from_frame(panel)
    got = {s.uid: s.nsum for s in with_neighbours(data, panel_weights(data, "first_order", 1.0, "m")).series}
    Y = {k: v.copy() for k, v in sim.items()}
    Y["B"][100] = 0
    want = _hand_sums(Y)
    assert all(np.allclose(got[u], want[u]) for u in NAMES)
    fc = NegBinGLM(seasonality="none", lags=(1,), neighbour_lags=(1,), n_paths=200).fit(panel).forecast(2)
    assert np.isfinite(fc.mean).all()


# -- INGARCH ------------------------------------------------------------------------------------

def test_ingarch_without_mean_lags_equals_the_negbin_glm_with_neighbours(sim):
    from forecast.models.autoregressive import INGARCH

    ing = INGARCH(seasonality="none", past_obs=(1,), past_mean=(), neighbour_lags=(1,)).fit(_panel(sim)).fits()
    glm = NegBinGLM(seasonality="none", lags=(1,), neighbour_lags=(1,)).fit(_panel(sim)).fits()
    for uid in "ACF":
        assert ing[uid].coef["neighbour_lag1"][0] == pytest.approx(glm[uid].coef["neighbour_lag1"][0], abs=1e-5)
        assert ing[uid].coef["obs_lag1"][0] == pytest.approx(glm[uid].coef["lag1"][0], abs=1e-5)


def _ingarch_brute(Y, fits, h: int, n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = _hand_weights()
    acc = {u: np.zeros(h) for u in NAMES}
    par = {}
    for u in NAMES:
        c = fits[u].coef
        par[u] = (c["(Intercept)"][0], c["obs_lag1"][0], np.nan_to_num(c["neighbour_lag1"][0]), c["mean_lag1"][0],
                  fits[u].state["alpha"], fits[u].state["nu_hist"][-1])
    for _ in range(n):
        last = {u: float(Y[u][-1]) for u in NAMES}
        nu = {u: par[u][5] for u in NAMES}
        for j in range(h):
            s = {u: sum(wj * last[src] for (src, i), wj in w.items() if i == u) for u in NAMES}
            new = {}
            for u in NAMES:
                b0, b1, d, a, alpha, _ = par[u]
                nu[u] = b0 + b1 * np.log1p(last[u]) + d * np.log1p(s[u]) + a * nu[u]
                mu = np.exp(nu[u])
                new[u] = rng.poisson(rng.gamma(1 / alpha, alpha * mu) if alpha > 0 else mu)
                acc[u][j] += new[u]
            last = new
    return {u: v / n for u, v in acc.items()}


def test_ingarch_one_step_closed_form_and_joint_paths_agree_with_brute_force(sim):
    from forecast.models.autoregressive import INGARCH

    spec = INGARCH(seasonality="none", past_obs=(1,), past_mean=(1,), neighbour_lags=(1,), n_paths=3000)
    fm = spec.fit(_panel(sim))
    fits, sums = fm.fits(), _hand_sums(sim)
    assert all(f.fallback == "none" for f in fits.values())
    one = fm.forecast(1).mean
    for k, uid in enumerate(NAMES):
        c = fits[uid].coef
        nu = (c["(Intercept)"][0] + c["obs_lag1"][0] * np.log1p(sim[uid][-1]) + np.nan_to_num(
            c["neighbour_lag1"][0]) * np.log1p(sums[uid][-1]) + c["mean_lag1"][0] * fits[uid].state["nu_hist"][-1])
        assert one[k] == pytest.approx(np.exp(nu), rel=1e-10)
    fc = fm.forecast(3, seed=2)
    ref = _ingarch_brute(sim, fits, 3, 3000, seed=4)
    for uid in NAMES:
        rows = fc.index["unique_id"].to_numpy() == uid
        se = np.sqrt(2 * fc.var[rows] / 3000)
        assert np.all(np.abs(fc.mean[rows] - ref[uid]) < 4.5 * se), (uid, fc.mean[rows], ref[uid])


def test_backtest_reads_the_panels_adjacency_and_fits_the_whole_panel(sim):
    """The backtest keeps the panel's adjacency and does not chunk series for a neighbour
    model: its forecast at the last cutoff equals a fit on the panel up to that cutoff."""
    from forecast.backtesting import backtest

    panel = _panel(sim)
    spec = PoissonGLM(seasonality="none", lags=(1,), neighbour_lags=(1,))
    bt = backtest(panel, {"ne": spec}, horizon=1, n_origins=2)
    cut = bt.forecasts["cutoff"].max()
    short = panel[panel["ds"] <= cut].copy()
    short.attrs["adjacency"] = _adjacency()
    want = spec.fit(short).forecast(1).mean
    got = bt.forecasts[bt.forecasts["cutoff"] == cut].set_index("unique_id").loc[NAMES, "mean"].to_numpy()
    assert np.allclose(got, want, rtol=1e-10)


def test_capped_joint_means_are_reported_in_diagnostics():
    """An explosive neighbour effect: the joint simulation caps the means, and says so."""
    rng = np.random.default_rng(0)
    Y = {n: rng.poisson(3, 60) for n in NAMES}
    fm = PoissonGLM(seasonality="none", neighbour_lags=(1,), n_paths=50).fit(_panel(Y))
    for f in fm._fits:  # force a huge neighbour coefficient
        f.state["beta"] = np.array([0.0, 6.0]) if f.state["names"][-1] == "neighbour_lag1" else f.state["beta"]
    with pytest.warns(Warning):
        fm.forecast(4)
    d = fm.diagnostics().set_index("unique_id")
    assert d.loc["A", "mean_capped"] and not d.loc["G", "mean_capped"]


def test_powerlaw_sums_use_every_order_normalised_per_source(sim):
    """Orders by breadth-first search of the pairs; w_ji ∝ o^-d, each source's weights sum to 1."""
    from forecast.models._neighbours import panel_weights, with_neighbours

    nb = {n: set() for n in NAMES}
    for a, b in PAIRS:
        nb[a].add(b)
        nb[b].add(a)
    order = {}
    for src in NAMES:
        dist, frontier = {src: 0}, [src]
        while frontier:
            frontier = [w for v in frontier for w in nb[v] if w not in dist and not dist.update({w: dist[v] + 1})]
        order[src] = dist
    d = 1.5
    data = PanelData.from_frame(_panel(sim))
    got = {s.uid: s.nsum for s in with_neighbours(data, panel_weights(data, "powerlaw", d, "m")).series}
    for i in NAMES:
        want = np.zeros(len(sim["A"]))
        for j in NAMES:
            o = order[j].get(i, 0)
            if o >= 1:
                tot = sum(v ** -d for k, v in order[j].items() if v >= 1)
                want += o ** -d / tot * sim[j]
        assert np.allclose(got[i], want), i
