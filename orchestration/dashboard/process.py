"""The dashboard as a separate process on a free 127.0.0.1 port (what the browser tests and the
screenshot script drive)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from orchestration import settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_dashboard(env: dict[str, str] | None = None, timeout_s: float = 60) -> Iterator[str]:
    """`python -m orchestration.dashboard` with `env` (default: this process's); yields its URL
    once it answers, stops it after. Raises RuntimeError if it exits or never answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestration.dashboard", "--port", str(port)],
        cwd=settings.PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"the dashboard exited: {process.stdout.read()}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the dashboard did not answer within {timeout_s:.0f} s") from None
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
