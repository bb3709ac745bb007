"""Which provinces are neighbours: reading an adjacency table and turning it into
neighbourhood orders between the series of a panel.

An adjacency travels with the panel (``build_panel(adjacency=...)``, ``[data] adjacency``
in a run config, ``panel.attrs["adjacency"]``) in one canonical form, the frame
:func:`read_adjacency` returns: ``country_a, region_a, country_b, region_b, order``
(countries empty when the source names none; ``order`` missing when the source gives
first-order pairs only). Accepted sources, matched by column name:

* ``country_a, province_a, country_b, province_b`` (the bundled samples' form);
* two columns ``<x>_a, <x>_b`` (``province_a, province_b``, ``region_a, region_b``,
  ``unique_id_a, unique_id_b``, ...) or ``region_from, region_to``;
* either with an optional ``order`` column (1 = neighbours, 2 = neighbours of
  neighbours, ...) that gives higher orders directly.

Pairs are symmetric: listing (a, b) also makes b a neighbour of a. Without an
``order`` column, orders come from shortest paths over the pairs between the panel's
own regions (as R surveillance's ``nbOrder``).

:func:`series_orders` maps the regions to the series of a panel: a region is the
series' ``(country, province)`` when the panel has key columns, else its
``unique_id``; two series are linked only when they share an event type (unless
``cross_type``), so clashes spill over to clashes, seizures to seizures.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from forecast.exceptions import DataValidationError, Problem

__all__ = ["ADJACENCY_COLUMNS", "AdjacencyTable", "read_adjacency", "region_orders", "series_orders", "series_regions"]

#: Columns of the canonical adjacency frame.
ADJACENCY_COLUMNS = ("country_a", "region_a", "country_b", "region_b", "order")
_HINT = ("Give neighbour pairs as columns country_a, province_a, country_b, province_b, or two columns "
         "<name>_a, <name>_b (or region_from, region_to), with an optional integer column order.")


class AdjacencyTable:
    """The canonical adjacency frame as ``panel.attrs["adjacency"]`` holds it.

    pandas compares the ``attrs`` of the frames it merges or concatenates with ``==``; a
    DataFrame there makes that comparison raise, so the frame travels in this wrapper,
    which compares by content. ``.frame`` is the canonical frame.
    """

    __slots__ = ("frame",)

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AdjacencyTable) and self.frame.equals(other.frame)

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return f"AdjacencyTable({len(self.frame)} pairs)"


def as_attr(source: "pd.DataFrame | str | Path | AdjacencyTable") -> AdjacencyTable:
    """Any accepted adjacency source, read and wrapped for ``panel.attrs["adjacency"]``."""
    return source if isinstance(source, AdjacencyTable) else AdjacencyTable(read_adjacency(source))


def _text(col: pd.Series) -> pd.Series:
    return col.astype("string").fillna("").str.strip().astype(object)


def read_adjacency(source: "pd.DataFrame | str | Path | AdjacencyTable", *, what: str = "adjacency") -> pd.DataFrame:
    """Read neighbour pairs into the canonical frame (see the module docstring).

    Parameters
    ----------
    source : a CSV path or a frame in one of the accepted forms.
    what : the name used in error messages (e.g. the file name).

    Returns
    -------
    DataFrame
        ``country_a, region_a, country_b, region_b, order``, one row per pair as given
        (self-pairs dropped); ``order`` is a float column, NaN where not given.

    Raises
    ------
    DataValidationError
        No recognised pair columns, blank names, or orders that are not whole numbers >= 1
        (rows as a spreadsheet shows them: header = row 1).
    """
    if isinstance(source, AdjacencyTable):
        return source.frame
    if isinstance(source, (str, Path)):
        frame = pd.read_csv(source, dtype=str, keep_default_na=False)
        what = what if what != "adjacency" else f"adjacency {Path(source).name}"
    else:
        frame = source.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    cols = set(frame.columns)
    if {"country_a", "province_a", "country_b", "province_b"} <= cols:
        a, b, ca, cb = "province_a", "province_b", "country_a", "country_b"
    elif {"region_from", "region_to"} <= cols:
        a, b, ca, cb = "region_from", "region_to", None, None
    else:
        stems = [c[:-2] for c in frame.columns if c.endswith("_a") and f"{c[:-2]}_b" in cols
                 and c[:-2] != "country"]
        if len(stems) != 1:
            found = ", ".join(map(str, frame.columns)) or "none"
            raise DataValidationError([Problem("columns", f"no neighbour-pair columns found (columns: {found})",
                                               hint=_HINT)], source=what)
        a, b = f"{stems[0]}_a", f"{stems[0]}_b"
        ca, cb = ("country_a", "country_b") if {"country_a", "country_b"} <= cols else (None, None)
    out = pd.DataFrame({
        "country_a": _text(frame[ca]) if ca else "", "region_a": _text(frame[a]),
        "country_b": _text(frame[cb]) if cb else "", "region_b": _text(frame[b])})
    problems = []
    blank = (out["region_a"] == "") | (out["region_b"] == "")
    if blank.any():
        problems.append(Problem(f"{a}, {b}", "blank region name", rows=(np.flatnonzero(blank) + 2).tolist(),
                                hint="Every row names two regions."))
    if "order" in cols:
        raw = frame["order"].astype("string").str.strip()
        order = pd.to_numeric(raw.replace("", pd.NA), errors="coerce").astype(float)
        bad = order.notna() & ((order < 1) | (order != np.round(order)))
        bad |= order.isna() & raw.fillna("").ne("")
        if bad.any():
            problems.append(Problem("order", "not a whole number >= 1", rows=(np.flatnonzero(bad) + 2).tolist(),
                                    hint="order is 1 for neighbours, 2 for neighbours of neighbours, ..."))
        out["order"] = order.to_numpy()
    else:
        out["order"] = np.nan
    if problems:
        raise DataValidationError(problems, source=what)
    same = (out["region_a"] == out["region_b"]) & (out["country_a"] == out["country_b"])
    return out.loc[~same].reset_index(drop=True)


def series_regions(uids: Sequence[str], keys: pd.DataFrame | None) -> tuple[list[tuple[str, str]], list[str]]:
    """Each series' region ``(country, province)`` — or ``("", unique_id)`` without key
    columns — and its event type (``""`` without key columns)."""
    if keys is not None and {"country", "province"} <= set(keys.columns):
        k = keys.reindex(list(uids))
        regions = [(str(c) if pd.notna(c) else "", str(p)) for c, p in zip(k["country"], k["province"])]
        types = [str(t) if pd.notna(t) else "" for t in k.get("event_type", pd.Series([""] * len(k)))]
        return regions, types
    return [("", str(u)) for u in uids], [""] * len(uids)


def region_orders(adjacency: pd.DataFrame, regions: Sequence[tuple[str, str]], *,
                  known: Sequence[tuple[str, str]] = (), what: str = "adjacency") -> np.ndarray:
    """Neighbourhood orders between ``regions``: an (R, R) int matrix, 0 on the diagonal
    and for regions with no path between them.

    A pair matches a region by ``(country, name)`` when the pair names countries, by name
    alone otherwise. Names that are neither panel regions nor in ``known`` (e.g. the
    provinces of the gazetteer, for an adjacency of a whole country) are an error with a
    did-you-mean; pairs with a known region outside the panel are left out.
    """
    regions = list(regions)
    by_full = {r: i for i, r in enumerate(regions)}
    by_name: dict[str, list[int]] = {}
    for i, (_, name) in enumerate(regions):
        by_name.setdefault(name, []).append(i)
    known_set = set(known) | {n for _, n in known}

    def index(country: str, name: str) -> int | None:
        if country:
            return by_full.get((country, name))
        hits = by_name.get(name, [])
        return hits[0] if len(hits) == 1 else None

    problems, unknown, ambiguous = [], {}, set()
    R = len(regions)
    direct = np.zeros((R, R))  # given orders (np.inf where none)
    direct[:] = np.inf
    for row, (ca, ra, cb, rb, order) in enumerate(adjacency[list(ADJACENCY_COLUMNS)].itertuples(index=False),
                                                  start=2):
        ends = []
        for c, r in ((ca, ra), (cb, rb)):
            i = index(c, r)
            if i is None:
                if not c and len(by_name.get(r, [])) > 1:
                    ambiguous.add(r)
                elif (c, r) not in known_set and r not in known_set:
                    unknown.setdefault((c, r), []).append(row)
            ends.append(i)
        if None in ends:
            continue
        o = 1.0 if pd.isna(order) else float(order)
        i, j = ends
        direct[i, j] = direct[j, i] = min(direct[i, j], o)
    names = [n for _, n in regions]
    for (c, r), rows in unknown.items():
        close = difflib.get_close_matches(r, names, n=1)
        label = f"{r} ({c})" if c else r
        problems.append(Problem("region", f"unknown region '{label}'" + (f" (did you mean '{close[0]}'?)" if close
                                                                         else ""),
                                rows=rows[:20], hint="Use the panel's province (or unique_id) names."))
    for r in sorted(ambiguous):
        problems.append(Problem("region", f"'{r}' names a province in more than one country",
                                hint="Add country_a and country_b columns."))
    if problems:
        raise DataValidationError(problems, source=what)
    if adjacency["order"].notna().all() and len(adjacency):
        orders = direct  # orders given: use them as they are
    else:  # first-order pairs: orders are shortest paths (BFS by repeated expansion)
        from scipy.sparse.csgraph import shortest_path

        orders = shortest_path(np.isfinite(direct) & (direct == 1), directed=False, unweighted=True)
    orders = np.where(np.isfinite(orders), orders, 0).astype(np.int64)
    np.fill_diagonal(orders, 0)
    return orders


def gazetteer_units() -> list[tuple[str, str]]:
    """Every ``(country, province)`` of the bundled gazetteer: names an adjacency may hold
    although the panel has no series there (a whole country's table, a filtered panel)."""
    from forecast.gazetteer import Gazetteer

    gaz = Gazetteer.default()
    return [(c, p) for c in gaz.countries() for p in gaz.provinces(c)]


def series_orders(uids: Sequence[str], keys: pd.DataFrame | None, adjacency: pd.DataFrame, *,
                  cross_type: bool = False, maxlag: int | None = None, known: Sequence[Any] | None = None,
                  what: str = "adjacency") -> np.ndarray:
    """Neighbourhood orders between the series ``uids``: (n, n) ints, 0 = not linked.

    Series i and j are linked with the order of their regions when they share an event
    type (or ``cross_type``); the same region in another event type is not a neighbour.
    Orders above ``maxlag`` are dropped. ``known``: region names that are not an error
    when the panel has no series there (default: the gazetteer's provinces when the panel
    has key columns, none otherwise).
    """
    regions, types = series_regions(uids, keys)
    if known is None:
        known = gazetteer_units() if any(c for c, _ in regions) else ()
    where = {r: i for i, r in enumerate(dict.fromkeys(regions))}
    distinct = list(where)
    pos = np.array([where[r] for r in regions], dtype=np.int64)
    ro = region_orders(adjacency, distinct, known=known, what=what)
    orders = ro[np.ix_(pos, pos)] if len(pos) else np.zeros((0, 0), np.int64)
    if not cross_type:
        t = np.array(types, dtype=object)
        orders = np.where(t[:, None] == t[None, :], orders, 0)
    if maxlag is not None:
        orders = np.where(orders <= maxlag, orders, 0)
    return orders.astype(np.int64)
