"""`warehouse-dbt`: dbt's own command line, without Python's last garbage collection at exit.

dbt's manifest, compiled nodes and results are a great many Python objects. When the `dbt`
process ends, Python walks all of them once more to collect cycles (about 0.7 s of every dbt
process, measured at exit of a build on the one-year warehouse), only for the process to exit.
Frozen first, they are left to the operating system. Everything else (arguments, output, exit
status, the database closing) is dbt's `cli` unchanged. `settings.dbt_executable()` prefers it
to `dbt`. The dbt step itself runs dbt in the run's process (orchestration/dbt_in_process.py);
dbt runs as a process for the manifest's parse and by hand.
"""

import gc
import sys


def main(argv: list[str] | None = None) -> None:
    """Run dbt's `cli` on `argv` (default: the process's arguments); exits with dbt's status."""
    from dbt.cli.main import cli

    try:
        cli.main(args=sys.argv[1:] if argv is None else argv, prog_name="dbt")
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
