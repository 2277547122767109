"""Checks on what the latest load put into a raw table.

A load writes its whole window in one transaction, so its rows share one `_loaded_at`: the
checks look at exactly the rows the run loaded. Blocking checks (schema, timestamps in the
window, coordinates in the city, key null rates) stop the run before dbt reads bad data;
duplicates (quarantined downstream), volume against the weekday median and freshness warn.
Each result carries the failing count, examples and the threshold.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from orchestration import settings, sql_rules
from orchestration.partitions import WRITER_POOL
from orchestration.raw_tables import CALLS, NALOXONE, RawTable


@dataclass(frozen=True)
class RawCheckSpec:
    table: RawTable
    key: str  # SQL: the record key
    local_time: str  # SQL: local wall-clock TIMESTAMP of the event (NULL when unparseable)
    latitude: str
    longitude: str
    # a duplicate: rows sharing `duplicate_key` for which `duplicate_when` (an aggregate) holds
    duplicate_key: str = ""
    duplicate_when: str = "count(*) > 1"
    null_thresholds: dict[str, float] = field(default_factory=dict)  # SQL column -> max share of NULL
    max_outside_city_share: float = 0.005
    max_outside_window_share: float = 0.0
    freshness_hours: float = 6.0  # newest event within this many hours of the end of the loaded window
    volume_band: tuple[float, float] = (0.5, 2.0)  # day count vs. same-weekday trailing median

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(["raw", self.table.name])


def _nullif_blank(column: str) -> str:
    return f"nullif(trim(cast({column} as varchar)), '')"


CALLS_SPEC = RawCheckSpec(
    table=CALLS,
    key='"recordId"',
    local_time=sql_rules.call_local_time('"callDateTime"'),
    latitude=sql_rules.coordinate('"latitude"'),
    longitude=sql_rules.coordinate('"longitude"'),
    null_thresholds={'"recordId"': 0.001, '"callDateTime"': 0.001, _nullif_blank('"description"'): 0.01},
    freshness_hours=6.0,
)
NALOXONE_SPEC = RawCheckSpec(
    table=NALOXONE,
    key='"Incident Number"',
    # several patients share an incident; an incident in two days' reports would be counted twice
    duplicate_key=_nullif_blank('"Incident Number"'),
    duplicate_when="count(distinct _partition_date) > 1",
    local_time=f"cast({sql_rules.ems_date()} as timestamp)",
    latitude=sql_rules.coordinate('"Incident Location Latitude"'),
    longitude=sql_rules.coordinate('"Incident Location Longitude"'),
    null_thresholds={
        _nullif_blank('"Incident Number"'): 0.001,
        _nullif_blank('"Incident Date"'): 0.001,
        sql_rules.coordinate('"Incident Location Latitude"'): 0.10,
    },
    max_outside_window_share=0.05,  # a report may carry a late entry from an earlier day
    freshness_hours=24.0,  # a day's report is dated, not timed: its newest incident is that day
)


def _latest(spec: RawCheckSpec) -> str:
    """The rows of the table's most recent load."""
    t = spec.table.qualified
    return f"(select * from {t} where _loaded_at = (select max(_loaded_at) from {t}))"


def _examples(conn: duckdb.DuckDBPyConnection, sql: str, limit: int = 5) -> list[str]:
    return [", ".join(str(v) for v in row) for row in conn.execute(f"{sql} limit {limit}").fetchall()]


def check_schema(conn, spec: RawCheckSpec) -> dg.AssetCheckResult:
    actual = dict(
        conn.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = ?",
            [spec.table.name],
        ).fetchall()
    )
    missing = [c for c, _ in spec.table.columns if c not in actual]
    retyped = [f"{c}: {actual[c]} (declared {t})" for c, t in spec.table.columns if c in actual and actual[c] != t]
    # a field renamed upstream arrives as a declared column that is empty in every row
    present = [c for c, _ in spec.table.columns if c in actual]
    rows, *filled = conn.execute(
        "select count(*)"
        + "".join(f", count({_nullif_blank(f'{chr(34)}{c}{chr(34)}')})" for c in present)
        + f" from {_latest(spec)}"
    ).fetchone()
    empty = [c for c, n in zip(present, filled, strict=True) if n == 0] if rows else []
    problems = missing + retyped + [f"{c}: empty in all {rows} rows (renamed upstream?)" for c in empty]
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={
            "failing_count": len(problems),
            "problems": dg.MetadataValue.json(problems),
            "threshold": "every declared column present, typed as declared, and not entirely empty",
        },
    )


def _share_outside(conn, rows_sql: str, outside: str, limit: float, **metadata) -> dg.AssetCheckResult:
    """Passes when the rows of `rows_sql` matching `outside` are at most `limit` of them (one scan)."""
    total, failing = conn.execute(f"select count(*), count(*) filter (where {outside}) from ({rows_sql})").fetchone()
    share = failing / total if total else 0.0
    return dg.AssetCheckResult(
        passed=share <= limit,
        metadata={
            "failing_count": failing,
            "rows_checked": total,
            "failing_share": share,
            "threshold": limit,
            **metadata,
            "examples": dg.MetadataValue.json(_examples(conn, f"select * from ({rows_sql}) where {outside}")),
        },
    )


def check_timestamps_in_window(conn, spec: RawCheckSpec) -> dg.AssetCheckResult:
    return _share_outside(
        conn,
        f"select {spec.key}, {spec.local_time} as local_time, _partition_date from {_latest(spec)}",
        "local_time is not null and cast(local_time as date) <> _partition_date",
        spec.max_outside_window_share,
    )


def check_coordinates_in_city(conn, spec: RawCheckSpec) -> dg.AssetCheckResult:
    variables = settings.dbt_vars()
    return _share_outside(
        conn,
        f"select {spec.key}, {spec.latitude} as lat, {spec.longitude} as lon from {_latest(spec)} "
        f"where {spec.latitude} is not null and {spec.longitude} is not null",
        f"not {sql_rules.inside_city('lat', 'lon')}",
        spec.max_outside_city_share,
        city_extent=dg.MetadataValue.json(variables["city_extent"]),
        margin_deg=float(variables["city_box_margin_deg"]),
    )


def check_key_null_rates(conn, spec: RawCheckSpec) -> dg.AssetCheckResult:
    columns = list(spec.null_thresholds)
    total, *nulls = conn.execute(
        "select count(*)"
        + "".join(f", count(*) filter (where {c} is null)" for c in columns)
        + f" from {_latest(spec)}"
    ).fetchone()
    rates, failing = {}, {}
    for column, null_rows in zip(columns, nulls, strict=True):
        limit = spec.null_thresholds[column]
        rate = null_rows / total if total else 0.0
        rates[column] = {"null_rows": null_rows, "null_rate": round(rate, 6), "threshold": limit}
        if rate > limit:
            failing[column] = rates[column]
    return dg.AssetCheckResult(
        passed=not failing,
        metadata={
            "failing_count": len(failing),
            "rows_checked": total,
            "failing_columns": dg.MetadataValue.json(failing),
            "threshold": dg.MetadataValue.json(spec.null_thresholds),
            "null_rates": dg.MetadataValue.json(rates),
        },
    )


def check_duplicate_keys(conn, spec: RawCheckSpec) -> dg.AssetCheckResult:
    """Keys loaded more than once across the whole table (they are quarantined downstream)."""
    t = spec.table.qualified
    key = spec.duplicate_key or spec.key
    dup_sql = (
        f"select {key} as key, count(*) as copies, list(distinct _partition_date) as days "
        f"from {t} where {key} is not null group by 1 having {spec.duplicate_when}"
    )
    duplicates = conn.execute(f"select count(*) from ({dup_sql})").fetchone()[0]
    return dg.AssetCheckResult(
        passed=duplicates == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "failing_count": duplicates,
            "threshold": 0,
            "examples": dg.MetadataValue.json(_examples(conn, dup_sql)),
        },
    )


def check_volume(conn, spec: RawCheckSpec) -> dg.AssetCheckResult:
    """Each loaded day's rows against the median of the same weekday over the 28 days before it."""
    t = spec.table.qualified
    lo, hi = spec.volume_band
    sql = f"""
        with daily as (select _partition_date as day, count(*) as n from {t} group by 1),
        loaded as (select distinct _partition_date as day from {_latest(spec)})
        select d.day, d.n, median(h.n) as median, count(h.n) as history
        from daily d join loaded using (day)
        left join daily h
            on isodow(h.day) = isodow(d.day) and h.day >= d.day - interval 28 day and h.day < d.day
        group by d.day, d.n
    """
    rows = conn.execute(sql).fetchall()
    judged = [(str(day), n, med) for day, n, med, history in rows if history >= 3 and med]
    flagged = [
        {"day": day, "rows": n, "weekday_median": med, "ratio": round(n / med, 3)}
        for day, n, med in judged
        # outside the band *and* more than 3 Poisson standard deviations away: a quiet feed's
        # ordinary day-to-day noise is not a drop
        if not lo <= n / med <= hi and abs(n - med) > 3 * med**0.5
    ]
    return dg.AssetCheckResult(
        passed=not flagged,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "failing_count": len(flagged),
            "days_judged": len(judged),
            "days_without_history": len(rows) - len(judged),
            "threshold": f"{lo} <= rows / same-weekday 28-day median <= {hi}, or within 3 sqrt(median)",
            "examples": dg.MetadataValue.json(flagged[:5]),
        },
    )


def check_freshness(conn, spec: RawCheckSpec) -> dg.AssetCheckResult:
    """The newest event of the loaded window is close to the window's end: the last day is complete."""
    latest = _latest(spec)
    newest, window_end = conn.execute(
        f"select max({spec.local_time}), max(_partition_date) + interval 1 day from {latest}"
    ).fetchone()
    lag = (window_end - newest).total_seconds() / 3600 if newest and window_end else None
    return dg.AssetCheckResult(
        passed=lag is not None and lag <= spec.freshness_hours,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "newest_record_local": str(newest),
            "window_end_local": str(window_end),
            "lag_hours": round(lag, 2) if lag is not None else -1,
            "threshold": spec.freshness_hours,
            "failing_count": 0 if lag is not None and lag <= spec.freshness_hours else 1,
        },
    )


CHECKS: dict[str, tuple[Callable, bool, str]] = {
    "schema_matches_declaration": (check_schema, True, "Declared columns present, typed, and not entirely empty."),
    "timestamps_inside_partition_window": (
        check_timestamps_in_window,
        True,
        "Each row's local date is its load partition's day.",
    ),
    "coordinates_inside_baltimore": (check_coordinates_in_city, True, "Points lie inside Baltimore's bounding box."),
    "key_null_rates_under_thresholds": (check_key_null_rates, True, "Key columns are rarely empty."),
    "no_duplicate_keys": (check_duplicate_keys, False, "No key was loaded twice (duplicates are quarantined)."),
    "row_count_near_weekday_median": (
        check_volume,
        False,
        "Each day's volume is near the same weekday's trailing 28-day median.",
    ),
    "newest_record_is_fresh": (check_freshness, False, "The newest record is close to the end of the loaded window."),
}


def build_raw_checks(spec: RawCheckSpec) -> list[dg.AssetChecksDefinition]:
    checks = []
    for name, (fn, blocking, description) in CHECKS.items():

        def _make(fn=fn):
            def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
                with duckdb.get_connection() as conn:
                    return fn(conn, spec)

            return _check

        checks.append(
            dg.asset_check(
                asset=spec.asset_key, name=name, blocking=blocking, description=description, pool=WRITER_POOL
            )(_make())
        )
    return checks


raw_checks = [*build_raw_checks(CALLS_SPEC), *build_raw_checks(NALOXONE_SPEC)]
