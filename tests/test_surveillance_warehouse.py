"""Surveillance in the warehouse: the injected demo outbreak is found, and spikes are announced once per state."""

import json
import math
from datetime import timedelta

import dagster as dg
import duckdb
import pytest
from werkzeug import Response

from orchestration.demo.naloxone import cluster_for_day
from orchestration.resources import AlertStore
from orchestration.sources.http import RetryPolicy
from tests.conftest import TEST_END

pytestmark = pytest.mark.slow


SENSOR_RESOURCES = {"alerts": AlertStore()}  # its path: ALERTS_DB, set by the test


def _q(path, sql, params=None):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def test_the_injected_outbreak_is_detected_as_a_spike(built):
    """The demo injects outbreaks (see cluster_for_day); one active in the last seven days of the
    study period ending TEST_END must come out as a spike where it was injected."""
    path, _ = built
    recent = [c for c in (cluster_for_day(TEST_END - timedelta(days=i)) for i in range(7)) if c is not None]
    assert recent
    rows = _q(
        path,
        """select center_latitude, center_longitude, radius_km, csas, p_value, is_spike, observed,
        expected from marts.mart_overdose_clusters where analysis_date = ? order by rank""",
        [TEST_END],
    )
    assert rows, "no cluster reported"
    lat, lon, radius, csas, p, spike, observed, expected = rows[0]
    assert spike and p < 0.05 and observed > 3 * expected

    def km(c):
        return math.hypot((lat - c.latitude) * 111.0, (lon - c.longitude) * 111.0 * math.cos(math.radians(39.3)))

    nearest = min(recent, key=km)
    assert km(nearest) < 0.5 + radius


def test_ears_alerts_cover_every_csa_and_the_city(built):
    path, _ = built
    areas = _q(
        path,
        """select area_type, count(distinct area), count(*) from marts.mart_overdose_alerts
        where analysis_date = ? group by 1 order by 1""",
        [TEST_END],
    )
    n_csas = _q(path, "select count(distinct csa) from marts.dim_geography")[0][0]
    assert areas == [("city", 1, 3), ("csa", n_csas, 3 * n_csas)]
    citywide = dict(
        _q(
            path,
            """select method, count from marts.mart_overdose_alerts
        where analysis_date = ? and area = 'Baltimore City'""",
            [TEST_END],
        )
    )
    nonfatal = _q(
        path,
        """select count(*) from restricted.fct_naloxone_administrations
        where is_nonfatal_overdose and incident_date = ?""",
        [TEST_END],
    )[0][0]
    assert citywide == {"C1": nonfatal, "C2": nonfatal, "C3": nonfatal}


def test_surveillance_tables_are_assets_with_their_declared_columns(built):
    from orchestration.assets.surveillance import overdose_surveillance
    from orchestration.surveillance.tables import SURVEILLANCE_TABLES

    path, _ = built
    assert {k.path[0] + "." + k.path[1] for k in overdose_surveillance.keys} == {
        t.qualified for t in SURVEILLANCE_TABLES
    }
    for table in SURVEILLANCE_TABLES:
        spec = overdose_surveillance.specs_by_key[dg.AssetKey(table.path)]
        documented = {c.name: c.description for c in spec.metadata["dagster/column_schema"].columns}
        built_columns = [
            c
            for (c,) in _q(
                path,
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "order by ordinal_position",
                [table.schema, table.name],
            )
        ]
        assert built_columns == list(documented) and all(documented.values()), table.qualified
        assert spec.description


def test_outreach_marts_carry_no_patient_points_or_demographics(built):
    path, _ = built
    columns = {
        c
        for (c,) in _q(
            path,
            """select column_name from information_schema.columns
        where table_schema = 'marts' and table_name in ('mart_overdose_clusters', 'mart_overdose_alerts')""",
        )
    }
    assert not columns & {"latitude", "longitude", "age_band", "sex", "patient_age", "incident_number", "location"}
    decimals = _q(
        path,
        "select max(length(split_part(cast(center_latitude as varchar), '.', 2))) from marts.mart_overdose_clusters",
    )[0][0]
    assert decimals <= 3  # centres rounded to about 100 m


def test_the_spike_check_warns_while_a_spike_is_active(built):
    _, result = built
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_active_overdose_spike"]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["failing_count"].value >= 1


def _report(instance, day, spikes):
    from orchestration.assets.surveillance import CLUSTERS_KEY

    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=CLUSTERS_KEY, metadata={"analysis_date": day, "spikes": dg.MetadataValue.json(spikes)}
        )
    )


def _spike(cluster_id, observed):
    return {
        "cluster_id": cluster_id,
        "status": "new",
        "observed": observed,
        "expected": 1.2,
        "p_value": 0.01,
        "csas": "Southwest Baltimore",
        "center": [39.285, -76.655],
        "radius_km": 0.4,
    }


def test_spike_notifications_go_out_once_per_state_even_across_restarts(httpserver, tmp_path, monkeypatch):
    from orchestration.sensors import overdose_spike_sensor

    received = []

    def hook(request):
        received.append(json.loads(request.data))
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(hook)
    monkeypatch.setenv("OVERDOSE_ALERT_WEBHOOK_URL", httpserver.url_for("/hook"))
    monkeypatch.setenv("ALERTS_DB", str(tmp_path / "alerts.duckdb"))

    def tick(instance, cursor):
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=SENSOR_RESOURCES) as context:
            overdose_spike_sensor(context)
            return context.cursor

    with dg.instance_for_test() as instance:
        _report(instance, "2024-03-17", [_spike("2024-03-17-1", 6)])
        cursor = tick(instance, None)
        assert [(r["kind"], r["cluster_id"], r["observed"]) for r in received] == [("new_spike", "2024-03-17-1", 6)]
        cursor = tick(instance, cursor)  # nothing new
        _report(instance, "2024-03-18", [_spike("2024-03-17-1", 6)])  # same state the next day
        cursor = tick(instance, cursor)
        assert len(received) == 1
        _report(instance, "2024-03-19", [_spike("2024-03-17-1", 9), _spike("2024-03-19-2", 4)])
        cursor = tick(instance, cursor)
        assert [(r["kind"], r["cluster_id"], r["observed"]) for r in received[1:]] == [
            ("spike_grew", "2024-03-17-1", 9),
            ("new_spike", "2024-03-19-2", 4),
        ]
        # a restarted daemon that lost its cursor re-reads the same results: the alerts table stops repeats
        tick(instance, None)
        assert len(received) == 3
    with duckdb.connect(str(tmp_path / "alerts.duckdb"), read_only=True) as conn:
        rows = conn.execute("select alert_id, kind, webhook_status from alerts order by created_at").fetchall()
    assert [r[:2] for r in rows] == [
        ("2024-03-17-1:6", "new_spike"),
        ("2024-03-17-1:9", "spike_grew"),
        ("2024-03-19-2:4", "new_spike"),
    ]
    assert all(r[2].startswith("sent (200)") for r in rows)


def test_a_failing_webhook_is_recorded_not_retried_forever(httpserver, tmp_path, monkeypatch):
    from orchestration.surveillance import notify

    httpserver.expect_request("/hook", method="POST").respond_with_data("down", status=503)
    retries = RetryPolicy(max_attempts=2, backoff_base=0.01)
    status = notify.post_webhook(httpserver.url_for("/hook"), {"x": 1}, policy=retries)
    assert status == "failed (HTTP 503)"
    assert len(httpserver.log) == 2


def test_a_webhook_that_refuses_the_alert_is_not_retried(httpserver):
    from orchestration.surveillance import notify

    httpserver.expect_request("/hook", method="POST").respond_with_data("no such hook", status=404)
    status = notify.post_webhook(httpserver.url_for("/hook"), {"x": 1}, policy=RetryPolicy(max_attempts=3))
    assert status == "failed (HTTP 404)"
    assert len(httpserver.log) == 1


def test_consecutive_analysis_days_follow_an_ongoing_spike(warehouse_copy, session_instance):
    """Partitions are analysis days: the demo outbreak active on 2024-03-12 and 2024-03-13 is
    reported as new on the first day and as the same, ongoing cluster on the second."""
    from orchestration.assets.surveillance import overdose_surveillance
    from orchestration.definitions import defs

    resources = defs.resources
    assert cluster_for_day(TEST_END.replace(day=12)) and cluster_for_day(TEST_END.replace(day=13))
    for day in ("2024-03-12", "2024-03-13"):
        assert dg.materialize(
            [overdose_surveillance], partition_key=day, resources=resources, instance=session_instance
        ).success
    rows = _q(
        warehouse_copy,
        """select analysis_date, cluster_id, status, days_active from marts.mart_overdose_clusters
        where is_spike and analysis_date in ('2024-03-12', '2024-03-13') order by analysis_date, rank""",
    )
    first = [r for r in rows if str(r[0]) == "2024-03-12"][0]
    second = [r for r in rows if str(r[0]) == "2024-03-13"][0]
    assert first[2] == "new" and first[3] == 1
    assert second[1] == first[1] and second[2] == "ongoing" and second[3] == 2
