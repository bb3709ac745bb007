"""The single-step commands: validate a log, write a panel, fit one model, backtest into a folder.

Each is what one ``forecast`` command does, minus the printing; the CLI calls exactly one
of these (or :func:`forecast.pipeline.run`) per command. Outputs are staged and moved into
place only when complete, and never overwrite an input (see :mod:`forecast.outputs`).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from forecast.pipeline.stages import is_panel_csv, load_panel

if TYPE_CHECKING:
    import pandas as pd


def validate_summary(file: str | Path, schema: str = "auto", *, gazetteer=None, strict: bool = False,
                     as_of=None, dayfirst: bool = True, freq: str = "month",
                     countries: Sequence[str] | None = None) -> dict[str, Any]:
    """Read an events file (or a panel CSV) and summarise it (what ``forecast validate`` prints).

    Returns
    -------
    dict
        ``schema``, ``rows_read``, ``rows_kept``, ``dropped`` (reason -> rows), ``dates``
        (first and last date, or None), ``countries`` (country -> provinces), ``provinces``
        (``[(province, events)]``, most events first), ``event_types`` (type -> events) and
        ``warnings`` (how many, the completeness checks of :func:`completeness_warnings`
        included: each is also issued as a ``ForecastWarning`` when found). A panel CSV
        (``unique_id, ds, y``) gives :func:`panel_summary` instead (``schema`` "panel").
        Bad input raises :class:`~forecast.exceptions.DataValidationError`.
    """
    if is_panel_csv(file):
        return panel_summary(file)
    from forecast.ingest import read_events
    from forecast.pipeline.completeness import completeness_warnings

    events = read_events(file, schema, gazetteer=gazetteer, strict=strict, as_of=as_of, dayfirst=dayfirst)
    info = events.attrs["ingest"]
    extra = completeness_warnings(events, freq, as_of=as_of, gazetteer=gazetteer, countries=countries)
    top = events.groupby(["country", "province"]).size().sort_values(ascending=False)
    return {
        "schema": info["schema"], "rows_read": info["rows_read"], "rows_kept": info["rows_kept"],
        "dropped": dict(info["dropped"]),
        "dates": (events["date"].min().date(), events["date"].max().date()) if len(events) else None,
        "countries": dict(events.groupby("country")["province"].nunique().items()),
        "provinces": [(p, int(n)) for (_, p), n in top.items()],
        "event_types": dict(events["event_type"].value_counts().items()),
        "warnings": len(info["warnings"]) + len(extra),
    }


def panel_summary(file: str | Path) -> dict[str, Any]:
    """Read a panel CSV as every command does and summarise it.

    Returns
    -------
    dict
        ``schema`` ("panel"), ``rows_read``, ``dates`` (first and last period start),
        ``frequency`` (e.g. "weekly (W-MON)"), ``series``, ``periods``, ``events`` (sum of
        ``y``), ``zeros`` (share of observed cells that are 0), ``missing`` (empty ``y``
        cells: missing counts), ``top`` (``[(unique_id, events)]``, most events first) and
        ``warnings`` (how many were issued, e.g. a history too short to forecast).
    """
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        panel = load_panel(file)
    for w in caught:  # shown as they would have been, and counted
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    from forecast.periods import parse_freq

    fq = parse_freq(panel.attrs["freq"])
    y = panel["y"]
    top = y.groupby(panel["unique_id"]).sum().sort_values(ascending=False, kind="stable")
    return {
        "schema": "panel", "rows_read": len(panel),
        "dates": (panel["ds"].min().date(), panel["ds"].max().date()),
        "frequency": f"{fq.adjective} ({fq.alias})", "series": int(panel["unique_id"].nunique()),
        "periods": int(panel["ds"].nunique()), "events": int(y.sum()), "zeros": float((y == 0).sum() / max(y.notna().sum(), 1)),
        "missing": int(y.isna().sum()), "top": [(str(u), int(n)) for u, n in top.items()],
        "warnings": len(caught),
    }


def write_panel(file: str | Path, out: str | Path, freq: str = "month", *, schema: str = "auto", as_of=None,
                value: str = "events", totals: bool = False, countries: Sequence[str] | None = None,
                gazetteer=None, force: bool = False, dayfirst: bool = True) -> pd.DataFrame:
    """Build the zero-filled count panel of an events file and write it to ``out`` as CSV; return it."""
    from forecast.ingest import read_events
    from forecast.outputs import check_file_writable, staged_file, write_csv
    from forecast.panel import build_panel

    where = {"force": force, "protected": [file, gazetteer], "parents": False}
    check_file_writable(out, **where)
    events = read_events(file, schema, gazetteer=gazetteer, as_of=as_of, dayfirst=dayfirst)
    with staged_file(out, **where) as tmp:
        p = build_panel(events, freq, as_of=as_of, value=value, totals=totals, countries=countries or None,
                        gazetteer=gazetteer)
        write_csv(p, tmp, index=False, date_format="%Y-%m-%d")
    return p


def list_models() -> dict[str, str]:
    """The model specs (bundled and in ./models) by name, with their descriptions."""
    from forecast.specs import available_models

    return available_models()


def predict(file: str | Path, model: str | Path, horizon: int, out: str | Path, *, freq: str = "month",
            as_of=None, seed: int = 0, force: bool = False, **read: Any) -> pd.DataFrame:
    """Fit one model on all data of ``file`` (events or panel CSV), write its forecasts to ``out``; return them.

    The table holds the mean, intervals and ``P(Y >= k)`` per series and period, with the
    series' ``fallback`` and ``model_used``. ``read``: ``schema``, ``gazetteer``, ``dayfirst``,
    ``countries`` as :func:`~forecast.pipeline.stages.load_panel` takes them.
    """
    from forecast.combine import load_model
    from forecast.outputs import check_file_writable, staged_file, write_csv

    where = {"force": force, "protected": [file, read.get("gazetteer")], "parents": False}
    check_file_writable(out, **where)
    spec = load_model(model)
    panel = load_panel(file, freq=freq, as_of=as_of, **read)
    fitted = spec.fit(panel, seed=seed)
    table = fitted.forecast(horizon, seed=seed).to_frame()
    diag = fitted.diagnostics()[["unique_id", "fallback", "model_used"]]
    table = table.merge(diag, on="unique_id", how="left")
    with staged_file(out, **where) as tmp:
        write_csv(table, tmp, index=False, date_format="%Y-%m-%d")
    return table


def backtest_to_folder(file: str | Path, models: Sequence[str], horizon: int, out: str | Path, *,
                       baseline: str = "climatology", origins: int = 12, step: int = 1, refit_every: int = 1,
                       freq: str = "month", as_of=None, jobs: int = 1, dask: str | None = None, seed: int = 0,
                       force: bool = False, progress: Any = None, **read: Any) -> pd.DataFrame:
    """Backtest ``models`` (the baseline added first when missing) on ``file``; write ``backtest.csv``,
    ``scores.csv`` and ``comparison.csv`` into ``out``.

    ``progress`` is passed to :func:`forecast.backtesting.backtest` (``False``: no bar; ``None``:
    a bar on a terminal; a ``(done, total)`` callable: reported per task); ``read`` as in
    :func:`predict`. Returns the summary
    per model and horizon with the RPS skill, p-value and verdict against the baseline.
    """
    from forecast.backtesting import backtest
    from forecast.combine import resolve_models
    from forecast.comparison import compare
    from forecast.outputs import check_writable, staged_dir, write_csv
    from forecast.parallel import check_address

    check_writable(out, force=force, protected=[file])
    dask = check_address(dask) if dask else None  # a typo fails before the data is read
    names = list(models)
    if baseline not in names:
        names.insert(0, baseline)
    panel = load_panel(file, freq=freq, as_of=as_of, **read)
    res = backtest(panel, resolve_models(names), horizon, n_origins=origins, step=step, refit_every=refit_every,
                   jobs=jobs, dask=dask, seed=seed, keep_pmf=False, progress=progress)
    comp = compare(res, baseline=baseline, metrics=("rps", "log"), by=("h",), seed=seed)
    with staged_dir(out, force=force, command="backtest", protected=[file]) as tmp:
        fc = res.forecasts.merge(res.point_scores.drop(columns=["pit_lo", "pit_hi"], errors="ignore"),
                                 left_index=True, right_index=True)
        write_csv(fc, tmp / "backtest.csv", index=False, date_format="%Y-%m-%d")
        write_csv(res.scores(("model", "h")), tmp / "scores.csv", index=False)
        write_csv(comp, tmp / "comparison.csv", index=False)
    sig = comp[comp["metric"] == "rps"][["model", "h", "skill", "p_value", "verdict"]]
    return res.summary().merge(sig, on=["model", "h"], how="left")
