"""Province boundaries (GeoJSON) as neighbours, and the risk map drawn from them.

The fixture ``tests/data/grid_provinces.geojson`` is made up for these tests: a 3 × 3 grid
of unit squares named after the border simulation's nine provinces (some in alias
spellings), Balkh a MultiPolygon whose second part touches Takhar's east edge, and Baghlan
touching Dushanbe at one corner point only. Expected neighbours are worked out from the
grid positions by hand, not by shapely.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

import forecast
from forecast.adjacency import region_orders

import shapely  # noqa: E402,F401  (the [geo] extra, in [test]: a missing install fails here, never skips)
from forecast.boundaries import adjacency_from_geojson, read_boundaries, shared_borders  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

GRID = Path(__file__).parent / "data" / "grid_provinces.geojson"
# Canonical names by grid position (row 0 = top).
LAYOUT = [["Sughd", "Districts of Republican Subordination", "Dushanbe"],
          ["Khatlon", "Gorno-Badakhshan", "Badakhshan"],
          ["Balkh", "Kunduz", "Takhar"]]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _pairs(adj: pd.DataFrame) -> set[frozenset]:
    return {frozenset((a, b)) for a, b in zip(adj["region_a"], adj["region_b"])}


def _rook(layout) -> set[frozenset]:
    """Cells sharing an edge: |row difference| + |column difference| = 1."""
    cells = [(r, c, n) for r, row in enumerate(layout) for c, n in enumerate(row)]
    return {frozenset((a, b)) for r1, c1, a in cells for r2, c2, b in cells
            if abs(r1 - r2) + abs(c1 - c2) == 1}


def test_grid_neighbours_share_an_edge_not_a_corner():
    adj = adjacency_from_geojson(GRID)
    expected = _rook(LAYOUT) | {frozenset(("Balkh", "Takhar"))}  # through Balkh's second polygon
    assert _pairs(adj) == expected
    assert len(adj) == len(expected) == 13  # each pair once
    assert "Baghlan" not in set(adj["region_a"]) | set(adj["region_b"])  # corner contact only
    assert list(adj.columns) == ["country_a", "region_a", "country_b", "region_b", "order"]
    assert adj["order"].isna().all()  # first-order pairs: higher orders come from shortest paths


def _square(x, y, s=1.0):
    return [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]


def _doc(*polys):
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"shapeName": n}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        for n, ring in polys]}


def test_corner_contact_is_not_a_border_but_an_overlapping_sliver_is():
    corner = _doc(("A", _square(0, 0)), ("B", _square(1, 1)))
    assert adjacency_from_geojson(corner).empty
    # Drawn without a common topology: B overlaps A by 0.001 along the whole edge.
    sliver = _doc(("A", _square(0, 0)), ("B", _square(0.999, 0)))
    assert _pairs(adjacency_from_geojson(sliver)) == {frozenset(("A", "B"))}
    # A short shared stretch (a tenth of an edge) is a border.
    short = _doc(("A", _square(0, 0)), ("B", _square(1, 0.9)))
    assert _pairs(adjacency_from_geojson(short)) == {frozenset(("A", "B"))}


def test_a_few_hundred_polygons_are_fast_and_exact():
    n = 20  # 400 squares: rook pairs 2·n·(n−1)
    doc = _doc(*((f"p{r}_{c}", _square(c, r)) for r in range(n) for c in range(n)))
    t0 = time.perf_counter()
    adj = adjacency_from_geojson(doc)
    assert time.perf_counter() - t0 < 5
    layout = [[f"p{r}_{c}" for c in range(n)] for r in range(n)]
    assert _pairs(adj) == _rook(layout) and len(adj) == 2 * n * (n - 1)


def test_names_go_through_the_gazetteer():
    shapes = read_boundaries(GRID, country_property="shapeGroup")
    assert shapes["province"].tolist() == [n for row in LAYOUT for n in row] + ["Baghlan"]
    # "Khatlon oblast" and "GBAO" are written in the file; ISO codes become country names
    raw = [f["properties"]["shapeName"] for f in json.loads(GRID.read_text())["features"]]
    assert "Khatlon oblast" in raw and "GBAO" in raw
    assert dict(zip(shapes["province"], shapes["country"]))["Khatlon"] == "Tajikistan"
    assert dict(zip(shapes["province"], shapes["country"]))["Kunduz"] == "Afghanistan"
    # without a country property the country stays empty (matched by name)
    assert set(read_boundaries(GRID)["country"]) == {""}


def test_user_gazetteer_aliases_apply(tmp_path):
    (tmp_path / "gaz.csv").write_text("country,province,alias\nTajikistan,Khatlon,Xatlon Vilayat\n", encoding="utf-8")
    doc = _doc(("Xatlon Vilayat", _square(0, 0)), ("Unknown Place", _square(1, 0)))
    assert read_boundaries(doc)["province"].tolist() == ["Xatlon Vilayat", "Unknown Place"]
    shapes = read_boundaries(doc, gazetteer=tmp_path / "gaz.csv")
    assert shapes["province"].tolist() == ["Khatlon", "Unknown Place"]  # unknown names kept as written


def test_features_of_one_province_are_merged():
    doc = _doc(("A", _square(0, 0)), ("A", _square(5, 5)), ("B", _square(6, 5)))
    shapes = read_boundaries(doc)
    assert shapes["province"].tolist() == ["A", "B"]
    assert shapes["geometry"].iloc[0].area == pytest.approx(2.0)
    assert _pairs(shared_borders(shapes)) == {frozenset(("A", "B"))}


def test_unknown_name_property_lists_the_available_ones():
    from forecast.exceptions import DataValidationError

    with pytest.raises(DataValidationError) as err:
        read_boundaries(GRID, name_property="NAME_1")
    msg = str(err.value)
    assert "NAME_1" in msg and "shapeGroup, shapeName" in msg and "boundaries_name" in msg


def test_bad_files_are_clear_errors(tmp_path):
    from forecast.exceptions import ConfigError, DataValidationError

    with pytest.raises(DataValidationError, match="FeatureCollection"):
        read_boundaries({"type": "Polygon", "coordinates": []})
    point = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"shapeName": "A"}, "geometry": {"type": "Point", "coordinates": [0, 0]}},
        {"type": "Feature", "properties": {"shapeName": " "}, "geometry": {"type": "Polygon",
                                                                              "coordinates": [_square(0, 0)]}}]}
    with pytest.raises(DataValidationError) as err:
        read_boundaries(point)
    assert "not a Polygon or MultiPolygon in features 1" in str(err.value)
    assert "blank province name in features 2" in str(err.value)
    (tmp_path / "broken.geojson").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="broken.geojson: cannot read"):
        read_boundaries(tmp_path / "broken.geojson")


def test_without_shapely_the_error_says_how_to_install(monkeypatch):
    from forecast.exceptions import ConfigError

    monkeypatch.setitem(sys.modules, "shapely", None)  # makes `import shapely` raise ImportError
    with pytest.raises(ConfigError, match=r"install incident-forecast\[geo\]"):
        adjacency_from_geojson(GRID)


def test_boundary_neighbours_reach_the_panel_orders():
    adj = adjacency_from_geojson(GRID, country_property="shapeGroup")
    regions = [("Tajikistan", "Sughd"), ("Tajikistan", "Khatlon"), ("Afghanistan", "Takhar"),
               ("Afghanistan", "Balkh"), ("Afghanistan", "Kunduz")]
    known = set(zip(adj["country_a"], adj["region_a"])) | set(zip(adj["country_b"], adj["region_b"]))
    orders = region_orders(adj, regions, known=sorted(known))  # the other grid cells: outside this panel
    # Sughd–Khatlon–Balkh–Takhar: 3 steps (through Balkh's island), not 4 across the grid
    assert orders[0, 2] == 3 and orders[1, 3] == 1 and orders[3, 2] == 1 and orders[0, 4] == 3
    log = forecast.datasets.simulate_border_log(end="2013-12")
    panel = forecast.build_panel(log.events, "month", adjacency=adj)
    assert len(panel.attrs["adjacency"]) == 13


# ----------------------------------------------------------------------------- the map
@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    log = forecast.datasets.simulate_border_log(end="2014-12")
    panel = forecast.build_panel(log.events, "month")
    return forecast.load_model("climatology").fit(panel).forecast(2).to_frame(thresholds=(1, 3))


def test_map_has_one_axes_per_event_type_and_draws_the_table_numbers(table, tmp_path):
    from forecast import plots
    from forecast._plots_map import MAP_DPI, risk_map, risk_map_caption

    shapes = read_boundaries(GRID)
    fig = risk_map(table, shapes, k=3)
    maps = [ax for ax in fig.axes if ax.get_label().startswith("map:")]
    types = sorted(table["unique_id"].str.split("/").str[2].unique())
    assert sorted(ax.get_label()[4:] for ax in maps) == types
    # every province label carries its P(Y >= 3) at h 1, read straight from the table
    first = table[table["h"] == 1]
    for ax in maps:
        etype = ax.get_label()[4:]
        rows = first[first["unique_id"].str.endswith("/" + etype)]
        want = {uid.split("/")[1]: p for uid, p in zip(rows["unique_id"], rows["p_ge_3"])}
        texts = {t.get_text().split("\n")[0].replace("\n", " "): t.get_text().split("\n")[-1] for t in ax.texts}
        for prov, p in want.items():
            if prov in texts:  # long names are wrapped over lines
                shown = texts[prov]
                assert shown == ("<1%" if 0 < p < 0.005 else f"{round(100 * p):.0f}%"), (etype, prov)
        assert texts["Baghlan"] == "–"  # in the map, not in the forecast
    caption = risk_map_caption(table, shapes, k=3)
    top = first.loc[first["unique_id"].str.endswith("/clash"), ["unique_id", "p_ge_3"]].sort_values("p_ge_3").iloc[-1]
    assert f"clash: {top['unique_id'].split('/')[1]} {round(100 * top['p_ge_3']):.0f}%" in caption
    # rendered at >= 1.5x the report's widest column (1080 px)
    plots.save(fig, tmp_path / "map.png", dpi=MAP_DPI)
    from PIL import Image

    with Image.open(tmp_path / "map.png") as im:
        assert im.size[0] >= 1.5 * 1080


def test_map_caption_names_provinces_without_a_boundary(table):
    from forecast._plots_map import map_values, risk_map_caption

    shapes = read_boundaries(GRID)
    part = shapes[shapes["province"] != "Kunduz"].reset_index(drop=True)
    values, unmapped, ds = map_values(table, part, k=3)
    assert unmapped == ["Kunduz"] and values.shape == (len(part), 3)
    assert ds == table.loc[table["h"] == 1, "ds"].min()
    assert "Not on the map (no boundary in the file): Kunduz." in risk_map_caption(table, part, k=3)


def test_map_labels_fit_their_province():
    from forecast._plots_map import MAP_WIDTH, risk_map

    # One event type: one map MAP_WIDTH − 1.2 in wide over a 10-unit-wide extent.
    doc = _doc(("Big", _square(0, 0, 8)), ("Narrow", [[8, 0], [8.4, 0], [8.4, 8], [8, 8], [8, 0]]),
               ("Sliver", [[8.4, 0], [8.45, 0], [8.45, 8], [8.4, 8], [8.4, 0]]), ("Medium", _square(8.45, 0, 1.55)))
    shapes = read_boundaries(doc)
    provs = ["Big", "Narrow", "Sliver", "Medium"]
    table = pd.DataFrame({"unique_id": [f"X/{p}/clash" for p in provs], "ds": pd.Timestamp("2026-01-01"), "h": 1,
                          "p_ge_1": [0.5, 0.25, 0.75, 0.1], "country": "X", "province": provs,
                          "event_type": "clash"})
    fig = risk_map(table, shapes, k=1)
    (ax,) = [a for a in fig.axes if a.get_label() == "map:clash"]
    texts = sorted(t.get_text() for t in ax.texts)
    # inches per map unit (the extent is 10 units wide); a character is ~0.6·8/72 in wide at 8 pt
    inch = (MAP_WIDTH - 1.2) / 10
    assert 0.4 * inch < 0.0667 * 7 and 0.4 * inch > 0.0667 * 4 and 0.05 * inch < 0.0667 * 4  # as designed
    assert texts == ["25%", "Big\n50%", "Medium\n10%"]  # Narrow: the number only; Sliver: nothing


# ----------------------------------------------------------------------------- the run
def test_run_with_boundaries_draws_the_map_and_links_neighbours(tmp_path):
    from forecast.config import config_from_dict
    from forecast.pipeline.runner import run
    from forecast.pipeline.stages import run_adjacency

    log = forecast.datasets.simulate_border_log(end="2014-12")
    log.events.to_csv(tmp_path / "events.csv", index=False)
    shutil.copy(GRID, tmp_path / "provinces.geojson")
    doc = {"data": {"events": "events.csv", "boundaries": "provinces.geojson", "boundaries_country": "shapeGroup"},
           "models": {"candidates": ["climatology"]}, "backtest": {"horizon": 1, "origins": 2},
           "forecast": {"horizon": 1}, "output": {"dir": "out"}, "run": {"quiet": True}}
    cfg = config_from_dict(doc, base_dir=tmp_path)
    assert _pairs(run_adjacency(cfg)) == _pairs(adjacency_from_geojson(GRID))
    out = run(cfg)
    names = {p.name for p in (out / "figures").iterdir()}
    assert "map.png" in names and "risk.png" not in names
    from PIL import Image

    with Image.open(out / "figures" / "map.png") as im:
        assert im.size[0] >= 1.5 * 1080
    report = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="fig-map"' in report and "Highest: " in report
    # with an adjacency table too, the table gives the neighbours and the boundaries only the map
    (tmp_path / "adj.csv").write_text("region_a,region_b\nKunduz,Takhar\n", encoding="utf-8")
    both = config_from_dict({**doc, "data": {**doc["data"], "adjacency": "adj.csv"}}, base_dir=tmp_path)
    assert run_adjacency(both) == (tmp_path / "adj.csv").resolve()


def test_config_boundaries_must_exist(tmp_path):
    from forecast.config import config_from_dict
    from forecast.exceptions import ConfigError

    (tmp_path / "ev.csv").write_text("x\n")
    with pytest.raises(ConfigError, match=r"\[data\] boundaries: file .*nope.geojson not found"):
        config_from_dict({"data": {"events": "ev.csv", "boundaries": "nope.geojson"}}, base_dir=tmp_path)
    cfg = config_from_dict({"data": {"events": "ev.csv"}}, base_dir=tmp_path)
    assert cfg.data.boundaries is None and cfg.data.boundaries_name == "shapeName"
    assert cfg.data.boundaries_country is None
