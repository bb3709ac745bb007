"""The backtest's result frames pinned: columns, their order and dtypes, and values, on a small panel
with missing periods, series that start late and a model with a covariate.

The reference (``tests/data/backtest_pinned.csv.gz``) was written by :func:`write_reference` with
the backtest as it was before its plumbing was rewritten for speed (the forecast guards checked on
stacked means, blocks handed over as columns, series cut without per-series checks): run this file
as a script to rewrite it, only when a change of the numbers is intended. Text, dates, integers and
flags must match exactly; floats to 1e-7 relative (the GLM solvers stop at their tolerance, so a
change of solver start or BLAS moves the last digits; a row or column out of place moves far more).
Also here: the forecast's stacked path equals the per-series guard path it replaces, and a block's
frames equal the columns the collector reads.
"""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import forecast

REFERENCE = Path(__file__).parent / "data" / "backtest_pinned.csv.gz"
SETTINGS = dict(horizon=3, n_origins=5, refit_every=2, seed=11, keep_pmf=False, progress=False)

FORECASTS = [("unique_id", "category"), ("ds", "datetime64[ns]"), ("cutoff", "datetime64[ns]"), ("h", "int32"),
             ("model", "category"), ("y", "int64"), ("mean", "float64")] + \
    [(f"{s}-{lv}", "int32") for lv in (50, 80, 95) for s in ("lo", "hi")] + \
    [("p_ge_1", "float64"), ("p_ge_5", "float64")]
SCORES = [(c, "float64") for c in ("log", "log_floored", "impossible", "rps", "dss", "brier_ge_1", "brier_ge_5",
                                   "coverage_50", "interval_50", "mass_50", "coverage_80", "interval_80", "mass_80",
                                   "coverage_95", "interval_95", "mass_95", "abs_error", "sq_error", "bias", "pit_lo",
                                   "pit_hi", "mase")]
DIAGNOSTICS = [("model", "str"), ("cutoff", "datetime64[ns]"), ("unique_id", "str"), ("fallback", "str"),
               ("reason", "str"), ("model_used", "str"), ("converged", "bool"), ("engine", "str")]


def _panel() -> pd.DataFrame:
    """Six monthly series, 2019-2022: two start late (one after the first origins), counts missing
    at random periods of two others, and a covariate ``temp``."""
    rng = np.random.default_rng(7)
    ds = pd.date_range("2019-01-01", periods=48, freq="MS")
    rows = []
    for i in range(6):
        level = [0.6, 3.0, 8.0, 1.5, 20.0, 4.0][i]
        temp = np.sin(np.arange(48) * 2 * np.pi / 12) + rng.normal(0, 0.3, 48)
        y = rng.poisson(level * np.exp(0.3 * temp)).astype(float)
        start = {2: 30, 5: 44}.get(i, 0)  # late starts (series 5 joins at the last origins)
        if i in (1, 3):
            y[rng.choice(np.arange(start + 2, 48), 5, replace=False)] = np.nan  # missing counts
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds[start:], "y": y[start:], "temp": temp[start:]}))
    return pd.concat(rows, ignore_index=True)


def _models() -> dict:
    glm_x = forecast.load_model("poisson_glm").set_params(exog=("temp",))
    return {"climatology": forecast.load_model("climatology"), "seasonal_naive": forecast.load_model("seasonal_naive"),
            "negbin_glm": forecast.load_model("negbin_glm"), "poisson_x": glm_x}


def _run(**kw) -> forecast.BacktestResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return forecast.backtest(_panel(), _models(), **{**SETTINGS, **kw})


def _long(res) -> pd.DataFrame:
    """The three frames as one table of text (exact) and numbers, keyed by frame, row and column."""
    parts = []
    for name, frame in (("forecasts", res.forecasts), ("scores", res.point_scores), ("diagnostics", res.diagnostics)):
        for col in frame.columns:
            v = frame[col]
            text = v.dt.strftime("%Y-%m-%d") if v.dtype.kind == "M" else v.astype(object).where(v.notna(), None)
            num = pd.to_numeric(v, errors="coerce") if v.dtype.kind in "biuf" else np.nan
            parts.append(pd.DataFrame({"frame": name, "row": np.arange(len(frame)), "column": col,
                                       "text": text.astype(object).map(_as_str).to_numpy(),
                                       "value": np.asarray(num, dtype=float) if v.dtype.kind in "biuf" else np.nan}))
    return pd.concat(parts, ignore_index=True)


def _as_str(x):
    return None if x is None else str(x)


def write_reference() -> None:  # pragma: no cover (run by hand; see the module docstring)
    REFERENCE.parent.mkdir(exist_ok=True)
    _long(_run()).to_csv(REFERENCE, index=False, float_format="%.17g")


@pytest.fixture(scope="module")
def result():
    return _run()


def test_columns_and_dtypes_are_pinned(result):
    for frame, want in ((result.forecasts, FORECASTS), (result.point_scores, SCORES),
                        (result.diagnostics, DIAGNOSTICS)):
        assert [(c, str(t)) for c, t in zip(frame.columns, frame.dtypes)] == want
    for c in ("unique_id", "model"):
        cats = result.forecasts[c].cat.categories
        assert cats.dtype == "str" and cats.is_monotonic_increasing


def test_values_are_pinned(result):
    got, want = _long(result), pd.read_csv(REFERENCE, keep_default_na=False, na_values=[""],
                                           dtype={"text": object, "column": object, "frame": object})
    assert len(got) == len(want)
    for key in ("frame", "row", "column"):
        assert (got[key].astype(str).to_numpy() == want[key].astype(str).to_numpy()).all(), key
    floats = np.isfinite(want["value"].to_numpy()) & ~want["column"].isin(["h", "y", "converged"]).to_numpy()
    floats &= ~want["column"].str.startswith(("lo-", "hi-")).to_numpy()
    text_g = got["text"].where(got["text"].notna(), "").to_numpy()[~floats]
    text_w = want["text"].where(want["text"].notna(), "").to_numpy()[~floats]
    assert (text_g == text_w).all(), got[~floats][text_g != text_w].head()
    np.testing.assert_allclose(got["value"].to_numpy()[floats], want["value"].to_numpy()[floats], rtol=1e-7, atol=1e-12)
    # the panel exercised what it should: late series, unobserved targets, a covariate model
    fc = result.forecasts
    assert fc.groupby("unique_id", observed=True)["cutoff"].min().nunique() > 1
    assert fc["model"].nunique() == 4 and result.settings["covariates_known_ahead"] == {"poisson_x": ["temp"]}


def test_stacked_forecast_equals_the_per_series_guards(monkeypatch):
    from forecast.models import fitted as fm

    panel = _panel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("negbin_glm", "climatology", "seasonal_naive"):
            f = forecast.load_model(name).fit(panel)
            fast, d_fast = f.forecast(4, seed=3), f.diagnostics()
            with monkeypatch.context() as m:
                m.setattr(fm, "stack_plain", lambda sfs, h: None)  # the guards' per-series path
                slow, d_slow = f.forecast(4, seed=3), f.diagnostics()
            pd.testing.assert_frame_equal(fast.index, slow.index, check_exact=True)
            np.testing.assert_array_equal(fast.pmf, slow.pmf)
            pd.testing.assert_frame_equal(fast.to_frame(), slow.to_frame(), check_exact=True)
            pd.testing.assert_frame_equal(d_fast, d_slow, check_exact=True)


def test_a_series_needing_a_guard_takes_the_per_series_path():
    from forecast.models import _plainfc
    from forecast.models.results import SeriesForecast

    sfs = [SeriesForecast("negbin", mu=np.array([1.0, 2.0]), alpha=np.array([0.1, 0.1])),
           SeriesForecast("poisson", mu=np.array([0.5, 3.0]))]
    plain = _plainfc.stack_plain(sfs, 2)
    assert plain.family == ["negbin", "poisson"] and plain.alpha[1].tolist() == [0.0, 0.0]
    caps, floors = np.array([100.0, 100.0]), np.array([0.1, 0.1])
    assert _plainfc.unguarded(plain, caps, floors)
    assert not _plainfc.unguarded(plain, np.array([100.0, 2.5]), floors)  # a mean above its cap
    assert not _plainfc.unguarded(plain, caps, np.array([0.1, 0.6]))  # a mean below its floor
    assert _plainfc.unguarded(plain, caps, np.array([0.1, 0.0]))  # (no floor where it does not apply)
    plain.mu[0, 1] = np.nan
    assert not _plainfc.unguarded(plain, caps, floors)
    assert _plainfc.stack_plain(sfs + ["a reason"], 2) is None
    assert _plainfc.stack_plain([SeriesForecast("pmf", pmf=np.ones((2, 1)))], 2) is None
    assert _plainfc.stack_plain([SeriesForecast("poisson", mu=np.array([1.0, 2.0, 3.0]))], 2) is None


def test_a_block_reads_as_the_frames_it_replaces_and_pickles():
    from forecast._backtest_block import Block

    cols = {"unique_id": pd.array(["a", "b", None], dtype="str"), "x": np.arange(3.0),
            "when": np.full(3, np.datetime64("2020-01-01", "ns"))}
    b = Block(pd.Timestamp("2020-01-01"), None, forecasts=(cols, 3), scores=({"s": np.ones(3)}, 3),
              diagnostics=({"m": pd.array(["m"] * 2, dtype="str")}, 2))
    assert b.columns("forecasts")[1] == 3 and "forecasts" in b and b.get("scores") is not None
    b2 = pickle.loads(pickle.dumps(b))
    for kind in ("forecasts", "scores", "diagnostics"):
        pd.testing.assert_frame_equal(b2[kind], pd.DataFrame(b.frames[kind][0]), check_exact=True)
    assert b2.columns("forecasts") is None  # (once built, the frame is what counts)
    assert Block(None, None, f=({"o": np.array(["x"], dtype=object)}, 1)).columns("f") is None  # object: the frame


def test_text_codes_follow_values_that_change_between_blocks():
    from forecast._backtest_collect import Collector

    cut = pd.Timestamp("2020-01-01")
    col = Collector([("m", cut)], False)
    for i, ids in enumerate((["a", "b"], ["c", "d"], ["c", "d"], ["d", "c"])):  # same sizes, other values
        col.add("m", dict(cutoff=cut, forecasts=pd.DataFrame({"unique_id": pd.array(ids, dtype="str")}),
                          scores=pd.DataFrame({"s": [0.0, 1.0]}), diagnostics=pd.DataFrame({"x": [1, 2]}), pmf=None),
                (i, 0))
    fc = col.result()[0]
    assert fc["unique_id"].astype(str).tolist() == ["a", "b", "c", "d", "c", "d", "d", "c"]


def test_the_result_is_built_on_small_pages_and_numpy_s_setting_is_restored(monkeypatch):
    from forecast import _backtest_collect as bc

    get = np._core.multiarray._get_madvise_hugepage
    before, seen = get(), []
    real = bc._Frame.build
    monkeypatch.setattr(bc._Frame, "build", lambda self: seen.append(get()) or real(self))
    cut = pd.Timestamp("2020-01-01")
    col = bc.Collector([("m", cut)], False)
    col.add("m", dict(cutoff=cut, forecasts=pd.DataFrame({"x": [1.0]}), scores=pd.DataFrame({"s": [0.0]}),
                      diagnostics=pd.DataFrame({"d": [1]}), pmf=None), (0, 0))
    col.result()
    assert seen == [False, False, False] and get() == before


if __name__ == "__main__":  # pragma: no cover
    write_reference()
