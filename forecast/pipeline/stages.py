"""The stages of a run: load the panel, backtest the candidates, choose, fit the final forecast.

Each stage is a function of frames and the run configuration; :mod:`forecast.pipeline.runner`
strings them together, times them and writes the files. Heavy libraries are imported inside
the functions so that ``import forecast.pipeline`` stays light (``forecast --help``).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import pandas as pd

#: ``progress(stage, done, total)``: what the pipeline reports while it works. A callback with
#: a ``detail`` parameter (or ``**kwargs``) also gets ``detail=`` when a step has words to say
#: (``"fitting auto on 40 series"``); see :func:`reporter`.
Progress = Callable[..., None]


def reporter(progress: Progress | None) -> Callable[..., None] | None:
    """``progress`` as a ``(stage, done, total, detail="")`` callable: ``detail`` is passed on
    only when ``progress`` takes it, so a plain ``(stage, done, total)`` callback keeps working."""
    if progress is None or getattr(progress, "takes_detail", False):
        return progress
    import inspect

    try:
        params = inspect.signature(progress).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: the plain protocol
        params = ()
    takes = any(p.name == "detail" or p.kind is p.VAR_KEYWORD for p in params)

    def report(stage: str, done: int, total: int, detail: str = "") -> None:
        if takes and detail:
            progress(stage, done, total, detail=detail)
        else:
            progress(stage, done, total)
    report.takes_detail = True  # type: ignore[attr-defined]
    return report


def is_panel_csv(path: str | Path) -> bool:
    """Whether ``path`` is a CSV whose header names ``unique_id, ds, y`` (a panel, not an events log)."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".tsv", ".txt") or not path.is_file():
        return False
    with path.open("rb") as fh:
        # Undecodable bytes are the events reader's to report; here only the header matters.
        first = fh.readline(65536).decode("utf-8-sig", errors="replace")
    sep = max((",", ";", "\t"), key=first.count)
    return {"unique_id", "ds", "y"} <= {c.strip().strip('"').lower() for c in first.split(sep)}


def load_panel(path: str | Path, *, freq: str = "month", as_of=None, schema: str = "auto",
               gazetteer=None, dayfirst: bool = True, countries=None) -> pd.DataFrame:
    """A panel from a panel CSV (``unique_id, ds, y``) or from an events file (built with ``build_panel``).

    A panel CSV is validated like an events file (see :mod:`forecast.panel_csv`)
    and must hold at least one event; its frequency (day .. year) is read from its
    dates, which must be period starts, and ``freq`` is not used. An events file
    is counted per ``freq`` (see :func:`forecast.periods.parse_freq`), with every province of
    ``countries`` a series (``build_panel``), dates read day first unless ``dayfirst`` is
    False. Either way
    ``panel.attrs["freq"]`` holds the :class:`~forecast.periods.Frequency`.
    """
    from forecast.ingest import read_events
    from forecast.panel import build_panel, require_events
    from forecast.panel_csv import read_panel_csv
    from forecast.pipeline.completeness import short_history_warning

    path = Path(path)
    if is_panel_csv(path):
        panel = read_panel_csv(path)
        require_events(panel, source=path.name)
        short_history_warning(panel)
        return panel

    events = read_events(path, schema, gazetteer=gazetteer, as_of=as_of, dayfirst=dayfirst)
    panel = build_panel(events, freq, as_of=as_of, gazetteer=gazetteer, countries=countries or None)
    short_history_warning(panel)
    return panel


def read_run_events(cfg) -> pd.DataFrame:
    """Stage *ingest*: the configured events file as canonical events, or the configured panel CSV.

    A ``[data] panel`` is read and validated here (:func:`read_run_panel`); :func:`run_panel`
    then passes it on.
    """
    from forecast.ingest import read_events

    d = cfg.data
    if d.panel is not None:
        return read_run_panel(cfg)
    return read_events(d.events, d.schema, event_types=cfg.event_types or None, gazetteer=d.gazetteer,
                       max_date_precision=d.max_date_precision, max_location_precision=d.max_location_precision,
                       as_of=d.as_of, dayfirst=d.dayfirst, only_countries=d.only_countries or None)


def read_run_panel(cfg) -> pd.DataFrame:
    """The configured ``[data] panel`` CSV (``unique_id, ds, y``; keys and covariates optional:
    missing keys are filled as ``country = "all"``, ``province = unique_id``, ``event_type = "all"``).

    Its frequency is read from its dates; a ``[data] freq`` that disagrees is an error
    (the panel's periods cannot be recounted). ``panel.attrs["source"]`` says it is a panel.
    """
    from forecast.exceptions import ConfigError
    from forecast.periods import parse_freq

    d = cfg.data
    panel = load_panel(d.panel)
    inferred = panel.attrs.get("freq")
    if d.freq and inferred is not None and parse_freq(d.freq) != parse_freq(inferred):
        raise ConfigError(f"[data] freq is '{d.freq}' but the panel {Path(d.panel).name} has {inferred} "
                          "periods; delete freq (it is read from the panel) or give the panel's own.")
    # The report groups by country, province and event type: a panel without them is one
    # province per series, in a country and of a type named "all".
    fill = {"country": "all", "province": panel["unique_id"], "event_type": "all"}
    for col, value in fill.items():
        if col not in panel.columns:
            panel[col] = value
    panel.attrs["source"] = "panel"
    return panel


def run_panel(cfg, events: pd.DataFrame) -> pd.DataFrame:
    """Stage *panel*: the zero-filled count panel the configuration asks for, its coverage
    gaps treated as ``[data] coverage_gaps`` says (listed in ``panel.attrs["coverage_gaps"]``)."""
    import warnings

    from forecast.coverage_gaps import apply_coverage_gaps
    from forecast.exceptions import ForecastWarning
    from forecast.panel import build_panel

    d = cfg.data
    if d.panel is not None:  # already the panel (read_run_events): only its coverage gaps to mark
        panel, gaps = apply_coverage_gaps(events, d.coverage_gaps)
        panel.attrs["coverage_gaps"] = gaps
        if gaps:
            warnings.warn(f"{len(gaps)} period{'s' if len(gaps) > 1 else ''} of the panel with no event at all "
                          f"although the neighbouring periods make that implausible (coverage gaps): "
                          f"{', '.join(gaps[:10])}; "
                          + ("treated as missing" if d.coverage_gaps == "missing" else "kept as zeros") + ".",
                          ForecastWarning, stacklevel=2)
        adjacency = run_adjacency(cfg)
        if adjacency is not None:
            from forecast.adjacency import as_attr

            panel.attrs["adjacency"] = as_attr(adjacency)
        return panel
    from forecast.pipeline.completeness import short_history_warning

    panel = build_panel(events, d.freq or "month", coverage=d.coverage, as_of=d.as_of,
                        provinces=d.provinces or None, countries=d.countries or None, value=d.value,
                        gazetteer=d.gazetteer, coverage_gaps=d.coverage_gaps, adjacency=run_adjacency(cfg))
    short_history_warning(panel)
    return panel


def run_adjacency(cfg):
    """The run's neighbour pairs: ``[data] adjacency`` when set (it wins over the boundaries,
    which then only draw the map), else the shared borders of ``[data] boundaries``, else None."""
    d = cfg.data
    if d.adjacency is not None or d.boundaries is None:
        return d.adjacency
    from forecast.boundaries import shared_borders

    return shared_borders(run_boundaries(cfg))


def run_boundaries(cfg) -> pd.DataFrame | None:
    """The province shapes of ``[data] boundaries`` (``country, province, geometry``), or None."""
    d = cfg.data
    if d.boundaries is None:
        return None
    from forecast.boundaries import read_boundaries

    return read_boundaries(d.boundaries, name_property=d.boundaries_name, country_property=d.boundaries_country,
                           gazetteer=d.gazetteer)


def label(spec: Any) -> str:
    """The label of a model reference: a spec file's stem, else the name itself."""
    p = Path(str(spec))
    return p.stem if p.suffix == ".toml" else str(spec)


def candidates(cfg) -> tuple[dict, str]:
    """The labelled candidate models (baseline first when not listed) and the baseline's label."""
    labelled = cfg.models.labelled()
    baseline = label(cfg.models.baseline)
    if baseline not in labelled:
        labelled = {baseline: cfg.models.baseline, **labelled}
    return labelled, baseline


def backtest_candidates(cfg, panel: pd.DataFrame, labelled: dict, progress: Any):
    """Stage *backtest*: every candidate at the configured origins (``progress`` as in
    :func:`forecast.backtesting.backtest`, or a ``(done, total)`` callable)."""
    from forecast.backtesting import backtest
    from forecast.combine import resolve_models

    bt = cfg.backtest
    return backtest(panel, resolve_models(dict(labelled)), bt.horizon, n_origins=bt.origins, step=bt.step,
                    window=bt.window, refit_every=bt.refit_every, jobs=cfg.run.jobs, dask=cfg.run.dask,
                    seed=cfg.run.seed, levels=cfg.forecast.levels, thresholds=cfg.forecast.thresholds,
                    keep_pmf=False, progress=progress, keep_member_cells=True)


def choose(cfg, res, panel: pd.DataFrame, baseline: str):
    """Stage *choose*: the comparisons (overall and by horizon) and the model chosen per series."""
    import pandas as pd

    from forecast.comparison import compare, select_models

    comparison = compare(res, baseline=baseline, metrics=("rps", "log"), by=(), seed=cfg.run.seed,
                         alpha=cfg.models.alpha)
    comparison_h = compare(res, baseline=baseline, metrics=("rps",), by=("h",), seed=cfg.run.seed,
                           alpha=cfg.models.alpha)
    if cfg.models.selection == "auto":
        selection = pd.DataFrame({"unique_id": panel["unique_id"].unique(), "model": "auto",
                                  "reason": "auto: a pool of its members, weights learnt on the data before "
                                            "each forecast (see the w_ columns)"})
    elif cfg.models.selection == "ensemble":
        selection = pd.DataFrame({"unique_id": panel["unique_id"].unique(), "model": "ensemble",
                                  "reason": "ensemble of all candidates (configured)"})
    else:
        # Selected by log score: it punishes a forecast that gave an outcome (near)
        # zero probability, so an over-confident model (e.g. a seasonal naive
        # point mass at 0 on a sparse series) cannot win on a lucky RPS.
        selection = select_models(res, baseline=baseline, metric="log", by=cfg.models.selection,
                                  alpha=cfg.models.alpha, seed=cfg.run.seed)
    return comparison, comparison_h, selection


def final_forecast(cfg, panel: pd.DataFrame, labelled: dict, selection: pd.DataFrame, baseline: str,
                   progress: Progress | None = None, cells: dict | None = None):
    """Stage *final fit*: each chosen model fitted on all data for its series, forecast over the horizon.

    A point mass (zero variance at every horizon) for a series that has had
    incidents is over-confident however well it scored on quiet backtest
    months: such series go back to the baseline, and the reason is recorded.
    Returns the forecast, the fitted models by label and the (revised) selection.
    ``cells`` (the backtest's ``member_cells``) lets a combination fitted on the same series as
    in the backtest learn its weights from the backtest's member cells instead of its own
    internal backtest (it checks that they are exactly those; the weights are the same to the
    members' solver tolerance).
    """
    import numpy as np

    fc, fitted = _fit_chosen(cfg, panel, labelled, selection, progress, cells)
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
        fc, fitted = _fit_chosen(cfg, panel, labelled, selection, progress, cells)
    return fc, fitted, _with_weights(selection, fitted)


def _with_weights(selection: pd.DataFrame, fitted: dict) -> pd.DataFrame:
    """``selection`` with the pool weights of every combination used, one ``w_<member>`` column
    per member (empty where the series uses another model)."""
    out = selection
    for fit in fitted.values():
        if hasattr(fit, "weights"):
            w = fit.weights()
            w.columns = ["unique_id", *(f"w_{c}" for c in w.columns[1:])]
            out = out.merge(w, on="unique_id", how="left", suffixes=("", "_dup"))
            out = out[[c for c in out.columns if not c.endswith("_dup")]]
    return out


def _fit_chosen(cfg, panel: pd.DataFrame, labelled: dict, selection: pd.DataFrame, progress: Progress | None,
                cells: dict | None = None):
    """Fit each chosen model on all data for its series; forecast the horizon."""
    from inspect import signature

    import numpy as np

    from forecast._progress_tally import Tally
    from forecast.combine import Ensemble, load_model
    from forecast.distributions import CountForecast

    fitted: dict[str, Any] = {}
    parts = []
    chosen = selection.set_index("unique_id")["model"]
    labels = list(dict.fromkeys(chosen))
    progress = reporter(progress)
    # One unit per chosen model, and the internal backtest of a model that takes a progress
    # callback (auto learns its weights from one): its units join the count as it starts.
    count = Tally(lambda d, t: progress("final fit", d, t), len(labels)) if progress else None
    per_model = count.part(len(labels)) if count else None
    for done, lab in enumerate(labels):
        ids = chosen.index[chosen == lab]
        if count:
            progress("final fit", count.done, count.total, detail=f"fitting {lab} on {len(ids)} series")
        if lab == "ensemble" and "ensemble" not in labelled:
            spec = Ensemble(members={str(v): load_model(v) for v in labelled.values()})
        else:
            spec = load_model(labelled[lab])
        if hasattr(spec, "for_horizon"):  # the auto model learns its weights for the forecast horizon
            spec = spec.for_horizon(cfg.forecast.horizon)
        takes = signature(spec.fit).parameters
        heard = {"progress": count.part()} if count and "progress" in takes else {}
        if cells and lab in cells and "cells" in takes:  # (checked by the fit: reused only if exact)
            heard["cells"] = cells[lab]
        fit = spec.fit(panel[panel["unique_id"].isin(ids)], seed=cfg.run.seed, **heard)
        fitted[lab] = fit
        parts.append(fit.forecast(cfg.forecast.horizon, seed=cfg.run.seed))
        if per_model:
            per_model(done + 1, len(labels))
    if count:
        count.finish()
    fc = CountForecast.concat(parts) if len(parts) > 1 else parts[0]
    order = np.argsort(fc.index["unique_id"].to_numpy(), kind="stable")
    return fc.subset(order), fitted


def forecast_table(cfg, fc, fitted: dict, panel: pd.DataFrame):
    """The forecasts as a table with the series keys and the chosen model's diagnostics, the
    diagnostics, and the series keys."""
    import pandas as pd

    table = fc.to_frame(levels=cfg.forecast.levels, thresholds=cfg.forecast.thresholds)
    keys = panel.drop_duplicates("unique_id")[["unique_id", "country", "province", "event_type"]]
    diag = pd.concat([f.diagnostics().assign(model=lab) for lab, f in fitted.items()], ignore_index=True)
    table = table.merge(keys, on="unique_id", how="left").merge(
        diag[["unique_id", "model", "fallback", "model_used", "mean_capped"]].rename(columns={"model": "chosen_model"}),
        on="unique_id", how="left")
    return table, diag, keys


def effects(cfg, panel: pd.DataFrame, labelled: dict) -> pd.DataFrame | None:
    """Intervention effects of every candidate that declares interventions, fitted on all data."""
    import pandas as pd

    from forecast.combine import load_model
    from forecast._interv_tests import holm
    from forecast.interventions import effects as fitted_effects

    parts = []
    for lab, ref in labelled.items():
        spec = load_model(ref)
        if not getattr(spec, "interventions", None):
            continue
        parts.append(fitted_effects(spec.fit(panel, seed=cfg.run.seed)).assign(model=lab))
    if not parts:
        return None
    out = pd.concat(parts, ignore_index=True)
    out["p_holm"] = holm(out["p_value"].to_numpy(dtype=float))  # across every effect the run reports
    return out
