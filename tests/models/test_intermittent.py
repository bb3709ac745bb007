"""Croston, SBA and TSB (forecast.models.intermittent).

References: rates worked out by hand (exact fractions) on a small example, an
independent re-implementation of each recursion written from the published
equations (over the list of demand events rather than period by period),
scipy.stats.poisson for the forecast rows, and the bundled sample panel.
"""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from scipy import stats

import forecast
from forecast import ConfigError
from forecast.models.intermittent import TSB, Croston, croston_rates, tsb_rates
from forecast.specs import load_model

Y = [0, 3, 0, 0, 1, 2, 0, 0]
NAN = float("nan")


def panel(series: dict[str, list[int]], start: str = "2020-01-01") -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq="MS"), "y": y})
                      for uid, y in series.items()], ignore_index=True)


# -- hand-computed example ---------------------------------------------------------------
# Demands at periods 2, 5, 6 (sizes 3, 1, 2; intervals 2, 3, 1). With alpha = 0.5:
# size 3 -> 3 + .5(1 - 3) = 2 -> 2 + .5(2 - 2) = 2; interval 2 -> 2.5 -> 1.75.
CROSTON_HALF = [NAN, 3 / 2, 3 / 2, 3 / 2, 2 / 2.5, 2 / 1.75, 2 / 1.75, 2 / 1.75]
# TSB, alpha = beta = 0.5: p = 0, .5, .25, .125, .5625, .78125, .390625, .1953125;
# size = -, 3, 3, 3, 2, 2, 2, 2.
TSB_HALF = [NAN, 1.5, 0.75, 0.375, 1.125, 1.5625, 0.78125, 0.390625]


def test_croston_rates_match_hand_computation():
    np.testing.assert_allclose(croston_rates(Y, 0.5)[2], CROSTON_HALF, rtol=1e-15, equal_nan=True)
    fit = Croston(alpha_smoothing=0.5).fit(panel({"a": Y})).fits()["a"]
    assert fit.state["rate"] == pytest.approx(8 / 7, rel=1e-15)
    assert fit.coef["size"][0] == pytest.approx(2.0) and fit.coef["interval"][0] == pytest.approx(1.75)


def test_sba_multiplies_the_rate_by_one_minus_half_alpha():
    for a in (0.5, 0.1, 0.3):
        plain = Croston(alpha_smoothing=a).fit(panel({"a": Y})).fits()["a"].state["rate"]
        sba = Croston(alpha_smoothing=a, sba=True).fit(panel({"a": Y})).fits()["a"].state["rate"]
        assert sba == pytest.approx(plain * (1 - a / 2), rel=1e-14)
    assert Croston(alpha_smoothing=0.5, sba=True).fit(panel({"a": Y})).fits()["a"].state["rate"] == pytest.approx(6 / 7)


def test_tsb_rates_match_hand_computation():
    prob, size, rate = tsb_rates(Y, 0.5, 0.5)
    np.testing.assert_allclose(rate, TSB_HALF, rtol=1e-15, equal_nan=True)
    assert prob[-1] == 0.1953125 and size[-1] == 2.0
    fit = TSB(alpha_smoothing=0.5, beta_smoothing=0.5).fit(panel({"a": Y})).fits()["a"]
    assert fit.state["rate"] == 25 / 64


def _croston_by_events(y: np.ndarray, alpha: float) -> float:
    """Croston's rate from the event list: SES of sizes and of intervals, each started at its first value."""
    times = [t + 1 for t, v in enumerate(y) if v > 0]
    sizes = [float(y[t - 1]) for t in times]
    gaps = [b - a for a, b in zip([0] + times[:-1], times)]
    z, p = sizes[0], float(gaps[0])
    for s_, g in zip(sizes[1:], gaps[1:]):
        z, p = (1 - alpha) * z + alpha * s_, (1 - alpha) * p + alpha * g
    return z / p


def _tsb_direct(y: np.ndarray, alpha: float, beta: float) -> float:
    """TSB from Teunter et al. (2011), eqs. for d_t = 1 and d_t = 0 written out separately."""
    p = 1.0 if y[0] > 0 else 0.0
    z = float(y[0]) if y[0] > 0 else None
    for v in y[1:]:
        if v > 0:
            p = p + beta * (1 - p)
            z = float(v) if z is None else z + alpha * (v - z)
        else:
            p = p + beta * (0 - p)
    return p * z


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rates_match_independent_recursions_on_random_sparse_series(seed):
    rng = np.random.default_rng(seed)
    y = rng.poisson(2.0, 60) * (rng.random(60) < 0.3)
    y[0] = 0  # start quiet, so the first interval is > 1
    y[7] = 4
    for a in (0.1, 0.25):
        got = Croston(alpha_smoothing=a).fit(panel({"s": y.tolist()})).fits()["s"].state["rate"]
        assert got == pytest.approx(_croston_by_events(y, a), rel=1e-12)
        for b in (0.1, 0.4):
            got = TSB(alpha_smoothing=a, beta_smoothing=b).fit(panel({"s": y.tolist()})).fits()["s"].state["rate"]
            assert got == pytest.approx(_tsb_direct(y, a, b), rel=1e-12)


def test_tsb_decays_through_zeros_while_croston_does_not():
    y = [2, 1, 3, 2, 1] + [0] * 10
    cro = Croston().fit(panel({"a": y})).fits()["a"].state["rate"]
    assert cro == pytest.approx(_croston_by_events(np.array(y), 0.1))
    prob, size, rate = tsb_rates(y, 0.1, 0.1)
    assert np.all(np.diff(rate[5:]) < 0)  # every quiet month lowers the TSB rate
    assert rate[-1] == pytest.approx(rate[4] * 0.9 ** 10)


@pytest.mark.parametrize("spec", [Croston(), Croston(sba=True), TSB()], ids=repr)
def test_forecast_rows_are_poisson_at_the_rate(spec):
    fm = spec.fit(panel({"a": Y, "b": [0, 5, 0, 0, 0, 7, 0, 1, 0, 0, 2, 0]}))
    fc = fm.forecast(4)
    rates = np.repeat([f.state["rate"] for f in fm.fits().values()], 4)
    np.testing.assert_allclose(fc.mean, rates, rtol=1e-12)
    k = np.arange(fc.K + 1)
    np.testing.assert_allclose(fc.pmf, stats.poisson.pmf(k[None, :], rates[:, None]), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(fc.pmf.sum(axis=1) + fc.tail, 1.0, atol=1e-12)


def test_loglik_is_the_one_step_ahead_poisson_log_score():
    fit = Croston(alpha_smoothing=0.5).fit(panel({"a": Y})).fits()["a"]
    # Periods 3..8 are forecast by the rates after periods 2..7.
    want = stats.poisson.logpmf(Y[2:], CROSTON_HALF[1:7]).sum()
    assert fit.loglik == pytest.approx(want, rel=1e-12) and fit.n_obs == 6 and fit.n_params == 0
    fit = TSB(alpha_smoothing=0.5, beta_smoothing=0.5).fit(panel({"a": Y})).fits()["a"]
    assert fit.loglik == pytest.approx(stats.poisson.logpmf(Y[2:], TSB_HALF[1:7]).sum(), rel=1e-12)


@pytest.mark.parametrize("spec", [Croston(), TSB()], ids=repr)
def test_all_zero_series_falls_back_to_climatology_and_leaves_others_alone(spec):
    alone = spec.fit(panel({"a": Y})).forecast(3)
    fm = spec.fit(panel({"a": Y, "z": [0] * 8}))
    d = fm.diagnostics().set_index("unique_id")
    assert d.loc["z", "fallback"] == "climatology" and "no demand to smooth" in d.loc["z", "reason"]
    assert d.loc["a", "fallback"] == "none" and d.loc["a", "model_used"] == spec.name
    fc = fm.forecast(3)
    np.testing.assert_allclose(fc.pmf[3:, 0], 1.0)  # a point mass at 0
    np.testing.assert_array_equal(fc.mean[:3], alone.mean)


def test_hyperparameters_are_checked_with_the_house_message():
    with pytest.raises(ConfigError, match=r"The 'alpha_smoothing' parameter of Croston must be a float in "
                                          r"\(0, 1\]\. Got 0 instead\."):
        Croston(alpha_smoothing=0).fit(panel({"a": Y}))
    with pytest.raises(ConfigError, match="The 'beta_smoothing' parameter of TSB"):
        TSB(beta_smoothing=1.5).fit(panel({"a": Y}))
    with pytest.raises(ConfigError, match="The 'sba' parameter of Croston must be a bool"):
        Croston(sba="yes").fit(panel({"a": Y}))


def test_bundled_specs_load():
    assert load_model("croston") == Croston()
    assert load_model("tsb") == TSB()


def test_smoke_on_the_sample_panel():
    p = forecast.build_panel(forecast.load_sample("border_sim"), as_of="2025-12-31")
    n = p["unique_id"].nunique()
    assert n == 27
    for spec in (Croston(), Croston(sba=True), TSB()):
        fm = spec.fit(p)
        fc = fm.forecast(6)
        assert fc.n_rows == n * 6 and np.isfinite(fc.mean).all() and (fc.mean >= 0).all()
        d = fm.diagnostics()
        quiet = p.groupby("unique_id")["y"].sum().eq(0)
        assert set(d.loc[d["fallback"] != "none", "unique_id"]) == set(quiet[quiet].index)
        frame = fc.to_frame()
        assert len(frame) == n * 6 and frame["mean"].notna().all()
