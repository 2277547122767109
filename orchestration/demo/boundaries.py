"""Demo boundaries: the Voronoi cells of the demo neighborhoods, dissolved into CSAs and districts."""

from __future__ import annotations

from orchestration import settings
from orchestration.demo.reference import neighborhood_frame
from orchestration.sources.geography import POLICE_DISTRICTS, PolygonLayer, dissolve, voronoi_layer


def demo_layers() -> dict[str, PolygonLayer]:
    """CSA, neighborhood and police district polygons, clipped to the city's extent.

    Neighborhood polygons carry the boundary file's names and alternate names, as the real
    2020 boundary file does.
    """
    hoods = neighborhood_frame()
    layer = voronoi_layer(
        list(hoods["neighborhood"]), hoods["latitude"].to_numpy(), hoods["longitude"].to_numpy(), settings.city_extent()
    )
    layer.alternates = [a if isinstance(a, str) else None for a in hoods["name_alt"]]
    csas = dissolve(layer, list(hoods["csa"]))
    districts = dissolve(layer, list(hoods["police_district"]))
    codes = {v: k for k, v in POLICE_DISTRICTS.items()}
    districts.codes = [codes[n] for n in districts.names]
    return {"csa": csas, "neighborhood": layer, "police_district": districts}
