"""Part 2 of ``bench_glm.py`` alone: multi-step path simulation, ours vs a per-series loop.

    source <your venv>/bin/activate
    python benchmarks/bench_pathsim.py [--series 2000] [--length 120] [--paths 1000] [--horizon 12]
                                       [--rounds 2]

The same data, model and peer as part 2 of ``bench_glm.py`` (see its docstring), without
part 1's statsmodels loop (minutes): ``negbin_glm`` (trend="linear", seasonality="month",
lags=(1,)) is fitted once, and the peer draws from our coefficients on the series where
ours did not fall back (the others are left out of the peer and of the z-checks). Ours =
``fitted.forecast(horizon)``, the path-mixture forecast with its pmf; rounds interleave
ours and the peer in this process (ours, peer, ours, peer); medians of wall and CPU time.
Also prints the resident-size rise during our forecast and the size of the stored pmf
against a dense grid. Not a test.
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np

from _common import header, memory_line
from bench_glm import run_simulation, simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--length", type=int, default=120)
    ap.add_argument("--paths", type=int, default=1000)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    import forecast

    header("bench_pathsim: negbin_glm lag-1 multi-step simulation, ours vs a per-series loop",
           "numpy", "pandas", "scipy", "forecast")
    panel, _ = simulate(args.series, args.length)
    spec = forecast.load_model("negbin_glm").set_params(trend="linear", seasonality="month", lags=(1,),
                                                         n_paths=args.paths)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = spec.fit(panel)
    fb = int((fitted.diagnostics()["fallback"] != "none").sum())
    print(f"{args.series} series x {args.length} months, mean count {panel['y'].mean():.2f}; "
          f"ours fell back on {fb} series (left out of the peer)")
    peer = {uid: {"params": None} for uid in panel["unique_id"].unique()}
    run_simulation(fitted, peer, panel, args.horizon, args.paths, rounds=args.rounds)
    memory_line()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
