"""Sensors: the EMS inbox sensor materializes the day of each newly delivered report."""

import json

import dagster as dg

from orchestration import settings
from orchestration.partitions import daily_partitions
from orchestration.sources import ems_inbox

NALOXONE_KEY = dg.AssetKey(["raw", "naloxone_administrations"])

ems_intake_job = dg.define_asset_job(
    "ems_intake_job",
    selection=dg.AssetSelection.assets(NALOXONE_KEY).downstream(),
    partitions_def=daily_partitions,
    description="Load one day's EMS naloxone report from the inbox and rebuild everything downstream.",
)

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
def ems_inbox_sensor(context: dg.SensorEvaluationContext):
    """One run per new file version; the cursor (file name -> fingerprint) survives restarts."""
    seen: dict[str, str] = json.loads(context.cursor or "{}")
    inbox = ems_inbox.inbox_dir()
    requests, skipped = [], []
    for path in ems_inbox.inbox_files(inbox):
        try:
            report = ems_inbox.report_for(path)
        except ems_inbox.EmsFileError as exc:
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
