"""Scoring 1,000,000 NB2 forecasts: ours (forecast.scoring on a CountForecast) vs scipy/scoringrules.

    source <your venv>/bin/activate
    python benchmarks/bench_scoring.py [--rows 1000000] [--seed 3] [--repeats 3] [--history-max N]

Forecasts: NB2 with province-panel-like means (lognormal: median about 1.3, ~10% above 5,
a few in the tens, capped at 100), alpha uniform in 0.1-1; outcomes y drawn from them.

Ours: ``CountForecast.negbin(index, mu, alpha)`` (construction timed on its own: it
builds the dense pmf), then RPS (``scoring.rps``), log score (``scoring.log_score``)
and PIT bounds F(y-1), F(y) (``fc.cdf``) -- target <= 2 s for these three -- and,
separately, ``scoring.score_all`` (every score incl. PIT in one pass).

Peer, vectorised: ``scipy.stats.nbinom.logpmf`` (log score), ``nbinom.cdf`` (PIT) and
``scoringrules.crps_negbinom`` (RPS: for integer-valued forecasts the RPS equals the
CRPS). Agreement is checked (max abs difference per score; ours floors p(y) at 1e-12
in the log score, the peer's is floored the same way for the comparison).

Each scoring call (ours and the peer's) is timed ``--repeats`` times and the best is
reported (the machine is shared; construction is timed once); the ratios are also
printed on CPU time (process_time), which other jobs distort less. The peer runs first, so the peak RSS printed after it is the peer's (plus the data);
the final peak is the process peak (ours holds the 1e6 x (K+1) pmf). Not a test.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from _common import header, memory_line, peak_rss_mb, ratio_line


def make(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mu = np.minimum(np.exp(rng.normal(0.25, 1.0, n)), 100.0)
    alpha = rng.uniform(0.1, 1.0, n)
    y = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
    return mu, alpha, y


CPU: dict[str, float] = {}  # best CPU time (process_time) per timed call, by label


def best_of(fn, repeats: int, label: str = ""):
    best, cpu, out = float("inf"), float("inf"), None
    for _ in range(max(1, repeats)):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    CPU[label] = cpu
    return out, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats of each scoring call (best kept)")
    ap.add_argument("--history-max", type=float, default=None,
                    help="passed to CountForecast.negbin (support cap K <= max(200, 10 x this)); default None")
    args = ap.parse_args()
    import scipy.stats as st

    from forecast import scoring
    from forecast.distributions import CountForecast

    try:
        import scoringrules as sr
    except ImportError:
        sr = None
    header("bench_scoring: RPS + log score + PIT of NB2 forecasts", "numpy", "scipy", "scoringrules", "forecast")
    n = args.rows
    mu, alpha, y = make(n, args.seed)
    print(f"{n:,} NB2 forecasts: mu median {np.median(mu):.2f}, share > 5 {np.mean(mu > 5):.1%}, "
          f"share > 20 {np.mean(mu > 20):.2%}, max {mu.max():.1f}; alpha 0.1-1; y mean {y.mean():.2f}, max {y.max()}")
    index = pd.DataFrame({"unique_id": np.repeat(np.arange(n // 12 + 1).astype(str), 12)[:n],
                          "ds": np.tile(pd.date_range("2026-01-01", periods=12, freq="MS"), n // 12 + 1)[:n],
                          "h": np.tile(np.arange(1, 13), n // 12 + 1)[:n]})

    # ---------------------------------------------------------------- peer (first: its own peak RSS)
    r, p = 1 / alpha, 1 / (1 + alpha * mu)
    tp, k = {}, args.repeats
    peer_log, tp["log"] = best_of(lambda: -st.nbinom.logpmf(y, r, p), k, "p_log")
    (peer_lo, peer_hi), tp["pit"] = best_of(lambda: (st.nbinom.cdf(y - 1, r, p), st.nbinom.cdf(y, r, p)), k, "p_pit")
    if sr is not None:
        peer_rps, tp["rps"] = best_of(lambda: np.asarray(sr.crps_negbinom(y, r, mu=mu)), k, "p_rps")
    else:
        peer_rps, tp["rps"] = None, float("nan")
    peer_total = sum(v for v in tp.values() if np.isfinite(v))
    print(f"peer (best of {k}): scipy nbinom.logpmf {tp['log']:.2f} s, nbinom.cdf x2 (PIT) {tp['pit']:.2f} s, "
          + (f"scoringrules.crps_negbinom {tp['rps']:.2f} s" if sr else "scoringrules not installed (no RPS)")
          + f" -> total {peer_total:.2f} s; peak RSS so far {peak_rss_mb():.0f} MB")

    # ---------------------------------------------------------------- ours
    t0 = time.perf_counter()
    fc = CountForecast.negbin(index, mu, alpha, model="bench", history_max=args.history_max)
    t_build = time.perf_counter() - t0
    ours_rps, t_rps = best_of(lambda: scoring.rps(fc, y), k, "o_rps")
    ours_log, t_log = best_of(lambda: scoring.log_score(fc, y), k, "o_log")
    (ours_lo, ours_hi), t_pit = best_of(lambda: (fc.cdf(y - 1), fc.cdf(y)), k, "o_pit")
    allsc, t_all = best_of(lambda: scoring.score_all(fc, y), k, "o_all")
    ours3 = t_rps + t_log + t_pit
    print(f"ours: CountForecast.negbin {t_build:.2f} s (K = {fc.K}, pmf {fc.pmf.nbytes / 1e9:.2f} GB, "
          f"max tail {fc.tail.max():.2g}; not counted in the scoring time)")
    print(f"ours (best of {k}): rps {t_rps:.2f} s, log_score {t_log:.2f} s, PIT fc.cdf(y-1), fc.cdf(y) {t_pit:.2f} s "
          f"-> total {ours3:.2f} s (target <= 2 s: {'met' if ours3 <= 2 else 'NOT met'}); "
          f"score_all (all scores incl. RPS, log, PIT in one pass) {t_all:.2f} s "
          f"(target: {'met' if t_all <= 2 else 'NOT met'})")
    ratio_line("RPS + log score + PIT (separate calls)", peer_total, ours3)
    ratio_line("RPS + log score + PIT vs our score_all", peer_total, t_all)
    ratio_line("incl. building the CountForecast", peer_total, ours3 + t_build)
    p_cpu = sum(v for key, v in CPU.items() if key.startswith("p_"))
    ratio_line("CPU time (less sensitive to other jobs), 3 calls", p_cpu, CPU["o_rps"] + CPU["o_log"] + CPU["o_pit"])
    ratio_line("CPU time, vs our score_all", p_cpu, CPU["o_all"])

    # ---------------------------------------------------------------- agreement
    floor = -np.log(scoring.LOG_FLOOR)
    floored = peer_log > floor
    d_log = np.abs(ours_log - np.minimum(peer_log, floor))
    print(f"agreement (max abs diff): log score {d_log.max():.3g} ({floored.sum()} rows at the 1e-12 floor), "
          f"PIT lo {np.abs(ours_lo - peer_lo).max():.3g}, PIT hi {np.abs(ours_hi - peer_hi).max():.3g}, "
          f"score_all pit_hi vs cdf {np.abs(allsc['pit_hi'] - ours_hi).max():.3g}")
    if peer_rps is not None:
        d = np.abs(ours_rps - peer_rps)
        bad = ~np.isfinite(peer_rps)
        rel = d / np.maximum(np.abs(peer_rps), 1e-12)
        i = int(np.nanargmax(np.where(bad, -np.inf, d)))
        print(f"  RPS: max abs diff {np.nanmax(np.where(bad, np.nan, d)):.3g}, max rel diff "
              f"{np.nanmax(np.where(bad, np.nan, rel)):.3g}, non-finite peer values {bad.sum()}; "
              f"worst row mu={mu[i]:.3f} alpha={alpha[i]:.3f} y={y[i]}: ours {ours_rps[i]:.12g} "
              f"scoringrules {peer_rps[i]:.12g}; score_all rps vs rps {np.abs(allsc['rps'] - ours_rps).max():.3g}")
    memory_line("(ours ran last; see the peer's figure above)")


if __name__ == "__main__":
    main()
