"""The spill-over figure: how much of each province's fitted incident rate is its endemic
level, its own last count and its neighbours' last counts (an endemic–epidemic fit; as R
surveillance's ``plot(hhh4, type = "fitted")`` summarised over the fit window)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from forecast._plot_helpers import OKABE_ITO, plain_text, pyplot, wrap

PARTS = (("endemic", "endemic (level, season)"), ("own", "own last count"), ("neighbour", "neighbours' last counts"))
#: Width in inches at dpi 150: 1650 px, ≥ 1.5 × the report's content column.
WIDTH, DPI = 11.0, 150


def spill_shares(components: pd.DataFrame) -> pd.DataFrame:
    """Per series: Σ_t of each part of the fitted mean over the fit window, and its share.

    Returns ``unique_id, endemic, own, neighbour, total, share_endemic, share_own,
    share_neighbour`` (shares sum to 1; a series with total 0 gets NaN shares)."""
    sums = components.groupby("unique_id", sort=False)[[p for p, _ in PARTS]].sum()
    sums["total"] = sums.sum(axis=1)
    for p, _ in PARTS:
        sums[f"share_{p}"] = np.where(sums["total"] > 0, sums[p] / sums["total"].where(sums["total"] > 0, 1), np.nan)
    return sums.reset_index()


@plain_text
def spillover_plot(shares: pd.DataFrame, keys: pd.DataFrame | None = None):
    """Horizontal stacked bars of the shares per province, one panel per event type (stacked
    vertically, so long province names keep their room).

    ``keys``: ``unique_id -> country, province, event_type`` for labels and panels."""
    plt = pyplot()
    frame = shares.copy()
    if keys is not None and {"province", "event_type"} <= set(keys.columns):
        frame = frame.merge(keys[["country", "province", "event_type"]], left_on="unique_id", right_index=True,
                            how="left")
    else:
        frame["province"], frame["event_type"], frame["country"] = frame["unique_id"], "", ""
    types = list(dict.fromkeys(frame["event_type"].fillna("")))
    sizes = [max(int((frame["event_type"].fillna("") == et).sum()), 1) for et in types]
    fig, axes = plt.subplots(len(types), 1, figsize=(WIDTH, 1.0 + 0.3 * sum(sizes) + 0.6 * len(types)),
                             squeeze=False, sharex=True, gridspec_kw={"height_ratios": sizes})
    for ax, et in zip(axes[:, 0], types):
        sub = frame[frame["event_type"].fillna("") == et].sort_values("share_neighbour", ascending=True)
        y = np.arange(len(sub))
        left = np.zeros(len(sub))
        for (p, lab), colour in zip(PARTS, (OKABE_ITO[5], OKABE_ITO[0], OKABE_ITO[3])):
            v = np.nan_to_num(sub[f"share_{p}"].to_numpy(dtype=float))
            ax.barh(y, v, left=left, color=colour, label=lab, height=0.7)
            left += v
        names = [wrap(f"{pr}" + (f" ({c})" if isinstance(c, str) and c and c != "all" else ""), 30)
                 for pr, c in zip(sub["province"], sub["country"])]
        ax.set_yticks(y, names, fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0", "25%", "50%", "75%", "100%"])
        ax.set_title(str(et) if et else "all series", fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0.05 if len(types) > 1 else 0.1, 1, 1))
    return fig
