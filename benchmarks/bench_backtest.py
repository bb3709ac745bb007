"""Backtest benchmark: 24 origins, horizon 6, four models, ours vs the per-series path.

    python benchmarks/bench_backtest.py [--series 2000] [--length 120] [--jobs 2] [--no-peer] [--no-sm-pass]
                                        [--rounds 1]

Models: climatology, seasonal_naive, poisson_glm, negbin_glm on NB2 series with trend
and seasonality (benchmarks/bench_models.simulate). In one run it times

* ours: ``forecast.backtest(..., jobs=N)`` with the batched engine (the default);
* ours serially (``jobs=1``), to separate the engine's gain from the second core;
* the peer: the same backtest with every model fitted and forecast one series at a
  time (``forecast.models.base.batched_engine(False)``: the per-series solvers, which
  equal statsmodels/R fits), serially;

* the yardstick of issue 15: one statsmodels NB2 pass over the same series (one fit +
  one-step mean per series, bench_glm's loop), which the jobs=1 backtest should not exceed;

and checks that they give the same scores. Runs on the machine's default threads (printed).
Prints wall and CPU times, ratios, peak memory (this process, and the largest worker
process) and mean scores. Not a test.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))

from _common import threads_line  # noqa: E402
from bench_models import simulate  # noqa: E402

MODELS = ["climatology", "seasonal_naive", "poisson_glm", "negbin_glm"]


def run(panel, args, jobs: int, batched: bool = True):
    from forecast import backtest  # (resolves model names; forecast.backtesting.backtest takes specs)
    from forecast.models.base import batched_engine

    with warnings.catch_warnings(), batched_engine(batched):
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        res = backtest(panel, MODELS, args.horizon, n_origins=args.origins, jobs=jobs, keep_pmf=False,
                       progress=True)
        return res, time.perf_counter() - t0


def print_scores(res) -> None:
    """Mean RPS, log score and 80% coverage per model."""
    print(res.scores("model", metrics=["rps", "log", "coverage_80"]).pivot(
        index="model", columns="metric", values="value").round(4).to_string())


def worker_peak_mb() -> float:
    """Largest resident size of any finished child process (loky workers are shut down first)."""
    try:
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)
    except Exception:  # noqa: BLE001 - no executor was started
        pass
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def sm_pass(panel, wall1: float, cpu1: float) -> tuple[float, float]:
    """One statsmodels NB2 pass over the same series (bench_glm's loop: trend + month dummies
    + lag 1, one fit and one-step mean per series), timed in this process after ours."""
    import statsmodels.discrete.discrete_model  # noqa: F401 - imported before timing
    from bench_glm import peer_fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c0, t0 = time.process_time(), time.perf_counter()
        peer_fit(panel, "negbin", 100)
        c1, t1 = time.process_time(), time.perf_counter()
    print(f"one statsmodels NB pass over the same {panel['unique_id'].nunique()} series: {t1 - t0:.1f} s "
          f"(CPU {c1 - c0:.1f} s); ours jobs=1 {wall1:.1f} s (CPU {cpu1:.1f} s) = "
          f"{wall1 / (t1 - t0):.2f} passes wall, {cpu1 / (c1 - c0):.2f} passes CPU (target <= 1)")
    return t1 - t0, c1 - c0


def main() -> None:
    print(f"   {threads_line()}")  # the BLAS thread settings this run used (process defaults)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--length", type=int, default=120)
    ap.add_argument("--origins", type=int, default=24)
    ap.add_argument("--horizon", type=int, default=6)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-peer", action="store_true", help="skip the (slow) per-series peer run")
    ap.add_argument("--no-sm-pass", action="store_true",
                    help="skip the statsmodels NB pass (the issue's yardstick: one NB fit per series)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="with --jobs 1: alternate ours and the statsmodels pass this many times (A, B, A, B) "
                         "and print the median ratios (a shared machine's load drifts between runs)")
    args = ap.parse_args()
    import numpy as np
    import pandas as pd

    panel = simulate(args.series, args.length)
    print(f"{args.series} series x {args.length} months, {args.origins} origins, horizon {args.horizon}, "
          f"models {', '.join(MODELS)}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    c0 = time.process_time()
    ours, wall = run(panel, args, args.jobs)
    cpu = time.process_time() - c0  # (this process only: with jobs > 1 the workers' CPU is not in it)
    workers = worker_peak_mb()
    print(f"ours (batched, jobs={args.jobs}): {wall:.1f} s   peak RSS: this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, largest worker {workers:.0f} MB")
    print(f"forecasts scored: {len(ours.forecasts):,}")
    if args.jobs == 1:
        serial, wall1, cpu1 = ours, wall, cpu
    else:
        c0 = time.process_time()
        serial, wall1 = run(panel, args, 1)
        cpu1 = time.process_time() - c0
        print(f"ours (batched, jobs=1): {wall1:.1f} s")
        pd.testing.assert_frame_equal(ours.point_scores, serial.point_scores)
    if not args.no_sm_pass:
        rounds = [(wall1, cpu1, *sm_pass(panel, wall1, cpu1))]
        for _ in range(1, args.rounds if args.jobs == 1 else 1):
            c0 = time.process_time()
            _, w = run(panel, args, 1)
            rounds.append((w, time.process_time() - c0, *sm_pass(panel, w, time.process_time() - c0)))
        if len(rounds) > 1:
            r = np.array(rounds)
            print(f"median over {len(rounds)} alternating rounds: ours {np.median(r[:, 0]):.1f} s wall / "
                  f"{np.median(r[:, 1]):.1f} s CPU, statsmodels pass {np.median(r[:, 2]):.1f} s / "
                  f"{np.median(r[:, 3]):.1f} s; ratio wall {np.median(r[:, 0] / r[:, 2]):.2f}, "
                  f"CPU {np.median(r[:, 1] / r[:, 3]):.2f} passes")
    if not args.no_peer:
        peer, wall_peer = run(panel, args, 1, batched=False)
        print(f"peer (per-series path, jobs=1): {wall_peer:.1f} s")
        diff = np.nanmax(np.abs(peer.point_scores["rps"].to_numpy() - ours.point_scores["rps"].to_numpy()))
        print(f"max |RPS difference| ours vs peer: {diff:.2e}")
        print(f"ratio: {wall_peer / wall:.1f}x faster (jobs={args.jobs}); engine alone "
              f"{wall_peer / wall1:.1f}x (both jobs=1)")
    print(f"peak RSS of this process over all runs: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print_scores(ours)


if __name__ == "__main__":
    main()
