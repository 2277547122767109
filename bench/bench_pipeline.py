"""Benchmark of the whole pipeline against plain DuckDB (a script, not a test; see docs/performance.md).

For a range of demo days, on a fresh working database each time, it measures, as separate
processes under `/usr/bin/time -v` (wall time and peak RSS):

- generation: the demo generator writing the range's calls to Parquet (what the landing asset does);
- full build: `python -m orchestration run --start --end` (raw loads, dbt build, checks, surveillance
  and publication of the last day);
- one-day update: the day after the range, as the daily schedule would run it;
- late correction: the day 30 days before that again (a late report re-loads an old day);
- baseline: bench/baseline.sql, the call transformations as one plain DuckDB script over the same
  raw tables, in the same run, with its tables in memory (temporary tables), and again writing
  them to a database file (persisted, as the pipeline writes its own). It computes the pipeline's
  fact, quarantine decisions and monthly mart exactly (tests/test_bench_baseline.py).

Runs repeat `--runs` times; the report gives medians and the ratio full build / baseline, and
the same ratio for the full build as the issue lists it (raw load, dbt build, checks, publish:
without the landing step's generation, which the bench measures apart, and surveillance).

For each pipeline step (full build, update, late correction) it also records where the time
went, from the Dagster runs the step made (their event log in the bench's DAGSTER_HOME): each
run's steps in seconds, the time of the process outside its runs (start, imports, definitions,
summary), and dbt's own elapsed time and node count (its run_results.json). The report gives
the median of each of these across runs (`median_breakdown`), so a change shows in the part it
touched rather than only in the total.

    .venv/bin/python bench/bench_pipeline.py --start 2015-01-01 --end 2024-12-31 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the steps that run the pipeline (they have a breakdown)
PIPELINE_STEPS = ("full_build", "one_day_update", "late_correction_30_days_back")
PYTHON = sys.executable

GENERATE = """
import sys
from datetime import date
from pathlib import Path
from orchestration import settings
from orchestration.demo.calls import iter_call_tables
from orchestration.landing import land_chunks
start, end, folder = date.fromisoformat(sys.argv[1]), date.fromisoformat(sys.argv[2]), Path(sys.argv[3])
chunks = iter_call_tables(start, end, settings.demo_seed())
path, rows = land_chunks(folder / "w.duckdb", "calls", chunks, start, end, "demo", "bench")
print(rows)
"""

UPDATE = """
import sys
from datetime import date
import dagster as dg
from orchestration.run_all import run_range
day = date.fromisoformat(sys.argv[1])
result = run_range(day, day, instance=dg.DagsterInstance.get(), log_level="ERROR")
sys.exit(0 if result.success else 1)
"""

# argv: a UNIX time; prints (JSON) the runs created since then, in order (each run's job, its
# seconds from first to last event, and each step's seconds from its start to its success or
# failure), and dbt's elapsed time and node count when its last invocation on this warehouse
# (the run_results.json of `settings.dbt_target_path`) came after that time, else null
RUN_STEPS = """
import json, sys
from datetime import datetime, timezone
import dagster as dg
from orchestration import settings
from orchestration.dbt_in_process import RUN_RESULTS
since = datetime.fromtimestamp(float(sys.argv[1]), tz=timezone.utc)
runs, dbt = [], None
results = settings.dbt_target_path() / RUN_RESULTS
if results.exists():
    last = json.loads(results.read_text())
    if datetime.fromisoformat(last["metadata"]["generated_at"].replace("Z", "+00:00")) >= since:
        dbt = {"elapsed_seconds": round(last["elapsed_time"], 2), "nodes": len(last["results"])}
with dg.DagsterInstance.get() as instance:
    for run in reversed(instance.get_runs(filters=dg.RunsFilter(created_after=since))):
        logs = instance.all_logs(run.run_id)
        starts, steps = {}, {}
        for entry in logs:
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type_value == "STEP_START":
                starts[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
                steps[event.step_key] = round(entry.timestamp - starts[event.step_key], 2)
        seconds = round(logs[-1].timestamp - logs[0].timestamp, 2) if logs else 0.0
        runs.append({"job": run.job_name, "status": run.status.value, "seconds": seconds, "steps": steps})
print(json.dumps({"runs": runs, "dbt": dbt}))
"""

# argv: warehouse, script, and optionally a database file: the script's tables are then written
# there (persisted, as the pipeline's are, with the compression methods the pipeline writes with)
# instead of held in memory as temporary tables
BASELINE = """
import sys, time, duckdb
warehouse, script = sys.argv[1], open(sys.argv[2]).read()
conn = duckdb.connect(sys.argv[3] if len(sys.argv) > 3 else ":memory:")
if len(sys.argv) > 3:
    from orchestration import settings
    script = script.replace("create or replace temp table", "create or replace table")
    conn.execute(f"set disabled_compression_methods = '{settings.DUCKDB_DISABLED_COMPRESSION}'")
conn.execute("set enable_progress_bar = false")
conn.execute(f"attach '{warehouse}' as w (read_only)")
t = time.perf_counter()
conn.execute(script)
conn.execute("checkpoint")
print(time.perf_counter() - t, conn.execute("select count(*) from fct").fetchone()[0])
"""


def timed(args: list[str], env: dict[str, str]) -> dict:
    """Run a command under /usr/bin/time -v: wall seconds, peak RSS (GB) and its stdout."""
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", proc.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return {"seconds": round(seconds, 2), "peak_rss_gb": round(rss_kb / 1024**2, 2), "stdout": proc.stdout.strip()}


def _step(name: str, args: list[str], env: dict[str, str]) -> dict:
    """`timed`, reporting the step as soon as it ends (a long run is not lost to a later failure)."""
    result = timed(args, env)
    print(f"  {name}: {result['seconds']} s, peak RSS {result['peak_rss_gb']} GB", flush=True)
    return result


def breakdown(wall: float, since: float, env: dict[str, str]) -> dict:
    """Where a pipeline step's `wall` seconds went: its Dagster runs (created after `since`) and
    their steps, the rest of its process, and dbt's elapsed time and node count."""
    proc = subprocess.run(
        [PYTHON, "-c", RUN_STEPS, str(since)], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    found = json.loads(proc.stdout)
    runs = found["runs"]
    result = {"runs": runs, "outside_runs_seconds": round(wall - sum(r["seconds"] for r in runs), 2)}
    if found["dbt"] is not None:
        result["dbt_elapsed_seconds"] = found["dbt"]["elapsed_seconds"]
        result["dbt_nodes"] = found["dbt"]["nodes"]
    return result


def _pipeline_step(name: str, args: list[str], env: dict[str, str]) -> dict:
    """`_step` for a command that runs the pipeline, with its breakdown (`breakdown`)."""
    since = time.time()
    result = _step(name, args, env)
    result["breakdown"] = breakdown(result["seconds"], since, env)
    return result


def flat_breakdown(b: dict) -> dict[str, float]:
    """A breakdown's figures by name, summed over runs when several runs have the same step
    (`run_seconds`, `outside_runs_seconds`, `step:<key>`, `dbt_elapsed_seconds`)."""
    flat: dict[str, float] = {"outside_runs_seconds": b["outside_runs_seconds"]}
    flat["run_seconds"] = round(sum(r["seconds"] for r in b["runs"]), 2)
    for run in b["runs"]:
        for key, seconds in run["steps"].items():
            flat[f"step:{key}"] = round(flat.get(f"step:{key}", 0.0) + seconds, 2)
    if "dbt_elapsed_seconds" in b:
        flat["dbt_elapsed_seconds"] = b["dbt_elapsed_seconds"]
    return flat


def median_breakdown(runs: list[dict], step: str) -> dict[str, float]:
    """The median of each breakdown figure of `step` over the runs that have it."""
    flats = [flat_breakdown(r[step]["breakdown"]) for r in runs if "breakdown" in r[step]]
    names = sorted({name for flat in flats for name in flat})
    return {name: round(statistics.median(f[name] for f in flats if name in f), 2) for name in names}


# steps of the full build's runs that the issue's "full build (raw load + dbt build + checks +
# publish)" leaves out: the landing step of the demo generates the calls (the bench's own
# "generation" step, measured apart), and surveillance runs because `make run` runs it
OUTSIDE_ISSUE_SCOPE = ("landing__calls_for_service", "overdose_surveillance")


def issue_scope_seconds(run: dict) -> float:
    """A run's full build without the steps `OUTSIDE_ISSUE_SCOPE` names: the raw loads with their
    checks, dbt build, publication and the process around them, as the issue defines the build."""
    flat = flat_breakdown(run["full_build"]["breakdown"])
    return round(run["full_build"]["seconds"] - sum(flat.get(f"step:{key}", 0.0) for key in OUTSIDE_ISSUE_SCOPE), 2)


def one_run(start: date, end: date) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        folder = Path(tmp)
        env = {
            **os.environ,
            "WAREHOUSE_DB": str(folder / "warehouse.duckdb"),
            "SERVING_DB": str(folder / "serving" / "warehouse.duckdb"),
            "DAGSTER_HOME": str(folder / "dagster_home"),
            "BALTIMORE_SOURCE": "demo",
            "EMS_INBOX_DIR": str(folder / "inbox"),
            "REPORTS_DIR": str(folder / "reports"),
        }
        # the instance configuration `make run` uses (writer pool, batched event storage)
        home = folder / "dagster_home"
        subprocess.run(["make", "-s", f"DAGSTER_HOME={home}", f"{home}/dagster.yaml", "bytecode"], cwd=ROOT, check=True)
        generation = _step("generation", [PYTHON, "-c", GENERATE, str(start), str(end), str(folder / "gen")], env)
        build = [PYTHON, "-m", "orchestration", "run", "--start", str(start), "--end", str(end)]
        full = _pipeline_step("full build", build, env)
        next_day = end + timedelta(days=1)
        update = _pipeline_step("one-day update", [PYTHON, "-c", UPDATE, str(next_day)], env)
        late = _pipeline_step("late correction", [PYTHON, "-c", UPDATE, str(next_day - timedelta(days=30))], env)
        script = str(ROOT / "bench" / "baseline.sql")
        baseline = _step("baseline", [PYTHON, "-c", BASELINE, env["WAREHOUSE_DB"], script], env)
        base_sql_seconds, fact_rows = baseline["stdout"].split()[-2:]
        persisted_file = str(folder / "baseline.duckdb")
        persisted = _step(
            "baseline, tables persisted", [PYTHON, "-c", BASELINE, env["WAREHOUSE_DB"], script, persisted_file], env
        )
        return {
            "calls": int(generation["stdout"].splitlines()[-1]),
            "generation": {k: generation[k] for k in ("seconds", "peak_rss_gb")},
            "full_build": {k: full[k] for k in ("seconds", "peak_rss_gb", "breakdown")},
            "one_day_update": {k: update[k] for k in ("seconds", "peak_rss_gb", "breakdown")},
            "late_correction_30_days_back": {k: late[k] for k in ("seconds", "peak_rss_gb", "breakdown")},
            "baseline": {
                "seconds": baseline["seconds"],
                "sql_seconds": round(float(base_sql_seconds), 2),
                "peak_rss_gb": baseline["peak_rss_gb"],
                "fact_rows": int(fact_rows),
            },
            # the same script writing its tables to a database file, as the pipeline writes its own
            "baseline_persisted": {k: persisted[k] for k in ("seconds", "peak_rss_gb")},
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", default="2015-01-01")
    parser.add_argument("--end", default="2024-12-31")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.json"))
    args = parser.parse_args()
    start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)
    runs = []
    for i in range(args.runs):
        runs.append(one_run(start, end))
        print(f"run {i + 1}: {json.dumps(runs[-1])}", flush=True)
    steps = ["generation", *PIPELINE_STEPS, "baseline", "baseline_persisted"]
    median = {s: {k: statistics.median(r[s][k] for r in runs) for k in ("seconds", "peak_rss_gb")} for s in steps}
    issue_scope = statistics.median(issue_scope_seconds(r) for r in runs)
    report = {
        "range": f"{start}..{end}",
        "calls": runs[0]["calls"],
        "runs": len(runs),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3),
        },
        "median": median,
        "median_breakdown": {s: median_breakdown(runs, s) for s in PIPELINE_STEPS},
        "ratio_full_build_to_baseline": round(median["full_build"]["seconds"] / median["baseline"]["seconds"], 2),
        "ratio_full_build_to_baseline_persisted": round(
            median["full_build"]["seconds"] / median["baseline_persisted"]["seconds"], 2
        ),
        # the full build as the issue lists it (`issue_scope_seconds`), against the same baseline
        "full_build_issue_scope_seconds": issue_scope,
        "ratio_full_build_issue_scope_to_baseline": round(issue_scope / median["baseline"]["seconds"], 2),
        "each_run": runs,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "each_run"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
