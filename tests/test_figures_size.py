"""Report figures at their pixel size, captions from the drawn numbers, titles, plain Methods.

One demo-like run (the bundled simulated Tajik log: 27 series, every report figure
including the intervention forest plot) with fast models and two origins; the rest
are unit checks of the helpers against an independent count.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from typer.testing import CliRunner

import forecast
from forecast import plots
from forecast._plot_helpers import series_title
from forecast.cli import app
from forecast.pipeline.context import plain_text
from forecast.pipeline.figures import models_label, window_words
from forecast.periods import parse_freq
from forecast.report import MAX_REPORT_BYTES

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

COLUMN_CSS_PX = 1024  # report.css: main is 1080 px wide with 28 px padding each side

CONFIG = """
[data]
events = "events.csv"
as_of = "2025-12-31"
countries = ["Tajikistan"]

[models]
candidates = ["climatology", "demo_intervention.toml"]
baseline = "climatology"
selection = "series"

[backtest]
horizon = 6
origins = 2
refit_every = 2

[forecast]
horizon = 6
thresholds = [1, 5]

[output]
dir = "out"
"""


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory) -> Path:
    """A run with the demo's data and figures (27 series, intervention effects), fast models."""
    import warnings

    tmp = tmp_path_factory.mktemp("demo_like")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        events = forecast.load_sample("border_sim")
    events.to_csv(tmp / "events.csv", index=False, date_format="%Y-%m-%d")
    shutil.copyfile(Path(forecast.__file__).parent / "templates" / "demo_intervention.toml",
                    tmp / "demo_intervention.toml")
    (tmp / "config.toml").write_text(CONFIG)
    res = CliRunner().invoke(app, ["run", str(tmp / "config.toml"), "--quiet"])
    assert res.exit_code == 0, res.output
    return tmp / "out"


def _images(html: str) -> list[tuple[int, int, int, int]]:
    """(pixel width, pixel height, width attribute, height attribute) of every <img>."""
    out = []
    for tag in re.findall(r"<img [^>]*>", html):
        data = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]{44})', tag).group(1))
        w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        out.append((w, h, int(re.search(r' width="(\d+)"', tag).group(1)),
                    int(re.search(r' height="(\d+)"', tag).group(1))))
    return out


# ----------------------------------------------------------------------------- the run's report
def test_demo_like_report_is_within_the_size_limit(demo_like):
    ctx = json.loads((demo_like / "report_context.json").read_text())
    assert {f["id"] for f in ctx["figures"]} >= {"forecasts", "risk", "scores", "pit", "history", "effects"}
    assert (demo_like / "index.html").stat().st_size <= MAX_REPORT_BYTES


def test_every_image_has_1_5_pixels_per_css_pixel(demo_like):
    images = _images((demo_like / "index.html").read_text())
    assert len(images) >= 6
    for w, h, css_w, css_h in images:
        assert w >= 1.5 * css_w and css_w <= w and h >= 1.5 * css_h, (w, css_w)
        assert css_w >= w / 1.5 - 1  # shown as large as the rule allows, not needlessly small
    # the fan grid fills the column and is still sharp there (100 dpi gave 1080 px)
    fan = int.from_bytes((demo_like / "figures" / "forecasts.png").read_bytes()[16:20], "big")
    assert fan >= 1.5 * COLUMN_CSS_PX


def test_fan_caption_states_the_drawn_window(demo_like):
    ctx = json.loads((demo_like / "report_context.json").read_text())
    caption = next(f["caption"] for f in ctx["figures"] if f["id"] == "forecasts")
    panel = pd.read_csv(demo_like / "panel.csv", parse_dates=["ds"])
    last = panel["ds"].max()  # the forecast starts the period after: 24 months end here
    first = last - pd.DateOffset(months=plots.FAN_HISTORY - 1)
    assert f"last {plots.FAN_HISTORY} months, {first:%b %Y} – {last:%b %Y}" in caption
    assert "3 years" not in caption


def test_methods_have_no_markup(demo_like):
    ctx = json.loads((demo_like / "report_context.json").read_text())
    assert ctx["methods"]
    for m in ctx["methods"]:
        for text in (m["description"], m["equation"]):
            assert ":class:" not in text and ":func:" not in text and "`" not in text, text
    html = (demo_like / "index.html").read_text()
    methods = html[html.index('<section id="methods">'):]
    methods = methods[:methods.index("</section>")]
    assert ":class:" not in methods and "`" not in methods


# ----------------------------------------------------------------------------- units
def test_plain_text_strips_roles_and_literals():
    assert plain_text("x_t as in :class:`PoissonGLM`.") == "x_t as in PoissonGLM."
    assert plain_text(":func:`~forecast.models.fit` of ``inner_horizon``") == "fit of inner_horizon"
    assert plain_text(":ref:`the guide <guide>`, `alpha` and :py:meth:`a.b`") == "the guide, alpha and a.b"
    assert plain_text("Var = μ + α·μ²") == "Var = μ + α·μ²"  # no markup: unchanged


def test_every_bundled_model_equation_is_plain():
    for name in forecast.specs.available_models():
        spec = forecast.load_model(name)
        for text in (plain_text(spec.equation()), plain_text(type(spec).description)):
            assert not re.search(r":\w+:|`", text), (name, text)


def test_series_title_has_country_full_name_and_wraps():
    name = "Districts of Republican Subordination"
    title = series_title("Tajikistan", name, "seizure", 20)
    lines = title.split("\n")
    assert len(lines) > 1 and all(len(line) <= 20 for line in lines)
    assert " ".join(lines) == f"{name} (Tajikistan) · seizure"  # wrapped, nothing cut
    assert "…" not in title
    assert series_title("all", "north/a", "all") == "north/a"  # a keyless panel: the series name only
    assert series_title("", "Sughd", "") == "Sughd"


def _keyless_panel(freq: str = "W-MON", n: int = 60, short: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    ds = pd.date_range("2024-01-01", periods=n, freq=freq)
    hist = pd.concat([pd.DataFrame({"unique_id": "long", "ds": ds, "y": 1}),
                      pd.DataFrame({"unique_id": "short", "ds": ds[-short:], "y": 2})], ignore_index=True)
    hist = hist.assign(country="all", province=hist["unique_id"], event_type="all")
    nxt = pd.date_range(ds[-1], periods=4, freq=freq)[1:]
    fc = pd.DataFrame([{"unique_id": u, "ds": d, "h": i + 1, "mean": 1.0, "lo-80": 0, "hi-80": 3}
                       for u in ("long", "short") for i, d in enumerate(nxt)])
    return hist, fc


def test_history_window_is_what_the_fan_grid_draws():
    hist, fc = _keyless_panel()
    n, first, last = plots.history_window(hist, fc, last_n=plots.FAN_HISTORY)
    fig = plots.small_multiples(hist, fc, last_n=plots.FAN_HISTORY)
    drawn = set()
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_label() == "observed":
                drawn |= {pd.Timestamp(mdates.num2date(v)).tz_localize(None) for v in mdates.date2num(line.get_xdata())}
    assert n == len(drawn) == plots.FAN_HISTORY  # weekly: 24 weeks, the longer series sets the window
    assert (first, last) == (min(drawn), max(drawn))
    assert last == hist["ds"].max()
    assert window_words(n, first, last, parse_freq("W-MON")) == (
        f"last 24 weeks, {first:%d %b %Y} – {last:%d %b %Y}")
    # keyless series: the title is the series name, no "· all"
    titles = {ax.get_title(loc="left") for ax in fig.axes if ax.get_visible()}
    assert titles == {"long", "short"}


def test_history_window_of_short_histories_counts_what_exists():
    hist, fc = _keyless_panel(freq="MS", n=7, short=3)
    n, first, last = plots.history_window(hist, fc, last_n=24)
    assert (n, first, last) == (7, hist["ds"].min(), hist["ds"].max())
    assert window_words(1, last, last, parse_freq("MS")) == f"last 1 month, {last:%b %Y} – {last:%b %Y}"


def test_fan_grid_title_names_the_model_or_the_mix():
    one = pd.DataFrame({"unique_id": ["a", "a", "b"], "chosen_model": "auto", "model_used": "auto"})
    assert models_label(one) == "auto (learnt pool)"
    mix = pd.DataFrame({"unique_id": ["a", "b", "c", "c"],
                        "chosen_model": ["auto", "auto", "negbin_glm", "negbin_glm"]})
    assert models_label(mix) == "models per series: auto (learnt pool) 2, negbin_glm 1"
    assert models_label(one.assign(model_used="climatology", chosen_model="climatology")) == "climatology"


def test_small_multiples_titles_are_wrapped_not_cut():
    hist, fc = _keyless_panel(freq="MS", n=30, short=30)
    long = "Gorno-Badakhshan Autonomous Region of the Republic"
    hist = hist.assign(country="Tajikistan", event_type="clash",
                       province=hist["unique_id"].map({"long": long, "short": "Sughd"}))
    fig = plots.small_multiples(hist, fc, ncols=2)
    titles = {ax.get_title(loc="left") for ax in fig.axes if ax.get_visible()}
    wrapped = next(t for t in titles if "Gorno" in t)
    assert "\n" in wrapped and wrapped.replace("\n", " ") == f"{long} (Tajikistan) · clash"
    assert "Sughd (Tajikistan) · clash" in titles
    fig.canvas.draw()  # every title inside its panel
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        if ax.get_visible():
            assert ax._left_title.get_window_extent(renderer).width <= ax.get_window_extent(renderer).width


def test_report_view_sizes_images_from_their_pixels():
    from forecast._report_figs import _figures

    png = plots.to_png_bytes(plt.figure(figsize=(6, 2)), dpi=150)  # 900 x 300 px
    (fig,) = _figures([{"id": "x", "png": png}])
    assert (fig["width"], fig["height"]) == (600, 200)
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    assert _figures([{"id": "x", "png": uri}])[0]["width"] == 600
