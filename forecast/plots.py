"""Figures for the report (matplotlib, Agg backend). matplotlib is imported lazily, never at module level.

Every function returns a :class:`matplotlib.figure.Figure` and never shows it;
:func:`save` writes a PNG and :func:`to_png_bytes` returns one (for inlining into
HTML), both closing the figure. Inputs are plain frames: the panel, a forecast
table (``CountForecast.to_frame()`` or ``BacktestResult.forecasts``), tidy scores,
:class:`~forecast.calibration.PITHistogram` objects, reliability tables and the
:func:`forecast.effects` table.

Colours follow the Okabe–Ito palette, which stays distinguishable for the common
forms of colour blindness; heat maps use the perceptually uniform "viridis" and
"cividis" maps. Figures are at most 12 inches wide (an A4 page or a web column).
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecast import _plot_helpers as H
from forecast._plots_eval import pit_histograms, reliability_diagram, scores_by_horizon  # noqa: F401 (public here)
from forecast._plots_map import risk_map  # noqa: F401 (public here)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

# The palette and the lazy pyplot import live in the helpers so that the private
# figure modules share them without importing this module (which re-exports them).
OKABE_ITO = H.OKABE_ITO
_pyplot = H.pyplot
#: Periods of history a fan chart of the small multiples shows before the forecast origin.
FAN_HISTORY = 24
#: Resolution of the report's figures: the report shows a figure at (pixels / 1.5) CSS px
#: at most, i.e. at 100 CSS px per inch of figure, never wider than the column.
FIGURE_DPI = 150


@H.plain_text
def monthly_counts(panel: pd.DataFrame, *, title: str | None = None, unit: str | None = None) -> "Figure":
    """Small multiples: one panel per province, one line per event type (any frequency,
    despite the name).

    Parameters
    ----------
    panel : long panel (``unique_id, ds, y, country, province, event_type``).
    title : figure title (default "Monthly incidents per province", "Weekly ..." etc.).
    unit : y-axis label (default "incidents per month", "... per week" etc.).
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    _, default_unit, adj = H.period(panel)
    title = f"{adj.capitalize()} incidents per province" if title is None else title
    unit = default_unit if unit is None else unit

    units = panel[["country", "province"]].drop_duplicates().sort_values(["country", "province"])
    types = sorted(panel["event_type"].unique())
    colours = {t: OKABE_ITO[i % len(OKABE_ITO)] for i, t in enumerate(types)}
    n = len(units)
    ncol = 3 if n > 4 else max(n, 1)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.9 * ncol, 2.4 * nrow + 0.9), sharex=True,
                             squeeze=False, constrained_layout=True)
    fq = H.period(panel)[0]
    for ax, (country, province) in zip(axes.flat, units.itertuples(index=False)):
        sub = panel[(panel["country"] == country) & (panel["province"] == province)]
        for t in types:
            s = H.on_calendar(sub[sub["event_type"] == t], fq)  # a missing period breaks the line
            ax.plot(s["ds"], s["y"], color=colours[t], lw=1.1, label=t)
        ax.set_title(f"{province} ({country})", fontsize=10)
        ax.grid(alpha=0.3, lw=0.5)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.tick_params(labelsize=8)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(unit, fontsize=8)
    handles = [plt.Line2D([], [], color=colours[t], lw=2) for t in types]
    fig.legend(handles, types, loc="outside lower center", ncol=len(types), frameon=False, fontsize=9)
    fig.suptitle(title, fontsize=12)
    return fig


# ----------------------------------------------------------------------------- forecasts
@H.plain_text
def fan_chart(history: pd.DataFrame, forecast_table: pd.DataFrame, *, unique_id: str, title: str | None = None,
              last_n: int = 36, model: str | None = None, cutoff=None) -> "Figure":
    """Fan chart of one series: recent history, forecast mean and 50/80/95% bands.

    Parameters
    ----------
    history : panel rows (``unique_id, ds, y``); rows at or after the forecast origin
        are drawn as "observed after forecast origin" points.
    forecast_table : ``CountForecast.to_frame()`` or backtest forecasts (``lo-L, hi-L, mean``).
    unique_id : the series to draw.
    last_n : periods of history shown before the origin.
    model, cutoff : which model (default the first) and origin (default the latest).
    """
    plt = _pyplot()
    if not (forecast_table["unique_id"] == unique_id).any():
        raise ValueError(f"unique_id {unique_id!r} is not in the forecast table.")
    fc, name = H.select(forecast_table[forecast_table["unique_id"] == unique_id], model, cutoff)
    hist = history[history["unique_id"] == unique_id]
    keys = H.with_keys(pd.DataFrame({"unique_id": [unique_id]}), history).iloc[0]
    fig, ax = plt.subplots(figsize=(9, 4.6), layout="constrained")
    H.draw_fan(ax, hist, fc, last_n=last_n)
    _, unit, adj = H.period(hist)
    ax.set_ylabel(unit)
    where = H.series_title(keys["country"], keys["province"], keys["event_type"], width=10_000)
    ax.set_title(title or H.wrap(f"{where}: forecast of {adj} incidents" + (f" ({name})" if name else ""), 80),
                 loc="left", fontsize=12)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False, fontsize=9)
    return fig


@H.plain_text
def small_multiples(history: pd.DataFrame, forecast_table: pd.DataFrame, *, max_panels: int = 40,
                    ncols: int | None = None, last_n: int = FAN_HISTORY, model: str | None = None, cutoff=None,
                    title: str | None = None) -> "Figure":
    """One small fan chart per series on one page.

    Rows are provinces and columns event types when that grid has at most
    ``max_panels`` cells and ``ncols`` is not given; otherwise series fill a grid
    row by row (the first ``max_panels`` series, said so in the title). x is
    shared, y independent (a busy and a quiet province both stay readable).
    """
    plt = _pyplot()
    fc, name = H.select(forecast_table, model, cutoff)
    keys = H.with_keys(fc[["unique_id"]].drop_duplicates(), history).sort_values([*H.KEY_COLS, "unique_id"])
    provinces = list(dict.fromkeys(zip(keys["country"], keys["province"])))
    types = sorted(keys["event_type"].unique())
    n = len(keys)
    if ncols is None and len(provinces) * len(types) <= max_panels and n > 1:
        nrows, ncols = len(provinces), len(types)
        cells = [provinces.index((c, p)) * ncols + types.index(t)
                 for c, p, t in zip(keys["country"], keys["province"], keys["event_type"])]
    else:
        keys = keys.head(max_panels)
        nrows, ncols = H.grid_shape(len(keys), ncols)
        cells = list(range(len(keys)))
    width = min(H.MAX_WIDTH, max(7.5, 0.9 + 3.3 * ncols))
    chars = int((width - 0.9) / ncols * 12.5)  # title characters that fit a panel at 9 pt
    titles = {row.unique_id: H.series_title(row.country, row.province, row.event_type, chars)
              for row in keys.itertuples(index=False)}
    extra = 0.15 * (max((t.count("\n") for t in titles.values()), default=0))  # room for wrapped titles
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 1.0 + ((1.45 if nrows <= 7 else 1.2) + extra) * nrows),
                             sharex=True, squeeze=False, layout="constrained")
    used = set()
    for cell, row in zip(cells, keys.itertuples(index=False)):
        ax = axes.flat[cell]
        used.add(cell)
        H.draw_fan(ax, history[history["unique_id"] == row.unique_id], fc[fc["unique_id"] == row.unique_id],
                  last_n=last_n, compact=True, dates=False)
        ax.set_title(titles[row.unique_id], fontsize=9, loc="left", pad=2)
        ax.tick_params(labelsize=7.5)
    for i, ax in enumerate(axes.flat):
        if i not in used:
            ax.set_visible(False)
        elif i + ncols < axes.size and (i + ncols) not in used:
            ax.xaxis.set_tick_params(labelbottom=True)  # the panel below is empty: show dates here
    if used:
        H.date_axis(axes.flat[min(used)], compact=True)  # x is shared: once for all panels
    _, unit, adj = H.period(history)
    fig.supylabel(unit, fontsize=10)
    shown = f" (first {len(keys)} of {n} series)" if len(keys) < n else ""
    fig.suptitle(title or f"Forecast of {adj} incidents per series{shown}" + (f" — {name}" if name else ""),
                 fontsize=12)
    legend = {}  # every entry once, whichever panel has it
    for ax in axes.flat:
        for hd, lb in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(lb, hd)
    handles, labels = list(legend.values()), list(legend)
    if labels:
        fig.legend(handles, labels, loc="outside lower center", ncol=6 if width >= 10 else 3, frameon=False,
                   fontsize=9)
    return fig


def history_window(history: pd.DataFrame, forecast_table: pd.DataFrame, *, last_n: int = FAN_HISTORY,
                   model: str | None = None, cutoff=None) -> tuple[int, pd.Timestamp | None, pd.Timestamp | None]:
    """The history :func:`small_multiples` draws before the forecast origins (for its caption):
    the number of periods of the shared x axis and the first and last of them (None when none)."""
    fc, _ = H.select(forecast_table, model, cutoff)
    shown = []
    for uid, f in fc.groupby("unique_id", sort=False):
        past = H.past_window(history[history["unique_id"] == uid], f["ds"].min() if len(f) else None, last_n)
        shown.append(past["ds"])
    ds = pd.concat(shown) if shown else pd.Series([], dtype="datetime64[ns]")
    if ds.empty:
        return 0, None, None
    first, last = pd.Timestamp(ds.min()), pd.Timestamp(ds.max())
    return len(H.period(history)[0].range(first, last)), first, last


@H.plain_text
def risk_heatmap(forecast_table: pd.DataFrame, *, k: int, h: int = 1, keys: pd.DataFrame | None = None,
                 model: str | None = None, cutoff=None, title: str | None = None) -> "Figure":
    """P(at least ``k`` incidents) at horizon ``h``: provinces (rows) × event types (columns).

    Cells are annotated with whole percentages ("<1%"/">99%" when rounding would
    claim certainty). ``keys`` (e.g. the panel) supplies ``country, province,
    event_type`` when the table lacks them.
    """
    plt = _pyplot()
    col = f"p_ge_{k}"
    if col not in forecast_table.columns:
        raise ValueError(f"The forecast table has no '{col}' column; make it with to_frame(thresholds=[..., {k}]).")
    fc, name = H.select(forecast_table[forecast_table["h"] == h], model, cutoff)
    fc = H.with_keys(fc, keys)
    grid = fc.groupby(["country", "province", "event_type"])[col].mean().unstack("event_type").sort_index()
    values = grid.to_numpy(dtype=float)
    nr, nc = max(values.shape[0], 1), max(values.shape[1], 1)
    fig, ax = plt.subplots(figsize=(min(H.MAX_WIDTH, 4.6 + 1.25 * nc), max(3.2, 1.6 + 0.36 * nr)), layout="constrained")
    cmap = plt.get_cmap("cividis").with_extremes(bad="0.88")
    from matplotlib.colors import Normalize
    norm = Normalize(0, 1)
    im = ax.imshow(np.ma.masked_invalid(values.reshape(nr, nc) if values.size else np.full((1, 1), np.nan)),
                   cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    fs = 9 if nr <= 20 else 7
    for (i, j), p in np.ndenumerate(values):
        ax.text(j, i, H.percent(p), ha="center", va="center", fontsize=fs,
                color=H.text_colour(cmap, norm, p) if np.isfinite(p) else "0.3")
    ax.set_xticks(range(values.shape[1]), grid.columns, fontsize=9)
    ax.xaxis.tick_top()
    H.province_axis(ax, list(grid.index), offset=0.0)
    cb = fig.colorbar(im, ax=ax, shrink=0.9 if nr > 6 else 1, pad=0.03)
    cb.set_label(f"P(at least {k} incident{'s' if k != 1 else ''})")
    cb.set_ticks(np.linspace(0, 1, 6), labels=[f"{v:.0f}%" for v in np.linspace(0, 100, 6)])
    when = f" in {pd.Timestamp(fc['ds'].iloc[0]):%B %Y}" if len(fc) else ""
    ax.set_title(title or f"Chance of at least {k} incident{'s' if k != 1 else ''}{when}"
                 + (f" ({name})" if name else ""), fontsize=12, loc="left", pad=10)
    return fig


# ----------------------------------------------------------------------------- data and effects
@H.plain_text
def history_heatmap(panel: pd.DataFrame, *, event_type: str | None = None, title: str | None = None) -> "Figure":
    """Provinces (rows) × periods (columns: weeks, months, years ...) heat map of counts; all
    event types summed when ``event_type`` is None. Square-root colour scale so that rare
    periods still show; periods outside a province's coverage are grey."""
    plt = _pyplot()
    from matplotlib.colors import PowerNorm

    data = panel if event_type is None else panel[panel["event_type"] == event_type]
    data = H.with_keys(data)
    wide = data.groupby(["country", "province", "ds"])["y"].sum(min_count=1).unstack("ds").sort_index()
    fq, unit, adj = H.period(data)
    if wide.shape[1]:  # every period of the range, so a gap shows as grey (missing), never stretched
        wide = wide.reindex(columns=fq.range(wide.columns.min(), wide.columns.max()))
    values = wide.to_numpy(dtype=float)
    nr = max(values.shape[0], 1)
    fig, ax = plt.subplots(figsize=(min(H.MAX_WIDTH, 10.5), max(3.0, 1.5 + 0.32 * nr)), layout="constrained")
    vmax = max(float(np.nanmax(values, initial=0)), 1.0)
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    if values.size:
        x = list(wide.columns) + [pd.Timestamp(fq.next_start(np.array([wide.columns[-1].to_datetime64()]))[0])]
        mesh = ax.pcolormesh(x, np.arange(nr + 1), np.ma.masked_invalid(values), cmap=cmap,
                             norm=PowerNorm(0.5, vmin=0, vmax=vmax), shading="flat")
        H.date_axis(ax, max_ticks=16)
        cb = fig.colorbar(mesh, ax=ax, pad=0.02, aspect=max(10, 2 * nr))
        cb.set_label(unit + " (√ scale)")
        nice = np.array([0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000])
        cb.set_ticks(nice[nice <= vmax])
    ax.set_ylim(nr, 0)
    H.province_axis(ax, list(wide.index), offset=0.5)
    ax.tick_params(axis="y", length=0)
    what = f"{event_type} incidents" if event_type else "incidents (all types)"
    ax.set_title(title or f"{adj.capitalize()} {what} per province", loc="left", fontsize=12)
    return fig


@H.plain_text
def effects_plot(effects_table: pd.DataFrame, *, keys: pd.DataFrame | None = None,
                 title: str = "Estimated effect of each intervention on the monthly rate") -> "Figure":
    """Forest plot of rate ratios with their intervals, one panel per intervention term
    (and per model when the table has a `model` column with several).

    Rows are series ("Khatlon · clash"); log x axis with a line at 1 (no change).
    Filled points: the interval excludes 1. Series that fell back to a model without
    the term (NaN) are listed as "not estimated"; "*" marks penalised fits, whose
    intervals are approximate.
    """
    plt = _pyplot()
    eff = H.with_keys(effects_table, keys)
    series = eff[["unique_id", *H.KEY_COLS]].drop_duplicates("unique_id").sort_values([*H.KEY_COLS])
    pen = set(eff.loc[eff["fallback"].astype(str) == "penalised", "unique_id"]) if "fallback" in eff else set()
    rows, headers = H.forest_rows(series, pen)
    pos = {u: i for i, (u, _) in enumerate(rows) if u is not None}
    by_model = "model" in eff.columns and eff["model"].nunique() > 1  # one panel per term and model
    terms = list(dict.fromkeys(zip(eff["term"], eff["model"] if by_model else [""] * len(eff))))
    ncols = max(min(len(terms), 4), 1)
    nrows = int(np.ceil(max(len(terms), 1) / ncols))
    ny = max(len(rows), 1)
    longest = max((len(text) for _, text in rows), default=0)  # row labels are never cut: make room
    size = (min(H.MAX_WIDTH, 2.8 + 3.0 * ncols + 0.065 * max(longest - 26, 0)), 1.4 + (0.22 * ny + 0.9) * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=size,
                             sharey=True, squeeze=False, layout="constrained")
    finite = eff[["lo", "hi", "rate_ratio"]].to_numpy(float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    lo = float(np.clip(finite.min(initial=1), 0.02, 0.8))  # at least 0.8-1.25 around 1, at most 0.02-50
    hi = float(np.clip(finite.max(initial=1), 1.25, 50))
    for ax, (term, model) in zip(axes.flat, terms):
        t = eff[(eff["term"] == term) & ((eff["model"] == model) if by_model else True)]
        y = t["unique_id"].map(pos).to_numpy(float)
        rr, l, u = (t[c].to_numpy(float) for c in ("rate_ratio", "lo", "hi"))
        ok = np.isfinite(rr)
        sig = ok & ((u < 1) | (l > 1))
        ax.hlines(y[ok], np.clip(l[ok], lo, hi), np.clip(u[ok], lo, hi), color=H.BLUE, lw=1.6)
        for past, m, edge in ((l < lo, "<", lo), (u > hi, ">", hi)):  # the interval runs off the axis
            sel = ok & past
            ax.plot(np.full(sel.sum(), edge), y[sel], ls="none", marker=m, color=H.BLUE, ms=5)
        ax.plot(rr[sig], y[sig], "o", color=H.BLUE, ms=6, label="interval excludes 1")
        ax.plot(rr[ok & ~sig], y[ok & ~sig], "o", mfc="white", mec=H.BLUE, ms=6, label="interval includes 1")
        fb = t["fallback"].astype(str).to_numpy() if "fallback" in t else np.full(len(t), "")
        for yy, why in zip(y[~ok], fb[~ok]):
            ax.text(1, yy, "not estimated" + (f" ({why} fit)" if why not in ("", "none", "nan") else ""),
                    ha="center", va="center", fontsize=7.5, color="0.4", style="italic",
                    bbox=dict(fc="white", ec="none", pad=0.5))
        ax.axvline(1, color="0.3", lw=1, zorder=0)
        for hrow in headers[1:]:
            ax.axhline(hrow - 0.5, color="0.6", lw=0.6)
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.2, hi * 1.2)
        H.log_ticks(ax, lo, hi)
        H.tidy_axes(ax, "x")
        first = t.iloc[0]
        when = f", {pd.Timestamp(first['date']):%b %Y}" if "date" in t and pd.notna(first["date"]) else ""
        kind = str(first.get("kind", ""))
        ax.set_title(f"{term} ({kind}{when})" + (f"\n{model}" if by_model else ""), fontsize=10, loc="left")
        ax.set_xlabel({"step": "rate after ÷ rate before", "pulse": "rate that month ÷ expected",
                       "ramp": "rate ratio per year since"}.get(kind, "rate ratio") + "\n(log scale)", fontsize=9)
    for ax in axes.flat[len(terms):]:
        ax.set_visible(False)
    axes[0, 0].set_ylim(ny - 0.5, -0.5)
    for ax in axes[:, 0]:
        ax.set_yticks(range(len(rows)), [text for _, text in rows], fontsize=8.5)
        for i in headers:
            ax.get_yticklabels()[i].set_fontweight("bold")
        ax.tick_params(axis="y", length=0)
    handles, hl = axes.flat[0].get_legend_handles_labels()
    if pen:
        handles.append(plt.Line2D([], [], ls="none"))
        hl.append("* penalised fit: interval approximate")
    fig.legend(handles, hl, loc="outside lower center", ncol=3 if ncols > 1 else 2, frameon=False, fontsize=8.5)
    fig.suptitle(title, fontsize=12)
    return fig


# ----------------------------------------------------------------------------- output
def save(fig: "Figure", path, *, dpi: int = 110) -> None:
    """Write a figure as PNG and release its memory."""
    import matplotlib

    plt = _pyplot()
    try:
        with matplotlib.rc_context(H.PLAIN_TEXT):  # also for figures not made here
            fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)


def to_png_bytes(fig: "Figure", *, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (e.g. to inline in HTML as base64); closes the figure."""
    import matplotlib

    plt = _pyplot()
    buf = io.BytesIO()
    try:
        with matplotlib.rc_context(H.PLAIN_TEXT):
            fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buf.getvalue()
