"""GLM fitting and lag-model path simulation: ours vs a per-series statsmodels / numpy loop.

    source <your venv>/bin/activate
    python benchmarks/bench_glm.py [--series 2000] [--length 120] [--paths 1000] [--horizon 12]
                                   [--families negbin poisson] [--no-sim]

Data: ``--series`` simulated monthly NB2 series of length ``--length`` (seeded), DGP
log mu_t = b0 + b_trend * t/12 + s(month) + gamma * log(1 + y_{t-1}) with gamma in
0.2-0.4, alpha in 0.1-1, seasonal amplitude 0.1-0.5, long-run means log-uniform in
0.5-20. The model is correctly specified (month dummies span any 12-periodic pattern).

Part 1 (per family): ours = ``spec.fit(panel)`` + ``fitted.forecast(1)`` for
``negbin_glm`` / ``poisson_glm`` with trend="linear", seasonality="month", lags=(1,).
Peer = a plain Python loop of per-series statsmodels fits on the identical design
(intercept, t/12 with t = 0.. from the series' first month, month_2..month_12,
log(1 + y_{t-1}); rows from t = 1) -- ``NegativeBinomial(..., loglike_method="nb2")
.fit(method="newton", tol=1e-12)`` and ``GLM(..., family=Poisson()).fit(tol=1e-12,
tol_criterion="params")`` -- plus the one-step mean from the last row. Diagnostic
peer: a raw batched Newton on the same design (benchmarks/_rawnewton.py, one BLAS
thread). Ours and the raw one run 3 times each, interleaved, then the statsmodels
loop, then ours once more, all in this process on the machine's default threads
(recorded in the header); medians count. Prints the times, the ratios (targets:
NB >= 40x, Poisson >= 20x the statsmodels loop), and the max relative coefficient difference over
series where both converged (statsmodels: converged flag and max |score| <= 1e-6) and
ours reports ``fallback == 'none'``; the excluded series are counted by reason.

Part 2: multi-step simulation, ``--horizon`` steps x ``--paths`` paths. Ours =
``fitted.forecast(12)`` of the NB lag model (sample paths); peer = the same simulation
as a plain per-series, per-step Python loop of gamma-Poisson NB2 draws from the fitted
coefficients (ours where the NB model ran, statsmodels' otherwise). Prints times,
ratio and a statistical check that the path means agree (z-scores in Monte-Carlo SEs).

Every ratio is printed twice: wall clock, and CPU time of this process (process_time),
which other jobs on a shared machine distort less. The statsmodels loop takes minutes
at the default size. Not a test.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from _common import header, memory_line, ratio_line
from _rawnewton import panel_arrays, raw_fit

TERMS = ["(Intercept)", "trend"] + [f"month_{k}" for k in range(2, 13)] + ["lag1"]
SM_SCORE_TOL = 1e-6  # statsmodels counts as converged only with max |score| below this


# ----------------------------------------------------------------------------- data
def simulate(n_series: int, length: int, seed: int = 7) -> tuple[pd.DataFrame, dict]:
    """NB2 series with trend, month seasonality and one lag term log(1 + y_{t-1})."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2010-01-01", periods=length, freq="MS")
    month = ds.month.to_numpy()
    m_bar = np.exp(rng.uniform(np.log(0.5), np.log(20), n_series))  # long-run mean level
    gamma = rng.uniform(0.2, 0.4, n_series)
    alpha = rng.uniform(0.1, 1.0, n_series)
    b_trend = rng.normal(0.0, 0.05, n_series)  # log-rate change per year
    amp, phase = rng.uniform(0.1, 0.5, n_series), rng.uniform(0, 2 * np.pi, n_series)
    b0 = np.log(m_bar) - gamma * np.log1p(m_bar)  # so that mu is near m_bar at y = m_bar
    season = amp[:, None] * np.sin(2 * np.pi * np.arange(1, 13)[None, :] / 12 + phase[:, None])  # (S, 12)
    y = np.empty((n_series, length), dtype=np.int64)
    prev = rng.poisson(m_bar)
    for t in range(length):
        mu = np.exp(b0 + b_trend * t / 12 + season[:, month[t] - 1] + gamma * np.log1p(prev))
        prev = rng.poisson(rng.gamma(1 / alpha, alpha * mu))
        y[:, t] = prev
    panel = pd.DataFrame({"unique_id": np.repeat([f"s{i:04d}" for i in range(n_series)], length),
                          "ds": np.tile(ds, n_series), "y": y.ravel()})
    return panel, {"gamma": gamma, "alpha": alpha, "m_bar": m_bar}


def design(y: np.ndarray, months: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Our documented design, written independently: X (n-1, 14), y[1:], and the next row."""
    n = len(y)
    t = np.arange(n + 1, dtype=float)
    m_all = np.r_[months, months[-1] % 12 + 1]
    det = np.column_stack([np.ones(n + 1), t / 12] + [(m_all == k).astype(float) for k in range(2, 13)])
    lag = np.r_[np.nan, np.log1p(y.astype(float))]  # lag[t] = log(1 + y_{t-1}); lag[n] for the next period
    X = np.column_stack([det, lag])
    return X[1:n], y[1:].astype(float), X[n]


def split(panel: pd.DataFrame) -> list[tuple[str, np.ndarray, np.ndarray]]:
    p = panel.sort_values(["unique_id", "ds"], kind="stable")
    uid, y = p["unique_id"].to_numpy(), p["y"].to_numpy()
    months = pd.DatetimeIndex(p["ds"]).month.to_numpy()
    starts = np.r_[0, np.flatnonzero(uid[1:] != uid[:-1]) + 1, len(uid)]
    return [(uid[a], y[a:b], months[a:b]) for a, b in zip(starts[:-1], starts[1:])]


# ----------------------------------------------------------------------------- peer
def peer_fit(panel: pd.DataFrame, family: str, maxiter: int) -> dict:
    """Plain loop: one statsmodels fit per series, then the one-step mean."""
    from statsmodels.discrete.discrete_model import NegativeBinomial
    from statsmodels.genmod.families import Poisson
    from statsmodels.genmod.generalized_linear_model import GLM

    out = {}
    for uid, y, months in split(panel):
        X, yy, x_next = design(y, months)
        try:
            if family == "negbin":
                model = NegativeBinomial(yy, X, loglike_method="nb2")
                res = model.fit(method="newton", maxiter=maxiter, tol=1e-12, disp=0)
                conv = bool(res.mle_retvals["converged"])
            else:
                model = GLM(yy, X, family=Poisson())
                res = model.fit(tol=1e-12, tol_criterion="params", maxiter=maxiter)
                conv = bool(res.converged)
            params = np.asarray(res.params, dtype=float)
        except Exception as exc:  # noqa: BLE001 - a plain loop records failures and goes on
            out[uid] = {"params": None, "converged": False, "error": type(exc).__name__, "model": None}
            continue
        mean1 = float(np.exp(x_next @ params[:X.shape[1]]))
        out[uid] = {"params": params, "converged": conv, "error": "", "mean1": mean1, "model": model,
                    "x_next": x_next}
    return out


def peer_simulate(panel: pd.DataFrame, coefs: dict, horizon: int, n_paths: int, seed: int) -> dict:
    """Per series, per step: NB2 draws (gamma-Poisson) for all paths from the fitted coefficients."""
    rng = np.random.default_rng(seed)
    out = {}
    for uid, y, months in split(panel):
        c = coefs.get(uid)
        if c is None:
            continue
        beta, gamma, alpha = c
        n = len(y)
        t = np.arange(n, n + horizon, dtype=float)
        m = (months[-1] + np.arange(1, horizon + 1) - 1) % 12 + 1
        eta_det = beta[0] + beta[1] * t / 12 + np.where(m >= 2, beta[np.clip(m, 2, 12)], 0.0)
        prev = np.full(n_paths, float(y[-1]))
        paths = np.empty((horizon, n_paths))
        for j in range(horizon):
            mu = np.exp(eta_det[j] + gamma * np.log1p(prev))
            lam = rng.gamma(1.0 / alpha, alpha * mu) if alpha > 0 else mu
            prev = rng.poisson(lam).astype(float)
            paths[j] = prev
        out[uid] = paths
    return out


# ----------------------------------------------------------------------------- comparison
def compare(family: str, fitted, peer: dict, fc1) -> None:
    diag = fitted.diagnostics().set_index("unique_id")
    coef = fitted.coefficients().pivot(index="unique_id", columns="term", values="estimate")
    terms = TERMS + (["alpha"] if family == "negbin" else [])
    ours_mean1 = pd.Series(np.asarray(fc1.mean), index=fc1.index["unique_id"].to_numpy())
    reasons: dict[str, int] = {}
    n_retry = _retry_failed(family, peer, diag)
    rel, mixed, worst, d_mean1, ll_gap, sm_score_at_ours = [], [], [], [], [], []
    for uid, p in peer.items():
        why = None
        d = diag.loc[uid]
        if d["fallback"] != "none":
            why = f"ours fell back ({d['fallback']})"
        elif p["params"] is None:
            why = f"statsmodels raised {p['error']}"
        elif not p["converged"]:
            why = "statsmodels converged=False"
        elif not np.all(np.isfinite(p["params"])):
            why = "statsmodels non-finite params"
        elif family == "negbin" and not coef.loc[uid, "alpha"] > 0:
            why = "ours alpha at boundary 0 (Poisson fit returned)"
        elif family == "negbin" and not p["params"][-1] > 0:
            why = "statsmodels alpha <= 0"
        else:
            g = np.max(np.abs(p["model"].score(p["params"])))
            if not g <= SM_SCORE_TOL:
                why = f"statsmodels max|score| > {SM_SCORE_TOL:g} at its solution"
        if why:
            reasons[why] = reasons.get(why, 0) + 1
            continue
        a = coef.loc[uid, terms].to_numpy(dtype=float)
        b = p["params"]
        r = np.abs(a - b) / np.maximum(np.abs(b), 1e-8)
        rel.append(r.max())
        mixed.append((np.abs(a - b) / np.maximum(np.abs(b), 1.0)).max())
        worst.append((r.max(), uid, terms[int(r.argmax())], a[r.argmax()], b[r.argmax()]))
        d_mean1.append(abs(ours_mean1[uid] - p["mean1"]) / max(p["mean1"], 1e-8))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ll_gap.append(p["model"].loglike(a) - p["model"].loglike(b))
            sm_score_at_ours.append(np.max(np.abs(p["model"].score(a))))
    n_ok = len(rel)
    print(f"  coefficient comparison over {n_ok} of {len(peer)} series "
          f"(excluded {len(peer) - n_ok}: {reasons if reasons else 'none'})")
    if n_retry:
        print(f"  ({n_retry} series whose timed statsmodels fit failed were refitted UNTIMED from a better start "
              f"(Poisson GLM + moment alpha) just for this comparison; the failed fits still count in the peer time)")
    if not n_ok:
        return
    rel, mixed = np.asarray(rel), np.asarray(mixed)
    print(f"  max relative coef diff |a-b|/max(|b|,1e-8): {rel.max():.3g}  (median {np.median(rel):.3g}, "
          f"99th pct {np.quantile(rel, 0.99):.3g}; series above 1e-6: {(rel > 1e-6).sum()})  target <= 1e-6: "
          f"{'met' if rel.max() <= 1e-6 else 'NOT met'}")
    print(f"  max mixed diff |a-b|/max(|b|,1): {mixed.max():.3g}; max rel diff of one-step mean: "
          f"{max(d_mean1):.3g}")
    ll_gap, s_o = np.asarray(ll_gap), np.asarray(sm_score_at_ours)
    print(f"  statsmodels' loglik at OUR estimates minus at ITS estimates: min {ll_gap.min():.3g}, "
          f"max {ll_gap.max():.3g} (> 0 means ours is the better optimum); "
          f"statsmodels' max|score| at our estimates: max {s_o.max():.3g}, median {np.median(s_o):.3g}")
    for r, uid, term, a, b in sorted(worst, reverse=True)[:3]:
        print(f"    worst: {uid} {term}: ours {a:.10g} statsmodels {b:.10g} rel {r:.3g}")


def _retry_failed(family: str, peer: dict, diag: pd.DataFrame) -> int:
    """Untimed, comparison only: refit failed statsmodels NB fits from a sensible start."""
    if family != "negbin":
        return 0
    from statsmodels.discrete.discrete_model import NegativeBinomial
    from statsmodels.genmod.families import Poisson
    from statsmodels.genmod.generalized_linear_model import GLM

    n = 0
    for uid, p in peer.items():
        bad = p["params"] is None or not p["converged"] or not np.all(np.isfinite(p["params"]))
        if not bad or diag.loc[uid, "fallback"] != "none" or p["model"] is None:
            continue
        model = p["model"]
        yy, X = model.endog, model.exog
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                b = GLM(yy, X, family=Poisson()).fit(tol=1e-12, tol_criterion="params").params
                mu = np.exp(X @ b)
                a0 = max(np.sum((yy - mu) ** 2 - yy) / np.sum(mu**2), 0.05)
                res = model.fit(start_params=np.r_[b, a0], method="newton", maxiter=100, tol=1e-12, disp=0)
            except Exception:  # noqa: BLE001
                continue
        if res.mle_retvals["converged"] and np.all(np.isfinite(res.params)):
            params = np.asarray(res.params, dtype=float)
            p.update(params=params, converged=True, mean1=float(np.exp(p["x_next"] @ params[:X.shape[1]])))
            n += 1
    return n


def _time_ours(spec, panel):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c0, t0 = time.process_time(), time.perf_counter()
        fitted = spec.fit(panel)
        t1 = time.perf_counter()
        fc1 = fitted.forecast(1)
        c2, t2 = time.process_time(), time.perf_counter()
    return fitted, fc1, t2 - t0, c2 - c0, t1 - t0


def _time_raw(Y, months, nb: bool):
    """The raw batched Newton (benchmarks/_rawnewton.py), on one BLAS thread (its tuned setting)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"), np.errstate(all="ignore"):
        c0, t0 = time.process_time(), time.perf_counter()
        out = raw_fit(Y, months, nb)
        return out, time.perf_counter() - t0, time.process_time() - c0


def run_family(family: str, panel: pd.DataFrame, maxiter: int, rounds: int = 3):
    """Ours, the raw batched Newton and the statsmodels loop, interleaved in this process:
    ``rounds`` x (ours, raw), the statsmodels loop, ours once more; ours' and raw's
    median times count (the machine is shared: single runs vary by +-30%)."""
    import forecast

    spec = forecast.load_model(f"{family}_glm").set_params(trend="linear", seasonality="month", lags=(1,))
    n = panel["unique_id"].nunique()
    Y, months = panel_arrays(panel)
    ours_w, ours_c, raw_w, raw_c = [], [], [], []
    for _ in range(rounds):
        fitted, fc1, w, c, w_fit = _time_ours(spec, panel)
        ours_w.append(w), ours_c.append(c)
        raw, w, c = _time_raw(Y, months, family == "negbin")
        raw_w.append(w), raw_c.append(c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c2, t2 = time.process_time(), time.perf_counter()
        peer = peer_fit(panel, family, maxiter)
        peer_c, peer_s = time.process_time() - c2, time.perf_counter() - t2
    fitted, fc1, w, c, w_fit = _time_ours(spec, panel)
    ours_w.append(w), ours_c.append(c)
    ours, ours_cpu = float(np.median(ours_w)), float(np.median(ours_c))
    raw_s, raw_cpu = float(np.median(raw_w)), float(np.median(raw_c))
    fb = (fitted.diagnostics()["fallback"] != "none").sum()
    print(f"{family}_glm on {n} series: ours fit + forecast(1) median {ours:.3f} s of {len(ours_w)} runs "
          f"({', '.join(f'{v:.2f}' for v in ours_w)}; last fit alone {w_fit:.2f} s; "
          f"{1000 * ours / n:.3f} ms/series, {fb} fell back); statsmodels loop {peer_s:.2f} s "
          f"({1000 * peer_s / n:.2f} ms/series); raw batched Newton median {raw_s:.3f} s "
          f"({', '.join(f'{v:.2f}' for v in raw_w)})")
    target = 40 if family == "negbin" else 20
    ratio_line(f"  {family}_glm fit + one-step forecast vs statsmodels loop", peer_s, ours, target=target)
    ratio_line(f"  same, CPU time of this process (less sensitive to other jobs)", peer_c, ours_cpu, target=target)
    ratio_line(f"  diagnostic: raw batched Newton vs ours (< 1: the raw one is faster)", raw_s, ours)
    ratio_line(f"  diagnostic: statsmodels loop vs raw batched Newton", peer_s, raw_s)
    _compare_raw(family, fitted, raw)
    d = fitted.diagnostics()
    why = d.loc[d["fallback"] != "none", "reason"].str.replace(r"[-+]?\d[\d.e+-]*", "#", regex=True)
    if len(why):
        print(f"  why ours fell back (numbers masked): " + "; ".join(
            f"{c} x {r[:110]}" for r, c in why.value_counts().head(3).items()))
    compare(family, fitted, peer, fc1)
    return fitted, peer


def _compare_raw(family: str, fitted, raw) -> None:
    """The raw Newton must reach the same optimum (else its time means nothing)."""
    beta, alpha, conv, _ = raw
    coef = fitted.coefficients().pivot(index="unique_id", columns="term", values="estimate")
    diag = fitted.diagnostics().set_index("unique_id").loc[coef.index]
    ok = conv & (diag["fallback"] == "none").to_numpy()
    ours = coef[TERMS].to_numpy(dtype=float)
    if family == "negbin":
        ours, beta = np.c_[ours, coef["alpha"].to_numpy(dtype=float)], np.c_[beta, alpha]
    rel = (np.abs(ours - beta) / np.maximum(np.abs(beta), 1.0))[ok]
    print(f"  raw Newton converged on {conv.sum()} of {len(conv)} series; max |ours - raw| / max(|raw|, 1) "
          f"over {ok.sum()} series both fitted: {rel.max() if rel.size else float('nan'):.3g}")


def run_simulation(fitted, peer: dict, panel: pd.DataFrame, horizon: int, n_paths: int, rounds: int = 2) -> None:
    if fitted.spec.n_paths != n_paths:
        fitted = fitted.spec.set_params(n_paths=n_paths).fit(panel)  # refit only if paths differ
    diag = fitted.diagnostics().set_index("unique_id")
    coef = fitted.coefficients().pivot(index="unique_id", columns="term", values="estimate")
    coefs, from_ours = {}, set()
    for uid, p in peer.items():
        if diag.loc[uid, "fallback"] == "none":
            c = coef.loc[uid]
            coefs[uid] = (c[TERMS[:-1]].to_numpy(dtype=float), float(c["lag1"]), float(c["alpha"]))
            from_ours.add(uid)
        elif p["params"] is not None and np.all(np.isfinite(p["params"])):
            b = p["params"]
            coefs[uid] = (b[:13], float(b[13]), max(float(b[14]), 0.0))
    from _common import RssSampler, rss_mb

    ours_w, ours_c, peer_w, peer_c = [], [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(rounds):  # interleaved (ours, peer, ours, peer): a busy machine slows both alike
            fc = None  # (the last forecast is freed first: the RSS below is one forecast's)
            with RssSampler(every=0.05) as rss:
                base = rss_mb()
                c0, t0 = time.process_time(), time.perf_counter()
                fc = fitted.forecast(horizon)
                c1, t1 = time.process_time(), time.perf_counter()
            sims = peer_simulate(panel, coefs, horizon, n_paths, seed=11)
            c2, t2 = time.process_time(), time.perf_counter()
            ours_w.append(t1 - t0), ours_c.append(c1 - c0), peer_w.append(t2 - t1), peer_c.append(c2 - c1)
    n = len(diag)
    print(f"multi-step simulation, {horizon} steps x {n_paths} paths, {n} series "
          f"(ours: {fc.family} forecast incl. building its pmf; peer: {len(sims)} series, paths only); "
          f"{rounds} interleaved rounds, medians")
    print(f"  ours wall {', '.join(f'{v:.2f}' for v in ours_w)} s, CPU {', '.join(f'{v:.2f}' for v in ours_c)} s; "
          f"peer wall {', '.join(f'{v:.2f}' for v in peer_w)} s, CPU {', '.join(f'{v:.2f}' for v in peer_c)} s")
    ratio_line("  negbin_glm lag-1 simulation", float(np.median(peer_w)), float(np.median(ours_w)))
    ratio_line("  same, CPU time", float(np.median(peer_c)), float(np.median(ours_c)))
    grid = getattr(fc, "_grid", None)
    stored = grid.flat.size if hasattr(grid, "flat") else fc.n_rows * (fc.K + 1)
    print(f"  ours' memory: RSS rose by {rss.peak - base:.0f} MB during forecast({horizon}) (sampled); "
          f"pmf stored: {stored:,} values ({8 * stored / 2**20:.0f} MB), a dense grid would hold "
          f"{fc.n_rows:,} x {fc.K + 1:,} = {fc.n_rows * (fc.K + 1):,} ({8 * fc.n_rows * (fc.K + 1) / 2**20:.0f} MB); "
          f"paths {fc.paths.nbytes / 2**20:.0f} MB")
    # Path means agree? z = (mean_ours - mean_peer) / sqrt((var_ours + var_peer) / P) per row.
    uids = fc.index["unique_id"].to_numpy()
    m_o, v_o = np.asarray(fc.mean), np.asarray(fc.var)
    rows = [i for i, u in enumerate(uids) if u in from_ours]
    keep_uid = sorted(from_ours)
    m_p = np.concatenate([sims[u].mean(axis=1) for u in keep_uid])
    v_p = np.concatenate([sims[u].var(axis=1) for u in keep_uid])
    order = np.argsort(uids[rows], kind="stable")  # fc rows are series-major, h within
    m_o, v_o = m_o[rows][order], v_o[rows][order]
    se = np.sqrt((v_o + v_p) / n_paths)
    z = np.where(se > 0, (m_o - m_p) / np.where(se > 0, se, 1), 0.0)
    zh = z.reshape(len(keep_uid), horizon)
    se_h = se.reshape(len(keep_uid), horizon)
    pooled = (m_o - m_p).reshape(len(keep_uid), horizon).sum(axis=0) / np.sqrt((se_h**2).sum(axis=0))
    print(f"  path means over {len(keep_uid)} series x {horizon} steps (ours' coefficients in both): "
          f"share |z| > 3 = {np.mean(np.abs(z) > 3):.4%} (0.27% expected), max |z| = {np.abs(z).max():.2f}, "
          f"mean z = {z.mean():+.3f}")
    print(f"  pooled z per step h=1..{horizon} (sum over independent series): "
          + " ".join(f"{v:+.2f}" for v in pooled))
    print(f"  per-step mean z: " + " ".join(f"{v:+.2f}" for v in zh.mean(axis=0)))


def _engine_note() -> str:
    """Which fitting engine ``spec.fit`` uses in this process (for the record)."""
    try:
        from forecast.models.base import batching

        return "batched (forecast.models.base.batching() is on)" if batching() else "per-series"
    except ImportError:
        return "per-series (this version has no batched engine)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--length", type=int, default=120)
    ap.add_argument("--paths", type=int, default=1000)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--maxiter", type=int, default=100, help="statsmodels Newton/IRLS iterations")
    ap.add_argument("--families", nargs="+", default=["negbin", "poisson"], choices=["negbin", "poisson"])
    ap.add_argument("--no-sim", action="store_true", help="skip the multi-step simulation part")
    args = ap.parse_args()
    # Import statsmodels before any catch_warnings block: at import it installs its own
    # "always" filter for ConvergenceWarning, which would otherwise escape our "ignore".
    import statsmodels.discrete.discrete_model  # noqa: F401
    import statsmodels.genmod.generalized_linear_model  # noqa: F401
    import forecast  # noqa: F401

    header("bench_glm: per-series GLM fits, ours vs statsmodels loop", "numpy", "pandas", "scipy",
           "statsmodels", "forecast")
    print(f"   engine: {_engine_note()}")
    panel, _ = simulate(args.series, args.length)
    print(f"{args.series} series x {args.length} months, mean count {panel['y'].mean():.2f}, "
          f"zeros {np.mean(panel['y'] == 0):.1%}, max {panel['y'].max()}")
    fitted = {}
    for fam in args.families:
        fitted[fam] = run_family(fam, panel, args.maxiter)
    if not args.no_sim and "negbin" in fitted:
        run_simulation(*fitted["negbin"], panel, args.horizon, args.paths)
    memory_line()


if __name__ == "__main__":
    main()
