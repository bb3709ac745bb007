"""The monthly run: ingest → panel → backtest → choose → forecast → figures → report.

:func:`run` does everything ``forecast run CONFIG`` does and writes into the
output folder (built in a temporary folder and moved into place only when
complete): ``index.html``, ``figures/*.png``, ``forecasts.csv``,
``scores.csv``, ``comparison.csv``, ``selection.csv``, ``run.json`` (resolved
config, input hashes, package versions, seed, fallbacks, warnings, timings)
and ``report_context.json`` (what ``forecast report RUN_DIR`` re-renders from).
"""
from __future__ import annotations

import hashlib
import json
import platform
import time
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from forecast._version import __version__
from forecast.exceptions import ConfigError, ForecastWarning

UCDP_CITATION = ("Contains UCDP data (Uppsala Conflict Data Program), CC BY 4.0. Cite: Sundberg & Melander (2013), "
                 "J. Peace Research 50(4); Hegre, Croicu, Eck & Högbladh (2020), Research & Politics 7(3) "
                 "for UCDP Candidate data.")
ACLED_CITATION = "Contains ACLED data (acleddata.com); use is subject to ACLED's terms of use. Cite ACLED as it asks."


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - t, 3)


def _say(cfg, msg: str) -> None:
    if not cfg.run.quiet:
        print(msg, flush=True)


def run(cfg, *, simulated: bool = False, title: str | None = None) -> Path:
    """Execute a run described by a :class:`forecast.config.RunConfig`; return the output folder."""
    from forecast.outputs import check_writable, staged_dir

    out = Path(cfg.output.dir)
    # The output folder is replaced as a whole: never one holding the config or an input.
    protected = [cfg.path, cfg.data.events, cfg.data.gazetteer,
                 *(v for v in (cfg.models.baseline, *cfg.models.labelled().values()) if isinstance(v, Path))]
    where = {"force": cfg.output.force, "protected": protected, "option": "--out or [output] dir"}
    check_writable(out, **where)
    timer = _Timer()
    warned: list[str] = []
    with warnings.catch_warnings():
        # Warnings are recorded for run.json AND shown at once (through whatever showwarning was
        # active: the CLI's printer, a test's recorder), not held back until after the run.
        warnings.simplefilter("always", ForecastWarning)
        warnings.showwarning = _recording(warnings.showwarning, warned)
        with staged_dir(out, command="demo" if simulated else "run", **where) as tmp:
            result = _execute(cfg, tmp, timer, simulated=simulated, title=title, warned=lambda: list(warned))
    _say(cfg, f"report: {out / 'index.html'}  ({result['n_series']} series, {result['seconds']:.0f} s)")
    return out


def _recording(show, warned: list[str]):
    """A showwarning that appends ForecastWarning messages to ``warned`` and forwards each new one to ``show``."""
    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ForecastWarning):
            if str(message) in warned:  # "always" above is for the record; the user sees it once
                return
            warned.append(str(message))
        show(message, category, filename, lineno, file, line)
    return showwarning


def _execute(cfg, tmp: Path, timer: _Timer, *, simulated: bool, title: str | None, warned) -> dict:
    from forecast.backtesting import backtest
    from forecast.combine import resolve_models
    from forecast.comparison import compare, select_models
    from forecast.ingest import read_events
    from forecast.outputs import write_csv
    from forecast.panel import build_panel

    t_start = time.perf_counter()
    d = cfg.data
    with timer("ingest"):
        events = read_events(d.events, d.schema, event_types=cfg.event_types or None, gazetteer=d.gazetteer,
                             max_date_precision=d.max_date_precision,
                             max_location_precision=d.max_location_precision, as_of=d.as_of,
                             dayfirst=d.dayfirst)
    _say(cfg, f"read {len(events):,} events from {Path(d.events).name}")
    with timer("panel"):
        panel = build_panel(events, d.freq, coverage=d.coverage, as_of=d.as_of, provinces=d.provinces or None,
                            countries=d.countries or None, value=d.value, gazetteer=d.gazetteer)
    n_series = panel["unique_id"].nunique()
    _say(cfg, f"panel: {n_series} series, {panel['ds'].min().date()} to {panel['ds'].max().date()}")

    labelled = cfg.models.labelled()
    baseline = _label(cfg.models.baseline)
    if baseline not in labelled:
        labelled = {baseline: cfg.models.baseline, **labelled}
    bt = cfg.backtest
    with timer("backtest"):
        res = backtest(panel, resolve_models(dict(labelled)), bt.horizon, n_origins=bt.origins, step=bt.step, window=bt.window,
                       refit_every=bt.refit_every, jobs=cfg.run.jobs, dask=cfg.run.dask, seed=cfg.run.seed,
                       levels=cfg.forecast.levels, thresholds=cfg.forecast.thresholds, keep_pmf=False,
                       progress=None if not cfg.run.quiet else False)
    with timer("compare"):
        comparison = compare(res, baseline=baseline, metrics=("rps", "log"), by=(), seed=cfg.run.seed,
                             alpha=cfg.models.alpha)
        comparison_h = compare(res, baseline=baseline, metrics=("rps",), by=("h",), seed=cfg.run.seed,
                               alpha=cfg.models.alpha)
        if cfg.models.selection == "ensemble":
            selection = pd.DataFrame({"unique_id": panel["unique_id"].unique(), "model": "ensemble",
                                      "reason": "ensemble of all candidates (configured)"})
        else:
            # Selected by log score: it punishes a forecast that gave an outcome (near)
            # zero probability, so an over-confident model (e.g. a seasonal naive
            # point mass at 0 on a sparse series) cannot win on a lucky RPS.
            selection = select_models(res, baseline=baseline, metric="log", by=cfg.models.selection,
                                      alpha=cfg.models.alpha, seed=cfg.run.seed)
    with timer("forecast"):
        fc, fitted = _final_forecast(cfg, panel, labelled, selection)
        # A point mass (zero variance at every horizon) for a series that has had
        # incidents is over-confident however well it scored on quiet backtest
        # months: such series go back to the baseline, and the reason is recorded.
        h = cfg.forecast.horizon
        uids = fc.index["unique_id"].to_numpy()[::h]
        point_mass = (np.asarray(fc.var).reshape(-1, h) == 0).all(axis=1)
        active = panel.groupby("unique_id")["y"].sum().reindex(uids).to_numpy() > 0
        chosen = selection.set_index("unique_id")["model"].reindex(uids).to_numpy()
        revert = uids[point_mass & active & (chosen != baseline)]
        if len(revert):
            sel = selection.set_index("unique_id")
            sel.loc[revert, "reason"] = sel.loc[revert, "model"] + (
                " forecast a point mass for a series with past incidents; kept " + baseline)
            sel.loc[revert, "model"] = baseline
            selection = sel.reset_index()
            fc, fitted = _final_forecast(cfg, panel, labelled, selection)
    table = fc.to_frame(levels=cfg.forecast.levels, thresholds=cfg.forecast.thresholds)
    keys = panel.drop_duplicates("unique_id")[["unique_id", "country", "province", "event_type"]]
    diag = pd.concat([f.diagnostics().assign(model=label) for label, f in fitted.items()], ignore_index=True)
    table = table.merge(keys, on="unique_id", how="left").merge(
        diag[["unique_id", "model", "fallback", "model_used", "mean_capped"]].rename(columns={"model": "chosen_model"}),
        on="unique_id", how="left")
    totals = _totals(fc, keys, cfg)
    effects = _effects(cfg, panel, labelled)

    with timer("figures"):
        figures = _figures(panel, table, res, effects, cfg, tmp / "figures")
    files = {"forecasts.csv": table, "scores.csv": res.scores(("model", "h")),
             "comparison.csv": pd.concat([comparison.assign(h="all"), comparison_h], ignore_index=True),
             "selection.csv": selection, "diagnostics.csv": diag, "panel.csv": panel}
    for name, frame in files.items():
        write_csv(frame, tmp / name, index=False, date_format="%Y-%m-%d")
    manifest = _manifest(cfg, events, panel, diag, warned(), timer, t_start)
    (tmp / "run.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    context = _context(cfg, events, panel, table, totals, effects, comparison, comparison_h, selection, labelled,
                       figures, manifest, simulated=simulated, title=title, baseline=baseline)
    (tmp / "report_context.json").write_text(json.dumps(context, indent=2, default=str), encoding="utf-8")
    render_run_dir(tmp)
    return {"n_series": n_series, "seconds": time.perf_counter() - t_start}


def _label(spec: Any) -> str:
    p = Path(str(spec))
    return p.stem if p.suffix == ".toml" else str(spec)


def _final_forecast(cfg, panel: pd.DataFrame, labelled: dict, selection: pd.DataFrame):
    """Fit each chosen model on all data for its series; forecast the horizon."""
    from forecast.distributions import CountForecast
    from forecast.combine import Ensemble, load_model

    fitted: dict[str, Any] = {}
    parts = []
    chosen = selection.set_index("unique_id")["model"]
    for label in dict.fromkeys(chosen):
        if label == "ensemble" and "ensemble" not in labelled:
            spec = Ensemble(members={str(v): load_model(v) for v in labelled.values()})
        else:
            spec = load_model(labelled[label])
        ids = chosen.index[chosen == label]
        fit = spec.fit(panel[panel["unique_id"].isin(ids)], seed=cfg.run.seed)
        fitted[label] = fit
        parts.append(fit.forecast(cfg.forecast.horizon, seed=cfg.run.seed))
    fc = CountForecast.concat(parts) if len(parts) > 1 else parts[0]
    order = np.argsort(fc.index["unique_id"].to_numpy(), kind="stable")
    return fc.subset(order), fitted


def _totals(fc, keys: pd.DataFrame, cfg, n_draws: int = 2000) -> list[dict]:
    """Country and whole-area totals over the horizon, from summed draws.

    Each series' draws come from its own predictive distribution (its sample
    paths when the model simulates); series are treated as independent given
    their forecasts, so the totals are consistent with the province forecasts.
    """
    from forecast.models.streams import totals_rng

    rng = totals_rng(cfg.run.seed)  # its own stream of the run's seed (see forecast.models.streams)
    draws = fc.sample(n_draws, rng)  # (rows, n_draws)
    uid = fc.index["unique_id"].to_numpy()
    frame = pd.DataFrame({"unique_id": uid}).merge(keys, on="unique_id", how="left")
    lvl = max(cfg.forecast.levels) if cfg.forecast.levels else 80
    q = (1 - lvl / 100) / 2
    months = pd.to_datetime(fc.index["ds"])
    label = f"{months.min():%b %Y}–{months.max():%b %Y}"
    out = []
    for et in sorted(frame["event_type"].dropna().unique()):
        for scope in [*sorted(frame["country"].dropna().unique()), "All areas"]:
            mask = (frame["event_type"] == et).to_numpy()
            if scope != "All areas":
                mask = mask & (frame["country"] == scope).to_numpy()
            tot = draws[mask].sum(axis=0)
            out.append({"scope": scope, "event_type": et, "horizon_label": label, "mean": float(tot.mean()),
                        "lo": int(np.quantile(tot, q)), "hi": int(np.quantile(tot, 1 - q)), "level": lvl})
    return out


def _effects(cfg, panel: pd.DataFrame, labelled: dict) -> pd.DataFrame | None:
    """Intervention effects of every candidate that declares interventions, fitted on all data."""
    from forecast.combine import load_model
    from forecast.interventions import effects

    parts = []
    for label, ref in labelled.items():
        spec = load_model(ref)
        if not getattr(spec, "interventions", None):
            continue
        parts.append(effects(spec.fit(panel, seed=cfg.run.seed)).assign(model=label))
    return pd.concat(parts, ignore_index=True) if parts else None


def _figures(panel, table, res, effects, cfg, folder: Path) -> list[dict]:
    from forecast import plots
    from forecast.calibration import pit_histogram, reliability

    folder.mkdir(parents=True, exist_ok=True)
    k_top = max(cfg.forecast.thresholds)
    figs: list[tuple[str, str, str, Any]] = []
    history = panel[["unique_id", "ds", "y", "country", "province", "event_type"]]
    # One forecast per series, each from the model chosen for it.
    table = table.assign(model="model chosen per series")
    figs.append(("forecasts", "Forecasts per province and event type",
                 "History (last 3 years) and the forecast: line = expected count, shaded bands = 50/80/95% "
                 "prediction intervals.", plots.small_multiples(history, table)))
    figs.append(("risk", f"Chance of at least {k_top} incidents next period",
                 f"P(Y ≥ {k_top}) for the first forecast period, per province and event type.",
                 plots.risk_heatmap(table, k=k_top, h=1)))
    tidy = res.scores(("model", "h", "cutoff"), metrics=["rps"])
    figs.append(("scores", "Backtest accuracy by horizon",
                 "Mean ranked probability score per model and horizon over the backtest origins (lower is "
                 "better); bars show 95% intervals across origins.",
                 plots.scores_by_horizon(res.scores(("model", "h"), metrics=["rps"]), metric="rps",
                                         uncertainty=tidy)))
    pits, rels = {}, {}
    for model in dict.fromkeys(res.forecasts["model"]):
        m = (res.forecasts["model"] == model).to_numpy()
        pts = res.point_scores[m]
        pits[model] = pit_histogram((pts["pit_lo"].to_numpy(), pts["pit_hi"].to_numpy()), bins=10)
        col = f"p_ge_{k_top}"
        if col in res.forecasts.columns:
            rels[model] = reliability(res.forecasts.loc[m, col].to_numpy(),
                                      (res.forecasts.loc[m, "y"] >= k_top).to_numpy())
    figs.append(("pit", "Calibration of the backtest forecasts",
                 "Non-randomised PIT histograms (Czado, Gneiting & Held 2009): flat at 1 means calibrated; "
                 "a U shape means too confident, a hump too cautious.", plots.pit_histograms(pits)))
    if rels:
        figs.append(("reliability", f"Reliability of P(Y ≥ {k_top})",
                     "Forecast probability against how often it happened in the backtest; the diagonal is perfect.",
                     plots.reliability_diagram(rels, k=k_top)))
    figs.append(("history", "Monthly history", "Observed counts per province and month, all event types.",
                 plots.history_heatmap(panel)))
    if effects is not None and len(effects):
        figs.append(("effects", "Estimated intervention effects",
                     "Rate ratios (after / before) with 95% intervals; 1 = no change.",
                     plots.effects_plot(effects)))
    out = []
    for fid, ttl, caption, fig in figs:
        plots.save(fig, folder / f"{fid}.png", dpi=100)
        out.append({"id": fid, "title": ttl, "caption": caption, "file": f"figures/{fid}.png"})
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest(cfg, events, panel, diag, warned: list[str], timer: _Timer, t_start: float) -> dict:
    import importlib.metadata as md

    from forecast.parallel import backend_name

    inputs = [Path(cfg.data.events)] + ([Path(cfg.data.gazetteer)] if cfg.data.gazetteer else [])
    if cfg.path is not None:
        inputs.append(Path(cfg.path))
    pkgs = {}
    backend = backend_name(cfg.run.jobs, cfg.run.dask)
    extra = {"loky": ("joblib",), "dask": ("dask", "distributed")}.get(backend, ())
    for name in ("incident-forecast", "numpy", "scipy", "pandas", "statsmodels", "matplotlib", "jinja2", *extra):
        try:
            pkgs[name] = md.version(name)
        except md.PackageNotFoundError:
            pkgs[name] = None
    fallbacks = diag.loc[diag["fallback"] != "none", ["unique_id", "model", "fallback", "reason"]]
    # Series whose final forecast means hit the mean cap (a multiple of the largest count seen).
    capped = diag.loc[diag["mean_capped"].fillna(False).astype(bool), "unique_id"] if "mean_capped" in diag else []
    return {
        "tool": f"incident-forecast {__version__}",
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "config": cfg.to_dict(),
        "inputs": {str(p): _sha256(p) for p in inputs if p.exists()},
        "packages": pkgs,
        "python": platform.python_version(),
        "seed": cfg.run.seed,
        # Where the backtest ran; results do not depend on it. With dask, jobs is not used.
        "execution": {"backend": backend, "jobs": None if backend == "dask" else cfg.run.jobs,
                      "dask": cfg.run.dask},
        "ingest": {k: v for k, v in events.attrs.get("ingest", {}).items() if k != "warnings"},
        "coverage": panel.attrs.get("coverage", {}),
        "fallbacks": fallbacks.to_dict("records"),
        "mean_capped": sorted(map(str, capped)),
        "warnings": list(dict.fromkeys(warned)),
        "timings_s": {**timer.timings, "total": round(time.perf_counter() - t_start, 3)},
    }


def _context(cfg, events, panel, table, totals, effects, comparison, comparison_h, selection, labelled, figures,
             manifest, *, simulated: bool, title: str | None, baseline: str) -> dict:
    from forecast.combine import load_model
    from forecast.specs import to_toml

    k_top = max(cfg.forecast.thresholds)
    lvl = 80 if 80 in cfg.forecast.levels else max(cfg.forecast.levels)
    lvl = int(lvl) if float(lvl).is_integer() else lvl
    first = table[table["h"] == 1].copy()
    rows = [{"country": r["country"], "province": r["province"], "event_type": r["event_type"],
             "mean": float(r["mean"]), "lo": int(r[f"lo-{lvl}"]), "hi": int(r[f"hi-{lvl}"]), "level": lvl,
             "p_ge": {k: float(r[f"p_ge_{k}"]) for k in cfg.forecast.thresholds},
             "model": r["chosen_model"], "fallback": "" if r["fallback"] == "none" else r["model_used"]}
            for r in first.to_dict("records")]
    top = sorted(rows, key=lambda r: -r["p_ge"][k_top])[:5]
    alerts = [{"country": r["country"], "province": r["province"], "event_type": r["event_type"],
               "period": f"{pd.Timestamp(r['ds']):%b %Y}", "k": k_top, "probability": float(r[f"p_ge_{k_top}"]),
               "model": r["chosen_model"]}
              for r in table.to_dict("records") if r[f"p_ge_{k_top}"] >= cfg.forecast.alert_probability]
    info = events.attrs.get("ingest", {})
    schema = info.get("schema", "")
    citation = UCDP_CITATION if schema == "ucdp" else ACLED_CITATION if schema == "acled" else (
        "Simulated data generated by forecast.datasets (not real incidents)." if simulated else
        "The analyst's own incident register.")
    methods = []
    for label, spec_ref in labelled.items():
        spec = load_model(spec_ref)
        methods.append({"name": label, "description": type(spec).description, "equation": spec.equation(),
                        "spec": to_toml(spec)})
    comp_rows = comparison.to_dict("records") + comparison_h.to_dict("records")
    return {
        "title": title or "Incident forecast",
        "subtitle": f"{panel['unique_id'].nunique()} series · data to {panel['ds'].max():%B %Y}",
        "generated": manifest["created"],
        "as_of": str(cfg.data.as_of or panel["ds"].max().date()),
        "simulated": simulated,
        "headline": {"period": f"{pd.Timestamp(first['ds'].min()):%B %Y}", "rows": rows, "top_risks": top,
                     "threshold": k_top},
        "alerts": alerts,
        "alert_rule": f"P(Y ≥ {k_top}) ≥ {cfg.forecast.alert_probability:.0%}",
        "totals": totals,
        **({"effects": _effect_rows(effects, panel)} if effects is not None and len(effects) else {}),
        "figures": figures,
        "comparison": {"baseline": baseline, "metric": "rps", "rows": comp_rows,
                       "note": "Skill = 1 − score / baseline score. p-value: one-sided studentised block-bootstrap "
                               "test across forecast origins that the model beats the baseline."},
        "selection": selection[["unique_id", "model", "reason"]].to_dict("records"),
        "data": {"sources": [{"file": info.get("file", ""), "schema": schema, "rows_read": info.get("rows_read"),
                              "rows_kept": info.get("rows_kept"),
                              "sha256": manifest["inputs"].get(str(cfg.data.events), "")}],
                 "coverage": panel.attrs.get("coverage", {}), "citation": citation,
                 "dropped": info.get("dropped", {}), "unknown_provinces": info.get("unknown_provinces", []),
                 "warnings": manifest["warnings"]},
        "methods": methods,
        "manifest": manifest,
    }


def _effect_rows(effects: pd.DataFrame, panel: pd.DataFrame) -> list[dict]:
    keys = panel.drop_duplicates("unique_id").set_index("unique_id")[["country", "province", "event_type"]]
    rows = []
    for r in effects.to_dict("records"):
        k = keys.loc[r["unique_id"]]
        rows.append({**r, "series": f"{k['province']} ({k['country']})", "event_type": k["event_type"],
                     "fallback": "" if r.get("fallback") in ("none", None) else r["fallback"]})
    return rows


def render_run_dir(run_dir: str | Path) -> Path:
    """(Re-)render ``index.html`` of a run folder from its ``report_context.json`` and figures."""
    from forecast.outputs import MARKER, is_ours
    from forecast.report import write_report

    run_dir = Path(run_dir)
    if not is_ours(run_dir):  # index.html is written into it: never into a folder of the user's
        raise ConfigError(f"{run_dir} is not a run folder written by incident-forecast (it holds neither {MARKER} "
                          f"nor its run.json); nothing was written. Give the folder of a 'forecast run'.")
    ctx_path = run_dir / "report_context.json"
    if not ctx_path.exists():
        raise ConfigError(f"{run_dir} is not a run folder: report_context.json is missing.")
    context = json.loads(ctx_path.read_text(encoding="utf-8"))
    for fig in context.get("figures", []):
        png = run_dir / fig.pop("file")
        if not png.exists():
            raise ConfigError(f"{run_dir}: figure {png.name} is missing; rerun the forecast.")
        fig["png"] = png.read_bytes()
    # JSON turns int keys (thresholds) into strings; the report wants them back as ints.
    for r in context.get("headline", {}).get("rows", []) + context.get("headline", {}).get("top_risks", []):
        r["p_ge"] = {int(k): v for k, v in r["p_ge"].items()}
    return write_report(context, run_dir / "index.html")
