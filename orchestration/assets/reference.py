"""Reference assets: boundaries, neighborhoods, health indicators, and point-in-polygon geography.

Real mode reads the files named by the settings (URL or path); demo mode builds the same
tables from the hand-written reference (demo boundaries are Voronoi cells of the demo
neighborhoods, dissolved into CSAs and police districts).
"""

import io
import json
from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pandas as pd
import shapely
from dagster_duckdb import DuckDBResource

from orchestration import settings, sql_rules
from orchestration.partitions import WRITER_POOL
from orchestration.raw_tables import BOUNDARIES, HEALTH, NEIGHBORHOODS, VITAL_SIGNS, RawTable
from orchestration.source_config import SourceConfig, resolve_source
from orchestration.sources.files import read_bytes
from orchestration.sources.geography import (
    DISTRICT_CODES,
    POLICE_DISTRICTS,
    PolygonLayer,
    canonical_csa_names,
)
from orchestration.sources.health import read_nhp, read_vital_signs
from orchestration.sql_rules import name_keys
from orchestration.warehouse import replace_table

BOUNDARY_SETTINGS = {
    "csa": ("CSA_BOUNDARIES", "CSA2010", None),
    "neighborhood": ("NEIGHBORHOOD_BOUNDARIES", "name", None, "name_alt"),
    "police_district": ("POLICE_DISTRICT_BOUNDARIES", "name", "name_abb"),
}


def real_layers() -> dict[str, PolygonLayer]:
    layers = {}
    for layer, (env, *fields) in BOUNDARY_SETTINGS.items():
        layers[layer] = PolygonLayer.from_geojson(read_bytes(settings.file_location(env)), *fields)
    return layers


def boundary_frame(layers: dict[str, PolygonLayer], csa_population: dict[str, int]) -> pd.DataFrame:
    rows = []
    for layer, polys in layers.items():
        alternates = polys.alternates or [None] * len(polys.names)
        for name, geom, code, alt in zip(polys.names, polys.geometries, polys.codes, alternates, strict=True):
            rows.append(
                {
                    "layer": layer,
                    "name": name,
                    "code": code,
                    "population": csa_population.get(name) if layer == "csa" else None,
                    "geometry_wkt": shapely.to_wkt(geom, rounding_precision=7),
                    "alt_name": alt,
                }
            )
    return pd.DataFrame(rows)


def _store(
    duckdb: DuckDBResource, table: RawTable, frame: pd.DataFrame, source: str, **metadata
) -> dg.MaterializeResult:
    """Replace a reference table with `frame` and report its rows and source."""
    with duckdb.get_connection() as conn:
        n = replace_table(conn, table, frame, source)
    return dg.MaterializeResult(metadata={"dagster/row_count": n, "source": source, **metadata})


def load_layers(conn) -> dict[str, PolygonLayer]:
    """The boundary layers as stored in raw.boundaries."""
    # in file order (`_source_row`): the first polygon in file order wins a shared edge
    frame = conn.execute(
        "select layer, name, code, geometry_wkt, alt_name from raw.boundaries order by _source_row"
    ).df()
    layers = {}
    for layer, rows in frame.groupby("layer", sort=False):
        layers[layer] = PolygonLayer(
            list(rows["name"]),
            shapely.from_wkt(rows["geometry_wkt"].to_numpy()),
            list(rows["code"]),
            [a if isinstance(a, str) else None for a in rows["alt_name"]],
        )
    return layers


@dg.asset(
    key=["raw", "boundaries"],
    group_name="ingest",
    pool=WRITER_POOL,
    kinds={"python", "duckdb"},
    description="CSA, neighborhood and police district polygons (WGS84, WKT), one row per polygon.",
)
def raw_boundaries(config: SourceConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    source = resolve_source("health", config)
    if source == "demo":
        from orchestration.demo.boundaries import demo_layers
        from orchestration.demo.reference import CSAS

        layers = demo_layers()
        population = {c.name: c.population_2010 for c in CSAS}
    else:
        layers = real_layers()
        features = json.loads(read_bytes(settings.file_location("CSA_BOUNDARIES")))["features"]
        population = {f["properties"]["CSA2010"]: f["properties"].get("tpop10") for f in features}
    frame = boundary_frame(layers, population)
    return _store(duckdb, BOUNDARIES, frame, source, **{f"{k}_polygons": len(v.names) for k, v in layers.items()})


def neighborhoods_from_layers(
    layers: dict[str, PolygonLayer],
    csa_xwalk: pd.DataFrame | None,
    zip_xwalk: pd.DataFrame | None,
    csa_population: dict[str, int],
) -> pd.DataFrame:
    """Neighborhood -> CSA (crosswalk by name, else the CSA containing it), district, ZIP, population."""
    hoods, csas, districts = layers["neighborhood"], layers["csa"], layers["police_district"]
    inside = shapely.point_on_surface(hoods.geometries)
    lat, lon = shapely.get_y(inside), shapely.get_x(inside)
    csa_idx, _ = csas.assign(lat, lon)
    by_pip = np.array([csas.names[i] if i >= 0 else None for i in csa_idx], dtype=object)
    by_name = {}
    if csa_xwalk is not None:
        canonical = canonical_csa_names(csa_xwalk["csa"], csas.names, "neighborhood-CSA crosswalk")
        by_name = dict(zip(name_keys(list(csa_xwalk["neighborhood"])), canonical, strict=True))
    csa = np.array([by_name.get(k, p) for k, p in zip(name_keys(list(hoods.names)), by_pip, strict=True)], dtype=object)
    d_idx, _ = districts.assign(lat, lon)
    codes = [DISTRICT_CODES.get(str(districts.codes[i]).upper(), districts.codes[i]) if i >= 0 else None for i in d_idx]
    zips: dict[str, str] = {}
    if zip_xwalk is not None:
        for z, c in zip(
            zip_xwalk["zip"].astype(str), canonical_csa_names(zip_xwalk["csa"], csas.names, "ZIP-CSA"), strict=True
        ):
            zips.setdefault(c, z)  # the first ZIP listed for a CSA
    area = shapely.area(hoods.geometries)
    frame = pd.DataFrame(
        {
            "neighborhood": hoods.names,
            "csa": csa,
            "latitude": lat,
            "longitude": lon,
            "area": area,
            "police_district_code": codes,
            "police_district": [POLICE_DISTRICTS.get(c) for c in codes],
            "name_alt": hoods.alternates or [None] * len(hoods.names),
        }
    )
    share = frame["area"] / frame.groupby("csa")["area"].transform("sum")
    frame["population"] = (frame["csa"].map(csa_population).astype(float) * share).round().astype("Int64")
    frame["zip_code"] = frame["csa"].map(zips)
    return frame


@dg.asset(
    key=["raw", "neighborhoods"],
    group_name="ingest",
    pool=WRITER_POOL,
    kinds={"python", "duckdb"},
    deps=[raw_boundaries],
    description="Neighborhood reference: neighborhood -> CSA -> ZIP and police district, with a point and population.",
)
def raw_neighborhoods(config: SourceConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    source = resolve_source("health", config)
    if source == "demo":
        from orchestration.demo.reference import neighborhood_frame

        frame = neighborhood_frame()
    else:
        csa_xwalk = pd.read_csv(io.BytesIO(read_bytes(settings.file_location("NEIGHBORHOOD_CSA_CROSSWALK"))))
        zip_xwalk = pd.read_csv(io.BytesIO(read_bytes(settings.file_location("ZIP_CSA_CROSSWALK"))))
        with duckdb.get_connection() as conn:
            layers = load_layers(conn)
        frame = neighborhoods_from_layers(layers, csa_xwalk, zip_xwalk, _csa_population(duckdb))
    return _store(duckdb, NEIGHBORHOODS, frame, source, csas=int(frame["csa"].nunique()))


def _csa_population(duckdb: DuckDBResource) -> dict[str, int]:
    """The loaded CSA boundaries' canonical names and 2010 population."""
    with duckdb.get_connection() as conn:
        return dict(conn.execute("select name, population from raw.boundaries where layer = 'csa'").fetchall())


@dg.asset(
    key=["raw", "csa_health_indicators"],
    group_name="ingest",
    pool=WRITER_POOL,
    kinds={"python", "duckdb"},
    deps=[raw_boundaries],
    description="Health and socioeconomic indicators by CSA (BCHD Neighborhood Health Profile layout).",
)
def raw_csa_health_indicators(config: SourceConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    source = resolve_source("health", config)
    if source == "demo":
        from orchestration.demo.health import generate_health_indicators

        frame = generate_health_indicators(settings.demo_seed())
        frame["CSA_as_published"] = frame["CSA"]
    else:
        frame = read_nhp(settings.file_location("NHP_INDICATORS"), list(_csa_population(duckdb)))
    return _store(duckdb, HEALTH, frame, source)


@dg.asset(
    key=["raw", "vital_signs"],
    group_name="ingest",
    pool=WRITER_POOL,
    kinds={"python", "duckdb"},
    deps=[raw_boundaries],
    description="BNIA Vital Signs indicators by CSA, one row per CSA and indicator (demo: the indicators used).",
)
def raw_vital_signs(config: SourceConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    source = resolve_source("health", config)
    if source == "demo":
        from orchestration.demo.health import generate_vital_signs

        frame = generate_vital_signs(settings.demo_seed())
    else:
        frame = read_vital_signs(settings.file_location("VITAL_SIGNS_INDICATORS"), list(_csa_population(duckdb)))
    return _store(duckdb, VITAL_SIGNS, frame, source)


_EMS_LAT = sql_rules.coordinate('"Incident Location Latitude"')
_EMS_LON = sql_rules.coordinate('"Incident Location Longitude"')
# calls whose feed neighborhood is missing, blank or matches no neighborhood's name or alternate
# name (the dbt model int_calls_for_service__validated resolves the others by name), loaded
# after $1. The names are judged once per distinct spelling, not per call: trimming ten years of
# calls' names twice cost a full build about 3 s.
POINTS_SQL = f"""
with known as (
    select {sql_rules.render("name_key", "neighborhood")} as key from raw.neighborhoods
    union select {sql_rules.render("name_key", "name_alt")} from raw.neighborhoods where name_alt is not null
),
-- the name is an aggregate's output (any_value over its group), not the group key: DuckDB
-- would push the tests on a group key below the grouping, onto every call
names as (
    select any_value(Neighborhood) as name from raw.calls_for_service
    where Neighborhood is not null and _loaded_at > $1
    group by Neighborhood
),
needs_point as (
    select name from names where nullif(trim(name), '') is null
    union all
    select name from names
    where nullif(trim(name), '') is not null and {sql_rules.render("name_key", "name")} not in (select key from known)
)
select distinct latitude, longitude from raw.calls_for_service
where (Neighborhood is null or Neighborhood in (select name from needs_point))
  and latitude is not null and longitude is not null and _loaded_at > $1
union
select distinct {_EMS_LAT}, {_EMS_LON}
from raw.naloxone_administrations
where {_EMS_LAT} is not null and {_EMS_LON} is not null and _loaded_at > $1
"""

# What every assignment depends on besides its point: the neighborhood polygons and the names a
# feed name is matched on (they decide which points need one)
ASSIGNMENT_INPUTS_SQL = """
select md5(coalesce((select string_agg(name || ':' || md5(geometry_wkt), '|' order by name)
                     from raw.boundaries where layer = 'neighborhood'), '')
           || coalesce((select string_agg(neighborhood || ':' || coalesce(name_alt, ''), '|' order by neighborhood)
                        from raw.neighborhoods), ''))
"""
STATE_TABLE = "geography.point_assignments_state"
NO_LOAD_YET = datetime(1900, 1, 1, tzinfo=UTC)


@dg.asset(
    key=["geography", "point_assignments"],
    group_name="geography",
    pool=WRITER_POOL,
    kinds={"python", "duckdb"},
    deps=[
        dg.AssetKey(["raw", "calls_for_service"]),
        dg.AssetKey(["raw", "naloxone_administrations"]),
        raw_boundaries,
        raw_neighborhoods,
    ],
    description=(
        "Neighborhood of every distinct point that needs one (EMS incidents; calls without a neighborhood "
        "name, or whose name matches none) by point-in-polygon; method 'within', 'snapped' (<=150 m) or 'none'. "
        "Points of rows loaded since the last run are added; a change of polygons or names reassigns every point."
    ),
)
def point_assignments(duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as conn:
        conn.execute("create schema if not exists geography")
        conn.execute(f"create table if not exists {STATE_TABLE} (inputs varchar, high_water timestamptz)")
        inputs = conn.execute(ASSIGNMENT_INPUTS_SQL).fetchone()[0]
        state = conn.execute(f"select inputs, high_water from {STATE_TABLE}").fetchone()
        exists = conn.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'geography' and table_name = 'point_assignments'"
        ).fetchone()[0]
        incremental = bool(exists) and state is not None and state[0] == inputs
        since = state[1] if incremental else NO_LOAD_YET
        high_water = conn.execute(
            "select greatest((select max(_loaded_at) from raw.calls_for_service), "
            "(select max(_loaded_at) from raw.naloxone_administrations))"
        ).fetchone()[0]
        query = POINTS_SQL
        if incremental:
            query = f"select * from ({POINTS_SQL}) except select latitude, longitude from geography.point_assignments"
        points = conn.execute(query, [since]).df()
        layers = load_layers(conn)
        hoods = layers["neighborhood"]
        index, method = hoods.assign(points["latitude"].to_numpy(float), points["longitude"].to_numpy(float))
        points["neighborhood"] = [hoods.names[i] if i >= 0 else None for i in index]
        points["method"] = method
        conn.register("assigned", points)
        rows = "select latitude, longitude, neighborhood, method from assigned"
        if incremental:
            conn.execute(f"insert into geography.point_assignments {rows}")
        else:
            conn.execute(f"create or replace table geography.point_assignments as {rows}")
        conn.unregister("assigned")
        conn.execute(f"delete from {STATE_TABLE}")
        conn.execute(f"insert into {STATE_TABLE} values (?, ?)", [inputs, high_water or NO_LOAD_YET])
        total = conn.execute("select count(*) from geography.point_assignments").fetchone()[0]
    counts = points["method"].value_counts().to_dict()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "points_assigned_now": len(points),
            "reassigned_every_point": not incremental,
            **{f"points_{k}": int(v) for k, v in counts.items()},
        }
    )


reference_assets = [raw_boundaries, raw_neighborhoods, raw_csa_health_indicators, raw_vital_signs, point_assignments]
