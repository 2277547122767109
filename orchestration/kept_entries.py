"""Values a dbt invocation derives from dbt's code alone, kept in one file for the next run's process.

Every run is a new process, and dbt redoes per process work whose result depends only on its
installed code and the project: compiling Jinja to Python (`jinja_code_cache`), building the JSON
schemas it validates the project's configuration with (`dbt_schema_cache`). Each keeps its
results here, by a key that names everything the result depends on.

The file is Python's `marshal` format, headed by the cache's name, its layout's version and
Python's bytecode version (another Python's file is not read). An unreadable or foreign file is ignored
with a warning and replaced; a folder that cannot be written leaves the run going with a warning.
Entries no run has used for `KEEP_DAYS` are dropped when the file is written, so it holds about
one project's worth. The file is trusted as the project's `.pyc` files are: it lives in the
warehouse's dbt target folder, which only the pipeline writes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import marshal
import os
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

KEEP_DAYS = 30

_log = logging.getLogger(__name__)


class KeptEntries:
    """Values by key, read from and written to one file (`path`, None: memory only).

    `name` and `version` head the file (with Python's bytecode version: a file of another name,
    layout or Python is not read); `is_value` says whether a stored value is one of ours
    (anything else in the file is skipped); `label` names the cache in warnings.
    """

    def __init__(
        self,
        path: Path | None,
        name: str,
        version: int,
        is_value: Callable[[Any], bool],
        label: str,
        today: date | None = None,
    ):
        self.path = path
        self.file_format = (name, version, importlib.util.MAGIC_NUMBER.hex())
        self.is_value = is_value
        self.label = label
        self.today = (today or date.today()).toordinal()
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, Any]] = self._read()
        self._changed = False
        self.hits = self.misses = 0

    def _read(self) -> dict[str, tuple[int, Any]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            stored = marshal.loads(self.path.read_bytes())
            if not (isinstance(stored, tuple) and len(stored) == 2 and stored[0] == self.file_format):
                return {}
            return {
                key: (int(used), value)
                for key, (used, value) in stored[1].items()
                if isinstance(key, str) and self.is_value(value)
            }
        except (OSError, EOFError, ValueError, TypeError, AttributeError) as exc:
            _log.warning("%s %s is unreadable (%s); it is rebuilt", self.label, self.path, exc)
            return {}

    def get(self, key: str) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            if entry[0] != self.today:
                self._entries[key] = (self.today, entry[1])
                self._changed = True
            return entry[1]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._entries[key] = (self.today, value)
            self._changed = True

    def __len__(self) -> int:
        return len(self._entries)

    def save(self) -> None:
        """Write the entries used within `KEEP_DAYS` (atomically; only when something changed)."""
        if self.path is None or not self._changed:
            return
        with self._lock:
            kept = {key: entry for key, entry in self._entries.items() if self.today - entry[0] < KEEP_DAYS}
            data = marshal.dumps((self.file_format, kept))
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(data)
            os.replace(partial, self.path)  # a reader sees the old file or the new one, never half
            self._changed = False
        except OSError as exc:  # a cache: the run goes on without it
            _log.warning("could not write %s %s: %s", self.label, self.path, exc)
            with contextlib.suppress(OSError):  # ENOTDIR, say, where the folder is a file
                partial.unlink()
