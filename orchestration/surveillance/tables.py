"""The tables surveillance writes: names, columns, types and docs, declared once.

The surveillance asset creates them from these declarations, its asset specs carry their
descriptions and column docs (as dbt models' do), and the sensor, publication and tests refer
to them by these names. A cluster's case locations stay in `restricted`; the marts carry no
patient points or demographics (a cluster's centre is rounded to ~100 m).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type
    description: str


@dataclass(frozen=True)
class OutputTable:
    schema: str
    name: str
    description: str
    columns: tuple[Column, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def path(self) -> list[str]:
        """The asset key path: [schema, table], like every other table of the warehouse."""
        return [self.schema, self.name]

    def ddl(self) -> str:
        return (
            f"create table if not exists {self.qualified} ("
            + ", ".join(f"{c.name} {c.type}" for c in self.columns)
            + ")"
        )


CLUSTERS = OutputTable(
    "marts",
    "mart_overdose_clusters",
    "Clusters of non-fatal overdoses found by the prospective space-time permutation scan, one row per "
    "analysis day and reported cluster (p at or below the reporting threshold): for outreach, no patient data.",
    (
        Column("analysis_date", "DATE", "Day the study period ends on (the scan's partition)."),
        Column("cluster_id", "VARCHAR", "Stable id: a cluster that shares a location with yesterday's keeps its id."),
        Column("rank", "INTEGER", "Rank of the cluster on its analysis day (1 = most likely)."),
        Column("status", "VARCHAR", "new (first day reported) or ongoing."),
        Column("first_detected", "DATE", "Analysis day the cluster was first reported."),
        Column("days_active", "INTEGER", "Days since first detection, inclusive."),
        Column("csas", "VARCHAR", "Community Statistical Areas of the cluster's cases, '; '-separated."),
        Column("neighborhoods", "VARCHAR", "Neighborhoods of the cluster's cases, '; '-separated."),
        Column("center_latitude", "DOUBLE", "Latitude of the circle's centre, rounded to 0.001 degree (~100 m)."),
        Column("center_longitude", "DOUBLE", "Longitude of the circle's centre, rounded to 0.001 degree."),
        Column("radius_km", "DOUBLE", "Radius of the circle (km)."),
        Column("start_date", "DATE", "First day of the cluster's time window."),
        Column("end_date", "DATE", "Last day of the time window (the analysis day)."),
        Column("window_days", "INTEGER", "Length of the time window (days)."),
        Column("locations", "INTEGER", "Distinct case locations inside the circle."),
        Column("observed", "INTEGER", "Non-fatal overdoses in the cylinder (measure)."),
        Column("expected", "DOUBLE", "Expected cases under no space-time interaction (measure)."),
        Column("observed_over_expected", "DOUBLE", "Observed / expected."),
        Column("llr", "DOUBLE", "Log-likelihood ratio (the scan statistic)."),
        Column("p_value", "DOUBLE", "Monte Carlo p-value."),
        Column("recurrence_interval_days", "DOUBLE", "Days between chance clusters this strong (1 / p per day)."),
        Column("is_spike", "BOOLEAN", "p below the spike threshold of the run's configuration."),
    ),
)

ALERTS = OutputTable(
    "marts",
    "mart_overdose_alerts",
    "EARS C1, C2 and C3 on zero-filled daily non-fatal overdoses, one row per analysis day, area "
    "(each CSA and Baltimore City) and method.",
    (
        Column("analysis_date", "DATE", "Day evaluated."),
        Column("area", "VARCHAR", "CSA name, or 'Baltimore City'."),
        Column("area_type", "VARCHAR", "csa or city."),
        Column("method", "VARCHAR", "C1, C2 or C3."),
        Column("count", "INTEGER", "Non-fatal overdoses on the day (measure)."),
        Column("baseline_mean", "DOUBLE", "Mean of the 7-day baseline."),
        Column("baseline_sd", "DOUBLE", "Standard deviation of the baseline (floored)."),
        Column("statistic", "DOUBLE", "The method's statistic."),
        Column("threshold", "DOUBLE", "The method's alert threshold."),
        Column("is_alert", "BOOLEAN", "Statistic above threshold with enough events."),
    ),
)

CLUSTER_LOCATIONS = OutputTable(
    "restricted",
    "overdose_cluster_locations",
    "Case locations of each reported cluster (rounded points; restricted), used to follow a cluster "
    "from one analysis day to the next.",
    (
        Column("analysis_date", "DATE", "Analysis day of the cluster."),
        Column("rank", "INTEGER", "Rank of the cluster on that day (joins mart_overdose_clusters)."),
        Column("location", "VARCHAR", "Case location 'lat,lon' rounded to 4 decimals. Restricted."),
    ),
)

SURVEILLANCE_TABLES = (CLUSTERS, ALERTS, CLUSTER_LOCATIONS)
