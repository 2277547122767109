"""`python -m orchestration.dashboard [--port 8050]`: the dashboard on 127.0.0.1 (what `make dashboard` runs)."""

import argparse
import signal

from orchestration.dashboard.app import build_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m orchestration.dashboard", description=__doc__)
    parser.add_argument("--port", type=int, default=8050)
    args = parser.parse_args(argv)
    # A server stops on SIGTERM and Ctrl-C whatever it inherited: a process started from a
    # background job has SIGINT ignored, and Dagster (run in that process) then maps SIGTERM to
    # the same "ignore", which a child keeps across exec.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"Dashboard on http://127.0.0.1:{args.port}/ (reads SERVING_DB read-only; Ctrl-C stops it)", flush=True)
    build_app().run(host="127.0.0.1", port=args.port, debug=False)


if __name__ == "__main__":
    main()
