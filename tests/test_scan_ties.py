"""The scan's ties resolved as SaTScan's source resolves them, on sets built so the answer is known
by hand; Cartesian coordinates with the radius in the file's units.

Rules (scanstatistics/satscan, calculation/): equidistant neighbours enter a circle lesser
coordinates first (CompareIdentifierDistance); a centre keeps the first cylinder reaching its
best statistic, windows shortest first (CClusterSet::update, TemporalDataEvaluator); equal
statistics rank by fewer locations, then the lesser index of the most central location, indexes
being name order (CompareClustersRatios, IdentifiersManager). The circle's radius is not a
tie-breaker for one coordinate per location.
"""

from datetime import date, timedelta

import numpy as np

from orchestration.surveillance.scan import CARTESIAN, ScanParameters, SpaceTimePermutationScan

START = date(2024, 1, 1)
END = START + timedelta(days=29)  # 30 days
FEET = ScanParameters(max_days=7, max_radius_km=1000.0, min_cases=2, replications=0, coordinates=CARTESIAN)


def _scan(sites: dict[str, tuple[float, float]], cases: list[tuple[str, int]], params=FEET):
    """sites: name -> (x, y) in feet; cases: (site, day index) one entry per case. Ten background
    sites a million feet apart carry one case a day, so every window has cases elsewhere."""
    background = {f"bg{i:02d}": (1_000_000.0 * (i + 1), 5_000_000.0) for i in range(10)}
    everything = {**sites, **background}
    ids = list(everything)
    x = np.array([everything[i][0] for i in ids])
    y = np.array([everything[i][1] for i in ids])
    rows = cases + [(b, d) for b in background for d in range(30)]
    location = np.array([ids.index(s) for s, _ in rows])
    day = np.array([d for _, d in rows])
    return SpaceTimePermutationScan(ids, x, y, location, day, START, END, params)


def test_equal_statistics_rank_by_the_most_central_locations_name_not_by_radius():
    """Two pairs with the same cases on the last day: the same statistic, two locations each.
    The 'zeta' pair is tighter (300 ft) and listed first; SaTScan ranks the 'alpha' pair (800 ft)
    first, because 'alpha' < 'zeta' by name."""
    sites = {
        "zeta": (0.0, 0.0),
        "zeta2": (300.0, 0.0),
        "alpha": (100_000.0, 0.0),
        "alpha2": (100_800.0, 0.0),
    }
    cases = [(s, 29) for s in sites for _ in range(2)]  # two cases each, on the last day
    clusters = _scan(sites, cases).clusters()
    assert [(c.center, c.locations) for c in clusters[:2]] == [
        ("alpha", ["alpha", "alpha2"]),
        ("zeta", ["zeta", "zeta2"]),
    ]
    assert clusters[0].llr == clusters[1].llr
    assert (clusters[0].radius_km, clusters[1].radius_km) == (800.0, 300.0)  # feet: the file's units


def test_a_circle_that_adds_only_case_free_locations_loses_to_the_smaller_one():
    """'hot' has the cases; 'cold' (200 ft away, no case) reaches the same statistic only with
    'hot' inside. The one-location circle ranks first; the other overlaps it and is dropped."""
    sites = {"cold": (0.0, 0.0), "hot": (200.0, 0.0)}
    clusters = _scan(sites, [("hot", 29)] * 4).clusters()
    assert [(c.center, c.locations, c.radius_km) for c in clusters[:1]] == [("hot", ["hot"], 0.0)]
    assert all("hot" not in c.locations for c in clusters[1:])


def test_windows_with_the_same_counts_resolve_to_the_shortest():
    """No case anywhere on the six days before the last: windows of 1..7 days hold the same cases
    and the same expected count, so the statistic ties and SaTScan keeps the 1-day window."""
    sites = {"hot": (0.0, 0.0)}
    scan = _scan(sites, [("hot", 29)] * 4)
    quiet = (scan.case_day >= 23) & (scan.case_day <= 28)
    scan.case_day = np.where(quiet, 10, scan.case_day)  # background of days 23..28 moved back
    scan.window_totals = np.array([(scan.case_day >= d).sum() for d in scan.first_window_day], dtype=float)
    scan.expected = scan.circle_cases[:, :, None] * scan.window_totals[None, None, :] / scan.total
    assert len(set(scan.window_totals)) == 1  # every window has the same total
    [top, *_] = scan.clusters()
    assert (top.center, top.start, top.end) == ("hot", END, END)


def test_equidistant_neighbours_enter_lesser_coordinates_first_then_by_name():
    """'zz' (x = -100), the twins (x = 0, y = 100) and 'aa' (x = +100) are all 100 ft from 'm':
    they enter by x, then y, whatever the input order or the names; the twins, at the same
    point, by name."""
    sites = {"m": (0.0, 0.0), "aa": (100.0, 0.0), "zz": (-100.0, 0.0), "twin_b": (0.0, 100.0), "twin_a": (0.0, 100.0)}
    scan = _scan(sites, [("zz", 29)] * 3)
    m = scan.ids.index("m")
    first = [scan.ids[i] for i in scan.neighbors[m, :5]]
    assert first == ["m", "zz", "twin_a", "twin_b", "aa"]


def _cli(*arguments: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "orchestration.surveillance", "scan", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cartesian_coordinates_use_the_files_units_for_the_radius(tmp_path):
    """BCHD's set-up: Maryland State Plane feet, radius 3,960 ft. Two sites 3,960 ft apart share a
    circle at radius 3960 and not at 3959."""
    (tmp_path / "f.geo").write_text(
        "a 1400000 580000\nb 1403960 580000\n" + "".join(f"bg{i} {1_500_000 + 50_000 * i} 600000\n" for i in range(8))
    )
    cases = ["a 2 2024/01/30", "b 2 2024/01/30"] + [f"bg{i} 1 2024/01/{d:02d}" for i in range(8) for d in range(1, 31)]
    (tmp_path / "f.cas").write_text("\n".join(cases) + "\n")
    common = ["--cas", str(tmp_path / "f.cas"), "--geo", str(tmp_path / "f.geo"), "--start", "2024/01/01"]
    common += ["--end", "2024/01/30", "--coordinates", "cartesian", "--min-cases", "2", "--replications", "0"]
    import json

    for radius, expected in (("3960", ["a", "b"]), ("3959", ["a"])):
        run = _cli(*common, "--max-radius", radius, "--json", str(tmp_path / "o.json"))
        assert run.returncode == 0, run.stderr
        top = json.loads((tmp_path / "o.json").read_text())["clusters"][0]
        assert top["locations"] == expected and top["center"]["location"] == "a"
        assert top["radius"] == (3960.0 if len(expected) == 2 else 0.0) and set(top["center"]) == {"location", "x", "y"}


def test_a_prm_file_runs_the_analysis_it_describes_and_names_what_it_ignores(tmp_path):
    """SaTScan's NYCfever parameter file gives the same ranked clusters as the same settings on the
    command line (3 km, 7 days, at least 2 cases, 999 replications)."""
    import json
    import shutil

    from tests.conftest import shared_file

    folder = shared_file("data", "satscan")
    for name in ("NYCSpaceTimePermutation.prm", "NYCfever.cas", "NYCfever.geo"):
        shutil.copy(folder / name, tmp_path / name)
    by_prm = _cli(
        "--prm", str(tmp_path / "NYCSpaceTimePermutation.prm"), "--seed", "7", "--json", str(tmp_path / "p.json")
    )
    assert by_prm.returncode == 0, by_prm.stderr
    assert "output/reporting setting(s) ignored" in by_prm.stderr and "ResultsFile" in by_prm.stderr
    options = ["--cas", str(tmp_path / "NYCfever.cas"), "--geo", str(tmp_path / "NYCfever.geo")]
    options += ["--start", "2001/11/01", "--end", "2001/11/24", "--max-radius-km", "3", "--max-days", "7"]
    options += ["--min-cases", "2", "--replications", "999", "--seed", "7", "--json", str(tmp_path / "c.json")]
    by_cli = _cli(*options)
    assert by_cli.returncode == 0, by_cli.stderr
    prm, cli = (json.loads((tmp_path / f).read_text()) for f in ("p.json", "c.json"))
    assert prm["clusters"] == cli["clusters"] and prm["clusters"]
    assert prm["parameters"]["max_radius_km"] == 3.0 and prm["parameters"]["replications"] == 999
    expected = json.loads((folder / "NYCfever.expected.json").read_text())
    assert prm["clusters"][0]["locations"] == sorted(expected["clusters"][0]["locations"])


def test_a_prm_file_asking_for_another_analysis_is_refused_naming_the_settings(tmp_path):
    (tmp_path / "x.prm").write_text(
        "[Input]\nCaseFile=x.cas\nCoordinatesFile=x.geo\nStartDate=2024/1/1\nEndDate=2024/1/30\n"
        "[Analysis]\nAnalysisType=3\nModelType=0\n[Inference]\nIterativeScan=y\n"
    )
    run = _cli("--prm", str(tmp_path / "x.prm"), "--json", str(tmp_path / "o.json"))
    assert run.returncode == 2
    for named in ("AnalysisType='3'", "ModelType='0'", "IterativeScan='y'"):
        assert named in run.stderr
    assert not (tmp_path / "o.json").exists()


def test_the_compiled_kernel_gives_the_numpy_paths_maxima_and_p_values():
    """Replicate by replicate, the event-only compiled loop finds the maximum the NumPy path finds
    over every cylinder (to rounding of the logarithm), so clusters and p-values are the same."""
    import dataclasses

    import pytest

    from orchestration.surveillance import kernel

    if kernel.replicate_maxima is None:
        pytest.skip("numba is not installed: the NumPy path is the only one")
    rng = np.random.default_rng(11)
    n = 300
    ids = [f"L{i:03d}" for i in range(n)]
    x, y = rng.uniform(0, 30_000, n), rng.uniform(0, 30_000, n)
    weight = rng.gamma(0.6, 1.0, n)
    location = rng.choice(n, size=2500, p=weight / weight.sum())
    day = rng.integers(0, 60, 2500)
    params = ScanParameters(max_radius_km=3000.0, min_cases=3, replications=199, coordinates=CARTESIAN, seed=5)
    runs = {}
    for engine in ("numba", "numpy"):
        scan = SpaceTimePermutationScan(
            ids, x, y, location, day, START, START + timedelta(days=59), dataclasses.replace(params, engine=engine)
        )
        runs[engine] = (scan.monte_carlo(), scan.run())
    (fast_max, fast), (slow_max, slow) = runs["numba"], runs["numpy"]
    assert np.allclose(fast_max, slow_max, rtol=0, atol=1e-12) and (slow_max > 0).all()
    assert [(c.locations, c.observed, c.p_value) for c in fast.clusters] == [
        (c.locations, c.observed, c.p_value) for c in slow.clusters
    ]
    two = SpaceTimePermutationScan(
        ids, x, y, location, day, START, START + timedelta(days=59), dataclasses.replace(params, workers=2)
    )
    assert np.array_equal(two.monte_carlo(), fast_max)  # threads split the same seeds
