"""``pooled_negbin``: NB2 GLM per event type with shared seasonality and shrunk province
intercepts.

References: statsmodels' unpenalised NB2 (discrete ``NegativeBinomial``) on the stacked
design with one indicator per province (penalty 0); simulated random intercepts of known
variance (penalty "auto"); shrinkage bounds (own rate, group rate).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.models.pooled_glm import PooledNegBin
from forecast.specs import load_model

T = 120


def _series(uid: str, y, event_type: str = "clashes") -> pd.DataFrame:
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2010-01-01", periods=len(y), freq="MS"), "y": y,
                         "country": "X", "province": uid, "event_type": event_type})


def _panel(seed: int = 1, event_type: str = "clashes", prefix: str = "") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    month = np.tile(np.arange(12), T // 12)
    season = 0.4 * np.sin(2 * np.pi * month / 12)
    parts = []
    for uid, rate in {"a": 3.0, "b": 2.0, "c": 4.0, "d": 2.5, "e": 3.5}.items():
        mu = rate * np.exp(season)
        parts.append(_series(prefix + uid, rng.negative_binomial(5, 5 / (5 + mu)), event_type))
    sparse = np.zeros(T, dtype=int)
    sparse[[10, 50, 90]] = 1  # three events in ten years
    parts.append(_series(prefix + "sparse", sparse, event_type))
    parts.append(_series(prefix + "none", np.zeros(T, dtype=int), event_type))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return _panel()


def _one_step(fm) -> pd.Series:
    fc = fm.forecast(1)
    return pd.Series(fc.mean, index=fc.index["unique_id"].to_numpy())


def test_sparse_province_lies_between_its_own_rate_and_the_groups(panel):
    mean = _one_step(PooledNegBin(seasonality="none").fit(panel))
    own = 3 / T
    group = panel.loc[~panel["unique_id"].isin(["sparse", "none"]), "y"].mean()
    assert own < mean["sparse"] < group
    assert mean["sparse"] > own * 1.0001  # shrunk, not merely equal


def test_zero_event_province_gets_a_small_positive_rate(panel):
    mean = _one_step(PooledNegBin(seasonality="none").fit(panel))
    assert 0 < mean["none"] < mean["sparse"] < 0.1
    assert mean["none"] > 1e-6  # not a certain zero


def test_penalty_zero_equals_unpenalised_statsmodels_fit(panel):
    import statsmodels.api as sm

    sub = panel[~panel["unique_id"].isin(["sparse", "none"])]
    fits = PooledNegBin(seasonality="month", penalty=0.0).fit(sub).fits()
    uids = sorted(sub["unique_id"].unique())
    # stacked design by hand: one indicator per province, month dummies 2..12
    X, y = [], []
    for i, u in enumerate(uids):
        s = sub[sub["unique_id"] == u]
        D = np.zeros((len(s), len(uids)))
        D[:, i] = 1
        m = pd.DatetimeIndex(s["ds"]).month.to_numpy()
        M = np.column_stack([(m == k).astype(float) for k in range(2, 13)])
        X.append(np.column_stack([D, M]))
        y.append(s["y"].to_numpy())
    ref = sm.NegativeBinomial(np.concatenate(y), np.vstack(X), loglike_method="nb2").fit(
        method="newton", maxiter=300, tol=1e-12, disp=0)
    for i, u in enumerate(uids):
        f = fits[u]
        assert f.coef["(Intercept)"][0] == pytest.approx(ref.params[i], abs=1e-5)
        got = [f.coef[f"month_{k}"][0] for k in range(2, 13)]
        assert np.allclose(got, ref.params[len(uids):len(uids) + 11], atol=1e-5)
        assert f.state["alpha"] == pytest.approx(ref.params[-1], abs=1e-5)


def test_penalty_zero_sends_provinces_without_events_down_the_ladder(panel):
    d = PooledNegBin(seasonality="none", penalty=0.0).fit(panel).diagnostics().set_index("unique_id")
    assert d.loc["none", "fallback"] != "none" and d.loc["none", "reason"].startswith("pooled_negbin: no events")
    assert d.loc["sparse", "fallback"] == "none"


def test_auto_penalty_recovers_the_random_intercept_variance():
    """Random intercepts u_i ~ N(0, 0.25) over 40 provinces: 1/λ within [0.4, 1.8] x 0.25."""
    rng = np.random.default_rng(7)
    u = rng.normal(0, 0.5, 40)
    parts = [_series(f"p{i}", rng.negative_binomial(10, 10 / (10 + 2 * np.exp(ui)), 60)) for i, ui in enumerate(u)]
    fit = next(iter(PooledNegBin(seasonality="none").fit(pd.concat(parts)).fits().values()))
    var = 1 / fit.state["lam"]
    assert 0.4 * 0.25 < var < 1.8 * 0.25, var


def test_event_types_are_fitted_separately(panel):
    """Metamorphic: a panel of two event types gives each type's fit alone."""
    other = _panel(seed=5, event_type="seizures", prefix="s_")
    both = PooledNegBin(seasonality="none").fit(pd.concat([panel, other], ignore_index=True)).coefficients()
    alone = PooledNegBin(seasonality="none").fit(panel).coefficients()
    got = both[both["unique_id"].isin(alone["unique_id"])].reset_index(drop=True)
    assert np.allclose(got["estimate"], alone["estimate"], rtol=1e-6, equal_nan=True)


def test_spec_file_loads_and_neighbour_lags_share_one_coefficient(panel):
    spec = load_model("pooled_negbin")
    assert isinstance(spec, PooledNegBin) and spec.penalty == "auto"
    adj = pd.DataFrame({"province_a": ["a", "b", "c", "d", "e"], "province_b": ["b", "c", "d", "e", "sparse"]})
    p = panel.copy()
    p.attrs["adjacency"] = adj
    fm = PooledNegBin(seasonality="none", neighbour_lags=(1,), n_paths=200).fit(p)
    est = fm.coefficients().query("term == 'neighbour_lag1'")["estimate"].dropna()
    assert len(est) == 7 and np.ptp(est) == 0
    fc = fm.forecast(3)
    assert np.isfinite(fc.mean).all() and (fc.mean > 0).all()


def test_a_group_whose_joint_fit_fails_falls_back_to_negbin_glm(panel, monkeypatch):
    import forecast.models.pooled_glm as pg

    real = pg.fit_pooled
    monkeypatch.setattr(pg, "fit_pooled", lambda *a, **k: {**real(*a, **k), "converged": False})
    fm = PooledNegBin(seasonality="none").fit(panel)
    d = fm.diagnostics().set_index("unique_id")
    assert (d.loc[["a", "b", "c"], "fallback"] == "negbin_glm").all()
    assert d.loc["a", "reason"].startswith("pooled_negbin: the pooled fit did not converge")
    assert np.isfinite(fm.forecast(2).mean).all()
