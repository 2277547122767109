"""dbt's build runs in the run's own process (orchestration/dbt_in_process.py): it builds what the
run selected and nothing else, frees the warehouse file when it ends, and stops when the run is
interrupted, as the `dbt` process did."""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import types

import dagster as dg
import duckdb
import pytest
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._utils.interrupts import raise_interrupts_as
from dagster_dbt.asset_utils import get_asset_check_key_for_test

from orchestration import dbt_in_process, jinja_code_cache, settings
from orchestration.assets.dbt import WarehouseTranslator, dbt_project
from orchestration.jinja_code_cache import CodeCache
from tests.conftest import run_in_location

DIM_DATE = dg.AssetKey(["marts", "dim_date"])


def test_a_run_of_one_dbt_asset_builds_that_model_and_its_checks_only(warehouse_copy):
    manifest = json.loads(dbt_project.manifest_path.read_text())
    # the checks Dagster attaches to dim_date, from the manifest (a test of dim_date alone, or a
    # singular test given to it); a relationship test of a fact to it belongs to the fact
    checks = {
        uid: key.name
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "test"
        and (key := get_asset_check_key_for_test(manifest, WarehouseTranslator(), uid, dbt_project)) is not None
        and key.asset_key == DIM_DATE
    }
    expected_checks = set(checks.values())
    assert len(expected_checks) >= 3  # the date key's unique and not_null tests, at least

    # an earlier build's artifacts, which this one must not leave to be taken for its own
    target = settings.dbt_target_path()
    target.mkdir(parents=True, exist_ok=True)
    stale = {"metadata": {"generated_at": "2020-01-01T00:00:00Z"}, "results": [{"unique_id": "model.x.stale"}]}
    (target / "run_results.json").write_text(json.dumps(stale))
    (target / "manifest.json").write_text("{}")
    started = time.time()
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_in_location([DIM_DATE], instance)
    assert result.success
    # dbt wrote no manifest (`--no-write-json`); its run results were written as dbt writes them
    assert not (target / "manifest.json").exists() and not (target / "graph.gpickle").exists()
    written = json.loads((target / "run_results.json").read_text())
    assert written["metadata"]["dbt_schema_version"].endswith("/run-results/v6.json")
    generated = written["metadata"]["generated_at"].replace("Z", "+00:00")
    assert dt.datetime.fromisoformat(generated).timestamp() >= started - 1
    assert written["args"]["which"] == "build" and written["elapsed_time"] > 0
    assert {m.asset_key for m in result.get_asset_materialization_events()} == {DIM_DATE}
    evaluations = result.get_asset_check_evaluations()
    assert {e.asset_key for e in evaluations} == {DIM_DATE}
    assert {e.check_name for e in evaluations} == expected_checks
    assert all(e.passed for e in evaluations)

    # what dbt itself ran: that one model, and tests reading it (dbt's eager selection also runs
    # the facts' relationship tests to it, which Dagster does not report as dim_date's), nothing else
    ran = {r["unique_id"] for r in json.loads((settings.dbt_target_path() / "run_results.json").read_text())["results"]}
    dim_date = "model.baltimore_warehouse.dim_date"
    assert {uid for uid in ran if not uid.startswith(("test.", "unit_test."))} == {dim_date}
    reading_it = {uid for uid, node in manifest["nodes"].items() if dim_date in node["depends_on"].get("nodes", [])}
    assert {uid for uid in ran if uid.startswith("test.")} <= reading_it
    # dbt's Jinja, compiled once, is kept beside its artifacts for the next run
    assert len(CodeCache(settings.dbt_target_path() / jinja_code_cache.CACHE_FILE)) > 10

    # the step left the warehouse closed: another configuration in this process, and another
    # process writing, may open it (dbt-duckdb keeps it open by default)
    with duckdb.connect(str(warehouse_copy), read_only=True) as conn:
        assert conn.execute("select count(*) from marts.dim_date").fetchone()[0] > 365
    writer = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('create table t_other_process (x int)').close()"
    subprocess.run([sys.executable, "-c", writer, str(warehouse_copy)], check=True)


def _show_argv(sql: str, target, *flags: str) -> list[str]:
    """`dbt show --inline <sql>` on the project, with its artifacts and log in `target`."""
    project = str(settings.DBT_PROJECT_DIR)
    folder = str(target)
    paths = ["--project-dir", project, "--profiles-dir", project, "--target-path", folder, "--log-path", folder]
    return ["show", "--inline", sql, *paths, "--no-send-anonymous-usage-stats", *flags]


def test_an_interrupted_dbt_stops_its_query_and_frees_the_database(tmp_path, monkeypatch):
    """Dagster raises its interrupt in the run's main thread (a run terminated from the UI): dbt,
    in a query that would run for hours, stops within seconds, and the file is free again."""
    database = tmp_path / "interrupted.duckdb"
    monkeypatch.setenv("WAREHOUSE_DB", str(database))
    target = tmp_path / "target"
    started = threading.Event()

    def on_event(msg) -> None:
        if msg.info.name == "NodeExecuting" and not started.is_set():
            started.set()
            threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()

    argv = _show_argv("select count(*) from range(10000000000000)", target)  # 10^13 rows: hours on this machine
    begun = time.monotonic()
    with pytest.raises(DagsterExecutionInterruptedError), raise_interrupts_as(DagsterExecutionInterruptedError):
        dbt_in_process.invoke(argv, callbacks=[on_event])
    assert started.is_set()
    assert time.monotonic() - begun < 600  # not the query's hours (the interrupt came after ~1 s)
    assert [t.name for t in threading.enumerate() if t.name == "dbt"] == []  # dbt's thread ended
    with duckdb.connect(str(database), config={"memory_limit": "1GB"}) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_results_of_nodes_the_loaded_manifest_lacks_are_set_apart_not_a_crash():
    """A model added after the code location loaded its manifest is built by dbt (which parses the
    project again) but has no Dagster asset: its result is set apart and named, the others kept
    (unit tests are in the manifest's `unit_tests`, not its `nodes`)."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    model = "model.baltimore_warehouse.dim_date"
    unit_test = next(iter(manifest["unit_tests"]))

    def result(unique_id: str) -> dict:
        return {"info": {"name": "LogModelResult"}, "data": {"node_info": {"unique_id": unique_id}}}

    added = "model.baltimore_warehouse.mart_added_since_the_definitions_loaded"
    known, unknown = dbt_in_process.split_by_manifest([result(model), result(added), result(unit_test)], manifest)
    assert [r["data"]["node_info"]["unique_id"] for r in known] == [model, unit_test]
    assert unknown == {added}


def _steady(events: collections.Counter) -> collections.Counter:
    """(event name, level) counts without dbt's connection bookkeeping, whose counts vary."""
    return collections.Counter({key: n for key, n in events.items() if "Connection" not in key[0]})


def test_dbt_makes_and_formats_only_the_log_lines_it_writes_and_writes_the_same_ones(tmp_path, monkeypatch, capsys):
    """dbt-core makes every event a message, formats it for its file log (JSON) and its console
    (text) and lets Python's logging drop the lines below their level afterwards. Through `invoke`
    only the lines written, or read by a callback, are made and formatted; the file, the console
    and our callbacks get the same lines and events as from dbt left alone, at level info (the
    default) and at debug (every statement)."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events import event_manager as dbt_event_manager
    from dbt_common.events import logger as dbt_logger

    monkeypatch.setenv("WAREHOUSE_DB", str(tmp_path / "formatting.duckdb"))
    formatted: collections.Counter = collections.Counter()  # lines formatted, by dbt logger
    written: collections.Counter = collections.Counter()  # lines Python's logging passed on to be written
    for cls in (dbt_logger._JsonLogger, dbt_logger._TextLogger):

        def counting(self, msg, _original=cls.create_line):
            formatted[self.name] += 1
            return _original(self, msg)

        monkeypatch.setattr(cls, "create_line", counting)

    def handle(self, record, _original=logging.Logger.handle):
        written[record.name] += 1
        return _original(self, record)

    monkeypatch.setattr(logging.Logger, "handle", handle)
    built = collections.Counter()  # messages dbt made of its events

    def build(event, level=None, _original=dbt_event_manager.msg_from_base_event):
        built["messages"] += 1
        return _original(event, level=level)

    monkeypatch.setattr(dbt_event_manager, "msg_from_base_event", build)

    def run(label: str, level_file: str, through_invoke: bool, reads_all: bool = False) -> dict:
        target = tmp_path / label
        formatted.clear()
        written.clear()
        built.clear()
        capsys.readouterr()
        seen: collections.Counter = collections.Counter()  # what a callback of ours was handed

        def callback(msg) -> None:
            seen[(msg.info.name, msg.info.level)] += 1

        if not reads_all:
            setattr(callback, dbt_in_process.READS_NO_QUIET_EVENTS, True)
        argv = _show_argv("select 42 as answer", target, "--log-format-file", "json", "--log-level-file", level_file)
        if through_invoke:
            result = dbt_in_process.invoke(argv, callbacks=[callback])
        else:
            result = dbtRunner(callbacks=[callback]).invoke(argv)
        assert result.success
        file_lines = [json.loads(line) for line in (target / "dbt.log").read_text().splitlines()]
        return {
            "file": collections.Counter((e["info"]["name"], e["info"]["level"]) for e in file_lines),
            "console": collections.Counter(re.sub(r"\d", "", line) for line in capsys.readouterr().out.splitlines()),
            "formatted": {name: formatted[name] for name in ("file_log", "stdout_log")},
            "written": {name: written[name] for name in ("file_log", "stdout_log")},
            "built": built["messages"],
            "seen": seen,
            # what the file says of each statement (debug events): made from the same arguments
            "queries": collections.Counter(e["data"]["sql"] for e in file_lines if e["info"]["name"] == "SQLQuery"),
        }

    plain_info = {}
    for level in ("info", "debug"):
        plain = run(f"plain_{level}", level, through_invoke=False)
        plain_info = plain_info or plain
        ours = run(f"ours_{level}", level, through_invoke=True)
        # every event of the file log in equal numbers, but dbt's connection bookkeeping (debug):
        # whether a node's thread opens a new connection or reuses one differs from run to run
        assert _steady(ours["file"]) == _steady(plain["file"])
        assert ours["console"] == plain["console"]
        assert "| answer |" in ours["console"]  # the print event reached the console
        assert ours["written"]["stdout_log"] == plain["written"]["stdout_log"]
        assert ours["written"]["file_log"] == sum(ours["file"].values())
        assert ours["formatted"] == ours["written"]
        # what it saves: dbt left alone formats the console's debug events too (and, at info,
        # the file's), then drops them
        assert plain["formatted"]["stdout_log"] > plain["written"]["stdout_log"] > 0
        if level == "info":
            assert plain["formatted"]["file_log"] > plain["written"]["file_log"] > 0
            assert all(lvl != "debug" for _, lvl in ours["file"])
            # a callback that reads no debug event is handed every other event, as from dbt left
            # alone, and no message is made of a debug event nobody reads (most of dbt's events)
            assert ours["seen"] == collections.Counter({k: n for k, n in plain["seen"].items() if k[1] != "debug"})
            assert sum(plain["seen"].values()) == plain["built"] > 2 * ours["built"]
            assert ours["built"] == sum(ours["seen"].values())
        else:
            assert sum(n for (_, lvl), n in ours["file"].items() if lvl == "debug") > 10
            assert ours["queries"] == plain["queries"] and len(ours["queries"]) > 0
            # the file log writes debug events: each is made a message, and the callback gets it too
            assert _steady(ours["seen"]) == _steady(plain["seen"])
            assert ours["built"] == sum(ours["seen"].values())
    # a callback that may read anything (not marked) is handed every event, debug ones too
    everything = run("ours_reads_all", "info", through_invoke=True, reads_all=True)
    assert _steady(everything["seen"]) == _steady(plain_info["seen"])
    assert everything["built"] == sum(everything["seen"].values())
    # dbt's own behaviour is back once the invocation has ended
    from dbt_common.events.event_manager import EventManager

    assert EventManager.add_logger.__qualname__ == "EventManager.add_logger"
    assert EventManager.fire_event.__qualname__ == "EventManager.fire_event"


def test_a_debug_event_is_made_when_first_read_and_the_same_as_one_made_at_once(monkeypatch):
    """`made_only_when_read`: dbt's debug events keep their arguments until read; what is read is
    what dbt makes of them at once; other events are made at once; dbt's class is its own after."""
    from dbt.adapters.events.types import SQLQuery
    from dbt_common.events import base_types
    from dbt_common.events.types import Note

    made = collections.Counter()

    def counting(js_dict, message, *args, _original=base_types.ParseDict, **kwargs):
        made[type(message).__name__] += 1
        return _original(js_dict, message, *args, **kwargs)

    monkeypatch.setattr(base_types, "ParseDict", counting)
    arguments = {
        "conn_name": "model.x",
        "sql": "select 1",
        "node_info": {"unique_id": "model.x", "node_status": "started"},
    }
    at_once = SQLQuery(**arguments)
    assert made == {"SQLQuery": 1}
    original = (base_types.BaseEvent.__init__, base_types.BaseEvent.__getattr__, base_types.BaseEvent.__setattr__)

    with dbt_in_process.made_only_when_read():
        dropped = SQLQuery(**arguments)
        assert dropped.level_tag().value == "debug"  # what decides whether it is read: no protobuf yet
        assert made == {"SQLQuery": 1}
        read = SQLQuery(**arguments)
        assert read.message() == "On model.x: select 1" == at_once.message()
        assert read.to_dict() == at_once.to_dict()
        assert made == {"SQLQuery": 2}
        changed = SQLQuery(**arguments)
        changed.sql = "select 2"  # setting makes it first, then sets
        assert changed.message() == "On model.x: select 2"
        note = Note(msg="an info event")  # not a debug event: made at once
        assert made == {"SQLQuery": 3, "Note": 1}
        kept = SQLQuery(**{**arguments, "sql": "select 3"})
        broken = SQLQuery(conn_name="model.x", sql=["not", "text"])  # dbt raises under pytest
        with pytest.raises(Exception, match="Unable to parse logging event dictionary"):
            broken.message()  # when read, not when created
        del dropped, broken
        held_broken = SQLQuery(conn_name="model.x", sql=["not", "text"])  # held past the block
    # an event still held when the block closes is made then, and reads as ever with dbt's class
    assert (
        base_types.BaseEvent.__init__,
        base_types.BaseEvent.__getattr__,
        base_types.BaseEvent.__setattr__,
    ) == original
    assert made["SQLQuery"] == 6  # the held broken one was tried at the close, without raising there
    with pytest.raises(AttributeError):
        held_broken.message()
    assert kept.message() == "On model.x: select 3"
    assert note.msg == "an info event"


def test_an_invocation_without_results_writes_no_run_results(tmp_path):
    """dbt that failed before running anything (a parse error) has no result: nothing is written."""
    path = tmp_path / dbt_in_process.RUN_RESULTS
    for outcome in (None, types.SimpleNamespace(result=None), types.SimpleNamespace(result="a manifest, not results")):
        assert dbt_in_process.write_run_results(outcome, path) is False
    assert not path.exists()
