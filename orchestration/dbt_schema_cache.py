"""The JSON schemas dbt validates its configuration with, built once and kept for the next run.

Before a build dbt checks the project file, the profile (the adapter's credentials), the project
flags, the packages and selectors and the whole runtime configuration against JSON schemas. It
builds each schema from the dataclass (mashumaro's `build_json_schema`, reached through
`dbtClassMixin.json_schema`) in every new process: seven schemas with dbt's partial parse, about
1 s of a one-day update's dbt start (`dbt ls` in a new process: 2.37 s without, 1.41 s with the
schemas kept); a full parse builds 21 (3.5 s).

A schema depends only on the class's definition, so it is kept by a key of the class (module and
name), the versions of the packages that define dbt's classes and build their schemas (dbt-core,
dbt-common, dbt-adapters, dbt-duckdb, mashumaro) and the size and time of change of the file of
every class in its hierarchy (a class edited in place, as in an editable install, gets a new key).
Only dbt's own classes (modules `dbt.*`, `dbt_common.*`) are kept: a class from elsewhere may
have fields whose definitions no version above covers. Validation itself is unchanged: dbt still
checks every configuration against the schema; only the schema's construction is skipped.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.metadata
import marshal
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from orchestration.kept_entries import KeptEntries

CACHE_FILE = "dbt_json_schemas.marshal"
# distributions whose code defines dbt's configuration classes and turns them into schemas
SCHEMA_DISTRIBUTIONS = ("dbt-core", "dbt-common", "dbt-adapters", "dbt-duckdb", "mashumaro")
# modules whose classes are kept (their definitions are covered by the versions above)
KEPT_MODULES = ("dbt.", "dbt_common.")


@functools.cache
def _versions() -> tuple[str, ...]:
    versions = []
    for name in SCHEMA_DISTRIBUTIONS:
        try:
            versions.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} missing")
    return tuple(versions)


def _definition_file(cls: type) -> tuple[str, int, int] | None:
    """Where `cls` is defined, with the file's size and time of change (None: not from a file)."""
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if not path:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return path, stat.st_size, stat.st_mtime_ns


def class_key(cls: Any) -> str | None:
    """The key of `cls`'s schema, or None when it is not one of dbt's classes (not kept)."""
    if not isinstance(cls, type) or not cls.__module__.startswith(KEPT_MODULES):
        return None
    files = []
    for klass in cls.__mro__:
        if klass.__module__ == "builtins":
            continue
        found = _definition_file(klass)
        if found is None:
            return None
        files.append(found)
    described = (cls.__module__, cls.__qualname__, _versions(), tuple(sorted(set(files))))
    return hashlib.sha256(repr(described).encode()).hexdigest()


def _is_schema(value: Any) -> bool:
    return isinstance(value, dict)


class SchemaCache(KeptEntries):
    """JSON schemas (dicts) by class key, in one file (`path`, None: memory only)."""

    def __init__(self, path: Path | None, today: date | None = None):
        super().__init__(path, "dbt-json-schemas", 1, _is_schema, "dbt's JSON schema cache", today)


class _KeptSchema:
    """What `build_json_schema` returns, as far as dbt uses it: `to_dict()`."""

    def __init__(self, schema: dict):
        self._schema = schema

    def to_dict(self) -> dict:
        return copy.deepcopy(self._schema)


def _kept_build(cache: SchemaCache, original: Any) -> Any:
    def build_json_schema(instance_type: Any, *args: Any, **kwargs: Any) -> Any:
        key = None if args or kwargs else class_key(instance_type)
        if key is None:
            return original(instance_type, *args, **kwargs)
        schema = cache.get(key)
        if schema is not None:
            return _KeptSchema(schema)
        built = original(instance_type)
        schema = built.to_dict()
        try:
            if marshal.loads(marshal.dumps(schema)) == schema:  # kept only what the file holds exactly
                cache.put(key, copy.deepcopy(schema))
        except ValueError:  # a value marshal cannot write: not kept
            pass
        return built

    return build_json_schema


@contextmanager
def schemas_kept(folder: Path | None) -> Iterator[SchemaCache]:
    """dbt builds its configuration schemas through a cache kept in `folder` (None: this block only)."""
    from dbt_common import dataclass_schema

    cache = SchemaCache(folder / CACHE_FILE if folder is not None else None)
    original = dataclass_schema.build_json_schema
    dataclass_schema.build_json_schema = _kept_build(cache, original)
    try:
        yield cache
    finally:
        dataclass_schema.build_json_schema = original
        cache.save()
