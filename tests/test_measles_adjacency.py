"""The bundled German state borders (data/measlesDE_adjacency.csv) against the bundled measles panel."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecast import load_panel
from forecast.adjacency import read_adjacency, series_orders
from forecast.models.spatial import EndemicEpidemic

from tests.models.test_spatial import bfs_orders

DATA = Path(__file__).resolve().parents[1] / "data"


def _orders():
    panel = load_panel(DATA / "measlesDE_counts.csv")
    adj = read_adjacency(DATA / "measlesDE_adjacency.csv")
    uids = sorted(panel["unique_id"].unique())
    keys = panel.drop_duplicates("unique_id").set_index("unique_id").loc[uids, ["country", "province"]]
    return panel, adj, uids, series_orders(uids, keys, adj)


def test_every_state_of_the_panel_and_only_those():
    panel, adj, uids, _ = _orders()
    states = set(adj["region_a"]) | set(adj["region_b"])
    assert states == set(panel["province"]) and len(states) == 16 and len(adj) == 29
    assert set(adj["country_a"]) == set(adj["country_b"]) == {"Germany"}


def test_orders_are_the_breadth_first_distances_and_the_graph_is_connected():
    _, adj, uids, got = _orders()
    states = [u.split("/")[1] for u in uids]
    want = bfs_orders(states, zip(adj["region_a"], adj["region_b"]))
    assert (np.asarray(got) == want).all()
    off = ~np.eye(len(uids), dtype=bool)
    assert (want[off] >= 1).all() and want.max() <= 6  # every state reaches every other one


def test_known_borders():
    _, adj, _, _ = _orders()
    nb = {}
    for a, b in zip(adj["region_a"], adj["region_b"]):
        nb.setdefault(a, set()).add(b)
        nb.setdefault(b, set()).add(a)
    assert nb["Berlin"] == {"Brandenburg"} and nb["Saarland"] == {"Rhineland-Palatinate"}
    assert nb["Bremen"] == {"Lower Saxony"} and nb["Hamburg"] == {"Lower Saxony", "Schleswig-Holstein"}
    assert len(nb["Lower Saxony"]) == 9 and "North Rhine-Westphalia" not in nb["Bavaria"]


def test_the_spatial_model_fits_the_measles_panel_with_it():
    panel = load_panel(DATA / "measlesDE_counts.csv")
    fitted = EndemicEpidemic().fit(panel, adjacency=pd.read_csv(DATA / "measlesDE_adjacency.csv"))
    fc = fitted.forecast(1)
    means = fc.to_frame().set_index("unique_id")["mean"]
    had = panel.groupby("unique_id")["y"].sum() > 0  # Saarland reported no case in the three years
    assert len(means) == 16 and np.isfinite(means).all() and (means[had[had].index] > 0).all()
    assert not had.all()
