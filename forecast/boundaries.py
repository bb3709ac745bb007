"""Province boundaries from a GeoJSON file: their shapes (for the risk map) and which
provinces are neighbours (polygons that share a stretch of border).

A boundaries file is a GeoJSON ``FeatureCollection`` of ``Polygon``/``MultiPolygon``
features, e.g. the admin-1 ("ADM1") files of geoBoundaries. One feature property holds
the province name (``name_property``, default ``"shapeName"`` as in geoBoundaries);
optionally another holds the country (``country_property``: a name or an ISO code, read
through the gazetteer's country aliases). Province names go through the gazetteer, so a
local spelling (``"Khatlon oblast"``) becomes the canonical name (``"Khatlon"``); names
the gazetteer does not know are kept as written. Without ``country_property`` the
country is left empty and provinces are matched to the panel's series by name alone.

Two provinces are neighbours when their polygons share a border of positive length;
touching at a single corner point is not enough (rook, not queen, contiguity). Files
drawn without a common topology often have slivers where neighbours overlap slightly:
an overlap along the border counts as shared border too. Candidate pairs come from a
spatial index (shapely's STRtree), so a few hundred provinces take well under a second.

Reading the geometry needs the optional package shapely (``pip install
'incident-forecast[geo]'``); the file itself is read with :mod:`json`.

In a run configuration: ``[data] boundaries = "provinces.geojson"`` (with
``boundaries_name`` and ``boundaries_country``) draws the risk map and, unless
``[data] adjacency`` is also set, gives the neighbours. With both, the adjacency table
gives the neighbours and the boundaries only the map: a table is the way to add or
remove a neighbour relation that the shapes get wrong.
"""
from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError, DataValidationError, Problem

__all__ = ["GEO_INSTALL", "adjacency_from_geojson", "read_boundaries", "shared_borders"]

#: What to do when shapely is missing.
GEO_INSTALL = "install incident-forecast[geo] (pip install 'incident-forecast[geo]'), which adds shapely"
_SHAPES = ("Polygon", "MultiPolygon")
# Shared border shorter than this fraction of the map's extent counts as a corner contact:
# floating-point noise of an exactly shared vertex, not a border.
_REL_TOL = 1e-9


def _shapely():
    try:
        import shapely
        import shapely.geometry
    except ImportError as exc:
        raise ConfigError(f"reading province boundaries needs the optional package shapely: {GEO_INSTALL}.") from exc
    return shapely


def _gazetteer(gazetteer: Any):
    from forecast.gazetteer import Gazetteer

    if gazetteer is None:
        return Gazetteer.default()
    if isinstance(gazetteer, Gazetteer):
        return gazetteer
    return Gazetteer.default().extend(gazetteer)


def _features(source: str | PathLike[str] | dict, what: str) -> list[dict]:
    if isinstance(source, dict):
        doc = source
    else:
        try:
            doc = json.loads(Path(source).read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{what}: cannot read the GeoJSON file ({exc}).") from exc
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(feats, list) or not feats:
        raise DataValidationError([Problem("<file>", "not a GeoJSON FeatureCollection with features",
                                           hint="Give a GeoJSON file whose top level is "
                                                "{\"type\": \"FeatureCollection\", \"features\": [...]}.")],
                                  source=what)
    return feats


def _numbers(idx: list[int]) -> str:
    shown = ", ".join(str(i + 1) for i in idx[:10])
    return shown + (f" and {len(idx) - 10} more" if len(idx) > 10 else "")


def read_boundaries(source: str | PathLike[str] | dict, *, name_property: str = "shapeName",
                    country_property: str | None = None, gazetteer: Any = None) -> pd.DataFrame:
    """The province shapes of a GeoJSON file, names through the gazetteer.

    Parameters
    ----------
    source : a GeoJSON file path, or the parsed document (a dict).
    name_property : the feature property holding the province name.
    country_property : the feature property holding the country (name or ISO code), or
        None: country left empty (provinces matched by name alone).
    gazetteer : a :class:`~forecast.gazetteer.Gazetteer`, a CSV of extra aliases (added to
        the bundled one), or None for the bundled gazetteer.

    Returns
    -------
    DataFrame
        ``country, province, geometry`` (shapely geometries, made valid), one row per
        province in file order; features naming the same province are merged.

    Raises
    ------
    ConfigError
        shapely is not installed (the message says how to install it), or the file cannot be read.
    DataValidationError
        Not a FeatureCollection; a property missing (the message lists the properties the
        features have) or blank; a geometry that is not a (Multi)Polygon. Features are
        numbered from 1 in file order.
    """
    shapely = _shapely()
    what = f"boundaries {Path(source).name}" if not isinstance(source, dict) else "boundaries"
    feats = _features(source, what)
    props = [f.get("properties") or {} if isinstance(f, dict) else {} for f in feats]
    problems = []
    for prop in [name_property] + ([country_property] if country_property else []):
        missing = [i for i, p in enumerate(props) if prop not in p]
        if missing:
            seen = sorted({k for p in props for k in p})
            problems.append(Problem(prop, f"property missing in feature{'s' if len(missing) > 1 else ''} "
                                          f"{_numbers(missing)}",
                                    hint=f"The features have the properties: {', '.join(seen) or 'none'}. Set "
                                         f"[data] boundaries_name (and boundaries_country) to the ones holding "
                                         f"the province (and country) names."))
    if problems:
        raise DataValidationError(problems, source=what)
    names = pd.Series([str(p[name_property]).strip() if p[name_property] is not None else "" for p in props],
                      dtype=object)
    blank = np.flatnonzero(names.eq("").to_numpy()).tolist()
    if blank:
        problems.append(Problem(name_property, f"blank province name in features {_numbers(blank)}",
                                hint="Every feature needs a province name."))
    geoms, bad = [], []
    for i, f in enumerate(feats):
        g = f.get("geometry") if isinstance(f, dict) else None
        if not isinstance(g, dict) or g.get("type") not in _SHAPES:
            bad.append(i)
            geoms.append(None)
            continue
        try:
            geoms.append(shapely.geometry.shape(g))
        except (ValueError, TypeError, AttributeError, IndexError):
            bad.append(i)
            geoms.append(None)
    if bad:
        problems.append(Problem("geometry", f"not a Polygon or MultiPolygon in features {_numbers(bad)}",
                                hint="Give the provinces as polygons (admin-1 boundaries)."))
    if problems:
        raise DataValidationError(problems, source=what)
    gaz = _gazetteer(gazetteer)
    if country_property:
        raw_c = pd.Series([str(p[country_property] or "").strip() for p in props], dtype=object)
        norm = gaz.normalise(names, raw_c.replace("", None))
        countries = norm.country.fillna("").astype(str).tolist()
    else:
        norm = gaz.normalise(names)
        countries = [""] * len(names)  # matched by name: the panel's countries may be spelt otherwise
    frame = pd.DataFrame({"country": countries, "province": norm.province.astype(str).tolist(),
                          "geometry": shapely.make_valid(np.array(geoms, dtype=object))})
    merged = frame.groupby(["country", "province"], sort=False)["geometry"].agg(
        lambda g: g.iloc[0] if len(g) == 1 else shapely.union_all(g.to_numpy()))
    return merged.reset_index()


def shared_borders(shapes: pd.DataFrame) -> pd.DataFrame:
    """First-order neighbours of ``shapes`` (``country, province, geometry``, as
    :func:`read_boundaries` returns): pairs of polygons sharing a border of positive length.

    Returns
    -------
    DataFrame
        The canonical adjacency frame of :mod:`forecast.adjacency`
        (``country_a, region_a, country_b, region_b, order``), each pair once; ``order`` is
        NaN, which there means "first-order pair, higher orders from shortest paths" (an
        order of 1 given explicitly would stop the panel from deriving orders 2, 3, ...).
    """
    shapely = _shapely()
    geoms = np.asarray(shapes["geometry"].to_numpy(), dtype=object)
    cols = {"country_a": [], "region_a": [], "country_b": [], "region_b": [], "order": []}
    if len(geoms) < 2:
        return pd.DataFrame(cols).astype({"order": float})
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    # boundary(a) ∩ b: the shared edge when they touch, the overlapping stretch when they
    # overlap slightly; a point (length 0) when they meet at a corner. Both directions,
    # since an overlap may lie inside one boundary only.
    shared = np.maximum(shapely.length(shapely.intersection(shapely.boundary(geoms[i]), geoms[j])),
                        shapely.length(shapely.intersection(shapely.boundary(geoms[j]), geoms[i])))
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    linked = shared > _REL_TOL * max(float(np.hypot(x1 - x0, y1 - y0)), 1e-300)
    i, j = i[linked], j[linked]
    c, p = shapes["country"].astype(str).to_numpy(), shapes["province"].astype(str).to_numpy()
    return pd.DataFrame({"country_a": c[i], "region_a": p[i], "country_b": c[j], "region_b": p[j],
                         "order": np.full(len(i), np.nan)}).sort_values(
        ["country_a", "region_a", "country_b", "region_b"]).reset_index(drop=True)


def adjacency_from_geojson(source: str | PathLike[str] | dict, *, name_property: str = "shapeName",
                           country_property: str | None = None, gazetteer: Any = None) -> pd.DataFrame:
    """Neighbour pairs from a GeoJSON of province boundaries (see the module docstring).

    Parameters are those of :func:`read_boundaries`.

    Returns
    -------
    DataFrame
        The canonical adjacency frame (first-order pairs, ``order`` NaN), as
        ``build_panel(adjacency=...)`` takes.

    Examples
    --------
    >>> adj = adjacency_from_geojson("provinces.geojson", name_property="shapeName")  # doctest: +SKIP
    >>> panel = build_panel(events, adjacency=adj)  # doctest: +SKIP
    """
    return shared_borders(read_boundaries(source, name_property=name_property, country_property=country_property,
                                          gazetteer=gazetteer))
