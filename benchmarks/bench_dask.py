"""Dask benchmark: a rolling-origin backtest of 100,000 series on a ``distributed.LocalCluster``.

    python benchmarks/bench_dask.py [--series 100000] [--length 48] [--origins 2] [--horizon 3]
                                    [--models climatology,negbin_glm] [--workers 2]

A LocalCluster of worker *processes* (``--workers``, one thread each) is the same code
path as a real cluster: ``forecast.backtest(..., dask=address)`` connects by address,
scatters the shared settings and every chunk of the panel once, submits one task per
(model, chunk of series, block of origins) and takes each result in as it finishes
(``forecast.parallel``). First, on a small panel (60 series, several chunks), it checks
that the cluster and ``jobs=1`` give identical frames. Then it runs the large panel and
prints the wall time, this process's CPU time, the peak resident memory of this process
(sampled every 0.2 s, and its lifetime peak) and of the largest worker (sampled), and the
number of forecasts scored. Series: those of ``bench_models.simulate`` (NB2, trend and
season), drawn at once (:func:`simulate`).
Not a test, and not a peer comparison (there is no peer for this run).
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



def simulate(n_series: int, length: int, seed: int = 1):
    """``bench_models.simulate``'s series (NB2, per-series level, trend, season phase and
    dispersion), drawn for all series at once: 100,000 series in seconds, not minutes."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    ds = pd.date_range("2010-01-01", periods=length, freq="MS")
    t, m = np.arange(length) / 12, ds.month.to_numpy()
    level, slope = np.log(rng.uniform(0.2, 20, n_series)), rng.normal(0, 0.05, n_series)
    phase, alpha = rng.uniform(0, 6.3, n_series), rng.uniform(0.1, 1.0, n_series)
    mu = np.exp(level[:, None] + slope[:, None] * t + 0.5 * np.sin(2 * np.pi * m / 12 + phase[:, None]))
    y = rng.negative_binomial(1 / alpha[:, None], 1 / (1 + alpha[:, None] * mu))
    ids = np.char.add("s", np.char.zfill(np.arange(n_series).astype(str), 6))
    return pd.DataFrame({"unique_id": np.repeat(ids, length),
                         "ds": np.tile(ds.values.astype("datetime64[ns]"), n_series), "y": y.ravel()})


def check_identical(address: str, models: list[str], horizon: int) -> None:
    """A small panel in several chunks: the cluster and jobs=1 give the very same frames."""
    import pandas as pd

    import forecast
    from forecast import backtesting

    panel = simulate(60, 48, seed=7)
    chunk = backtesting.SERIES_CHUNK
    backtesting.SERIES_CHUNK = 20  # three chunks per chunked model, so tasks finish out of order
    try:
        kw = dict(n_origins=3, refit_every=2, seed=3, progress=False)
        serial = forecast.backtest(panel, models, horizon, **kw)
        on_dask = forecast.backtest(panel, models, horizon, dask=address, **kw)
    finally:
        backtesting.SERIES_CHUNK = chunk
    for name in ("forecasts", "point_scores", "diagnostics"):
        pd.testing.assert_frame_equal(getattr(serial, name), getattr(on_dask, name), check_exact=True)
    print(f"small panel (60 series, chunks of 20): Dask and jobs=1 give identical frames "
          f"({len(serial.forecasts):,} forecasts)")


def main() -> None:
    print(f"   {threads_line()}")  # the BLAS thread settings of this process (workers pin one thread)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--length", type=int, default=48)
    ap.add_argument("--origins", type=int, default=2)
    ap.add_argument("--horizon", type=int, default=3)
    ap.add_argument("--models", default="climatology,negbin_glm")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    import distributed

    import forecast
    from forecast.backtesting import SERIES_CHUNK

    models = args.models.split(",")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "port in use, using another"
        cluster = distributed.LocalCluster(n_workers=args.workers, processes=True, threads_per_worker=1,
                                           host="127.0.0.1", dashboard_address=None)
    try:
        with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
            pids = list(client.run(os.getpid).values())
        check_identical(cluster.scheduler_address, models, args.horizon)
        t0 = time.perf_counter()
        panel = simulate(args.series, args.length)
        print(f"{args.series:,} series x {args.length} months ({len(panel):,} rows, simulated in "
              f"{time.perf_counter() - t0:.0f} s), {args.origins} origins, horizon {args.horizon}, models "
              f"{', '.join(models)}; LocalCluster of {args.workers} worker processes x 1 thread, "
              f"{SERIES_CHUNK} series per task; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        before = rss_mb()
        with warnings.catch_warnings(), RssSampler() as main_rss, RssSampler(pids, every=0.5) as worker_rss:
            warnings.simplefilter("ignore")
            c0, t0 = time.process_time(), time.perf_counter()
            res = forecast.backtest(panel, models, args.horizon, n_origins=args.origins, keep_pmf=False,
                                    dask=cluster.scheduler_address, progress=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        cluster.close()
    life = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"wall time: {wall:.0f} s ({wall / 60:.1f} min); CPU of this process {cpu:.0f} s; "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"main process RSS: {before:.0f} MB before the backtest, {main_rss.peak:.0f} MB sampled peak during it, "
          f"{life:.0f} MB lifetime peak; largest worker {worker_rss.peak:.0f} MB (sampled)")
    print(f"forecasts scored: {len(res.forecasts):,} ({res.forecasts['unique_id'].nunique():,} series)")
    print(res.scores("model", metrics=["rps", "log", "coverage_80"]).pivot(
        index="model", columns="metric", values="value").round(4).to_string())


if __name__ == "__main__":
    main()
