"""dbt's Jinja compiled once and kept between runs (`orchestration.jinja_code_cache`)."""

from __future__ import annotations

import filecmp
import importlib.metadata
import json
import logging
import marshal
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import jinja2
import pytest
from dbt_common.clients import jinja as dbt_jinja
from dbt_common.exceptions import CompilationError

from orchestration import jinja_code_cache, settings
from orchestration.jinja_code_cache import CACHE_FILE, KEEP_DAYS, CodeCache, compiled_once

dbt_common_version = importlib.metadata.version("dbt-common")


def _render(source: str, ctx: dict, native: bool = False):
    """What dbt does with a node's SQL: a template from the source with the node's context, rendered."""
    return dbt_jinja.get_template(source, ctx, native=native).render(ctx)


def _counting_compile(monkeypatch) -> list[str]:
    """Jinja's own compile, recording each source it is asked to compile."""
    compiled: list[str] = []
    original = jinja2.Environment.compile

    def compile(self, source, name=None, filename=None, raw=False, defer_init=False):  # noqa: A001
        compiled.append(source)
        return original(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(jinja2.Environment, "compile", compile)
    return compiled


def test_one_source_compiled_once_renders_each_nodes_own_values(tmp_path, monkeypatch):
    """The worry with sharing templates: one node rendered with another's context. The code is
    shared, the values are not."""
    compiled = _counting_compile(monkeypatch)
    source = "select {{ column }} from {{ relation | upper }}{% if limit %} limit {{ limit }}{% endif %}"
    with compiled_once(tmp_path) as cache:
        first = _render(source, {"column": "a", "relation": "t1", "limit": 5})
        second = _render(source, {"column": "b", "relation": "t2", "limit": None})
    assert first == "select a from T1 limit 5"
    assert second == "select b from T2"
    assert compiled.count(source) == 1
    assert (cache.hits, cache.misses) == (1, 1)
    assert "compile" not in dbt_jinja.MacroFuzzEnvironment.__dict__  # Jinja's own method again


def test_a_later_process_renders_from_the_file_without_compiling(tmp_path):
    sources = {
        "{{ test_not_null(**kwargs) }}": None,  # a generic test's call, the most repeated source
        "{% for i in range(n) %}{{ i }},{% endfor %}": None,
        "{{ 1 + n }}": "native",
    }
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        import jinja2
        from dbt_common.clients import jinja as dbt_jinja
        from orchestration.jinja_code_cache import compiled_once
        calls = []
        original = jinja2.Environment.compile
        def compile(self, source, *args, **kwargs):
            calls.append(source)
            return original(self, source, *args, **kwargs)
        jinja2.Environment.compile = compile
        def test_not_null(**kwargs):
            return "select * from " + kwargs["model"] + " where " + kwargs["column_name"] + " is null"
        out = []
        with compiled_once(Path(sys.argv[1])) as cache:
            for n, (source, native) in enumerate(json.loads(sys.argv[2]).items(), start=3):
                ctx = {"n": n, "test_not_null": test_not_null, "kwargs": {"model": f"m{n}", "column_name": "c"}}
                out.append(repr(dbt_jinja.get_template(source, ctx, native=bool(native)).render(ctx)))
        print(json.dumps({"out": out, "compiled": calls, "hits": cache.hits, "misses": cache.misses}))
        """
    )

    def run() -> dict:
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path), json.dumps(sources)],
            capture_output=True,
            text=True,
            cwd=settings.PROJECT_ROOT,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    cold, warm = run(), run()
    assert cold["out"] == ["'select * from m3 where c is null'", "'0,1,2,3,'", "6"]  # the native one an int
    assert warm["out"] == cold["out"]
    assert sorted(cold["compiled"]) == sorted(sources)
    assert warm["compiled"] == []  # every code object came from the file
    assert (warm["hits"], warm["misses"]) == (3, 0)


def test_what_changes_the_compiled_code_is_in_the_key(tmp_path):
    """dbt's two environments compile `{{ 1 + n }}` to different code (the native one returns an
    int): the same source must not share a code object across them, nor across filter sets."""
    with compiled_once(tmp_path) as cache:
        assert _render("{{ 1 + n }}", {"n": 1}) == "2"
        assert _render("{{ 1 + n }}", {"n": 1}, native=True) == 2
    assert (cache.hits, cache.misses) == (0, 2)

    text_env = dbt_jinja.get_environment()
    native_env = dbt_jinja.get_environment(native=True)
    assert jinja_code_cache.environment_key(text_env) != jinja_code_cache.environment_key(native_env)
    assert jinja_code_cache.environment_key(text_env) == jinja_code_cache.environment_key(dbt_jinja.get_environment())
    other_filters = dbt_jinja.get_environment()
    other_filters.filters["something_new"] = str
    assert jinja_code_cache.environment_key(other_filters) != jinja_code_cache.environment_key(text_env)
    other_syntax = dbt_jinja.get_environment()
    other_syntax.trim_blocks = True
    assert jinja_code_cache.environment_key(other_syntax) != jinja_code_cache.environment_key(text_env)
    # another dbt-common (its parser and extensions) or Jinja compiles with other code
    assert jinja_code_cache.environment_key(text_env)[:2] == (jinja2.__version__, dbt_common_version)
    other_finalize = dbt_jinja.get_environment()
    other_finalize.finalize = str
    assert jinja_code_cache.environment_key(other_finalize) is None  # not cached at all


def test_a_template_that_does_not_compile_raises_as_before_and_is_not_kept(tmp_path):
    with compiled_once(tmp_path) as cache, pytest.raises(CompilationError, match="unexpected"):
        _render("select {{ 1 + }}", {})
    assert len(cache) == 0
    assert not (tmp_path / CACHE_FILE).exists()  # nothing to write


@pytest.mark.parametrize(
    "content",
    [
        b"not marshal at all",
        marshal.dumps(("another-format", 9, {})),
        marshal.dumps({"k": 1}),
        b"",
        # this cache's name and layout, written by another Python (bytecode version): not read
        marshal.dumps((("jinja-code-cache", 1, "00000000"), {"k": (1, compile("1", "<k>", "eval"))})),
    ],
    ids=["garbage", "other-format", "other-shape", "empty", "other-python"],
)
def test_an_unreadable_or_foreign_file_is_set_aside_and_replaced(tmp_path, content, caplog):
    path = tmp_path / CACHE_FILE
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING), compiled_once(tmp_path) as cache:
        assert _render("{{ 'x' ~ n }}", {"n": 1}) == "x1"
    assert (cache.hits, cache.misses) == (0, 1)
    assert len(CodeCache(path)) == 1  # rewritten in the current format
    if content == b"not marshal at all":
        assert "unreadable" in caplog.text


def test_a_folder_that_cannot_be_written_leaves_the_run_going_with_a_warning(tmp_path, caplog):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING), compiled_once(blocked / "target") as cache:
        assert _render("{{ n * 3 }}", {"n": 2}) == "6"
    assert cache.misses == 1
    assert "could not write" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # no partial file left anywhere


def test_entries_no_run_used_for_keep_days_are_dropped_when_the_file_is_written(tmp_path):
    path = tmp_path / CACHE_FILE
    day = date(2026, 1, 1)
    old = CodeCache(path, today=day)
    old.put("old", compile("1", "<old>", "eval"))
    old.put("kept", compile("2", "<kept>", "eval"))
    old.save()

    later = CodeCache(path, today=day + timedelta(days=KEEP_DAYS - 1))
    assert later.get("kept") is not None  # used again: its day moves on
    later.save()

    latest = CodeCache(path, today=day + timedelta(days=KEEP_DAYS))
    latest.put("new", compile("3", "<new>", "eval"))
    latest.save()
    assert len(CodeCache(path)) == 2  # "old" was last used KEEP_DAYS ago
    assert CodeCache(path).get("old") is None
    assert eval(CodeCache(path).get("kept")) == 2  # noqa: S307 - our own constant expression


def test_dbt_macro_debugging_is_left_alone(tmp_path, monkeypatch):
    """With DBT_MACRO_DEBUGGING dbt names each template's code after its source for Python's line
    cache: a cached code object would point a traceback at another file."""
    monkeypatch.setattr(dbt_jinja, "MACRO_DEBUGGING", True)
    with compiled_once(tmp_path) as cache:
        assert _render("{{ n }}", {"n": 4}) == "4"
    assert (cache.hits, cache.misses) == (0, 0)
    assert "compile" not in dbt_jinja.MacroFuzzEnvironment.__dict__


def test_the_whole_project_compiles_to_the_same_sql_with_the_cache_cold_and_warm(warehouse_copy, tmp_path):
    """Every node of the project, compiled by dbt with no cache, with an empty one and with the one
    the previous compile wrote: the same SQL in every compiled file, and nothing compiled anew the
    third time."""
    from dbt.cli.main import dbtRunner

    project = str(settings.DBT_PROJECT_DIR)

    def compile_project(target: Path, cache_folder: Path | None) -> CodeCache | None:
        argv = ["compile", "--project-dir", project, "--profiles-dir", project, "--target-path", str(target)]
        argv += ["--log-path", str(target), "--no-send-anonymous-usage-stats", "--quiet"]
        if cache_folder is None:
            result = dbtRunner().invoke(argv)
            cache = None
        else:
            with compiled_once(cache_folder) as cache:
                result = dbtRunner().invoke(argv)
        assert result.success, result.exception
        return cache

    compile_project(tmp_path / "plain", None)
    cold = compile_project(tmp_path / "cold", tmp_path / "cache")
    warm = compile_project(tmp_path / "warm", tmp_path / "cache")
    # from the project's manifest: each distinct node source is compiled at least once, and every
    # node sharing its source with another (the generic tests' one-line calls) is served from the
    # cache (dbt's own cache of macros, filled by the first compile of this process, hides those)
    nodes = json.loads((tmp_path / "plain" / "manifest.json").read_text())["nodes"].values()
    sources = [n["raw_code"] for n in nodes if n["resource_type"] in ("model", "test") and n["raw_code"]]
    assert len(sources) > 200 and len(set(sources)) < len(sources) / 2
    assert cold.misses >= len(set(sources))
    assert cold.hits >= len(sources) - len(set(sources))
    assert warm.misses == 0 and warm.hits == cold.hits + cold.misses

    plain = sorted(p.relative_to(tmp_path / "plain") for p in (tmp_path / "plain" / "compiled").rglob("*.sql"))
    assert len(plain) > 200
    for folder in ("cold", "warm"):
        theirs = sorted(p.relative_to(tmp_path / folder) for p in (tmp_path / folder / "compiled").rglob("*.sql"))
        assert theirs == plain
        match, mismatch, errors = filecmp.cmpfiles(tmp_path / "plain", tmp_path / folder, plain, shallow=False)
        assert (mismatch, errors) == ([], [])
