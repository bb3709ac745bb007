"""Internal helpers of :mod:`forecast.plots`: keys, selection, colours, axes.

matplotlib is imported inside the functions only, so importing this module
(or :mod:`forecast.plots`) stays cheap.
"""
from __future__ import annotations

import contextlib
import functools
import re
from typing import Callable

import numpy as np
import pandas as pd

from forecast.exceptions import DataValidationError
from forecast.periods import Frequency, infer_freq, parse_freq

KEY_COLS = ("country", "province", "event_type")
BLUE, ORANGE, GREEN, VERMILLION = "#0072B2", "#E69F00", "#009E73", "#D55E00"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MAX_WIDTH = 12.0  # inches: an A4 page or a web column
UNIT = "incidents per month"
BAND_STRENGTH = (0.22, 0.42, 0.65)  # fan-chart bands, widest interval lightest
# Names come from the user's data: "$...$" in a province must be drawn as typed,
# not parsed as mathtext (an unknown macro would crash the figure).
PLAIN_TEXT = {"text.parse_math": False}
# Okabe–Ito: stays distinguishable for the common forms of colour blindness.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def pyplot():
    """``matplotlib.pyplot``, imported on first use (Agg unless a notebook or MPLBACKEND chose)."""
    import sys

    import matplotlib

    # Headless runs (CLI, tests, CI) get Agg; a Jupyter kernel, an explicit
    # MPLBACKEND or an already imported pyplot keep their own backend.
    interactive = "ipykernel" in sys.modules or "MPLBACKEND" in __import__("os").environ
    if "matplotlib.pyplot" not in sys.modules and not interactive:
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plain_text(make: Callable) -> Callable:
    """Decorate a figure function so every text of its figure is drawn literally.

    The rc must be active both while the figure is built and whenever it is
    drawn (tick labels are made and laid out at draw time, e.g. by ``savefig``
    or a notebook's display), so the returned figure's ``draw`` runs under it.
    """
    @functools.wraps(make)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(PLAIN_TEXT):
            fig = make(*args, **kwargs)
        draw = fig.draw

        @functools.wraps(draw)
        def draw_plain(*a, **kw):
            with matplotlib.rc_context(PLAIN_TEXT):
                return draw(*a, **kw)

        fig.draw = draw_plain
        return fig

    return wrapper


def with_keys(table: pd.DataFrame, keys: pd.DataFrame | None = None) -> pd.DataFrame:
    """``table`` with ``country, province, event_type``: kept, merged from ``keys``
    (any frame with ``unique_id`` and those columns, e.g. the panel) or parsed from
    ``unique_id`` = ``country/province/event_type``."""
    out = table.copy()
    missing = [c for c in KEY_COLS if c not in out.columns]
    if missing and keys is not None and "unique_id" in keys.columns:
        cols = [c for c in missing if c in keys.columns]
        out = out.merge(keys[["unique_id", *cols]].drop_duplicates("unique_id"), on="unique_id", how="left")
    parts = out["unique_id"].astype(str).str.split("/", n=2, expand=True).reindex(columns=range(3))
    three = parts[2].notna()
    guess = {"country": parts[0].where(three, ""), "province": parts[1].where(three, out["unique_id"].astype(str)),
             "event_type": parts[2].where(three, "")}
    for c in KEY_COLS:
        out[c] = out[c].astype(object).where(out[c].notna(), guess[c]) if c in out.columns else guess[c]
        out[c] = out[c].astype(str)
    return out


def label(province, event_type) -> str:
    """Compact series label, e.g. ``Khatlon · seizure``."""
    return f"{province} · {event_type}" if event_type else str(province)


NO_KEY = ("", "all", "nan", "None")  # key values of a panel without that key (read_run_panel fills "all")


def series_title(country, province, event_type, width: int = 40) -> str:
    """Panel title of a series: full province name, its country and the event type, wrapped over
    lines of at most ``width`` characters (never cut). Keys a panel does not have (country or
    event type ``"all"`` or empty) are left out, so a keyless series shows just its name."""
    import textwrap

    name = str(province)
    if str(country) not in NO_KEY and str(country) != name:
        name += f" ({country})"
    if str(event_type) not in NO_KEY:
        name += f" · {event_type}"
    return "\n".join(textwrap.wrap(name, max(int(width), 8))) or name


def wrap(text, width: int = 24) -> str:
    """Break a long name over lines (tick labels of long province names)."""
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def shorten(text, width: int) -> str:
    text = str(text)
    return text if len(text) <= width else text[:max(width - 1, 1)] + "…"


def province_axis(ax, index: list[tuple], offset: float = 0.0, fontsize: float = 9) -> None:
    """Row labels for (country, province) rows at ``i + offset``; with several countries,
    white separators between them and the country names on the right-hand side."""
    ax.set_yticks(np.arange(len(index)) + offset, [wrap(p) for _, p in index], fontsize=fontsize)
    countries = [c for c, _ in index]
    if len(set(countries)) < 2:
        return
    bounds = [i for i in range(1, len(countries)) if countries[i] != countries[i - 1]]
    for b in bounds:
        ax.axhline(b + offset - 0.5, color="white", lw=3)
    starts, ends = [0, *bounds], [*bounds, len(countries)]
    sec = ax.secondary_yaxis("right")
    sec.set_yticks([(s + e - 1) / 2 + offset for s, e in zip(starts, ends)],
                   [wrap(countries[s], 14) if e - s > 1 else shorten(countries[s], 12) for s, e in zip(starts, ends)],
                   rotation=90, va="center", fontsize=fontsize, fontweight="bold")
    sec.tick_params(length=0)
    sec.spines[:].set_visible(False)


def forest_rows(series: pd.DataFrame, flagged: set) -> tuple[list[tuple], list[int]]:
    """Rows (unique_id or None, label) top-down for a forest plot, and the positions of the
    country header rows (one per country when there are several); "*" marks ``flagged``."""
    rows, headers = [], []
    for country, grp in series.groupby("country", sort=False):
        if series["country"].nunique() > 1:
            headers.append(len(rows))
            rows.append((None, country))
        rows += [(u, label(p, e) + (" *" if u in flagged else ""))  # full names: effects_plot widens for them
                 for u, p, e in grp[["unique_id", "province", "event_type"]].itertuples(index=False)]
    return rows, headers


def select(table: pd.DataFrame, model: str | None = None, cutoff=None) -> tuple[pd.DataFrame, str | None]:
    """Rows of one model and one cutoff (default: the latest).

    Without ``model``: when several models forecast the same series, the first listed;
    when each series has its own model (a per-series choice), all rows (name None).
    """
    name = None
    if "model" in table.columns and len(table):
        models = table["model"].astype(str)
        keys = [c for c in ("unique_id", "ds", "cutoff") if c in table.columns]
        if model is None and models.nunique() > 1 and not table.duplicated(keys).any():
            pass  # one model per series: keep them all
        else:
            name = str(model) if model is not None else models.iloc[0]
            if name not in set(models):
                raise ValueError(f"model {name!r} is not in the table; it has {sorted(models.unique())}.")
            table = table[models == name]
    if "cutoff" in table.columns and len(table):
        table = table[table["cutoff"] == (pd.Timestamp(cutoff) if cutoff is not None else table["cutoff"].max())]
    return table, name


def levels(table: pd.DataFrame) -> list[str]:
    """Interval levels present as ``lo-L``/``hi-L`` pairs, widest first (``["95", "80", "50"]``)."""
    found = [m.group(1) for c in table.columns if (m := re.fullmatch(r"lo-(\d+(?:\.\d+)?)", str(c)))]
    return sorted((lv for lv in found if f"hi-{lv}" in table.columns), key=float, reverse=True)


def period_edges(ds: pd.Series, before=None) -> list:
    """Boundaries of the periods starting at ``ds`` (sorted): half-way between neighbours,
    half a period beyond the ends; the first boundary is half-way from ``before`` if given."""
    x = pd.to_datetime(pd.Series(ds)).reset_index(drop=True)
    if x.empty:
        return []
    step = (x.iloc[1] - x.iloc[0]) if len(x) > 1 else (x.iloc[0] - before if before is not None
                                                      else pd.Timedelta(days=30))
    first = x.iloc[0] - ((x.iloc[0] - before) / 2 if before is not None else step / 2)
    mids = [a + (b - a) / 2 for a, b in zip(x.iloc[:-1], x.iloc[1:])]
    return [first, *mids, x.iloc[-1] + step / 2]


def period(frame: pd.DataFrame) -> tuple[Frequency, str, str]:
    """The panel's period, y-axis unit and adjective (``attrs["freq"]``, else from the dates).

    An empty frame is taken as monthly (the usual panel); a frame whose dates
    match no frequency too (a plot never refuses what the models accepted).
    """
    fq = Frequency("month")
    if frame.attrs.get("freq"):
        fq = parse_freq(frame.attrs["freq"])
    elif len(frame):
        with contextlib.suppress(DataValidationError):
            fq = infer_freq(pd.to_datetime(frame["ds"]).to_numpy(dtype="datetime64[ns]"))
    return fq, f"incidents per {fq.label}", fq.adjective


def on_calendar(hist: pd.DataFrame, fq: Frequency) -> pd.DataFrame:
    """One series' ``ds, y`` on every period from its first to its last (sorted): an absent
    period gets ``y`` NaN, so a line drawn through it breaks (a gap, never a zero or a
    straight line across the missing periods)."""
    h = hist[["ds", "y"]].assign(ds=pd.to_datetime(hist["ds"]), y=pd.to_numeric(hist["y"], errors="coerce"))
    h = h.sort_values("ds")
    if len(h) < 2:
        return h.reset_index(drop=True)
    full = fq.range(h["ds"].iloc[0], h["ds"].iloc[-1])
    if len(full) == len(h):
        return h.reset_index(drop=True)
    return h.set_index("ds").reindex(full).rename_axis("ds").reset_index()


def tint(colour: str, strength: float) -> tuple:
    """``colour`` mixed with white: ``strength`` 1 is the colour, 0 white (opaque, so legends match)."""
    from matplotlib.colors import to_rgb

    return tuple(1 - strength * (1 - c) for c in to_rgb(colour))


def grid_shape(n: int, ncols: int | None = None, max_cols: int = 5) -> tuple[int, int]:
    ncols = max(1, min(n, ncols or (max_cols if n > 12 else 4 if n > 6 else 3 if n > 2 else n)))
    return int(np.ceil(max(n, 1) / ncols)), ncols


def date_axis(ax, compact: bool = False, max_ticks: int | None = None) -> None:
    """Month/year ticks for the current x range: at most 4 (compact) or 8 labels, January
    labelled with its year, other months with their name. Call after plotting.

    Fixed ticks rather than matplotlib's rrule-based date locators, which cost seconds
    on a page of 40 small panels.
    """
    import matplotlib.dates as mdates
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo, hi = (pd.Timestamp(mdates.num2date(v)).tz_localize(None) for v in ax.get_xlim())
    months = Frequency("month").range(lo.to_period("M").start_time, hi)
    months = months[months >= lo]
    n = max(len(months), 1)
    max_ticks = max_ticks or (4 if compact else 8)
    step = next((s for s in (1, 2, 3, 6, 12, 24, 60, 120) if n / s <= max_ticks), 240)
    keep = (months.month - 1) % step == 0 if step < 12 else (months.month == 1) & (months.year % (step // 12) == 0)
    ax.xaxis.set_major_locator(FixedLocator(mdates.date2num(months[keep])))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda v, _: (lambda d: f"{d:%Y}" if d.month == 1 or step >= 12 else f"{d:%b}")(mdates.num2date(v))))
    minor = months if (step > 1 and len(months) <= 72 and not compact) else months[:0]  # tick objects are costly
    ax.xaxis.set_minor_locator(FixedLocator(mdates.date2num(minor)) if len(minor) else NullLocator())


def count_axis(ax, top: float, nbins: int = 6) -> None:
    """y from 0 with room above ``top``; integer ticks (counts are integers)."""
    from matplotlib.ticker import MaxNLocator

    top = max(float(top) if np.isfinite(top) else 0.0, 1.0)
    ax.set_ylim(-0.04 * top, top * 1.08)  # zeros sit just above the axis line, visible
    ax.yaxis.set_major_locator(MaxNLocator(nbins=nbins, integer=True, min_n_ticks=2))


def tidy_axes(ax, grid_axis: str = "y") -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis=grid_axis, alpha=0.3, lw=0.5)
    ax.set_axisbelow(True)


def text_colour(cmap, norm, value: float) -> str:
    """Black on light cells, white on dark ones (relative luminance of the cell colour)."""
    r, g, b, _ = cmap(norm(value))
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def percent(p: float) -> str:
    """Probability as a whole percentage; never "0%"/"100%" for a possible/uncertain event."""
    if not np.isfinite(p):
        return "–"
    v = round(100 * p)
    return "<1%" if v == 0 and p > 0 else ">99%" if v == 100 and p < 1 else f"{v:.0f}%"


METRIC_LABELS = {
    "rps": "Ranked probability score", "log": "Log score", "dss": "Dawid–Sebastiani score",
    "abs_error": "Mean absolute error (incidents)", "mae": "Mean absolute error (incidents)",
    "sq_error": "Mean squared error (incidents²)", "mase": "Mean absolute scaled error",
}


def metric_label(metric: str) -> tuple[str, float | None]:
    """Axis label and a reference line (target value) for a score name."""
    if m := re.fullmatch(r"coverage_(\d+)", metric):
        return f"Share of outcomes inside the {m.group(1)}% interval (target {m.group(1)}%)", int(m.group(1)) / 100
    if metric == "bias":
        return "Bias: forecast mean − observed (incidents; target 0)", 0.0
    if m := re.fullmatch(r"brier_ge_(\d+)", metric):
        return f"Brier score for P(at least {m.group(1)}) — lower is better", None
    if m := re.fullmatch(r"interval_(\d+)", metric):
        return f"{m.group(1)}% interval score — lower is better", None
    return f"{METRIC_LABELS.get(metric, metric)} — lower is better", None


def metric_rows(frame: pd.DataFrame | None, metric: str) -> pd.DataFrame | None:
    """Rows of one metric as ``value``, from a tidy (``metric, value``) or wide (one column per metric) frame."""
    if frame is None:
        return None
    if "metric" in frame.columns:
        if metric not in set(frame["metric"]):
            raise ValueError(f"No '{metric}' scores; the table has {sorted(frame['metric'].unique())}.")
        return frame[frame["metric"] == metric]
    if metric in frame.columns:
        return frame.drop(columns=["value"], errors="ignore").rename(columns={metric: "value"})
    raise ValueError(f"No '{metric}' scores: give a tidy frame (model, h, metric, value) or a '{metric}' column.")


def log_ticks(ax, lo: float, hi: float) -> None:
    """Readable ticks on a log rate-ratio axis: 0.1, 0.2, 0.5, 1, 2, 5, 10 ..."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    for mantissas in ((1, 2, 5), (1, 3), (1,)):  # the densest set with at most 7 ticks
        nice = np.array([b * 10.0 ** e for e in range(-3, 4) for b in mantissas])
        ticks = nice[(nice >= lo * 0.999) & (nice <= hi * 1.001)]
        if ticks.size <= 7:
            break
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def past_window(hist: pd.DataFrame, origin, last_n: int) -> pd.DataFrame:
    """The history a fan chart shows before ``origin``: at most the last ``last_n`` periods of
    the series' calendar (``on_calendar`` rows, so a missing period counts as shown)."""
    hist = on_calendar(hist, period(hist)[0])
    past = hist if origin is None else hist[hist["ds"] < origin]
    return past.tail(last_n)


def draw_fan(ax, hist: pd.DataFrame, fc: pd.DataFrame, *, last_n: int, compact: bool = False,
              dates: bool = True) -> None:
    """History, nested interval bands, mean and later observations on one axis."""
    fc = fc.sort_values("ds")
    origin = fc["ds"].min() if len(fc) else None
    # Missing periods stay in as NaN (absent ones added): the observed line breaks there.
    past = past_window(hist, origin, last_n)  # the same rows history_window counts for the caption
    hist = on_calendar(hist, period(hist)[0])
    later = hist.iloc[0:0] if origin is None else hist[(hist["ds"] >= origin) & (hist["ds"] <= fc["ds"].max())]
    later = later.dropna(subset=["y"])
    top = [past["y"].max(), later["y"].max()]
    # Bands are drawn as one block per month: integer interval bounds joined by
    # sloping lines would draw spikes and fractions of incidents that no forecast implies.
    edges = period_edges(fc["ds"], past["ds"].iloc[-1] if len(past) else None)
    for lv, strength in zip(levels(fc), BAND_STRENGTH):
        lo, hi = fc[f"lo-{lv}"].to_numpy(float), fc[f"hi-{lv}"].to_numpy(float)
        ax.fill_between(edges, np.append(lo, lo[-1:]), np.append(hi, hi[-1:]), step="post",
                        color=tint(BLUE, strength), lw=0, label=f"{lv}% interval")
        top.append(hi.max(initial=0))
    ms = 2.5 if compact else 3.5
    if len(fc):
        anchor = past.dropna(subset=["y"]).tail(1)  # the mean line continues from the last observation
        ax.plot(list(anchor["ds"]) + list(fc["ds"]), list(anchor["y"]) + list(fc["mean"]), color="#004B7A",
                lw=1.4 if compact else 2, label="forecast (mean)")
        top.append(fc["mean"].max())
    ax.plot(past["ds"], past["y"], color="black", lw=0.9, marker="o", ms=ms, label="observed")
    if len(later):
        ax.plot(later["ds"], later["y"], ls="none", marker="D", ms=ms + 0.5, color=VERMILLION,
                label="observed after forecast origin")
    if len(edges):
        ax.axvline(edges[0], color="0.35", ls="--", lw=0.9)
        if not compact:
            ax.annotate("forecast origin", (edges[0], 1), xycoords=("data", "axes fraction"), xytext=(4, -4),
                        textcoords="offset points", va="top", fontsize=8, color="0.3")
    count_axis(ax, np.nanmax(np.asarray(top, dtype=float), initial=0), nbins=3 if compact else 6)
    if dates:  # shared x axes need this once
        date_axis(ax, compact=compact)
    tidy_axes(ax)
