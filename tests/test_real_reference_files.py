"""The real public files in ../shared/data: health indicators, boundaries and crosswalks.

Skipped cleanly when ../shared is absent. Expected facts come from the files' publishers
(55 CSAs, 278 crosswalked neighborhoods) and from where landmarks are.
"""

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration.resources import WarehouseDuckDB
from orchestration.sources.geography import GeographyError, PolygonLayer, canonical_csa_names, name_key
from orchestration.sources.health import read_nhp, read_vital_signs
from tests.conftest import shared_file

GEO = ("data", "geography")
HEALTH = ("data", "health")


@pytest.fixture(scope="module")
def csa_layer() -> PolygonLayer:
    return PolygonLayer.from_geojson(
        shared_file(*GEO, "baltimore_csa2010_boundaries_vs16_wgs84.geojson").read_text(), "CSA2010"
    )


@pytest.fixture
def real_env(monkeypatch):
    files = {
        "CSA_BOUNDARIES": GEO + ("baltimore_csa2010_boundaries_vs16_wgs84.geojson",),
        "NEIGHBORHOOD_BOUNDARIES": GEO + ("mapbaltimore_neighborhoods_2020_wgs84.geojson",),
        "POLICE_DISTRICT_BOUNDARIES": GEO + ("mapbaltimore_police_districts_2023_wgs84.geojson",),
        "NEIGHBORHOOD_CSA_CROSSWALK": GEO + ("mapbaltimore_xwalk_csa2nsa.csv",),
        "ZIP_CSA_CROSSWALK": GEO + ("mapbaltimore_xwalk_zip2csa.csv",),
        "NHP_INDICATORS": HEALTH + ("bchd_neighborhood_health_profile_2017_by_csa.xlsx",),
        "VITAL_SIGNS_INDICATORS": HEALTH + ("bnia_vital_signs_2017_by_csa.csv",),
    }
    for name, parts in files.items():
        monkeypatch.setenv(name, str(shared_file(*parts)))
    monkeypatch.setenv("HEALTH_SOURCE", "real")


def test_the_boundaries_hold_55_csas(csa_layer):
    assert len(csa_layer.names) == 55 == len(set(csa_layer.names))


def test_every_csa_name_joins_across_nhp_vital_signs_and_boundaries(csa_layer):
    nhp_xlsx = read_nhp(str(shared_file(*HEALTH, "bchd_neighborhood_health_profile_2017_by_csa.xlsx")), csa_layer.names)
    nhp_csv = read_nhp(str(shared_file(*HEALTH, "bchd_neighborhood_health_profile_2017_by_csa.csv")), csa_layer.names)
    vital = read_vital_signs(str(shared_file(*HEALTH, "bnia_vital_signs_2017_by_csa.csv")), csa_layer.names)
    expected = set(csa_layer.names) | {"Baltimore City"}
    assert set(nhp_xlsx["CSA"]) == set(nhp_csv["CSA"]) == set(vital["CSA"]) == expected
    city = nhp_xlsx.loc[nhp_xlsx["CSA"] == "Baltimore City", "Population"].iloc[0]
    assert city == 622454  # the NHP's city total row
    assert nhp_xlsx.loc[nhp_xlsx["CSA"] != "Baltimore City", "Population"].sum() == pytest.approx(city, rel=0.01)


def test_csa_name_variants_map_to_one_spelling(csa_layer):
    variants = pd.Series(
        [
            "Allendale/Irvington/South Hilton",
            "patterson park north and east",
            "Mt. Washington/Coldspring",
            "Baltimore City",
        ]
    )
    assert canonical_csa_names(variants, csa_layer.names, "test").tolist() == [
        "Allendale/Irvington/S. Hilton",
        "Patterson Park North & East",
        "Mount Washington/Coldspring",
        "Baltimore City",
    ]
    with pytest.raises(GeographyError, match="Atlantis"):
        canonical_csa_names(pd.Series(["Atlantis"]), csa_layer.names, "test")


@pytest.mark.parametrize(
    ("place", "lat", "lon", "csa"),
    [("City Hall", 39.2910, -76.6107, "Downtown/Seton Hill"), ("Fort McHenry", 39.2633, -76.5797, "South Baltimore")],
)
def test_known_points_land_in_their_csa(csa_layer, place, lat, lon, csa):
    index, method = csa_layer.assign(np.array([lat]), np.array([lon]))
    assert (csa_layer.names[index[0]], method[0]) == (csa, "within"), place


def test_points_outside_the_city_snap_only_when_close(csa_layer):
    import shapely

    city = shapely.union_all(csa_layer.geometries)
    x, y = min(shapely.get_coordinates(city), key=lambda xy: xy[1])  # the city's southernmost vertex
    # 0.0004 deg (about 45 m) south of it: outside every CSA, within the 150 m snap distance;
    # Annapolis, 35 km away, stays unassigned
    index, method = csa_layer.assign(np.array([y - 0.0004, 38.9784]), np.array([x, -76.4922]))
    assert not city.contains(shapely.Point(x, y - 0.0004))
    assert method.tolist() == ["snapped", "none"] and index[1] == -1


def test_real_reference_assets_load_the_shared_files(real_env, tmp_path):
    from orchestration.assets.reference import (
        raw_boundaries,
        raw_csa_health_indicators,
        raw_neighborhoods,
        raw_vital_signs,
    )

    db = tmp_path / "ref.duckdb"
    result = dg.materialize(
        [raw_boundaries, raw_neighborhoods, raw_csa_health_indicators, raw_vital_signs],
        resources={"duckdb": WarehouseDuckDB(database=str(db))},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    xwalk = pd.read_csv(shared_file(*GEO, "mapbaltimore_xwalk_csa2nsa.csv"))
    with duckdb.connect(str(db), read_only=True) as conn:
        layers = dict(conn.execute("select layer, count(*) from raw.boundaries group by 1").fetchall())
        hoods = conn.execute("select neighborhood, csa, police_district_code, population from raw.neighborhoods").df()
        health_csas = {c for (c,) in conn.execute("select CSA from raw.csa_health_indicators").fetchall()}
    assert layers == {"csa": 55, "neighborhood": 279, "police_district": 9}
    assert hoods["csa"].notna().all() and hoods["csa"].nunique() == 55
    assert hoods["police_district_code"].isin(["CD", "ED", "ND", "NE", "NW", "SD", "SE", "SW", "WD"]).all()
    # every crosswalked neighborhood whose polygon exists carries the crosswalk's CSA
    assert len(xwalk) == 278
    by_key = {name_key(n): c for n, c in zip(hoods["neighborhood"], hoods["csa"], strict=True)}
    matched = [
        (by_key[name_key(n)], c)
        for n, c in zip(xwalk["neighborhood"], xwalk["csa"], strict=True)
        if name_key(n) in by_key
    ]
    assert len(matched) >= 265 and all(a == b for a, b in matched)
    assert set(hoods["csa"]) | {"Baltimore City"} == health_csas


def test_the_vital_signs_indicators_the_marts_use_exist_in_bnias_file(real_env, tmp_path):
    """The indicator names in dbt var `vital_signs_indicators` are BNIA's own column headers, and
    the loaded long table holds their values for every CSA as the file gives them."""
    from orchestration import settings
    from orchestration.assets.reference import raw_boundaries, raw_vital_signs

    path = shared_file("data", "health", "bnia_vital_signs_2017_by_csa.csv")
    wide = pd.read_csv(path, encoding="utf-8-sig")
    wanted = settings.dbt_vars()["vital_signs_indicators"]
    assert set(wanted.values()) <= set(wide.columns)
    db = tmp_path / "vs.duckdb"
    result = dg.materialize(
        [raw_boundaries, raw_vital_signs],
        resources={"duckdb": WarehouseDuckDB(database=str(db))},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    row = wide[wide["CSA2010"] == "Canton"].iloc[0]
    with duckdb.connect(str(db), read_only=True) as conn:
        loaded = dict(
            conn.execute(
                "select indicator, value from raw.vital_signs where CSA = 'Canton' and list_contains(?, indicator)",
                [list(wanted.values())],
            ).fetchall()
        )
    assert loaded == pytest.approx({name: float(row[name]) for name in wanted.values()})


def test_real_feed_neighborhood_spellings_match_a_boundary_by_name_or_alternate():
    """Spellings the 911 feed uses (issue 11) resolve to the neighborhood GeoJSON's names through the
    dbt macro name_key and the file's `name_alt`; unrelated names do not."""
    import json

    from orchestration.sql_rules import name_keys

    features = json.loads(shared_file(*GEO, "mapbaltimore_neighborhoods_2020_wgs84.geojson").read_text())["features"]
    names = [f["properties"]["name"] for f in features]
    alternates = [f["properties"].get("name_alt") or "" for f in features]
    lookup = dict(zip(name_keys(names), names, strict=True))
    lookup.update({k: n for k, n, a in zip(name_keys(alternates), names, alternates, strict=True) if a})
    feed = {
        "Coppin Heights/Ash-Co-East": "Coppin Heights/Ash-Co-East",
        "Butcher's Hill": "Butchers Hill",
        "Carroll - Camden Industrial Area": "Carroll-Camden Industrial Area",
        "Saint Josephs": "Saint Josephs",
        "St. Josephs": "Saint Josephs",
        "University Of Maryland": "University of Maryland",
        "PORT COVINGTON": "Baltimore Peninsula",  # the file's alternate (older) name
        "mt. vernon": "Mount Vernon",
        "Sandtown Winchester": "Sandtown-Winchester",
    }
    got = dict(zip(feed, (lookup.get(k) for k in name_keys(list(feed))), strict=True))
    assert got == feed
    assert [lookup.get(k) for k in name_keys(["Nowhere Land", "Baltimore County"])] == [None, None]
