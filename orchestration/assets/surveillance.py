"""Daily overdose surveillance in the warehouse: the space-time scan and EARS alerts.

Cases are non-fatal overdoses (patients who improved after naloxone) from the restricted fact
table. Each analysis day writes its results into the history tables declared in
`orchestration.surveillance.tables` (keyed by `analysis_date`), which are this asset's outputs:
`marts/mart_overdose_clusters` and `marts/mart_overdose_alerts` (outreach-facing: no patient
points or demographics) and `restricted/overdose_cluster_locations` (the case locations of each
cluster, to follow a cluster from one day to the next). It also writes each day's outreach and
epidemiology reports (`orchestration.surveillance.reports`, under REPORTS_DIR), which spike
notifications name.
"""

from datetime import date, timedelta

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from orchestration import settings
from orchestration.partitions import WRITER_POOL, daily_partitions, partition_days
from orchestration.surveillance.daily_scan import DayScan, scan_days, study_period
from orchestration.surveillance.ears import THRESHOLDS, EarsParameters, ears
from orchestration.surveillance.policy import POLICY
from orchestration.surveillance.reports import csa_polygons, report_paths, write_reports
from orchestration.surveillance.scan import ScanParameters
from orchestration.surveillance.tables import ALERTS, CLUSTER_LOCATIONS, CLUSTERS, SURVEILLANCE_TABLES, OutputTable
from orchestration.warehouse import transaction

CLUSTERS_KEY = dg.AssetKey(CLUSTERS.path)
SPIKE_CHECK = "no_active_overdose_spike"
_SCAN = ScanParameters()
_EARS = EarsParameters()


class SurveillanceConfig(dg.Config):
    """Run-time surveillance settings; every default comes from ScanParameters, EarsParameters and POLICY."""

    study_days: int = Field(default=POLICY.study_days, description="study period length, ending on the analysis date")
    max_days: int = Field(default=_SCAN.max_days, description="longest time window (days)")
    max_radius_km: float = Field(default=_SCAN.max_radius_km, description="largest circle radius (0.75 mile)")
    max_share_of_cases: float = Field(
        default=_SCAN.max_share_of_cases, description="largest share of cases in a circle"
    )
    min_cases: int = Field(default=_SCAN.min_cases, description="fewest cases in a reported cluster")
    replications: int = Field(default=_SCAN.replications, description="Monte Carlo replications")
    spike_p: float = Field(default=POLICY.spike_p, description="p-value below which a cluster is a spike")
    report_p: float = Field(default=POLICY.report_p, description="clusters with p at or below this are reported")
    seed: int = Field(default=_SCAN.seed, description="Monte Carlo seed")
    # both cores: measured on 2 cores, two workers scan a backfill 1.4x as fast as the run's own
    # process (docs/performance.md, "Surveillance backfill"); a one-day run scans in its own process
    processes: int = Field(
        default=2, description="worker processes scanning the days of a backfill (days are independent); 1 = none"
    )
    ears_min_sd: float = Field(default=_EARS.min_sd, description="floor of the EARS baseline standard deviation")
    ears_min_count: int = Field(default=_EARS.min_count, description="fewest events on a day for an EARS alert")
    reports: bool = Field(default=True, description="write each analysis day's outreach and epidemiology reports")
    # a chromium start per PDF takes about a second: two per day would make a ten-year backfill
    # two hours of printing. The newest day's are the ones a notification sends; an older day's
    # PDFs come from a run of that day alone.
    reports_pdf: bool = Field(
        default=True,
        description="print the newest analysis day's reports to PDF too, where Debian's chromium is installed "
        "(the earlier days of a backfill get HTML reports only)",
    )

    def scan_parameters(self) -> ScanParameters:
        return ScanParameters.from_attributes(self)

    def day_scan(self) -> DayScan:
        return DayScan(self.study_days, self.report_p, self.spike_p, self.scan_parameters())


def replace_day(conn, day: date, results: dict[str, pd.DataFrame]) -> None:
    """Replace the analysis day in every surveillance table (`results`: table name -> rows) in one
    transaction: a failure part-way leaves the day's previous clusters, locations and alerts together."""
    for table in SURVEILLANCE_TABLES:
        conn.execute(f"create schema if not exists {table.schema}")
        conn.execute(table.ddl())
    with transaction(conn):
        for table in SURVEILLANCE_TABLES:
            conn.execute(f"delete from {table.qualified} where analysis_date = ?", [day])
            frame = results[table.name]
            if len(frame):
                conn.register("incoming", frame)
                try:
                    conn.execute(f"insert into {table.qualified} by name select * from incoming")
                finally:
                    conn.unregister("incoming")


def study_cases(conn, first: date, last: date, study_days: int) -> pd.DataFrame:
    """Non-fatal overdoses of every study period ending first..last (restricted: kept in memory)."""
    start, _ = study_period(first, study_days)
    return conn.execute(
        """
        select round(f.latitude, 4) as lat, round(f.longitude, 4) as lon, f.incident_date, g.csa, g.neighborhood
        from restricted.fct_naloxone_administrations f join marts.dim_geography g using (geography_key)
        where f.is_nonfatal_overdose and f.incident_date between ? and ?
        order by f.incident_date, lat, lon  -- the scan's arrays, and so its Monte Carlo, in a fixed order""",
        [start, last],
    ).df()


def follow_clusters(conn, day: date, clusters: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """A cluster sharing a location with one reported the day before continues it (same id)."""
    previous = pd.DataFrame()
    exists = conn.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [CLUSTER_LOCATIONS.schema, CLUSTER_LOCATIONS.name],
    ).fetchone()[0]
    if exists:
        previous = conn.execute(
            f"""
            select l.location, c.cluster_id, c.first_detected
            from {CLUSTER_LOCATIONS.qualified} l
            join {CLUSTERS.qualified} c using (analysis_date, rank)
            where l.analysis_date = ?""",
            [day - timedelta(days=1)],
        ).df()
    ids, firsts, statuses = [], [], []
    for _, cluster in clusters.iterrows():
        mine = set(members.loc[members["rank"] == cluster["rank"], "location"])
        match = previous[previous["location"].isin(mine)] if len(previous) else previous
        if len(match):
            ids.append(match["cluster_id"].iloc[0])
            firsts.append(pd.Timestamp(match["first_detected"].min()).date())
            statuses.append("ongoing")
        else:
            ids.append(f"{day.isoformat()}-{int(cluster['rank'])}")
            firsts.append(day)
            statuses.append("new")
    clusters = clusters.assign(cluster_id=ids, first_detected=firsts, status=statuses)
    clusters["days_active"] = [(day - f).days + 1 for f in firsts]
    return clusters


# EARS reads the analysis day and the EARS_HISTORY_DAYS before it (zero-filled): enough for C3,
# whose oldest baseline day is 11 days back
EARS_HISTORY_DAYS = 20
CITY = "Baltimore City"


def ears_for_days(conn, first: date, last: date, config: SurveillanceConfig) -> pd.DataFrame:
    """EARS C1-C3 on non-fatal overdoses per CSA and citywide, for every analysis day first..last.

    Each day gets exactly what a run of that day alone computes: its series are the
    EARS_HISTORY_DAYS + 1 days ending on it, zero-filled, for the CSAs with a row of
    `mart_overdose_daily` in those days (the city too, when any row is). The series of a range are
    read once and each area's statistics computed over the whole range in one pass (the windows
    are the same), instead of one query and one pass per area and day: a ten-year backfill is
    3,653 days of 57 areas.
    """
    start = first - timedelta(days=EARS_HISTORY_DAYS)
    history = conn.execute(
        "select day, csa, nonfatal_overdoses from marts.mart_overdose_daily where day between ? and ?",
        [start, last],
    ).df()
    if history.empty:
        return pd.DataFrame()
    days = pd.date_range(start, last).date
    wide = history.pivot_table(index="day", columns="csa", values="nonfatal_overdoses", aggfunc="sum")
    wide = wide.reindex(days, fill_value=0).fillna(0)
    wide[CITY] = wide.sum(axis=1)
    # rows per area and day (any CSA, a missing one too, for the city), summed over each day's window
    rows_per_day = history.assign(rows=1).pivot_table(index="day", columns="csa", values="rows", aggfunc="sum")
    rows_per_day = rows_per_day.reindex(index=days, columns=wide.columns, fill_value=0).fillna(0)
    rows_per_day[CITY] = history.groupby("day").size().reindex(days, fill_value=0).to_numpy()
    in_window = rows_per_day.rolling(EARS_HISTORY_DAYS + 1, min_periods=1).sum().to_numpy()[EARS_HISTORY_DAYS:] > 0
    analysis_days = days[EARS_HISTORY_DAYS:]
    params = EarsParameters(min_sd=config.ears_min_sd, min_count=config.ears_min_count)
    frames = []
    for column, area in enumerate(wide.columns):
        present = in_window[:, column]
        if not present.any():
            continue
        stats = ears(wide[area].to_numpy(), params).iloc[EARS_HISTORY_DAYS:][present]
        for method, threshold in THRESHOLDS.items():
            base = "C2" if method == "C3" else method
            frames.append(
                pd.DataFrame(
                    {
                        "analysis_date": analysis_days[present],
                        "area": area,
                        "area_type": "city" if area == CITY else "csa",
                        "method": method,
                        "count": stats["count"].astype(int).to_numpy(),
                        "baseline_mean": stats[f"{base}_mean"].to_numpy(),
                        "baseline_sd": stats[f"{base}_sd"].to_numpy(),
                        "statistic": stats[method].to_numpy(),
                        "threshold": threshold,
                        "is_alert": stats[f"{method}_alert"].astype(bool).to_numpy(),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _table_spec(table: OutputTable, group: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=table.path,
        group_name=group,
        description=table.description,
        kinds={"python", "duckdb"},
        deps=[
            dg.AssetKey(["restricted", "fct_naloxone_administrations"]),
            dg.AssetKey(["marts", "dim_geography"]),
            dg.AssetKey(["marts", "mart_overdose_daily"]),
        ],
        metadata={
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(c.name, c.type, description=c.description) for c in table.columns]
            ),
            "dagster/table_name": table.qualified,
        },
    )


@dg.multi_asset(
    name="overdose_surveillance",
    specs=[
        _table_spec(CLUSTERS, "surveillance"),
        _table_spec(ALERTS, "surveillance"),
        _table_spec(CLUSTER_LOCATIONS, "restricted"),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            SPIKE_CHECK,
            asset=CLUSTERS_KEY,
            blocking=False,
            description="WARN while a spike (a cluster with p below the run's spike threshold) is active on the "
            "newest analysis day of the run.",
        )
    ],
    pool=WRITER_POOL,
    # a partition is an analysis day: the study period ends on it; a backfill scans each day in turn
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def overdose_surveillance(context: dg.AssetExecutionContext, config: SurveillanceConfig, duckdb: DuckDBResource):
    """Prospective space-time permutation scan (SaTScan's method) and EARS C1-C3 for each analysis day."""
    first, last = partition_days(context)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    with duckdb.get_connection() as conn:
        cases = study_cases(conn, first, last, config.study_days)
        all_alerts = ears_for_days(conn, first, last, config)
        alerts_by_day = dict(tuple(all_alerts.groupby("analysis_date"))) if len(all_alerts) else {}
        polygons = csa_polygons(conn) if config.reports else None  # the same map for every day
        if config.reports and config.reports_pdf and first < last:
            context.log.info(f"PDF reports are printed for {last} only; the {len(days) - 1} earlier day(s) get HTML")
        # the scans run in parallel; following clusters needs the day before, so the days are
        # written in order as their scans arrive
        for day, clusters, members in scan_days(cases, days, config.day_scan(), config.processes):
            if len(clusters):
                clusters = follow_clusters(conn, day, clusters, members)
            alerts = alerts_by_day.get(day, pd.DataFrame())
            replace_day(conn, day, {CLUSTERS.name: clusters, CLUSTER_LOCATIONS.name: members, ALERTS.name: alerts})
            context.log.info(f"{day}: {len(clusters)} cluster(s) reported")
            if config.reports:
                pdf = config.reports_pdf and day == last
                written = write_reports(conn, day, settings.reports_path(), config.report_p, pdf, polygons)
                context.log.info(f"{day}: reports {written['outreach']}, {written['epidemiology']}")
        counts = {
            table.name: conn.execute(
                f"select count(*) from {table.qualified} where analysis_date between ? and ?", [first, last]
            ).fetchone()[0]
            for table in SURVEILLANCE_TABLES
        }
    day = last  # the metadata (read by the spike sensor) describes the newest analysis day
    paths = report_paths(settings.reports_path(), day)
    # where the day's reports are (the notification carries them to outreach and epidemiology)
    reports = {"outreach": str(paths.outreach), "epidemiology": str(paths.epidemiology)} if config.reports else {}
    spikes = clusters[clusters["is_spike"]] if len(clusters) else clusters
    spike_list = [
        {
            "cluster_id": r.cluster_id,
            "status": r.status,
            "observed": int(r.observed),
            "expected": round(r.expected, 2),
            "p_value": r.p_value,
            "csas": r.csas,
            "center": [r.center_latitude, r.center_longitude],
            "radius_km": r.radius_km,
            "start": str(r.start_date),
            "end": str(r.end_date),
            "reports": reports,
        }
        for r in spikes.itertuples()
    ]
    ears_alerts = alerts[alerts["is_alert"]] if len(alerts) else alerts
    context.log.info(
        f"{day}: {len(clusters)} cluster(s) reported, {len(spike_list)} spike(s), {len(ears_alerts)} EARS alert(s)"
    )
    yield dg.MaterializeResult(
        asset_key=CLUSTERS_KEY,
        metadata={
            "analysis_date": str(day),
            "clusters_reported": len(clusters),
            "dagster/row_count": counts[CLUSTERS.name],
            "spikes": dg.MetadataValue.json(spike_list),
            "parameters": dg.MetadataValue.json(config.model_dump()),
        },
    )
    yield dg.MaterializeResult(
        asset_key=ALERTS.path,
        metadata={
            "analysis_date": str(day),
            "dagster/row_count": counts[ALERTS.name],
            "ears_alerts": dg.MetadataValue.json(
                ears_alerts[["area", "method", "count"]].to_dict("records") if len(ears_alerts) else []
            ),
        },
    )
    # counts only: the locations themselves are restricted
    yield dg.MaterializeResult(
        asset_key=CLUSTER_LOCATIONS.path, metadata={"dagster/row_count": counts[CLUSTER_LOCATIONS.name]}
    )
    yield dg.AssetCheckResult(
        asset_key=CLUSTERS_KEY,
        check_name=SPIKE_CHECK,
        passed=not spike_list,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "analysis_date": str(day),
            "failing_count": len(spike_list),
            "threshold": f"p < {config.spike_p}",
            "spikes": dg.MetadataValue.json(spike_list),
        },
    )


surveillance_assets = [overdose_surveillance]
