"""dbt's configuration schemas built once and kept between runs (`orchestration.dbt_schema_cache`)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dbt_common import dataclass_schema
from mashumaro.jsonschema import build_json_schema

from orchestration import dbt_schema_cache, settings
from orchestration.dbt_schema_cache import CACHE_FILE, SchemaCache, class_key, schemas_kept

# A dbt command in a new process (every run is one), through the cache in argv[1]; prints which
# classes dbt built a schema for (module:name), the cache's counts, and how dbt ended.
_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from dbt_common import dataclass_schema
    from dbt.cli.main import dbtRunner
    from orchestration.dbt_schema_cache import schemas_kept
    built = []
    original = dataclass_schema.build_json_schema
    def counting(cls, *args, **kwargs):
        built.append(f"{cls.__module__}:{cls.__qualname__}")
        return original(cls, *args, **kwargs)
    dataclass_schema.build_json_schema = counting
    folder, project = Path(sys.argv[1]), sys.argv[2]
    argv = ["ls", "--project-dir", project, "--profiles-dir", project, "--target-path", str(folder / "target")]
    argv += ["--log-path", str(folder / "target"), "--no-send-anonymous-usage-stats", "--quiet", "--output", "name"]
    with schemas_kept(folder) as cache:
        result = dbtRunner().invoke(argv)
    print(json.dumps({"success": result.success, "error": str(result.exception or ""),
                      "built": built, "hits": cache.hits, "misses": cache.misses}))
    """
)


def _ls(folder: Path, project: Path) -> dict:
    """`dbt ls` of `project` in a new process, keeping schemas in `folder`."""
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(folder), str(project)],
        capture_output=True,
        text=True,
        cwd=settings.PROJECT_ROOT,
        env={**os.environ, "WAREHOUSE_DB": str(folder / "warehouse.duckdb")},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _class(name: str) -> type:
    module, qualname = name.split(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def test_a_later_process_validates_with_the_kept_schemas_which_are_mashumaros_own(tmp_path):
    """The project's own `dbt ls`, twice in new processes: the first builds every schema dbt
    checks the configuration with and keeps it, the second builds none; each kept schema is the
    one mashumaro builds for the class (computed here, not read from the cache)."""
    cold = _ls(tmp_path, settings.DBT_PROJECT_DIR)
    assert cold["success"], cold["error"]
    # dbt's configuration classes (dbt-core 1.11: the project, its flags, the profile and the
    # adapter's credentials, the runtime configuration) and, parsing the project, its node classes
    assert {"dbt.contracts.project:Project", "dbt.contracts.project:ProjectFlags"} <= set(cold["built"])
    assert any(name.endswith(":DuckDBCredentials") for name in cold["built"])
    assert cold["misses"] == len(cold["built"]) >= 5 and cold["hits"] == 0

    warm = _ls(tmp_path, settings.DBT_PROJECT_DIR)
    assert warm["success"], warm["error"]
    # the first run parsed the whole project (a new target folder), the second reads dbt's
    # partial parse and checks the configuration only: fewer schemas, every one kept
    assert warm["built"] == [] and warm["misses"] == 0 and 5 <= warm["hits"] <= len(cold["built"])

    kept = SchemaCache(tmp_path / CACHE_FILE)
    assert len(kept) >= warm["hits"]
    for name in cold["built"]:
        cls = _class(name)
        schema = build_json_schema(cls).to_dict()
        if kept.get(class_key(cls)) is None:  # a node class whose schema holds a str subclass (dbt's Severity)
            with pytest.raises(ValueError, match="unmarshallable"):
                marshal.dumps(schema)
        else:
            assert kept.get(class_key(cls)) == schema, name


@pytest.mark.parametrize(
    ("file_name", "old", "new", "message"),
    [
        ("dbt_project.yml", "config-version: 2", 'config-version: 2\nquoting: "yes"', "at path ['quoting']"),
        ("profiles.yml", "      threads: 2", '      threads: 2\n      extensions: "spatial"', "Credentials in profile"),
    ],
    ids=["project", "credentials"],
)
def test_invalid_configuration_is_still_rejected_with_the_schemas_kept(tmp_path, file_name, old, new, message):
    """Validation is dbt's as before: with every schema kept by a valid run, a wrong type in the
    project file or in the adapter's credentials fails the same way as with no cache at all."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    for name in ("dbt_project.yml", "profiles.yml"):
        (project / name).write_text((settings.DBT_PROJECT_DIR / name).read_text())
    (project / "models" / "one.sql").write_text("select 1 as one\n")
    assert _ls(tmp_path / "warm", project)["success"]  # every schema kept

    config = project / file_name
    assert old in config.read_text()
    config.write_text(config.read_text().replace(old, new, 1))
    warm = _ls(tmp_path / "warm", project)
    fresh = _ls(tmp_path / "fresh", project)
    assert not warm["success"] and message in warm["error"]
    assert warm["built"] == [] and warm["misses"] == 0  # the kept schemas judged it
    assert (fresh["success"], fresh["error"]) == (warm["success"], warm["error"])


def test_only_dbts_own_classes_are_kept_and_their_key_follows_versions_and_files(tmp_path, monkeypatch):
    @dataclasses.dataclass
    class Elsewhere(dataclass_schema.dbtClassMixin):
        a: int = 1

    assert class_key(Elsewhere) is None  # a test module's class: its fields are not covered
    assert class_key(int) is None and class_key("Project") is None

    from dbt.contracts.project import Project

    key = class_key(Project)
    assert key is not None and key == class_key(Project)
    monkeypatch.setattr(dbt_schema_cache, "_versions", lambda: ("dbt-core==0.0.0",))
    assert class_key(Project) != key  # another dbt-core
    monkeypatch.undo()
    assert class_key(Project) == key

    # a dbt class whose file changes in place (an editable install, a patch) gets a new key
    source = tmp_path / "edited.py"
    source.write_text("from dataclasses import dataclass\n@dataclass\nclass Edited:\n    a: int = 1\n")
    spec = importlib.util.spec_from_file_location("dbt_common.edited_for_test", source)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    before = class_key(module.Edited)
    assert before is not None
    source.write_text(source.read_text() + "    b: int = 2\n")
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 1_000_000))
    assert class_key(module.Edited) != before


def test_a_schema_the_file_cannot_hold_exactly_is_built_each_time_and_not_kept(tmp_path):
    from dbt.contracts.project import Project

    class Built:
        def __init__(self, schema):
            self.schema = schema

        def to_dict(self):
            return self.schema

    odd = {"enum": [{"a", "set"}]}  # not JSON, but marshal writes a set exactly: kept
    for schema in (odd, {"default": object()}):  # an object marshal cannot write at all: not kept
        cache = SchemaCache(tmp_path / CACHE_FILE)
        build = dbt_schema_cache._kept_build(cache, lambda cls, schema=schema: Built(schema))
        assert build(Project).to_dict() is schema
        if schema is odd:  # a set survives marshal exactly: kept
            assert len(cache) == 1
            assert build(Project).to_dict() == odd
        else:
            assert len(cache) == 0
            assert build(Project).to_dict() is schema  # built again


def test_the_builder_is_mashumaros_again_after_the_block_and_the_file_is_replaced_when_unreadable(tmp_path, caplog):
    from dbt.contracts.project import ProjectFlags

    (tmp_path / CACHE_FILE).write_bytes(b"not marshal at all")
    with caplog.at_level(logging.WARNING), schemas_kept(tmp_path) as cache:
        assert dataclass_schema.build_json_schema is not build_json_schema
        schema = dataclass_schema.build_json_schema(ProjectFlags).to_dict()
    assert dataclass_schema.build_json_schema is build_json_schema
    assert "unreadable" in caplog.text
    assert (cache.hits, cache.misses) == (0, 1)
    assert SchemaCache(tmp_path / CACHE_FILE).get(class_key(ProjectFlags)) == schema
    with schemas_kept(tmp_path) as again:
        kept = dataclass_schema.build_json_schema(ProjectFlags).to_dict()
        kept["properties"].clear()  # a caller changing what it was given changes no kept schema
        assert dataclass_schema.build_json_schema(ProjectFlags).to_dict() == schema
    assert again.hits == 2
