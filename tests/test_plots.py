"""Report figures: structure, labels, the numbers drawn, sizes, degenerate inputs.

Inputs come from the real toolkit (bundled simulated log, climatology forecasts, a
small backtest, GLM intervention effects). What is drawn is compared with an
independent computation from those inputs (annotations, bar heights, error bars,
heat-map cells), not with the plotting code's own helpers.
"""
from __future__ import annotations

import io
import subprocess
import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest

import forecast
from forecast import plots
from forecast.pipeline import backtest  # takes spec names too
from forecast.calibration import pit_histogram, reliability

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PolyCollection, QuadMesh  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PROVINCES = ["Dushanbe", "Khatlon", "Kunduz"]  # Dushanbe clash is all zero: a fallback series
ORIGIN = pd.Timestamp("2025-07-01")
MAX_PX = 12 * 110  # 12 inches at the default 110 dpi


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    full = forecast.build_panel(forecast.load_sample("border_sim"), as_of="2025-12-31")
    return full[full["province"].isin(PROVINCES)].reset_index(drop=True)


@pytest.fixture(scope="module")
def table(panel) -> pd.DataFrame:
    """Six months forecast from 2025-07, so the panel also holds the outcomes."""
    fc = forecast.load_model("climatology").fit(panel[panel["ds"] < ORIGIN]).forecast(6)
    return fc.to_frame(thresholds=(1, 3, 5))


@pytest.fixture(scope="module")
def bt(panel):
    return backtest(panel, ["climatology", "naive"], horizon=3, n_origins=4)


@pytest.fixture(scope="module")
def eff(panel) -> pd.DataFrame:
    spec = forecast.load_model("poisson_glm")
    spec = type(spec)(**{**spec.get_params(), "seasonality": "none", "interventions": [
        {"name": "takeover", "date": "2021-08-01", "kind": "step"},
        {"name": "surge", "date": "2023-03-01", "kind": "pulse"}]})
    return forecast.effects(spec.fit(panel))


def png_size(fig: Figure) -> tuple[int, int]:
    data = plots.to_png_bytes(fig)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    img = matplotlib.image.imread(io.BytesIO(data), format="png")
    return img.shape[1], img.shape[0]


def visible_axes(fig: Figure) -> list:
    """Plot panels: visible axes that are not colour bars."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def title(ax) -> str:
    return " ".join(t for loc in ("left", "center", "right") if (t := ax.get_title(loc=loc)))


def legend_texts(fig: Figure) -> list[str]:
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for lg in legends for t in lg.get_texts()]


def expected_percent(p: float) -> str:
    v = int(np.floor(100 * p + 0.5))
    if v == 0 and p > 0:
        return "<1%"
    if v == 100 and p < 1:
        return ">99%"
    return f"{v}%"


# ----------------------------------------------------------------------------- module
def test_importing_plots_does_not_import_matplotlib():
    # the private figure modules too: matplotlib is imported lazily everywhere
    code = ("import sys, forecast.plots, forecast._plots_eval, forecast._plot_helpers;"
            " sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_evaluation_figures_stay_public_in_plots():
    from forecast import _plots_eval
    for name in ("scores_by_horizon", "pit_histograms", "reliability_diagram"):
        assert getattr(plots, name) is getattr(_plots_eval, name)


def test_to_png_bytes_and_save_close_the_figure(tmp_path, panel):
    fig = plots.monthly_counts(panel)
    num = fig.number
    width, height = png_size(fig)
    assert not plt.fignum_exists(num)
    assert 0 < width <= MAX_PX and 0 < height <= 20 * 110
    fig = plots.monthly_counts(panel)
    plots.save(fig, tmp_path / "m.png")
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    assert not plt.fignum_exists(fig.number)


# ----------------------------------------------------------------------------- fan charts
def test_fan_chart_draws_history_bands_mean_and_outcomes(panel, table):
    uid = "Tajikistan/Khatlon/seizure"
    fig = plots.fan_chart(panel, table, unique_id=uid, last_n=24)
    assert isinstance(fig, Figure)
    (ax,) = visible_axes(fig)
    assert "incidents" in ax.get_ylabel()
    assert "Khatlon" in title(ax) and "seizure" in title(ax)
    labels = legend_texts(fig)
    assert {"95% interval", "80% interval", "50% interval", "forecast (mean)", "observed",
            "observed after forecast origin"} <= set(labels)
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 3
    # widest band on top of the y range: its upper edge reaches the largest hi-95
    top = max(v[:, 1].max() for c in bands for v in (p.vertices for p in c.get_paths()))
    assert top == table.loc[table["unique_id"] == uid, "hi-95"].max()
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    hist = panel[(panel["unique_id"] == uid) & (panel["ds"] < ORIGIN)].tail(24)
    np.testing.assert_array_equal(lines["observed"].get_ydata(), hist["y"].to_numpy())
    later = panel[(panel["unique_id"] == uid) & (panel["ds"] >= ORIGIN)]
    np.testing.assert_array_equal(lines["observed after forecast origin"].get_ydata(), later["y"].to_numpy())
    # the forecast-origin line lies between the last observation and the first forecast month
    origin_x = [matplotlib.dates.date2num(ln.get_xdata()[0]) for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(origin_x) == 1
    assert matplotlib.dates.date2num(hist["ds"].iloc[-1]) < origin_x[0] < matplotlib.dates.date2num(ORIGIN)
    # counts: whole-number ticks
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert all(float(t).is_integer() for t in ticks)
    w, h = png_size(fig)
    assert w <= MAX_PX and h <= MAX_PX


def test_fan_chart_all_zero_series_and_unknown_id(panel, table):
    uid = "Tajikistan/Dushanbe/clash"
    assert panel.loc[panel["unique_id"] == uid, "y"].eq(0).all()
    fig = plots.fan_chart(panel, table, unique_id=uid)
    (ax,) = visible_axes(fig)
    assert ax.get_ylim()[1] >= 1  # a visible y range even when everything is 0
    png_size(fig)
    with pytest.raises(ValueError, match="not in the forecast table"):
        plots.fan_chart(panel, table, unique_id="Nowhere/None/attack")


def test_fan_chart_takes_backtest_forecasts(panel, bt):
    uid = "Tajikistan/Khatlon/clash"
    fig = plots.fan_chart(panel, bt.forecasts, unique_id=uid, model="naive")
    assert "naive" in title(visible_axes(fig)[0])
    last = bt.forecasts["cutoff"].max()
    n_months = ((bt.forecasts["unique_id"] == uid) & (bt.forecasts["model"] == "naive")
                & (bt.forecasts["cutoff"] == last)).sum()
    mean_line = next(ln for ln in visible_axes(fig)[0].get_lines() if ln.get_label() == "forecast (mean)")
    assert len(mean_line.get_ydata()) == n_months + 1  # starts at the last observation


def test_small_multiples_grid_is_provinces_by_event_types(panel, table):
    fig = plots.small_multiples(panel, table)
    axes = visible_axes(fig)
    assert len(axes) == len(PROVINCES) * 3
    titles = {ax.get_title(loc="left") for ax in axes}
    assert "Khatlon (Tajikistan) · seizure" in titles and "Dushanbe (Tajikistan) · clash" in titles
    assert "incidents" in fig.get_supylabel()
    assert "95% interval" in legend_texts(fig)
    # rows are provinces, columns event types
    grid = fig.axes[0].get_subplotspec().get_gridspec()
    assert (grid.nrows, grid.ncols) == (len(PROVINCES), 3)
    assert fig.get_size_inches()[0] <= 12


def test_small_multiples_falls_back_to_a_series_grid(panel, table):
    fig = plots.small_multiples(panel, table, ncols=2, max_panels=4)
    assert len(visible_axes(fig)) == 4
    assert "first 4 of 9" in fig.get_suptitle()
    one = table[table["unique_id"] == "Tajikistan/Dushanbe/clash"]
    fig = plots.small_multiples(panel, one)
    assert len(visible_axes(fig)) == 1
    png_size(fig)


def test_small_multiples_long_names_do_not_overflow_panels(table):
    """Panel titles stay within their panel with long province names."""
    long = "Districts of Republican Subordination and Beyond"
    keys = table[["unique_id"]].drop_duplicates()
    rename = {u: u.replace("Khatlon", long) for u in keys["unique_id"]}
    tab = table.assign(unique_id=table["unique_id"].map(rename))
    hist = pd.DataFrame({"unique_id": tab["unique_id"], "ds": tab["ds"] - pd.DateOffset(months=6), "y": 1})
    fig = plots.small_multiples(hist, tab, ncols=4, max_panels=40)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in visible_axes(fig):
        text = ax._left_title
        assert text.get_text() and text.get_window_extent(renderer).width <= ax.get_window_extent(renderer).width


# ----------------------------------------------------------------------------- risk heat map
def test_risk_heatmap_annotations_are_the_rounded_probabilities(panel, table):
    fig = plots.risk_heatmap(table, k=3, keys=panel)
    (ax,) = visible_axes(fig)
    rows = [t.get_text().replace("\n", " ") for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    assert rows == ["Kunduz", "Dushanbe", "Khatlon"]  # by country (Afghanistan first), then name
    assert cols == ["attack", "clash", "seizure"]
    h1 = table[table["h"] == 1].merge(panel[["unique_id", "province", "event_type"]].drop_duplicates(),
                                      on="unique_id")
    expected = {(r.province, r.event_type): expected_percent(r.p_ge_3) for r in h1.itertuples()}
    drawn = {(rows[int(round(t.get_position()[1]))], cols[int(round(t.get_position()[0]))]): t.get_text()
             for t in ax.texts}
    assert drawn == expected
    # cell colours carry the same probabilities
    img = ax.get_images()[0]
    for (prov, typ), p in ((k, h1.set_index(["province", "event_type"]).loc[k, "p_ge_3"]) for k in expected):
        assert img.get_array()[rows.index(prov), cols.index(typ)] == pytest.approx(p)
    assert img.norm.vmin == 0 and img.norm.vmax == 1
    cbar = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert cbar and cbar[0].get_ylabel() == "P(at least 3 incidents)"
    assert "July 2025" in title(ax)


def test_risk_heatmap_parses_keys_and_rejects_missing_threshold(panel, table):
    bare = table.drop(columns=[c for c in ("country", "province", "event_type") if c in table])
    with_keys = plots.risk_heatmap(bare, k=1, keys=panel)
    parsed = plots.risk_heatmap(bare, k=1)  # unique_id = country/province/event_type
    assert [t.get_text() for t in visible_axes(with_keys)[0].texts] == \
        [t.get_text() for t in visible_axes(parsed)[0].texts]
    with pytest.raises(ValueError, match="p_ge_7"):
        plots.risk_heatmap(table, k=7)


def test_percent_labels_never_claim_certainty_wrongly():
    from forecast._plot_helpers import percent

    assert [percent(p) for p in (0.0, 0.004, 0.005, 0.384, 0.996, 1.0, np.nan)] == \
        ["0%", "<1%", "<1%", "38%", ">99%", "100%", "–"]


# ----------------------------------------------------------------------------- evaluation
def test_scores_by_horizon_error_bars_are_95pct_across_origins(bt):
    per_origin = bt.scores(by=("model", "h", "cutoff"))
    fig = plots.scores_by_horizon(per_origin, metric="rps")
    (ax,) = visible_axes(fig)
    assert "lower is better" in ax.get_ylabel()
    assert "horizon" in ax.get_xlabel()
    assert legend_texts(fig) == ["climatology", "naive"]
    # independent computation from the per-forecast scores
    f = bt.forecasts.assign(rps=bt.point_scores["rps"].to_numpy())
    means = f[f["model"] == "naive"].groupby(["h", "cutoff"])["rps"].mean().groupby("h")
    centre = means.mean().to_numpy()
    half = 1.96 * means.std(ddof=1).to_numpy() / np.sqrt(means.count().to_numpy())
    container = [c for c in ax.containers if c.get_label() == "naive"][0]
    line, _, (bars,) = container.lines
    np.testing.assert_allclose(line.get_ydata(), centre)
    segs = np.array([s[:, 1] for s in bars.get_segments()])
    np.testing.assert_allclose(segs[:, 0], centre - half)
    np.testing.assert_allclose(segs[:, 1], centre + half)


def test_scores_by_horizon_missing_horizons_and_coverage_target(bt):
    tidy = bt.scores()
    tidy = tidy[~((tidy["model"] == "naive") & (tidy["h"] == 2))]
    fig = plots.scores_by_horizon(tidy, metric="coverage_80")
    (ax,) = visible_axes(fig)
    naive = [c for c in ax.containers if c.get_label() == "naive"][0].lines[0]
    assert np.isnan(naive.get_ydata()[1]) and np.isfinite(naive.get_ydata()[[0, 2]]).all()
    assert any(ln.get_ydata()[0] == 0.8 for ln in ax.get_lines() if ln.get_linestyle() == "--")
    assert "80%" in ax.get_ylabel()
    png_size(fig)
    with pytest.raises(ValueError, match="No 'nonsense' scores"):
        plots.scores_by_horizon(tidy, metric="nonsense")


def test_pit_histograms_one_panel_per_model_with_shared_y(bt):
    f, ps = bt.forecasts, bt.point_scores
    pits = {m: pit_histogram(ps[(f["model"] == m).to_numpy()]) for m in ("climatology", "naive")}
    pits["empty"] = pit_histogram((np.array([]), np.array([])))
    fig = plots.pit_histograms(pits)
    axes = visible_axes(fig)
    assert len(axes) == 3
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[1])
    for ax, (name, p) in zip(axes, pits.items()):
        assert ax.get_title(loc="left").startswith(name)
        np.testing.assert_allclose([r.get_height() for r in ax.patches], p.density)
        assert any(ln.get_linestyle() == "--" and ln.get_ydata()[0] == 1 for ln in ax.get_lines())
    assert "PIT" in axes[0].get_xlabel() or "PIT" in axes[-1].get_xlabel()
    png_size(fig)


def test_reliability_diagram_points_are_the_bins(bt):
    f = bt.forecasts
    rel = {m: reliability(f.loc[f["model"] == m, "p_ge_1"], f.loc[f["model"] == m, "y"] >= 1)
           for m in ("climatology", "naive")}
    fig = plots.reliability_diagram(rel, k=1)
    axes = visible_axes(fig)
    assert len(axes) == 2
    for ax, r in zip(axes, rel.values()):
        r = r[r["n"] > 0]
        pts = ax.collections[-1].get_offsets()
        np.testing.assert_allclose(pts, r[["mean_prob", "obs_freq"]].to_numpy())
        sizes = ax.collections[-1].get_sizes()
        assert (np.argsort(sizes, kind="stable") == np.argsort(r["n"].to_numpy(), kind="stable")).all()
    assert "perfect calibration" in legend_texts(fig)
    assert "at least 1" in axes[0].get_xlabel()
    single = plots.reliability_diagram(reliability([], []), k=5)  # no forecasts at all
    assert len(visible_axes(single)) == 1
    png_size(single)


# ----------------------------------------------------------------------------- data and effects
def test_history_heatmap_cells_are_the_counts(panel):
    fig = plots.history_heatmap(panel, event_type="clash")
    (ax,) = visible_axes(fig)
    mesh = [c for c in ax.collections if isinstance(c, QuadMesh)][0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    clash = panel[panel["event_type"] == "clash"].pivot_table(index="province", columns="ds", values="y")
    expected = clash.loc[labels].to_numpy()
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(expected.shape), expected)
    assert mesh.norm.gamma == 0.5
    total = plots.history_heatmap(panel)
    mesh = [c for c in visible_axes(total)[0].collections if isinstance(c, QuadMesh)][0]
    summed = panel.pivot_table(index="province", columns="ds", values="y", aggfunc="sum").loc[labels]
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(summed.shape), summed.to_numpy())
    years = [t.get_text() for t in visible_axes(total)[0].get_xticklabels()]
    assert "2016" in years and "2024" in years
    cbar = [a for a in total.axes if a.get_label() == "<colorbar>"][0]
    assert "incidents per month" in cbar.get_ylabel()


def test_history_heatmap_all_zero_panel(panel):
    zero = panel[panel["unique_id"] == "Tajikistan/Dushanbe/clash"]
    w, h = png_size(plots.history_heatmap(zero))
    assert w <= MAX_PX


def test_effects_plot_forest_per_term(eff):
    assert eff["rate_ratio"].isna().any()  # the all-zero series fell back: no estimate
    fig = plots.effects_plot(eff)
    axes = visible_axes(fig)
    assert len(axes) == 2
    assert [ax.get_title(loc="left").split(" ")[0] for ax in axes] == ["takeover", "surge"]
    for ax in axes:
        assert ax.get_xscale() == "log"
        assert any(np.allclose(ln.get_xdata(), 1) for ln in ax.get_lines())
        assert "log scale" in ax.get_xlabel()
        assert sum("not estimated" in t.get_text() for t in ax.texts) == eff.loc[
            eff["term"] == eff["term"].iloc[0], "rate_ratio"].isna().sum()
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert any(lb.startswith("Khatlon · clash") for lb in labels)
    assert {"Afghanistan", "Tajikistan"} <= set(labels)  # country headers
    # the point of each estimated series sits at its rate ratio
    ax = axes[0]
    takeover = eff[(eff["term"] == "takeover") & eff["rate_ratio"].notna()]
    drawn = np.concatenate([ln.get_xdata() for ln in ax.get_lines() if ln.get_marker() == "o"])
    np.testing.assert_allclose(np.sort(drawn), np.sort(takeover["rate_ratio"].to_numpy()))
    png_size(fig)


def test_effects_plot_all_nan():
    eff = pd.DataFrame({"unique_id": ["A/x/clash", "A/y/clash"], "term": "closure", "kind": "step",
                        "date": pd.Timestamp("2020-01-01"), "estimate": np.nan, "std_error": np.nan,
                        "rate_ratio": np.nan, "lo": np.nan, "hi": np.nan, "p_value": np.nan,
                        "fallback": "climatology"})
    fig = plots.effects_plot(eff)
    assert sum("not estimated" in t.get_text() for t in visible_axes(fig)[0].texts) == 2
    png_size(fig)


@pytest.mark.parametrize("name", ["fan", "small", "risk", "scores", "history", "effects", "monthly"])
def test_every_figure_fits_a_page(name, panel, table, bt, eff):
    make = {
        "fan": lambda: plots.fan_chart(panel, table, unique_id="Afghanistan/Kunduz/clash"),
        "small": lambda: plots.small_multiples(panel, table),
        "risk": lambda: plots.risk_heatmap(table, k=1),
        "scores": lambda: plots.scores_by_horizon(bt.scores(), metric="rps"),
        "history": lambda: plots.history_heatmap(panel),
        "effects": lambda: plots.effects_plot(eff),
        "monthly": lambda: plots.monthly_counts(panel),
    }[name]
    fig = make()
    assert fig.get_size_inches()[0] <= 12
    assert fig.get_suptitle() or any(title(ax) for ax in fig.axes)


def test_per_series_model_choice_keeps_every_series(panel, table):
    """A table with one (different) model per series is drawn whole, not cut to one model."""
    uids = sorted(table["unique_id"].unique())
    chosen = table.assign(model=table["unique_id"].map({u: ("naive" if i % 2 else "climatology")
                                                       for i, u in enumerate(uids)}))
    assert len(visible_axes(plots.small_multiples(panel, chosen))) == len(uids)
    fig = plots.risk_heatmap(chosen, k=1)
    assert len(visible_axes(fig)[0].texts) == len(uids)
    both = pd.concat([table, table.assign(model="other")])  # two models for every series: the first
    assert "climatology" in plots.small_multiples(panel, both).get_suptitle()


def test_effects_plot_one_panel_per_term_and_model(eff):
    both = pd.concat([eff.assign(model="a"), eff.assign(model="b")])
    fig = plots.effects_plot(both)
    assert len(visible_axes(fig)) == 2 * eff["term"].nunique()
    assert {title(ax).split("\n")[-1] for ax in visible_axes(fig)} == {"a", "b"}
