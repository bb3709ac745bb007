"""Fit time of the endemic-epidemic spatial model against panel size (issue 13).

Simulated weekly-like panels on a lattice of regions (rook neighbours), NB endemic-epidemic
process with power-law weights; the default spec (power law, one harmonic, shared ψ) is fitted
by ``EndemicEpidemic.fit`` (the whole spec: panel split, orders, solver, per-series results)
and, separately, the solver alone on the arrays. Also prints the agreement with R's hhh4 on the
bundled reference (tests/reference_data/spatial). Run: ``python benchmarks/bench_spatial.py``.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from forecast.models import _hhh4fit as hh  # noqa: E402
from forecast.models.spatial import EndemicEpidemic  # noqa: E402

REF = Path(__file__).resolve().parent.parent / "tests" / "reference_data" / "spatial"
PERIOD = 365.25 / 7


def lattice_panel(n: int, T: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A weekly panel of ``n`` regions on a near-square lattice and its neighbour pairs."""
    cols = int(np.ceil(np.sqrt(n)))
    names = [f"r{i:03d}" for i in range(n)]
    pairs = [(names[i], names[i + 1]) for i in range(n - 1) if (i + 1) % cols]
    pairs += [(names[i], names[i + cols]) for i in range(n - cols)]
    adj = pd.DataFrame(pairs, columns=["region_a", "region_b"])
    from forecast.adjacency import read_adjacency, region_orders

    O = region_orders(read_adjacency(adj), [("", u) for u in names])
    W = hh.weight_matrix(O, "powerlaw", 1.8)[0]
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 0.6, n)
    Y, prev = np.zeros((T, n), dtype=np.int64), np.zeros(n)
    for t in range(T):
        mu = np.exp(a + 0.5 * np.sin(2 * np.pi * t / PERIOD) - 0.3 * np.cos(2 * np.pi * t / PERIOD)) \
            + 0.4 * prev + 0.15 * (W.T @ prev)
        Y[t] = rng.negative_binomial(1 / 0.5, 1 / (1 + 0.5 * mu))
        prev = Y[t]
    ds = pd.date_range("2015-01-05", periods=T, freq="W-MON")
    frame = pd.DataFrame({"unique_id": np.repeat(names, T), "ds": np.tile(ds, n), "y": Y.T.ravel()})
    return frame, adj


def time_fit(n: int, T: int, repeats: int) -> dict:
    frame, adj = lattice_panel(n, T)
    spec = EndemicEpidemic()
    best, fm = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        fm = spec.fit(frame, adjacency=adj)
        best = min(best, time.perf_counter() - t0)
    g = fm._groups[0]
    t0 = time.perf_counter()
    f = hh.fit(g.problem)
    solver = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm.forecast(4, seed=0)
    fc4 = time.perf_counter() - t0
    return {"regions": n, "periods": T, "parameters": len(f.theta), "fit_s": best, "solver_s": solver,
            "iterations": f.n_iter, "converged": f.converged, "forecast_h4_s": fc4,
            "fallback": int((fm.diagnostics()["fallback"] != "none").sum())}


def r_agreement() -> dict:
    panel = pd.read_csv(REF / "spatial_panel.csv")[["unique_id", "ds", "y", "population_share"]]
    adj = pd.read_csv(REF / "spatial_adjacency.csv")
    ref = pd.read_csv(REF / "hhh4_reference_fit.csv").set_index("term")
    fm = EndemicEpidemic(weights="first_order", exposure="population_share").fit(panel, adjacency=adj)
    co = fm.coef().set_index("term")
    names = {"ar.1": "ar.1", "ne.1": "ne.1", "end.sin(1)": "end.sin(2 * pi * t/12)",
             "end.cos(1)": "end.cos(2 * pi * t/12)"}
    names.update({t: t for t in co.index if t.startswith("end.1.")})
    est = max(abs(co.loc[a, "estimate"] - ref.loc[b, "estimate"]) for a, b in names.items())
    se = max(abs(co.loc[a, "std_error"] / ref.loc[b, "std_error"] - 1) for a, b in names.items())
    ll = abs(fm.diagnostics()["group_loglik"].iloc[0] - ref.loc["loglik", "estimate"])
    return {"max_abs_estimate_diff": est, "max_rel_se_diff": se, "abs_loglik_diff": ll}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load average %.2f %.2f %.2f" % os.getloadavg())
    print("R hhh4 agreement:", {k: f"{v:.1e}" for k, v in r_agreement().items()})
    rows = [time_fit(n, T, args.repeats) for n, T in ((9, 156), (50, 500), (140, 400))]
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
