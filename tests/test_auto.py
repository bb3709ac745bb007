"""The ``auto`` model: stacking weights, the compute-once backtest, the spec file."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.optimize as so
import scipy.stats as st

from forecast.backtesting import backtest
from forecast.combine import Auto, load_model
from forecast.exceptions import ConfigError
from forecast.models.base import warm_starts
from forecast.models.baselines import Climatology, Naive
from forecast.models.glm import NegBinGLM
from forecast.scoring import score_all
from forecast.stacking import (log_weights, pool_log_score, rps_gram, rps_weights, series_rps_weights,
                               series_weights)


# --------------------------------------------------------------------------- stacking
def _mixture_cells(n=20000, seed=1):
    rng = np.random.default_rng(seed)
    z = rng.random(n) < 0.3
    y = np.where(z, rng.poisson(2, n), rng.poisson(8, n))
    means = (2.0, 8.0, 5.0)
    P = np.column_stack([st.poisson.pmf(y, m) for m in means])
    return y, P, means


def test_log_weights_recover_a_known_mixture_and_equal_the_brute_force_mle():
    y, P, _ = _mixture_cells()
    w = log_weights(P, kappa=0.0)
    # Brute force: the pool's mean log score minimised over the simplex by a generic optimiser.
    f = lambda a: -np.mean(np.log(P @ np.r_[a, 1 - a.sum()]))  # noqa: E731
    ref = so.minimize(f, [0.3, 0.3], bounds=[(0, 1), (0, 1)], method="L-BFGS-B", options={"ftol": 1e-14}).x
    assert pool_log_score(P, w) <= f(ref) + 1e-9
    np.testing.assert_allclose(w[:2], ref, atol=2e-3)
    # ... and the mixture that generated the data (sampling error at n = 20,000).
    np.testing.assert_allclose(w, [0.3, 0.7, 0.0], atol=0.02)


def test_kappa_pulls_weights_toward_equal_and_empty_cells_give_equal_weights():
    y, P, _ = _mixture_cells(n=200)
    w0, w_big = log_weights(P, 0.0), log_weights(P, 1e6)
    np.testing.assert_allclose(w_big, 1 / 3, atol=1e-4)
    assert abs(log_weights(P, 20.0)[1] - 1 / 3) < abs(w0[1] - 1 / 3)
    np.testing.assert_allclose(log_weights(np.zeros((5, 3))), 1 / 3)  # no usable cell


def test_rps_weights_equal_the_brute_force_minimum_of_the_pools_rps():
    y, _, means = _mixture_cells(n=3000, seed=4)
    K = 40
    F = np.stack([st.poisson.cdf(np.arange(K + 1)[None, :], np.full((len(y), 1), m)) for m in means], axis=1)
    A, b = rps_gram(F, y)
    w = rps_weights(A, b, kappa=0.0)

    def total_rps(a):
        wf = np.r_[a, 1 - a.sum()]
        pool = np.einsum("m,nmk->nk", wf, F)
        return np.sum((pool - (np.arange(K + 1)[None, :] >= y[:, None])) ** 2)

    ref = so.minimize(total_rps, [0.3, 0.3], bounds=[(0, 1), (0, 1)], method="SLSQP",
                      constraints=[{"type": "ineq", "fun": lambda a: 1 - a.sum()}], options={"ftol": 1e-12}).x
    assert total_rps(w[:2]) <= total_rps(ref) + 1e-6 * total_rps(ref)
    np.testing.assert_allclose(w[:2], ref, atol=5e-3)


def test_series_weights_shrink_from_own_mle_to_the_group_weights():
    _, P, _ = _mixture_cells(n=600, seed=2)
    series = np.arange(600) % 3
    groups = np.array([0, 0, 1])
    W_inf, G = series_weights(P, series, groups, 3, kappa=0.0, shrinkage=np.inf)
    np.testing.assert_allclose(G[0], log_weights(P[series < 2], 0.0), atol=1e-8)
    np.testing.assert_allclose(W_inf, G[groups])
    W0, _ = series_weights(P, series, groups, 3, kappa=0.0, shrinkage=0.0)
    for i in range(3):  # no shrinkage: each series' own maximum-likelihood pool
        np.testing.assert_allclose(W0[i], log_weights(P[series == i], 0.0), atol=1e-6)
    s = 50.0
    W50, _ = series_weights(P, series, groups, 3, kappa=0.0, shrinkage=s)
    for i in range(3):  # in between: closer to the group's weights, and the MAP under the Dirichlet prior
        g = G[groups[i]]
        assert np.linalg.norm(W50[i] - g) < np.linalg.norm(W0[i] - g)
        Pi = P[series == i]
        post = lambda w: np.sum(np.log(Pi @ w)) + s * np.sum(g * np.log(np.maximum(w, 1e-300)))  # noqa: E731
        rng = np.random.default_rng(i)
        for cand in rng.dirichlet(np.ones(3), 200):  # brute force: no random point on the simplex does better
            assert post(W50[i]) >= post(cand) - 1e-9


def test_series_rps_weights_are_a_convex_combination():
    y, _, means = _mixture_cells(n=300, seed=5)
    F = np.stack([st.poisson.cdf(np.arange(31)[None, :], np.full((len(y), 1), m)) for m in means], axis=1)
    A, b = rps_gram(F, y)
    series = np.arange(300) % 2
    W, G = series_rps_weights(A, b, series, np.array([0, 0]), 2, kappa=0.0, shrinkage=150.0)
    own = rps_weights(A[series == 0], b[series == 0])
    np.testing.assert_allclose(W[0], (150 * own + 150 * G[0]) / 300, atol=1e-6)
    np.testing.assert_allclose(W.sum(axis=1), 1.0)


# --------------------------------------------------------------------------- the spec
def _panel(n_series=4, n=60, seed=3):
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2015-01-01", periods=n, freq="MS")
    rows = []
    for i in range(n_series):
        mu = np.exp(0.5 + 0.3 * i + 0.6 * np.sin(2 * np.pi * np.arange(n) / 12))
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.poisson(mu)}))
    return pd.concat(rows, ignore_index=True)


def _small_auto(**kw):
    members = {"climatology": Climatology(prior="none") if "prior" in {p.name for p in Climatology.params}
               else Climatology(), "naive": Naive(), "glm": NegBinGLM(trend="none", seasonality="fourier")}
    return Auto(members=members, inner_origins=3, **kw)


def _nested(spec, panel, horizon, cutoffs, seed=0, refit_every=1):
    """The honest definition: refit auto on the data up to each cutoff, forecast, score."""
    out, fitted = [], None
    for i, o in enumerate(cutoffs):
        train = panel[panel["ds"] <= o]
        fitted = spec.fit(train, seed=seed) if i % refit_every == 0 else fitted.update(train)
        fc = fitted.forecast(horizon, seed=seed)
        got = fc.index.merge(panel[["unique_id", "ds", "y"]], on=["unique_id", "ds"], how="left")
        seen = got["y"].notna().to_numpy()
        fc = fc.subset(np.flatnonzero(seen))
        sc = pd.DataFrame(score_all(fc, got["y"][seen].to_numpy(dtype=np.int64)))
        out.append(pd.concat([fc.index.reset_index(drop=True), sc], axis=1).assign(cutoff=o))
    return pd.concat(out, ignore_index=True)


@pytest.mark.parametrize("horizon, refit_every, metric",
                         [(1, 1, "log"), (2, 1, "log"), (1, 2, "log"), (1, 1, "rps"), (2, 1, "rps")])
def test_compute_once_backtest_equals_refitting_auto_at_every_cutoff(horizon, refit_every, metric):
    panel = _panel()
    spec = _small_auto(metric=metric)
    with warm_starts(False):  # cold refits everywhere: equal to rounding
        res = backtest(panel, {"auto": spec}, horizon, n_origins=4, refit_every=refit_every, progress=False)
        cutoffs = [pd.Timestamp(c) for c in res.settings["origins"]]
        ref = _nested(spec.for_horizon(horizon), panel, horizon, cutoffs, refit_every=refit_every)
    warm = backtest(panel, {"auto": spec}, horizon, n_origins=4, refit_every=refit_every, progress=False)
    key = ["cutoff", "unique_id", "ds"]
    ref = ref.sort_values(key).reset_index(drop=True)
    for r, tol in ((res, (1e-10, 1e-12)), (warm, (1e-8, 1e-8))):
        # (warm: the member refits start from the previous origin's estimates, so they reach the
        # optimum to the solver's gradient tolerance, 1e-8, not to rounding: 3.5e-10 seen)
        got = pd.concat([r.forecasts[["unique_id", "ds", "cutoff"]], r.point_scores], axis=1)
        got = got.sort_values(key).reset_index(drop=True)
        assert len(got) == len(ref) == 4 * 4 * horizon - (0 if horizon == 1 else 0)
        for col in ("log", "rps", "abs_error"):
            np.testing.assert_allclose(got[col].to_numpy(), ref[col].to_numpy(), rtol=tol[0], atol=tol[1])


def test_auto_weights_are_learnt_before_the_cutoff_only():
    panel = _panel()
    spec = _small_auto()
    fitted = spec.fit(panel)
    later = panel.copy()
    later.loc[later["ds"] > "2019-06-01", "y"] += 50  # changes nothing the fit may have seen
    train = panel[panel["ds"] <= "2019-06-01"]
    a = spec.fit(train).weights()
    b = spec.fit(later[later["ds"] <= "2019-06-01"]).weights()
    pd.testing.assert_frame_equal(a, b)
    w = fitted.weights().set_index("unique_id")
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert list(w.columns) == ["climatology", "naive", "glm"]


def test_auto_on_a_too_short_panel_uses_equal_weights_and_says_so():
    panel = _panel(n=3)  # the internal backtest needs 3 training periods and 1 to score
    fitted = _small_auto().fit(panel)
    np.testing.assert_allclose(fitted.weights().drop(columns="unique_id").to_numpy(), 1 / 3)
    assert fitted.diagnostics()["reason"].str.contains("equal weights").all()


def test_bundled_auto_spec_loads_and_checks_its_parameters():
    spec = load_model("auto")
    assert isinstance(spec, Auto) and len(spec.get_params()["members"]) >= 3
    with pytest.raises(ConfigError, match="metric"):
        Auto(metric="crps").validate()
    with pytest.raises(ConfigError, match="shrinkage"):
        Auto(shrinkage=-1.0).validate()
    Auto(shrinkage=float("inf")).validate()


def _weekly_nb_ar(n_series=20, years=5, seed=11):
    """Series from the NB2 count autoregression the toolkit's negbin_glm_ar fits on weekly data:
    log mu_t = b0_i + 0.5 log(1 + y_{t-1}) + 0.6 sin(2 pi u_t) + 0.3 cos(2 pi u_t), alpha = 0.3,
    u_t the position in the year (weeks / 52.18)."""
    rng = np.random.default_rng(seed)
    n = int(years * 52)
    ds = pd.date_range("2015-01-05", periods=n, freq="W-MON")
    u = (ds.dayofyear.to_numpy() - 1) / 365.25
    rows = []
    alpha = 0.3
    for i in range(n_series):
        b0 = rng.uniform(-0.5, 1.0)
        y = np.zeros(n, dtype=np.int64)
        prev = 0
        for t in range(n):
            mu = np.exp(b0 + 0.5 * np.log1p(prev) + 0.6 * np.sin(2 * np.pi * u[t]) + 0.3 * np.cos(2 * np.pi * u[t]))
            y[t] = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
            prev = y[t]
        rows.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": ds, "y": y}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.slow(12)
def test_auto_scores_within_two_percent_of_the_true_model_on_a_simulated_weekly_nb_ar_panel():
    panel = _weekly_nb_ar()
    true = NegBinGLM(trend="none", seasonality="fourier", fourier_k=1, lags=(1,))
    res = backtest(panel, {"true": true, "auto": Auto(inner_origins=20)}, 1, n_origins=10, progress=False)
    log = res.point_scores.groupby(res.forecasts["model"].to_numpy())["log"].mean()
    assert np.isfinite(log).all()
    assert log["auto"] <= 1.02 * log["true"], log.to_dict()


def test_auto_fits_around_missing_periods_and_its_backtest_still_equals_refitting():
    panel = _panel()
    panel["y"] = panel["y"].astype(float)
    panel.loc[[5, 70, 130, 200, 230, 58, 237], "y"] = np.nan  # missing counts, two of them scored targets
    spec = _small_auto()
    with warm_starts(False):  # (cold refits: equal to rounding, see the compute-once test)
        res = backtest(panel, {"auto": spec}, 1, n_origins=4, progress=False)
        cutoffs = [pd.Timestamp(c) for c in res.settings["origins"]]
        ref = _nested(spec.for_horizon(1), panel, 1, cutoffs)
    got = pd.concat([res.forecasts[["unique_id", "ds", "cutoff"]], res.point_scores], axis=1)
    key = ["cutoff", "unique_id", "ds"]
    ref = ref.sort_values(key).reset_index(drop=True)
    got = got.sort_values(key).reset_index(drop=True)
    assert len(got) == len(ref) == 14  # the missing targets are not scored
    np.testing.assert_allclose(got["log"].to_numpy(), ref["log"].to_numpy(), rtol=1e-10)


def test_each_step_ahead_has_its_own_weights_and_later_steps_reuse_the_last():
    from forecast.distributions import CountForecast

    panel = _panel()
    fitted = _small_auto(inner_horizon=3).fit(panel)
    long = fitted.weights(step=None)
    assert sorted(long["h"].unique()) == [1, 2, 3]
    w1, w3 = fitted.weights(1).iloc[:, 1:].to_numpy(), fitted.weights(3).iloc[:, 1:].to_numpy()
    assert not np.allclose(w1, w3)  # one-step and three-step forecasts trust members differently
    fc = fitted.forecast(5)
    members = [m.forecast(5) for m in fitted._members.values()]
    rows = fc.index
    expect = np.empty((3, len(rows)))
    for r, (uid, h) in enumerate(zip(rows["unique_id"], rows["h"])):
        expect[:, r] = fitted.weights(min(int(h), 3)).set_index("unique_id").loc[uid].to_numpy()
    ref = CountForecast.mixture(members, expect, model="auto")
    np.testing.assert_allclose(fc.pmf, ref.pmf, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- spatial members
def _chain_adjacency(panel):
    uids = sorted(panel["unique_id"].unique())
    return pd.DataFrame({"region_a": uids[:-1], "region_b": uids[1:]})


def test_spatial_members_join_when_the_panel_has_an_adjacency_and_backtest_equals_refitting():
    panel = _panel()
    panel.attrs["adjacency"] = _chain_adjacency(panel)
    spec = _small_auto(spatial_members=("endemic_epidemic",))
    fitted = spec.fit(panel)
    assert "endemic_epidemic" in fitted.weights().columns
    with warm_starts(False):  # (cold refits: equal to rounding, see the compute-once test)
        res = backtest(panel, {"auto": spec}, 1, n_origins=3, progress=False)
        cutoffs = [pd.Timestamp(c) for c in res.settings["origins"]]
        ref = _nested(spec.for_horizon(1), panel, 1, cutoffs)
    got = pd.concat([res.forecasts[["unique_id", "ds", "cutoff"]], res.point_scores], axis=1)
    key = ["cutoff", "unique_id", "ds"]
    got, ref = got.sort_values(key).reset_index(drop=True), ref.sort_values(key).reset_index(drop=True)
    np.testing.assert_allclose(got["log"].to_numpy(), ref["log"].to_numpy(), rtol=1e-10, atol=1e-12)


def test_spatial_members_are_skipped_without_an_adjacency_and_diagnostics_say_so():
    fitted = _small_auto().fit(_panel())
    assert not {"endemic_epidemic", "ingarch_spillover"} & set(fitted.weights().columns)
    assert fitted.diagnostics()["reason"].str.contains(
        "endemic_epidemic, ingarch_spillover skipped: no adjacency").all()
    assert load_model("auto").spatial_members == ("endemic_epidemic", "ingarch_spillover")
