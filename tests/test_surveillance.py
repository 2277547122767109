"""The scan statistic against SaTScan's own results, the CLI, and EARS on hand-computed series."""

import json
import math
import subprocess
import sys
from datetime import date, timedelta

import numpy as np
import pytest

from orchestration.surveillance.ears import EarsParameters, ears
from orchestration.surveillance.satscan_files import read_cas, read_geo
from orchestration.surveillance.scan import Cluster, ScanParameters, SpaceTimePermutationScan, reported_clusters
from tests.conftest import shared_file

SATSCAN = ("data", "satscan")


# SaTScan's own run reported cluster 4 with p = 0.999: exactly one of its 999 replicates had a
# maximum below that cluster's statistic, and none below the 5th candidate's, so its results file
# lists 4 clusters. That draw is luck (about one run in four or five, docs/surveillance.md). Seed
# 2004 is the first seed from 2001 up whose draw is in the same situation (cluster 4 at p = 0.999);
# with it the whole reported list must be SaTScan's. Seed 2001 draws no replicate below cluster 4,
# and the reporting rule must then stop after 3 (test below).
SATSCAN_LIKE_DRAW, NO_REPLICATE_BELOW_CLUSTER_4 = 2004, 2001


def _nyc_scan(seed: int) -> SpaceTimePermutationScan:
    expected = json.loads(shared_file(*SATSCAN, "NYCfever.expected.json").read_text())
    p = expected["parameters"]
    assert (p["start"], p["end"]) == ("2001/11/01", "2001/11/24")
    params = ScanParameters(
        max_days=p["max_temporal_days"],
        max_radius_km=p["max_radius_km"],
        min_cases=p["min_cases"],
        replications=p["replications"],
        seed=seed,
    )
    return SpaceTimePermutationScan(*_nyc_inputs(), params=params)


@pytest.fixture(scope="module")
def nyc():
    expected = json.loads(shared_file(*SATSCAN, "NYCfever.expected.json").read_text())
    return _nyc_scan(SATSCAN_LIKE_DRAW).run(), expected


def _assert_same_cluster(ours, theirs):
    assert ours.locations == sorted(theirs["locations"])
    assert (ours.start.strftime("%Y/%m/%d"), ours.end.strftime("%Y/%m/%d")) == (theirs["start"], theirs["end"])
    assert ours.observed == theirs["observed"]
    assert round(ours.expected, 2) == theirs["expected"]
    assert round(ours.llr, 4) == round(theirs["llr"], 4)
    assert round(ours.radius_km, 2) == theirs["radius_km"]


def test_ranked_candidates_match_satscan_exactly():
    expected = json.loads(shared_file(*SATSCAN, "NYCfever.expected.json").read_text())
    scan = _nyc_scan(SATSCAN_LIKE_DRAW)
    # cases dated inside the study period, summed straight from the .cas text (location, cases, date)
    in_period = [
        int(cases)
        for _, cases, day in (line.split() for line in shared_file(*SATSCAN, "NYCfever.cas").read_text().splitlines())
        if "2001/11/01" <= "/".join(f"{int(x):02d}" for x in day.split("/")) <= "2001/11/24"
    ]
    assert scan.total == sum(in_period) == 194
    candidates = scan.clusters()  # no Monte Carlo: the ranking alone
    assert len(candidates) > len(expected["clusters"])
    for ours, theirs in zip(candidates, expected["clusters"], strict=False):
        _assert_same_cluster(ours, theirs)


def test_reported_clusters_are_satscans_list(nyc):
    result, expected = nyc
    assert len(result.clusters) == len(expected["clusters"]) == 4
    for ours, theirs in zip(result.clusters, expected["clusters"], strict=True):
        _assert_same_cluster(ours, theirs)
    assert result.clusters[3].p_value == expected["clusters"][3]["p_value_approx"] == 0.999
    assert result.not_reported > 0


def test_reporting_stops_at_the_first_candidate_no_replicate_fell_below():
    scan = _nyc_scan(NO_REPLICATE_BELOW_CLUSTER_4)
    result = scan.run()
    candidates = scan.clusters()
    below = [int((result.replicate_maxima < c.llr).sum()) for c in candidates]
    assert below[3] == 0 and min(below[:3]) > 0
    assert [c.llr for c in result.clusters] == [c.llr for c in candidates[:3]]
    assert result.not_reported == len(candidates) - 3


def test_p_values_agree_within_monte_carlo_error(nyc):
    result, expected = nyc
    r = expected["parameters"]["replications"]
    for ours, theirs in zip(result.clusters, expected["clusters"], strict=True):
        p = theirs["p_value_approx"]
        tolerance = 4 * math.sqrt(max(p * (1 - p), 0.001) / r) + 1 / (r + 1)
        assert abs(ours.p_value - p) <= tolerance, (ours.locations, ours.p_value, p)
        assert ours.recurrence_interval_days == pytest.approx(1 / ours.p_value)


def _candidate(llr: float) -> Cluster:
    return Cluster(1, "a", 0.0, 0.0, ["a"], date(2024, 1, 1), date(2024, 1, 1), 3, 1.0, llr, 0.0)


def test_reporting_rule_on_hand_ranked_candidates():
    # ranks: 5.0 -> 1 + #{6} = 2; 3.0 -> 1 + #{4, 6} = 3; 2.0 -> 1 + #{2 (tie), 4, 6} = 4 <= R = 4;
    # 1.0 -> 1 + 4 = 5 > R, so it and everything after it are left out
    maxima = np.array([2.0, 1.5, 4.0, 6.0])
    reported = reported_clusters([_candidate(x) for x in (5.0, 3.0, 2.0, 1.0, 0.5)], maxima)
    assert [(c.llr, c.p_value) for c in reported] == [(5.0, 0.4), (3.0, 0.6), (2.0, 0.8)]
    # the most likely cluster is reported even when every replicate beat it
    only = reported_clusters([_candidate(1.0), _candidate(0.9)], np.array([2.0, 3.0]))
    assert [(c.llr, c.p_value) for c in only] == [(1.0, 1.0)]
    # without replications: no p-values, at most 10, none below SaTScan's 0.001 floor
    many = reported_clusters([_candidate(20.0 - i) for i in range(12)], np.zeros(0))
    assert len(many) == 10 and all(c.p_value is None for c in many)
    floor = reported_clusters([_candidate(1.0), _candidate(0.002), _candidate(0.0005)], np.zeros(0))
    assert [c.llr for c in floor] == [1.0, 0.002]


def test_the_monte_carlo_is_seeded_and_parallel_safe(nyc):
    result, _ = nyc
    scan_again = SpaceTimePermutationScan(
        *_nyc_inputs(),
        params=ScanParameters(max_days=7, max_radius_km=3.0, min_cases=2, replications=199, seed=5, workers=2),
    )
    first, second = scan_again.monte_carlo(), scan_again.monte_carlo()
    np.testing.assert_array_equal(first, second)
    serial = SpaceTimePermutationScan(
        *_nyc_inputs(),
        params=ScanParameters(max_days=7, max_radius_km=3.0, min_cases=2, replications=199, seed=5, workers=1),
    ).monte_carlo()
    np.testing.assert_array_equal(first, serial)


def _nyc_inputs():
    geo = read_geo(shared_file(*SATSCAN, "NYCfever.geo"))
    start, end = date(2001, 11, 1), date(2001, 11, 24)
    loc, day = read_cas(shared_file(*SATSCAN, "NYCfever.cas"), geo.ids, start)
    return geo.ids, geo.latitude, geo.longitude, loc, day, start, end


def _run_cli(cas, geo, start: str, end: str, out, *options: str) -> subprocess.CompletedProcess:
    command = ["scan", "--cas", str(cas), "--geo", str(geo), "--start", start, "--end", end, "--json", str(out)]
    return subprocess.run(
        [sys.executable, "-m", "orchestration.surveillance", *command, *options],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_reads_satscan_files_and_writes_ranked_json(tmp_path):
    out = tmp_path / "clusters.json"
    run = _run_cli(
        shared_file(*SATSCAN, "NYCfever.cas"),
        shared_file(*SATSCAN, "NYCfever.geo"),
        "2001/11/01",
        "2001/11/24",
        out,
        *("--max-radius-km", "3", "--min-cases", "2", "--replications", "99", "--seed", "7"),
    )
    assert run.returncode == 0, run.stderr
    clusters = json.loads(out.read_text())["clusters"]
    assert [c["rank"] for c in clusters] == list(range(1, len(clusters) + 1))
    first = clusters[0]
    assert set(first) >= {
        "locations",
        "start",
        "end",
        "observed",
        "expected",
        "llr",
        "p_value",
        "recurrence_interval_days",
        "radius_km",
        "center",
    }
    assert first["observed"] == 4 and first["start"] == "2001/11/22"
    assert json.loads(out.read_text())["candidates_not_reported"] > 0


@pytest.mark.parametrize(
    ("geo", "cas", "message"),
    [
        ("a 39.3 -76.6\nb 39.31 north\n", "a 1 2024/01/01\n", "geo line 2: latitude/longitude must be numbers"),
        ("a 39.3 -76.6\n", "a 1 2024/01/01\nz 2 2024/01/02\n", "cas line 2: location z is not in the coordinates"),
        ("a 39.3 -76.6\n", "a 1 2024/01/01\n\na x 2024/01/02\n", "cas line 3:"),
        ("a 39.3 -76.6\n", "a 1 2024/13/45\n", "cas line 1: unreadable date"),
    ],
)
def test_cli_names_the_bad_line(tmp_path, geo, cas, message):
    (tmp_path / "f.geo").write_text(geo)
    (tmp_path / "f.cas").write_text(cas)
    run = _run_cli(tmp_path / "f.cas", tmp_path / "f.geo", "2024/01/01", "2024/01/31", tmp_path / "o.json")
    assert run.returncode == 2
    assert message in run.stderr.replace("f.geo", "geo").replace("f.cas", "cas")


def test_ears_statistics_match_hand_computation():
    x = np.array([2] * 9 + [4, 4, 10])
    frame = ears(x, EarsParameters(min_sd=0.5, min_count=3))
    # C2 on day 9, 10 and 11: baseline days t-9..t-3 are all 2 (sd 0 -> floor 0.5)
    assert frame["C2"].iloc[9] == pytest.approx(4.0)
    assert frame["C2"].iloc[11] == pytest.approx(16.0)
    assert frame["C3"].iloc[11] == pytest.approx(3 + 3 + 15)
    # C1 on day 11: baseline days 4..10 = 2,2,2,2,2,4,4 -> mean 18/7, sample sd sqrt(40/42)
    assert frame["C1_mean"].iloc[11] == pytest.approx(18 / 7)
    assert frame["C1"].iloc[11] == pytest.approx((10 - 18 / 7) / math.sqrt(40 / 42))
    assert frame.loc[11, ["C1_alert", "C2_alert", "C3_alert"]].tolist() == [True, True, True]
    assert frame["C1"].iloc[:7].isna().all() and frame["C2"].iloc[:9].isna().all()


def test_ears_needs_a_minimum_count_to_alert():
    frame = ears(np.array([0] * 9 + [2]), EarsParameters(min_sd=0.5, min_count=3))
    assert frame["C1"].iloc[9] == pytest.approx(4.0)  # (2 - 0) / 0.5
    assert not frame["C1_alert"].iloc[9]


def test_ears_of_a_range_of_days_is_each_day_computed_alone():
    """A backfill computes EARS for all its days at once; each day must get what a run of that day
    alone writes (its 21 days, zero-filled, over the CSAs with rows in them), with the figures
    worked out by hand where the series are simple."""
    import duckdb
    import pandas as pd

    from orchestration.assets.surveillance import SurveillanceConfig, ears_for_days

    first = date(2024, 1, 1)
    rows = [(first + timedelta(days=d), "Alpha", 2) for d in range(40)]  # a flat 2 a day ...
    rows[30] = (rows[30][0], "Alpha", 10)  # ... and 10 on day 30
    rows += [(first, "Beta", 1)]  # one row, on the first day only
    rows += [(first + timedelta(days=d), None, 7) for d in (5, 6)]  # no CSA: counted nowhere
    rows += [(first + timedelta(days=70), "Alpha", 4)]  # after a month of no rows at all
    config = SurveillanceConfig()
    with duckdb.connect() as conn:
        conn.execute("create schema marts")
        conn.execute("create table marts.mart_overdose_daily (day date, csa varchar, nonfatal_overdoses integer)")
        conn.executemany("insert into marts.mart_overdose_daily values (?, ?, ?)", rows)
        last = first + timedelta(days=75)
        together = ears_for_days(conn, first, last, config)
        # days whose windows hold no row at all (before the data): nothing, not an error
        assert ears_for_days(conn, first - timedelta(days=60), first - timedelta(days=21), config).empty
        alone = pd.concat(
            [ears_for_days(conn, first + timedelta(days=d), first + timedelta(days=d), config) for d in range(76)],
            ignore_index=True,
        )
    key = ["analysis_date", "area", "method"]
    pd.testing.assert_frame_equal(
        together.sort_values(key).reset_index(drop=True),
        alone.sort_values(key).reset_index(drop=True),
        check_exact=True,
    )

    def row(day: int, area: str, method: str) -> dict:
        match = together[
            (together["analysis_date"] == first + timedelta(days=day))
            & (together["area"] == area)
            & (together["method"] == method)
        ]
        assert len(match) == 1, (day, area, method)
        return match.iloc[0].to_dict()

    # day 30: baseline days 23..29 all 2 (sd 0, floored at 0.5) -> C1 = (10 - 2) / 0.5
    spike = row(30, "Alpha", "C1")
    assert (spike["count"], spike["baseline_mean"], spike["statistic"], spike["is_alert"]) == (10, 2.0, 16.0, True)
    assert row(30, "Baltimore City", "C1")["count"] == 10  # the CSA-less rows are not the city's either
    assert row(5, "Baltimore City", "C1")["count"] == 2
    # Beta has a row in the 21 days ending on day 20, not in those ending on day 21
    assert row(20, "Beta", "C1")["count"] == 0
    areas = {d: set(g["area"]) for d, g in together.groupby("analysis_date")}
    assert "Beta" not in areas[first + timedelta(days=21)]
    # days 61..69 have no row in their 21 days: no alerts at all; day 70 has Alpha and the city again
    assert not any(first + timedelta(days=d) in areas for d in range(61, 70))
    assert areas[first + timedelta(days=70)] == {"Alpha", "Baltimore City"}
    assert row(70, "Alpha", "C1")["statistic"] == 8.0  # (4 - 0) / 0.5
