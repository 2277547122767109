"""dbt's Jinja compiled to Python once, and kept beside the warehouse for the next run.

dbt turns Jinja source into Python code for every node it runs (the node's SQL, each test's
one-line call of its generic test) and for every macro the first time a process calls it: about
590 compilations in a one-day update, 56 of them of the same `{{ test_not_null(...) }}`, about
2.5 s of dbt's threads, repeated in every run's new process.

What Jinja makes of a source is a code object that depends on the source and on settings of the
environment fixed before compiling (its class and code generator, syntax, extensions, the names
of its filters and tests, sandboxing), never on the values a template is rendered with: dbt binds
those when it makes a template from the code (`Template.from_code`, a fresh module namespace per
node). So the code objects can be shared where templates cannot: by a key of the source and those
settings, in memory during the invocation and in one file in dbt's target folder between runs.

The cache applies to dbt's two environment classes only, while `compiled_once` is active (around
our in-process dbt invocation). It stands aside for an environment whose output depends on more
than the key holds (an asynchronous one, a custom `finalize`, an autoescape function) and when
dbt's macro debugging is on (which renames the code's file for Python's line cache). The file
starts with Python's bytecode version (another Python's file is not read) and every key holds
the versions of Jinja and of dbt-common, whose parser and extensions dbt's environments compile
with (another version finds no entries and adds its own); an unreadable file is ignored
and replaced. Entries no run has used for `KEEP_DAYS` are dropped when the file is written, so it
holds about one project's worth. It is code, trusted as the project's `.pyc` files are: it lives
in the warehouse's dbt target folder, which only the pipeline writes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import marshal
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import CodeType
from typing import Any

import jinja2

CACHE_FILE = "jinja_code.marshal"
KEEP_DAYS = 30
# first item of the file: a file written by another Python (its marshal format) is not read
_FORMAT = ("jinja-code-cache", 1, importlib.util.MAGIC_NUMBER.hex())

_log = logging.getLogger(__name__)


@functools.cache
def _compiler_versions() -> tuple[str, str]:
    """Jinja's version and dbt-common's (whose parser and extensions the environments use)."""
    from dbt_common import __about__ as dbt_common_about

    return jinja2.__version__, dbt_common_about.version


def environment_key(env: jinja2.Environment) -> tuple | None:
    """Everything about `env` that Jinja's compiler reads, or None when that is not all."""
    if env.is_async or env.finalize is not None or callable(env.autoescape):
        return None
    generator = env.code_generator_class
    return (
        *_compiler_versions(),
        f"{type(env).__module__}.{type(env).__qualname__}",
        f"{generator.__module__}.{generator.__qualname__}",
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
        env.optimized,
        env.autoescape,
        env.sandboxed,
        tuple(sorted(env.extensions)),
        tuple(sorted(env.filters)),
        tuple(sorted(env.tests)),
        tuple(sorted(getattr(env, "intercepted_binops", ()))),
        tuple(sorted(getattr(env, "intercepted_unops", ()))),
    )


class CodeCache:
    """Code objects by key, read from and written to one file (`path`, None: memory only)."""

    def __init__(self, path: Path | None, today: date | None = None):
        self.path = path
        self.today = (today or date.today()).toordinal()
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, CodeType]] = self._read()
        self._changed = False
        self.hits = self.misses = 0

    def _read(self) -> dict[str, tuple[int, CodeType]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            stored = marshal.loads(self.path.read_bytes())
            if not (isinstance(stored, tuple) and len(stored) == 2 and stored[0] == _FORMAT):
                return {}
            return {
                key: (int(used), code)
                for key, (used, code) in stored[1].items()
                if isinstance(key, str) and isinstance(code, CodeType)
            }
        except (OSError, EOFError, ValueError, TypeError, AttributeError) as exc:
            _log.warning("dbt's compiled Jinja cache %s is unreadable (%s); it is rebuilt", self.path, exc)
            return {}

    @staticmethod
    def key(env_key: tuple, source: str, name: str | None, filename: str | None, defer_init: bool) -> str:
        digest = hashlib.sha256(repr((env_key, name, filename, defer_init)).encode())
        digest.update(source.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def get(self, key: str) -> CodeType | None:
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

    def put(self, key: str, code: CodeType) -> None:
        with self._lock:
            self._entries[key] = (self.today, code)
            self._changed = True

    def __len__(self) -> int:
        return len(self._entries)

    def save(self) -> None:
        """Write the entries used within `KEEP_DAYS` (atomically; only when something changed)."""
        if self.path is None or not self._changed:
            return
        with self._lock:
            kept = {key: entry for key, entry in self._entries.items() if self.today - entry[0] < KEEP_DAYS}
            data = marshal.dumps((_FORMAT, kept))
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(data)
            os.replace(partial, self.path)  # a reader sees the old file or the new one, never half
            self._changed = False
        except OSError as exc:  # a cache: the run goes on without it
            _log.warning("could not write dbt's compiled Jinja cache %s: %s", self.path, exc)
            with contextlib.suppress(OSError):  # ENOTDIR, say, where the folder is a file
                partial.unlink()


def _cached_compile(cache: CodeCache, original: Any) -> Any:
    def compile(  # noqa: A001 - Jinja's method name
        self: jinja2.Environment,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        env_key = None if raw or not isinstance(source, str) else environment_key(self)
        if env_key is None:
            return original(self, source, name, filename, raw, defer_init)
        key = cache.key(env_key, source, name, filename, defer_init)
        code = cache.get(key)
        if code is None:
            code = original(self, source, name, filename, raw, defer_init)
            cache.put(key, code)
        return code

    return compile


@contextmanager
def compiled_once(folder: Path | None) -> Iterator[CodeCache]:
    """dbt's Jinja environments compile through a cache kept in `folder` (None: this block only)."""
    from dbt_common.clients import jinja as dbt_jinja

    cache = CodeCache(folder / CACHE_FILE if folder is not None else None)
    if dbt_jinja.MACRO_DEBUGGING:  # dbt names each template's code after its source: leave it be
        yield cache
        return
    environment = dbt_jinja.MacroFuzzEnvironment  # NativeSandboxEnvironment inherits its compile
    own = environment.__dict__.get("compile")
    environment.compile = _cached_compile(cache, environment.compile)  # type: ignore[method-assign]
    try:
        yield cache
    finally:
        if own is None:
            del environment.compile  # Jinja's own again
        else:
            environment.compile = own  # type: ignore[method-assign]
        cache.save()
