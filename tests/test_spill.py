"""The spill-over figure: shares of the fitted rate that are endemic, own-lag and neighbour-driven."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecast._plots_spill import spill_shares
from forecast.combine import Auto
from forecast.models.baselines import Climatology
from forecast.models.spatial import EndemicEpidemic
from forecast.pipeline.spill import spill_figure, spillover_components

REF = Path(__file__).parent / "reference_data" / "spatial"


@pytest.fixture(scope="module")
def panel():
    p = pd.read_csv(REF / "spatial_panel.csv", parse_dates=["ds"])
    p.attrs["adjacency"] = pd.read_csv(REF / "spatial_adjacency.csv")
    return p


def test_shares_are_the_parts_of_the_summed_fitted_means(panel):
    fitted = EndemicEpidemic(weights="first_order", exposure="population_share").fit(panel)
    comp = fitted.components()
    shares = spill_shares(comp).set_index("unique_id")
    s = comp[comp["unique_id"] == "Kunduz"][["endemic", "own", "neighbour"]].sum()
    assert shares.loc["Kunduz", "share_neighbour"] == pytest.approx(s["neighbour"] / s.sum(), rel=1e-12)
    np.testing.assert_allclose(shares[["share_endemic", "share_own", "share_neighbour"]].sum(axis=1), 1.0)
    assert (shares[["share_endemic", "share_own", "share_neighbour"]] > 0).all().all()


def test_spill_figure_is_drawn_for_a_direct_fit_and_for_auto_members(panel, tmp_path):
    direct = {"ee": EndemicEpidemic(weights="first_order", exposure="population_share").fit(panel)}
    entry = spill_figure(direct, panel, tmp_path)
    assert entry["file"] == "figures/spillover.png" and (tmp_path / "spillover.png").stat().st_size > 10_000
    assert "Most neighbour-driven" in entry["caption"]
    auto = Auto(members={"clim": Climatology(), "ee": EndemicEpidemic(weights="first_order")}, spatial_members=(),
                inner_origins=2).fit(panel)
    assert spillover_components({"auto": auto}) is not None
    assert spill_figure({"clim": Climatology().fit(panel)}, panel, tmp_path) is None


def test_several_event_types_with_long_names_lay_out_without_warnings():
    import warnings

    from forecast._plots_spill import spillover_plot

    provs = ["Districts of Republican Subordination", "Gorno-Badakhshan", "Khatlon", "Sughd"]
    rows = [{"unique_id": f"{p}/{et}", "share_endemic": 0.5, "share_own": 0.3, "share_neighbour": 0.2}
            for et in ("clash", "attack", "seizure") for p in provs]
    keys = pd.DataFrame([{"unique_id": r["unique_id"], "country": "Tajikistan", "province": r["unique_id"].split("/")[0],
                          "event_type": r["unique_id"].split("/")[1]} for r in rows]).set_index("unique_id")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = spillover_plot(pd.DataFrame(rows), keys)
    assert len(fig.axes) == 3
