"""Daily overdose surveillance in the warehouse: the space-time scan and EARS alerts.

Cases are non-fatal overdoses (patients who improved after naloxone) from the restricted fact
table. Each analysis day writes its results into history tables keyed by `analysis_date`:
`marts.mart_overdose_clusters` and `marts.mart_overdose_alerts` (outreach-facing: no patient
points or demographics; a cluster's centre is rounded to ~100 m) and
`restricted.overdose_cluster_locations` (the case locations of each cluster, to follow a
cluster from one day to the next).
"""

import json
from datetime import date, timedelta

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from orchestration.assets.raw import partition_days
from orchestration.partitions import WRITER_POOL, daily_partitions
from orchestration.surveillance.ears import THRESHOLDS, EarsParameters, ears
from orchestration.surveillance.scan import ScanParameters, SpaceTimePermutationScan
from orchestration.warehouse import transaction

CLUSTERS_KEY = dg.AssetKey(["surveillance", "overdose_clusters"])


class SurveillanceConfig(dg.Config):
    study_days: int = Field(default=30, description="study period length, ending on the analysis date")
    max_days: int = Field(default=7, description="longest time window (days)")
    max_radius_km: float = Field(default=1.207, description="largest circle radius (0.75 mile)")
    min_cases: int = Field(default=3, description="fewest cases in a reported cluster")
    replications: int = Field(default=999, description="Monte Carlo replications")
    spike_p: float = Field(default=0.05, description="p-value below which a cluster is a spike")
    report_p: float = Field(default=0.4, description="clusters with p at or below this are reported for outreach")
    seed: int = Field(default=20130101, description="Monte Carlo seed")
    ears_min_sd: float = Field(default=0.5, description="floor of the EARS baseline standard deviation")
    ears_min_count: int = Field(default=3, description="fewest events on a day for an EARS alert")


CLUSTER_COLUMNS = """analysis_date DATE, cluster_id VARCHAR, rank INTEGER, status VARCHAR, first_detected DATE,
    days_active INTEGER, csas VARCHAR, neighborhoods VARCHAR, center_latitude DOUBLE, center_longitude DOUBLE,
    radius_km DOUBLE, start_date DATE, end_date DATE, window_days INTEGER, locations INTEGER, observed INTEGER,
    expected DOUBLE, observed_over_expected DOUBLE, llr DOUBLE, p_value DOUBLE, recurrence_interval_days DOUBLE,
    is_spike BOOLEAN"""
ALERT_COLUMNS = """analysis_date DATE, area VARCHAR, area_type VARCHAR, method VARCHAR, count INTEGER,
    baseline_mean DOUBLE, baseline_sd DOUBLE, statistic DOUBLE, threshold DOUBLE, is_alert BOOLEAN"""


def _replace_day(conn, table: str, columns: str, frame: pd.DataFrame, day: date) -> None:
    schema = table.split(".")[0]
    conn.execute(f"create schema if not exists {schema}")
    conn.execute(f"create table if not exists {table} ({columns})")
    with transaction(conn):
        conn.execute(f"delete from {table} where analysis_date = ?", [day])
        if len(frame):
            conn.register("incoming", frame)
            conn.execute(f"insert into {table} by name select * from incoming")
            conn.unregister("incoming")


def scan_day(conn, day: date, config: SurveillanceConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clusters (outreach columns) and their case locations for the study period ending on `day`."""
    start = day - timedelta(days=config.study_days - 1)
    cases = conn.execute(
        """
        select round(f.latitude, 4) as lat, round(f.longitude, 4) as lon,
            date_diff('day', ?::date, f.incident_date) as study_day, g.csa, g.neighborhood
        from restricted.fct_naloxone_administrations f join marts.dim_geography g using (geography_key)
        where f.is_nonfatal_overdose and f.incident_date between ? and ?""",
        [start, start, day],
    ).df()
    if cases.empty:
        return pd.DataFrame(), pd.DataFrame()
    cases["location"] = cases["lat"].map("{:.4f}".format) + "," + cases["lon"].map("{:.4f}".format)
    locations = cases.drop_duplicates("location").reset_index(drop=True)
    index = {loc: i for i, loc in enumerate(locations["location"])}
    params = ScanParameters(
        max_days=config.max_days,
        max_radius_km=config.max_radius_km,
        min_cases=config.min_cases,
        replications=config.replications,
        seed=config.seed,
    )
    result = SpaceTimePermutationScan(
        list(locations["location"]),
        locations["lat"].to_numpy(float),
        locations["lon"].to_numpy(float),
        cases["location"].map(index).to_numpy(),
        cases["study_day"].to_numpy(),
        start,
        day,
        params,
    ).run()
    rows, members = [], []
    for c in result.clusters:
        if c.p_value is None or c.p_value > config.report_p:
            continue
        inside = cases[cases["location"].isin(c.locations)]
        rows.append(
            {
                "analysis_date": day,
                "rank": c.rank,
                "csas": "; ".join(sorted(set(inside["csa"]))),
                "neighborhoods": "; ".join(sorted(set(inside["neighborhood"]))),
                "center_latitude": round(c.center_latitude, 3),
                "center_longitude": round(c.center_longitude, 3),
                "radius_km": round(c.radius_km, 3),
                "start_date": c.start,
                "end_date": c.end,
                "window_days": (c.end - c.start).days + 1,
                "locations": len(c.locations),
                "observed": c.observed,
                "expected": c.expected,
                "observed_over_expected": c.relative_risk,
                "llr": c.llr,
                "p_value": c.p_value,
                "recurrence_interval_days": c.recurrence_interval_days,
                "is_spike": c.p_value < config.spike_p,
            }
        )
        members += [{"analysis_date": day, "rank": c.rank, "location": loc} for loc in c.locations]
    return pd.DataFrame(rows), pd.DataFrame(members)


def follow_clusters(conn, day: date, clusters: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """A cluster sharing a location with one reported the day before continues it (same id)."""
    previous = pd.DataFrame()
    exists = conn.execute(
        "select count(*) from information_schema.tables where table_schema = 'restricted' "
        "and table_name = 'overdose_cluster_locations'"
    ).fetchone()[0]
    if exists:
        previous = conn.execute(
            """
            select l.location, c.cluster_id, c.first_detected
            from restricted.overdose_cluster_locations l
            join marts.mart_overdose_clusters c using (analysis_date, rank)
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


def ears_day(conn, day: date, config: SurveillanceConfig) -> pd.DataFrame:
    """EARS C1-C3 on non-fatal overdoses per CSA and citywide, for `day` (zero-filled history)."""
    history = conn.execute(
        """select day, csa, nonfatal_overdoses from marts.mart_overdose_daily
        where day between ? and ?""",
        [day - timedelta(days=20), day],
    ).df()
    if history.empty:
        return pd.DataFrame()
    days = pd.date_range(day - timedelta(days=20), day).date
    wide = history.pivot_table(index="day", columns="csa", values="nonfatal_overdoses", aggfunc="sum")
    wide = wide.reindex(days, fill_value=0).fillna(0)
    wide["Baltimore City"] = wide.sum(axis=1)
    rows = []
    params = EarsParameters(min_sd=config.ears_min_sd, min_count=config.ears_min_count)
    for area in wide.columns:
        stats = ears(wide[area].to_numpy(), params).iloc[-1]
        for method, threshold in THRESHOLDS.items():
            base = "C2" if method == "C3" else method
            rows.append(
                {
                    "analysis_date": day,
                    "area": area,
                    "area_type": "city" if area == "Baltimore City" else "csa",
                    "method": method,
                    "count": int(stats["count"]),
                    "baseline_mean": stats[f"{base}_mean"],
                    "baseline_sd": stats[f"{base}_sd"],
                    "statistic": stats[method],
                    "threshold": threshold,
                    "is_alert": bool(stats[f"{method}_alert"]),
                }
            )
    return pd.DataFrame(rows)


@dg.asset(
    key=CLUSTERS_KEY,
    group_name="surveillance",
    pool=WRITER_POOL,
    # a partition is an analysis day: the study period ends on it; a backfill scans each day in turn
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        dg.AssetKey(["restricted", "fct_naloxone_administrations"]),
        dg.AssetKey(["marts", "dim_geography"]),
        dg.AssetKey(["marts", "mart_overdose_daily"]),
    ],
    kinds={"python", "duckdb"},
    description=(
        "Prospective space-time permutation scan (SaTScan's method) and EARS C1-C3 on non-fatal "
        "overdoses for the analysis day: writes marts.mart_overdose_clusters and mart_overdose_alerts."
    ),
)
def overdose_clusters(
    context: dg.AssetExecutionContext, config: SurveillanceConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    first, last = partition_days(context)
    day = first
    with duckdb.get_connection() as conn:
        while day <= last:  # each analysis day follows its clusters from the day before
            clusters, members = scan_day(conn, day, config)
            if len(clusters):
                clusters = follow_clusters(conn, day, clusters, members)
            alerts = ears_day(conn, day, config)
            _replace_day(conn, "marts.mart_overdose_clusters", CLUSTER_COLUMNS, clusters, day)
            _replace_day(
                conn,
                "restricted.overdose_cluster_locations",
                "analysis_date DATE, rank INTEGER, location VARCHAR",
                members,
                day,
            )
            _replace_day(conn, "marts.mart_overdose_alerts", ALERT_COLUMNS, alerts, day)
            context.log.info(f"{day}: {len(clusters)} cluster(s) reported")
            day += timedelta(days=1)
    day = last  # the metadata (read by the spike sensor) describes the newest analysis day
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
        }
        for r in spikes.itertuples()
    ]
    ears_alerts = alerts[alerts["is_alert"]] if len(alerts) else alerts
    context.log.info(
        f"{day}: {len(clusters)} cluster(s) reported, {len(spike_list)} spike(s), {len(ears_alerts)} EARS alert(s)"
    )
    return dg.MaterializeResult(
        metadata={
            "analysis_date": str(day),
            "clusters_reported": len(clusters),
            "spikes": dg.MetadataValue.json(spike_list),
            "ears_alerts": dg.MetadataValue.json(
                ears_alerts[["area", "method", "count"]].to_dict("records") if len(ears_alerts) else []
            ),
        }
    )


@dg.asset_check(
    asset=CLUSTERS_KEY,
    name="no_active_overdose_spike",
    blocking=False,
    pool=WRITER_POOL,
    description="WARN while a spike (cluster with p < 0.05) is active on the latest analysis day.",
)
def no_active_overdose_spike(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        spikes = conn.execute("""select cluster_id, status, csas, observed, round(expected, 2) as expected, p_value,
                start_date, end_date from marts.mart_overdose_clusters
            where analysis_date = (select max(analysis_date) from marts.mart_overdose_clusters) and is_spike
            order by p_value""").df()
    return dg.AssetCheckResult(
        passed=spikes.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "failing_count": len(spikes),
            "threshold": "p < 0.05",
            "spikes": dg.MetadataValue.json(json.loads(spikes.to_json(orient="records", date_format="iso"))),
        },
    )


surveillance_assets = [overdose_clusters]
surveillance_checks = [no_active_overdose_spike]
