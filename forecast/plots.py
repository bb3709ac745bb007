"""Figures (matplotlib, Agg backend). The only module that imports matplotlib.

Colours follow the Okabe–Ito palette, which stays distinguishable for the
common forms of colour blindness.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def monthly_counts(panel: pd.DataFrame, *, title: str = "Monthly incidents per province",
                   unit: str = "incidents per month") -> "Figure":
    """Small multiples: one panel per province, one line per event type.

    Parameters
    ----------
    panel : long panel (``unique_id, ds, y, country, province, event_type``).
    title : figure title.
    unit : y-axis label.
    """
    plt = _pyplot()
    units = panel[["country", "province"]].drop_duplicates().sort_values(["country", "province"])
    types = sorted(panel["event_type"].unique())
    colours = {t: OKABE_ITO[i % len(OKABE_ITO)] for i, t in enumerate(types)}
    n = len(units)
    ncol = 3 if n > 4 else max(n, 1)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 2.4 * nrow + 0.9), sharex=True,
                             squeeze=False, constrained_layout=True)
    for ax, (country, province) in zip(axes.flat, units.itertuples(index=False)):
        sub = panel[(panel["country"] == country) & (panel["province"] == province)]
        for t in types:
            s = sub[sub["event_type"] == t]
            ax.plot(s["ds"], s["y"], color=colours[t], lw=1.1, label=t)
        ax.set_title(f"{province} ({country})", fontsize=10)
        ax.grid(alpha=0.3, lw=0.5)
        ax.set_ylim(bottom=0)
        ax.tick_params(labelsize=8)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(unit, fontsize=8)
    handles = [plt.Line2D([], [], color=colours[t], lw=2) for t in types]
    fig.legend(handles, types, loc="outside lower center", ncol=len(types), frameon=False, fontsize=9)
    fig.suptitle(title, fontsize=12)
    return fig


def save(fig: "Figure", path, *, dpi: int = 110) -> None:
    """Write a figure as PNG and release its memory."""
    plt = _pyplot()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
