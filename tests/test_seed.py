"""The seed belongs to the run: not a model parameter, one argument of forecast/backtest, every
stream derived from it in forecast.models.streams; results are the same as when it was a
spec parameter (reference numbers recorded before the change, same seeds)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import forecast
from forecast.models.base import warm_starts
from forecast import ConfigError, ForecastWarning
from forecast.backtesting import backtest as backtest_specs
from forecast.combine import Ensemble, load_model
from forecast.models import MODEL_CLASSES, REGISTRY, Climatology, ModelSpec, NegBinGLM
from forecast.models.base import PanelData
from forecast.models.params import Param, check_params, positive
from forecast.models.streams import TOTALS_STREAM, series_rng, totals_rng
from forecast.specs import save_model, spec_from_dict, to_toml
from tests.test_backtest import sim_panel  # the panel the reference numbers below use

MOVED = "seed is no longer a model parameter"


P = sim_panel()


@pytest.mark.parametrize("cls", [*MODEL_CLASSES, Ensemble], ids=lambda c: c.name)
def test_seed_is_not_a_parameter_of_any_spec(cls):
    assert "seed" not in {p.name for p in cls.params}


def test_seed_given_to_a_spec_is_ignored_with_a_warning():
    with pytest.warns(ForecastWarning, match=MOVED):
        spec = NegBinGLM(lags=(1,), seed=3)
    assert spec == NegBinGLM(lags=(1,))
    with pytest.warns(ForecastWarning, match=MOVED):
        assert spec.set_params(seed=4, n_paths=10) is spec
    assert spec.n_paths == 10 and "seed" not in spec.get_params()


def test_old_spec_files_with_a_seed_keep_loading(tmp_path):
    with pytest.warns(ForecastWarning, match=MOVED):
        assert spec_from_dict({"model": "climatology", "window": 9, "seed": 3}) == Climatology(window=9)
    f = tmp_path / "old.toml"
    f.write_text('model = "negbin_glm"\nlags = [1]\nseed = 0\n')
    with pytest.warns(ForecastWarning, match=MOVED):
        assert load_model(f) == NegBinGLM(lags=(1,))


def test_bundled_spec_files_carry_no_seed():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecastWarning)
        for name in forecast.specs.available_models():
            assert "seed" not in to_toml(load_model(name))


def test_forecast_takes_the_seed():
    fitted = NegBinGLM(lags=(1,), n_paths=200).fit(P)
    a, b, c = (fitted.forecast(3, seed=s).mean for s in (1, 1, 2))  # h >= 2: means of simulated paths
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ConfigError, match="seed must be an int >= 0. Got -1"):
        fitted.forecast(3, seed=-1)


def test_series_streams_and_the_totals_stream_are_the_old_streams():
    import zlib

    day = int(np.datetime64("2020-03-01", "D").astype(np.int64))
    np.testing.assert_array_equal(series_rng(4, "x", pd.Timestamp("2020-03-01")).random(5),
                                  np.random.default_rng([4, zlib.crc32(b"x"), day]).random(5))
    # the run's totals used default_rng([seed, 7919]) before they had a named stream
    assert TOTALS_STREAM == 7919
    np.testing.assert_array_equal(totals_rng(5).random(5), np.random.default_rng([5, 7919]).random(5))


# Per model, (sum of RPS, sum of forecast means) over a 3-origin, horizon-3 backtest of P. Recorded
# with the code before the seed left the specs (croston: unchanged since); the simulating models were
# re-recorded when their multi-step pmf became the average of each path's conditional law instead of
# the paths' histogram (the random draws did not change, only the pmf built from them).
REFERENCE = {("negbin_glm_ar", 0): (48.52699831738043, 75.80472411953991),
             ("ingarch", 0): (41.297339790746214, 92.98355418803153),
             ("negbin_glm_ar", 11): (48.49977937498531, 75.90375168660725),
             ("ingarch", 11): (41.29236329321234, 93.05861105813449),
             ("croston", 11): (45.42209584702744, 142.86605208486847)}


def _as_recorded(name: str):
    """The bundled spec as it was when REFERENCE was recorded (negbin_glm_ar then had a linear trend)."""
    spec = load_model(name)
    if name == "negbin_glm_ar":
        spec.set_params(trend="linear")
    return spec


@pytest.mark.parametrize("seed", [0, 11])
def test_backtest_scores_are_bit_identical_to_before(seed):
    names = sorted({n for n, s in REFERENCE if s == seed})
    specs = {n: _as_recorded(n) for n in names}
    with warm_starts(False):  # (cold refits, as when REFERENCE was recorded)
        res = forecast.backtest(P, specs, horizon=3, n_origins=3, seed=seed, progress=False)
    warm = forecast.backtest(P, specs, horizon=3, n_origins=3, seed=seed, progress=False)
    for name in names:
        rows = (res.forecasts["model"] == name).to_numpy()
        got = (res.point_scores.loc[rows, "rps"].sum(), res.forecasts.loc[rows, "mean"].sum())
        np.testing.assert_allclose(got, REFERENCE[(name, seed)], rtol=1e-12, atol=0)
        # refits started from the previous origin's estimates reach the same optimum to the
        # solver's tolerance, so the sums may move in the 10th digit, no more
        got = (warm.point_scores.loc[rows, "rps"].sum(), warm.forecasts.loc[rows, "mean"].sum())
        np.testing.assert_allclose(got, REFERENCE[(name, seed)], rtol=1e-10, atol=0)


def test_score_weighted_ensemble_is_identical_to_before():
    spec = Ensemble(members=(_as_recorded("negbin_glm_ar"), load_model("climatology").set_params(prior="none")),
                    weights="score")  # (prior="none": the estimator the reference was recorded with)
    with warnings.catch_warnings(), warm_starts(False):  # (cold refits, as when recorded)
        warnings.simplefilter("ignore", RuntimeWarning)  # 1/RPS of the all-zero series
        fitted = spec.fit(P, seed=5)
    w = fitted.weights().iloc[:, 1:].to_numpy()
    np.testing.assert_allclose(w[:, 0], [0.480264716515, 0.511295329834, 0.343539711589, 0.569638720266, 0.5],
                               atol=1e-11)
    # (re-recorded with the path-mixture pmf; the weights above are unchanged since the seed moved)
    assert fitted.forecast(3, seed=5).mean.sum() == pytest.approx(47.20999647902414, rel=1e-12)
    with warnings.catch_warnings():  # warm-started refits in the weights' backtest: the same to 1e-10
        warnings.simplefilter("ignore", RuntimeWarning)
        warm = spec.fit(P, seed=5)
    assert warm.forecast(3, seed=5).mean.sum() == pytest.approx(47.20999647902414, rel=1e-10)


# -- the ensemble lives above the backtester; spec names are resolved once --------------------

def test_ensemble_file_members_are_spec_objects_resolved_at_load(tmp_path):
    spec = load_model("ensemble")
    assert isinstance(spec, Ensemble) and not hasattr(forecast.models, "Ensemble")
    assert {k: type(m) for k, m in spec.members.items()} == {"climatology": Climatology, "negbin_glm": NegBinGLM}
    path = save_model(spec, tmp_path / "pool.toml")
    assert 'members = ["climatology", "negbin_glm"]' in path.read_text()
    assert load_model(path) == spec


def test_specs_alone_explains_how_to_load_an_ensemble(monkeypatch):
    import forecast.specs as specs

    monkeypatch.setattr(specs, "_EXTRA_TYPES", {})
    with pytest.raises(ConfigError, match="combination of models.*forecast.load_model"):
        specs.spec_from_dict({"model": "ensemble"})


def test_backtesting_takes_spec_objects_the_public_backtest_names_too():
    with pytest.raises(ConfigError, match="not a model spec.*forecast.load_model"):
        backtest_specs(P, ["climatology"], horizon=1, n_origins=1)
    by_name = forecast.backtest(P, ["climatology"], horizon=1, n_origins=2)
    by_spec = backtest_specs(P, [Climatology()], horizon=1, n_origins=2)
    pd.testing.assert_frame_equal(by_name.point_scores, by_spec.point_scores)


# -- the model table, ladders, params, public fit_data / update_data ---------------------------

def test_one_table_and_ladders_of_spec_classes():
    assert REGISTRY == {cls.name: cls for cls in MODEL_CLASSES} and "ensemble" not in REGISTRY
    for cls in MODEL_CLASSES:
        assert all(isinstance(f, type) and f in MODEL_CLASSES for f in cls.fallbacks), cls.name
        rungs = cls()._rungs()  # every ladder ends at the model that cannot fail
        assert rungs[0][0] == "none" and rungs[-1][1].name == "zero", cls.name


def test_param_checks_use_the_house_message():
    with pytest.raises(ConfigError) as err:
        check_params("NegBinGLM", (Param("alpha", 1.0, "a float > 0", positive),), {"alpha": -1})
    assert str(err.value) == "The 'alpha' parameter of NegBinGLM must be a float > 0. Got -1 instead."


def test_fit_data_and_update_data_are_public():
    spec = NegBinGLM()
    early = P[P["ds"] <= "2021-06-01"]
    via_data = spec.fit_data(PanelData.from_frame(early, ())).update_data(PanelData.from_frame(P, ()))
    via_frame = spec.fit(early).update(P)
    np.testing.assert_array_equal(via_data.forecast(2).mean, via_frame.forecast(2).mean)
    assert issubclass(type(spec), ModelSpec)
