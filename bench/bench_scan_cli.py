"""Benchmark: the scan CLI as a whole process against SaTScan's time (a script, not a test).

SaTScan 10.3.2, one process, 999 replications, Baltimore's parameters, takes about 2.3-3.2 s per
case set of 700-9,100 cases (measured by the team outside this machine: SaTScan cannot be
installed here). The target is at most half of that: 1.15 s for the smallest set, 1.6 s for the
largest. Case sets are synthetic and seeded (bench_scan.case_set), written as SaTScan .cas/.geo
files; each is scanned `--runs` times as `python -m orchestration.surveillance scan` with
Baltimore's parameters (7 days, 1.207 km, >= 3 cases, 999 replications), compiled kernel
("auto") and the NumPy path, and the two outputs are compared (same clusters, same p-values).

    .venv/bin/python bench/bench_scan_cli.py --runs 5 --out docs/bench_scan_cli.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scan import case_set  # noqa: E402 - the bench folder's own helper

ROOT = Path(__file__).resolve().parents[1]
# (days, cases, locations, SaTScan's seconds for a set of this size: the range, by size)
SETS = [(30, 700, 300, 2.3), (90, 2_300, 800, 2.6), (365, 9_100, 2_000, 3.2)]


def write_set(folder: Path, days: int, cases: int, locations: int) -> tuple[Path, Path, str, str]:
    ids, lat, lon, loc, day, start, end = case_set(days, cases, locations, 1)
    geo, cas = folder / f"s{days}.geo", folder / f"s{days}.cas"
    geo.write_text("".join(f"{i} {la:.6f} {lo:.6f}\n" for i, la, lo in zip(ids, lat, lon, strict=True)))
    counts = Counter(zip(loc.tolist(), day.tolist(), strict=True))
    cas.write_text(
        "".join(
            f"{ids[i]} {n} {(start + timedelta(days=d)).strftime('%Y/%m/%d')}\n" for (i, d), n in sorted(counts.items())
        )
    )
    return cas, geo, start.strftime("%Y/%m/%d"), end.strftime("%Y/%m/%d")


def run_cli(cas: Path, geo: Path, start: str, end: str, out: Path, engine: str) -> float:
    command = [sys.executable, "-m", "orchestration.surveillance", "scan", "--cas", str(cas), "--geo", str(geo)]
    command += ["--start", start, "--end", end, "--engine", engine, "--json", str(out)]
    began = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench_scan_cli.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for days, cases, locations, satscan in SETS:
            cas, geo, start, end = write_set(folder, days, cases, locations)
            run_cli(cas, geo, start, end, folder / "warm.json", "auto")  # compiles the kernel once (cached)
            fast = [run_cli(cas, geo, start, end, folder / "auto.json", "auto") for _ in range(args.runs)]
            slow = run_cli(cas, geo, start, end, folder / "numpy.json", "numpy")
            auto, numpy_ = (json.loads((folder / f).read_text())["clusters"] for f in ("auto.json", "numpy.json"))
            same = [(c["locations"], c["observed"], c["p_value"]) for c in auto] == [
                (c["locations"], c["observed"], c["p_value"]) for c in numpy_
            ]
            row = {
                "days": days,
                "cases": cases,
                "locations": locations,
                "cli_seconds_median": round(statistics.median(fast), 3),
                "cli_seconds_each": [round(t, 3) for t in fast],
                "numpy_path_seconds": round(slow, 3),
                "satscan_seconds": satscan,
                "ratio_to_satscan": round(statistics.median(fast) / satscan, 3),
                "same_clusters_and_p_values_as_numpy_path": same,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {"machine": {"cpus": os.cpu_count()}, "replications": 999, "sets": rows}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(r["same_clusters_and_p_values_as_numpy_path"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
