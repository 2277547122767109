"""Command line: `python -m orchestration run` materializes everything on the demo range."""

import argparse
import sys
import warnings

warnings.filterwarnings("ignore", message="Parameter `backfill_policy`")

from orchestration.run_all import main_run  # noqa: E402 - after the warning filter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize every asset for a date range and print a summary")
    run.add_argument("--start", help="first day (default DEMO_START or two full years back)")
    run.add_argument("--end", help="last day (default DEMO_END or yesterday)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return main_run(args.start, args.end)
    return 2


if __name__ == "__main__":
    sys.exit(main())
