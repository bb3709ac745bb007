"""Backtest benchmark: 24 origins, horizon 6, four models on simulated monthly series.

    python benchmarks/bench_backtest.py [--series 2000] [--length 120] [--jobs 1]

Models: climatology, seasonal_naive, poisson_glm, negbin_glm. Prints wall time,
peak resident memory and the mean RPS per model (lower is better). Series are
NB2 with trend and seasonality (benchmarks/bench_models.simulate). Not a test.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(__file__))

from bench_models import simulate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--length", type=int, default=120)
    ap.add_argument("--origins", type=int, default=24)
    ap.add_argument("--horizon", type=int, default=6)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    from forecast.backtesting import backtest

    panel = simulate(args.series, args.length)
    models = ["climatology", "seasonal_naive", "poisson_glm", "negbin_glm"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        res = backtest(panel, models, args.horizon, n_origins=args.origins, jobs=args.jobs, keep_pmf=False,
                       progress=True)
        wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{args.series} series x {args.length} months, {args.origins} origins, horizon {args.horizon}, "
          f"jobs {args.jobs}")
    print(f"wall time: {wall:.1f} s   peak RSS: {peak:.0f} MB (largest worker {children:.0f} MB)")
    print(f"forecasts scored: {len(res.forecasts):,}")
    print(res.scores("model", metrics=["rps", "log", "coverage_80"]).pivot(
        index="model", columns="metric", values="value").round(4).to_string())


if __name__ == "__main__":
    main()
