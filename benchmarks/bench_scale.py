"""Scale check: a rolling-origin backtest of 20,000 series on this machine.

    python benchmarks/bench_scale.py [--series 20000] [--origins 24] [--horizon 6] [--jobs 2]

The same four models and series generator as ``bench_backtest.py``, ten times the
series. Series are split into chunks of ``forecast.backtesting.SERIES_CHUNK`` per task,
so a worker only ever holds one chunk's designs and predictive distributions; what
grows with the panel is the result (one row per scored forecast), which the main process
assembles as tasks finish (``forecast._backtest_collect``). Prints the wall and CPU time,
the resident memory of this process (before the backtest, its peak sampled every 0.2 s
during it, and its lifetime peak), the peak of the largest worker, and the result size
against the issue's target of 4 GB (4 x 2**30 bytes) in the main process.
Not a test (and not a peer comparison: ``bench_backtest.py`` has the peer).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from _common import RssSampler, rss_mb, threads_line  # noqa: E402

from bench_backtest import MODELS, print_scores, worker_peak_mb  # noqa: E402
from bench_models import simulate  # noqa: E402


def main() -> None:
    print(f"   {threads_line()}")  # the BLAS thread settings this run used (process defaults)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=20_000)
    ap.add_argument("--length", type=int, default=120)
    ap.add_argument("--origins", type=int, default=24)
    ap.add_argument("--horizon", type=int, default=6)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    from forecast import backtest  # (resolves model names; forecast.backtesting.backtest takes specs)
    from forecast.backtesting import SERIES_CHUNK

    t0 = time.perf_counter()
    panel = simulate(args.series, args.length)
    t_sim = time.perf_counter() - t0
    print(f"{args.series:,} series x {args.length} months ({len(panel):,} rows, simulated in {t_sim:.0f} s), "
          f"{args.origins} origins, horizon {args.horizon}, models {', '.join(MODELS)}, jobs {args.jobs}, "
          f"{SERIES_CHUNK} series per task; load average {os.getloadavg()[0]:.1f}")
    before = rss_mb()
    with warnings.catch_warnings(), RssSampler() as sampled:
        warnings.simplefilter("ignore")
        c0, t0 = time.process_time(), time.perf_counter()
        res = backtest(panel, MODELS, args.horizon, n_origins=args.origins, jobs=args.jobs, keep_pmf=False,
                       progress=True)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    mem = (res.forecasts.memory_usage(deep=True).sum() + res.point_scores.memory_usage(deep=True).sum()
           + res.diagnostics.memory_usage(deep=True).sum()) / 2**20
    life = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"wall time: {wall:.0f} s ({wall / 60:.1f} min); CPU of this process {cpu:.0f} s; "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"main process RSS: {before:.0f} MB before the backtest, {sampled.peak:.0f} MB sampled peak during it, "
          f"{life:.0f} MB lifetime peak ({life / 1024:.2f} GiB: {'within' if life <= 4096 else 'OVER'} "
          f"the 4 GiB target); largest worker {worker_peak_mb():.0f} MB")
    print(f"forecasts scored: {len(res.forecasts):,} (result frames {mem:.0f} MB, "
          f"{mem * 2**20 / max(len(res.forecasts), 1):.0f} bytes per forecast)")
    print_scores(res)


if __name__ == "__main__":
    main()
