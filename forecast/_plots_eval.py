"""Evaluation figures of :mod:`forecast.plots` (scores by horizon, PIT histograms,
reliability diagrams); import them from :mod:`forecast.plots`.

matplotlib is imported inside the functions only (via :func:`_plot_helpers.pyplot`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np
import pandas as pd

from forecast import _plot_helpers as H
from forecast._plot_helpers import OKABE_ITO

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

_pyplot = H.pyplot


# ----------------------------------------------------------------------------- evaluation
@H.plain_text
def scores_by_horizon(scores_tidy: pd.DataFrame, *, metric: str = "rps", uncertainty: pd.DataFrame | None = None,
                      title: str | None = None, period: str = "month") -> "Figure":
    """Mean score per model by forecast horizon, with 95% intervals across origins.

    ``period`` names the horizon's unit on the x axis (``Frequency.label``: "week" etc.).

    Parameters
    ----------
    scores_tidy : tidy ``model, h, metric, value`` (``BacktestResult.scores()``). With a
        ``cutoff`` column (``scores(by=("model", "h", "cutoff"))``) the values are
        per-origin means: the plotted mean is their average and the error bar
        mean ± 1.96·sd/√(number of origins).
    uncertainty : per-origin means (``model, h, cutoff, metric, value``) for the error
        bars when ``scores_tidy`` has no ``cutoff``.

    An infinite mean (the unfloored log score of a model that gave an observed count
    probability 0) cannot sit on the axis: it is drawn as a hollow triangle at the top
    edge, marked "∞", and the model's legend entry names the horizons where it occurs.
    """
    plt = _pyplot()
    scores_tidy, per_origin = (H.metric_rows(f, metric) for f in (scores_tidy, uncertainty))
    if "cutoff" in scores_tidy.columns:
        per_origin = scores_tidy
    by_origin = None if per_origin is None or "cutoff" not in per_origin.columns else \
        per_origin.groupby(["model", "h", "cutoff"])["value"].mean().groupby(["model", "h"])
    means = (by_origin if per_origin is scores_tidy else scores_tidy.groupby(["model", "h"])["value"]).mean()
    err = None if by_origin is None else \
        (1.96 * by_origin.std(ddof=1) / np.sqrt(by_origin.count())).reindex(means.index)
    models = list(dict.fromkeys(scores_tidy["model"].astype(str)))
    ylabel, target = H.metric_label(metric)
    fig, ax = plt.subplots(figsize=(8, 4.8), layout="constrained")
    width = 0.25 / max(len(models) - 1, 1) if len(models) > 1 else 0
    hs = sorted(means.index.get_level_values("h").unique())
    off_scale = []
    for i, m in enumerate(models):
        s = means.xs(m, level="model").reindex(hs)  # a missing horizon breaks the line
        off = (i - (len(models) - 1) / 2) * width  # dodge so error bars do not overlap
        e = None if err is None else err.xs(m, level="model").reindex(hs).fillna(0).to_numpy()
        inf = np.isinf(s.to_numpy(float))
        x = s.index.to_numpy(float) + off
        if inf.any():  # off the scale: a gap in the line, a marker at the top edge after the loop
            off_scale.append((x[inf], OKABE_ITO[i % 8]))
            e = None if e is None else np.where(inf, 0, e)
        label = m if not inf.any() else f"{m} (mean \u221e at h = {', '.join(str(h) for h in np.array(hs)[inf])})"
        ax.errorbar(x, np.where(inf, np.nan, s.to_numpy(float)), yerr=e, color=OKABE_ITO[i % 8], lw=1.6,
                    marker=H.MARKERS[i % len(H.MARKERS)], ms=6, capsize=3, label=label)
    for x, color in off_scale:
        top = ax.get_xaxis_transform()  # x in data, y in axes fractions
        ax.plot(x, np.full(x.size, 0.97), transform=top, ls="none", marker="^", ms=9, mfc="white", mec=color,
                mew=1.6, clip_on=False)
        for xi in x:
            ax.annotate("\u221e", (xi, 0.97), xycoords=top, xytext=(0, -14), textcoords="offset points",
                        ha="center", va="center", fontsize=10, color=color)
    if off_scale and not np.isfinite(means.to_numpy(float)).any():
        ax.set_ylim(0, 1)  # nothing finite to scale to: an empty axis from 0, not one around 0
    if target is not None:
        ax.axhline(target, color="0.3", ls="--", lw=1,
                   label=f"target ({target:.0%})" if metric.startswith("cov") else "target")
    if metric.startswith("coverage_"):
        from matplotlib.ticker import PercentFormatter
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xticks(hs)
    ax.set_xlabel(f"forecast horizon ({period}s ahead)")
    ax.set_ylabel(ylabel)
    H.tidy_axes(ax)
    note = " (bars: 95% interval across forecast origins)" if err is not None and err.notna().any() else ""
    ax.set_title(title or f"Forecast performance by horizon{note}", loc="left", fontsize=11)
    if models:
        fig.legend(loc="outside right upper", frameon=False, fontsize=9, title="model")
    return fig


@H.plain_text
def pit_histograms(pits: Mapping[str, object], *, title: str = "Calibration: PIT histograms (flat at 1 = calibrated)",
                   ncols: int | None = None) -> "Figure":
    """One PIT histogram per model (bars = density), dashed line at 1 (uniform), shared y."""
    plt = _pyplot()
    if hasattr(pits, "density"):
        pits = {"": pits}
    nrows, ncols = H.grid_shape(len(pits), ncols, max_cols=4)
    size = (min(H.MAX_WIDTH, max(6.5, 0.8 + 3.2 * ncols)), 1.2 + 2.5 * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=size,
                             sharey=True, sharex=True, squeeze=False, layout="constrained")
    top = max([float(np.nanmax(p.density, initial=0)) for p in pits.values()] + [1.0])
    for i, (ax, (name, p)) in enumerate(zip(axes.flat, pits.items())):
        edges, dens = np.asarray(p.edges), np.asarray(p.density)
        ax.bar(edges[:-1], dens, width=np.diff(edges), align="edge", color=H.tint(H.BLUE, 0.75),
               edgecolor="white", lw=0.8)
        ax.axhline(1, color="black", ls="--", lw=1)
        if p.n == 0:
            ax.text(0.5, 0.5, "no forecasts", transform=ax.transAxes, ha="center", color="0.4")
        ax.set_title(f"{name} (n = {p.n:,})" if name else f"n = {p.n:,}", fontsize=10, loc="left")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, top * 1.1)
        H.tidy_axes(ax)
        if i % ncols == 0:
            ax.set_ylabel("density (1 = calibrated)")
        if i >= len(pits) - ncols:
            ax.set_xlabel("PIT value")
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes.flat[len(pits):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=12)
    fig.text(0.5, 0, "U shape: intervals too narrow · hump: too wide · slope: forecasts biased high or low",
             ha="center", va="bottom", fontsize=8.5, color="0.3")
    fig.get_layout_engine().set(rect=(0, 0.04, 1, 0.96))
    return fig


@H.plain_text
def reliability_diagram(rel: Mapping[str, pd.DataFrame] | pd.DataFrame, *, k: int, title: str | None = None,
                        ncols: int | None = None) -> "Figure":
    """Forecast probability of at least ``k`` incidents vs how often it happened.

    ``rel`` is :func:`forecast.calibration.reliability` output, or a dict of them per
    model (one panel each). Point area grows with the number of forecasts in the
    bin; grey bars show the range expected from a calibrated forecast (if present).
    """
    plt = _pyplot()
    rel = {"": rel} if isinstance(rel, pd.DataFrame) else dict(rel)
    nrows, ncols = H.grid_shape(len(rel), ncols, max_cols=3)
    side = min(4.0, (H.MAX_WIDTH - 1.5) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 + side * ncols, 1.6 + side * nrows), sharex=True,
                             sharey=True, squeeze=False, layout="constrained")
    ndata = max([float(np.nanmax(r["n"], initial=0)) for r in rel.values()] + [0.0])
    nmax = max(ndata, 1.0)
    area = lambda n: 12 + 240 * np.sqrt(np.asarray(n, float) / nmax)  # noqa: E731
    for i, (ax, (name, r)) in enumerate(zip(axes.flat, rel.items())):
        r = r[r["n"] > 0]
        ax.plot([0, 1], [0, 1], color="0.4", ls="--", lw=1, label="perfect calibration")
        if {"band_lo", "band_hi"} <= set(r.columns) and len(r):
            ax.vlines(r["mean_prob"], r["band_lo"], r["band_hi"], color="0.75", lw=5, zorder=1,
                      label="range expected if calibrated")
        ax.plot(r["mean_prob"], r["obs_freq"], color=H.BLUE, lw=1, zorder=2)
        ax.scatter(r["mean_prob"], r["obs_freq"], s=area(r["n"]), color=H.BLUE, edgecolor="white", zorder=3)
        if not len(r):
            ax.text(0.5, 0.5, "no forecasts", transform=ax.transAxes, ha="center", color="0.4",
                    bbox=dict(fc="white", ec="none"))
        ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03))
        ax.set_box_aspect(1)
        ax.set_title(f"{name} (n = {int(r['n'].sum()):,})" if name else f"n = {int(r['n'].sum()):,}",
                     fontsize=10, loc="left")
        H.tidy_axes(ax, "both")
        if i % ncols == 0:
            ax.set_ylabel("observed frequency")
        if i >= len(rel) - ncols:
            ax.set_xlabel(f"forecast P(at least {k})")
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes.flat[len(rel):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for n in sorted({int(round(ndata)), max(int(round(ndata / 10)), 1)}) if ndata else []:
        handles.append(plt.Line2D([], [], ls="none", marker="o", ms=float(np.sqrt(area(n))), color=H.BLUE, mec="white"))
        labels.append(f"{n:,} forecast{'s' if n != 1 else ''} in the bin")
    fig.legend(handles, labels, loc="outside lower center", ncol=3 if ncols > 1 else 2, frameon=False, fontsize=8.5)
    fig.suptitle(title or f"Reliability of P(at least {k} incident{'s' if k != 1 else ''})", fontsize=12)
    return fig
