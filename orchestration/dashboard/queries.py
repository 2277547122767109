"""Every figure's numbers, as SQL on the published marts (the app only draws what these return).

Filters arrive as a `Filters`; `where()` renders them for the call fact joined to its dimensions,
`area_where()` for the neighborhood-grain overdose and naloxone marts (every area filter
applies there), `areas_csas()` for rates of whole CSAs. The call-category filter applies to
calls only: overdose figures are overdose calls and EMS naloxone administrations. Values are
bound as parameters, never pasted into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from orchestration.dashboard.data import query

CALLS = """
    marts.fct_calls_for_service as f
    join marts.dim_call_type as ct using (call_type_key)
    join marts.dim_geography as g using (geography_key)
"""
# indicators a user can set against overdose rates (mart_csa_profile column -> label)
INDICATORS = {
    "hardship_index": "Hardship index (NHP 2017)",
    "median_household_income": "Median household income (NHP 2017)",
    "unemployment_rate": "Unemployment rate, % (NHP 2017)",
    "pct_below_poverty_line": "Below the poverty line, % (NHP 2017)",
    "life_expectancy": "Life expectancy (NHP 2017)",
    "drug_alcohol_mortality_per_10k": "Drug and alcohol deaths per 10,000 (NHP 2017)",
    "vs_pct_vacant_abandoned": "Vacant and abandoned properties, % (Vital Signs 2017)",
}
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    categories: tuple[str, ...] = ()
    csas: tuple[str, ...] = ()
    zips: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()


def where(f: Filters) -> tuple[str, list]:
    """WHERE clause over the call fact and its dimensions (aliases f, ct, g)."""
    clauses, params = ["f.partition_date between ? and ?"], [f.start, f.end]
    for column, values in (
        ("ct.call_category", f.categories),
        ("g.csa", f.csas),
        ("g.zip_code", f.zips),
        ("g.police_district_code", f.districts),
    ):
        if values:
            clauses.append(f"{column} in ({', '.join('?' for _ in values)})")
            params += list(values)
    return " and ".join(clauses), params


def area_where(f: Filters, day_column: str = "day", monthly: bool = False) -> tuple[str, list]:
    """WHERE clause for the neighborhood-grain marts (mart_overdose_daily_by_area,
    mart_naloxone_outcomes_monthly): the days, or the months overlapping them (`monthly`), and
    every area filter."""
    clauses, params = [f"{day_column} between ? and ?"], [f.start.replace(day=1) if monthly else f.start, f.end]
    for column, values in (("csa", f.csas), ("zip_code", f.zips), ("police_district_code", f.districts)):
        if values:
            clauses.append(f"{column} in ({', '.join('?' for _ in values)})")
            params += list(values)
    return " and ".join(clauses), params


def areas_csas(f: Filters) -> tuple[str, list]:
    """A subquery of the CSAs the area filters reach (every CSA when none is set): rates per
    CSA are of whole CSAs, so a ZIP or district filter chooses CSAs rather than cutting them."""
    clauses, params = ["not is_unknown"], []
    for column, values in (("csa", f.csas), ("zip_code", f.zips), ("police_district_code", f.districts)):
        if values:
            clauses.append(f"{column} in ({', '.join('?' for _ in values)})")
            params += list(values)
    return f"(select distinct csa from marts.dim_geography where {' and '.join(clauses)})", params


def options() -> dict[str, list[str]]:
    """The filters' choices and the range of days the marts hold."""
    categories = query("select distinct call_category from marts.dim_call_type order by 1")["call_category"]
    geo = query("select distinct csa, zip_code, police_district_code from marts.dim_geography where not is_unknown")
    span = query("select min(partition_date) as first, max(partition_date) as last from marts.fct_calls_for_service")
    return {
        "categories": categories.tolist(),
        "csas": sorted(geo["csa"].dropna().unique().tolist()),
        "zips": sorted(geo["zip_code"].dropna().unique().tolist()),
        "districts": sorted(geo["police_district_code"].dropna().unique().tolist()),
        "first": span["first"].iloc[0],
        "last": span["last"].iloc[0],
    }


# 911 calls -------------------------------------------------------------------------------


def calls_total(f: Filters) -> int:
    clause, params = where(f)
    return int(query(f"select count(*) as n from {CALLS} where {clause}", params)["n"].iloc[0])


def calls_by(f: Filters, expression: str, label: str) -> pd.DataFrame:
    """Calls grouped by one expression of the fact (year, month, weekday, hour)."""
    clause, params = where(f)
    return query(
        f"select {expression} as {label}, count(*) as calls from {CALLS} where {clause} group by 1 order by 1", params
    )


def calls_by_category_year(f: Filters) -> pd.DataFrame:
    clause, params = where(f)
    return query(
        f"""select year(f.partition_date) as year, ct.call_category as category, count(*) as calls
            from {CALLS} where {clause} group by 1, 2 order by 1, 2""",
        params,
    )


def top_areas(f: Filters, column: str, limit: int = 10) -> pd.DataFrame:
    """The areas (g.zip_code or g.csa) with the most calls, most first."""
    clause, params = where(f)
    return query(
        f"""select {column} as area, count(*) as calls from {CALLS}
            where {clause} and not g.is_unknown group by 1 order by calls desc, area limit {int(limit)}""",
        params,
    )


# Overdoses -------------------------------------------------------------------------------


def overdose_series(f: Filters, grain: str) -> pd.DataFrame:
    """Overdose calls, naloxone administrations and non-fatal overdoses by day, week or month
    (every day of the range, zero where nothing happened)."""
    period = {"day": "day", "week": "date_trunc('week', day)", "month": "date_trunc('month', day)"}[grain]
    clause, params = area_where(f)
    return query(
        f"""with days as (select cast(unnest(generate_series(cast(? as date), cast(? as date), interval 1 day))
                                      as date) as day),
            events as (select day, sum(overdose_calls) as overdose_calls,
                              sum(naloxone_administrations) as naloxone_administrations,
                              sum(nonfatal_overdoses) as nonfatal_overdoses
                       from marts.mart_overdose_daily_by_area where {clause} group by 1)
            select cast({period} as date) as period, sum(coalesce(overdose_calls, 0)) as overdose_calls,
                   sum(coalesce(naloxone_administrations, 0)) as naloxone_administrations,
                   sum(coalesce(nonfatal_overdoses, 0)) as nonfatal_overdoses
            from days left join events using (day) group by 1 order by 1""",
        [f.start, f.end, *params],
    )


def overdose_totals(f: Filters) -> tuple[int, int]:
    """Overdose calls and naloxone administrations over the chosen days and areas."""
    clause, params = area_where(f)
    row = query(
        f"""select coalesce(sum(overdose_calls), 0) as calls, coalesce(sum(naloxone_administrations), 0) as naloxone
            from marts.mart_overdose_daily_by_area where {clause}""",
        params,
    ).iloc[0]
    return int(row["calls"]), int(row["naloxone"])


def overdoses_by_weekday(f: Filters) -> pd.DataFrame:
    clause, params = area_where(f)
    return query(
        f"""select isodow(day) as weekday, sum(overdose_calls) as overdose_calls,
                   sum(naloxone_administrations) as naloxone_administrations
            from marts.mart_overdose_daily_by_area where {clause} group by 1 order by 1""",
        params,
    )


def overdoses_by(f: Filters, column: str) -> pd.DataFrame:
    """Overdose calls, naloxone administrations and non-fatal overdoses by CSA or ZIP, most first."""
    if column not in ("csa", "zip_code"):
        raise ValueError(f"overdoses are grouped by csa or zip_code, not {column!r}")
    clause, params = area_where(f)
    return query(
        f"""select {column} as area, sum(overdose_calls) as overdose_calls,
                   sum(naloxone_administrations) as naloxone_administrations,
                   sum(nonfatal_overdoses) as nonfatal_overdoses
            from marts.mart_overdose_daily_by_area where {clause} and {column} is not null and csa <> 'Unknown'
            group by 1 order by naloxone_administrations desc, overdose_calls desc, area""",
        params,
    )


def naloxone_outcomes(f: Filters, by: str) -> pd.DataFrame:
    """Naloxone administrations by response, per month (`by` = month) or per CSA (`by` = csa),
    in the months overlapping the chosen days."""
    clause, params = area_where(f, "month_start", monthly=True)
    group = "month_start" if by == "month" else "csa"
    return query(
        f"""select {group} as key, medication_response, sum(administrations) as administrations
            from marts.mart_naloxone_outcomes_monthly where {clause} group by 1, 2 order by 1, 2""",
        params,
    )


# Neighborhood health ---------------------------------------------------------------------


def csa_health(f: Filters) -> pd.DataFrame:
    """Each CSA's NHP and Vital Signs indicators beside its rates over the chosen days: calls
    (of the chosen categories), overdose calls and non-fatal overdoses per 1,000 residents per
    year (2010 population), for the CSAs the area filters reach."""
    calls_clause, calls_params = where(Filters(f.start, f.end, f.categories))
    events_clause, events_params = area_where(Filters(f.start, f.end))
    areas, area_params = areas_csas(f)
    years = ((f.end - f.start).days + 1) / 365.25
    indicators = ", ".join(f"p.{column}" for column in INDICATORS)
    return query(
        f"""with calls as (select g.csa, count(*) as calls from {CALLS} where {calls_clause} group by 1),
                 events as (select csa, sum(overdose_calls) as overdose_calls,
                                   sum(nonfatal_overdoses) as nonfatal_overdoses
                            from marts.mart_overdose_daily_by_area where {events_clause} group by 1)
            select p.csa, p.population, {indicators},
                   coalesce(c.calls, 0) as calls,
                   coalesce(e.overdose_calls, 0) as overdose_calls,
                   coalesce(e.nonfatal_overdoses, 0) as nonfatal_overdoses,
                   round(coalesce(c.calls, 0) * 1000.0 / p.population / {years}, 2) as calls_per_1000_per_year,
                   round(coalesce(e.overdose_calls, 0) * 1000.0 / p.population / {years}, 2)
                       as overdose_calls_per_1000_per_year,
                   round(coalesce(e.nonfatal_overdoses, 0) * 1000.0 / p.population / {years}, 2)
                       as nonfatal_overdoses_per_1000_per_year
            from marts.mart_csa_profile as p
            left join calls as c using (csa)
            left join events as e using (csa)
            where p.population > 0 and p.csa in {areas}
            order by p.csa""",
        [*calls_params, *events_params, *area_params],
    )


# Surveillance ----------------------------------------------------------------------------


def analysis_days() -> list[date]:
    days = query("select distinct analysis_date from marts.mart_overdose_clusters order by 1 desc")
    return days["analysis_date"].dt.date.tolist() if len(days) else []


def clusters(analysis_date: date) -> pd.DataFrame:
    return query(
        """select rank, status, days_active, first_detected, start_date, end_date, observed,
                  round(expected, 2) as expected, round(observed_over_expected, 2) as observed_over_expected,
                  p_value, round(recurrence_interval_days, 1) as recurrence_interval_days, is_spike,
                  center_latitude, center_longitude, radius_km, csas, neighborhoods, cluster_id
           from marts.mart_overdose_clusters where analysis_date = ? order by rank""",
        [analysis_date],
    )


def alerts(analysis_date: date) -> pd.DataFrame:
    return query(
        """select area, area_type, method, count, round(baseline_mean, 2) as baseline_mean,
                  round(statistic, 2) as statistic, threshold
           from marts.mart_overdose_alerts where analysis_date = ? and is_alert order by area_type, area, method""",
        [analysis_date],
    )


def citywide_30_days(analysis_date: date) -> pd.DataFrame:
    return query(
        """select day, sum(nonfatal_overdoses) as nonfatal_overdoses,
                  sum(naloxone_administrations) as naloxone_administrations
           from marts.mart_overdose_daily where day between ? - interval 29 day and ? group by 1 order by 1""",
        [analysis_date, analysis_date],
    )


def csa_month_heatmap(f: Filters) -> pd.DataFrame:
    """Non-fatal overdoses by CSA and month over the chosen days (every area filter applies)."""
    clause, params = area_where(f)
    return query(
        f"""select cast(date_trunc('month', day) as date) as month, csa, sum(nonfatal_overdoses) as nonfatal_overdoses
            from marts.mart_overdose_daily_by_area where {clause} and csa <> 'Unknown' group by 1, 2 order by 1, 2""",
        params,
    )


def cluster_log(start: date, end: date) -> pd.DataFrame:
    """Every cluster reported on an analysis day in the range (the historical cluster log)."""
    return query(
        """select analysis_date, rank, status, first_detected, days_active, observed, round(expected, 2) as expected,
                  p_value, is_spike, csas
           from marts.mart_overdose_clusters where analysis_date between ? and ? order by analysis_date desc, rank""",
        [start, end],
    )


def boundaries(layer: str = "csa") -> pd.DataFrame:
    return query("select name, geometry_wkt from marts.dim_boundaries where layer = ? order by name", [layer])
