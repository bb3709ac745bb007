"""The final fit of ``auto`` reuses the members' cells of a backtest of it on the same panel.

The reuse must give exactly the weights of the fit's own internal backtest, and must be
refused (the fit then backtests its members itself) whenever the cells are not exactly
those: another seed, other data, other members, other series.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import forecast.combine._weights as weights_module
from forecast.backtesting import backtest
from forecast.combine import Auto
from forecast.models.base import warm_starts
from forecast.models.baselines import Climatology, Naive
from forecast.models.glm import NegBinGLM


def _panel(n_series=5, n=72, seed=11):
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2016-01-01", periods=n, freq="MS")
    rows = []
    for i in range(n_series):
        mu = np.exp(0.4 + 0.35 * i + 0.5 * np.sin(2 * np.pi * np.arange(n) / 12))
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.negative_binomial(3, 3 / (3 + mu))}))
    return pd.concat(rows, ignore_index=True)


def _auto(**kw):
    members = {"climatology": Climatology(), "naive": Naive(),
               "glm": NegBinGLM(trend="none", seasonality="fourier")}
    return Auto(members=members, inner_origins=4, **kw)


class _Spy:
    """Counts the internal backtests the fit runs (and runs them)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, *a, **kw):
        self.calls += 1
        return backtest(*a, **kw)


@pytest.fixture
def spy(monkeypatch):
    s = _Spy()
    monkeypatch.setattr(weights_module, "backtest", s)
    return s


def _cells(panel, spec, horizon, seed=0, refit_every=1):
    res = backtest(panel, {"auto": spec}, horizon, n_origins=3, seed=seed, refit_every=refit_every,
                   progress=False, keep_member_cells=True)
    return res.member_cells["auto"]


@pytest.mark.parametrize("metric, horizon, refit_every", [("log", 1, 1), ("rps", 2, 1), ("log", 2, 3)])
def test_final_fit_from_the_backtests_cells_equals_its_own_internal_backtest(spy, metric, horizon, refit_every):
    panel = _panel()
    spec = _auto(metric=metric)
    for warm, atol in ((False, 1e-11), (True, 1e-8)):
        # Cold refits: equal to rounding (the RPS Gram sums pmfs padded to another width: 1e-13
        # seen). Warm-started refits (the default) reach each member's optimum to the solver's
        # tolerance, from other starts in the two backtests: 5e-11 seen.
        with warm_starts(warm):
            cells = _cells(panel, spec, horizon, refit_every=refit_every)
            assert cells is not None
            own = spec.for_horizon(horizon).fit(panel)
            calls = spy.calls
            reused = spec.for_horizon(horizon).fit(panel, cells=cells)
        assert spy.calls == calls  # no internal backtest: the cells were used
        np.testing.assert_allclose(reused._weights, own._weights, rtol=0, atol=atol)
        a, b = own.forecast(horizon), reused.forecast(horizon)
        np.testing.assert_allclose(a.pmf, b.pmf, rtol=0, atol=atol)


def test_a_reordered_copy_of_the_panel_still_reuses_the_cells(spy):
    panel = _panel()
    spec = _auto()
    cells = _cells(panel, spec, 1)
    shuffled = panel.sample(frac=1.0, random_state=2).reset_index(drop=True)
    shuffled["ds"] = shuffled["ds"].dt.strftime("%Y-%m-%d")  # as read from a CSV
    calls = spy.calls
    spec.for_horizon(1).fit(shuffled, cells=cells)
    assert spy.calls == calls


@pytest.mark.parametrize("change", ["seed", "data", "series", "members", "horizon"])
def test_cells_that_are_not_exactly_the_fits_are_refused(spy, change):
    panel = _panel()
    spec = _auto()
    cells = _cells(panel, spec, 1)
    fit_panel, fit_spec, seed, h = panel, spec, 0, 1
    if change == "seed":
        seed = 1
    elif change == "data":
        fit_panel = panel.copy()
        fit_panel.loc[3, "y"] += 1  # one count, early in the history
    elif change == "series":
        fit_panel = panel[panel["unique_id"] != "s4"]
    elif change == "members":
        fit_spec = Auto(members={"climatology": Climatology(), "naive": Naive()}, inner_origins=4)
    else:
        h = 2  # cells of one step cannot serve weights for two
    calls = spy.calls
    got = fit_spec.for_horizon(h).fit(fit_panel, seed=seed, cells=cells)
    assert spy.calls == calls + 1  # it ran its own internal backtest
    ref = fit_spec.for_horizon(h).fit(fit_panel, seed=seed)
    np.testing.assert_allclose(got._weights, ref._weights, rtol=0, atol=0)


def test_cells_are_kept_only_when_asked_and_change_no_score():
    panel, spec = _panel(), _auto()
    plain = backtest(panel, {"auto": spec}, 2, n_origins=3, refit_every=3, progress=False)
    kept = backtest(panel, {"auto": spec}, 2, n_origins=3, refit_every=3, progress=False, keep_member_cells=True)
    assert plain.member_cells == {} and kept.member_cells["auto"] is not None
    pd.testing.assert_frame_equal(plain.point_scores, kept.point_scores)
    pd.testing.assert_frame_equal(plain.forecasts, kept.forecasts)
    assert backtest(panel, {"naive": Naive()}, 1, n_origins=2, progress=False,
                    keep_member_cells=True).member_cells == {}


def test_a_run_with_auto_fits_it_from_the_backtests_cells(spy, tmp_path):
    """``forecast run``: the backtest keeps the member cells and the final fit of ``auto`` runs no
    internal backtest of its own (it was a quarter of a monthly run's time)."""
    import json
    import warnings

    from typer.testing import CliRunner

    from forecast.cli import app
    from forecast.datasets import load_sample

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = load_sample("border_sim")
    ev = ev[ev["province"].isin(["Khatlon", "Sughd"]) & (ev["date"] >= "2019-01-01")]
    ev.to_csv(tmp_path / "events.csv", index=False, date_format="%Y-%m-%d")
    (tmp_path / "auto.toml").write_text('model = "auto"\nmembers = ["climatology", "naive"]\n'
                                        'spatial_members = []\ninner_origins = 4\n')
    (tmp_path / "config.toml").write_text(
        '[data]\nevents = "events.csv"\nas_of = "2025-12-31"\n[models]\ncandidates = ["auto.toml"]\n'
        'selection = "auto"\n[backtest]\nhorizon = 2\norigins = 3\nrefit_every = 2\n[forecast]\nhorizon = 2\n'
        '[output]\ndir = "out"\n')
    res = CliRunner().invoke(app, ["run", str(tmp_path / "config.toml"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert spy.calls == 0
    sel = json.loads((tmp_path / "out" / "run.json").read_text())
    assert sel["timings_s"]["forecast"] >= 0
    w = pd.read_csv(tmp_path / "out" / "selection.csv")
    np.testing.assert_allclose(w[["w_climatology", "w_naive"]].sum(axis=1), 1.0)
