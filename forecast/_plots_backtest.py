"""The backtest picture: past forecasts against what happened (re-exported by :mod:`forecast.plots`).

One row per series, one column per step ahead (one step, and the run's horizon when it
is longer): the observed counts, the forecast means made from each past origin for that
step, their 50% and 80% bands, and the origins marked along the bottom.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from forecast import _plot_helpers as H

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: Inches; saved at :data:`BACKTEST_DPI` this is 1,664 px, over 1.5x the report's 1,024 px column.
BACKTEST_WIDTH = 10.4
BACKTEST_DPI = 160


def most_active(forecasts: pd.DataFrame, n: int = 4) -> list[str]:
    """The ``n`` series with the most events over the backtest window (the distinct periods
    forecast), ties broken by series id."""
    cells = forecasts.drop_duplicates(["unique_id", "ds"])
    total = cells.groupby("unique_id")["y"].sum(min_count=1).fillna(0)
    order = sorted(total.index, key=lambda u: (-float(total[u]), str(u)))
    return order[:n]


@H.plain_text
def backtest_panels(history: pd.DataFrame, forecasts: pd.DataFrame, series: Sequence[tuple[str, str, str]],
                    steps: Sequence[int] = (1,), *, unit: str = "month", context: int = 12) -> "Figure":
    """Observed counts against past forecasts, one row per series and one column per step ahead.

    Parameters
    ----------
    history : DataFrame
        ``unique_id, ds, y``: the observed counts.
    forecasts : DataFrame
        A backtest's forecasts: ``model, unique_id, ds, cutoff, h, mean, lo-50, hi-50, lo-80, hi-80``.
    series : sequence of (unique_id, model, title)
        The series to draw, the model whose past forecasts are shown, and the row title.
    steps : sequence of int
        Steps ahead, one column each.
    unit : str
        The period word (``month``) for labels.
    context : int
        Observed periods shown before the first forecast period.
    """
    plt = H.pyplot()
    import matplotlib.dates as mdates
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    steps = list(steps)
    nrow, ncol = max(len(series), 1), len(steps)
    fig, axes = plt.subplots(nrow, ncol, figsize=(BACKTEST_WIDTH, 2.35 * nrow + 0.9), squeeze=False,
                             constrained_layout=True)
    colour = H.OKABE_ITO[0]
    for i, (uid, model, title) in enumerate(series):
        fc_all = forecasts[(forecasts["unique_id"] == uid) & (forecasts["model"] == model)]
        hist = history[history["unique_id"] == uid].sort_values("ds")
        first = pd.Timestamp(fc_all["ds"].min()) if len(fc_all) else pd.Timestamp(hist["ds"].max())
        last = pd.Timestamp(fc_all["ds"].max()) if len(fc_all) else first
        before = hist[hist["ds"] < first].tail(context)
        start = before["ds"].min() if len(before) else first
        shown = hist[(hist["ds"] >= start) & (hist["ds"] <= last)]
        for j, h in enumerate(steps):
            ax = axes[i, j]
            fc = fc_all[fc_all["h"] == h].sort_values("ds")
            x = pd.to_datetime(fc["ds"])
            for lvl, strength in (("80", H.BAND_STRENGTH[0]), ("50", H.BAND_STRENGTH[1])):
                if f"lo-{lvl}" in fc.columns:
                    ax.fill_between(x, fc[f"lo-{lvl}"], fc[f"hi-{lvl}"], step="mid", color=H.tint(colour, strength),
                                    lw=0, zorder=1)
            ax.plot(x, fc["mean"], color=colour, lw=1.6, zorder=3)
            ax.plot(pd.to_datetime(shown["ds"]), shown["y"], color="black", lw=0.9, marker="o", ms=2.6, zorder=4)
            # Origins: a tick on the x axis at each cutoff the forecasts of this step were made from.
            cut = pd.to_datetime(fc["cutoff"].drop_duplicates())
            ax.plot(cut, np.zeros(len(cut)), linestyle="none", marker="|", ms=9, mew=1.1, color=H.OKABE_ITO[1],
                    transform=ax.get_xaxis_transform(), clip_on=False, zorder=5)
            top = np.nanmax(np.concatenate([shown["y"].to_numpy(dtype=float), fc["hi-80"].to_numpy(dtype=float)
                                            if "hi-80" in fc.columns else fc["mean"].to_numpy(dtype=float), [1.0]]))
            H.count_axis(ax, top, nbins=5)
            H.tidy_axes(ax)
            if len(shown):
                ax.set_xlim(mdates.date2num(pd.Timestamp(start) - pd.Timedelta(days=10)),
                            mdates.date2num(last + pd.Timedelta(days=10)))
            H.date_axis(ax, compact=ncol > 1)
            ahead = f"{h} {unit}{'s' if h != 1 else ''} ahead"
            ax.set_title(H.wrap(f"{title} ({model}): {ahead}" if j == 0 else ahead, 110 if ncol == 1 else 64),
                         fontsize=9.5, loc="left")
            if j == 0:
                ax.set_ylabel(f"incidents per {unit}", fontsize=8.5)
    for ax in axes.ravel()[len(series) * ncol:]:
        ax.set_visible(False)
    handles = [Line2D([], [], color="black", marker="o", ms=3, lw=0.9, label="observed"),
               Line2D([], [], color=colour, lw=1.6, label="forecast mean"),
               Patch(color=H.tint(colour, H.BAND_STRENGTH[1]), label="50% range"),
               Patch(color=H.tint(colour, H.BAND_STRENGTH[0]), label="80% range"),
               Line2D([], [], color=H.OKABE_ITO[1], marker="|", ms=9, linestyle="none", label="forecast origins")]
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=8.5, frameon=False)
    return fig
