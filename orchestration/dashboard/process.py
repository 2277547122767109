"""The dashboard as a separate process on a free 127.0.0.1 port (what the browser tests and the
screenshot script drive)."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestration import settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class RunningDashboard:
    url: str
    log: Path  # the server's output (its tracebacks, when a callback fails)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextmanager
def running_dashboard(
    env: dict[str, str] | None = None, log: Path | None = None, timeout_s: float = 60
) -> Iterator[RunningDashboard]:
    """`python -m orchestration.dashboard` with `env` (default: this process's), its output in
    `log` (default: a temporary file; never an unread pipe, which would stall the server once
    full); yields it once it answers, stops it after. Raises RuntimeError if it exits or never
    answers."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="dashboard-") as folder:
        log = log or Path(folder) / "dashboard.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "orchestration.dashboard", "--port", str(port)],
                cwd=settings.PROJECT_ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
        dashboard = RunningDashboard(f"http://127.0.0.1:{port}/", log)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    urllib.request.urlopen(dashboard.url, timeout=2)
                    break
                except OSError:
                    if process.poll() is not None:
                        raise RuntimeError(f"the dashboard exited: {dashboard.log_tail()}") from None
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the dashboard did not answer within {timeout_s:.0f} s") from None
                    time.sleep(0.5)
            yield dashboard
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # not stopped by SIGTERM: never left running
                process.kill()
                process.wait()
                raise
