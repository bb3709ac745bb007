"""Numeric failures are recorded per-series fallbacks, never crashes; the mean cap holds for
every model; the empirical baseline honours its support cap.

References: a fit of the same series alone (the metamorphic checks: a poison series in a
batch leaves the other series' forecasts identical), the next rung's model fitted on its
own, closed-form caps, and brute-force frequencies for the empirical pmf.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from forecast.distributions import K_CAP_MAX
from forecast.exceptions import ConfigError
from forecast.models import glm as glm_module
from forecast.models import REGISTRY, Zero
from forecast.models.base import PENALTY_FALLBACK, ModelSpec, SeriesFit, SeriesForecast, batched_engine
from forecast.models.baselines import Climatology, Empirical
from forecast.models.design import capped_mean
from forecast.models.glm import NegBinGLM, PoissonGLM
from forecast.models.guard import MEAN_CAP_FACTOR, bad_forecast, recording_caps
from forecast.combine import load_model  # every spec type (the bundled ensemble too)
from forecast.specs import bundled_dir

BUNDLED = sorted(p.stem for p in bundled_dir().glob("*.toml"))

#: 34 months of a simulated border province (2012-01 .. 2014-10) on which the penalised NB
#: GLM overflowed (``alpha**2`` on a Python float) and crashed ``forecast predict``.
OVERFLOW_SERIES = [1, 2, 0, 1, 0, 0, 5, 1, 3, 0, 1, 0, 0, 5, 0, 3, 5, 0, 1, 2, 2, 2, 4, 0, 4, 1, 2, 0, 6, 2, 0,
                   3, 7, 3]


def panel(series: dict[str, np.ndarray], start: str = "2010-01-01") -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq="MS"),
                                    "y": np.asarray(y, dtype=int)}) for uid, y in series.items()],
                     ignore_index=True)


def spike_panel() -> pd.DataFrame:
    """A 10,000-event month on a Poisson(0.5) background, monthly, 60-120 months."""
    rng = np.random.default_rng(1)
    out = {}
    for k, n in enumerate((60, 96, 120)):
        y = rng.poisson(0.5, n)
        y[rng.integers(n // 3, n - 2)] = 10_000
        out[f"spike{k}"] = y
    return panel(out)


def degenerate_panels() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(2)
    return {
        "spike": spike_panel(),
        "all_zero": panel({"a": np.zeros(60)}),
        "one_event": panel({"a": np.r_[np.zeros(59), 1]}),
        "separation": panel({"a": np.r_[np.zeros(40), rng.poisson(5, 20)]}),
        "short3": panel({"a": [0, 2, 1]}),
        "short12": panel({"a": rng.poisson(2, 12)}),
    }


def check_usable(fc, n_rows: int) -> None:
    assert len(fc) == n_rows
    assert np.all(np.isfinite(fc.mean)) and np.all(fc.mean >= 0)
    assert np.all(np.isfinite(fc.pmf)) and np.all(fc.pmf >= 0)
    np.testing.assert_allclose(fc.pmf.sum(axis=1) + fc.tail, 1.0, atol=1e-6)


# -- every bundled spec survives the degenerate panels ------------------------------------------


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow(12)) if n == "auto" else n for n in BUNDLED])
def test_bundled_specs_fit_and_forecast_degenerate_panels(name) -> None:
    for case, p in degenerate_panels().items():
        if name == "arima" and case == "spike":  # its order search takes seconds per series: one is enough
            p = p[p["unique_id"] == "spike0"]
        if name == "auto" and case == "spike":  # six members x 24 inner origins on each: one series is enough
            p = p[p["unique_id"] == "spike1"]  # (spike0 alone was half the test's CPU time; spike1 ~6 s)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name in ("endemic_epidemic", "ingarch_spillover"):  # spill-over needs neighbours: a chain
                ids = sorted(p["unique_id"].unique())
                p = p.copy()
                p.attrs["adjacency"] = pd.DataFrame({"region_a": ids[:-1], "region_b": ids[1:]})
            fitted = load_model(name).fit(p)
            fc = fitted.forecast(6)
        check_usable(fc, 6 * p["unique_id"].nunique())
        diag = fitted.diagnostics()
        assert len(diag) == p["unique_id"].nunique(), case
        assert "mean_capped" in diag.columns


@pytest.mark.parametrize("name", ["zinb", "ingarch"])
def test_spike_singular_matrix_is_a_recorded_fallback(name) -> None:
    # Both crashed with "LinAlgError: SVD did not converge" in their negbin_glm rung.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = load_model(name).fit(spike_panel())
        check_usable(fitted.forecast(6), 18)
    diag = fitted.diagnostics()
    assert (diag["fallback"] != "none").all()
    assert diag["reason"].str.contains("LinAlgError").any()


def test_negbin_overflow_on_a_short_window_is_a_recorded_fallback() -> None:
    p = panel({"sughd": OVERFLOW_SERIES, "other": np.random.default_rng(3).poisson(2, 34)}, start="2012-01-01")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the spec as it was when this overflow was found (a fitted linear trend)
        fitted = load_model("negbin_glm").set_params(trend="linear").fit(p)
        check_usable(fitted.forecast(6), 12)
    row = fitted.diagnostics().set_index("unique_id").loc["sughd"]
    assert "OverflowError" in row["reason"]
    assert row["fallback"] not in ("none", "penalised")


# -- one series never fails a batch ----------------------------------------------------------


def _poison_panel(with_poison: bool) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    series = {f"s{k}": rng.poisson(3 + k, 48) for k in range(4)}
    if with_poison:
        series["poison"] = np.r_[777, rng.poisson(3, 47)]  # the marker the patched solver reacts to
    return panel(series)


def _raise_on_poison(real):
    def solver(X, y, *args, **kwargs):
        if np.any(np.asarray(y)[..., 0] == 777):
            raise np.linalg.LinAlgError("Singular matrix")
        return real(X, y, *args, **kwargs)
    return solver


def test_batch_raising_for_one_series_only_fails_that_series(monkeypatch) -> None:
    clean = NegBinGLM(trend="linear", seasonality="month").fit(_poison_panel(False))
    monkeypatch.setattr(glm_module, "fit_batch", _raise_on_poison(glm_module.fit_batch))
    mixed = NegBinGLM(trend="linear", seasonality="month").fit(_poison_panel(True))
    diag = mixed.diagnostics().set_index("unique_id")
    # the batch raised; retried alone the poison series raised again, so the per-series solver fitted it
    assert diag.loc["poison", "fallback"] == "none"
    assert diag.loc["poison", "engine"] == "per-series (the batched engine raised LinAlgError)"
    others = diag.drop("poison")
    assert (others["fallback"] == "none").all()
    assert (others["engine"] == "per-series (the batch raised LinAlgError)").all()
    # metamorphic: the other series' forecasts are those without the poison series
    a, b = clean.forecast(3), mixed.forecast(3)
    keep = (b.index["unique_id"] != "poison").to_numpy()
    np.testing.assert_allclose(b.mean[keep], a.mean, rtol=1e-9)


@pytest.mark.parametrize("batched", [False, True])
def test_per_series_solver_error_falls_back_for_that_series_only(monkeypatch, batched) -> None:
    monkeypatch.setattr(glm_module, "fit_negbin", _raise_on_poison(glm_module.fit_negbin))
    if batched:  # both engines raise for the poison series
        monkeypatch.setattr(glm_module, "fit_batch", _raise_on_poison(glm_module.fit_batch))
    with batched_engine(batched):
        clean = NegBinGLM().fit(_poison_panel(False))
        mixed = NegBinGLM().fit(_poison_panel(True))
    diag = mixed.diagnostics().set_index("unique_id")
    assert diag.loc["poison", "fallback"] == "poisson_glm"
    assert "negbin_glm: LinAlgError" in diag.loc["poison", "reason"]
    assert (diag.drop("poison")["fallback"] == "none").all()
    a, b = clean.forecast(3), mixed.forecast(3)
    np.testing.assert_allclose(b.mean[(b.index["unique_id"] != "poison").to_numpy()], a.mean, rtol=1e-9)


def test_user_errors_and_interrupts_are_not_swallowed(monkeypatch) -> None:
    p = _poison_panel(False)
    for exc in (ConfigError("bad setting"), KeyboardInterrupt()):
        def boom(self, s, exc=exc):
            raise exc
        monkeypatch.setattr(Climatology, "_fit_series", boom)
        with batched_engine(False), pytest.raises(type(exc)):
            Climatology().fit(p)


# -- unusable forecasts ----------------------------------------------------------------------


def test_non_finite_forecast_moves_down_the_ladder(monkeypatch) -> None:
    p = _poison_panel(True)
    real = NegBinGLM._forecast_many

    def nan_for_poison(self, fits, series, h, future, seed):
        out = real(self, fits, series, h, future, seed)
        return [SeriesForecast("negbin", mu=np.full(h, np.nan), alpha=sf.alpha) if s.uid == "poison" else sf
                for s, sf in zip(series, out)]

    monkeypatch.setattr(NegBinGLM, "_forecast_many", nan_for_poison)
    fitted = NegBinGLM().fit(p)
    fc = fitted.forecast(4)
    check_usable(fc, 20)
    diag = fitted.diagnostics().set_index("unique_id")
    assert diag.loc["poison", "fallback"] == "poisson_glm"  # penalised NB also gives NaN: next rung
    assert diag.loc["poison", "model_used"] == "poisson_glm"
    assert "forecast: negbin_glm: non-finite forecast mu" in diag.loc["poison", "reason"]
    assert (diag.drop("poison")["fallback"] == "none").all()
    # reference: the ladder's Poisson rung (NB hyperparameters, ridge PENALTY_FALLBACK) on that series alone
    alone = PoissonGLM(**{**NegBinGLM().get_params(), "penalty": PENALTY_FALLBACK}).fit(
        p[p["unique_id"] == "poison"])
    rows = (fc.index["unique_id"] == "poison").to_numpy()
    np.testing.assert_allclose(fc.mean[rows], alone.forecast(4).mean, rtol=1e-12)


def test_forecast_raising_for_the_group_only_fails_the_offending_series(monkeypatch) -> None:
    p = _poison_panel(True)
    clean = Climatology().fit(p).forecast(2)
    real = Climatology._forecast_series

    def raise_for_poison(self, fit, s, h, future, rng):
        if s.uid == "poison":
            raise FloatingPointError("overflow encountered in exp")
        return real(self, fit, s, h, future, rng)

    monkeypatch.setattr(Climatology, "_forecast_series", raise_for_poison)
    fitted = Climatology().fit(p)
    fc = fitted.forecast(2)
    diag = fitted.diagnostics().set_index("unique_id")
    # the last rung: a Poisson at the series' long-run rate, no longer a certain zero (issue 12)
    assert diag.loc["poison", "fallback"] == "long_run"
    assert "FloatingPointError: overflow encountered in exp" in diag.loc["poison", "reason"]
    rows = (fc.index["unique_id"] == "poison").to_numpy()
    assert np.all(fc.mean[rows] > 0)
    np.testing.assert_array_equal(fc.mean[~rows], clean.mean[~rows])


@pytest.mark.parametrize("sf, why", [
    (SeriesForecast("poisson", mu=np.array([1.0, np.inf])), "non-finite forecast mu"),
    (SeriesForecast("negbin", mu=np.array([1.0]), alpha=np.array([-0.1])), "forecast alpha out of range"),
    (SeriesForecast("zi", mu=np.array([1.0]), pi=np.array([1.5])), "forecast pi out of range"),
    (SeriesForecast("pmf", pmf=np.array([[0.5, np.nan]])), "non-finite forecast pmf"),
    (SeriesForecast("pmf", pmf=np.array([[0.7, 0.7]])), "forecast pmf out of range"),
    (SeriesForecast("samples", paths=np.array([[1, -1]])), "negative simulated counts"),
    (SeriesForecast("poisson", mu=np.array([0.0, 3.0])), ""),
])
def test_bad_forecast_names_the_problem(sf, why) -> None:
    assert bad_forecast(sf) == why


# -- the mean cap holds for every model ----------------------------------------------------------


class _Runaway(ModelSpec):
    """Test model whose forecast means run away for series named 'run*' (family set by `paths`)."""

    name = ""  # not registered
    draws = False
    params = ()
    fallbacks = (Zero,)

    def _fit_series(self, s):
        return SeriesFit(self, n_obs=len(s.y))

    def _forecast_series(self, fit, s, h, future, rng):
        mu = np.full(h, 1e12 if s.uid.startswith("run") else 2.0)
        if s.uid.endswith("paths"):
            return SeriesForecast("samples", paths=np.tile(mu.astype(np.int64)[:, None], (1, 5)))
        return SeriesForecast("poisson", mu=mu)


@pytest.mark.parametrize("uid", ["run", "run_paths"])
def test_mean_cap_applies_to_any_model_and_is_recorded(uid) -> None:
    p = panel({uid: [0, 3, 1, 7, 2], "calm": [1, 2, 3, 4, 5]})
    fitted = _Runaway().fit(p)
    fc = fitted.forecast(3)
    diag = fitted.diagnostics().set_index("unique_id")
    assert bool(diag.loc[uid, "mean_capped"]) and not bool(diag.loc["calm", "mean_capped"])
    rows = (fc.index["unique_id"] == uid).to_numpy()
    np.testing.assert_array_equal(fc.mean[rows], MEAN_CAP_FACTOR * 7)  # 1e4 x the largest count
    np.testing.assert_array_equal(fc.mean[~rows], 2.0)


def test_capping_inside_a_model_is_recorded() -> None:
    with recording_caps() as seen, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = capped_mean(np.array([1.0, 5e5, np.nan]), 1e4, "busy")
        capped_mean(np.array([1.0, 2.0]), 1e4, "calm")
    assert seen == {"busy"}
    np.testing.assert_array_equal(out[:2], [1.0, 1e4])
    assert np.isnan(out[2])  # a NaN mean is not hidden as a cap: the forecast check replaces it


def test_ingarch_simulated_means_are_capped(monkeypatch) -> None:
    # An explosive fitted state (lag coefficient 3) makes every simulated path run away.
    rng = np.random.default_rng(5)
    p = panel({"a": rng.poisson(4, 60)})
    spec = load_model("ingarch")
    fitted = spec.fit(p)
    fit = fitted.fits()["a"]
    if fit.spec.name != "ingarch":
        pytest.skip("ingarch fell back on this draw")
    fit.state["beta"] = fit.state["beta"].copy()
    fit.state["beta"][-1] = 3.0  # the lag-1 coefficient (last design column)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = fitted.forecast(4)
    assert bool(fitted.diagnostics()["mean_capped"].iloc[0])
    assert np.all(fc.mean <= MEAN_CAP_FACTOR * p["y"].max())


# -- empirical support cap ---------------------------------------------------------------------


def test_empirical_support_is_capped_with_the_rest_as_tail() -> None:
    y = np.r_[np.zeros(30, dtype=int), 3, 5, K_CAP_MAX + 5, 2 * K_CAP_MAX]
    fc = Empirical(window=36).fit(panel({"a": y})).forecast(2)
    assert fc.K == K_CAP_MAX
    np.testing.assert_allclose(fc.tail, 2 / 34, rtol=1e-12)
    brute = {k: np.mean(y == k) for k in (0, 3, 5)}
    for k, v in brute.items():
        np.testing.assert_allclose(fc.pmf[:, k], v, rtol=1e-12)
    assert fc.pmf.sum(axis=1) == pytest.approx(32 / 34)


def test_empirical_below_the_cap_is_unchanged() -> None:
    y = np.array([0, 1, 1, 4, 0, 2])
    fc = Empirical().fit(panel({"a": y})).forecast(1)
    np.testing.assert_allclose(fc.pmf[0], np.bincount(y) / len(y), rtol=1e-12)
    assert fc.tail[0] <= 1e-12  # only rounding of 1 - row sum


def test_arima_back_transformed_location_is_capped(monkeypatch) -> None:
    from forecast.models import arima as arima_module

    y = np.random.default_rng(6).poisson(3, 40)
    fitted = REGISTRY["arima"](order=(1, 0, 0), seasonal=False).fit(panel({"a": y}))
    if fitted.fits()["a"].spec.name != "arima":
        pytest.skip("arima fell back on this draw")
    # a runaway log-scale forecast: exp(50) - 1 counts
    monkeypatch.setattr(arima_module, "z_forecast", lambda fit, y, h, *a, **k: (np.full(h, 50.0), np.full(h, 0.1)))
    fc = fitted.forecast(2)
    assert bool(fitted.diagnostics()["mean_capped"].iloc[0])
    cap = MEAN_CAP_FACTOR * y.max()
    assert np.all(fc.quantile(0.5) <= cap)  # the back-transformed median sits at the cap, not beyond
    check_usable(fc, 2)


def test_screen_and_cap_many_equal_the_per_series_checks() -> None:
    from forecast.models.guard import cap_forecast, cap_many, screen

    rng = np.random.default_rng(7)
    sfs = [SeriesForecast("negbin", mu=rng.choice([1.0, 2e6, np.nan, -1.0], 3), alpha=np.full(3, 0.5))
           for _ in range(40)] + [SeriesForecast("samples", paths=rng.integers(0, 3_000_000, (3, 4)))]
    assert screen(sfs) == [bad_forecast(sf) for sf in sfs]
    caps = rng.choice([10.0, 1e7], len(sfs))
    got, flags = cap_many(sfs, caps)
    for sf, g, f, c in zip(sfs, got, flags, caps):
        ref, hit = cap_forecast(sf, c)
        assert f == hit
        np.testing.assert_array_equal(g.mu if g.mu is not None else g.paths, ref.mu if ref.mu is not None
                                      else ref.paths)
