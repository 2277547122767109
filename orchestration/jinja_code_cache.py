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
dbt's macro debugging is on (which renames the code's file for Python's line cache). Every key
holds the versions of Jinja and of dbt-common, whose parser and extensions dbt's environments
compile with (another version finds no entries and adds its own). The file (`kept_entries`:
Python's bytecode version in its header, unreadable files replaced, entries unused for
`KEEP_DAYS` dropped) holds code, trusted as the project's `.pyc` files are.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import CodeType
from typing import Any

import jinja2

from orchestration.kept_entries import KEEP_DAYS, KeptEntries

CACHE_FILE = "jinja_code.marshal"
__all__ = ["CACHE_FILE", "KEEP_DAYS", "CodeCache", "compiled_once", "environment_key"]


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


def _is_code(value: Any) -> bool:
    return isinstance(value, CodeType)


class CodeCache(KeptEntries):
    """Jinja's code objects by key, read from and written to one file (`path`, None: memory only)."""

    def __init__(self, path: Path | None, today: date | None = None):
        super().__init__(path, "jinja-code-cache", 1, _is_code, "dbt's compiled Jinja cache", today)

    @staticmethod
    def key(env_key: tuple, source: str, name: str | None, filename: str | None, defer_init: bool) -> str:
        digest = hashlib.sha256(repr((env_key, name, filename, defer_init)).encode())
        digest.update(source.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()


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
