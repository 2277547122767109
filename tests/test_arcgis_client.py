"""The Open Baltimore ArcGIS client against a local fake server that misbehaves like real ones."""

from datetime import date

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

from orchestration.demo.calls import generate_calls
from orchestration.resources import WarehouseDuckDB
from orchestration.sources.arcgis import ArcGISCallsClient, ArcGISResponseError, LayerRegistry
from orchestration.sources.http import JsonHttp, RetryPolicy, SourceError
from tests.fake_arcgis import FakeArcGIS, Fault, Layer, calls_to_features

DAY = date(2024, 3, 10)  # the spring DST day: 23 local hours
LAYER = "911_Calls_For_Services_2024/FeatureServer/0"


@pytest.fixture(scope="module")
def served_calls() -> pd.DataFrame:
    # two days, so the where clause must select one local day out of them
    return generate_calls(date(2024, 3, 9), date(2024, 3, 11), seed=4)


def _expected(calls: pd.DataFrame, day: date) -> pd.DataFrame:
    local = pd.to_datetime(calls["callDateTime"], unit="ms", utc=True).dt.tz_convert("America/New_York").dt.date
    return calls[local == day].sort_values("OBJECTID").reset_index(drop=True)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _client(server: HTTPServer, fake: FakeArcGIS, sleeps=None, attempts=5, read_timeout=5.0) -> ArcGISCallsClient:
    server.expect_request(__import__("re").compile(".*")).respond_with_handler(fake)
    http = JsonHttp(
        timeout=(2.0, read_timeout),
        policy=RetryPolicy(max_attempts=attempts, backoff_base=0.01),
        sleep=sleeps if sleeps is not None else (lambda s: None),
    )
    return ArcGISCallsClient(base_url=server.url_for("/rest/services/"), http=http, max_workers=3)


def _assert_same_rows(loaded: pd.DataFrame, expected: pd.DataFrame) -> None:
    loaded = loaded.sort_values("OBJECTID").reset_index(drop=True)
    assert len(loaded) == len(expected)
    assert loaded["OBJECTID"].is_unique
    assert loaded["OBJECTID"].astype("int64").tolist() == expected["OBJECTID"].tolist()
    assert loaded["callDateTime"].astype("int64").tolist() == expected["callDateTime"].tolist()
    for column in ("description", "Neighborhood", "ZIPCode", "priority", "callNumber"):
        assert loaded[column].tolist() == expected[column].where(expected[column].notna(), None).tolist(), column
    pd.testing.assert_series_equal(loaded["latitude"], expected["latitude"], check_names=False)


def test_pages_concurrently_and_loads_exactly_the_served_day(arcgis_server, served_calls):
    fake = FakeArcGIS({LAYER: Layer(calls_to_features(served_calls), max_record_count=500)})
    loaded = _client(arcgis_server, fake).fetch(DAY, DAY)
    expected = _expected(served_calls, DAY)
    _assert_same_rows(loaded, expected)
    pages = [r for r in fake.requests if r.startswith("page")]
    assert len(pages) == -(-len(expected) // 500)  # ceil: one request per page, no more


def test_retries_every_transient_fault_and_still_loads_exactly(arcgis_server, served_calls):
    faults = [
        Fault("429", on="count", retry_after="2"),
        Fault("500", on="metadata"),
        Fault("timeout"),
        Fault("error200"),
        Fault("truncated"),
        Fault("duplicate"),
        Fault("500"),
    ]
    fake = FakeArcGIS(
        {LAYER: Layer(calls_to_features(served_calls), max_record_count=400)}, faults=faults, read_delay=3.0
    )
    sleeps = Sleeps()
    # the stalled answer is 2x the timeout; an ordinary page must come well within it, even in a slow hour
    loaded = _client(arcgis_server, fake, sleeps=sleeps, attempts=4, read_timeout=1.5).fetch(DAY, DAY)
    _assert_same_rows(loaded, _expected(served_calls, DAY))
    assert fake.faults == []  # every fault was served
    assert 2.0 in sleeps  # Retry-After honored
    assert len(sleeps) == 6  # one wait per retried fault (the duplicate page needs none)


def test_a_schema_variant_layer_with_lowercase_fields_and_string_dates(arcgis_server, served_calls):
    layer = Layer(calls_to_features(served_calls, lowercase=True, string_dates=True), date_field="calldatetime")
    fake = FakeArcGIS({LAYER: layer})
    loaded = _client(arcgis_server, fake).fetch(DAY, DAY)
    _assert_same_rows(loaded, _expected(served_calls, DAY))


def test_an_empty_partition_loads_nothing_without_error(arcgis_server, served_calls):
    fake = FakeArcGIS({LAYER: Layer(calls_to_features(served_calls))})
    loaded = _client(arcgis_server, fake).fetch(date(2024, 6, 1), date(2024, 6, 1))
    assert len(loaded) == 0
    assert not [r for r in fake.requests if r.startswith("page")]


def test_a_missing_record_fails_the_count_check(arcgis_server, served_calls):
    fake = FakeArcGIS({LAYER: Layer(calls_to_features(served_calls), max_record_count=500)}, faults=[Fault("drop")])
    with pytest.raises(SourceError, match="counts .* but paging returned"):
        _client(arcgis_server, fake).fetch(DAY, DAY)


def test_a_server_that_always_says_more_stops_with_a_clear_error(arcgis_server, served_calls):
    """exceededTransferLimit on an empty page (a server in a loop) ends the load, it does not spin."""
    fake = FakeArcGIS({LAYER: Layer(calls_to_features(served_calls), max_record_count=1000)}, always_more=True)
    with pytest.raises(ArcGISResponseError, match="exceededTransferLimit.*empty page"):
        _client(arcgis_server, fake).fetch(DAY, DAY)
    pages = [r for r in fake.requests if r.startswith("page")]
    day_calls = len(_expected(served_calls, DAY))
    assert len(pages) == -(-day_calls // 1000) + 1  # the day's pages, then one empty "more", then stop


def test_a_server_that_says_more_past_the_page_cap_stops(arcgis_server, served_calls):
    fake = FakeArcGIS({LAYER: Layer(calls_to_features(served_calls), max_record_count=1000)}, always_more=True)
    client = _client(arcgis_server, fake)
    client.max_pages = 2  # the day's ~3,400 calls need 4 pages
    with pytest.raises(ArcGISResponseError, match="more than the cap of 2"):
        client.fetch(DAY, DAY)
    assert not [r for r in fake.requests if r.startswith("page")]  # refused before paging


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault("bad_feature"), r"feature \d+ is not an object"),
        (Fault("bad_count", on="count"), r"count is not a number: 'many'"),
        (Fault("bad_max", on="metadata"), r"maxRecordCount is not a number: 'lots'"),
    ],
)
def test_a_malformed_answer_raises_the_clients_error_naming_the_url(arcgis_server, served_calls, fault, message):
    fake = FakeArcGIS({LAYER: Layer(calls_to_features(served_calls))}, faults=[fault])
    with pytest.raises(ArcGISResponseError, match=message) as raised:
        _client(arcgis_server, fake).fetch(DAY, DAY)
    assert arcgis_server.url_for("/rest/services/") + LAYER in str(raised.value)


DIRECTORY = [
    {"name": "911_2013_2022", "type": "FeatureServer"},
    {"name": "911_CallsForService_2023", "type": "FeatureServer"},
    {"name": "911_Calls_For_Services_2024", "type": "FeatureServer"},
    {"name": "911_Calls_For_Service_2026", "type": "FeatureServer"},  # a new yearly service
    {"name": "911_Calls_For_Service_2026", "type": "MapServer"},
    {"name": "Parking_Citations_2026", "type": "FeatureServer"},
]


def test_yearly_layers_come_from_the_services_directory(arcgis_server, served_calls):
    fake = FakeArcGIS({LAYER: Layer(calls_to_features(served_calls))}, directory=DIRECTORY)
    client = _client(arcgis_server, fake)
    discovered = client.discover_layers()
    assert discovered[2015] == "911_2013_2022/FeatureServer/2"
    assert discovered[2023] == "911_CallsForService_2023/FeatureServer/0"
    assert discovered[2026] == "911_Calls_For_Service_2026/FeatureServer/0"
    assert set(discovered) == set(range(2013, 2025)) | {2026}
    registry = LayerRegistry({2026: "mirror/FeatureServer/0"}, discovered)
    assert registry.layer_for_year(2026) == "mirror/FeatureServer/0"  # config overrides still win
    registry = LayerRegistry({}, discovered)
    assert registry.layer_for_year(2025) == LAYER  # not listed: the newest layer before it
    assert registry.layer_for_year(2027) == "911_Calls_For_Service_2026/FeatureServer/0"
    assert LayerRegistry().layer_for_year(2027) == LAYER  # no directory: the built-in table


def test_an_unreadable_services_directory_is_the_clients_error(arcgis_server, served_calls):
    fake = FakeArcGIS({LAYER: Layer(calls_to_features(served_calls))}, directory=None)
    with pytest.raises(SourceError, match="ArcGIS error 400"):
        _client(arcgis_server, fake).discover_layers()


def test_the_retry_budget_ends_in_a_clear_error(arcgis_server, served_calls):
    fake = FakeArcGIS({LAYER: Layer(calls_to_features(served_calls))}, faults=[Fault("500", on="any")] * 10)
    sleeps = Sleeps()
    with pytest.raises(SourceError, match=r"failed after 3 attempts: HTTP 500"):
        _client(arcgis_server, fake, sleeps=sleeps, attempts=3).fetch(DAY, DAY)
    # exponential backoff from 0.01 s with +-50% jitter: 0.005-0.015 s, then 0.01-0.03 s
    assert len(sleeps) == 2
    assert 0.005 <= sleeps[0] <= 0.015 and 0.01 <= sleeps[1] <= 0.03


def test_a_non_retryable_arcgis_error_fails_at_once(arcgis_server, served_calls):
    fake = FakeArcGIS({LAYER: Layer(calls_to_features(served_calls))}, faults=[Fault("error400", on="metadata")])
    sleeps = Sleeps()
    with pytest.raises(SourceError, match="ArcGIS error 400"):
        _client(arcgis_server, fake, sleeps=sleeps).fetch(DAY, DAY)
    assert sleeps == []


def test_the_registry_routes_years_to_their_layers_and_accepts_overrides():
    registry = LayerRegistry()
    assert registry.slices(date(2022, 12, 31), date(2024, 1, 1)) == [
        ("911_2013_2022/FeatureServer/9", date(2022, 12, 31), date(2022, 12, 31)),
        ("911_CallsForService_2023/FeatureServer/0", date(2023, 1, 1), date(2023, 12, 31)),
        ("911_Calls_For_Services_2024/FeatureServer/0", date(2024, 1, 1), date(2024, 1, 1)),
    ]
    assert registry.layer_for_year(2013) == "911_2013_2022/FeatureServer/0"
    assert registry.layer_for_year(2031) == "911_Calls_For_Services_2024/FeatureServer/0"
    assert LayerRegistry({2023: "mirror/FeatureServer/3"}).layer_for_year(2023) == "mirror/FeatureServer/3"
    with pytest.raises(SourceError, match="from 2013"):
        registry.layer_for_year(2012)


def test_where_clause_spans_the_local_day_in_utc(arcgis_server, served_calls):
    fake = FakeArcGIS({LAYER: Layer(calls_to_features(served_calls))})
    client = _client(arcgis_server, fake)
    where = client._where({"fields": [{"name": "callDateTime"}]}, DAY, DAY)
    assert where == (
        "callDateTime >= TIMESTAMP '2024-03-10 05:00:00' AND callDateTime < TIMESTAMP '2024-03-11 04:00:00'"
    )


def test_the_calls_asset_loads_a_real_partition_and_a_failed_reload_keeps_it(
    arcgis_server, served_calls, tmp_path, monkeypatch
):
    import re

    import dagster as dg
    import duckdb

    from orchestration.assets.raw import landing_calls_for_service, raw_calls_for_service

    fake = FakeArcGIS({LAYER: Layer(calls_to_features(served_calls), max_record_count=700)})
    arcgis_server.expect_request(re.compile(".*")).respond_with_handler(fake)
    monkeypatch.setenv("OPEN_BALTIMORE_ARCGIS_URL", arcgis_server.url_for("/rest/services/"))
    db = tmp_path / "calls.duckdb"

    def materialize():
        return dg.materialize(
            [landing_calls_for_service, raw_calls_for_service],
            partition_key=DAY.isoformat(),
            resources={"duckdb": WarehouseDuckDB(database=str(db))},
            run_config={"ops": {"landing__calls_for_service": {"config": {"source": "real", "max_workers": 2}}}},
            raise_on_error=False,
            instance=dg.DagsterInstance.ephemeral(),
        )

    def loaded_ids():
        with duckdb.connect(str(db), read_only=True) as conn:
            return [
                i
                for (i,) in conn.execute(
                    "select OBJECTID from raw.calls_for_service where _partition_date = ? order by 1", [DAY]
                ).fetchall()
            ]

    assert materialize().success
    expected = _expected(served_calls, DAY)["OBJECTID"].tolist()
    assert loaded_ids() == expected
    fake.faults = [Fault("drop")]  # the next load misses a record: the count check must refuse it
    assert not materialize().success
    assert loaded_ids() == expected
    fake.faults = []
    assert materialize().success  # and a clean reload replaces the day without duplicating it
    assert loaded_ids() == expected


def test_the_calls_asset_reads_the_layer_the_directory_lists(arcgis_server, served_calls, tmp_path, monkeypatch):
    """2024's calls live in a renamed service the built-in table does not know: the directory finds it,
    and the failure message of an empty answer names the layer it asked."""
    import re

    import dagster as dg

    from orchestration.assets.raw import landing_calls_for_service, raw_calls_for_service

    renamed = "911_Calls_For_Service_2024/FeatureServer/0"
    directory = [{"name": "911_Calls_For_Service_2024", "type": "FeatureServer"}]
    fake = FakeArcGIS({renamed: Layer(calls_to_features(served_calls))}, directory=directory)
    arcgis_server.expect_request(re.compile(".*")).respond_with_handler(fake)
    monkeypatch.setenv("OPEN_BALTIMORE_ARCGIS_URL", arcgis_server.url_for("/rest/services/"))

    def materialize(db):
        return dg.materialize(
            [landing_calls_for_service, raw_calls_for_service],
            partition_key=DAY.isoformat(),
            resources={"duckdb": WarehouseDuckDB(database=str(db))},
            run_config={"ops": {"landing__calls_for_service": {"config": {"source": "real"}}}},
            raise_on_error=False,
            instance=dg.DagsterInstance.ephemeral(),
        )

    assert materialize(tmp_path / "a.duckdb").success
    assert any(r.startswith("page rest/services/" + renamed) for r in fake.requests)
    # without the directory the old name is asked, which this server does not have: a clear failure
    fake.directory = None
    result = materialize(tmp_path / "b.duckdb")
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    assert LAYER in error.message + (error.cause.message if error.cause else "")


def test_a_file_download_shares_the_retry_budget(arcgis_server):
    from orchestration.sources.files import read_bytes

    calls = {"n": 0}

    def flaky(request):
        from werkzeug import Response

        calls["n"] += 1
        return Response("busy", status=503, headers={"Retry-After": "0"}) if calls["n"] == 1 else Response("a,b\n1,2\n")

    arcgis_server.expect_request("/nhp.csv").respond_with_handler(flaky)
    assert read_bytes(arcgis_server.url_for("/nhp.csv")) == b"a,b\n1,2\n"
    assert calls["n"] == 2
