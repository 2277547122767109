"""Real 911 values end to end: real spellings and real neighborhood names, through the ArcGIS path.

A local fake of Open Baltimore's feature service serves three days of calls whose descriptions
are real spellings in proportion to their real (or publicly estimated) counts
(tests/real_feed_sample.py) and whose neighborhood names are the real feed's (the crosswalk's
neighborhoods, sometimes in its 2010 statistical-area spelling). Boundaries and crosswalks are
the real public files of ../shared. The warehouse must classify and place them.
"""

import re
from datetime import date, timedelta

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration.demo.call_mix import TOP_TEN_CATEGORY
from orchestration.demo.neighborhoods import NEIGHBORHOODS
from orchestration.raw_tables import CALL_COLUMNS
from orchestration.sources.geography import POLICE_DISTRICTS
from tests.conftest import shared_file
from tests.fake_arcgis import FakeArcGIS, Layer, calls_to_features
from tests.real_feed_sample import TOP_TEN, spelling_counts

pytestmark = pytest.mark.slow

START, END = date(2024, 3, 15), date(2024, 3, 17)
CALLS = 9_000
LAYER = "911_Calls_For_Services_2024/FeatureServer/0"


def _allocate(counts: dict[str, int], n: int) -> list[str]:
    """`n` (or a few more) descriptions in proportion to `counts`, every spelling at least once."""
    total = sum(counts.values())
    out = []
    for spelling, count in counts.items():
        out += [spelling] * max(1, round(n * count / total))
    return out


def _feed(crosswalk: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(20240315)
    descriptions = np.array(_allocate(spelling_counts(), CALLS), dtype=object)
    rng.shuffle(descriptions)
    n = len(descriptions)
    points = {h.feed_name: (h.latitude, h.longitude) for h in NEIGHBORHOODS}
    pick = rng.integers(0, len(crosswalk), n)
    feed_name = crosswalk["neighborhood"].to_numpy(object)[pick]
    nsa = crosswalk["nsa"].to_numpy(object)[pick]
    use_nsa = rng.random(n) < 0.15  # the 2010 statistical-area spelling, typos included
    names = np.where(use_nsa, nsa, feed_name).astype(object)
    names[rng.random(n) < 0.03] = None
    lat = np.array([points[f][0] for f in feed_name]) + rng.normal(0, 0.0003, n)
    lon = np.array([points[f][1] for f in feed_name]) + rng.normal(0, 0.0003, n)
    no_point = rng.random(n) < 0.02
    lat[no_point], lon[no_point] = np.nan, np.nan
    days = [START + timedelta(days=int(i)) for i in rng.integers(0, (END - START).days + 1, n)]
    local = pd.to_datetime([str(d) for d in days]) + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
    epoch_ms = local.tz_localize("America/New_York", ambiguous="NaT", nonexistent="shift_forward").asi8 // 1_000_000
    ids = np.arange(1, n + 1)
    district = rng.choice(list(POLICE_DISTRICTS), n)
    csa = np.where(pd.isna(names), None, crosswalk["csa"].to_numpy(object)[pick])
    frame = pd.DataFrame(
        {
            "OBJECTID": ids,
            "recordId": 5_000_000 + ids,
            "callKey": [f"K{i}" for i in ids],
            "callDateTime": epoch_ms,
            "priority": rng.choice(["Non-Emergency", "Low", "Medium", "High", "Emergency"], n),
            "district": district,
            "description": descriptions,
            "callNumber": [f"P24{i:08d}" for i in ids],
            "incidentLocation": "100 N HOWARD ST",
            "Neighborhood": names,
            "PoliceDistrict": [POLICE_DISTRICTS[d] for d in district],
            "PolicePost": rng.integers(111, 946, n).astype(str),
            "CouncilDistrict": rng.integers(1, 15, n).astype(str),
            "Community_Statistical_Areas": csa,
            "Census_Tracts": [f"Census Tract {t}" for t in rng.integers(101, 2804, n)],
            "ZIPCode": rng.choice(["21201", "21202", "21205", "21213", "21215", "21217", "21218", "21223", "21224"], n),
            "latitude": lat,
            "longitude": lon,
        }
    )
    return frame[list(CALL_COLUMNS)]


def test_real_spellings_and_neighborhood_names_are_classified_placed_and_published(
    arcgis_server, tmp_path, monkeypatch
):
    from orchestration.run_all import run_range

    crosswalk = pd.read_csv(shared_file("data", "geography", "mapbaltimore_xwalk_csa2nsa.csv"))
    shared_file("data", "geography", "mapbaltimore_neighborhoods_2020_wgs84.geojson")
    feed = _feed(crosswalk)
    fake = FakeArcGIS({LAYER: Layer(calls_to_features(feed), max_record_count=1000)})
    arcgis_server.expect_request(re.compile(".*")).respond_with_handler(fake)
    monkeypatch.setenv("OPEN_BALTIMORE_ARCGIS_URL", arcgis_server.url_for("/rest/services/"))
    monkeypatch.setenv("CALLS_SOURCE", "real")
    monkeypatch.setenv("HEALTH_SOURCE", "real")  # the real boundaries and crosswalks of ../shared
    monkeypatch.setenv("EMS_SOURCE", "demo")
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_DB", str(warehouse))
    monkeypatch.setenv("SERVING_DB", str(tmp_path / "serving" / "warehouse.duckdb"))

    result = run_range(START, END, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING")
    assert result.success

    with duckdb.connect(str(warehouse), read_only=True) as conn:

        def one(sql):
            return conn.execute(sql).fetchone()[0]

        # nothing lost: every served row is a fact or quarantined
        assert one("select count(*) from raw.calls_for_service") == len(feed)
        assert one("select count(*) from marts.fct_calls_for_service") + one(
            "select count(*) from quarantine.calls_for_service"
        ) == len(feed)
        by_calls = one(
            "select sum(call_count) filter (where is_classified) / sum(call_count) from marts.mart_call_type_coverage"
        )
        spellings = conn.execute(
            "select description_raw, call_category, is_classified from intermediate.int_call_descriptions__classified"
        ).fetchall()
        by_spelling = sum(c for _, _, c in spellings) / len(spellings)
        category = {s: cat for s, cat, _ in spellings}
        named = one(
            """select count(*) filter (where neighborhood_resolved is not null) / count(*)
            from intermediate.int_calls_for_service__validated
            where quarantine_reason is null and neighborhood is not null"""
        )
        by_name = one(
            """select count(*) filter (where neighborhood_name_matched) / count(*)
            from intermediate.int_calls_for_service__validated
            where quarantine_reason is null and neighborhood is not null"""
        )
    print(
        f"\nreal values: {len(feed)} calls, {len(spellings)} spellings; classified {by_calls:.2%} of calls, "
        f"{by_spelling:.2%} of spellings; named calls placed {named:.2%} (by name {by_name:.2%})"
    )
    assert len(spellings) == len(set(feed["description"].str.strip()))
    assert by_calls >= 0.98
    assert by_spelling >= 0.90
    for spelling, _ in TOP_TEN:
        assert category[spelling] == TOP_TEN_CATEGORY[spelling], spelling
    assert named >= 0.98
    # the published copy carries the same coverage
    serving = tmp_path / "serving" / "warehouse.duckdb"
    with duckdb.connect(str(serving), read_only=True) as conn:
        published = conn.execute(
            "select sum(call_count) filter (where is_classified) / sum(call_count) from marts.mart_call_type_coverage"
        ).fetchone()[0]
    assert published == pytest.approx(by_calls)
