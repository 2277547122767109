"""The event log storage `make run` and `make dev` configure (orchestration/event_storage.py).

It writes Dagster's own SQLite files, which the UI, the daemon and later runs read with the
stock storage: whatever it writes, in a batch or on a kept connection, must read back there
exactly as Dagster produced it.
"""

from collections import Counter
from contextlib import contextmanager

import dagster as dg
import pytest
import yaml
from dagster._core.events import ASSET_EVENTS
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from sqlalchemy.sql.dml import Update

from orchestration import settings
from orchestration.event_storage import BATCHED_EVENTS, MAX_OPEN_SHARDS, BatchingSqliteEventLogStorage
from orchestration.partitions import WRITER_POOL
from tests.conftest import makefile_instance_config

DAYS = dg.DailyPartitionsDefinition(start_date="2024-03-01", end_date="2024-03-08")


@dg.asset(partitions_def=DAYS)
def daily_counts(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


@dg.asset_check(asset=daily_counts)
def daily_counts_positive() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.asset(check_specs=[dg.AssetCheckSpec("summary_balanced", asset="summary")])
def summary() -> dg.MaterializeResult:
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(check_name="summary_balanced", passed=False)])


@pytest.fixture
def makefile_config(tmp_path, monkeypatch):
    home = tmp_path / "home"
    config = makefile_instance_config(home)
    settings.ensure_event_batching()  # as the definitions do: range runs hand their events over in batches
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    return yaml.safe_load(config.read_text()), home / "history" / "runs"


def test_every_event_reads_back_through_the_stock_storage(makefile_config, monkeypatch):
    config, runs_dir = makefile_config
    results = []
    # the stock table check opens a new engine; it is asked for every check result and tagged event
    asked = Counter()
    stock_has_table = SqliteEventLogStorage.has_table
    monkeypatch.setattr(
        SqliteEventLogStorage, "has_table", lambda self, name: asked.update([name]) or stock_has_table(self, name)
    )
    with dg.instance_for_test(overrides=config) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, BatchingSqliteEventLogStorage)
        # a range run (its partition events come as one batch), then single days: more runs than
        # the storage keeps connections for
        range_tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-03-01", ASSET_PARTITION_RANGE_END_TAG: "2024-03-07"}
        results.append(dg.materialize([daily_counts, daily_counts_positive], instance=instance, tags=range_tags))
        for day in ("2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05", "2024-03-06"):
            results.append(dg.materialize([daily_counts, daily_counts_positive], instance=instance, partition_key=day))
        results.append(dg.materialize([summary], instance=instance, raise_on_error=False))
        assert len(storage.__dict__["_engines"]) <= MAX_OPEN_SHARDS
        # ... once per table (and process) here: 7 runs wrote 12 check results and 12 materializations
        assert asked["asset_check_executions"] == 1 and max(asked.values()) == 1, asked
        storage.dispose()

    # what the UI reads: the stock storage over the same files, in a new object
    stock = SqliteEventLogStorage(str(runs_dir))
    for result in results:
        produced = Counter(e.event_type_value for e in result.all_events)
        stored = Counter(
            r.dagster_event.event_type_value for r in stock.get_logs_for_run(result.run_id) if r.is_dagster_event
        )
        # every event the run produced (with the planned events written when the run was created)
        assert produced - stored == Counter(), result.run_id
        assert stored["ASSET_MATERIALIZATION_PLANNED"] >= 1
    key = daily_counts.key
    assert stock.get_materialized_partitions(key) == {f"2024-03-0{d}" for d in range(1, 8)}
    # 7 range days + 5 single days
    assert len(stock.fetch_materializations(key, limit=100).records) == 12
    latest = stock.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(key, "daily_counts_positive"), dg.AssetCheckKey(summary.key, "summary_balanced")]
    )
    assert latest[dg.AssetCheckKey(key, "daily_counts_positive")].evaluation.passed is True
    assert latest[dg.AssetCheckKey(summary.key, "summary_balanced")].evaluation.passed is False
    assert latest[dg.AssetCheckKey(summary.key, "summary_balanced")].run_id == results[-1].run_id


def test_a_second_process_sees_each_event_once_committed_and_a_wipe_starts_afresh(makefile_config):
    """Connections stay open between events; another reader must still see every commit at once."""
    config, runs_dir = makefile_config
    with dg.instance_for_test(overrides=config) as instance:
        first = dg.materialize([daily_counts], instance=instance, partition_key="2024-03-01")
        reader = SqliteEventLogStorage(str(runs_dir))
        before = len(reader.get_logs_for_run(first.run_id))
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="landed_by_hand"))
        assert reader.get_latest_materialization_events([dg.AssetKey("landed_by_hand")])[dg.AssetKey("landed_by_hand")]
        assert len(reader.get_logs_for_run(first.run_id)) == before

        instance.event_log_storage.wipe()
        assert reader.get_materialized_partitions(daily_counts.key) == set()
        second = dg.materialize([daily_counts], instance=instance, partition_key="2024-03-02")
        assert second.success
        assert SqliteEventLogStorage(str(runs_dir)).get_materialized_partitions(daily_counts.key) == {"2024-03-02"}


@dg.asset(partitions_def=DAYS)
def daily_sums(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    context.log_event(dg.AssetObservation(asset_key=context.asset_key, metadata={"seen": 1}))
    return dg.MaterializeResult(metadata={"sums": 1}, data_version=dg.DataVersion("v1"))  # an indexed tag


def _table_rows(path, table: str, leave_out: tuple[str, ...] = ()) -> list[dict]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return [
            {k: row[k] for k in row.keys() if k not in leave_out}
            for row in conn.execute(f"select * from {table} order by id")
        ]


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "sqlite-before-3.35"])
def test_a_batch_writes_the_same_rows_as_the_stock_storage_event_by_event(tmp_path, monkeypatch, returning):
    """The batch path (executemany, one asset-key write per key) against Dagster's own `store_event`.

    The events are a real range run's: planned materializations and planned checks (which
    Dagster hands over in one batch when it creates the run), per-partition materializations with
    their indexed tags, observations, for two assets, one of which already has an `asset_keys`
    row; then the check's result, stored event by event, which must find the planned row.
    Where SQLite has no RETURNING (before 3.35) the index's ids come from one insert at a time.
    """
    from sqlalchemy.dialects.sqlite.base import SQLiteDialect

    if not returning:
        monkeypatch.setattr(SQLiteDialect, "insert_returning", False)
    assert SQLiteDialect(paramstyle="qmark").insert_executemany_returning_sort_by_parameter_order is returning
    with dg.instance_for_test() as source:
        range_tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-03-01", ASSET_PARTITION_RANGE_END_TAG: "2024-03-07"}
        run = dg.materialize([daily_counts, daily_counts_positive, daily_sums], instance=source, tags=range_tags)
        entries = [r for r in source.all_logs(run.run_id) if r.is_dagster_event]
    planned = [
        e for e in entries if e.dagster_event_type in BATCHED_EVENTS and e.dagster_event_type.value.endswith("PLANNED")
    ]
    done = [e for e in entries if e.dagster_event_type in ASSET_EVENTS and e not in planned]
    evaluations = [e for e in entries if e.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    kinds = Counter(e.dagster_event_type.value for e in planned + done + evaluations)
    assert kinds == {
        "ASSET_MATERIALIZATION_PLANNED": 14,
        "ASSET_CHECK_EVALUATION_PLANNED": 1,
        "ASSET_MATERIALIZATION": 14,
        "ASSET_OBSERVATION": 1,
        "ASSET_CHECK_EVALUATION": 1,
    }, kinds
    # gives daily_sums an asset_keys row before the batch
    earlier = next(e for e in done if e.dagster_event.asset_key == daily_sums.key)
    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    batching = BatchingSqliteEventLogStorage(str(tmp_path / "batching"))
    for storage in (stock, batching):
        storage.store_event(earlier)
    for event in planned + done + evaluations:
        stock.store_event(event)
    # as Dagster hands them over: planned events at the run's start, then each step's events
    batching.store_event_batch(planned)
    batching.store_event_batch(done)
    for event in evaluations:
        batching.store_event(event)
    batching.dispose()
    stock.dispose()

    for shard in ("index", run.run_id):
        ours = _table_rows(tmp_path / "batching" / f"{shard}.db", "event_logs")
        assert ours == _table_rows(tmp_path / "stock" / f"{shard}.db", "event_logs"), shard
        assert len(ours) == 1 + 31
    tags = _table_rows(tmp_path / "batching" / "index.db", "asset_event_tags")
    assert tags == _table_rows(tmp_path / "stock" / "index.db", "asset_event_tags")
    assert [t["key"] for t in tags] == ["dagster/data_version"] * 14
    keys = _table_rows(tmp_path / "batching" / "index.db", "asset_keys", leave_out=("create_timestamp",))
    assert keys == _table_rows(tmp_path / "stock" / "index.db", "asset_keys", leave_out=("create_timestamp",))
    assert len(keys) == 2 and all(k["last_materialization"] for k in keys)
    checks = _table_rows(tmp_path / "batching" / "index.db", "asset_check_executions", leave_out=("create_timestamp",))
    assert checks == _table_rows(
        tmp_path / "stock" / "index.db", "asset_check_executions", leave_out=("create_timestamp",)
    )
    # a row planned per day of the range (Dagster 1.13 leaves them planned and stores the range
    # step's result as a row of its own, without a partition: the stock storage's rows above)
    days = [f"2024-03-0{d}" for d in range(1, 8)]
    assert [(c["partition"], c["execution_status"]) for c in checks] == [
        *((day, "PLANNED") for day in days),
        (None, "SUCCEEDED"),
    ]
    # what the UI asks for reads back the same
    reader = SqliteEventLogStorage(str(tmp_path / "batching"))
    assert reader.get_materialized_partitions(daily_sums.key) == {f"2024-03-0{d}" for d in range(1, 8)}
    last_stored = max(r.storage_id for r in reader.fetch_materializations(daily_sums.key, limit=100).records)
    record = reader.get_asset_records([daily_sums.key])[0].asset_entry.last_materialization_record
    assert record.storage_id == last_stored
    check_key = dg.AssetCheckKey(daily_counts.key, "daily_counts_positive")
    assert reader.get_latest_asset_check_execution_by_key([check_key])[check_key].evaluation.passed is True


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "sqlite-before-3.35"])
def test_a_batch_whose_index_write_fails_is_stored_once_by_dagsters_fallback(
    makefile_config, tmp_path, monkeypatch, returning
):
    """The shard and the index are two transactions. When the index's fails, the batch is taken
    out of the run's shard again before the error reaches Dagster, whose fallback then stores
    each event one by one: every event ends up once in each, as the stock storage writes it."""
    from dagster._core.events import DagsterEventBatchMetadata
    from sqlalchemy.dialects.sqlite.base import SQLiteDialect

    if not returning:
        monkeypatch.setattr(SQLiteDialect, "insert_returning", False)
    config, runs_dir = makefile_config
    with dg.instance_for_test() as source:
        range_tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-03-01", ASSET_PARTITION_RANGE_END_TAG: "2024-03-07"}
        run = dg.materialize([daily_counts, daily_counts_positive, daily_sums], instance=source, tags=range_tags)
        entries = [r for r in source.all_logs(run.run_id) if r.is_dagster_event]
    asset_events = [e for e in entries if e.dagster_event_type in BATCHED_EVENTS]  # with the planned check
    assert len(asset_events) == 30

    failures = []
    stock_tags = BatchingSqliteEventLogStorage._store_asset_event_tags

    def fail_once(self, conn, events, event_ids):  # the index's transaction fails, the first time only
        if not failures:
            failures.append(len(events))
            raise RuntimeError("disk I/O error (injected)")
        return stock_tags(self, conn, events, event_ids)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "_store_asset_event_tags", fail_once)
    with dg.instance_for_test(overrides=config) as instance:
        assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
        for i, event in enumerate(asset_events):
            metadata = DagsterEventBatchMetadata("batch", is_end=i == len(asset_events) - 1)
            instance.handle_new_event(event, batch_metadata=metadata)
        instance.event_log_storage.dispose()
    # the batch (29 asset events and the planned check) failed as a whole, then went through the fallback
    assert failures == [29]

    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    for event in asset_events:
        stock.store_event(event)
    stock.dispose()
    for shard in ("index", run.run_id):
        ours = _table_rows(runs_dir / f"{shard}.db", "event_logs", leave_out=("id",))
        assert ours == _table_rows(tmp_path / "stock" / f"{shard}.db", "event_logs", leave_out=("id",)), shard
        assert len(ours) == 30, shard
    keys = _table_rows(runs_dir / "index.db", "asset_keys", leave_out=("create_timestamp",))
    assert keys == _table_rows(tmp_path / "stock" / "index.db", "asset_keys", leave_out=("create_timestamp",))
    checks = _table_rows(runs_dir / "index.db", "asset_check_executions", leave_out=("id", "create_timestamp"))
    stock_checks = _table_rows(
        tmp_path / "stock" / "index.db", "asset_check_executions", leave_out=("id", "create_timestamp")
    )
    # the ids of the index's events differ (the failed batch's were rolled back), so compare without them
    leave = ("evaluation_event_storage_id",)
    assert [{k: v for k, v in c.items() if k not in leave} for c in checks] == [
        {k: v for k, v in c.items() if k not in leave} for c in stock_checks
    ]
    assert len(checks) == 7  # planned once, for each day of the range


def test_when_the_shard_cannot_be_cleaned_either_the_index_error_is_raised_and_a_warning_says_so(
    tmp_path, monkeypatch, caplog
):
    """Both writes failing: the caller (Dagster's fallback) gets the index's error, not the
    cleanup's, and the log says the batch may be listed twice in the run's shard."""
    with dg.instance_for_test() as source:
        run = dg.materialize([daily_counts], instance=source, partition_key="2024-03-01")
        events = [r for r in source.all_logs(run.run_id) if r.dagster_event_type in ASSET_EVENTS]
    assert len(events) == 2  # planned, materialized
    storage = BatchingSqliteEventLogStorage(str(tmp_path))

    def index_fails(*args):
        raise RuntimeError("index write failed (injected)")

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "_store_asset_event_tags", index_fails)
    stock_run_connection = BatchingSqliteEventLogStorage.run_connection
    calls = []

    def second_use_fails(self, run_id=None):  # the insert goes through, the cleanup cannot connect
        calls.append(run_id)
        if len(calls) > 1:
            raise OSError("disk full (injected)")
        return stock_run_connection(self, run_id)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "run_connection", second_use_fails)
    with caplog.at_level("WARNING", logger="orchestration.event_storage"):
        with pytest.raises(RuntimeError, match="index write failed"):
            storage.store_event_batch(events)
    storage.dispose()
    assert calls == [run.run_id, run.run_id]
    assert "could not take a failed batch of 2 events out of run" in caplog.text
    assert run.run_id in caplog.text


@dg.asset(check_specs=[dg.AssetCheckSpec("first", asset="two_checks"), dg.AssetCheckSpec("second", asset="two_checks")])
def two_checks() -> dg.MaterializeResult:
    results = [dg.AssetCheckResult(check_name=name, passed=True) for name in ("first", "second")]
    return dg.MaterializeResult(check_results=results)


def test_a_batch_of_planned_checks_alone_writes_the_stock_rows(tmp_path):
    """A batch may hold planned checks and no asset event at all: the check rows are written,
    no asset key row or tag is, and the results then find their planned rows."""
    with dg.instance_for_test() as source:
        run = dg.materialize([two_checks], instance=source)
        entries = [r for r in source.all_logs(run.run_id) if r.is_dagster_event]
    planned = [e for e in entries if e.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED]
    evaluations = [e for e in entries if e.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    assert len(planned) == 2 and len(evaluations) == 2
    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    batching = BatchingSqliteEventLogStorage(str(tmp_path / "batching"))
    leave = ("create_timestamp",)

    def check_rows(folder: str) -> list[dict]:
        return _table_rows(tmp_path / folder / "index.db", "asset_check_executions", leave_out=leave)

    for event in planned:
        stock.store_event(event)
    batching.store_event_batch(planned)
    # the planned rows themselves (a result stored later inserts a row where none was planned,
    # which would hide a missing one)
    assert check_rows("batching") == check_rows("stock")
    assert [(c["check_name"], c["execution_status"]) for c in check_rows("batching")] == [
        ("first", "PLANNED"),
        ("second", "PLANNED"),
    ]
    for event in evaluations:
        stock.store_event(event)
        batching.store_event(event)
    batching.dispose()
    stock.dispose()
    for shard in ("index", run.run_id):
        assert _table_rows(tmp_path / "batching" / f"{shard}.db", "event_logs") == _table_rows(
            tmp_path / "stock" / f"{shard}.db", "event_logs"
        )
    checks = check_rows("batching")
    assert checks == check_rows("stock")
    statuses = [(c["check_name"], c["execution_status"]) for c in checks]
    assert statuses == [("first", "SUCCEEDED"), ("second", "SUCCEEDED")]
    assert _table_rows(tmp_path / "batching" / "index.db", "asset_keys") == []


class _ClaimsBetween:
    """A connection that lets another process's whole claim run just before this one's first
    write to the slot table, as two run workers claiming in the same instant can do."""

    def __init__(self, conn, other_claim) -> None:
        self._conn = conn
        self._other_claim = other_claim

    def execute(self, statement, *args, **kwargs):
        table = getattr(statement, "table", None)
        if isinstance(statement, Update) and getattr(table, "name", None) == "concurrency_slots" and self._other_claim:
            claim, self._other_claim = self._other_claim, None
            claim()
        return self._conn.execute(statement, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_two_workers_claiming_the_one_free_writer_slot_at_once_get_it_once(tmp_path, monkeypatch):
    """Dagster can assign a freed slot to two steps at once (the step that freed it is unqueued
    before the next waiting step is assigned, so a step enqueued in between sees a free slot
    too); the slot row is then the only guard. Claiming it must be one atomic step: the stock
    select-then-update gave the one slot to both."""
    first = BatchingSqliteEventLogStorage(str(tmp_path))
    second = BatchingSqliteEventLogStorage(str(tmp_path))  # another process on the same files
    first.set_concurrency_slots(WRITER_POOL, 1)
    for storage, run_id in ((first, "run_a"), (second, "run_b")):
        storage.add_pending_step(WRITER_POOL, run_id, "raw__boundaries", should_assign=True)
    statuses = {}

    def second_claims() -> None:
        statuses["run_b"] = second.claim_concurrency_slot(WRITER_POOL, "run_b", "raw__boundaries")

    stock_connection = first.index_connection

    @contextmanager
    def interleaved():
        with stock_connection() as conn:
            yield _ClaimsBetween(conn, second_claims)

    monkeypatch.setattr(first, "index_connection", interleaved)
    statuses["run_a"] = first.claim_concurrency_slot(WRITER_POOL, "run_a", "raw__boundaries")
    monkeypatch.undo()
    assert set(statuses) == {"run_a", "run_b"}  # the other claim did run in between
    claimed = [run_id for run_id, status in statuses.items() if status.is_claimed]
    holders = [(slot.run_id, slot.step_key) for slot in first.get_concurrency_info(WRITER_POOL).claimed_slots]
    assert claimed == ["run_b"]  # it claimed first; the first worker's select had gone stale
    assert holders == [("run_b", "raw__boundaries")]
    # the blocked step gets the slot once it is freed, as Dagster's claim loop retries
    second.free_concurrency_slot_for_step("run_b", "raw__boundaries")
    assert first.claim_concurrency_slot(WRITER_POOL, "run_a", "raw__boundaries").is_claimed
    first.dispose()
    second.dispose()
