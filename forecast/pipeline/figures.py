"""The report's figures, drawn from the panel, the forecast table and the backtest."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from forecast.pipeline.stages import Progress, run_boundaries


def figures(panel, table, res, effects, cfg, folder: Path, progress: Progress | None = None) -> list[dict]:
    """Stage *figures*: draw every report figure into ``folder``; their ids, titles, captions and files."""
    from forecast import plots
    from forecast.calibration import pit_histogram, reliability
    from forecast.periods import parse_freq

    folder.mkdir(parents=True, exist_ok=True)
    k_top = max(cfg.forecast.thresholds)
    freq = parse_freq(panel.attrs.get("freq", cfg.data.freq))  # captions in the panel's own periods
    figs: list[tuple[str, str, str, Any]] = []
    dpi: dict[str, int] = {}  # figures drawn for a higher resolution than the default 100
    history = panel[["unique_id", "ds", "y", "country", "province", "event_type"]]
    # One forecast per series, each from the model chosen for it.
    table = table.assign(model="model chosen per series")
    figs.append(("forecasts", "Forecasts per province and event type",
                 "History (last 3 years) and the forecast: line = expected count, shaded bands = 50/80/95% "
                 "prediction intervals.", plots.small_multiples(history, table)))
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
        plots.save(fig, folder / f"{fid}.png", dpi=dpi.get(fid, 100))
        out.append({"id": fid, "title": ttl, "caption": caption, "file": f"figures/{fid}.png"})
    if progress:
        progress("figures", len(figs), len(figs))
    return out
