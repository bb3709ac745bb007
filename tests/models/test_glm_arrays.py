"""The array plumbing under the batched GLM: the panel split, per-series count summaries,
batched designs kept as a shared block plus own columns, and the distinct calendar products.

References are brute force: a pandas sort and per-series loops, ``build_design`` per
series, an einsum X'WX, and the solver on the full (S, n, p) stack.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.exceptions import DataValidationError
from forecast.models._glmbatch import fit_batch
from forecast.models._glmstack import _Stacked
from forecast.models.design import DesignSpec, build_design, build_design_batch
from forecast.models.series import PanelData, Series, count_summaries


def _panel(seed: int = 0, S: int = 7, n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2019-01-01", periods=n, freq="MS")
    return pd.DataFrame({"unique_id": np.repeat([f"r{i}" for i in range(S)], n), "ds": np.tile(ds, S),
                         "y": rng.poisson(3.0, S * n), "x": rng.normal(size=S * n)})


def _same_split(a: PanelData, b: PanelData) -> None:
    assert [s.uid for s in a.series] == [s.uid for s in b.series]
    for s, t in zip(a.series, b.series):
        assert np.array_equal(s.y, t.y) and s.y.dtype == t.y.dtype == np.int64
        assert np.array_equal(s.ds_values, t.ds_values)
        assert (s.observed is None) == (t.observed is None)
        if s.observed is not None:
            assert np.array_equal(s.observed, t.observed)
        if s.exog is not None:
            pd.testing.assert_frame_equal(s.exog, t.exog)


def test_split_does_not_depend_on_row_order_and_matches_a_per_series_split():
    panel = _panel()
    panel.loc[5, "y"] = np.nan  # a missing count
    panel = panel.drop(index=[40, 41]).reset_index(drop=True)  # two absent periods of series r1
    shuffled = panel.sample(frac=1.0, random_state=3).reset_index(drop=True)
    a = PanelData.from_frame(panel, ("x",))
    b = PanelData.from_frame(shuffled, ("x",))
    _same_split(a, b)
    # brute force: one frame per series
    for s in a.series:
        one = panel[panel["unique_id"] == s.uid].sort_values("ds")
        full = pd.date_range(one["ds"].iloc[0], one["ds"].iloc[-1], freq="MS")
        want = one.set_index("ds")["y"].reindex(full)
        assert np.array_equal(s.ds_values, full.to_numpy(dtype="datetime64[ns]"))
        assert np.array_equal(s.y, want.fillna(0).to_numpy(dtype=np.int64))
        assert np.array_equal(s.observed_mask(), want.notna().to_numpy())
        assert np.array_equal(s.exog["x"].to_numpy(),
                              one.set_index("ds")["x"].reindex(full).ffill().to_numpy())
    assert a.series[1].observed is not None and a.series[0].observed is not None
    assert all(s.observed is None for s in a.series[2:])


def test_split_orders_ids_as_pandas_sorts_them():
    panel = _panel(S=3, n=4)
    panel["unique_id"] = np.repeat([10, 9, 100], 4)
    data = PanelData.from_frame(panel.iloc[::-1])
    assert [s.uid for s in data.series] == ["9", "10", "100"]  # numeric order, as text afterwards
    panel["unique_id"] = pd.Series(np.repeat(["b", 7, "a"], 4), dtype=object)  # mixed types
    want = panel.sort_values(["unique_id", "ds"], kind="stable")["unique_id"].astype(str).unique().tolist()
    assert [s.uid for s in PanelData.from_frame(panel.iloc[::-1]).series] == want == ["7", "a", "b"]


def test_split_errors_name_rows_of_the_sorted_panel_and_the_series():
    panel = _panel(S=3, n=4)
    panel.loc[9, "y"] = -1  # series r2, its second period
    with pytest.raises(DataValidationError) as err:
        PanelData.from_frame(panel.iloc[::-1].reset_index(drop=True))
    (problem,) = err.value.problems
    assert list(problem.rows) == [10] and list(problem.provinces) == ["r2"]
    dup = pd.concat([panel, panel.iloc[[4]]], ignore_index=True)
    with pytest.raises(DataValidationError, match="the same period twice"):
        PanelData.from_frame(dup)


def test_count_summaries_equal_per_series_max_and_mean():
    rng = np.random.default_rng(5)
    freq = "MS"
    series = [Series(f"s{i}", pd.date_range("2020-01-01", periods=n, freq=freq), rng.poisson(4, n), freq)
              for i, n in enumerate([5, 1, 0, 13, 2])]
    series.append(Series("gap", pd.date_range("2020-01-01", periods=4, freq=freq), np.array([3, 0, 9, 1]), freq,
                         observed=np.array([True, False, True, True])))
    top, mean = count_summaries(series)
    assert top.tolist() == [int(s.y.max(initial=0)) for s in series]
    assert mean.tolist() == [float(np.mean(s.y)) if len(s.y) else 0.0 for s in series]  # exactly
    assert count_summaries([])[0].shape == (0,)


@pytest.mark.parametrize("params", [
    {"trend": "linear", "seasonality": "month", "lags": (1, 2), "exog": ("x",)},
    {"trend": "none", "seasonality": "fourier", "fourier_k": 2, "lags": (),
     "interventions": ({"name": "iv", "date": "2020-03-01", "kind": "step"},)},
])
def test_batched_design_rows_equal_the_per_series_design(params):
    data = PanelData.from_frame(_panel(1), ("x",))
    spec = DesignSpec.from_params({**dict(trend="none", damping=0.0, seasonality="month", fourier_k=1, lags=(),
                                          exog=(), interventions=(), exposure=None, neighbour_lags=(),
                                          neighbour_weights="first_order", neighbour_decay=1.0), **params})
    d = build_design_batch(spec, data.series)
    X = d.X
    for s, series in enumerate(data.series):
        one = build_design(spec, series)
        assert np.array_equal(X[s], one.X) and np.array_equal(d.y[s], one.y)
        assert np.array_equal(d.keep[s], one.keep)
    own = np.zeros(X.shape[2], dtype=bool)
    own[list(d.lag_cols)] = True
    own[[k for k, name in enumerate(d.names) if name == "x"]] = True
    assert np.array_equal(d.shared, ~own)  # lags and covariates are a series' own columns
    assert np.array_equal(d.D, X[0][:, d.shared]) and np.array_equal(d.Z, X[:, :, ~d.shared])


@pytest.mark.parametrize("nb", [False, True])
def test_solver_on_a_stacked_design_equals_the_solver_on_the_full_stack(nb):
    data = PanelData.from_frame(_panel(2, S=12, n=48), ("x",))
    spec = DesignSpec.from_params(dict(trend="linear", damping=0.0, seasonality="month", fourier_k=1, lags=(1,),
                                       exog=("x",), interventions=(), exposure=None, neighbour_lags=(),
                                       neighbour_weights="first_order", neighbour_decay=1.0))
    d = build_design_batch(spec, data.series)
    a = fit_batch(d, d.y, d.offset, nb=nb)
    b = fit_batch(d.X, d.y, d.offset, nb=nb)
    assert a.ok.sum() >= 10 and np.array_equal(a.ok, b.ok)
    assert np.allclose(a.coef[a.ok], b.coef[b.ok], rtol=1e-10, atol=1e-12)
    assert np.allclose(a.std_error[a.ok], b.std_error[b.ok], rtol=1e-10)
    assert np.allclose(a.loglik[a.ok], b.loglik[b.ok], rtol=1e-12)
    assert np.array_equal(a.n_iter, b.n_iter)


@pytest.mark.parametrize("kind", ["month", "fourier"])
def test_information_from_distinct_products_equals_brute_force(kind):
    rng = np.random.default_rng(8)
    n, S = 40, 9
    t = np.arange(n)
    if kind == "month":
        D = np.column_stack([np.ones(n), t / 12] + [(t % 12 == k).astype(float) for k in range(1, 12)])
    else:
        D = np.column_stack([np.ones(n)] + [f(2 * np.pi * k * t / 12) for k in (1, 2) for f in (np.sin, np.cos)])
    Z = rng.normal(size=(S, n, 2))
    X = np.concatenate([np.broadcast_to(D, (S, n, D.shape[1])), Z], axis=2)
    w = rng.gamma(2.0, size=(S, n))
    st = _Stacked(D, Z)
    if kind == "month":
        assert st.DD.shape[1] == 26  # 1, t, t², 11 months, 11 months x t, 0 (of 13² = 169)
    want = np.einsum("sni,sn,snj->sij", X, w, X)
    got = st.xtwx(w)
    assert np.allclose(got, want, rtol=1e-13, atol=1e-12 * np.abs(want).max())
    q = D.shape[1]  # the calendar block is symmetric exactly: one product per pair
    assert np.array_equal(got[:, :q, :q], got[:, :q, :q].transpose(0, 2, 1))
    assert np.allclose(st.take(np.array([4, 1])).xtwx(w[[4, 1]]), want[[4, 1]], rtol=1e-13,
                       atol=1e-12 * np.abs(want).max())


def test_nullable_integer_counts_missing_values_and_a_negative_one():
    panel = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=4, freq="MS"),
                          "y": pd.array([1, None, 3, 2], dtype="Int64")})
    (s,) = PanelData.from_frame(panel).series
    assert s.y.tolist() == [1, 0, 3, 2] and s.observed.tolist() == [True, False, True, True]
    panel["y"] = pd.array([1, None, 3, -2], dtype="Int64")  # (the missing count is not the bad one)
    with pytest.raises(DataValidationError) as err:
        PanelData.from_frame(panel)
    assert list(err.value.problems[0].rows) == [4]


@pytest.mark.parametrize("nb", [False, True])
def test_objective_in_blocks_and_series_sorted_by_count_change_no_fit(nb, monkeypatch):
    """Blocks of series (and NB's order by largest count) are internal: each series gets the
    per-series solver's fit, in the caller's order."""
    from forecast.models import _glmbatch
    from forecast.models._glmfit import fit_negbin, fit_poisson

    data = PanelData.from_frame(_panel(4, S=40, n=40), ())
    spec = DesignSpec.from_params(dict(trend="linear", seasonality="month", lags=(1,)))
    d = build_design_batch(spec, data.series)
    y = d.y.astype(np.int64)
    y[::3] *= 7  # largest counts out of order, so sorting by them moves series about
    whole = fit_batch(d, y, d.offset, nb=nb)
    monkeypatch.setattr(_glmbatch, "BLOCK", 6)
    blocks = fit_batch(d, y, d.offset, nb=nb)
    assert whole.ok.sum() >= 30 and np.array_equal(whole.ok, blocks.ok)
    assert np.array_equal(whole.n_iter, blocks.n_iter)
    assert np.allclose(blocks.coef[blocks.ok], whole.coef[whole.ok], rtol=1e-9, atol=1e-12)
    X = d.X
    for s in np.flatnonzero(blocks.ok)[:8]:
        one = (fit_negbin if nb else fit_poisson)(X[s], y[s], d.offset[s])
        assert np.allclose(blocks.coef[s], one.coef, rtol=1e-9, atol=1e-9)
        assert blocks.alpha[s] == pytest.approx(one.alpha, rel=1e-9, abs=1e-14)
        assert blocks.n_iter[s] == one.n_iter
