"""dbt's build in the run's own process (dbt's `dbtRunner`), with dagster-dbt's events for its results.

dagster-dbt's `DbtCliResource.cli` starts dbt as a new process for every build. That process
imports dbt-core again (about 2 s, which the run's process has already paid: dagster-dbt imports
it) before it reads a single file. This runs the same command in the run's process instead:

- the selection is the one dagster-dbt computes for the run (a subset of the dbt assets picked
  in the UI, or of their checks), by dagster-dbt's own function;
- dbt's result events are turned into Dagster events by dagster-dbt's own event class, from the
  same structured form (`msg_to_dict` is what dbt's JSON log writes for each event);
- dbt's text log goes to the step's stdout, as dagster-dbt's re-emitted lines did, and its log
  file in the target folder stays JSON;
- a run terminated from the UI (Dagster raises its interrupt in the run's main thread) stops dbt
  the way Ctrl-C stops the `dbt` command: dbt cancels its queries (a build, run with
  `--no-write-json`, then leaves no run results: `write_run_results` writes those of a build
  that finished).

The DuckDB file is closed when dbt has finished (`release_database`), so DuckDB's one writer is
free for the steps that follow and for other processes, as it was when the dbt process ended.

dbt formats a log line only when it will be written (`formatted_only_when_written`): dbt-core
1.11 formats every event for each of its logs (its file log's JSON, its console's text) and then
lets Python's logging drop the line below the log's level, so the thousands of debug events of a
build (every SQL statement, connection and transaction) cost their JSON and text at level info.

dbt builds an event's message only when something reads it (`built_only_when_read`): of the
~3,700 events of a one-day update ~3,350 are debug events that no log at level info writes and
no callback of ours reads, yet dbt-core made each one's message (its text and a protobuf copy).

dbt's Jinja is compiled to Python once and kept in the target folder for the next run
(`jinja_code_cache`): every run is a new process, and dbt compiles each node's template anew.
So are the JSON schemas dbt checks its configuration with (`dbt_schema_cache`).
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource
from dagster_dbt.asset_utils import extract_runtime_selection_from_args, get_updated_cli_invocation_params_for_context
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

from orchestration import dbt_schema_cache, jinja_code_cache

# the artifact of a dbt invocation that is kept (see `write_run_results`)
RUN_RESULTS = "run_results.json"
# what dbt writes with `--write-json` besides the run results (`write_run_results`)
UNWRITTEN_ARTIFACTS = ("manifest.json", "semantic_manifest.json", "graph.gpickle")
# dbt's events that carry a node's result (what dagster-dbt turns into outputs and check results)
RESULT_EVENTS = frozenset({"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"})
# how often the waiting thread looks for an interrupt, and how long dbt gets to stop after one
_POLL_SECONDS = 0.05
_STOP_SECONDS = 120.0
# the Python logging level at which dbt writes a line of each event level (dbt_common's
# `send_to_logger`; print events are written as errors, so that --quiet still shows them)
_PYTHON_LEVELS = {
    "test": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


# event levels whose events no callback of ours reads (dbt fires one for every statement,
# connection and transaction of a build)
_QUIET_LEVELS = frozenset({"debug", "test"})
# a callback with this attribute set true reads no event of those levels
READS_NO_QUIET_EVENTS = "reads_no_quiet_events"


@dataclass
class DbtBuild:
    """One finished dbt invocation: its Dagster events, outcome and where its artifacts are."""

    events: list[Any]
    success: bool
    manifest: Mapping[str, Any]
    target_path: Path
    exception: BaseException | None = None
    # dbt's status of each node it ran in this invocation ("success", "pass", "fail", "error",
    # "skipped", ...), unit tests included (they give Dagster no event)
    statuses: Mapping[str, str] = field(default_factory=dict)


def dbt_argv(
    dbt: DbtCliResource, args: Sequence[str], selection_args: Sequence[str], project_dir: Path, target_path: Path
) -> list[str]:
    """The command line for `dbtRunner`: dagster-dbt's (global flags, arguments, selection), with
    the settings it passes to its process as environment variables given as flags instead, so
    that they apply to this invocation only."""
    argv = [*dbt.global_config_flags, *args]
    if dbt.profile:
        argv += ["--profile", dbt.profile]
    if dbt.target:
        argv += ["--target", dbt.target]
    argv += [*selection_args, "--project-dir", str(project_dir), "--target-path", str(target_path)]
    argv += ["--log-path", str(target_path), "--log-format-file", "json", "--no-send-anonymous-usage-stats"]
    if dbt.profiles_dir:
        argv += ["--profiles-dir", str(dbt.profiles_dir)]
    return argv


def run_build(
    dbt: DbtCliResource, args: Sequence[str], *, context: dg.AssetExecutionContext, target_path: Path
) -> DbtBuild:
    """Run `dbt <args>` for the dbt assets the run selected, in this process; returns its events."""
    cleaned, selects, excludes = extract_runtime_selection_from_args(args)
    params = get_updated_cli_invocation_params_for_context(
        context=context,
        manifest={},
        dagster_dbt_translator=DagsterDbtTranslator(),
        runtime_selects=selects,
        runtime_excludes=excludes,
    )
    project_dir = Path(params.dbt_project.project_dir if params.dbt_project else dbt.project_dir)
    argv = dbt_argv(dbt, cleaned, params.selection_args, project_dir, target_path)
    if params.indirect_selection:
        argv += ["--indirect-selection", params.indirect_selection]
    # dbt's JSON artifacts but run_results.json (`write_run_results`): nothing reads the others,
    # and copies an earlier build left would be taken for this one's
    argv += ["--no-write-json"]
    results_path = target_path / RUN_RESULTS
    for name in (RUN_RESULTS, *UNWRITTEN_ARTIFACTS):
        (target_path / name).unlink(missing_ok=True)

    results: list[dict[str, Any]] = []

    def collect(msg: Any) -> None:  # called from dbt's threads
        if msg.info.name in RESULT_EVENTS:
            results.append(_msg_to_dict(msg))

    setattr(collect, READS_NO_QUIET_EVENTS, True)  # the result events are at level info

    outcome = invoke(argv, callbacks=[collect], cache_folder=target_path)
    write_run_results(outcome, results_path)
    known, unknown = split_by_manifest(results, params.manifest)
    if unknown:
        context.log.warning(
            f"dbt ran {len(unknown)} node(s) the code location's manifest does not have, so Dagster reports "
            f"nothing for them (the dbt project changed since the definitions were loaded: reload the code "
            f"location): {sorted(unknown)[:20]}"
        )
    messages = [DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={}) for raw in known]
    events = [
        event
        for message in messages
        if message.is_result_event  # not a unit test's (dagster-dbt reports those as nothing either)
        for event in message.to_default_asset_events(
            manifest=params.manifest,
            dagster_dbt_translator=params.dagster_dbt_translator,
            context=context,
            target_path=target_path,
            project=params.dbt_project,
        )
    ]
    return DbtBuild(
        events=events,
        success=outcome.success,
        manifest=params.manifest,
        target_path=target_path,
        exception=outcome.exception,
        statuses={raw["data"]["node_info"]["unique_id"]: node_status(raw) for raw in known},
    )


def write_run_results(outcome: Any, path: Path) -> bool:
    """Write dbt's `run_results.json` for a finished invocation, as dbt does with `--write-json`.

    With `--write-json` (its default) dbt also serializes the whole manifest to `manifest.json`
    twice per build (after parsing, and again after running) and pickles its graph: about 0.6 s
    of every one-day update, mostly mashumaro generating the serializers of dbt's manifest
    classes in each new process. Nothing reads those files from the warehouse's target folder
    (the code location's manifest is the project's own `target/manifest.json`, made by `dbt
    parse`); the run results are read (failing rows, the bench, the PHI test), so they are
    written here, by the same call dbt makes (`RunExecutionResult.write`). Returns whether it
    wrote them: an invocation that failed before it ran anything has no results, as with dbt."""
    result = getattr(outcome, "result", None)
    if result is None or not hasattr(result, "write") or not hasattr(result, "results"):
        return False
    result.write(str(path))
    return True


def node_status(raw: Mapping[str, Any]) -> str:
    """dbt's status of the node of a result event ("success", "pass", "fail", ...). A test's
    result event carries it in its own `status`: a unit test's node_info says "None"."""
    data = raw.get("data", {})
    if raw.get("info", {}).get("name") == "LogTestResult" and data.get("status"):
        return str(data["status"])
    return str(data.get("node_info", {}).get("node_status"))


def split_by_manifest(
    results: list[dict[str, Any]], manifest: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], set[str]]:
    """dbt's result events whose node the manifest has, and the unique ids of those it lacks.

    dbt parses the project again when it starts; a model added or renamed after the code location
    loaded its manifest is built, but Dagster has no asset for it (dagster-dbt would fail on a
    KeyError after the build). dbt's own success or failure still decides the step's."""
    ids = set(manifest.get("nodes", {})) | set(manifest.get("unit_tests", {}))
    known, unknown = [], set()
    for raw in results:
        unique_id = raw.get("data", {}).get("node_info", {}).get("unique_id")
        if unique_id in ids:
            known.append(raw)
        else:
            unknown.add(str(unique_id))
    return known, unknown


def _msg_to_dict(msg: Any) -> dict[str, Any]:
    from dbt_common.events.functions import msg_to_dict

    return msg_to_dict(msg)


def _written(python_logger: logging.Logger | None, msg: Any, is_print_event: Callable[[Any], bool]) -> bool:
    """Whether dbt's logger writes the line of `msg`: the test `send_to_logger` leaves to Python's
    logging, made before the line is formatted instead of after. True when it cannot tell (no
    Python logger, an unknown level: dbt then does what it always does). Called for every event
    of a build, so dbt's `_is_print_event` is passed in rather than imported here."""
    return _writes(python_logger, "error" if is_print_event(msg) else msg.info.level)


def _writes(python_logger: logging.Logger | None, level: str) -> bool:
    """Whether a dbt log whose Python logger is `python_logger` writes lines of dbt's `level`
    (Python's logging's own test); True when it cannot tell (no Python logger, an unknown level)."""
    python_level = _PYTHON_LEVELS.get(level)
    return python_logger is None or python_level is None or python_logger.isEnabledFor(python_level)


@contextmanager
def formatted_only_when_written() -> Iterator[None]:
    """While open, each log dbt sets up skips the events its level does not write before
    formatting them, rather than after; the lines written are the same.

    dbt-core's loggers are created by `setup_event_logger` when an invocation starts (a new set
    for each); their own filter only drops events by name, and `write_line` formats the line
    (`msg_to_dict` and `json.dumps` for the JSON file log) before Python's logging compares
    levels. Each logger created while this is open gets the level test first. Nothing else of
    dbt changes: a logger created after it closes is dbt's own, and one whose Python logger
    cannot be read is left as it is.
    """
    from dbt_common.events.event_manager import EventManager
    from dbt_common.events.logger import _is_print_event

    original = EventManager.add_logger

    def add_logger(self: Any, config: Any) -> None:
        original(self, config)
        logger = self.loggers[-1]
        python_logger, dbt_filter = getattr(logger, "_python_logger", None), logger.filter
        logger.filter = lambda msg: _written(python_logger, msg, _is_print_event) and dbt_filter(msg)

    EventManager.add_logger = add_logger  # type: ignore[method-assign]
    try:
        yield
    finally:
        EventManager.add_logger = original  # type: ignore[method-assign]


def _read(manager: Any, event: Any, level: Any, tracking_callback: Callable[[Any], None]) -> bool:
    """Whether anything would read the message of `event`: a log writing its level or a callback
    that may read it. True when it cannot tell (dbt then does what it always does)."""
    try:
        name = level.value if level is not None else event.level_tag().value
    except Exception:  # noqa: BLE001 - an event dbt can level itself, or not: left to dbt
        return True
    if name not in _QUIET_LEVELS:
        return True
    if any(_writes(getattr(logger, "_python_logger", None), name) for logger in manager.loggers):
        return True
    # dbt's own tracking callback reads one event, a warning
    return any(
        callback is not tracking_callback and not getattr(callback, READS_NO_QUIET_EVENTS, False)
        for callback in manager.callbacks
    )


@contextmanager
def built_only_when_read() -> Iterator[None]:
    """While open, dbt makes no message of a debug event that no log writes and no callback reads.

    dbt-core's `EventManager.fire_event` first turns every event into a message (the event's
    text, its protobuf copied into an envelope with the time, thread and invocation), then offers
    it to each log, which drops it by level, and to each callback. At the default level info, the
    debug events of a build (each SQL statement with its status, every connection and rollback)
    are made into messages for nothing. Such an event is dropped before that, when its level is
    debug (or test), every log's Python logger is above it, and every callback says it reads no
    such event (`READS_NO_QUIET_EVENTS`; dbt's tracking callback reads a warning only). Warnings,
    errors and forced warn-or-error handling always go through dbt, as does any event when a
    callback may read it: the lines written and the events our callbacks see are the same.
    """
    from dbt.tracking import track_behavior_change_warn
    from dbt_common.events.event_manager import EventManager

    original = EventManager.fire_event

    def fire_event(
        self: Any, e: Any, level: Any = None, node: Any = None, force_warn_or_error_handling: bool = False
    ) -> None:
        if force_warn_or_error_handling or _read(self, e, level, track_behavior_change_warn):
            original(self, e, level=level, node=node, force_warn_or_error_handling=force_warn_or_error_handling)

    EventManager.fire_event = fire_event  # type: ignore[method-assign]
    try:
        yield
    finally:
        EventManager.fire_event = original  # type: ignore[method-assign]


# where an event made by `made_only_when_read` keeps its arguments until something reads it
_ARGUMENTS = "_dbt_event_arguments"


@contextmanager
def made_only_when_read() -> Iterator[None]:
    """While open, dbt's debug events (and test-level ones) make their protobuf when first read.

    dbt makes each event's protobuf from its arguments when the event is created (protobuf's
    `ParseDict`, at the call site: `fire_event(SQLQuery(sql=..., node_info=...))`), before
    `fire_event` is called, so the debug events `built_only_when_read` drops were still made:
    about a second of dbt's threads in a one-day update. Such an event now keeps its arguments
    and makes its protobuf, by dbt's own constructor, the first time anything reads or sets an
    attribute of it: its message, a log line, a callback. An event nobody reads is never made.
    Events of other levels, and any event given positional arguments, are made at once as before.
    When the block closes, every such event still alive is made, and dbt's class is its own again.
    """
    from dbt_common.events.base_types import BaseEvent, DebugLevel, TestLevel

    original_init, original_getattr, original_setattr = BaseEvent.__init__, BaseEvent.__getattr__, BaseEvent.__setattr__
    waiting: weakref.WeakSet = weakref.WeakSet()

    def make(event: Any) -> None:
        arguments = event.__dict__.pop(_ARGUMENTS, None)
        if arguments is not None:
            original_init(event, **arguments)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807 - dbt's method
        if args or not isinstance(self, DebugLevel | TestLevel):
            original_init(self, *args, **kwargs)
        else:
            self.__dict__[_ARGUMENTS] = kwargs
            waiting.add(self)

    def __getattr__(self: Any, key: str) -> Any:  # noqa: N807 - only for what the instance lacks
        if _ARGUMENTS in self.__dict__:
            make(self)
            return getattr(self, key)
        return original_getattr(self, key)

    def __setattr__(self: Any, key: str, value: Any) -> None:  # noqa: N807
        make(self)
        original_setattr(self, key, value)

    BaseEvent.__init__, BaseEvent.__getattr__, BaseEvent.__setattr__ = __init__, __getattr__, __setattr__
    try:
        yield
    finally:
        for event in list(waiting):  # kept by someone past the invocation: readable as ever
            try:
                make(event)
            except Exception:  # noqa: BLE001, S112 - dbt's own error for it, raised here, would hide the build's
                continue
        BaseEvent.__init__, BaseEvent.__getattr__, BaseEvent.__setattr__ = (
            original_init,
            original_getattr,
            original_setattr,
        )


def invoke(argv: list[str], callbacks: list[Callable[[Any], None]], cache_folder: Path | None = None) -> Any:
    """`dbtRunner(callbacks).invoke(argv)` in a thread of its own, while this thread waits.

    dbt's Jinja is compiled through `jinja_code_cache` and its configuration schemas are built
    through `dbt_schema_cache`, both kept in `cache_folder` between invocations (None: during
    this one only).

    The waiting thread is the one Dagster interrupts when the run is terminated. The interrupt is
    passed on to dbt as the `KeyboardInterrupt` Ctrl-C would raise (dbt then cancels its queries
    and, unless `--no-write-json` was given, writes its run results), dbt is given time to stop,
    and the interrupt is raised again.
    """
    from dbt.cli.main import dbtRunner

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with (
                formatted_only_when_written(),
                built_only_when_read(),
                made_only_when_read(),
                jinja_code_cache.compiled_once(cache_folder),
                dbt_schema_cache.schemas_kept(cache_folder),
            ):
                outcome["result"] = dbtRunner(callbacks=callbacks).invoke(argv)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="dbt", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            # a sleep, not `join`: a signal handler raising inside `Thread.join` can leave the
            # thread's bookkeeping inconsistent (seen: `stop` then waited on a finished dbt)
            time.sleep(_POLL_SECONDS)
    except BaseException:
        if not stop(worker):
            logging.getLogger(__name__).error(
                "dbt did not stop within %.0f s of the interrupt; it holds the warehouse until it ends", _STOP_SECONDS
            )
        raise
    finally:
        if not worker.is_alive():
            release_database()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def stop(worker: threading.Thread, timeout: float = _STOP_SECONDS) -> bool:
    """Raise `KeyboardInterrupt` in dbt's thread, cancel its running queries, and wait for it to end.

    dbt's main loop sees the exception when it next runs Python code (when a node finishes), so
    the running queries are cancelled here too, through dbt's adapters. Returns whether dbt ended
    within `timeout` seconds.
    """
    if worker.ident is None or not worker.is_alive():
        return True
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(KeyboardInterrupt))
    _cancel_open_queries()
    worker.join(timeout)
    return not worker.is_alive()


def release_database() -> None:
    """Close the DuckDB database dbt-duckdb keeps open after a build.

    dbt-duckdb holds one database per process between invocations (`keep_open`, true by default
    in dbt-duckdb 1.11) for the next dbt command of the same process. That next command is
    rare here, and an open database keeps DuckDB's one writer from every other process and any
    other configuration in this one (the steps after dbt open it with a memory limit). It is
    opened again, by dbt-duckdb, when dbt next connects.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:  # noqa: SLF001 - dbt-duckdb has no public way to close it
        environment = DuckDBConnectionManager._ENV  # noqa: SLF001
        DuckDBConnectionManager._ENV = None  # noqa: SLF001
        if environment is not None:
            environment.close()


def _cancel_open_queries() -> None:
    from dbt.adapters.factory import FACTORY

    for adapter in list(FACTORY.adapters.values()):
        try:
            adapter.cancel_open_connections()
        except Exception:  # noqa: BLE001, S112 - best effort: dbt cancels them itself on the interrupt
            continue
