"""The risk map: a choropleth of P(Y >= k) per province, one panel per event type.

Province shapes come from :func:`forecast.boundaries.read_boundaries` (a frame
``country, province, geometry`` of shapely polygons); they are drawn as matplotlib
patches, so the map needs no GIS library beyond shapely. :func:`risk_map` draws it
(also importable from :mod:`forecast.plots`); :func:`risk_map_caption` writes its caption
from the same numbers.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecast import _plot_helpers as H

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MAP_DPI", "MAP_WIDTH", "map_values", "risk_map", "risk_map_caption"]

#: Width of the map in inches, and the dpi it is saved at: 9 in × 180 dpi = 1620 px, 1.5× the
#: report's widest column (1080 px), so the image is never shown wider than its pixels.
MAP_WIDTH = 9.0
MAP_DPI = 180
_MAX_COLS = 3
_MAX_LABELLED = 150  # provinces; beyond this the labels would cover the map


def map_values(forecast_table: pd.DataFrame, shapes: pd.DataFrame, *, k: int, h: int = 1,
               keys: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[str], pd.Timestamp | None]:
    """P(Y >= ``k``) at horizon ``h`` per province shape and event type.

    Returns
    -------
    values : one row per row of ``shapes`` (same order), one column per event type; NaN
        where the forecast has no such series.
    unmapped : ``province`` (or ``country/province``) of forecast series with no shape.
    ds : the forecast period shown (None for an empty table).
    """
    col = f"p_ge_{k}"
    if col not in forecast_table.columns:
        raise ValueError(f"The forecast table has no '{col}' column; make it with to_frame(thresholds=[..., {k}]).")
    fc, _ = H.select(forecast_table[forecast_table["h"] == h], None, None)
    fc = H.with_keys(fc, keys)
    grid = fc.groupby(["country", "province", "event_type"])[col].mean().unstack("event_type")
    types = list(grid.columns)
    by_full = {(str(c), str(p)): i for i, (c, p) in enumerate(grid.index)}
    by_name: dict[str, list[int]] = {}
    for i, (_, p) in enumerate(grid.index):
        by_name.setdefault(str(p), []).append(i)
    rows, used = [], set()
    for c, p in zip(shapes["country"].astype(str), shapes["province"].astype(str)):
        hits = [by_full[(c, p)]] if c and (c, p) in by_full else [] if c else by_name.get(p, [])
        used.update(hits)
        # A province named alike in two countries and a map without countries: the mean of both
        # would be no one's risk, so the shape stays grey.
        rows.append(grid.iloc[hits[0]].to_numpy(dtype=float) if len(hits) == 1 else np.full(len(types), np.nan))
    values = pd.DataFrame(np.array(rows).reshape(len(shapes), len(types)), columns=types)
    unmapped = [f"{c}/{p}" if len(by_name[str(p)]) > 1 else str(p)
                for i, (c, p) in enumerate(grid.index) if i not in used]
    ds = pd.Timestamp(fc["ds"].iloc[0]) if len(fc) else None
    return values, unmapped, ds


def _patch(geom):
    """One matplotlib patch for a (multi)polygon, holes included."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path

    parts = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "Polygon" and not g.is_empty]
    paths = []
    for poly in parts:
        for ring in [poly.exterior, *poly.interiors]:
            xy = np.asarray(ring.coords)[:, :2]
            codes = np.full(len(xy), Path.LINETO, dtype=Path.code_type)
            codes[0], codes[-1] = Path.MOVETO, Path.CLOSEPOLY
            paths.append(Path(xy, codes))
    return PathPatch(Path.make_compound_path(*paths)) if paths else None


def _is_degrees(bounds) -> bool:
    x0, y0, x1, y1 = bounds
    return -180 <= x0 <= x1 <= 360 and -90 <= y0 <= y1 <= 90


def _layout(n: int, bounds) -> tuple[int, int, float, float]:
    ncols = min(max(n, 1), _MAX_COLS)
    nrows = math.ceil(max(n, 1) / ncols)
    x0, y0, x1, y1 = bounds
    stretch = 1 / math.cos(math.radians((y0 + y1) / 2)) if _is_degrees(bounds) else 1.0
    ratio = (y1 - y0) * stretch / max(x1 - x0, 1e-12)
    panel_w = (MAP_WIDTH - 1.2) / ncols
    height = min(nrows * (panel_w * min(max(ratio, 0.35), 1.6) + 0.45) + 0.8, 14.0)
    return nrows, ncols, height, stretch


@H.plain_text
def risk_map(forecast_table: pd.DataFrame, shapes: pd.DataFrame, *, k: int, h: int = 1,
             keys: pd.DataFrame | None = None, title: str | None = None) -> "Figure":
    """Choropleth of P(at least ``k`` incidents) at horizon ``h``: one map per event type.

    Parameters
    ----------
    forecast_table : a forecast table with ``p_ge_<k>`` (``CountForecast.to_frame``).
    shapes : ``country, province, geometry`` (:func:`forecast.boundaries.read_boundaries`);
        a shape with an empty country matches the forecast's province of that name.
    k, h : threshold and horizon, as in :func:`forecast.plots.risk_heatmap`.
    keys : a frame supplying ``country, province, event_type`` when the table lacks them.

    Each province is labelled with its name and percentage (for up to 150 provinces);
    provinces without a forecast are grey. The map axes are labelled ``map:<event type>``.
    """
    plt = H.pyplot()
    from matplotlib.collections import PatchCollection
    from matplotlib.colors import Normalize

    values, _, ds = map_values(forecast_table, shapes, k=k, h=h, keys=keys)
    geoms = list(shapes["geometry"])
    bounds = _bounds(geoms)
    types = list(values.columns) or [""]
    nrows, ncols, height, stretch = _layout(len(types), bounds)
    fig, axes = plt.subplots(nrows, ncols, figsize=(MAP_WIDTH, height), layout="constrained", squeeze=False)
    cmap = plt.get_cmap("cividis").with_extremes(bad="0.88")
    norm = Normalize(0, 1)
    points = [g.representative_point() if not g.is_empty else None for g in geoms]  # inside, unlike a centroid
    label_size = 8 if len(geoms) <= 30 else 6 if len(geoms) <= 80 else 5
    coll = None
    for n, ax in enumerate(axes.flat):
        if n >= len(types):
            ax.set_visible(False)
            continue
        etype = types[n]
        ax.set_label(f"map:{etype}")
        kept = [(i, p) for i, p in ((i, _patch(g)) for i, g in enumerate(geoms)) if p is not None]
        vals = values[etype].to_numpy(dtype=float) if etype in values.columns else np.full(len(geoms), np.nan)
        coll = PatchCollection([p for _, p in kept], cmap=cmap, norm=norm, edgecolor="white", linewidth=0.7)
        coll.set_array(np.ma.masked_invalid(vals[[i for i, _ in kept]]))
        ax.add_collection(coll)
        if len(geoms) <= _MAX_LABELLED:
            inches = (MAP_WIDTH - 1.2) / ncols / max(bounds[2] - bounds[0], 1e-12)  # per map unit
            for i, pt in enumerate(points):
                if pt is None:
                    continue
                v = vals[i]
                text = _label(shapes["province"].iloc[i], H.percent(v), geoms[i], inches, label_size)
                if text:
                    ax.text(pt.x, pt.y, text, ha="center", va="center", fontsize=label_size, linespacing=1.1,
                            color=H.text_colour(cmap, norm, v) if np.isfinite(v) else "0.3")
        x0, y0, x1, y1 = bounds
        pad = 0.02 * max(x1 - x0, y1 - y0)
        ax.set_xlim(x0 - pad, x1 + pad)
        ax.set_ylim(y0 - pad, y1 + pad)
        ax.set_aspect(stretch)
        ax.set_axis_off()
        ax.set_title(str(etype), fontsize=11, loc="left")
    visible = [a for a in axes.flat if a.get_visible()]
    cb = fig.colorbar(coll, ax=visible, shrink=0.8, pad=0.02)
    cb.set_label(f"P(at least {k} incident{'s' if k != 1 else ''})")
    cb.set_ticks(np.linspace(0, 1, 6), labels=[f"{v:.0f}%" for v in np.linspace(0, 100, 6)])
    when = f" in {ds:%B %Y}" if ds is not None else ""
    fig.suptitle(title or f"Chance of at least {k} incident{'s' if k != 1 else ''}{when}", fontsize=12)
    return fig


def _label(name: str, pct: str, geom, inches: float, size: float) -> str:
    """The label that fits the province's width: name and percentage, the percentage
    alone, or nothing (a small province among large ones; its number is in the caption's
    ranking or the forecast table)."""
    width = (geom.bounds[2] - geom.bounds[0]) * inches  # inches on the page
    char = 0.6 * size / 72  # a character's width, roughly, in inches
    name = H.wrap(name, 14)
    if width >= char * (max(map(len, name.split("\n"))) + 1):
        return f"{name}\n{pct}"
    return pct if width >= char * (len(pct) + 1) else ""


def _bounds(geoms) -> tuple[float, float, float, float]:
    boxes = np.array([g.bounds for g in geoms if not g.is_empty], dtype=float).reshape(-1, 4)
    if not len(boxes):
        return 0.0, 0.0, 1.0, 1.0
    return (float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()),
            float(boxes[:, 3].max()))


def risk_map_caption(forecast_table: pd.DataFrame, shapes: pd.DataFrame, *, k: int, h: int = 1,
                     keys: pd.DataFrame | None = None) -> str:
    """The map's caption, from the numbers the map shows: period, highest risk per event
    type, and the provinces the map cannot show."""
    values, unmapped, ds = map_values(forecast_table, shapes, k=k, h=h, keys=keys)
    when = f" for {ds:%B %Y}" if ds is not None else ""
    text = (f"P(Y ≥ {k}) per province{when} (the first forecast period), one map per event type; grey: no "
            f"forecast for that province.")
    tops = []
    for etype in values.columns:
        v = values[etype].to_numpy(dtype=float)
        if np.isfinite(v).any():
            i = int(np.nanargmax(v))
            tops.append(f"{etype}: {shapes['province'].iloc[i]} {H.percent(v[i])}")
    if tops:
        text += " Highest: " + "; ".join(tops) + "."
    if unmapped:
        shown = ", ".join(unmapped[:8]) + (f" and {len(unmapped) - 8} more" if len(unmapped) > 8 else "")
        text += f" Not on the map (no boundary in the file): {shown}."
    return text
