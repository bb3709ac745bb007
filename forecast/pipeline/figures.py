"""The report's figures, drawn from the panel, the forecast table and the backtest."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from forecast.pipeline.stages import Progress, run_boundaries


def figures(panel, table, res, effects, cfg, folder: Path, progress: Progress | None = None) -> list[dict]:
    """Stage *figures*: draw every report figure into ``folder``; their ids, titles, captions and files."""
    from forecast import plots
    from forecast._plots_backtest import BACKTEST_DPI
    from forecast.calibration import pit_histogram, reliability
    from forecast.periods import parse_freq

    folder.mkdir(parents=True, exist_ok=True)
    k_top = max(cfg.forecast.thresholds)
    freq = parse_freq(panel.attrs.get("freq", cfg.data.freq))  # captions in the panel's own periods
    figs: list[tuple[str, str, str, Any]] = []
    dpi: dict[str, int] = {}  # figures drawn at a higher resolution than plots.FIGURE_DPI
    history = panel[["unique_id", "ds", "y", "country", "province", "event_type"]]
    # One forecast per series, each from the model chosen for it; the title names it (or the mix).
    table = table.assign(model=models_label(table))
    n_shown, first, last = plots.history_window(history, table, last_n=plots.FAN_HISTORY)
    figs.append(("forecasts", "Forecasts per province and event type",
                 f"History ({window_words(n_shown, first, last, freq)}) and the forecast: line = expected count, "
                 "shaded bands = 50/80/95% prediction intervals.",
                 plots.small_multiples(history, table, last_n=plots.FAN_HISTORY)))
    shapes = run_boundaries(cfg)
    if shapes is not None:  # with boundaries, the map; its labels carry the heatmap's numbers
        from forecast._plots_map import MAP_DPI, risk_map, risk_map_caption

        figs.append(("map", f"Chance of at least {k_top} incidents next period",
                     risk_map_caption(table, shapes, k=k_top, h=1), risk_map(table, shapes, k=k_top, h=1)))
        dpi["map"] = MAP_DPI
    else:
        figs.append(("risk", f"Chance of at least {k_top} incidents next period",
                     f"P(Y ≥ {k_top}) for the first forecast period, per province and event type.",
                     plots.risk_heatmap(table, k=k_top, h=1)))
    tidy = res.scores(("model", "h", "cutoff"), metrics=["rps"])
    figs.append(("scores", "Backtest accuracy by horizon",
                 "Mean ranked probability score per model and horizon over the backtest origins (lower is "
                 "better); bars show 95% intervals across origins.",
                 plots.scores_by_horizon(res.scores(("model", "h"), metrics=["rps"]), metric="rps",
                                         uncertainty=tidy, period=freq.label)))
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
    bt = backtest_figure(panel, table, res, cfg, freq)
    if bt is not None:
        figs.append(bt)
        dpi["backtest"] = BACKTEST_DPI
    figs.append(("history", f"{freq.adjective.capitalize()} history",
                 f"Observed counts per province and {freq.label}, all event types.",
                 plots.history_heatmap(panel)))
    if effects is not None and len(effects):
        figs.append(("effects", "Estimated intervention effects",
                     "Rate ratios (after / before) with 95% intervals; 1 = no change.",
                     plots.effects_plot(effects, title="Estimated effect of each intervention on the "
                                                       f"{freq.adjective} rate")))
    out = []
    for done, (fid, ttl, caption, fig) in enumerate(figs):
        if progress:
            progress("figures", done, len(figs))
        plots.save(fig, folder / f"{fid}.png", dpi=dpi.get(fid, plots.FIGURE_DPI))
        out.append({"id": fid, "title": ttl, "caption": caption, "file": f"figures/{fid}.png"})
    if progress:
        progress("figures", len(figs), len(figs))
    return out


def models_label(table) -> str:
    """The model named in the fan-grid title: ``auto (learnt pool)`` when every series used
    ``auto``, the one model every series used, else the mix (``auto 20, negbin_glm 7``)."""
    col = "model_used" if "model_used" in table.columns else "chosen_model"
    if col not in table.columns:
        return "model chosen per series"
    counts = table.drop_duplicates("unique_id")[col].astype(str).value_counts()
    names = {"auto": "auto (learnt pool)"}
    if len(counts) == 1:
        return names.get(counts.index[0], counts.index[0])
    return "models per series: " + ", ".join(f"{names.get(m, m)} {n}" for m, n in counts.items())


def window_words(n: int, first, last, freq) -> str:
    """``last 24 months, Dec 2023 – Nov 2025``: the history window a figure shows, in the panel's periods."""
    if not n or first is None:
        return "no history before the forecast"
    fmt = {"year": "%Y", "quarter": "%b %Y", "month": "%b %Y"}.get(freq.kind, "%d %b %Y")
    unit = freq.label + ("s" if n != 1 else "")
    return f"last {n} {unit}, {first:{fmt}} – {last:{fmt}}"


def check_backtest_series(cfg, panel) -> None:
    """``[report] backtest_series`` must name series of the panel (checked before the backtest runs)."""
    import difflib

    from forecast.exceptions import ConfigError

    known = set(map(str, panel["unique_id"].unique()))
    bad = [u for u in cfg.report.backtest_series if u not in known]
    if bad:
        lines = []
        for u in bad:
            close = difflib.get_close_matches(u, sorted(known), n=1)
            lines.append(f"[report] backtest_series: '{u}' is not a series of the panel"
                         + (f" (did you mean '{close[0]}'?)" if close else "")
                         + "; give unique_id values as in panel.csv, or [] for the most active series.")
        raise ConfigError("\n".join(lines))


def backtest_figure(panel, table, res, cfg, freq) -> tuple | None:
    """The backtest picture (``figures/backtest.png``) of the configured or most active series,
    each drawn with the model used for it; None when no series has backtest forecasts of its model."""
    from forecast._plot_helpers import series_title
    from forecast._plots_backtest import backtest_panels, most_active

    models = set(res.forecasts["model"])
    used = dict(zip(table["unique_id"], table["chosen_model"]))
    named = list(cfg.report.backtest_series)
    fc = res.forecasts[[m in models and used.get(u) == m for u, m in zip(res.forecasts["unique_id"],
                                                                          res.forecasts["model"])]]
    ids = named or most_active(fc, 4)
    ids = [u for u in ids if u in used and used[u] in models]
    if not ids:
        return None
    keys = panel.drop_duplicates("unique_id").set_index("unique_id")
    series = [(u, used[u], series_title(keys.loc[u, "country"], keys.loc[u, "province"],
                                        str(keys.loc[u, "event_type"]).replace("_", " "), 10_000)) for u in ids]
    h_max = int(res.forecasts["h"].max())
    steps = [1] + ([min(cfg.forecast.horizon, h_max)] if min(cfg.forecast.horizon, h_max) > 1 else [])
    unit = freq.label
    n_origins = int(res.forecasts["cutoff"].nunique())
    which = ("the series named in [report] backtest_series" if named else
             f"the {len(ids)} series with the most events in the backtest window")
    ahead = f"one {unit} ahead" + (f" (left) and {steps[1]} {unit}s ahead (right)" if len(steps) > 1 else "")
    caption = (f"Past forecasts against what happened, for {which}, each from the model used for it: {ahead}, "
               f"from {n_origins} forecast origins. Black = observed counts; line = forecast mean; bands = 50% "
               f"and 80% ranges; orange ticks = the origins (the last {unit} of data each forecast used).")
    fig = backtest_panels(panel[["unique_id", "ds", "y"]], fc, series, steps, unit=unit)
    return ("backtest", "Past forecasts against what happened", caption, fig)
