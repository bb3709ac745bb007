"""Tests of forecast.datasets: the SIMULATED border log and the bundled samples."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2
from statsmodels.discrete.discrete_model import NegativeBinomial

from forecast import datasets
from forecast.datasets import (
    SAMPLES,
    adjacency,
    fourier_terms,
    load_sample,
    sample_path,
    simulate_border_log,
    truth,
    write_border_sample,
)
from forecast.exceptions import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data"
FILES = ["border_sim_events.csv", "border_sim_truth.json", "border_sim_adjacency.csv"]
TJK_PROVINCES = {"Sughd", "Khatlon", "Gorno-Badakhshan", "Districts of Republican Subordination", "Dushanbe"}
AFG_PROVINCES = {"Badakhshan", "Takhar", "Kunduz", "Balkh"}


@pytest.fixture(scope="module")
def log() -> datasets.SimulatedLog:
    return simulate_border_log()


def test_regeneration_reproduces_committed_files_byte_for_byte(tmp_path: Path) -> None:
    paths = write_border_sample(tmp_path)
    assert [p.name for p in paths] == FILES
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
    # No temporary folder is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)


def test_bundled_sample_is_the_committed_file() -> None:
    assert sample_path("border_sim").read_bytes() == (DATA / "border_sim_events.csv").read_bytes()
    for name in SAMPLES:
        assert sample_path(name).is_file(), name
    assert sample_path("border_sim_adjacency").read_bytes() == (DATA / "border_sim_adjacency.csv").read_bytes()


def test_same_seed_same_events_other_seed_other_events(log: datasets.SimulatedLog) -> None:
    again = simulate_border_log(seed=20120101)
    pd.testing.assert_frame_equal(log.events, again.events)
    pd.testing.assert_frame_equal(log.counts, again.counts)
    other = simulate_border_log(seed=7)
    assert not log.counts["y"].equals(other.counts["y"])
    assert len(other.events) != len(log.events) or not other.events.equals(log.events)


def test_shorter_period_reproduces_the_prefix(log: datasets.SimulatedLog) -> None:
    # Per-series streams: truncating the period must not change the earlier draws.
    short = simulate_border_log(end="2016-12")
    cut = pd.Timestamp("2017-01-01")
    head = log.events[log.events["date"] < cut].drop(columns="event_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(short.events.drop(columns="event_id"), head)
    head_counts = log.counts[log.counts["ds"] < cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(short.counts, head_counts)


def test_events_aggregate_exactly_to_counts(log: datasets.SimulatedLog) -> None:
    ev, counts = log.events, log.counts
    assert list(ev.columns) == datasets.EVENT_COLUMNS
    assert counts["unique_id"].nunique() == 27
    assert set(ev["province"]) <= TJK_PROVINCES | AFG_PROVINCES
    assert set(ev["event_type"]) == {"clash", "attack", "seizure"}
    uid = ev["country"] + "/" + ev["province"] + "/" + ev["event_type"]
    agg = ev.groupby([uid.rename("unique_id"), ev["date"].dt.to_period("M").dt.to_timestamp().rename("ds")]).size()
    full = counts.set_index(["unique_id", "ds"])["y"]
    joined = agg.reindex(full.index, fill_value=0)
    assert int(agg.sum()) == int(full.sum()) == len(ev)
    np.testing.assert_array_equal(joined.to_numpy(), full.to_numpy())
    per_series = counts.groupby("unique_id")["y"].sum()
    zero = per_series[per_series == 0].index
    assert len(zero) >= 1
    assert "Tajikistan/Dushanbe/clash" in zero
    assert ev["date"].min() >= pd.Timestamp("2012-01-01")
    assert ev["date"].max() <= pd.Timestamp("2025-12-31")
    assert (ev["source"] == "simulated").all()
    assert ev["event_id"].tolist() == [f"SIM-{i:06d}" for i in range(1, len(ev) + 1)]
    keys = ["date", "country", "province", "event_type"]
    assert ev[keys].equals(ev.sort_values(keys, kind="stable")[keys].reset_index(drop=True))
    assert 8_000 <= len(ev) <= 20_000


def test_seizure_fatalities_are_mostly_zero(log: datasets.SimulatedLog) -> None:
    fat = log.events.groupby("event_type")["fatalities"].apply(lambda f: (f == 0).mean())
    assert fat["seizure"] > 0.9
    assert fat["clash"] < fat["seizure"]


def test_fighting_season_and_harvest_season_are_real(log: datasets.SimulatedLog) -> None:
    ev = log.events
    month = ev["date"].dt.month
    clash = ev["event_type"] == "clash"
    assert (clash & month.isin([5, 6, 7, 8])).sum() > 1.5 * (clash & month.isin([11, 12, 1, 2])).sum()
    seiz = ev["event_type"] == "seizure"
    assert (seiz & month.isin([6, 7, 8, 9])).sum() > 1.5 * (seiz & month.isin([12, 1, 2, 3])).sum()


@pytest.mark.parametrize("uid", ["Afghanistan/Kunduz/clash", "Afghanistan/Takhar/clash",
                                 "Afghanistan/Badakhshan/clash", "Afghanistan/Balkh/clash",
                                 "Tajikistan/Khatlon/seizure", "Tajikistan/Gorno-Badakhshan/seizure"])
def test_intervention_moves_rate_in_documented_direction(log: datasets.SimulatedLog, uid: str) -> None:
    c = log.counts[log.counts["unique_id"] == uid]
    after = c["ds"] >= pd.Timestamp(log.truth["intervention"] + "-01")
    ratio = c.loc[after, "y"].mean() / c.loc[~after, "y"].mean()
    delta = log.truth["series"][uid]["delta"]
    assert abs(delta) >= 0.4
    # Afghan clashes fall by more than half; Tajik seizures rise by more than a quarter.
    assert ratio < 0.5 if delta < 0 else ratio > 1.25


def _design(log: datasets.SimulatedLog, uid: str) -> tuple[np.ndarray, pd.DataFrame, dict[str, float]]:
    """Rebuild the true design of one series from the truth dictionary alone."""
    spec = log.truth["series"][uid]
    wide = log.counts.pivot(index="ds", columns="unique_id", values="y")
    y = wide[uid].to_numpy()
    x = pd.DataFrame(fourier_terms(wide.index.month), columns=["cos1", "sin1", "cos2", "sin2"])
    x.insert(0, "b_trend", np.arange(len(y)) / 12)
    x.insert(0, "b0", 1.0)
    x["delta"] = (wide.index >= pd.Timestamp(log.truth["intervention"] + "-01")).astype(float)

    def lag(v: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], v[:-1].astype(float)])

    true = {"b0": spec["b0"], "b_trend": spec["b_trend"], **spec["seasonal"], "delta": spec["delta"]}
    if spec["spillover_from"]:
        x["gamma"] = np.log1p(lag(wide[spec["spillover_from"]].sum(axis=1).to_numpy()))
        true["gamma"] = spec["gamma"]
    if spec["rho"]:
        x["rho"] = np.log1p(lag(y))
        true["rho"] = spec["rho"]
    true["alpha"] = spec["alpha"]
    return y, x, true


@pytest.mark.parametrize(("uid", "main_effect"), [("Afghanistan/Kunduz/clash", "delta"),
                                                  ("Tajikistan/Khatlon/seizure", "gamma")])
def test_nb_glm_recovers_true_parameters(log: datasets.SimulatedLog, uid: str, main_effect: str) -> None:
    y, x, true = _design(log, uid)
    fit = NegativeBinomial(y, x, loglike_method="nb2").fit(disp=0, maxiter=500)
    assert fit.mle_retvals["converged"]
    ci = fit.conf_int(alpha=0.001)
    assert set(ci.index) == set(true)
    outside = {k: (round(ci.loc[k, 0], 3), v, round(ci.loc[k, 1], 3)) for k, v in true.items()
               if not ci.loc[k, 0] <= v <= ci.loc[k, 1]}
    assert not outside, outside
    # Jointly too: Wald statistic of (estimate - truth) against chi2 with k dof.
    names = list(true)
    diff = fit.params[names].to_numpy() - np.array([true[k] for k in names])
    wald = float(diff @ np.linalg.solve(fit.cov_params().loc[names, names].to_numpy(), diff))
    assert chi2.sf(wald, len(names)) > 1e-3, wald
    # Not vacuous: the intervals are narrow enough to exclude 0 for the season and
    # the series' main effect, so a wrong truth file would be caught.
    for k in ("cos1", main_effect):
        assert not ci.loc[k, 0] <= 0 <= ci.loc[k, 1], k


def test_structural_zero_series_has_zero_mean(log: datasets.SimulatedLog) -> None:
    c = log.counts[log.counts["unique_id"] == "Tajikistan/Dushanbe/clash"]
    assert (c["mu"] == 0).all() and (c["y"] == 0).all()
    spec = log.truth["series"]["Tajikistan/Dushanbe/clash"]
    assert spec["b0"] is None and spec["structural_zero"]
    json.dumps(log.truth, allow_nan=False)  # strict JSON: no -Infinity


def test_adjacency_is_undirected_sorted_and_geographic(log: datasets.SimulatedLog) -> None:
    adj = log.adjacency
    assert list(adj.columns) == ["country_a", "province_a", "country_b", "province_b"]
    a = list(zip(adj["country_a"], adj["province_a"]))
    b = list(zip(adj["country_b"], adj["province_b"]))
    assert all(x < y for x, y in zip(a, b))
    assert len(set(zip(a, b))) == len(adj)
    assert list(zip(a, b)) == sorted(zip(a, b))
    cross = {(y[1], x[1]) for x, y in zip(a, b) if x[0] != y[0]}
    assert cross == {("Khatlon", "Balkh"), ("Khatlon", "Kunduz"), ("Khatlon", "Takhar"),
                     ("Khatlon", "Badakhshan"), ("Gorno-Badakhshan", "Badakhshan")}
    spill = {u: s["spillover_from"] for u, s in log.truth["series"].items() if s["gamma"] > 0}
    assert {u.split("/")[1] for u in spill} == {"Khatlon", "Gorno-Badakhshan"}


def test_bundled_truth_and_adjacency_match_the_simulator(log: datasets.SimulatedLog) -> None:
    assert truth() == json.loads(json.dumps(log.truth))
    pd.testing.assert_frame_equal(adjacency(), log.adjacency)


def test_unknown_sample_names_the_available_ones() -> None:
    with pytest.raises(ConfigError) as err:
        sample_path("nope")
    for name in SAMPLES:
        assert name in str(err.value)
    with pytest.raises(ConfigError, match="border_sim"):
        truth("ucdp_candidate_2026q1")
    with pytest.raises(ConfigError, match="not an event log"):
        load_sample("border_sim_truth")


@pytest.mark.parametrize("kwargs", [{"seed": -1}, {"seed": 1.5}, {"start": "2020-01", "end": "2019-12"},
                                    {"start": "not-a-month"}])
def test_bad_arguments_raise_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        simulate_border_log(**kwargs)


def test_readme_labels_the_sample_as_simulated(log: datasets.SimulatedLog) -> None:
    text = (DATA / "border_sim.README.md").read_text(encoding="utf-8")
    assert "SIMULATED" in text.splitlines()[0]
    for uid in log.truth["series"]:
        assert f"| {uid.replace('/', ' | ')} |" in text, uid
    assert all("sim" in f for f in FILES)


def test_load_sample_returns_canonical_events() -> None:
    ev = load_sample("border_sim")
    for col in ["event_id", "date", "country", "province", "event_type", "count", "fatalities"]:
        assert col in ev.columns
    assert len(ev) == len(pd.read_csv(DATA / "border_sim_events.csv"))
    assert int(ev["count"].sum()) == len(ev)
