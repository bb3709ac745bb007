"""ARIMA benchmark: our ``arima`` against statsforecast's AutoARIMA, same series, same run.

    python benchmarks/bench_arima.py [--series 200] [--length 120] [--horizon 12] [--no-log1p]

Simulates ``--series`` seeded monthly count series (NB2 with level 0.2-20, trend
and seasonality: benchmarks/bench_models.simulate), holds out the last
``--horizon`` months and, on the remaining months, fits and forecasts with

* ours: ``forecast.load_model("arima")`` through the public API
  (``spec.fit(panel)``, ``fitted.forecast(h)``), timed fit + forecast;
* statsforecast: ``AutoARIMA(season_length=12)`` through
  ``StatsForecast(models=[...], freq="MS", n_jobs=1)``, fed the raw counts (what
  an analyst would do) and, unless ``--no-log1p``, also fed ``log1p(y)`` with
  the forecast mapped back by ``expm1`` (the same transform ours uses; this
  gives the median on the count scale, not the mean).

Before timing, statsforecast is warmed up on a tiny series (statsforecast 2.x
has no numba JIT any more, but the first call still pays imports and set-up),
and ours on one series (imports of statsmodels). Prints wall time of each, their
ratio, the holdout mean absolute error (point forecast = the predictive mean;
ours also with the median), the MAE ratio, and peak resident memory
(``ru_maxrss``) of the process. Not a test.

statsforecast is a benchmark-only dependency (``pip install statsforecast``);
it pins ``pandas<3`` but ran correctly with pandas 3.1 here.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from _common import threads_line  # noqa: E402
import pandas as pd  # noqa: E402

from bench_models import simulate  # noqa: E402


def split(panel: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows and the last ``horizon`` rows of every series."""
    last = panel.groupby("unique_id")["ds"].transform("max")
    cut = last - pd.DateOffset(months=horizon)
    return panel[panel["ds"] <= cut].reset_index(drop=True), panel[panel["ds"] > cut].reset_index(drop=True)


def run_ours(train: pd.DataFrame, h: int):
    import forecast

    spec = forecast.load_model("arima")
    t0 = time.perf_counter()
    fitted = spec.fit(train)
    fc = fitted.forecast(h)
    wall = time.perf_counter() - t0
    out = fc.index[["unique_id", "ds"]].copy()
    out["mean"] = fc.mean
    out["median"] = fc.quantile(0.5)
    diag = fitted.diagnostics()
    return wall, out, diag


def run_statsforecast(train: pd.DataFrame, h: int, log1p: bool):
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA

    df = train[["unique_id", "ds", "y"]].astype({"y": float})
    if log1p:
        df["y"] = np.log1p(df["y"])
    sf = StatsForecast(models=[AutoARIMA(season_length=12)], freq="MS", n_jobs=1)
    t0 = time.perf_counter()
    out = sf.forecast(df=df, h=h)
    wall = time.perf_counter() - t0
    out = out.reset_index() if "unique_id" not in out.columns else out
    out = out.rename(columns={"AutoARIMA": "mean"})
    if log1p:
        out["mean"] = np.expm1(out["mean"])
    return wall, out[["unique_id", "ds", "mean"]]


def warm_up(length: int, h: int) -> None:
    tiny = simulate(2, length, seed=999)
    train, _ = split(tiny, h)
    run_statsforecast(train, h, log1p=False)
    run_ours(train[train["unique_id"] == "s0000"], h)


def mae(pred: pd.DataFrame, test: pd.DataFrame, col: str) -> float:
    m = test.merge(pred, on=["unique_id", "ds"], how="left", validate="one_to_one")
    if m[col].isna().any():
        raise RuntimeError(f"{int(m[col].isna().sum())} holdout rows have no {col} forecast")
    return float(np.mean(np.abs(m["y"].to_numpy(float) - m[col].to_numpy(float))))


def main() -> None:
    print(f"   {threads_line()}")  # the BLAS thread settings this run used (process defaults)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--length", type=int, default=120, help="months per series, holdout included")
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--no-log1p", action="store_true", help="skip statsforecast on log1p(y)")
    args = ap.parse_args()

    panel = simulate(args.series, args.length)
    train, test = split(panel, args.horizon)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm_up(args.length, args.horizon)
        t_ours, ours, diag = run_ours(train, args.horizon)
        t_sf, sf = run_statsforecast(train, args.horizon, log1p=False)
        t_sfl, sfl = (None, None) if args.no_log1p else run_statsforecast(train, args.horizon, log1p=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    import statsforecast
    import statsmodels

    n_fb = int((diag["fallback"] != "none").sum())
    print(f"{args.series} series x {args.length - args.horizon} training months, holdout {args.horizon}; "
          f"{os.cpu_count()} cores; {threads_line()}; "
          f"statsforecast {statsforecast.__version__}, statsmodels {statsmodels.__version__}, "
          f"pandas {pd.__version__}")
    print("both warmed up on a tiny panel first (statsforecast 2.x: no numba JIT, first-call set-up only)")
    n_seasonal = int(diag.loc[diag["fallback"] == "none", "message"].str.contains("[12]", regex=False).sum())
    print(f"ours: {n_fb} series fell back; {n_seasonal} seasonal models chosen")
    rows = [("ours arima (mean)", t_ours, mae(ours, test, "mean")),
            ("ours arima (median)", t_ours, mae(ours, test, "median")),
            ("statsforecast AutoARIMA, raw y", t_sf, mae(sf, test, "mean"))]
    if sfl is not None:
        rows.append(("statsforecast AutoARIMA, log1p y", t_sfl, mae(sfl, test, "mean")))
    print(f"{'model':<34}{'wall s':>9}{'ms/series':>11}{'MAE':>9}")
    for name, wall, err in rows:
        print(f"{name:<34}{wall:>9.2f}{1000 * wall / args.series:>11.1f}{err:>9.4f}")
    print(f"wall ratio ours / statsforecast(raw): {t_ours / t_sf:.2f}")
    print(f"MAE ratio ours(mean) / statsforecast(raw): {rows[0][2] / rows[2][2]:.3f}")
    if sfl is not None:
        print(f"MAE ratio ours(mean) / statsforecast(log1p): {rows[0][2] / rows[3][2]:.3f}")
    print(f"peak RSS (whole process): {peak:.0f} MB")


if __name__ == "__main__":
    main()
