"""Benchmark: 999-replication space-time permutation scans at Baltimore scale.

Case sets (synthetic, seeded; points within Baltimore's extent):
- 30-day study period, ~1,000 cases at ~500 locations (a month of non-fatal overdoses);
- 365-day study period, ~9,000 cases at ~2,000 locations.
Each is scanned with the warehouse defaults (7-day windows, 1.207 km, >= 3 cases, 999
replications), serially and with 2 worker threads. The baseline, measured in the same run, is
a straightforward implementation that loops over centres, circle sizes and windows in Python
for each replicate; it is timed on a few replicates and reported per replicate.

Usage: .venv/bin/python bench/bench_scan.py [--runs 3] [--out docs/bench_scan.json]
"""

import argparse
import json
import math
import statistics
import time
from datetime import date, timedelta

import numpy as np

from orchestration.surveillance.scan import ScanParameters, SpaceTimePermutationScan, _poisson_llr


def case_set(days: int, cases: int, locations: int, seed: int):
    rng = np.random.default_rng(seed)
    lat = rng.uniform(39.20, 39.37, locations)
    lon = rng.uniform(-76.71, -76.53, locations)
    weight = rng.gamma(0.6, 1.0, locations)
    loc = rng.choice(locations, size=cases, p=weight / weight.sum())
    day = rng.integers(0, days, cases)
    end = date(2025, 6, 30)
    return [str(i) for i in range(locations)], lat, lon, loc, day, end - timedelta(days=days - 1), end


def naive_replicate_max(scan: SpaceTimePermutationScan, permuted_days: np.ndarray) -> float:
    """One replicate the plain way: for every centre, circle size and window, count and score."""
    best = 0.0
    last_days = scan.first_window_day
    in_window = [permuted_days >= d for d in last_days]
    for centre in range(len(scan.ids)):
        members = []
        for k in range(scan.k_max):
            if not scan.allowed[centre, k]:
                break
            members.append(scan.neighbors[centre, k])
            member_mask = np.isin(scan.case_location, members)
            for w in range(scan.max_days):
                c = float((member_mask & in_window[w]).sum())
                if c < scan.params.min_cases:
                    continue
                mu = scan.expected[centre, k, w]
                best = max(best, float(_poisson_llr(np.array([c]), np.array([mu]), scan.total)[0]))
    return best


def time_it(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-replicates", type=int, default=3)
    parser.add_argument("--out", default="docs/bench_scan.json")
    args = parser.parse_args()
    report = []
    for name, days, cases, locations in (("30 days", 30, 1000, 500), ("365 days", 365, 9000, 2000)):
        inputs = case_set(days, cases, locations, seed=days)
        row = {"case_set": name, "cases": cases, "locations": locations}
        for workers in (1, 2):
            params = ScanParameters(replications=999, seed=1, workers=workers)
            scan = SpaceTimePermutationScan(*inputs, params=params)
            times = time_it(scan.run, args.runs)
            row[f"seconds_999_reps_workers_{workers}"] = round(statistics.median(times), 3)
            row[f"all_runs_workers_{workers}"] = [round(t, 3) for t in times]
        scan = SpaceTimePermutationScan(*inputs, params=ScanParameters(replications=0))
        rng = np.random.default_rng(0)
        perms = [rng.permutation(scan.case_day) for _ in range(args.baseline_replicates)]
        naive = time_it(lambda s=scan, ps=perms: [naive_replicate_max(s, p) for p in ps], 1)[0] / len(perms)
        vector = time_it(lambda s=scan: s._replicate_maxima(np.arange(20, dtype=np.uint64)), 3)
        per_rep = statistics.median(vector) / 20
        # the two implementations agree on the same permutation
        check = naive_replicate_max(scan, perms[0])
        llr, _ = scan._cylinder_llr(scan._window_counts(perms[0]))
        assert math.isclose(check, float(llr.max(initial=0.0)), rel_tol=1e-9, abs_tol=1e-12)
        row.update(
            {
                "k_max_neighbours": scan.k_max,
                "baseline_seconds_per_replicate": round(naive, 4),
                "vectorized_seconds_per_replicate": round(per_rep, 5),
                "speedup_vs_baseline": round(naive / per_rep, 1),
            }
        )
        report.append(row)
        print(json.dumps(row))
    with open(args.out, "w") as handle:
        json.dump(
            {"measured": time.strftime("%Y-%m-%d"), "machine": "2 cores", "runs": args.runs, "results": report},
            handle,
            indent=1,
        )


if __name__ == "__main__":
    main()
