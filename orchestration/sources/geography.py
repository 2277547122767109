"""Boundaries, CSA names and point-in-polygon assignment.

Rules (documented in the README):
- A point belongs to the polygon that contains it; a point on a shared edge goes to the
  polygon listed first in the boundary file.
- A point in no polygon (geocoded onto water, a street centre line just outside the city
  line) is snapped to the nearest polygon when that is within `SNAP_METERS`; farther away it
  stays unassigned (Unknown geography; EMS rows are quarantined as outside the city).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape

from orchestration.sql_rules import name_keys

SNAP_METERS = 150.0
# Degrees -> metres near Baltimore (39.3 N) for the snap distance test.
M_PER_DEG_LAT = 111_000.0
M_PER_DEG_LON = 111_000.0 * np.cos(np.radians(39.3))
# legacy 911 `district` code -> `PoliceDistrict` name
POLICE_DISTRICTS: dict[str, str] = {
    "CD": "Central",
    "ED": "Eastern",
    "ND": "Northern",
    "NE": "Northeastern",
    "NW": "Northwestern",
    "SD": "Southern",
    "SE": "Southeastern",
    "SW": "Southwestern",
    "WD": "Western",
}
# 2023 police district abbreviations -> the legacy codes the 911 feed uses
DISTRICT_CODES = {
    "CD": "CD",
    "ED": "ED",
    "ND": "ND",
    "NED": "NE",
    "NWD": "NW",
    "SD": "SD",
    "SED": "SE",
    "SWD": "SW",
    "WD": "WD",
}


class GeographyError(ValueError):
    """Boundary or name data that cannot be used; the message says which."""


def name_key(name: str) -> str:
    """Spelling-insensitive key of a place name (the dbt macro `name_key`, so SQL and Python agree)."""
    return name_keys([name])[0]


def canonical_csa_names(names: pd.Series, canonical: list[str], source: str) -> pd.Series:
    """Map CSA names to the canonical spelling; the 'Baltimore City' total keeps its name.

    Raises GeographyError naming every name that matches no canonical CSA.
    """
    lookup = dict(zip(name_keys([*canonical, "Baltimore City"]), [*canonical, "Baltimore City"], strict=True))
    keys = name_keys([n if isinstance(n, str) else "" for n in names])
    mapped = pd.Series(
        [lookup.get(k) if isinstance(n, str) else None for n, k in zip(names, keys, strict=True)],
        index=names.index,
        dtype=object,
    )
    unknown = sorted(set(names[mapped.isna()].astype(str)))
    if unknown:
        raise GeographyError(f"{source}: CSA name(s) matching no known CSA: {unknown}")
    return mapped


@dataclass
class PolygonLayer:
    """Polygons with their names (and optional codes and alternate names), in file order."""

    names: list[str]
    geometries: np.ndarray
    codes: list[str | None]
    alternates: list[str | None] | None = None

    @classmethod
    def from_geojson(
        cls, text: str | bytes, name_field: str, code_field: str | None = None, alt_field: str | None = None
    ) -> PolygonLayer:
        data = json.loads(text)
        features = data.get("features") or []
        if not features:
            raise GeographyError("GeoJSON has no features")
        names, geoms, codes, alternates = [], [], [], []
        for i, feature in enumerate(features):
            props = feature.get("properties") or {}
            if props.get(name_field) in (None, ""):
                raise GeographyError(f"feature {i} has no '{name_field}' property")
            names.append(str(props[name_field]))
            codes.append(props.get(code_field) if code_field else None)
            alternates.append((props.get(alt_field) or None) if alt_field else None)
            geoms.append(shapely.make_valid(shape(feature["geometry"])))
        return cls(names, np.array(geoms, dtype=object), codes, alternates)

    def assign(self, latitude: np.ndarray, longitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of the polygon of each point (-1 for none) and how: 'within', 'snapped' or 'none'."""
        n = len(latitude)
        index = np.full(n, -1, dtype=np.int64)
        method = np.full(n, "none", dtype=object)
        valid = np.isfinite(latitude) & np.isfinite(longitude)
        points = shapely.points(np.where(valid, longitude, 0.0), np.where(valid, latitude, 0.0))
        tree = shapely.STRtree(self.geometries)
        pairs = tree.query(points[valid], predicate="intersects")
        if pairs.size:
            point_idx = np.flatnonzero(valid)[pairs[0]]
            order = np.lexsort((pairs[1], point_idx))  # first polygon in file order wins
            point_idx, poly_idx = point_idx[order], pairs[1][order]
            first = np.r_[True, point_idx[1:] != point_idx[:-1]]
            index[point_idx[first]] = poly_idx[first]
            method[point_idx[first]] = "within"
        todo = np.flatnonzero(valid & (index < 0))
        if todo.size:
            # nearest polygon in a metric-ish frame: scale longitude so a degree is ~ a degree of latitude
            scale = M_PER_DEG_LON / M_PER_DEG_LAT
            scaled = shapely.transform(self.geometries, lambda xy: xy * [scale, 1.0])
            pts = shapely.points(longitude[todo] * scale, latitude[todo])
            near_pt, near_poly = shapely.STRtree(scaled).query_nearest(pts, all_matches=False, return_distance=False)
            dist_m = shapely.distance(pts[near_pt], scaled[near_poly]) * M_PER_DEG_LAT
            ok = dist_m <= SNAP_METERS
            index[todo[near_pt[ok]]] = near_poly[ok]
            method[todo[near_pt[ok]]] = "snapped"
        return index, method


def voronoi_layer(names: list[str], latitude: np.ndarray, longitude: np.ndarray, bounds: tuple) -> PolygonLayer:
    """Demo polygons: the Voronoi cells of named points, clipped to a bounding box, in input order."""
    box = shapely.box(*bounds)
    points = shapely.points(longitude, latitude)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points), extend_to=box))
    tree = shapely.STRtree(cells)
    which = tree.query(points, predicate="within")
    by_point = dict(zip(which[0], which[1], strict=True))
    geoms = np.array([shapely.intersection(cells[by_point[i]], box) for i in range(len(names))], dtype=object)
    return PolygonLayer(list(names), geoms, [None] * len(names))


def dissolve(layer: PolygonLayer, groups: list[str]) -> PolygonLayer:
    """Union the polygons of each group (CSAs from neighborhoods, districts from CSAs)."""
    frame = pd.DataFrame({"group": groups, "i": range(len(groups))})
    names, geoms = [], []
    for group, rows in frame.groupby("group", sort=False):
        names.append(group)
        geoms.append(shapely.union_all(layer.geometries[rows["i"].to_numpy()]))
    return PolygonLayer(names, np.array(geoms, dtype=object), [None] * len(names))
