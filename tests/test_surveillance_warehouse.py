"""Surveillance in the warehouse: the injected demo outbreak is found, and spikes are announced once per state."""

import json
import math
from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest
from werkzeug import Response

from orchestration.demo.naloxone import cluster_for_day
from orchestration.resources import AlertStore
from orchestration.sources.http import RetryPolicy
from orchestration.surveillance.reports import CHROMIUM
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


def _spike_tick(instance, cursor):
    """One evaluation of the spike sensor; returns its new cursor."""
    from orchestration.sensors import overdose_spike_sensor

    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=SENSOR_RESOURCES) as context:
        overdose_spike_sensor(context)
        return context.cursor


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
    received = []

    def hook(request):
        received.append(json.loads(request.data))
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(hook)
    monkeypatch.setenv("OVERDOSE_ALERT_WEBHOOK_URL", httpserver.url_for("/hook"))
    monkeypatch.setenv("ALERTS_DB", str(tmp_path / "alerts.duckdb"))

    with dg.instance_for_test() as instance:
        _report(instance, "2024-03-17", [_spike("2024-03-17-1", 6)])
        cursor = _spike_tick(instance, None)
        assert [(r["kind"], r["cluster_id"], r["observed"]) for r in received] == [("new_spike", "2024-03-17-1", 6)]
        cursor = _spike_tick(instance, cursor)  # nothing new
        _report(instance, "2024-03-18", [_spike("2024-03-17-1", 6)])  # same state the next day
        cursor = _spike_tick(instance, cursor)
        assert len(received) == 1
        _report(instance, "2024-03-19", [_spike("2024-03-17-1", 9), _spike("2024-03-19-2", 4)])
        cursor = _spike_tick(instance, cursor)
        assert [(r["kind"], r["cluster_id"], r["observed"]) for r in received[1:]] == [
            ("spike_grew", "2024-03-17-1", 9),
            ("new_spike", "2024-03-19-2", 4),
        ]
        # a restarted daemon that lost its cursor re-reads the same results: the alerts table stops repeats
        _spike_tick(instance, None)
        assert len(received) == 3
    with duckdb.connect(str(tmp_path / "alerts.duckdb"), read_only=True) as conn:
        rows = conn.execute("select alert_id, kind, webhook_status from alerts order by created_at").fetchall()
    assert [r[:2] for r in rows] == [
        ("2024-03-17-1:6", "new_spike"),
        ("2024-03-17-1:9", "spike_grew"),
        ("2024-03-19-2:4", "new_spike"),
    ]
    assert all(r[2].startswith("sent (200)") for r in rows)
    assert [r[1:3] for r in _alerts(tmp_path / "alerts.duckdb")] == [(True, 1)] * 3


def _alerts(path):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(
            "select alert_id, delivered, attempts, webhook_status from alerts order by created_at"
        ).fetchall()


def test_an_alert_whose_post_failed_is_delivered_on_a_later_tick(httpserver, tmp_path, monkeypatch):
    """The webhook is down when the spike is found and back a tick later: delivered once, not lost."""
    state = {"down": True, "received": []}

    def hook(request):
        if state["down"]:
            return Response("down", status=503)
        state["received"].append(json.loads(request.data))
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(hook)
    monkeypatch.setenv("OVERDOSE_ALERT_WEBHOOK_URL", httpserver.url_for("/hook?token=s3cret"))
    monkeypatch.setenv("ALERTS_DB", str(tmp_path / "alerts.duckdb"))
    monkeypatch.setattr("orchestration.surveillance.notify.WEBHOOK_RETRIES", RetryPolicy(2, backoff_base=0.01))

    with dg.instance_for_test() as instance:
        _report(instance, "2024-03-17", [_spike("2024-03-17-1", 6)])
        cursor = _spike_tick(instance, None)
        [(alert_id, delivered, attempts, status)] = _alerts(tmp_path / "alerts.duckdb")
        assert (alert_id, delivered, attempts) == ("2024-03-17-1:6", False, 1) and status == "failed (HTTP 503)"
        state["down"] = False
        cursor = _spike_tick(instance, cursor)  # no new results: the waiting alert goes out anyway
        cursor = _spike_tick(instance, cursor)  # and only once
    assert [r["alert_id"] for r in state["received"]] == ["2024-03-17-1:6"]
    assert _alerts(tmp_path / "alerts.duckdb")[0][1:3] == (True, 2)


def test_delivery_is_bounded_in_attempts_and_in_time_per_tick(tmp_path):
    from orchestration.surveillance import notify

    store = tmp_path / "alerts.duckdb"
    for i in range(5):
        notify.record(notify.Notification(f"c{i}:3", f"c{i}", "new_spike", "2024-03-17", {"observed": 3}), store)
    now = [0.0]
    calls = []

    def slow_failing_post(url, payload):
        calls.append(payload["alert_id"])
        now[0] += 10.0  # each POST takes 10 s and fails
        return False, "failed (HTTP 503)"

    def deliver():
        return notify.deliver_pending(
            store,
            "http://127.0.0.1:9/hook",
            budget_seconds=35,
            max_attempts=3,
            post=slow_failing_post,
            clock=lambda: now[0],
            attempt_seconds=12,
        )

    lines = deliver()
    # POSTs start at 0, 10 and 20 s (each leaves 12 s within 35); the fourth, at 30 s, would overrun
    assert calls == ["c0:3", "c1:3", "c2:3"]
    assert lines[-1] == "2 alert(s) wait for the next tick (time budget)"
    for _ in range(10):
        now[0] = 0.0
        deliver()
    # every alert tried exactly max_attempts times, then given up and never tried again
    assert sorted(calls) == sorted([f"c{i}:3" for i in range(5)] * 3)
    assert all(status.startswith("gave up after 3 attempts") for *_, status in _alerts(store))


def test_the_webhook_url_is_never_logged_with_its_path_or_query(httpserver, caplog):
    from orchestration.surveillance import notify

    httpserver.expect_request("/hook/T0KEN", method="POST").respond_with_data("down", status=503)
    url = httpserver.url_for("/hook/T0KEN?key=s3cret")
    delivered, status = notify.post_webhook(url, {"x": 1}, policy=RetryPolicy(max_attempts=2, backoff_base=0.01))
    assert (delivered, status) == (False, "failed (HTTP 503)")
    assert len(httpserver.log) == 2
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("orchestration"))
    assert "T0KEN" not in ours + status and "s3cret" not in ours + status
    assert "POST http://localhost:" in ours  # the host is named, so an operator knows which hook
    unreachable = "http://127.0.0.1:9/hook/T0KEN?key=s3cret"
    delivered, status = notify.post_webhook(unreachable, {"x": 1}, policy=RetryPolicy(max_attempts=1))
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("orchestration"))
    assert not delivered and "T0KEN" not in status + ours


def test_a_webhook_that_refuses_the_alert_is_not_retried(httpserver):
    from orchestration.surveillance import notify

    httpserver.expect_request("/hook", method="POST").respond_with_data("no such hook", status=404)
    delivered, status = notify.post_webhook(httpserver.url_for("/hook"), {"x": 1}, policy=RetryPolicy(max_attempts=3))
    assert (delivered, status) == (False, "failed (HTTP 404)")
    assert len(httpserver.log) == 1


def test_a_failure_part_way_through_a_day_keeps_the_previous_results(warehouse_copy):
    """Clusters and locations are replaced, then the alerts insert fails: all three roll back together."""
    import pandas as pd

    from orchestration.assets.surveillance import replace_day
    from orchestration.surveillance.tables import ALERTS, CLUSTER_LOCATIONS, CLUSTERS, SURVEILLANCE_TABLES

    def counts():
        return [
            _q(warehouse_copy, f"select count(*) from {t.qualified} where analysis_date = ?", [TEST_END])[0][0]
            for t in SURVEILLANCE_TABLES
        ]

    before = counts()
    assert before[0] > 0 and before[1] > 0  # the demo outbreak: clusters and alerts exist for the day
    broken_alerts = pd.DataFrame({"analysis_date": [TEST_END], "no_such_column": [1]})
    with duckdb.connect(str(warehouse_copy)) as conn, pytest.raises(duckdb.Error):
        replace_day(
            conn,
            TEST_END,
            {CLUSTERS.name: pd.DataFrame(), CLUSTER_LOCATIONS.name: pd.DataFrame(), ALERTS.name: broken_alerts},
        )
    assert counts() == before


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


def test_a_backfill_scans_days_on_two_processes_with_the_same_results_as_one(
    warehouse_copy, session_instance, tmp_path, monkeypatch
):
    """A range of analysis days in one run: scanned by two worker processes, the history equals
    the one a single process writes, day by day, and the outbreak is followed from day to day."""
    import shutil

    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from orchestration.assets.surveillance import overdose_surveillance
    from orchestration.definitions import defs

    first, last = "2024-03-08", "2024-03-15"
    single = tmp_path / "single" / warehouse_copy.name
    single.parent.mkdir()
    shutil.copy(warehouse_copy, single)

    def backfill(processes: int) -> None:
        result = dg.materialize(
            [overdose_surveillance],
            resources=defs.resources,
            instance=session_instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
            run_config={"ops": {"overdose_surveillance": {"config": {"processes": processes}}}},
        )
        assert result.success

    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    backfill(2)
    # every day has its HTML reports; only the newest is printed to PDF (a chromium start per PDF)
    folders = sorted((tmp_path / "reports").iterdir())
    assert [f.name for f in folders] == [str(date.fromisoformat(first) + timedelta(days=i)) for i in range(8)]
    assert all((f / "outreach.html").exists() and (f / "epidemiology.html").exists() for f in folders)
    printed = sorted(p.parent.name for p in (tmp_path / "reports").glob("*/*.pdf"))
    assert printed == ([last, last] if CHROMIUM.exists() else [])
    monkeypatch.setenv("WAREHOUSE_DB", str(single))
    backfill(1)
    history = """select * exclude (cluster_id) from marts.mart_overdose_clusters
                 where analysis_date between ? and ? order by analysis_date, rank"""
    two, one = _q(warehouse_copy, history, [first, last]), _q(single, history, [first, last])
    assert two == one and len({r[0] for r in two}) >= 5  # the outbreak's days have clusters
    alerts = "select count(*) from marts.mart_overdose_alerts where analysis_date between ? and ?"
    assert _q(warehouse_copy, alerts, [first, last]) == _q(single, alerts, [first, last]) != [(0,)]
    # the outbreak's spike: new on its first day, then the same cluster id, ongoing, a day older each day
    spikes = _q(
        warehouse_copy,
        """select analysis_date, cluster_id, status, days_active from marts.mart_overdose_clusters
           where is_spike and analysis_date between ? and ? order by analysis_date, rank""",
        [first, last],
    )
    longest = max({r[1] for r in spikes}, key=lambda cid: sum(r[1] == cid for r in spikes))
    followed = [r for r in spikes if r[1] == longest]
    assert len(followed) >= 3 and followed[0][2] == "new" and all(r[2] == "ongoing" for r in followed[1:])
    assert [r[3] for r in followed] == [(r[0] - followed[0][0]).days + 1 for r in followed]
