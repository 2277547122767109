"""Checks on a raw load: blocking ones judge its rows before its transaction commits.

A raw asset replaces its days of `raw.<table>` inside one transaction (see
`orchestration.warehouse`), runs the blocking checks (schema, timestamps in the window,
coordinates in the city, key null rates) on exactly those rows, and commits only if all pass;
then the warning checks (duplicates across the table, volume against the weekday median,
freshness) judge the run's own days in
`raw.<table>`, never "the newest load" (two runs can interleave). Each result carries the
failing count, examples and the threshold. Examples name rows by `spec.example_columns`: for the
EMS feed that is (source file, row number) only, so no patient value reaches run history.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import dagster as dg
import duckdb

from orchestration import settings, sql_rules
from orchestration.raw_tables import CALLS, NALOXONE, RawTable


@dataclass(frozen=True)
class RawCheckSpec:
    table: RawTable
    key: str  # SQL: the record key
    local_time: str  # SQL: local wall-clock TIMESTAMP of the event (NULL when unparseable)
    latitude: str
    longitude: str
    # (column, rule): `local_time` is rule(column) and never decreases in the column (epoch
    # instants in milliseconds), which lets the window check evaluate the rule on two rows a day
    local_time_order: tuple[str, Callable[[str], str]] | None = None
    # SQL columns that identify a row in examples (never patient values)
    example_columns: tuple[str, ...] = ()
    # a duplicate: rows sharing `duplicate_key` for which `duplicate_when` (an aggregate) holds
    duplicate_key: str = ""
    duplicate_when: str = "count(*) > 1"
    null_thresholds: dict[str, float] = field(default_factory=dict)  # SQL column -> max share of NULL
    max_outside_city_share: float = 0.005
    max_outside_window_share: float = 0.0
    freshness_hours: float = 6.0  # newest event within this many hours of the end of the loaded window
    volume_band: tuple[float, float] = (0.5, 2.0)  # day count vs. same-weekday trailing median

    def __post_init__(self) -> None:
        if self.local_time_order is not None:
            column, rule = self.local_time_order
            if rule(column) != self.local_time:
                raise ValueError(f"{self.table.name}: local_time is not the ordering rule applied to {column}")

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(["raw", self.table.name])

    @property
    def examples_sql(self) -> str:
        return ", ".join(self.example_columns or (self.key,))


def _nullif_blank(column: str) -> str:
    return f"nullif(trim(cast({column} as varchar)), '')"


CALLS_SPEC = RawCheckSpec(
    table=CALLS,
    key='"recordId"',
    local_time=sql_rules.call_local_time('"callDateTime"'),
    local_time_order=('"callDateTime"', sql_rules.call_local_time),
    latitude=sql_rules.coordinate('"latitude"'),
    longitude=sql_rules.coordinate('"longitude"'),
    example_columns=('"recordId"', "_source_row"),
    null_thresholds={'"recordId"': 0.001, '"callDateTime"': 0.001, _nullif_blank('"description"'): 0.01},
    freshness_hours=6.0,
)
NALOXONE_SPEC = RawCheckSpec(
    table=NALOXONE,
    key='"Incident Number"',
    # a patient's incident number is PHI: examples say where the row is, not what it says
    example_columns=("_source", "_source_row"),
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


def run_rows(spec: RawCheckSpec, start: date, end: date) -> str:
    """SQL relation of the rows of `raw.<table>` in the run's days."""
    return f"(select * from {spec.table.qualified} where _partition_date between '{start}' and '{end}')"


def _examples(conn: duckdb.DuckDBPyConnection, sql: str, limit: int = 5) -> list[str]:
    """The first `limit` rows of `sql` by their values: the same examples for the same rows,
    whatever order a load inserted them in (`warehouse.load_transaction` does not keep it)."""
    rows = conn.execute(f"select * from ({sql}) order by all limit {limit}").fetchall()
    return [", ".join(str(v) for v in row) for row in rows]


def _result(name: str, spec: RawCheckSpec, passed: bool, metadata: dict, warn: bool = False) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=spec.asset_key,
        check_name=name,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
    )


def check_schema(conn, spec: RawCheckSpec, rows: str) -> dg.AssetCheckResult:
    actual = dict(
        conn.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = ?",
            [spec.table.name],
        ).fetchall()
    )
    missing = [c for c, _ in spec.table.columns if c not in actual]
    retyped = [f"{c}: {actual[c]} (declared {t})" for c, t in spec.table.columns if c in actual and actual[c] != t]
    # a field renamed upstream arrives as a declared column that is empty in every row; a column
    # is filled as soon as one row has a value, so each probe stops at its first hit
    present = [c for c, _ in spec.table.columns if c in actual]
    total = conn.execute(f"select count(*) from {rows}").fetchone()[0]
    empty = [
        c
        for c in present
        if total
        and not conn.execute(
            f"select 1 from {rows} where {_nullif_blank(chr(34) + c + chr(34))} is not null limit 1"
        ).fetchone()
    ]
    problems = missing + retyped + [f"{c}: empty in all {total} rows (renamed upstream?)" for c in empty]
    return _result(
        "schema_matches_declaration",
        spec,
        not problems,
        {
            "failing_count": len(problems),
            "problems": dg.MetadataValue.json(problems),
            "threshold": "every declared column present, typed as declared, and not entirely empty",
        },
    )


def _share_outside(
    conn, name: str, spec: RawCheckSpec, rows_sql: str, outside: str, limit: float, total: int | None = None, **metadata
) -> dg.AssetCheckResult:
    """Passes when the rows of `rows_sql` matching `outside` are at most `limit` of them (one scan);
    `total`, when given, is what the share is taken of (`rows_sql` then holds only suspect rows)."""
    counted, failing = conn.execute(f"select count(*), count(*) filter (where {outside}) from ({rows_sql})").fetchone()
    total = counted if total is None else total
    share = failing / total if total else 0.0
    # examples only when some row fails: their query reads every row again (ordered, it cannot stop at five)
    examples = _examples(conn, f"select {spec.examples_sql} from ({rows_sql}) where {outside}") if failing else []
    return _result(
        name,
        spec,
        share <= limit,
        {
            "failing_count": failing,
            "rows_checked": total,
            "failing_share": share,
            "threshold": limit,
            **metadata,
            "examples": dg.MetadataValue.json(examples),
        },
    )


def check_timestamps_in_window(conn, spec: RawCheckSpec, rows: str) -> dg.AssetCheckResult:
    """Each row's local date is its partition's day.

    Where the local time never decreases in a column (`local_time_order`, epoch instants), a day
    whose earliest and latest rows fall on it has every row on it: the rule is then evaluated on
    two rows a day, and row by row only on the days that fail that (ten years: 7,000 evaluations
    instead of 13 million). The count and examples are the same as a row-by-row scan's.
    """
    outside = "_local_time is not null and cast(_local_time as date) <> _partition_date"
    judged, total = rows, None
    if spec.local_time_order:
        order, rule = spec.local_time_order
        at = {bound: rule(bound) for bound in ("lo", "hi")}  # the rule on each day's first and last instant
        total, suspect = conn.execute(
            f"""select coalesce(sum(n), 0)::BIGINT, coalesce(list(day) filter (where not ok), []) from (
                select _partition_date as day, n,
                  coalesce(cast({at["lo"]} as date) = _partition_date, true)
                  and coalesce(cast({at["hi"]} as date) = _partition_date, true) as ok
                from (select _partition_date, min({order}) as lo, max({order}) as hi, count(*) as n
                      from {rows} group by 1))"""
        ).fetchone()
        days = ", ".join(f"DATE '{d}'" for d in suspect) or "NULL"
        judged = f"(select * from {rows} where _partition_date in ({days}))"
    return _share_outside(
        conn,
        "timestamps_inside_partition_window",
        spec,
        f"select *, {spec.local_time} as _local_time from {judged}",
        outside,
        spec.max_outside_window_share,
        total=total,
    )


def check_coordinates_in_city(conn, spec: RawCheckSpec, rows: str) -> dg.AssetCheckResult:
    variables = settings.dbt_vars()
    return _share_outside(
        conn,
        "coordinates_inside_baltimore",
        spec,
        f"select *, {spec.latitude} as _lat, {spec.longitude} as _lon from {rows} "
        f"where {spec.latitude} is not null and {spec.longitude} is not null",
        f"not {sql_rules.inside_city('_lat', '_lon')}",
        spec.max_outside_city_share,
        city_extent=dg.MetadataValue.json(variables["city_extent"]),
        margin_deg=float(variables["city_box_margin_deg"]),
    )


# a null rate above its limit fails only when chance would rarely give that many empty values
NULL_RATE_SIGNIFICANCE = 0.001


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): how likely `k` or more empty values are among `n` rows
    when each is empty with probability `p`. Summed from k upward until the terms vanish."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if k <= n * p:  # at or below the mean: not improbable
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k, n + 1):
        term = math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
        total += term
        if term < 1e-15 * total:
            break
    return min(1.0, total)


def check_key_null_rates(conn, spec: RawCheckSpec, rows: str) -> dg.AssetCheckResult:
    """Each key column's share of empty values against its limit. A small load is judged by how
    improbable its count is under the limit, so one missing point among a day's nine EMS rows
    (11%) is not a broken feed, while five of nine is."""
    columns = list(spec.null_thresholds)
    total, *nulls = conn.execute(
        "select count(*)" + "".join(f", count(*) filter (where {c} is null)" for c in columns) + f" from {rows}"
    ).fetchone()
    rates, failing = {}, {}
    for column, null_rows in zip(columns, nulls, strict=True):
        limit = spec.null_thresholds[column]
        rate = null_rows / total if total else 0.0
        chance = binomial_upper_tail(null_rows, total, limit)
        rates[column] = {
            "null_rows": null_rows,
            "null_rate": round(rate, 6),
            "threshold": limit,
            "chance_at_threshold": round(chance, 6),
        }
        if rate > limit and chance < NULL_RATE_SIGNIFICANCE:
            failing[column] = rates[column]
    return _result(
        "key_null_rates_under_thresholds",
        spec,
        not failing,
        {
            "failing_count": len(failing),
            "rows_checked": total,
            "failing_columns": dg.MetadataValue.json(failing),
            "threshold": dg.MetadataValue.json(spec.null_thresholds),
            "null_rates": dg.MetadataValue.json(rates),
        },
    )


def check_duplicate_keys(conn, spec: RawCheckSpec, start: date, end: date) -> dg.AssetCheckResult:
    """Keys of the run's days loaded more than once across the whole table (quarantined downstream)."""
    t = spec.table.qualified
    key = spec.duplicate_key or spec.key
    where = f"{key} in (select {key} from {run_rows(spec, start, end)})"
    # a run over every day the table holds (a full build) needs no filter: every key is the
    # run's (semi-joining ten years of calls to themselves cost 1.2 s of 2.8 s)
    # (`exists` stops at the first such row: a one-day run finds one at once, where counting them
    # read ten years' dates, 0.43 s cold)
    outside = conn.execute(
        f"select exists (select 1 from {t} where _partition_date is null or _partition_date not between ? and ?)",
        [start, end],
    ).fetchone()[0]
    if not outside:
        where = "true"
    # the duplicated keys first (a plain group-by); lists of where their copies are only for those
    dup_keys = (
        f"select {key} as key from {t} where {key} is not null and {where} group by 1 having {spec.duplicate_when}"
    )
    duplicates = conn.execute(f"select count(*) from ({dup_keys})").fetchone()[0]
    dup_sql = (
        f"select {key} as key, list(concat_ws(':', {spec.examples_sql})) as rows_, "
        f"list(distinct cast(_partition_date as varchar) order by cast(_partition_date as varchar)) as days "
        f"from {t} where {key} in (select key from ({dup_keys}) limit 5) group by 1"
    )
    return _result(
        "no_duplicate_keys",
        spec,
        duplicates == 0,
        {
            "failing_count": duplicates,
            "threshold": 0,
            # where the copies are, not which key (an EMS key is PHI)
            "examples": dg.MetadataValue.json(
                _examples(conn, f"select rows_, days from ({dup_sql})") if duplicates else []
            ),
        },
        warn=True,
    )


def check_volume(conn, spec: RawCheckSpec, start: date, end: date) -> dg.AssetCheckResult:
    """Each of the run's days against the median of the same weekday over the 28 days before it.

    A day of the run with no rows counts as 0 (an empty feed is the drop this check is for).
    """
    t = spec.table.qualified
    lo, hi = spec.volume_band
    sql = f"""
        with daily as (select _partition_date as day, count(*) as n from {t} group by 1),
        run_days as (select cast(range as date) as day from range(date '{start}', date '{end}' + interval 1 day,
            interval 1 day))
        select r.day, coalesce(d.n, 0) as n, median(h.n) as median, count(h.n) as history
        from run_days r left join daily d using (day)
        left join daily h
            on isodow(h.day) = isodow(r.day) and h.day >= r.day - interval 28 day and h.day < r.day
        group by r.day, d.n
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
    return _result(
        "row_count_near_weekday_median",
        spec,
        not flagged,
        {
            "failing_count": len(flagged),
            "days_judged": len(judged),
            "days_without_history": len(rows) - len(judged),
            "threshold": f"{lo} <= rows / same-weekday 28-day median <= {hi}, or within 3 sqrt(median)",
            "examples": dg.MetadataValue.json(flagged[:5]),
        },
        warn=True,
    )


# the most a local UTC offset changes within a time zone (a DST change), with an hour to spare, in
# the unit of `local_time_order`'s column (epoch milliseconds)
LOCAL_OFFSET_SPREAD_MS = 2 * 3600 * 1000


def check_freshness(conn, spec: RawCheckSpec, start: date, end: date) -> dg.AssetCheckResult:
    """The newest event of the run's days is close to the end of the window: the last day is complete.

    Where the local time follows an instant column (`local_time_order`), only rows within
    LOCAL_OFFSET_SPREAD_MS of the newest instant can hold the newest local time (the UTC offset
    varies by one hour at most, at a DST change), so the rule is evaluated on those rows and not
    on every row of the window (13 million at ten years).
    """
    rows = run_rows(spec, start, end)
    if spec.local_time_order:
        order, _ = spec.local_time_order
        rows = f"(select * from {rows} where {order} >= (select max({order}) from {rows}) - {LOCAL_OFFSET_SPREAD_MS})"
    newest = conn.execute(f"select max({spec.local_time}) from {rows}").fetchone()[0]
    window_end = datetime.combine(end + timedelta(days=1), time(0))
    lag = (window_end - newest).total_seconds() / 3600 if newest else None
    return _result(
        "newest_record_is_fresh",
        spec,
        lag is not None and lag <= spec.freshness_hours,
        {
            "newest_record_local": str(newest),
            "window_end_local": str(window_end),
            "lag_hours": round(lag, 2) if lag is not None else -1,
            "threshold": spec.freshness_hours,
            "failing_count": 0 if lag is not None and lag <= spec.freshness_hours else 1,
        },
        warn=True,
    )


# name -> (function, blocking, description). Blocking checks take the load's rows inside its
# transaction; the others the run's days once committed.
BLOCKING: dict[str, tuple[Callable, str]] = {
    "schema_matches_declaration": (check_schema, "Declared columns present, typed, and not entirely empty."),
    "timestamps_inside_partition_window": (
        check_timestamps_in_window,
        "Each row's local date is its load partition's day.",
    ),
    "coordinates_inside_baltimore": (check_coordinates_in_city, "Points lie inside Baltimore's box."),
    "key_null_rates_under_thresholds": (check_key_null_rates, "Key columns are rarely empty."),
}
WARNINGS: dict[str, tuple[Callable, str]] = {
    "no_duplicate_keys": (check_duplicate_keys, "No key was loaded twice (duplicates are quarantined)."),
    "row_count_near_weekday_median": (
        check_volume,
        "Each day's volume (0 for a day without rows) is near the same weekday's trailing 28-day median.",
    ),
    "newest_record_is_fresh": (check_freshness, "The newest record is close to the end of the loaded window."),
}


def check_specs(spec: RawCheckSpec) -> list[dg.AssetCheckSpec]:
    """The checks a raw asset evaluates itself (blocking ones before its rows replace anything)."""
    return [
        dg.AssetCheckSpec(name, asset=spec.asset_key, blocking=True, description=d) for name, (_, d) in BLOCKING.items()
    ] + [
        dg.AssetCheckSpec(name, asset=spec.asset_key, blocking=False, description=d)
        for name, (_, d) in WARNINGS.items()
    ]


def audit_staged(conn, spec: RawCheckSpec, rows: str) -> list[dg.AssetCheckResult]:
    """The blocking checks on a load's rows, before its transaction commits."""
    return [fn(conn, spec, rows) for fn, _ in BLOCKING.values()]


def audit_loaded(conn, spec: RawCheckSpec, start: date, end: date) -> list[dg.AssetCheckResult]:
    """The warning checks on the run's days once they are in `raw.<table>`."""
    return [fn(conn, spec, start, end) for fn, _ in WARNINGS.values()]
