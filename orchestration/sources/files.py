"""Reading a source file from a URL or a local path (the setting decides which)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from orchestration.sources.http import JsonHttp, SourceError


def read_bytes(location: str) -> bytes:
    """The bytes at `location`: http(s) URLs are fetched with retries, anything else is a path."""
    if location.startswith(("http://", "https://")):
        http = JsonHttp()
        last: Exception | None = None
        for _ in range(http.policy.max_attempts):
            try:
                response = http.session.get(location, timeout=http.timeout)
                if response.status_code == 200:
                    return response.content
                last = SourceError(f"HTTP {response.status_code}")
            except Exception as exc:  # noqa: BLE001 - reported below with the location
                last = exc
        raise SourceError(f"could not download {location}: {last}")
    path = Path(location).expanduser()
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    return path.read_bytes()


def setting(name: str) -> str:
    """A required URL-or-path setting, with a clear error when it is not set."""
    value = os.environ.get(name)
    if not value:
        raise SourceError(f"{name} is not set: give the URL or path of the file (see README, Settings)")
    return value


def as_buffer(location: str) -> io.BytesIO:
    return io.BytesIO(read_bytes(location))
