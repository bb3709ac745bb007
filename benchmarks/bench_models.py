"""Fit + 12-step forecast of every model on simulated monthly count series.

    python benchmarks/bench_models.py [--series 500] [--length 120] [--arima-series 50]

Prints the wall time per series for each model (fit, forecast) and the share of
series that used a fallback. Series: NB2 with a linear trend, one Fourier pair
and per-series means from 0.2 to 20 (many sparse), seeded. ARIMA's automatic
order search costs seconds per series, so by default it runs on the first
``--arima-series`` series only (stated in the output). Not a test.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import threads_line
import pandas as pd


def simulate(n_series: int, length: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2010-01-01", periods=length, freq="MS")
    t = np.arange(length) / 12
    m = ds.month.to_numpy()
    frames = []
    for i in range(n_series):
        level = np.log(rng.uniform(0.2, 20))
        mu = np.exp(level + rng.normal(0, 0.05) * t + 0.5 * np.sin(2 * np.pi * m / 12 + rng.uniform(0, 6.3)))
        alpha = rng.uniform(0.1, 1.0)
        y = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
        frames.append(pd.DataFrame({"unique_id": f"s{i:04d}", "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    print(f"   {threads_line()}")  # the BLAS thread settings this run used (process defaults)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=500)
    ap.add_argument("--length", type=int, default=120)
    ap.add_argument("--arima-series", type=int, default=50)
    ap.add_argument("--horizon", type=int, default=12)
    args = ap.parse_args()
    import forecast
    from forecast.specs import available_models

    panel = simulate(args.series, args.length)
    names = [n for n in available_models() if n != "zero"] + ["zero"]
    print(f"{args.series} series x {args.length} months, {args.horizon}-step forecast")
    print(f"{'model':<16}{'series':>7}{'fit ms/series':>15}{'forecast ms/series':>20}{'fallbacks':>11}")
    for name in names:
        spec = forecast.load_model(name)
        sub = panel
        n = args.series
        if name == "arima":
            n = min(args.series, args.arima_series)
            sub = panel[panel["unique_id"].isin([f"s{i:04d}" for i in range(n)])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            fitted = spec.fit(sub)
            t1 = time.perf_counter()
            fitted.forecast(args.horizon)
            t2 = time.perf_counter()
        fb = (fitted.diagnostics()["fallback"] != "none").mean()
        print(f"{name:<16}{n:>7}{1000 * (t1 - t0) / n:>15.2f}{1000 * (t2 - t1) / n:>20.2f}{fb:>10.0%}")


if __name__ == "__main__":
    main()
