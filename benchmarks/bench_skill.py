"""Forecast skill of every bundled model on real panels, under issue 12's protocol.

Run: ``python benchmarks/bench_skill.py`` (``--quick`` for a smoke test, ``--help`` for options).
Writes ``benchmarks/results/skill.md`` and ``skill.csv`` and prints the tables.

Panels: every ``*_counts.csv`` in ``--data`` (default ``../shared/data/surveillance`` beside the
repository; see ``_panels.py``) and the bundled SIMULATED border log (monthly).

Protocol (rolling origins, expanding window, no look-ahead, seed 0):

- weekly panels: the last 52 weekly origins, horizon 1 (targets: the last 52 weeks);
- monthly: horizon 1 with the last 24 origins (targets: the last 24 months), and horizon 6 with
  the 24 origins whose 6-step targets are the last 24 months (origins from 30 to 7 months before
  the end; only the h = 6 cells are tabled);
- yearly: the last 5 origins, horizon 1.

Metrics per model: the mean log score **unfloored** (−log p(y) from the forecast's own pmf via
``forecast.scoring.log_score(fc, y, floor=0)``; +inf when any outcome had p = 0), the number of
"impossible" outcomes (p(y) < 1e-12), the backtest's floored log score, RPS, MAE, and CPU and wall
seconds of the model's backtest.

"previous default" is what ``forecast run`` chose by default before the ``auto`` model (candidates climatology,
seasonal_naive, negbin_glm; baseline climatology; selection per series by the floored log score
with a paired block-bootstrap test at alpha 0.05 over a 12-origin, horizon-6 backtest). At each
outer origin ``o`` the selection uses exactly the backtest ``forecast run`` would make on the data up
to ``o``: the 12 latest origins whose six targets are all <= ``o``. Every candidate's rolling forecasts
are computed once over all the origins needed, then the selection is made per origin
(:func:`default_today`). As in ``forecast run``, a chosen model whose forecast at ``o`` is a point
mass for a series with past events is replaced by the baseline (judged on the forecast rows at ``o``
that have an observed target, not on all six).

Not a test: numbers depend on the machine's load (CPU seconds less so than wall seconds).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _panels, when run as a script or imported
from _common import threads_line  # noqa: E402

#: What ``forecast run`` did by default before ``auto`` (per-series choice among three candidates);
#: today's default is the ``auto`` model, a row like any other (``--models auto,...``).
TODAY = dict(candidates=("climatology", "seasonal_naive", "negbin_glm"), baseline="climatology",
             by="series", metric="log", alpha=0.05, origins=12, horizon=6)
#: Bundled specs left out by default: the floor (``zero``) and the fixed pool (``ensemble``).
EXCLUDED = ("zero", "ensemble")
#: (horizon, origins) per frequency; a monthly h-6 run tables its h = 6 cells only.
PROTOCOL = {"week": ((1, 52),), "month": ((1, 24), (6, 24)), "year": ((1, 5),)}
#: Per frequency, models too slow for refit_every=1 today: (parameter overrides, refit_every).
#: ARIMA's search costs several CPU-seconds a fit on weekly data even without seasonal terms.
SLOW = {"week": {"arima": ({"seasonal": False}, 13)}, "month": {"arima": ({}, 6)}}
IMPOSSIBLE = 1e-12
DEFAULT_LABEL = "previous default"
RESULTS = Path(__file__).resolve().parent / "results"


def bundled_models() -> list[str]:
    """Names of the bundled specs (``models/*.toml``) minus :data:`EXCLUDED`."""
    from forecast.combine import load_model  # noqa: F401 (fails early if the package is broken)

    folder = Path(__file__).resolve().parents[1] / "models"
    return [p.stem for p in sorted(folder.glob("*.toml")) if p.stem not in EXCLUDED]


def freq_kind(frame: pd.DataFrame) -> str:
    """``"week"``, ``"month"`` or ``"year"`` (else the frequency's label) of a panel."""
    from forecast.models.base import infer_freq

    f = infer_freq(frame)
    ppy = round(float(f.periods_per_year))
    return {52: "week", 12: "month", 1: "year"}.get(ppy, str(f))


# ----------------------------------------------------------------------------- rolling forecasts
@dataclass
class Rolling:
    """One model's rolling forecasts: per-cell rows and the backtest they came from."""

    label: str
    rows: pd.DataFrame  # unique_id, ds, cutoff, h, y, mean, log, rps, abs_error, log_unfloored, pmax
    result: Any  # BacktestResult (floored scores, as select_models reads them)
    cpu: float
    wall: float
    note: str = ""
    error: str = ""


def cell_rows(result: Any) -> pd.DataFrame:
    """Per forecast cell: keys, floored scores and the unfloored log score from the pmfs."""
    from forecast.scoring import log_score

    fc = result.forecasts
    logs, pmax = [], []
    start = 0
    for obj in result.forecast_objects():  # blocks in forecasts row order
        y = fc["y"].to_numpy()[start:start + obj.n_rows]
        logs.append(log_score(obj, y, floor=0))
        pmax.append(obj.pmf.max(axis=1))
        start += obj.n_rows
    out = fc[["unique_id", "ds", "cutoff", "h", "y", "mean"]].copy()
    ps = result.point_scores
    floored = "log_floored" if "log_floored" in ps else "log"  # older versions floored "log" itself
    out[["log", "rps", "abs_error"]] = ps[[floored, "rps", "abs_error"]].to_numpy()
    out["log_unfloored"] = np.concatenate(logs) if logs else np.array([])
    out["pmax"] = np.concatenate(pmax) if pmax else np.array([])
    return out


def rolling(panel: pd.DataFrame, label: str, spec: Any, horizon: int, origins: Sequence[pd.Timestamp], *,
            refit_every: int = 1, seed: int = 0, jobs: int = 1, note: str = "") -> Rolling:
    """Backtest one spec (name or ModelSpec) at explicit ``origins``; errors are recorded, not raised."""
    import forecast

    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = forecast.backtest(panel, {label: spec}, horizon, origins=list(origins), refit_every=refit_every,
                                    seed=seed, jobs=jobs, keep_pmf=True, progress=False)
            rows = cell_rows(res)
        err = ""
    except Exception as e:  # noqa: BLE001 - a model failing on a panel is a result to table
        res, rows, err = None, pd.DataFrame(), f"{type(e).__name__}: {e}".splitlines()[0][:160]
    return Rolling(label, rows, res, time.process_time() - c0, time.perf_counter() - t0, note, err)


# ----------------------------------------------------------------------------- today's default
def selection_origins(periods: pd.DatetimeIndex, origin: pd.Timestamp, *, n: int = TODAY["origins"],
                      horizon: int = TODAY["horizon"]) -> list[pd.Timestamp]:
    """The origins ``forecast run`` would backtest on the data up to ``origin``: the last ``n`` whose
    ``horizon`` targets are all <= ``origin`` (fewer, or none, early in a short panel)."""
    from forecast.backtesting import choose_origins
    from forecast.exceptions import ConfigError

    try:
        return choose_origins(periods[periods <= origin], horizon, n_origins=n)
    except ConfigError:
        return []


def needed_origins(periods: pd.DatetimeIndex, outer: Sequence[pd.Timestamp]) -> list[pd.Timestamp]:
    """Every origin the default row needs: the outer ones and each one's selection origins."""
    need = set(outer)
    for o in outer:
        need.update(selection_origins(periods, o))
    return sorted(need)


def default_today(cands: Mapping[str, Rolling], panel: pd.DataFrame, outer: Sequence[pd.Timestamp],
                  horizon: int, *, baseline: str = TODAY["baseline"], metric: str = TODAY["metric"],
                  by: str = TODAY["by"], alpha: float = TODAY["alpha"], seed: int = 0,
                  sel_horizon: int = TODAY["horizon"]) -> pd.DataFrame:
    """Today's automatic per-series choice, replayed origin by origin without look-ahead.

    Parameters
    ----------
    cands : label -> :class:`Rolling` of each candidate over (at least) :func:`needed_origins`
        with horizon >= ``max(horizon, sel_horizon)``.
    panel : the panel (``unique_id, ds, y``): its periods, and which series had events up to ``o``.
    outer : the evaluation origins.
    horizon : the evaluated horizon (cells ``h == horizon`` at each outer origin).
    baseline, metric, by, alpha, seed : as ``forecast run`` calls
        :func:`forecast.comparison.select_models` today.
    sel_horizon : horizon of the selection backtest (today's ``[backtest] horizon``).

    Returns
    -------
    The chosen candidate's cell rows at each outer origin (columns of :func:`cell_rows`) plus
    ``chosen`` (the label used) and ``n_sel`` (selection origins available).
    """
    from forecast._backtest_result import BacktestResult
    from forecast.comparison import select_models

    periods = pd.DatetimeIndex(sorted(pd.to_datetime(panel["ds"]).unique()))
    fcs = pd.concat([c.result.forecasts for c in cands.values()], ignore_index=True)
    pts = pd.concat([c.result.point_scores for c in cands.values()], ignore_index=True)
    rows = {lab: c.rows.set_index(["cutoff", "unique_id", "h"]).sort_index() for lab, c in cands.items()}
    out = []
    for o in outer:
        sel_o = selection_origins(periods, o, horizon=sel_horizon)
        # Cells of those origins only; by construction every target is <= o (asserted: no look-ahead).
        keep = (fcs["cutoff"].isin(sel_o) & (fcs["h"] <= sel_horizon)).to_numpy()
        if (fcs.loc[keep, "ds"] > o).any():
            raise AssertionError(f"look-ahead: selection at {o.date()} would read targets after it")
        at_o = {lab: r.xs(o, level="cutoff") for lab, r in rows.items()}
        uids = at_o[baseline].xs(horizon, level="h").index
        if keep.any():
            sub = BacktestResult(fcs[keep].reset_index(drop=True), pts[keep].reset_index(drop=True),
                                 pd.DataFrame(), {"horizon": sel_horizon})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sel = select_models(sub, baseline=baseline, metric=metric, by=by, alpha=alpha, seed=seed)
            chosen = sel.set_index("unique_id")["model"].reindex(uids).fillna(baseline)
        else:  # no selection backtest fits yet (forecast run would refuse): the baseline
            chosen = pd.Series(baseline, index=uids)
        hist = panel[pd.to_datetime(panel["ds"]) <= o].groupby("unique_id")["y"].sum()
        for uid, lab in chosen.items():
            if (uid, horizon) not in at_o[lab].index:
                lab = baseline  # the chosen model made no forecast here (it failed): the baseline
            mine = at_o[lab].loc[uid]
            # forecast run replaces a point-mass forecast for a series with past events by the baseline
            if lab != baseline and hist.get(uid, 0) > 0 and (mine["pmax"].to_numpy() >= 1 - 1e-12).all():
                lab, mine = baseline, at_o[baseline].loc[uid]
            cell = mine.loc[[horizon]].reset_index()
            out.append(cell.assign(unique_id=uid, cutoff=o, chosen=lab, n_sel=len(sel_o)))
    return pd.concat(out, ignore_index=True)


# ----------------------------------------------------------------------------- metrics and tables
def summarise(rows: pd.DataFrame) -> dict[str, Any]:
    """Mean scores of one model's cells: the unfloored log is +inf when any cell had p(y) = 0."""
    if rows.empty:
        return dict(n=0, log=np.nan, impossible=0, log_floored=np.nan, rps=np.nan, mae=np.nan)
    lu = rows["log_unfloored"].to_numpy(dtype=float)
    return dict(n=len(rows), log=float(lu.mean()), impossible=int((lu > -np.log(IMPOSSIBLE)).sum()),
                log_floored=float(rows["log"].mean()),
                rps=float(rows["rps"].mean()),
                mae=float(rows["abs_error"].mean()))


def evaluate_panel(panel: pd.DataFrame, models: Sequence[str], *, name: str = "panel", kind: str | None = None,
                   protocol: Mapping[str, Sequence[tuple[int, int]]] = PROTOCOL, refit_every: int = 1,
                   seed: int = 0, jobs: int = 1, slow: Mapping[str, Any] = SLOW, with_default: bool = True,
                   log=print) -> pd.DataFrame:
    """Every model (and today's default) on one panel under the protocol: one row per model and horizon."""
    from forecast.backtesting import choose_origins
    from forecast.combine import load_model

    kind = kind or freq_kind(panel)
    periods = pd.DatetimeIndex(sorted(pd.to_datetime(panel["ds"]).unique()))
    out = []
    for horizon, n in protocol.get(kind, ((1, 12),)):
        outer = choose_origins(periods, horizon, n_origins=n)
        need = needed_origins(periods, outer) if with_default else list(outer)
        long_h = max(horizon, TODAY["horizon"])
        cands: dict[str, Rolling] = {}
        for m in list(models) + [c for c in TODAY["candidates"] if with_default and c not in models]:
            spec, k, note = m, refit_every, ""
            if m in slow.get(kind, {}):
                over, k = slow[kind][m]
                spec = load_model(m).set_params(**over) if over else m
                note = ", ".join([f"{a}={b}" for a, b in over.items()] + [f"refit_every={k}"])
            cand = with_default and m in TODAY["candidates"]
            r = rolling(panel, m, spec, long_h if cand else horizon, need if cand else outer,
                        refit_every=k, seed=seed, jobs=jobs, note=note)
            if cand:
                cands[m] = r
                if r.error:
                    raise RuntimeError(f"{name}: today's candidate {m} failed: {r.error}")
            if m in models:
                cells = r.rows[r.rows["cutoff"].isin(outer) & (r.rows["h"] == horizon)] if not r.error else r.rows
                rec = dict(panel=name, freq=kind, h=horizon, origins=len(outer), model=m, **summarise(cells),
                           cpu_s=r.cpu, wall_s=r.wall, note=(r.note + ("; " if r.note and cand else "")
                                                            + (f"timed over {len(need)} origins, h 1-{long_h}"
                                                               if cand else "")) if not r.error else r.error)
                out.append(rec)
                log(f"  {name} h{horizon} {m:<16} log {rec['log']:.3f} rps {rec['rps']:.3f} "
                    f"({r.cpu:.1f} cpu-s) {r.error}")
        if with_default:
            t0, c0 = time.perf_counter(), time.process_time()
            d = default_today(cands, panel, outer, horizon, seed=seed)
            share = d["chosen"].value_counts(normalize=True)
            note = "chosen: " + ", ".join(f"{k} {v:.0%}" for k, v in share.items())
            cpu = time.process_time() - c0 + sum(c.cpu for c in cands.values())
            wall = time.perf_counter() - t0 + sum(c.wall for c in cands.values())
            out.append(dict(panel=name, freq=kind, h=horizon, origins=len(outer), model=DEFAULT_LABEL, **summarise(d),
                            cpu_s=cpu, wall_s=wall, note=note))
            log(f"  {name} h{horizon} {DEFAULT_LABEL:<16} log {out[-1]['log']:.3f} rps {out[-1]['rps']:.3f} {note}")
    return pd.DataFrame(out)


def _fmt(v: float, best: bool = False, digits: int = 3) -> str:
    s = "—" if not np.isfinite(v) and np.isnan(v) else ("+inf" if v == np.inf else f"{v:.{digits}f}")
    return f"**{s}**" if best else s


def markdown(table: pd.DataFrame, header: str = "") -> str:
    """Tables per panel and horizon; the best unfloored log and the best RPS in bold."""
    lines = [header] if header else []
    for (panel, h), g in table.groupby(["panel", "h"], sort=False):
        g = g.reset_index(drop=True)
        lines += ["", f"### {panel} ({g['freq'].iloc[0]}, h {h}, {g['origins'].iloc[0]} origins, "
                      f"{int(g['n'].max())} cells, {g['cpu_s'].sum():.0f} CPU-s)", "",
                  "| model | log (unfloored) | impossible | log floored | RPS | MAE | CPU s | wall s | note |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        lbest = g["log"].min() if np.isfinite(g["log"]).any() else np.nan  # no bold when every log is +inf
        rbest = g["rps"].min() if g["rps"].notna().any() else np.nan
        for _, r in g.iterrows():
            lines.append(f"| {r['model']} | {_fmt(r['log'], r['log'] == lbest)} | {int(r['impossible'])} | "
                         f"{_fmt(r['log_floored'])} | {_fmt(r['rps'], r['rps'] == rbest)} | {_fmt(r['mae'])} | "
                         f"{r['cpu_s']:.1f} | {r['wall_s']:.1f} | {r['note']} |")
    return "\n".join(lines) + "\n"


def protocol_text(args) -> str:
    from forecast._version import __version__ as v  # noqa: F401

    return (f"# Forecast skill on real panels (issue 12 protocol)\n\n"
            f"Generated by `python benchmarks/bench_skill.py` ({'--quick, ' if args.quick else ''}"
            f"refit_every={args.refit_every}, seed={args.seed}, jobs={args.jobs}) on "
            f"{time.strftime('%Y-%m-%d %H:%M')}; incident-forecast {v}. Protocol: see the module docstring of "
            "`benchmarks/bench_skill.py` (weekly: last 52 origins, h 1; monthly: last 24, h 1, and h 6 on the "
            "24 origins whose 6-step targets are the last 24 months; yearly: last 5, h 1; expanding window). "
            "log = mean −log p(y) unfloored (+inf if any p(y) = 0); impossible = outcomes with p(y) < 1e-12; "
            "log floored = the backtest's own log column (p floored at 1e-12). Best log and best RPS in bold. "
            f"Slow models: {SLOW} (per frequency: parameter overrides, refit_every). "
            f"'{DEFAULT_LABEL}' replays today's `forecast run` choice (candidates {', '.join(TODAY['candidates'])}, "
            "per series, floored log, alpha 0.05, 12 origins of horizon 6 ending at each origin); its seconds are "
            "the candidates' backtests over every origin it needs plus the selection. Seconds are measured on a "
            "machine shared with other jobs: compare them within a table, not across runs.\n")


def main(argv: Sequence[str] | None = None) -> int:
    print(f"   {threads_line()}")  # the BLAS thread settings this run used (process defaults)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="folder of *_counts.csv panels (default ../shared/data/surveillance)")
    ap.add_argument("--no-real", action="store_true", help="only the simulated border log")
    ap.add_argument("--panels", help="comma-separated panel names to run (default: all)")
    ap.add_argument("--models", help="comma-separated model names (default: every bundled spec but "
                    + ", ".join(EXCLUDED) + ")")
    ap.add_argument("--refit-every", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--no-default", action="store_true", help="skip the 'previous default' row")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 panels, 3 models, 4 origins")
    ap.add_argument("--out", default=str(RESULTS / "skill.md"), help="markdown file (a .csv is written beside it)")
    ap.add_argument("--merge", help="comma-separated skill CSVs of earlier (e.g. parallel) runs: table them "
                    "together into --out instead of running")
    args = ap.parse_args(argv)
    if args.merge:
        files = args.merge.split(",")
        note = f"Merged from {len(files)} runs ({', '.join(Path(f).name for f in files)}) of the same protocol.\n"
        return merge(files, Path(args.out), protocol_text(args) + "\n" + note)

    from _panels import border_panel, real_panels

    panels = ([] if args.no_real else real_panels(args.data)) + [border_panel()]
    models = args.models.split(",") if args.models else bundled_models()
    protocol = PROTOCOL
    if args.quick:
        panels = [p for p in panels if p.name in ("hepatitisA_Berlin", "border_sim")][:2] or panels[-2:]
        models = args.models.split(",") if args.models else ["climatology", "naive", "negbin_glm"]
        protocol = {k: tuple((h, 4) for h, _ in v) for k, v in PROTOCOL.items()}
    if args.panels:
        want = args.panels.split(",")
        panels = [p for p in panels if p.name in want]
    parts = []
    for p in panels:
        t0 = time.perf_counter()
        print(f"== {p.name} ({p.source}): {p.frame['unique_id'].nunique()} series, {p.frame['ds'].nunique()} periods",
              flush=True)
        parts.append(evaluate_panel(p.frame, models, name=p.name, protocol=protocol, refit_every=args.refit_every,
                                    seed=args.seed, jobs=args.jobs, with_default=not args.no_default,
                                    log=lambda s: print(s, flush=True)))
        print(f"   {p.name}: {time.perf_counter() - t0:.0f} s wall", flush=True)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        table = pd.concat(parts, ignore_index=True)
        table.to_csv(out.with_suffix(".csv"), index=False)  # after every panel: a long run keeps its numbers
    text = markdown(table, protocol_text(args))
    out.write_text(text, encoding="utf-8")
    print(text)
    return 0


def merge(csvs: Sequence[str], out: Path, header: str) -> int:
    """One table from several runs' CSVs (panels in first-seen order, today's default last)."""
    table = pd.concat([pd.read_csv(c) for c in csvs], ignore_index=True)
    table["note"] = table["note"].fillna("")
    kinds = ("week", "month", "year")  # weekly panels first, then by name; the simulated log last
    first = table.drop_duplicates("panel").set_index("panel")["freq"]
    panels = sorted(first.index, key=lambda p: (p == "border_sim", kinds.index(first[p]) if first[p] in kinds
                                                else len(kinds), p.lower()))
    table["_p"] = table["panel"].map(panels.index)
    table["_d"] = table["model"] == DEFAULT_LABEL
    table = table.sort_values(["_p", "h", "_d", "model"], kind="stable").drop(columns=["_p", "_d"])
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False)
    text = markdown(table, header)
    out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
