"""Command line: `python -m orchestration.surveillance scan --cas F.cas --geo F.geo --start ... --end ... --json OUT`,
or `scan --prm F.prm --json OUT` to run the analysis a SaTScan parameter file describes.

Reads SaTScan's own input files, so existing SaTScan users can switch. Options given on the
command line override the parameter file's.
"""

import argparse
import json
import math
import sys
from pathlib import Path

from orchestration.surveillance.satscan_files import SatscanFileError, parse_date, read_cas, read_geo
from orchestration.surveillance.satscan_prm import PrmError, read_prm
from orchestration.surveillance.scan import CARTESIAN, ENGINES, LATLONG, ScanParameters, SpaceTimePermutationScan

DEFAULTS = ScanParameters()
# CLI option (argparse dest) -> ScanParameters field
SCAN_OPTIONS = {
    "max_days": "max_days",
    "max_radius": "max_radius_km",
    "max_share_of_cases": "max_share_of_cases",
    "min_cases": "min_cases",
    "replications": "replications",
    "seed": "seed",
    "workers": "workers",
    "coordinates": "coordinates",
    "engine": "engine",
}


def build_parser() -> argparse.ArgumentParser:
    """The CLI; every scan default comes from ScanParameters (the warehouse asset's defaults too)."""
    d = DEFAULTS
    parser = argparse.ArgumentParser(prog="python -m orchestration.surveillance")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("scan", help="prospective space-time permutation scan on SaTScan .cas/.geo files")
    cmd.add_argument("--prm", help="SaTScan parameter file: files, period and settings (options below override it)")
    cmd.add_argument("--cas", help="case file: location, cases, date (YYYY/MM/DD)")
    cmd.add_argument("--geo", help="coordinates file: location, latitude, longitude (or x, y: --coordinates)")
    cmd.add_argument("--start", help="study period start, YYYY/MM/DD")
    cmd.add_argument("--end", help="study period end, YYYY/MM/DD (windows end here)")
    cmd.add_argument(
        "--coordinates",
        choices=[LATLONG, CARTESIAN],
        help=f"how the .geo file gives points (default {d.coordinates}; SaTScan's CoordinatesType 1 / 0)",
    )
    cmd.add_argument("--max-days", type=int, help=f"maximum temporal window (days, default {d.max_days})")
    cmd.add_argument(
        "--max-radius",
        "--max-radius-km",
        dest="max_radius",
        type=float,
        help=f"maximum circle radius: km for latitude/longitude (default {d.max_radius_km}), the file's units "
        "for Cartesian coordinates",
    )
    cmd.add_argument(
        "--max-share",
        dest="max_share_of_cases",
        type=float,
        help=f"maximum share of cases in a circle (default {d.max_share_of_cases})",
    )
    cmd.add_argument("--min-cases", type=int, help=f"minimum cases in a cluster (default {d.min_cases})")
    cmd.add_argument("--replications", type=int, help=f"Monte Carlo replications (default {d.replications})")
    cmd.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    cmd.add_argument("--workers", type=int, help=f"threads for the Monte Carlo (default {d.workers})")
    cmd.add_argument(
        "--engine",
        choices=list(ENGINES),
        help=f"Monte Carlo inner loop (default {d.engine}: compiled with numba when it imports, else numpy)",
    )
    cmd.add_argument("--json", required=True, help="output file (clusters in rank order)")
    return parser


def resolve(args: argparse.Namespace) -> tuple[dict, ScanParameters, list[str]]:
    """Files, period and parameters: the command line first, then the .prm file, then the defaults."""
    files: dict = {"cas": args.cas, "geo": args.geo, "start": args.start, "end": args.end}
    from_prm: dict = {}
    ignored: list[str] = []
    if args.prm:
        prm = read_prm(args.prm)
        files = {
            "cas": args.cas or prm.case_file,
            "geo": args.geo or prm.coordinates_file,
            "start": args.start or prm.start.strftime("%Y/%m/%d"),
            "end": args.end or prm.end.strftime("%Y/%m/%d"),
        }
        from_prm, ignored = prm.scan, prm.ignored
    missing = [f"--{k}" for k, v in files.items() if not v]
    if missing:
        raise ValueError(f"missing {', '.join(missing)} (or give --prm)")
    chosen = {
        field: getattr(args, option) for option, field in SCAN_OPTIONS.items() if getattr(args, option) is not None
    }
    values = {**vars(DEFAULTS), **from_prm, **chosen}
    return files, ScanParameters(**values), ignored


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        files, params, ignored = resolve(args)
        start, end = parse_date(files["start"]), parse_date(files["end"])
        if end < start:
            raise ValueError(f"the end {files['end']} is before the start {files['start']}")
        geo = read_geo(files["geo"], cartesian=params.coordinates == CARTESIAN)
        case_location, case_day = read_cas(files["cas"], geo.ids, start)
    except (SatscanFileError, PrmError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if ignored:
        print(f"{args.prm}: {len(ignored)} output/reporting setting(s) ignored: {', '.join(ignored)}", file=sys.stderr)
    result = SpaceTimePermutationScan(
        geo.ids, geo.latitude, geo.longitude, case_location, case_day, start, end, params
    ).run()
    cartesian = params.coordinates == CARTESIAN
    payload = {
        "study_period": {"start": start.strftime("%Y/%m/%d"), "end": end.strftime("%Y/%m/%d")},
        "total_cases": result.total_cases,
        "parameters": {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in vars(params).items()},
        "clusters": [c.to_json(cartesian=cartesian) for c in result.clusters],
        # ranked candidates after these that SaTScan's rule leaves out (no replicate fell below them)
        "candidates_not_reported": result.not_reported,
        "prm_settings_ignored": ignored,
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
