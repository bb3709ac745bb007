"""Trend options and fallback shares of the GLM specs on real weekly, monthly and yearly panels.

Usage: python benchmarks/bench_trend_freq.py DATA_DIR [panel ...] [--models spec=k:v,k:v ...]

DATA_DIR holds the surveillance ``*_counts.csv`` panels (``../shared/data/surveillance`` in
development; not shipped). Protocol: rolling origins, expanding window, refit at every origin;
weekly: the last 52 weeks, monthly: the last 24 months, yearly: the last 5 years; horizons 1
and 6 (1 only for yearly). Reported per model and horizon: mean unfloored log score
(``scoring.log_score(fc, y, floor=0)``; inf when some outcome had probability 0), RPS, the
share of impossible outcomes (p(y) < 1e-12) and the share of fits that fell back.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from _common import threads_line
import pandas as pd

import forecast
from forecast.backtesting import backtest
from forecast.scoring import log_score

ORIGINS = {"week": 52, "month": 24, "year": 5}
SPECS = {
    "nb_linear": dict(model="negbin_glm", trend="linear"),
    "nb_damped0": dict(model="negbin_glm", trend="damped", damping=0.0),
    "nb_damped.8": dict(model="negbin_glm", trend="damped", damping=0.8),
    "nb_none": dict(model="negbin_glm", trend="none"),
    "nb_ar_damped0": dict(model="negbin_glm", trend="damped", lags=(1,)),
    "nb_ar_none": dict(model="negbin_glm", trend="none", lags=(1,)),
    "nb_ar_linear": dict(model="negbin_glm", trend="linear", lags=(1,)),
    "pois_damped0": dict(model="poisson_glm", trend="damped"),
    "pois_none": dict(model="poisson_glm", trend="none"),
}


def load(data: Path, name: str) -> pd.DataFrame:
    df = pd.read_csv(data / f"{name}_counts.csv", parse_dates=["date"])
    return df.rename(columns={"date": "ds", "region": "unique_id", "count": "y"})[["unique_id", "ds", "y"]]


def spec(kw: dict):
    kw = dict(kw)
    m = forecast.load_model(kw.pop("model"))
    return m.set_params(**kw)


def main(argv: list[str]) -> None:
    print(f"   {threads_line()}")  # the BLAS thread settings this run used (process defaults)
    data = Path(argv[0])
    names = argv[1:] or ["measlesDE", "salmNewport", "rotaBB", "prussian"]
    rows = []
    for name in names:
        panel = load(data, name)
        freq = forecast.models.base.infer_freq(panel).kind
        for h in ((1,) if freq == "year" else (1, 6)):
            for label, kw in SPECS.items():
                t0 = time.process_time()
                res = backtest(panel, {label: spec(kw)}, horizon=h, n_origins=ORIGINS[freq], keep_pmf=True)
                cpu = time.process_time() - t0
                fc = res.forecasts
                ls = np.concatenate([log_score(f, fc.loc[i, "y"].to_numpy(), floor=0)
                                     for f, i in _blocks(res)])
                sub = ls[(fc["h"] == h).to_numpy()]
                rps = res.point_scores.loc[fc["h"] == h, "rps"].mean()
                diag = res.diagnostics
                fb = diag["fallback"].astype(str).ne("none").mean()
                pen = diag["fallback"].astype(str).eq("penalised").mean()
                rows.append(dict(panel=name, freq=freq, h=h, model=label, log=float(np.mean(sub)),
                                 log_finite=float(np.mean(sub[np.isfinite(sub)])),
                                 impossible=float(np.mean(~np.isfinite(sub) | (sub > -np.log(1e-12)))),
                                 rps=float(rps), fallback=float(fb), penalised=float(pen), cpu=cpu))
                print(rows[-1], flush=True)
    out = pd.DataFrame(rows)
    print(out.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _blocks(res):
    """(forecast object, row index) per block, in forecasts row order."""
    objs = res.forecast_objects()
    start = 0
    for f in objs:
        n = f.pmf.shape[0]
        yield f, np.arange(start, start + n)
        start += n


if __name__ == "__main__":
    main(sys.argv[1:])
