"""One analysis day's scan, from the study period's cases in memory (no database, no Dagster).

The asset reads the cases once for a whole range of analysis days and scans the days here: in
its own process for one day, in a pool of processes for a backfill. The days' scans are
independent (each has its own study period and its own seeded Monte Carlo); only following a
cluster from one day to the next needs the days in order, and the asset does that afterwards.
The cases are patient-level: they go to the worker processes through a pipe and come back as
clusters and cluster locations, never through files or logs.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from orchestration.surveillance.scan import ScanParameters, SpaceTimePermutationScan

# Columns of the cases frame: rounded point, local incident date, CSA and neighborhood
CASE_COLUMNS = ("lat", "lon", "incident_date", "csa", "neighborhood")


@dataclass(frozen=True)
class DayScan:
    """What a day's scan needs besides its cases."""

    study_days: int
    report_p: float
    spike_p: float
    params: ScanParameters


def study_period(day: date, study_days: int) -> tuple[date, date]:
    return day - timedelta(days=study_days - 1), day


def scan_cases(cases: pd.DataFrame, day: date, setup: DayScan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clusters (outreach columns) and their case locations for the study period ending on `day`.

    `cases` may hold more days than the study period; only the period's rows are used.
    """
    start, _ = study_period(day, setup.study_days)
    dates = pd.to_datetime(cases["incident_date"]).dt.date if len(cases) else pd.Series([], dtype=object)
    cases = cases[(dates >= start) & (dates <= day)].copy() if len(cases) else cases
    if cases.empty:
        return pd.DataFrame(), pd.DataFrame()
    cases["study_day"] = [(d - start).days for d in pd.to_datetime(cases["incident_date"]).dt.date]
    cases["location"] = cases["lat"].map("{:.4f}".format) + "," + cases["lon"].map("{:.4f}".format)
    locations = cases.drop_duplicates("location").reset_index(drop=True)
    index = {loc: i for i, loc in enumerate(locations["location"])}
    result = SpaceTimePermutationScan(
        list(locations["location"]),
        locations["lat"].to_numpy(float),
        locations["lon"].to_numpy(float),
        cases["location"].map(index).to_numpy(),
        cases["study_day"].to_numpy(),
        start,
        day,
        setup.params,
    ).run()
    rows, members = [], []
    for c in result.clusters:
        if c.p_value is None or c.p_value > setup.report_p:
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
                "is_spike": c.p_value < setup.spike_p,
            }
        )
        members += [{"analysis_date": day, "rank": c.rank, "location": loc} for loc in c.locations]
    return pd.DataFrame(rows), pd.DataFrame(members)


def _scan_one(args: tuple[pd.DataFrame, date, DayScan]) -> tuple[date, pd.DataFrame, pd.DataFrame]:
    cases, day, setup = args
    clusters, members = scan_cases(cases, day, setup)
    return day, clusters, members


def scan_days(
    cases: pd.DataFrame, days: list[date], setup: DayScan, processes: int
) -> Iterator[tuple[date, pd.DataFrame, pd.DataFrame]]:
    """Scan every day of `days`, yielding (day, clusters, members) in the order of `days`.

    With more than one day and `processes` > 1, the days are scanned by that many worker
    processes (spawned, so nothing of the parent's open database or threads is inherited);
    each receives only its study period's cases.
    """
    if processes <= 1 or len(days) <= 1:
        for day in days:
            yield _scan_one((cases, day, setup))
        return
    dates = pd.to_datetime(cases["incident_date"]).dt.date if len(cases) else pd.Series([], dtype=object)

    def jobs() -> Iterator[tuple[pd.DataFrame, date, DayScan]]:
        for day in days:
            start, _ = study_period(day, setup.study_days)
            yield (cases[(dates >= start) & (dates <= day)] if len(cases) else cases), day, setup

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        # map keeps the order of `days`; chunks amortize the pipe for short study periods
        yield from pool.map(_scan_one, jobs(), chunksize=4)
