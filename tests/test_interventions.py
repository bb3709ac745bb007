"""Tests of forecast.effects: intervention rate ratios against statsmodels' Wald results.

(Coverage of the true rate ratio on simulated data is tested with the GLM recovery test in
tests/models/test_glm.py.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast import ConfigError
from forecast.interventions import COLUMNS, effects
from forecast.models import Climatology
from forecast.models.glm import NegBinGLM, PoissonGLM

T = 120
DS = pd.date_range("2015-01-01", periods=T, freq="MS")
STEP = {"name": "closure", "date": "2019-03-10", "kind": "step"}
RAMP = {"name": "patrols", "date": "2020-07-01", "kind": "ramp"}


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    t = np.arange(T)
    step = (DS >= "2019-03-01").astype(float)
    ramp = np.maximum(t - t[DS == "2020-07-01"][0], 0) / 12
    rows = []
    for uid, (b0, b_step, b_ramp) in {"a": (1.0, -0.6, 0.3), "b": (1.5, 0.2, -0.4)}.items():
        mu = np.exp(b0 + 0.05 * t / 12 + b_step * step + b_ramp * ramp)
        rows.append(pd.DataFrame({"unique_id": uid, "ds": DS, "y": rng.poisson(rng.gamma(2.0, mu / 2.0))}))
    rows.append(pd.DataFrame({"unique_id": "silent", "ds": DS, "y": 0}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def fitted(panel):
    return NegBinGLM(trend="damped", seasonality="none", interventions=(STEP, RAMP)).fit(panel)


def test_one_row_per_series_and_term(fitted) -> None:
    e = effects(fitted)
    assert list(e.columns) == COLUMNS
    assert list(zip(e.unique_id, e.term)) == [(u, t) for u in ("a", "b", "silent") for t in ("closure", "patrols")]
    assert e.kind.tolist() == ["step", "ramp"] * 3
    assert (e.date == pd.Timestamp("2019-03-10")).sum() == 3
    np.testing.assert_allclose(e.rate_ratio, np.exp(e.estimate))


def test_matches_statsmodels_wald_results(fitted, panel) -> None:
    import statsmodels.api as sm

    e = effects(fitted, level=0.9).set_index(["unique_id", "term"])
    t = np.arange(T)
    X = np.column_stack([np.ones(T), t / 12, DS >= "2019-03-01",  # built here, not by forecast.models.design
                         np.maximum(t - 66, 0) / 12])  # 2020-07 is month 66 of the series: ramp per year
    for uid in ("a", "b"):
        y = panel.loc[panel.unique_id == uid, "y"].to_numpy()
        alpha = fitted.fits()[uid].coef["alpha"][0]
        ref = sm.GLM(y, X.astype(float), family=sm.families.NegativeBinomial(alpha=alpha)).fit(tol=1e-12)
        ci = np.exp(ref.conf_int(alpha=0.1))
        for j, term in ((2, "closure"), (3, "patrols")):
            row = e.loc[(uid, term)]
            assert row.estimate == pytest.approx(ref.params[j], rel=1e-6)
            assert row.std_error == pytest.approx(ref.bse[j], rel=1e-6)
            assert row.p_value == pytest.approx(ref.pvalues[j], rel=1e-5)
            assert (row.lo, row.hi) == pytest.approx(tuple(ci[j]), rel=1e-6)
            assert row.fallback == "none"


def test_p_holm_adjusts_the_finite_p_values_of_the_table(fitted) -> None:
    from statsmodels.stats.multitest import multipletests

    e = effects(fitted)
    ok = e.p_value.notna()
    assert ok.sum() == 4  # the silent series' NaN p-values are not counted as tests
    np.testing.assert_allclose(e.p_holm[ok], multipletests(e.p_value[ok], method="holm")[1], rtol=1e-12)
    assert e.p_holm[~ok].isna().all()
    assert list(e.columns).index("p_holm") == list(e.columns).index("p_value") + 1


def test_fallen_back_series_get_nan_and_their_rung(fitted) -> None:
    e = effects(fitted).set_index("unique_id").loc["silent"]
    assert (e.fallback == "climatology").all()
    assert e[["estimate", "std_error", "rate_ratio", "lo", "hi", "p_value"]].isna().all().all()


def test_level_sets_the_interval_width(fitted) -> None:
    wide, narrow = effects(fitted, level=0.99), effects(fitted, level=0.5)
    ok = wide.estimate.notna()
    assert (wide.lo[ok] < narrow.lo[ok]).all() and (narrow.hi[ok] < wide.hi[ok]).all()
    np.testing.assert_allclose(np.log(narrow.hi[ok]) - narrow.estimate[ok], 0.6744897501960817 * narrow.std_error[ok],
                               rtol=1e-12)
    for bad in (0, 1, 1.5, "0.9"):
        with pytest.raises(ConfigError, match="level"):
            effects(fitted, level=bad)


def test_pulse_and_dropped_terms(panel) -> None:
    ivs = ({"name": "raid", "date": "2017-05-01", "kind": "pulse"}, {"name": "future", "date": "2031-01-01"})
    e = effects(PoissonGLM(seasonality="none", interventions=ivs).fit(panel)).set_index(["unique_id", "term"])
    assert np.isfinite(e.loc[("a", "raid"), "estimate"]) and e.loc[("a", "raid"), "kind"] == "pulse"
    assert np.isnan(e.loc[("a", "future"), "estimate"]) and e.loc[("a", "future"), "fallback"] == "none"


def test_models_without_interventions(panel) -> None:
    with pytest.raises(ConfigError, match="interventions"):
        effects(Climatology().fit(panel))
    e = effects(NegBinGLM(seasonality="none").fit(panel))
    assert e.empty and list(e.columns) == COLUMNS
