"""Checked against the past: scored alert decisions, calibration in words (unit level)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from forecast import scoring
from forecast.alert_scores import NAIVE, OVERALL, alert_counts, naive_alerts, score_alerts
from forecast.distributions import CountForecast
from forecast.interval_calibration import calibration_sentence, interval_calibration

MONTHS = pd.date_range("2024-01-01", periods=12, freq="MS")


def hand_panel() -> pd.DataFrame:
    """Two series, twelve months, counts chosen so that the naive rule fires on some months."""
    ys = {"a": [1, 2, 0, 6, 3, 3, 7, 1, 9, 2, 5, 8], "b": [0, 0, 1, 0, 5, 0, 0, 2, 0, 6, 1, 0]}
    return pd.DataFrame([{"unique_id": u, "ds": d, "y": float(v)} for u, vs in ys.items()
                         for d, v in zip(MONTHS, vs)])


def hand_backtest(panel: pd.DataFrame) -> pd.DataFrame:
    """Two models, three origins (May, July, September), two steps: P(Y >= 5) by formula."""
    y = panel.set_index(["unique_id", "ds"])["y"]
    rows = []
    rng = np.random.default_rng(7)
    for model, uid, c, h in itertools.product(("m1", "m2"), ("a", "b"), MONTHS[[4, 6, 8]], (1, 2)):
        ds = c + pd.DateOffset(months=h)
        p = rng.uniform() if model == "m2" else (0.6 if uid == "a" else 0.2)
        rows.append({"model": model, "unique_id": uid, "cutoff": c, "ds": ds, "h": h, "y": y[(uid, ds)],
                     "p_ge_5": p})
    return pd.DataFrame(rows)


def brute_naive(panel: pd.DataFrame, uid: str, cutoff: pd.Timestamp, window: int) -> bool:
    s = panel[panel["unique_id"] == uid].set_index("ds")["y"]
    i = list(s.index).index(cutoff)
    before = list(s.iloc[max(0, i - window):i])
    return bool(before) and s.iloc[i] > max(before)


def brute(rows: list[dict], k: int = 5) -> tuple[int, int, int, int]:
    alerts = sum(r["alert"] for r in rows)
    hits = sum(r["alert"] and r["y"] >= k for r in rows)
    fa = sum(r["alert"] and r["y"] < k for r in rows)
    miss = sum((not r["alert"]) and r["y"] >= k for r in rows)
    return alerts, hits, fa, miss


def test_alert_counts_known_values():
    out = alert_counts(np.array([1, 1, 0, 0, 1], bool), np.array([1, 0, 1, 0, 1], bool))
    assert (out["alerts"], out["hits"], out["false_alarms"], out["misses"], out["events"]) == (3, 2, 1, 1, 3)
    assert out["hit_rate"] == pytest.approx(2 / 3) and out["false_alarm_ratio"] == pytest.approx(1 / 3)
    assert out["brier"] == pytest.approx(2 / 5)  # 0/1 decisions: the share of wrong ones
    none = alert_counts(np.zeros(3, bool), np.zeros(3, bool))
    assert np.isnan(none["hit_rate"]) and np.isnan(none["false_alarm_ratio"])


@pytest.mark.parametrize("window", [1, 3, 12])
def test_naive_rule_matches_brute_force(window):
    panel = hand_panel()
    got = naive_alerts(panel, window).set_index(["unique_id", "cutoff"])["naive_alert"]
    for uid, d in itertools.product(("a", "b"), MONTHS):
        assert got[(uid, d)] == brute_naive(panel, uid, d, window), (uid, d)


def test_score_alerts_matches_brute_force_per_model_overall_and_naive():
    panel = hand_panel()
    fc = hand_backtest(panel)
    chosen = {"a": "m2", "b": "m1"}
    out = score_alerts(fc, panel, k=5, probability=0.5, window=3, chosen=chosen).set_index(["model", "h"])
    records = fc.to_dict("records")
    for r in records:
        r["alert"] = r["p_ge_5"] >= 0.5
    for h in ("1", "all"):
        keep = [r for r in records if h == "all" or r["h"] == 1]
        for model in ("m1", "m2"):
            want = brute([r for r in keep if r["model"] == model])
            assert tuple(out.loc[(model, h), ["alerts", "hits", "false_alarms", "misses"]]) == want
        used = [r for r in keep if chosen[r["unique_id"]] == r["model"]]
        assert tuple(out.loc[(OVERALL, h), ["alerts", "hits", "false_alarms", "misses"]]) == brute(used)
        naive = [{**r, "alert": brute_naive(panel, r["unique_id"], r["cutoff"], 3)} for r in used]
        row = out.loc[(NAIVE, h)]
        assert tuple(row[["alerts", "hits", "false_alarms", "misses"]]) == brute(naive)
        assert row["cells"] == len(used) == out.loc[(OVERALL, h), "cells"]  # the same cells
        a, hits, fa, miss = brute(used)
        assert out.loc[(OVERALL, h), "hit_rate"] == pytest.approx(hits / (hits + miss))
        assert out.loc[(OVERALL, h), "false_alarm_ratio"] == pytest.approx(fa / a)


def test_score_alerts_skips_missing_outcomes_and_needs_the_threshold_column():
    panel = hand_panel()
    fc = hand_backtest(panel)
    fc.loc[0, "y"] = np.nan
    out = score_alerts(fc, panel, k=5, probability=0.5, window=3)
    assert out.set_index(["model", "h"]).loc[("m1", "all"), "cells"] == (fc["model"] == "m1").sum() - 1
    with pytest.raises(ValueError, match="p_ge_9"):
        score_alerts(fc, panel, k=9, probability=0.5, window=3)


def _index(n: int) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": [f"s{i}" for i in range(n)],
                         "ds": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n), "D"),
                         "h": np.ones(n, dtype=np.int64)})


def test_interval_mass_known_poisson_value():
    mu = np.array([2.0, 0.3, 11.0])
    fc = CountForecast.poisson(_index(3), mu, model="p")
    sc = scoring.score_all(fc, [1, 0, 20], levels=(80,))
    lo, hi = stats.poisson.ppf(0.1, mu), stats.poisson.ppf(0.9, mu)
    want = stats.poisson.cdf(hi, mu) - stats.poisson.cdf(lo - 1, mu)
    np.testing.assert_allclose(sc["mass_80"], want, rtol=1e-10)
    assert sc["mass_80"][0] == pytest.approx(0.947347, abs=1e-6)  # P(0 <= Y <= 4), Y ~ Poisson(2)


@settings(max_examples=40, deadline=None)
@given(mu=st.lists(st.floats(0.01, 60), min_size=1, max_size=6), alpha=st.floats(0, 3),
       level=st.sampled_from([50, 80, 95]))
def test_interval_mass_is_at_least_its_level(mu, alpha, level):
    fc = CountForecast.negbin(_index(len(mu)), np.array(mu), alpha, model="nb")
    sc = scoring.score_all(fc, np.zeros(len(mu), dtype=int), levels=(level,))
    assert (sc[f"mass_{level}"] >= level / 100 - 1e-9).all()
    assert (sc[f"mass_{level}"] <= 1 + 1e-12).all()


def test_interval_calibration_known_values_and_sentence():
    fc = pd.DataFrame({"model": ["m"] * 6 + ["z"] * 2,
                       "ds": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-02-01", "2025-03-01",
                                             "2025-03-01", "2025-04-01", "2025-01-01", "2025-02-01"]),
                       "h": [1, 1, 2, 1, 2, 2, 1, 1]})
    ps = pd.DataFrame({"coverage_80": [1, 1, 0, 0, 1, 1, 1, 1.0],
                       "mass_80": [0.9, 0.8, 0.85, 0.95, 0.9, 0.82, 0.99, 0.97]})
    out = interval_calibration(fc, ps, level=80, models=["m", "absent"])
    assert list(out["model"]) == ["m", "m"]  # a model without forecasts is skipped
    one, every = out.iloc[0], out.iloc[1]
    assert (one["h"], every["h"]) == ("1", "all")
    assert (one["periods"], one["cases"]) == (3, 3)
    assert one["covered"] == pytest.approx(2 / 3) and one["mass"] == pytest.approx((0.9 + 0.8 + 0.95) / 3)
    assert (every["periods"], every["cases"], every["max_h"]) == (4, 6, 2)
    assert every["covered"] == pytest.approx(4 / 6) and every["mass"] == pytest.approx(5.22 / 6)
    assert calibration_sentence(one, "month") == (
        "Over the last 3 months, one month ahead, the 80% range held the real count in 67% of 3 cases; "
        "the model gave it 88% probability on average.")
    assert calibration_sentence(every, "week").startswith("Over the last 4 weeks, 1 to 2 weeks ahead, ")
    with pytest.raises(ValueError, match="mass_95"):
        interval_calibration(fc, ps, level=95)
