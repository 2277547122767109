"""The scan statistic against SaTScan's own results, the CLI, and EARS on hand-computed series."""

import json
import math
import subprocess
import sys
from datetime import date

import numpy as np
import pytest

from orchestration.surveillance.ears import EarsParameters, ears
from orchestration.surveillance.satscan_files import read_cas, read_geo
from orchestration.surveillance.scan import ScanParameters, SpaceTimePermutationScan
from tests.conftest import shared_file

SATSCAN = ("data", "satscan")


@pytest.fixture(scope="module")
def nyc():
    expected = json.loads(shared_file(*SATSCAN, "NYCfever.expected.json").read_text())
    geo = read_geo(shared_file(*SATSCAN, "NYCfever.geo"))
    p = expected["parameters"]
    start, end = (date(*map(int, p[k].split("/"))) for k in ("start", "end"))
    case_location, case_day = read_cas(shared_file(*SATSCAN, "NYCfever.cas"), geo.ids, start)
    params = ScanParameters(
        max_days=p["max_temporal_days"],
        max_radius_km=p["max_radius_km"],
        min_cases=p["min_cases"],
        replications=p["replications"],
        seed=2001,
    )
    scan = SpaceTimePermutationScan(geo.ids, geo.latitude, geo.longitude, case_location, case_day, start, end, params)
    return scan.run(), expected


def test_clusters_match_satscan_exactly(nyc):
    result, expected = nyc
    assert result.total_cases == 194
    for ours, theirs in zip(result.clusters, expected["clusters"], strict=False):
        assert ours.locations == sorted(theirs["locations"])
        assert (ours.start.strftime("%Y/%m/%d"), ours.end.strftime("%Y/%m/%d")) == (theirs["start"], theirs["end"])
        assert ours.observed == theirs["observed"]
        assert round(ours.expected, 2) == theirs["expected"]
        assert round(ours.llr, 4) == round(theirs["llr"], 4)
        assert round(ours.radius_km, 2) == theirs["radius_km"]
    assert len(result.clusters) >= len(expected["clusters"])


def test_p_values_agree_within_monte_carlo_error(nyc):
    result, expected = nyc
    r = expected["parameters"]["replications"]
    for ours, theirs in zip(result.clusters, expected["clusters"], strict=False):
        p = theirs["p_value_approx"]
        tolerance = 4 * math.sqrt(max(p * (1 - p), 0.001) / r) + 1 / (r + 1)
        assert abs(ours.p_value - p) <= tolerance, (ours.locations, ours.p_value, p)
        assert ours.recurrence_interval_days == pytest.approx(1 / ours.p_value)


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


def test_cli_reads_satscan_files_and_writes_ranked_json(tmp_path):
    out = tmp_path / "clusters.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestration.surveillance",
            "scan",
            "--cas",
            str(shared_file(*SATSCAN, "NYCfever.cas")),
            "--geo",
            str(shared_file(*SATSCAN, "NYCfever.geo")),
            "--start",
            "2001/11/01",
            "--end",
            "2001/11/24",
            "--max-radius-km",
            "3",
            "--min-cases",
            "2",
            "--replications",
            "99",
            "--seed",
            "7",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
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
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestration.surveillance",
            "scan",
            "--cas",
            str(tmp_path / "f.cas"),
            "--geo",
            str(tmp_path / "f.geo"),
            "--start",
            "2024/01/01",
            "--end",
            "2024/01/31",
            "--json",
            str(tmp_path / "o.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
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
