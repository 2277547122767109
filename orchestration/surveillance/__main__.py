"""Command line: `python -m orchestration.surveillance scan --cas F.cas --geo F.geo --start ... --end ... --json OUT`.

Reads SaTScan's own input files, so existing SaTScan users can switch.
"""

import argparse
import json
import sys
from pathlib import Path

from orchestration.surveillance.satscan_files import SatscanFileError, parse_date, read_cas, read_geo
from orchestration.surveillance.scan import ScanParameters, SpaceTimePermutationScan

DEFAULTS = ScanParameters()


def build_parser() -> argparse.ArgumentParser:
    """The CLI; every scan default comes from ScanParameters (the warehouse asset's defaults too)."""
    d = DEFAULTS
    parser = argparse.ArgumentParser(prog="python -m orchestration.surveillance")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("scan", help="prospective space-time permutation scan on SaTScan .cas/.geo files")
    cmd.add_argument("--cas", required=True, help="case file: location, cases, date (YYYY/MM/DD)")
    cmd.add_argument("--geo", required=True, help="coordinates file: location, latitude, longitude")
    cmd.add_argument("--start", required=True, help="study period start, YYYY/MM/DD")
    cmd.add_argument("--end", required=True, help="study period end, YYYY/MM/DD (windows end here)")
    cmd.add_argument("--max-days", type=int, default=d.max_days, help="maximum temporal window (days)")
    cmd.add_argument("--max-radius-km", type=float, default=d.max_radius_km, help="maximum circle radius (km)")
    cmd.add_argument(
        "--max-share",
        dest="max_share_of_cases",
        type=float,
        default=d.max_share_of_cases,
        help="maximum share of cases in a circle",
    )
    cmd.add_argument("--min-cases", type=int, default=d.min_cases, help="minimum cases in a cluster")
    cmd.add_argument("--replications", type=int, default=d.replications, help="Monte Carlo replications")
    cmd.add_argument("--seed", type=int, default=d.seed, help="random seed")
    cmd.add_argument("--workers", type=int, default=d.workers, help="threads for the Monte Carlo")
    cmd.add_argument("--json", required=True, help="output file (clusters in rank order)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        start, end = parse_date(args.start), parse_date(args.end)
        if end < start:
            raise ValueError(f"--end {args.end} is before --start {args.start}")
        geo = read_geo(args.geo)
        case_location, case_day = read_cas(args.cas, geo.ids, start)
    except (SatscanFileError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    params = ScanParameters.from_attributes(args)
    result = SpaceTimePermutationScan(
        geo.ids, geo.latitude, geo.longitude, case_location, case_day, start, end, params
    ).run()
    payload = {
        "study_period": {"start": start.strftime("%Y/%m/%d"), "end": end.strftime("%Y/%m/%d")},
        "total_cases": result.total_cases,
        "parameters": vars(params),
        "clusters": [c.to_json() for c in result.clusters],
        # ranked candidates after these that SaTScan's rule leaves out (no replicate fell below them)
        "candidates_not_reported": result.not_reported,
    }
    Path(args.json).write_text(json.dumps(payload, indent=1))
    top = result.clusters[0] if result.clusters else None
    print(
        f"{len(result.clusters)} cluster(s) reported ({result.not_reported} weaker not); most likely: "
        + (
            f"{len(top.locations)} location(s) {top.start}..{top.end}, {top.observed} observed vs "
            f"{top.expected:.2f} expected, LLR {top.llr:.6f}, p = {top.p_value}"
            if top
            else "none"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
