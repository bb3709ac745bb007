"""The report's spill-over figure, from the endemic–epidemic model the run fitted (directly or
as a member of ``auto``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def spillover_components(fitted: dict) -> Any:
    """Fitted-mean components (``unique_id, ds, endemic, own, neighbour``) of the first
    endemic–epidemic fit among the run's fitted models or their members, or None; series the
    model left to a fallback (e.g. no event of their type in the fit window) are left out."""
    for fit in fitted.values():
        for model in [fit, *getattr(fit, "members", dict)().values()]:
            if hasattr(model, "components"):
                comp = model.components()
                diag = model.diagnostics()
                if "fallback" in diag.columns:  # a series forecast by a fallback has no fitted split
                    comp = comp[comp["unique_id"].isin(diag.loc[diag["fallback"] == "none", "unique_id"])]
                if len(comp):
                    return comp
    return None


def spill_figure(fitted: dict, panel, folder: Path) -> dict | None:
    """Draw ``figures/spillover.png`` when the run fitted an endemic–epidemic model; its entry
    for the report (id, title, caption, file), else None."""
    from forecast import plots
    from forecast._plots_spill import DPI, spill_shares, spillover_plot

    comp = spillover_components(fitted)
    if comp is None:
        return None
    keys = panel.drop_duplicates("unique_id").set_index("unique_id")
    keys = keys[[c for c in ("country", "province", "event_type") if c in keys.columns]]
    shares = spill_shares(comp)
    top = shares.sort_values("share_neighbour", ascending=False).iloc[0]
    name = keys["province"].get(top["unique_id"], top["unique_id"]) if "province" in keys.columns else top["unique_id"]
    first, last = comp["ds"].min(), comp["ds"].max()
    caption = (f"Share of each province's fitted incident rate, {first:%b %Y}–{last:%b %Y}, that the "
               f"endemic–epidemic model attributes to its endemic level (season, trend), to its own last "
               f"count and to its neighbours' last counts. Most neighbour-driven: {name} "
               f"({top['share_neighbour']:.0%}).")
    folder.mkdir(parents=True, exist_ok=True)
    plots.save(spillover_plot(shares, keys), folder / "spillover.png", dpi=DPI)
    return {"id": "spillover", "title": "Spill-over between provinces", "caption": caption,
            "file": "figures/spillover.png"}
