"""Sensors: the EMS inbox sensor materializes the incident days of each newly delivered report;
the spike sensor records and delivers overdose spike notifications."""

import json
from datetime import date, timedelta

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from orchestration import settings
from orchestration.jobs import ems_intake_job
from orchestration.partitions import daily_partitions
from orchestration.resources import AlertStore, EmsInbox
from orchestration.sources import ems_inbox as ems_reports
from orchestration.surveillance import notify
from orchestration.surveillance.policy import POLICY
from orchestration.surveillance.tables import CLUSTERS

INTAKE_OP = "raw__naloxone_administrations"
RUN_RETRIES = 2  # Dagster run retries of one intake run (instance run_retries, see Makefile)
MAX_REQUESTS = 3  # runs the sensor requests for one file version before it gives up and says so
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def intake_request(report: ems_reports.Report, span: tuple, arrivals: dict[str, int], attempt: int) -> dg.RunRequest:
    """A run for the days the report's rows belong to (a range when they span several)."""
    first, last = span
    tags = {
        "ems_report": report.name,
        "ems_fingerprint": report.fingerprint,
        "dagster/max_retries": str(RUN_RETRIES),
    }
    if first != last:
        tags |= {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}
    return dg.RunRequest(
        run_key=report.fingerprint if attempt == 1 else f"{report.fingerprint}#{attempt}",
        partition_key=first.isoformat() if first == last else None,
        run_config={"ops": {INTAKE_OP: {"config": {"source": "real", "arrivals": arrivals}}}},
        tags=tags,
    )


@dg.sensor(
    job=ems_intake_job,
    minimum_interval_seconds=60,
    # watches the inbox by default only where the EMS feed is real
    default_status=dg.DefaultSensorStatus.RUNNING
    if settings.source_for("ems") == "real"
    else dg.DefaultSensorStatus.STOPPED,
    description="New or re-delivered report files in EMS_INBOX_DIR, once they stop changing -> a run for the "
    "days their rows belong to; failed runs are re-requested a bounded number of times.",
)
def ems_inbox_sensor(context: dg.SensorEvaluationContext, ems_inbox: EmsInbox):
    """One run per new file version, in arrival order.

    A file is picked up only when its size and modification time are the same on two ticks (a
    file still being copied is not read). Its arrival number (the order in which the sensor saw
    stable files) decides which delivery of an incident wins. A file whose rows reach a day that
    has no partition yet (today, a typo) is skipped with a warning; the other files are served.
    The cursor survives restarts.
    """
    state = json.loads(context.cursor or "{}")
    sizes: dict[str, list] = state.get("sizes", {})
    arrivals: dict[str, int] = state.get("arrivals", {})
    requested: dict[str, dict] = state.get("requested", {})
    warned: list[str] = state.get("warned", [])
    inbox = ems_inbox.folder()
    next_arrival = max(int(state.get("next_arrival", 1)), ems_reports.last_archived_arrival(inbox) + 1)
    first_day = daily_partitions.start.date()
    last_day = settings.today_local() - timedelta(days=1)
    requests, messages = [], []
    present = ems_reports.inbox_files(inbox)
    for path in present:
        stat = path.stat()
        observed = [stat.st_size, stat.st_mtime]
        fingerprint = ems_reports.fingerprint(path.name, stat.st_mtime, stat.st_size)
        if fingerprint in requested:
            entry = requested[fingerprint]
            runs = context.instance.get_runs(filters=dg.RunsFilter(tags={"ems_fingerprint": fingerprint}))
            if (
                not runs
                or any(r.status not in FINISHED for r in runs)
                or any(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            ):
                continue  # running, retrying, or done
            if entry["requests"] < MAX_REQUESTS:
                entry["requests"] += 1
                report = ems_reports.report_for(path)
                requests.append(
                    intake_request(report, tuple(map(date.fromisoformat, entry["span"])), arrivals, entry["requests"])
                )
            elif fingerprint not in warned:
                messages.append(f"{path.name}: {len(runs)} intake run(s) failed; gave up, the file stays in the inbox")
                warned.append(fingerprint)
            continue
        if sizes.get(path.name) != observed:
            sizes[path.name] = observed  # new or still changing: look again next tick
            continue
        try:
            report = ems_reports.report_for(path)
            span = ems_reports.report_span(report)
        except ems_reports.EmsFileError as exc:
            if fingerprint not in warned:
                messages.append(str(exc))
                warned.append(fingerprint)
            continue
        if span[1] > last_day or span[0] < first_day:
            if fingerprint not in warned:
                messages.append(
                    f"{path.name}: rows for {span[0]}..{span[1]}, outside the partitions {first_day}..{last_day} "
                    "(a day that has not ended yet, or a typo); skipped, the other files are served"
                )
                warned.append(fingerprint)
            continue
        arrivals[report.name] = next_arrival
        next_arrival += 1
        requested[fingerprint] = {"span": [span[0].isoformat(), span[1].isoformat()], "requests": 1}
        requests.append(intake_request(report, span, dict(arrivals), 1))
    names = {p.name for p in present}
    sizes = {n: v for n, v in sizes.items() if n in names}
    requested = {f: v for f, v in requested.items() if f.split(":")[0] in names}
    arrivals = {n: a for n, a in arrivals.items() if n in names}
    for message in messages:
        context.log.warning(message)
    context.update_cursor(
        json.dumps(
            {
                "sizes": sizes,
                "arrivals": arrivals,
                "requested": requested,
                "warned": warned[-500:],
                "next_arrival": next_arrival,
            },
            sort_keys=True,
        )
    )
    if not requests:
        return dg.SkipReason(
            f"no new stable reports in {inbox}" + (f"; {len(messages)} warning(s)" if messages else "")
        )
    return requests


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Announces each new overdose spike (p < {POLICY.spike_p} by default), and an ongoing spike "
    "again when it gains cases (alerts table, and OVERDOSE_ALERT_WEBHOOK_URL when set).",
)
def overdose_spike_sensor(context: dg.SensorEvaluationContext, alerts: AlertStore):
    """Records the new spike states of the newest surveillance materialization, then delivers every
    recorded, undelivered alert within the tick's time budget (at least once, across ticks)."""
    state = json.loads(context.cursor or "{}")
    notified: dict[str, int] = state.get("notified", {})
    store = alerts.database()
    recorded = []
    records = context.instance.fetch_materializations(dg.AssetKey(CLUSTERS.path), limit=1).records
    if records and records[0].storage_id != state.get("last_event"):
        event = records[0]
        metadata = event.asset_materialization.metadata
        spikes = metadata["spikes"].value if "spikes" in metadata else []
        analysis_date = metadata["analysis_date"].value if "analysis_date" in metadata else ""
        for item in notify.notifications_for(spikes, notified, analysis_date):
            if notify.record(item, store):
                recorded.append(f"{item.kind} {item.cluster_id} ({item.spike['observed']} cases)")
            notified[item.cluster_id] = int(item.spike["observed"])
        context.update_cursor(json.dumps({"last_event": event.storage_id, "notified": notified}, sort_keys=True))
    delivery = notify.deliver_pending(store, alerts.webhook_url())
    for line in [f"recorded {r}" for r in recorded] + delivery:
        context.log.warning(line) if "gave up" in line else context.log.info(line)
    return dg.SkipReason(
        f"{len(recorded)} new spike state(s) recorded; {len(delivery)} delivery attempt(s)"
        if recorded or delivery
        else "no new spike states, nothing waiting"
    )
