"""Coherent country and whole-area totals (totals.csv, totals_horizon.csv) and joint paths.

References: the exact sum of the series means; for independent one-step forecasts the
exact law of the total, the convolution of the series pmfs (``numpy.convolve``); for
perfectly correlated (joint) paths the exact quantiles of twice one series' paths.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecast.distributions import CountForecast
from forecast.pipeline.totals import _nice, default_thresholds, report_rows, totals

MONTHS = pd.date_range("2026-01-01", periods=3, freq="MS")


def index(uids, H):
    return pd.DataFrame({"unique_id": np.repeat(uids, H), "ds": np.tile(MONTHS[:H], len(uids)),
                         "h": np.tile(np.arange(1, H + 1), len(uids))})


def cfg(levels=(50, 80, 95), total_thresholds=(), thresholds=(1, 5), seed=0):
    return SimpleNamespace(forecast=SimpleNamespace(levels=levels, total_thresholds=total_thresholds,
                                                    thresholds=thresholds), run=SimpleNamespace(seed=seed))


KEYS = pd.DataFrame({"unique_id": ["A/a/x", "A/b/x", "B/c/x", "B/d/y", "A/(all)/x"],
                     "country": ["A", "A", "B", "B", "A"], "province": ["a", "b", "c", "d", "(all)"],
                     "event_type": ["x", "x", "x", "y", "x"]})


def test_mean_is_the_exact_sum_and_aggregates_are_left_out():
    mu = np.array([0.31, 2.7, 11.9, 4.4, 1.2, 0.05, 7.3, 3.3, 1.1, 6.0, 9.0, 14.0, 1000.0, 1000.0, 1000.0])
    fc = CountForecast.negbin(index(KEYS["unique_id"].to_numpy(), 3), mu, 0.3, model="nb")
    by_ds, hz = totals(fc, KEYS, cfg(total_thresholds=(5,)), n_draws=500)
    frame = fc.to_frame().merge(KEYS, on="unique_id")
    frame = frame[frame["province"] != "(all)"]  # the aggregate series of country A, type x
    want = frame.groupby(["country", "event_type", "ds"])["mean"].sum()
    got = by_ds[by_ds["level"] == "country"].set_index(["country", "event_type", "ds"])["mean"]
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_names=False, rtol=1e-13)
    area = by_ds[by_ds["level"] == "area"].set_index(["event_type", "ds"])["mean"]
    pd.testing.assert_series_equal(area.sort_index(), frame.groupby(["event_type", "ds"])["mean"].sum(),
                                   check_names=False, rtol=1e-13)
    assert set(by_ds["country"]) == {"A", "B", "All areas"}
    assert list(by_ds.columns) == ["level", "country", "event_type", "ds", "mean", "lo-50", "hi-50",
                                   "lo-80", "hi-80", "lo-95", "hi-95", "p_ge_5"]
    # the horizon file: same columns with start, end; sums over the three months
    assert list(hz.columns[:5]) == ["level", "country", "event_type", "start", "end"]
    a = hz[(hz["level"] == "area") & (hz["event_type"] == "x")].iloc[0]
    assert a["start"] == MONTHS[0] and a["end"] == MONTHS[2]
    assert a["mean"] == pytest.approx(frame.loc[frame["event_type"] == "x", "mean"].sum(), rel=1e-13)
    assert (hz["lo-95"] <= hz["lo-50"]).all() and (hz["hi-50"] <= hz["hi-95"]).all()
    # country B, type y has one series: the (B, y) and (All areas, y) totals are that series
    y = by_ds[by_ds["event_type"] == "y"]
    assert len(y) == 6 and (y.groupby("ds")["lo-80"].nunique() == 1).all()


def test_independent_one_step_totals_match_the_exact_convolution():
    # Three independent one-step forecasts (no paths): marginal draws per series, summed.
    uids = ["A/a/x", "A/b/x", "B/c/x"]
    mu, alpha = np.array([1.5, 4.0, 0.4]), np.array([0.6, 0.2, 1.5])
    fc = CountForecast.negbin(index(uids, 1), mu, alpha, model="nb")
    N, ks, levels = 20_000, (3, 6, 10), (50, 80, 95)
    by_ds, hz = totals(fc, KEYS, cfg(levels=levels, total_thresholds=ks), n_draws=N)
    row = by_ds[by_ds["level"] == "area"].iloc[0]
    exact = np.array([1.0])
    for m, a in zip(mu, alpha):
        n = 1 / a
        exact = np.convolve(exact, stats.nbinom.pmf(np.arange(300), n, n / (n + m)))
    F = np.cumsum(exact)
    for k in ks:  # P(total >= k) within 4 Monte Carlo standard errors
        p = 1 - F[k - 1]
        assert abs(row[f"p_ge_{k}"] - p) < 4 * np.sqrt(p * (1 - p) / N), k
    for lv in levels:  # the empirical quantile sits where the exact cdf crosses the target, +-4 s.e.
        for col, q in ((f"lo-{lv}", (1 - lv / 100) / 2), (f"hi-{lv}", 1 - (1 - lv / 100) / 2)):
            k, tol = int(row[col]), 4 * np.sqrt(q * (1 - q) / N)
            assert F[k] >= q - tol and (k == 0 or F[k - 1] <= q + tol), (col, k)
    assert row["mean"] == pytest.approx(mu.sum(), rel=1e-13)
    # one step: the horizon file holds the same numbers
    assert (hz.drop(columns=["start", "end"]).to_numpy() == by_ds.drop(columns="ds").to_numpy()).all()


def test_joint_paths_give_a_wider_total_than_independent_ones():
    rng = np.random.default_rng(5)
    one = rng.negative_binomial(2, 0.3, size=(1, 3, 4000))
    other = rng.negative_binomial(2, 0.3, size=(1, 3, 4000))
    uids = ["A/a/x", "A/b/x"]
    joint = CountForecast.from_samples(index(uids, 3), np.concatenate([one, one]), model="sp", joint=True)
    indep = CountForecast.from_samples(index(uids, 3), np.concatenate([one, other]), model="nb")
    j_ds, j_h = totals(joint, KEYS, cfg())
    i_ds, i_h = totals(indep, KEYS, cfg())
    for jf, inf in ((j_ds, i_ds), (j_h, i_h)):
        assert ((jf["hi-95"] - jf["lo-95"]) > (inf["hi-95"] - inf["lo-95"])).all()
        np.testing.assert_allclose(jf["mean"], inf["mean"], rtol=0.05)
    # perfectly correlated: the total is twice one series, quantile by quantile (exactly)
    twice = 2 * one[0].sum(axis=0)  # horizon sum of one path, doubled
    a = j_h[j_h["level"] == "area"].iloc[0]
    assert (a["lo-80"], a["hi-80"]) == tuple(int(v) for v in np.quantile(twice, [0.1, 0.9], method="inverted_cdf"))


def test_totals_are_deterministic_and_a_series_draws_alone():
    uids = ["A/a/x", "A/b/x", "B/c/x"]
    fc = CountForecast.negbin(index(uids, 2), np.linspace(0.5, 8, 6), 0.4, model="nb")
    full, _ = totals(fc, KEYS, cfg(seed=3), n_draws=800)
    again, _ = totals(fc, KEYS, cfg(seed=3), n_draws=800)
    pd.testing.assert_frame_equal(full, again)
    # country A alone, rows reordered: its totals do not move (draws come from per-series streams)
    only_a = fc.subset([2, 3, 0, 1])
    part, _ = totals(only_a, KEYS, cfg(seed=3), n_draws=800)
    pd.testing.assert_frame_equal(part[part["level"] == "country"].reset_index(drop=True),
                                  full[(full["level"] == "country") & (full["country"] == "A")].reset_index(drop=True))
    other, _ = totals(fc, KEYS, cfg(seed=4), n_draws=800)
    assert not other.equals(full)


def test_default_thresholds_are_rounded_quantiles_of_the_history():
    assert [_nice(v) for v in (0, 1, 1.2, 2, 2.5, 7, 10, 11, 48, 120)] == [1, 1, 2, 2, 5, 10, 10, 20, 50, 200]
    ds = pd.date_range("2020-01-01", periods=11, freq="MS")
    # type x: the area total of A/a and B/c is 0..100 by 10 -> median 50, 90th percentile 90 -> 50, 100;
    # type y: constant 3 -> 5. The aggregate series (A/(all)/x) would add 1000 a month if counted.
    panel = pd.concat([pd.DataFrame({"unique_id": "A/a/x", "ds": ds, "y": np.arange(11) * 6.0}),
                       pd.DataFrame({"unique_id": "B/c/x", "ds": ds, "y": np.arange(11) * 4.0}),
                       pd.DataFrame({"unique_id": "B/d/y", "ds": ds, "y": 3.0}),
                       pd.DataFrame({"unique_id": "A/(all)/x", "ds": ds, "y": 1000.0})])
    assert default_thresholds(panel, KEYS) == (5, 50, 100)
    fc = CountForecast.poisson(index(["A/a/x"], 1), 60.0, model="p")
    by_ds, _ = totals(fc, KEYS, cfg(), panel=panel, n_draws=200)
    assert [c for c in by_ds.columns if c.startswith("p_ge_")] == ["p_ge_5", "p_ge_50", "p_ge_100"]


def test_report_rows_carry_the_exact_mean_and_every_threshold():
    fc = CountForecast.negbin(index(["A/a/x", "A/b/x"], 3), np.array([1.04, 2, 3, 4, 5, 6.1]), 0.2, model="nb")
    _, hz = totals(fc, KEYS, cfg(total_thresholds=(10, 30)), n_draws=300)
    rows = report_rows(hz, (50, 80, 95))
    area = next(r for r in rows if r["kind"] == "area")
    assert area["mean"] == pytest.approx(21.14, rel=1e-13) and area["level"] == 95
    assert area["horizon_label"] == "Jan 2026\u2013Mar 2026" and area["start"] == "2026-01-01"
    assert set(area["p_ge"]) == {10, 30} and area["lo"] <= 21 <= area["hi"]


# --------------------------------------------------------------------------- joint paths in CountForecast

def _joint(shift: int, P: int = 400, seed: int = 0) -> CountForecast:
    """Two series with identical paths: one world per path index (perfect correlation)."""
    p = np.random.default_rng(seed).poisson(3.0, size=(1, 3, P)) + shift
    return CountForecast.from_samples(index(["A/a/x", "A/b/x"], 3), np.concatenate([p, p]), model=f"j{shift}",
                                      joint=True)


def test_mixture_keeps_path_p_one_joint_world():
    a, b = _joint(0), _joint(100, seed=1)
    m = CountForecast.mixture([a, b], [0.3, 0.7], model="ens")
    assert m.joint and (m.paths[0] == m.paths[1]).all()  # still one world per path index
    assert ((m.paths < 100).mean(axis=2) == 0.3).all()  # 120 of 400 paths from the first member
    np.testing.assert_allclose(m.pmf, 0.3 * a._padded(m.K)[0] + 0.7 * b._padded(m.K)[0], rtol=1e-12)
    # weights varying with h (auto's per-step weights): paths are kept, each step's share follows its
    # weights, and every series still takes the same member for path p at each step
    w = np.tile([[0.2, 0.5, 0.9]], (1, 2))
    mh = CountForecast.mixture([a, b], np.vstack([w, 1 - w]), model="ens")
    assert mh.joint and (mh.paths[0] == mh.paths[1]).all()
    np.testing.assert_array_equal((mh.paths[0] < 100).mean(axis=1), [0.2, 0.5, 0.9])
    # per-series weights: a common-random-numbers coupling, not one world
    ws = np.repeat([[0.3, 0.8], [0.7, 0.2]], 3, axis=1)
    mc = CountForecast.mixture([a, b], ws, model="ens")
    assert not mc.joint and mc.paths is not None
    assert ((mc.paths[0] < 100) <= (mc.paths[1] < 100)).all()  # comonotone in the shared u_p
    # a member simulated per series makes the mixture not joint
    indep = CountForecast.from_samples(a.index, np.asarray(b.paths), model="ind")
    assert not CountForecast.mixture([a, indep], [0.5, 0.5], model="ens").joint


def test_concat_and_subset_keep_the_joint_flag():
    a = _joint(0)
    b = CountForecast.from_samples(index(["B/c/x"], 3), np.asarray(_joint(5).paths[:1]), model="j5", joint=True)
    both = CountForecast.concat([a, b])
    assert both.joint and both.paths.shape == (3, 3, 400)
    ind = CountForecast.from_samples(index(["B/c/x"], 3), np.asarray(b.paths), model="ind")
    assert not CountForecast.concat([a, ind]).joint  # part of the stack was simulated series by series
    whole = both.subset([6, 7, 8, 0, 1, 2, 3, 4, 5])  # series reordered: c, a, b
    assert whole.joint and (whole.paths[1] == whole.paths[2]).all()
    part = both.subset([0, 1])  # not whole series: paths dropped, so not joint
    assert part.paths is None and not part.joint
    assert not CountForecast.negbin(a.index, 1.0, 0.1, model="nb").joint


def test_ppf_inverts_the_cdf_like_sample():
    fc = CountForecast.negbin(index(["A/a/x"], 3), np.array([0.5, 3.0, 40.0]), 0.3, model="nb")
    u = np.random.default_rng(2).random((3, 50))
    np.testing.assert_array_equal(fc.ppf(u), fc.sample(50, np.random.default_rng(2)))
    k = fc.ppf(u)
    for j in range(50):
        assert (fc.cdf(k[:, j]) >= u[:, j]).all() and (fc.cdf(k[:, j] - 1) < u[:, j]).all()
    with pytest.raises(ValueError, match="u must be in"):
        fc.ppf(np.full((2, 4), 0.5))


# --------------------------------------------------------------------------- in a run

def test_a_run_writes_both_files_and_the_report_shows_the_exact_sums(tmp_path):
    from typer.testing import CliRunner

    from forecast.cli import app
    from forecast.report_context import ReportContext
    from tests.test_run import CONFIG, small_log, write_config

    small_log(tmp_path)
    res = CliRunner().invoke(app, ["run", str(write_config(tmp_path, CONFIG.replace(
        "thresholds = [1, 5]", "thresholds = [1, 5]\ntotal_thresholds = [10, 40]"))), "--quiet"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    fc = pd.read_csv(out / "forecasts.csv", parse_dates=["ds"])
    by_ds = pd.read_csv(out / "totals.csv", parse_dates=["ds"])
    hz = pd.read_csv(out / "totals_horizon.csv")
    assert {"lo-95", "hi-95", "p_ge_10", "p_ge_40"} <= set(by_ds.columns) and {"start", "end"} <= set(hz.columns)
    want = fc.groupby(["event_type", "ds"])["mean"].sum()
    got = by_ds[by_ds["level"] == "area"].set_index(["event_type", "ds"])["mean"]
    np.testing.assert_allclose(got.loc[want.index], want, rtol=1e-12)
    ctx = ReportContext.from_json((out / "report_context.json").read_text())
    html = (out / "index.html").read_text()
    for t in ctx.totals:
        exact = fc.loc[fc["event_type"] == t.event_type if t.kind == "area" else
                       (fc["event_type"] == t.event_type) & (fc["country"] == t.scope), "mean"].sum()
        assert t.mean == pytest.approx(exact, rel=1e-12) and set(t.p_ge) == {10, 40}
        shown = f"{exact:,.0f}" if exact >= 10 else f"{exact:.1f}"
        assert f'<td class="num">{shown}</td>' in html
    assert "Chance of at least" in html


def test_total_rows_of_old_contexts_still_load_and_new_ones_round_trip():
    from forecast.report_context import Total

    old = Total.from_dict({"scope": "A", "event_type": "x", "horizon_label": "Jan\u2013Mar 2026", "mean": 53.0,
                           "lo": 40, "hi": 70, "level": 80})
    assert old.kind == "" and old.p_ge == {} and old.start == ""
    new = Total.from_dict({**old.to_dict(), "kind": "area", "start": "2026-01-01", "end": "2026-03-01",
                           "p_ge": {"10": 0.9, "40": None}})  # JSON keys are strings
    assert new.p_ge == {10: 0.9, 40: None} and Total.from_dict(json_round_trip(new.to_dict())) == new


def json_round_trip(d):
    import json

    return json.loads(json.dumps(d))


def test_a_stack_keeps_the_paths_of_the_parts_that_have_them():
    paths = np.random.default_rng(8).poisson(2.0, size=(1, 3, 4000))
    sim = CountForecast.from_samples(index(["A/a/x", "A/b/x"], 3), np.concatenate([paths, paths]), model="sp",
                                     joint=True)
    nb = CountForecast.negbin(index(["B/c/x"], 3), 2.0, 0.3, model="nb")
    fc = CountForecast.concat([nb, sim])
    assert fc.paths is None and len(fc.part_paths) == 1
    first, kept, joint = fc.part_paths[0]
    assert list(first) == [3, 6] and kept.shape == (2, 3, 4000) and joint
    moved = fc.subset([6, 7, 8, 0, 1, 2, 3, 4, 5])  # A/b, B/c, A/a
    assert [list(p[0]) for p in moved.part_paths] == [[6, 0]]  # paths stay in order: A/a, A/b
    assert [list(p[0]) for p in fc.subset([3, 4, 5, 7]).part_paths] == [[0]]  # A/b is not whole
    assert CountForecast.mixture([fc, fc], [0.5, 0.5], model="m").part_paths == ()
    # the country A total is twice the shared path (horizon sums keep the path's serial dependence)
    _, hz = totals(fc, KEYS, cfg())
    a = hz[hz["country"] == "A"].iloc[0]
    want = np.quantile(2 * paths[0].sum(axis=0), [0.025, 0.975], method="inverted_cdf")
    assert (a["lo-95"], a["hi-95"]) == tuple(int(v) for v in want)
    # the area total adds B/c's marginal draws: wider than country A alone, mean exact
    area = hz[hz["level"] == "area"].iloc[0]
    assert area["hi-95"] - area["lo-95"] > a["hi-95"] - a["lo-95"]
    assert area["mean"] == pytest.approx(6.0 + 2 * paths.mean(axis=2).sum(), rel=1e-12)


def test_only_aggregate_series_give_empty_files_with_the_schema():
    fc = CountForecast.poisson(index(["A/(all)/x"], 2), 3.0, model="p")
    by_ds, hz = totals(fc, KEYS, cfg(total_thresholds=(5,)))
    assert by_ds.empty and hz.empty and list(hz.columns)[-2:] == ["hi-95", "p_ge_5"] and "start" in hz.columns
