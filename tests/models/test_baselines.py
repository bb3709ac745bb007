"""Baselines and the shared spec/fit contract (params, clone, fallbacks, streams)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from forecast import ConfigError, DataValidationError
from forecast.models import Climatology, Empirical, Naive, SeasonalNaive, Zero
from forecast.models.base import series_rng
from forecast.models.baselines import nb_intercept_mle


def panel(series: dict[str, list[int]], start="2020-01-01", freq="MS") -> pd.DataFrame:
    rows = []
    for uid, y in series.items():
        rows.append(pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq=freq), "y": y}))
    return pd.concat(rows, ignore_index=True)


Y = [0, 2, 1, 0, 5, 3, 0, 0, 1, 7, 2, 0, 4, 1, 0, 3]
P = panel({"a": Y, "b": [0] * 16, "c": [1] * 16})


def test_naive_and_seasonal_naive_means():
    fc = Naive().fit(P).forecast(3)
    assert fc.mean[:3].tolist() == [3.0, 3.0, 3.0]
    sn = SeasonalNaive().fit(P).forecast(14)
    # one season (12 months) back from each target month; where that count is 0, the mean
    # count one season after a zero, shrunk to the series' mean (brute force here)
    after = [Y[t] for t in range(12, len(Y)) if Y[t - 12] == 0]
    floor = (sum(after) + np.mean(Y)) / (len(after) + 1)
    assert sn.mean[:14].tolist() == pytest.approx([float(v) if v else floor for v in (Y[4:16] + Y[4:6])],
                                                  rel=1e-14)


def test_seasonal_naive_falls_back_to_naive_on_short_series():
    fit = SeasonalNaive().fit(panel({"s": [1, 2, 3]}))
    d = fit.diagnostics().iloc[0]
    assert d["fallback"] == "naive" and "needs one full season" in d["reason"]
    assert fit.forecast(2).mean.tolist() == [3.0, 3.0]


def test_climatology_is_the_nb_maximum_likelihood_fit():
    mu, alpha, ll = nb_intercept_mle(np.array(Y))
    assert mu == pytest.approx(np.mean(Y))

    def negll(a):  # independent: scipy's NB log-pmf, n = 1/a, p = 1/(1 + a mu)
        return -stats.nbinom.logpmf(Y, 1 / a, 1 / (1 + a * mu)).sum()

    ref = optimize.minimize_scalar(negll, bounds=(1e-6, 50), method="bounded", options={"xatol": 1e-12})
    assert alpha == pytest.approx(ref.x, rel=1e-6)
    assert ll == pytest.approx(-ref.fun, rel=1e-10)
    fc = Climatology(window=16, prior="none").fit(P).forecast(2)
    k = np.arange(6)
    assert np.allclose(fc.pmf[0, :6], stats.nbinom.pmf(k, 1 / alpha, 1 / (1 + alpha * mu)), atol=1e-12)


def test_climatology_without_overdispersion_is_poisson():
    mu, alpha, _ = nb_intercept_mle(np.array([2, 2, 3, 2, 1, 2]))
    assert alpha == 0.0 and mu == 2.0


def test_climatology_window_uses_only_recent_periods():
    fit = Climatology(window=4, prior="none").fit(P)
    assert fit.coefficients().query("unique_id == 'a' and term == 'mean'")["estimate"].item() == np.mean(Y[-4:])


def test_empirical_pmf_is_the_window_frequency():
    fc = Empirical(window=8).fit(P).forecast(1)
    w = np.array(Y[-8:])
    assert np.allclose(fc.pmf[0, : w.max() + 1], np.bincount(w) / 8)


def test_all_zero_and_constant_series_give_valid_distributions():
    # (a series that never had an event stays a point mass at 0, pooled or not)
    for spec in (Zero(), Naive(), SeasonalNaive(), Climatology(), Climatology(prior="none"), Empirical()):
        fc = spec.fit(P).forecast(4)
        assert np.allclose(fc.pmf.sum(axis=1) + fc.tail, 1.0)
        zero_rows = fc.index["unique_id"] == "b"
        assert np.allclose(fc.pmf[zero_rows, 0], 1.0)


def test_forecast_rows_follow_the_fitted_series_order_and_dates():
    fc = Climatology().fit(P).forecast(2)
    assert fc.index["unique_id"].tolist() == ["a", "a", "b", "b", "c", "c"]
    assert fc.index["ds"].tolist()[:2] == [pd.Timestamp("2021-05-01"), pd.Timestamp("2021-06-01")]
    assert fc.index["h"].tolist() == [1, 2] * 3


# -- the spec contract -------------------------------------------------------------

def test_params_roundtrip_clone_and_repr():
    spec = Climatology(window=12)
    assert spec.get_params() == {"window": 12, "prior": "pooled"}
    assert repr(spec) == "Climatology(window=12)"
    c = spec.clone()
    assert c == spec and c is not spec
    assert spec.set_params(window=6) is spec and spec.window == 6 and c.window == 12


def test_sklearn_clone_works():
    from sklearn.base import clone

    spec = Climatology(window=5)
    assert clone(spec) == spec


def test_unknown_parameter_names_the_allowed_ones():
    with pytest.raises(ConfigError, match="unknown parameter.*'windw'.*allowed: window"):
        Climatology(windw=3)


def test_limits_are_checked_at_fit_with_one_message_shape():
    spec = Climatology(window=-1)  # stored as given
    with pytest.raises(ConfigError) as err:
        spec.fit(P)
    assert str(err.value) == ("The 'window' parameter of Climatology must be an int >= 1 or None (3 years of the "
                              "panel's frequency). Got -1 instead.")


def test_fitted_model_does_not_share_state_with_the_spec():
    spec = Climatology(window=4)
    fit = spec.fit(P)
    spec.set_params(window=16)
    assert fit.spec.window == 4


def test_panel_contract_errors_are_readable():
    with pytest.raises(DataValidationError, match="required panel column"):
        Naive().fit(P.drop(columns="y"))
    bad = P.copy()
    bad.loc[3, "y"] = -1
    with pytest.raises(DataValidationError, match="negative or non-integer count"):
        Naive().fit(bad)
    # Issue 12: an absent period is missing, not an error (tests/test_missing_periods.py).
    gap = P.drop(index=5)
    assert np.isfinite(Naive().fit(gap).forecast(1).mean).all()


def test_series_streams_depend_on_seed_series_and_origin_only():
    a = series_rng(1, "x", pd.Timestamp("2020-01-01")).random(3)
    assert np.array_equal(a, series_rng(1, "x", pd.Timestamp("2020-01-01")).random(3))
    assert not np.array_equal(a, series_rng(2, "x", pd.Timestamp("2020-01-01")).random(3))
    assert not np.array_equal(a, series_rng(1, "y", pd.Timestamp("2020-01-01")).random(3))
    assert not np.array_equal(a, series_rng(1, "x", pd.Timestamp("2020-02-01")).random(3))


def test_weekly_panels_forecast_weekly_dates():
    w = panel({"w": Y}, start="2024-01-01", freq="W-MON")
    fc = Naive().fit(w).forecast(2)
    assert fc.index["ds"].tolist() == [pd.Timestamp("2024-04-22"), pd.Timestamp("2024-04-29")]


def test_any_long_frame_works_not_only_build_panel_output():
    shuffled = P.sample(frac=1.0, random_state=1)
    a = Climatology().fit(P).forecast(2)
    b = Climatology().fit(shuffled).forecast(2)
    assert np.array_equal(a.pmf, b.pmf)


def test_update_keeps_parameters_but_uses_new_data():
    short = P[P["ds"] < "2021-01-01"]
    fit = Climatology(window=4).fit(short)
    upd = fit.update(P)
    # climatology's mean is a parameter: unchanged; naive's last value is data: updated
    assert np.allclose(upd.forecast(1).mean, fit.forecast(1).mean)
    nfit = Naive().fit(short).update(P)
    assert nfit.forecast(1).mean.tolist() == [float(Y[-1]), 0.0, 1.0]
    assert upd.forecast(1).index["ds"].iloc[0] == pd.Timestamp("2021-05-01")


def test_window_baselines_keep_their_contract():
    """Climatology and Empirical share one skeleton: window param, Zero fallback, no draws."""
    import inspect

    from forecast.models.base import FitFailure, Series

    empty = Series("e", np.array([], dtype="datetime64[ns]"), np.array([], dtype=np.int64), "MS", None)
    for cls, extra in ((Climatology, ["prior"]), (Empirical, [])):
        assert [p.name for p in cls.params] == ["window", *extra] and cls().window is None
        assert cls.fallbacks == (Zero,) and cls.draws is False
        assert list(inspect.signature(cls).parameters) == ["self", "window", *extra]
        with pytest.raises(FitFailure, match="empty series"):
            cls()._fit_series(empty)
