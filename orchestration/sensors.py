"""Sensors: the EMS inbox sensor materializes the day of each newly delivered report; the spike
sensor announces overdose spikes."""

import json

import dagster as dg

from orchestration import settings
from orchestration.jobs import ems_intake_job
from orchestration.partitions import daily_partitions
from orchestration.resources import AlertStore, EmsInbox
from orchestration.sources import ems_inbox as ems_reports
from orchestration.surveillance import notify
from orchestration.surveillance.policy import POLICY
from orchestration.surveillance.tables import CLUSTERS

REAL_EMS_CONFIG = {"ops": {"raw__naloxone_administrations": {"config": {"source": "real"}}}}


@dg.sensor(
    job=ems_intake_job,
    minimum_interval_seconds=60,
    # watches the inbox by default only where the EMS feed is real
    default_status=dg.DefaultSensorStatus.RUNNING
    if settings.source_for("ems") == "real"
    else dg.DefaultSensorStatus.STOPPED,
    description="New or re-delivered report files in EMS_INBOX_DIR -> a run for the report's day.",
)
def ems_inbox_sensor(context: dg.SensorEvaluationContext, ems_inbox: EmsInbox):
    """One run per new file version; the cursor (file name -> fingerprint) survives restarts."""
    seen: dict[str, str] = json.loads(context.cursor or "{}")
    inbox = ems_inbox.folder()
    requests, skipped = [], []
    for path in ems_reports.inbox_files(inbox):
        try:
            report = ems_reports.report_for(path)
        except ems_reports.EmsFileError as exc:
            skipped.append(str(exc))
            continue
        if seen.get(path.name) == report.fingerprint:
            continue
        if report.day < daily_partitions.start.date():
            skipped.append(f"{path.name}: {report.day} is before the first partition")
            continue
        requests.append(
            dg.RunRequest(
                run_key=report.fingerprint,
                partition_key=report.day.isoformat(),
                run_config=REAL_EMS_CONFIG,
                tags={"ems_report": path.name},
            )
        )
        seen[path.name] = report.fingerprint
    for message in skipped:
        context.log.warning(message)
    context.update_cursor(json.dumps(seen, sort_keys=True))
    if not requests:
        return dg.SkipReason(f"no new reports in {inbox}" + (f"; {len(skipped)} unreadable" if skipped else ""))
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
