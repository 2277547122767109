"""Reading a source file from a URL or a local path (the setting decides which)."""

from __future__ import annotations

from pathlib import Path

from orchestration.sources.http import JsonHttp, SourceError


def read_bytes(location: str) -> bytes:
    """The bytes at `location`: http(s) URLs are fetched with retries, anything else is a path."""
    if location.startswith(("http://", "https://")):
        return JsonHttp().get_bytes(location)
    path = Path(location).expanduser()
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    return path.read_bytes()
