"""Adjacency input: accepted forms, orders from shortest paths, errors that name the rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecast import datasets
from forecast.adjacency import read_adjacency, region_orders, series_orders
from forecast.exceptions import DataValidationError
from forecast.models.series import PanelData
from forecast.panel import build_panel

from tests.models.test_spatial import bfs_orders  # brute-force breadth-first search

REF = Path(__file__).parent / "reference_data" / "spatial"


def test_reference_adjacency_orders_equal_breadth_first_search():
    adj = pd.read_csv(REF / "spatial_adjacency.csv")
    names = sorted(set(adj["province_a"]) | set(adj["province_b"]))
    got = region_orders(read_adjacency(adj), [("", n) for n in names])
    want = bfs_orders(names, zip(adj["province_a"], adj["province_b"]))
    assert (got == want).all()
    assert got.max() >= 2 and (got == got.T).all() and (np.diag(got) == 0).all()


@pytest.mark.parametrize("columns", [("province_a", "province_b"), ("region_from", "region_to"),
                                     ("district_a", "district_b")])
def test_two_column_forms_read_alike(columns):
    frame = pd.DataFrame({columns[0]: ["A", "B", "C"], columns[1]: ["B", "C", "D"]})
    adj = read_adjacency(frame)
    assert list(adj["region_a"]) == ["A", "B", "C"] and adj["order"].isna().all()
    got = region_orders(adj, [("", n) for n in "ABCD"])
    assert got[0].tolist() == [0, 1, 2, 3]


def test_order_column_gives_orders_directly_and_pairs_are_symmetric():
    frame = pd.DataFrame({"region_a": ["A", "A"], "region_b": ["B", "C"], "order": ["1", "3"]})
    got = region_orders(read_adjacency(frame), [("", n) for n in "ABCD"])
    assert got[0].tolist() == [0, 1, 3, 0] and got[2, 0] == 3 and got[3].sum() == 0


def test_bad_orders_and_blank_names_name_the_rows():
    frame = pd.DataFrame({"region_a": ["A", "", "B"], "region_b": ["B", "C", "C"], "order": ["1", "2", "x"]})
    with pytest.raises(DataValidationError) as e:
        read_adjacency(frame)
    text = str(e.value)
    assert "order" in text and "4" in text and "blank" in text and "3" in text


def test_no_pair_columns_is_an_error_with_the_forms():
    with pytest.raises(DataValidationError, match="no neighbour-pair columns"):
        read_adjacency(pd.DataFrame({"from": ["A"], "to": ["B"]}))


def test_unknown_name_is_an_error_with_did_you_mean():
    frame = pd.DataFrame({"province_a": ["Khatlon"], "province_b": ["Kundus"]})
    with pytest.raises(DataValidationError, match="did you mean 'Kunduz'"):
        region_orders(read_adjacency(frame), [("", "Khatlon"), ("", "Kunduz")])
    # a known province outside the panel (e.g. from the gazetteer) is left out silently
    got = region_orders(read_adjacency(frame), [("", "Khatlon"), ("", "Kunduz")], known=[("", "Kundus")])
    assert got.sum() == 0


def test_series_link_within_an_event_type_unless_cross_type():
    keys = pd.DataFrame({"country": ["T", "T", "A", "A"], "province": ["P", "P", "Q", "Q"],
                         "event_type": ["clash", "seizure", "clash", "seizure"]},
                        index=["T/P/clash", "T/P/seizure", "A/Q/clash", "A/Q/seizure"])
    adj = read_adjacency(pd.DataFrame({"country_a": ["T"], "province_a": ["P"], "country_b": ["A"],
                                       "province_b": ["Q"]}))
    got = series_orders(list(keys.index), keys, adj)
    assert got.tolist() == [[0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]]
    crossed = series_orders(list(keys.index), keys, adj, cross_type=True)
    assert crossed[0].tolist() == [0, 0, 1, 1]


def test_maxlag_drops_higher_orders():
    adj = read_adjacency(pd.DataFrame({"region_a": ["A", "B"], "region_b": ["B", "C"]}))
    assert series_orders(["A", "B", "C"], None, adj, maxlag=1)[0].tolist() == [0, 1, 0]


def test_bundled_adjacency_travels_with_the_panel_into_the_model_data():
    log = datasets.simulate_border_log(end="2013-12")
    panel = build_panel(log.events, "month", adjacency=log.adjacency)
    data = PanelData.from_frame(panel)
    assert data.adjacency is not None and {"region_a", "country_a"} <= set(data.adjacency.columns)
    orders = series_orders([s.uid for s in data.series], data.keys, data.adjacency)
    assert orders.max() >= 1 and (orders == orders.T).all()


def test_config_adjacency_is_relative_to_the_config_and_must_exist(tmp_path):
    from forecast.config import config_from_dict
    from forecast.exceptions import ConfigError

    (tmp_path / "ev.csv").write_text("x\n")
    (tmp_path / "adj.csv").write_text("region_a,region_b\nA,B\n")
    cfg = config_from_dict({"data": {"events": "ev.csv", "adjacency": "adj.csv"}}, base_dir=tmp_path)
    assert cfg.data.adjacency == (tmp_path / "adj.csv").resolve()
    with pytest.raises(ConfigError, match=r"\[data\] adjacency: file .*nope.csv not found"):
        config_from_dict({"data": {"events": "ev.csv", "adjacency": "nope.csv"}}, base_dir=tmp_path)


def test_a_whole_country_adjacency_fits_a_panel_of_some_provinces():
    keys = pd.DataFrame({"country": ["Tajikistan", "Tajikistan"], "province": ["Khatlon", "Dushanbe"],
                         "event_type": ["clash", "clash"]}, index=["k", "d"])
    adj = read_adjacency(pd.DataFrame({"country_a": ["Tajikistan", "Tajikistan"],
                                       "province_a": ["Khatlon", "Khatlon"],
                                       "country_b": ["Tajikistan", "Tajikistan"],
                                       "province_b": ["Dushanbe", "Sughd"]}))
    assert series_orders(["k", "d"], keys, adj).tolist() == [[0, 1], [1, 0]]  # Sughd: known, no series
    bad = read_adjacency(pd.DataFrame({"country_a": ["Tajikistan"], "province_a": ["Khatlon"],
                                       "country_b": ["Tajikistan"], "province_b": ["Dushanbee"]}))
    with pytest.raises(DataValidationError, match="did you mean 'Dushanbe'"):
        series_orders(["k", "d"], keys, bad)


def test_a_panel_with_an_adjacency_merges_and_concatenates():
    # pandas compares attrs with == when it merges: a DataFrame there would raise
    log = datasets.simulate_border_log(end="2013-12")
    panel = build_panel(log.events, "month", adjacency=log.adjacency)
    other = build_panel(log.events, "month", adjacency=log.adjacency)
    merged = panel.merge(other[["unique_id", "ds"]], on=["unique_id", "ds"])
    both = pd.concat([panel, other])
    assert len(merged) == len(panel) and len(both) == 2 * len(panel)
    assert panel.attrs["adjacency"] == other.attrs["adjacency"]
    assert PanelData.from_frame(both.drop_duplicates(["unique_id", "ds"])).adjacency is not None
