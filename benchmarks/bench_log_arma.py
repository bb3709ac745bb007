"""log_arma benchmark: our batched ARIMA(1,1,1) on log(1 + y) against a statsmodels SARIMAX loop.

    python benchmarks/bench_log_arma.py [--series 2000] [--length 120] [--peer-series 40] [--rounds 2]

Part 1, fit + 12-step forecast. ``--series`` seeded monthly count series
(benchmarks/bench_models.simulate: NB2, level 0.2-20, trend, one seasonal wave), the last
12 months held out. Ours: ``forecast.load_model("log_arma")``, ``spec.fit(train)`` and
``fitted.forecast(12)`` through the public API. Peer: statsmodels ``SARIMAX`` with the same
model on the same ``log1p(y)`` of each series (order (1, 1, 1), the Fourier pairs our fit
chose for that series as exog, ``concentrate_scale``), ``fit`` + ``get_forecast(12)``, one
series at a time, on the first ``--peer-series`` series (its time per series is scaled to
all series: stated in the output). Ours and the peer alternate (A, B, A, B over
``--rounds``) so machine load hits both alike; wall (perf_counter) and CPU
(process_time) of each round are printed and the ratios use the sums. The log-likelihoods
of the peer's series are compared with ours (same likelihood: differences are optimiser
ends).

Part 2, a backtest: ``forecast.backtest`` of ``log_arma`` alone on the bundled simulated
border panel (monthly, 27 series) with the demo's settings (h 6, 12 origins, refit every 3):
wall, CPU, mean RPS and mean log score.

Runs on the machine's defaults (log_arma limits BLAS to one thread inside its fit). Not a test.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import header  # noqa: E402

from bench_models import simulate  # noqa: E402

H = 12


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def run_ours(train):
    import forecast

    t0, c0 = _clock()
    fitted = forecast.load_model("log_arma").fit(train)
    fitted.forecast(H)
    t1, c1 = _clock()
    return t1 - t0, c1 - c0, fitted


def run_peer(train, fitted, n_peer: int):
    """SARIMAX per series on the first ``n_peer`` series: (wall, cpu, {uid: loglik})."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    from forecast.models._arma import fourier_matrix

    fits = fitted.fits()
    uids = sorted(train["unique_id"].unique())[:n_peer]
    llf = {}
    t0, c0 = _clock()
    for uid in uids:
        g = train[train["unique_id"] == uid].sort_values("ds")
        z = np.log1p(g["y"].to_numpy(dtype=float))
        k = fits[uid].state["fourier_k"] if uid in fits and fits[uid].state else 0
        u = (g["ds"].dt.month.to_numpy() - 1) / 12.0
        uf = ((g["ds"].dt.month.to_numpy()[-1] + np.arange(H)) % 12) / 12.0
        exog, exf = (fourier_matrix(u, k), fourier_matrix(uf, k)) if k else (None, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = SARIMAX(z, exog=exog, order=(1, 1, 1), concentrate_scale=True).fit(disp=False, maxiter=200)
            res.get_forecast(H, exog=exf)
        llf[uid] = res.llf
    t1, c1 = _clock()
    return t1 - t0, c1 - c0, llf


def part_fit(n_series: int, length: int, n_peer: int, rounds: int) -> None:
    panel = simulate(n_series, length)
    last = panel.groupby("unique_id")["ds"].transform("max")
    train = panel[panel["ds"] <= last - pd.DateOffset(months=H)]
    run_ours(train.head(length * 2))  # warm-up: imports
    ours, peer = [], []
    fitted = None
    for _ in range(rounds):
        w, c, fitted = run_ours(train)
        ours.append((w, c))
        w, c, llf = run_peer(train, fitted, n_peer)
        peer.append((w, c))
    scale = n_series / n_peer
    ow, oc = (sum(v[i] for v in ours) for i in (0, 1))
    pw, pc = (sum(v[i] * scale for v in peer) for i in (0, 1))
    print(f"-- fit + {H}-step forecast, {n_series} monthly series x {length - H} periods "
          f"(peer: {n_peer} series, scaled x{scale:g})")
    for i, (o, p) in enumerate(zip(ours, peer)):
        print(f"   round {i + 1}: ours wall {o[0]:.2f} s cpu {o[1]:.2f} s | "
              f"peer wall {p[0] * scale:.1f} s cpu {p[1] * scale:.1f} s (scaled)")
    print(f"   ratio peer/ours: wall {pw / ow:.1f}x, cpu {pc / oc:.1f}x")
    ll = fitted.diagnostics().set_index("unique_id")["loglik"]
    d = np.array([ll[u] - v for u, v in llf.items() if u in ll.index])
    print(f"   log-likelihood ours - SARIMAX over {len(d)} series: median {np.median(d):+.2e}, "
          f"min {d.min():+.2e}, max {d.max():+.2e}")


def part_backtest() -> None:
    import forecast
    from forecast.datasets import sample_path
    from forecast.pipeline.stages import load_panel

    panel = load_panel(sample_path("border_sim"), freq="month", as_of="2025-12-31", countries=["Tajikistan"])
    t0, c0 = _clock()
    r = forecast.backtest(panel, ["log_arma"], horizon=6, n_origins=12, refit_every=3, progress=False)
    t1, c1 = _clock()
    sc = r.scores(by="model").set_index("metric")["value"]
    print(f"-- backtest of log_arma on the bundled border panel ({panel['unique_id'].nunique()} series, "
          f"h 6, 12 origins, refit every 3): wall {t1 - t0:.2f} s, cpu {c1 - c0:.2f} s, "
          f"mean RPS {sc['rps']:.5f}, mean log score {sc['log']:.5f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--length", type=int, default=120)
    ap.add_argument("--peer-series", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    header("log_arma: batched ARIMA(1,1,1) on log1p(y) vs a statsmodels SARIMAX loop", "numpy", "statsmodels")
    part_fit(args.series, args.length, min(args.peer_series, args.series), args.rounds)
    part_backtest()


if __name__ == "__main__":
    main()
