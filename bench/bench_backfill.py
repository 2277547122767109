"""Benchmark of a surveillance backfill: every analysis day of a range scanned in one run (a script, not a test).

On a copy of a built working database (make run, or bench_pipeline's), it materializes the
`overdose_surveillance` asset over --start..--end as one range run, with 1 and with 2 worker
processes (config `processes`), each under `/usr/bin/time -v`, and reports wall time, time per
analysis day and peak RSS; medians of --runs. The copy is removed afterwards, so the
warehouse's own history is not touched.

    .venv/bin/python bench/bench_backfill.py --warehouse data/warehouse.duckdb --start 2024-01-01 --end 2024-12-31
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import ROOT, timed  # noqa: E402

BACKFILL = """
import sys
import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from orchestration.assets.surveillance import overdose_surveillance
from orchestration.definitions import defs
start, end, processes = sys.argv[1], sys.argv[2], int(sys.argv[3])
with dg.DagsterInstance.ephemeral() as instance:
    result = dg.materialize(
        [overdose_surveillance],
        resources=defs.resources,
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end},
        run_config={"ops": {"overdose_surveillance": {"config": {"processes": processes}}}},
    )
sys.exit(0 if result.success else 1)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", required=True, help="a built working database (it is copied, not changed)")
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--processes", default="1,2", help="comma-separated worker counts to compare")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "docs" / "backfill.json"))
    args = parser.parse_args()
    days = (date.fromisoformat(args.end) - date.fromisoformat(args.start)).days + 1
    report = {"range": f"{args.start}..{args.end}", "analysis_days": days, "runs": args.runs, "by_processes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        copy = Path(tmp) / Path(args.warehouse).name
        for processes in [int(p) for p in args.processes.split(",")]:
            runs = []
            for i in range(args.runs):
                shutil.copy(args.warehouse, copy)
                # each day's HTML reports (and the newest day's PDFs) go to the copy's folder too
                reports = Path(tmp) / "reports"
                shutil.rmtree(reports, ignore_errors=True)
                env = {**os.environ, "WAREHOUSE_DB": str(copy), "REPORTS_DIR": str(reports)}
                result = timed([sys.executable, "-c", BACKFILL, args.start, args.end, str(processes)], env)
                runs.append({k: result[k] for k in ("seconds", "peak_rss_gb")})
                print(f"processes={processes} run {i + 1}: {runs[-1]}", flush=True)
            seconds = statistics.median(r["seconds"] for r in runs)
            report["by_processes"][processes] = {
                "median_seconds": seconds,
                "seconds_per_day": round(seconds / days, 3),
                "median_peak_rss_gb": statistics.median(r["peak_rss_gb"] for r in runs),
                "each_run": runs,
            }
    base = report["by_processes"].get(1, {}).get("median_seconds")
    for entry in report["by_processes"].values():
        entry["speedup_over_one_process"] = round(base / entry["median_seconds"], 2) if base else None
    report["machine"] = {"cpus": os.cpu_count()}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
