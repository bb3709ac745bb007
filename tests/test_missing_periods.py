"""Missing is not zero inside a series (issue 12 item 2): the ``Series.observed`` mask, the
baselines that fit around it, backtests that never score a missing target, coverage gaps,
plots that draw a gap."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from forecast.backtesting import _mase_scales, backtest
from forecast.coverage_gaps import apply_coverage_gaps, flag_gaps
from forecast.exceptions import DataValidationError, ForecastWarning
from forecast.models.base import ModelSpec, PanelData, SeriesFit
from forecast.models.baselines import (Climatology, Empirical, LongRunRate, Naive, SeasonalNaive, Zero,
                                       after_zero_rate)
from forecast.models.intermittent import TSB, Croston
from forecast.panel import build_panel

MONTHS = pd.date_range("2018-01-01", periods=48, freq="MS")


def _panel(ys: dict[str, list], ds=MONTHS) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": u, "ds": ds[:len(y)], "y": y}) for u, y in ys.items()],
                     ignore_index=True)


def _rng_counts(seed: int, n: int = 48, lam: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).negative_binomial(2, 2 / (2 + lam), n).astype(float)


def _deleted(panel: pd.DataFrame) -> pd.DataFrame:
    """The same series with the missing rows deleted, re-dated as contiguous months ending at
    the same last month (the baselines read no dates: this is "the series without them")."""
    out = []
    for uid, g in panel.groupby("unique_id", sort=False):
        g = g[g["y"].notna()]
        end = g["ds"].max()
        out.append(pd.DataFrame({"unique_id": uid, "ds": pd.date_range(end=end, periods=len(g), freq="MS"),
                                 "y": g["y"].astype(int).to_numpy()}))
    return pd.concat(out, ignore_index=True)


# -- the representation -------------------------------------------------------------------

def test_from_frame_reads_nan_and_absent_periods_as_missing():
    p = _panel({"a": [1, np.nan, 3, 4, 5, 6], "b": [1, 2, 3, 4, 5, 6]})
    p = p.drop(index=3)  # a's 2018-04 absent
    p["x"] = np.arange(len(p), dtype=float)
    data = PanelData.from_frame(p, ["x"])
    a, b = data.series
    assert a.observed.tolist() == [True, False, True, False, True, True]
    assert a.y.tolist() == [1, 0, 3, 0, 5, 6] and a.y.dtype == np.int64  # placeholders 0
    assert list(a.ds) == list(MONTHS[:6]) and a.n_observed == 4
    assert a.exog["x"].tolist() == [0.0, 1.0, 2.0, 2.0, 3.0, 4.0]  # an added period carries the last value
    assert b.observed is None and b.n_observed == 6  # the fast path
    assert a.calendar == b.calendar  # the mask is not part of the calendar


def test_from_frame_still_refuses_bad_counts_duplicates_and_mid_period_dates():
    with pytest.raises(DataValidationError, match="negative or non-integer count"):
        PanelData.from_frame(_panel({"a": [1, -1, 2]}))
    with pytest.raises(DataValidationError, match="negative or non-integer count"):
        PanelData.from_frame(_panel({"a": [1, 1.5, 2]}))
    dup = _panel({"a": [1, 2, 3]})
    with pytest.raises(DataValidationError, match="same period twice"):
        PanelData.from_frame(pd.concat([dup, dup.iloc[:1]]))
    ends = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-31", periods=4, freq="ME"), "y": 1})
    with pytest.raises(DataValidationError, match="not the start of a month") as e:
        PanelData.from_frame(ends)
    assert "gaps" not in str(e.value)
    with pytest.raises(DataValidationError, match="'b' has no observed count"):
        PanelData.from_frame(_panel({"a": [1, 2], "b": [np.nan, np.nan]}))


def test_a_model_that_does_not_handle_missing_refuses_them():
    class Plain(ModelSpec):  # handles_missing left False
        name = "plain"

        def _fit_series(self, s):
            return SeriesFit(self, n_obs=len(s.y))

    full = _panel({"a": [1, 2, 3, 4]})
    Plain().fit(full)  # no missing period: fine
    with pytest.raises(DataValidationError, match=r"model 'plain' does not handle missing periods.*'a' lacks 2018-02"):
        Plain().fit(_panel({"a": [1, np.nan, 3, 4]}))
    with pytest.raises(DataValidationError, match="model 'plain' does not handle missing periods"):
        Plain().fit(full).update(_panel({"a": [1, 2, 3, 4, np.nan, 5]}))  # (backtests between refits)


# -- baselines --------------------------------------------------------------------------

def _with_missing(seed: int = 0) -> pd.DataFrame:
    ys = {f"s{i}": _rng_counts(seed + i) for i in range(3)}
    for y in ys.values():
        y[[5, 20, 43, 45]] = np.nan  # the same periods in every series (2 inside the last 6)
    return _panel(ys)


def test_climatology_none_is_the_nb_mle_of_the_observed_window_values():
    p = _with_missing()
    fc = Climatology(window=12, prior="none").fit(p).forecast(1)
    for i, uid in enumerate(["s0", "s1", "s2"]):
        w = p.loc[p["unique_id"] == uid, "y"].to_numpy()[-12:]
        w = w[~np.isnan(w)].astype(int)
        assert len(w) == 10
        # NB2 MLE by scipy: the mean is the sample mean; alpha maximises the profile likelihood.
        mu = w.mean()

        def nll(la):
            r = np.exp(-la)
            return -stats.nbinom.logpmf(w, r, r / (r + mu)).sum()

        la = optimize.minimize_scalar(nll, bounds=(-20, 5), method="bounded", options={"xatol": 1e-10}).x
        alpha = np.exp(la) if w.var() > w.mean() else 0.0
        assert fc.mean[i] == pytest.approx(mu, rel=1e-9)
        assert fc.var[i] == pytest.approx(mu + alpha * mu ** 2, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("spec, narrower", [
    (Climatology(window=6), Climatology(window=4)),  # pooled: W_i = the 4 observed periods of 6
    (Climatology(window=6, prior="none"), Climatology(window=4, prior="none")),
    (Empirical(window=6), Empirical(window=4)),
    (Croston(), Croston()), (Croston(sba=True), Croston(sba=True)), (TSB(), TSB()),
    (LongRunRate(), LongRunRate()),
])
def test_baselines_equal_the_model_on_the_series_with_missing_rows_deleted(spec, narrower):
    p = _with_missing(3)
    a = spec.fit(p).forecast(3)
    b = narrower.fit(_deleted(p)).forecast(3)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-9)
    np.testing.assert_allclose(a.var, b.var, rtol=1e-9)
    np.testing.assert_allclose(a.pmf, b.pmf, rtol=1e-9, atol=1e-15)


def test_naive_uses_the_last_observed_count():
    p = _panel({"a": [0, 3, 0, 2, 7, np.nan, np.nan], "b": [2, 0, 0, 1, 0, 0, np.nan]})
    fc = Naive().fit(p).forecast(2)
    assert fc.mean[:2].tolist() == [7.0, 7.0]
    # b's last observed count is 0: the rate after zeros over observed pairs, brute force
    y = np.array([2, 0, 0, 1, 0, 0])
    after = [y[t] for t in range(1, len(y)) if y[t - 1] == 0]
    assert fc.mean[2] == pytest.approx((sum(after) + y.mean()) / (len(after) + 1))
    # pairs touching a missing period do not count
    assert after_zero_rate(np.array([0, 0, 5, 0]), 1, np.array([True, False, True, True])) == \
        pytest.approx((0 + 5 / 3) / 1)


def test_seasonal_naive_takes_the_same_seasons_last_observed_count_else_naive():
    y = np.arange(1, 37, dtype=float)  # 3 years, all > 0
    y[-12 + 2] = np.nan   # March of the last year missing: take March a year earlier
    y[[-12 + 5, -24 + 5, -36 + 5]] = np.nan  # June never observed: the naive mean (last observed)
    fc = SeasonalNaive().fit(_panel({"a": y})).forecast(12)
    expect = y[-12:].copy()
    expect[2] = y[-24 + 2]
    expect[5] = y[-1]
    np.testing.assert_allclose(fc.mean, expect)


def test_zero_loglik_counts_observed_periods_only():
    fit = Zero().fit(_panel({"a": [0, np.nan, 0, 0], "b": [0, np.nan, 1, 0]}))
    assert fit.fits()["a"].n_obs == 3 and fit.fits()["a"].loglik == 0.0
    assert fit.fits()["b"].loglik == -np.inf  # an observed 1 is impossible under a point mass at 0
    lr = LongRunRate().fit(_panel({"a": [2, np.nan, 1, 0]})).fits()["a"]
    assert lr.n_obs == 3 and lr.loglik == pytest.approx(stats.poisson.logpmf([2, 1, 0], 1.0).sum())


# -- backtests --------------------------------------------------------------------------

def test_backtests_never_score_a_missing_target():
    ys = {"a": _rng_counts(1, 36), "b": _rng_counts(2, 36)}
    ys["a"][[30, 33]] = np.nan
    ys["b"][34] = np.nan
    p = _panel(ys)
    p = p.drop(index=p.index[(p["unique_id"] == "b") & (p["ds"] == MONTHS[31])])  # an absent period
    res = backtest(p, {"naive": Naive(), "clim": Climatology(window=12)}, 1, n_origins=8)
    for m in ("naive", "clim"):
        fc = res.forecasts[res.forecasts["model"] == m]
        assert len(fc) == 2 * 8 - 4  # targets 28..35: a misses 30, 33; b misses 31, 34
        assert not fc.merge(p[p["y"].isna()], on=["unique_id", "ds"]).shape[0]
        assert fc["log_score"].notna().all() if "log_score" in fc.columns else True
    # a cutoff right after missing periods still forecasts (the mask travels with the training data)
    naive = res.forecasts[(res.forecasts["model"] == "naive") & (res.forecasts["unique_id"] == "a")]
    row = naive[naive["ds"] == MONTHS[31]]
    assert row["mean"].iloc[0] == ys["a"][29] or ys["a"][29] == 0


def test_mase_scale_over_observed_pairs_only():
    rng = np.random.default_rng(5)
    Y = rng.poisson(4, (3, 30))
    O = rng.random((3, 30)) > 0.2
    got = _mase_scales(Y, 12, O)
    for i in range(3):
        pairs = [abs(Y[i, t] - Y[i, t - 12]) for t in range(12, 30) if O[i, t] and O[i, t - 12]]
        want = np.mean(pairs) if pairs and np.mean(pairs) > 0 else np.nan
        np.testing.assert_allclose(got[i], want)
    np.testing.assert_allclose(_mase_scales(Y, 12, np.ones_like(O)), _mase_scales(Y, 12))


# -- coverage gaps ------------------------------------------------------------------------

def test_flag_gaps_matches_a_brute_force_poisson_check():
    rng = np.random.default_rng(0)
    for _ in range(200):
        t = rng.poisson(rng.choice([2.0, 10.0, 14.0, 20.0, 40.0]), 15).astype(float)
        t[rng.random(15) < 0.25] = 0
        t[rng.random(15) < 0.1] = np.nan
        want = np.zeros(15, dtype=bool)
        for i in range(15):
            near = [t[j] for j in range(max(0, i - 4), min(15, i + 5)) if j != i and np.isfinite(t[j])]
            if t[i] == 0 and len(near) >= 2:
                want[i] = stats.poisson.pmf(0, np.median(near)) < 1e-6
        np.testing.assert_array_equal(flag_gaps(t), want)


def _events(per_month: list[int]) -> pd.DataFrame:
    rows = []
    for k, n in enumerate(per_month):
        day = MONTHS[k] + pd.Timedelta(days=9)
        rows += [("Tajikistan", ["Khatlon", "Sughd"][j % 2], "clash", day) for j in range(n)]
    ev = pd.DataFrame(rows, columns=["country", "province", "event_type", "date"])
    ev["count"], ev["fatalities"] = 1, pd.array([0] * len(ev), "Int64")
    return ev


def test_coverage_gap_is_flagged_and_missing_by_default():
    counts = [20, 22, 18, 25, 0, 21, 19, 24, 20, 23]
    with pytest.warns(ForecastWarning, match="coverage gaps.*2018-05-01; treated as missing"):
        p = build_panel(_events(counts), "month", coverage=("2018-01-01", "2018-10-01"))
    assert p.attrs["coverage_gaps"] == ["2018-05-01"]
    gap = p["ds"] == MONTHS[4]
    assert gap.sum() == 2 and p.loc[gap, "y"].isna().all() and p.loc[~gap, "y"].notna().all()
    data = PanelData.from_frame(p)
    assert all(s.observed.tolist() == [k != 4 for k in range(10)] for s in data.series)
    with pytest.warns(ForecastWarning, match="kept as zeros"):
        z = build_panel(_events(counts), "month", coverage=("2018-01-01", "2018-10-01"), coverage_gaps="zero")
    assert z.attrs["coverage_gaps"] == ["2018-05-01"] and (z.loc[z["ds"] == MONTHS[4], "y"] == 0).all()


def test_a_quiet_but_plausible_period_is_a_zero():
    counts = [3, 5, 2, 4, 0, 6, 3, 1, 4, 2]  # P(0) at a median of ~3.5 is 3 %: plausible
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecastWarning)
        p = build_panel(_events(counts), "month", coverage=("2018-01-01", "2018-10-01"))
    assert p.attrs["coverage_gaps"] == [] and p["y"].notna().all() and p["y"].dtype == np.int64


def test_coverage_gaps_mode_is_checked():
    with pytest.raises(Exception, match="coverage_gaps must be 'missing' or 'zero'"):
        apply_coverage_gaps(_panel({"a": [1, 2]}).assign(ds=MONTHS[:2]), "drop", "month")


def test_run_on_a_panel_csv_with_missing_counts_and_a_coverage_gap(tmp_path):
    y = [20, 25, 18, 22, 0, 19, 24, 21, 23, 20, 26, 22, 19, 21, 25, 20, 23, 18, 22, 24]
    text = "unique_id,ds,y\n" + "".join(
        f"a,{d.date()},{'' if k == 9 else v}\n" for k, (d, v) in enumerate(zip(MONTHS, y)))
    (tmp_path / "panel.csv").write_text(text, encoding="utf-8")
    (tmp_path / "config.toml").write_text(
        '[data]\npanel = "panel.csv"\n[models]\ncandidates = ["climatology", "naive"]\n'
        '[backtest]\nhorizon = 2\norigins = 3\n[forecast]\nhorizon = 2\n[output]\ndir = "out"\n',
        encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "forecast.cli", "run", str(tmp_path / "config.toml"), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["coverage_gaps"] == {"periods": ["2018-05-01"], "treated_as": "missing"}


# -- yearly panels, panel CSVs and plots ----------------------------------------------------

def test_a_yearly_panel_with_a_missing_year_forecasts_the_right_years():
    years = pd.date_range("2000-01-01", periods=16, freq="YS")
    p = pd.DataFrame({"unique_id": "a", "ds": years, "y": np.arange(16) % 5 + 1}).drop(index=8)  # 2008 absent
    data = PanelData.from_frame(p)
    assert data.freq.kind == "year" and data.series[0].observed.tolist() == [k != 8 for k in range(16)]
    fc = Climatology().fit(p).forecast(2)
    assert list(fc.index["ds"]) == [pd.Timestamp("2016-01-01"), pd.Timestamp("2017-01-01")]


def test_panel_csv_empty_y_is_a_missing_count(tmp_path):
    from forecast.pipeline.stages import load_panel

    f = tmp_path / "p.csv"
    f.write_text("unique_id,ds,y\na,2024-01-01,1\na,2024-02-01,\na,2024-03-01,2\n", encoding="utf-8")
    p = load_panel(f)
    assert p["y"].isna().tolist() == [False, True, False]
    assert PanelData.from_frame(p).series[0].observed.tolist() == [True, False, True]


def test_plots_draw_missing_periods_as_gaps():
    from forecast import plots

    p = _panel({"a": [1, 2, np.nan, 4, 5, 6, 2, 3]}).drop(index=5)  # one NaN, one absent
    p["country"], p["province"], p["event_type"] = "T", "K", "clash"
    p.attrs["freq"] = "MS"
    fig = plots.monthly_counts(p)
    line = fig.axes[0].lines[0]
    assert len(line.get_ydata()) == 8 and np.isnan(np.asarray(line.get_ydata(), float)[[2, 5]]).all()
    fit = Naive().fit(p)
    table = fit.forecast(2).to_frame()
    fig = plots.fan_chart(p, table, unique_id="a")
    observed = [ln for ln in fig.axes[0].lines if ln.get_label() == "observed"][0]
    assert np.isnan(np.asarray(observed.get_ydata(), float)).sum() == 2


def test_config_coverage_gaps_key(tmp_path):
    from forecast.config import config_from_dict
    from forecast.exceptions import ConfigError

    (tmp_path / "p.csv").write_text("unique_id,ds,y\na,2024-01-01,1\na,2024-02-01,2\n", encoding="utf-8")
    assert config_from_dict({"data": {"panel": "p.csv"}}, base_dir=tmp_path).data.coverage_gaps == "missing"
    cfg = config_from_dict({"data": {"panel": "p.csv", "coverage_gaps": "zero"}}, base_dir=tmp_path)
    assert cfg.data.coverage_gaps == "zero"
    with pytest.raises(ConfigError, match="coverage_gaps"):
        config_from_dict({"data": {"panel": "p.csv", "coverage_gaps": "drop"}}, base_dir=tmp_path)
