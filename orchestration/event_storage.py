"""Dagster's SQLite event log, with a partition range's asset events written in one transaction.

A range run over ten years of daily partitions records, for each partitioned asset, one
"materialization planned" event and one materialization per day: about 11,000 events for
`make run` over 2015-2024. The stock SQLite storage writes each in its own pair of
transactions (the run's shard and the cross-run index), opening a new engine every time:
8-18 ms an event, about three minutes of a ten-year build spent in bookkeeping.

Dagster already hands such events over as one batch (`store_event_batch`) when
`DAGSTER_EVENT_BATCH_SIZE` is set (`settings.ensure_event_batching`, called by the
definitions); the stock SQLite storage then loops over `store_event`. This subclass writes a
batch of asset events in one transaction per database instead, with the checks a run plans when
it is created (they come in the same batch as its planned materializations: some 190 dbt tests
in a one-day update: the run's creation took 1.2-2.2 s with them stored event by event,
0.4-0.5 s in the batch). The rows written are the same as `store_event`
writes, so the UI, partition status, asset and check queries read them as ever. Any other
batch falls back to the stock path.
Should the index's transaction fail, the batch is taken back out of the run's shard before
Dagster's fallback stores its events one by one, so none is recorded twice.

Every other write (step events, asset check results, run status) is still one transaction per
event, but on a connection kept open per database file (the index and the few newest runs):
the stock storage creates an engine and opens SQLite afresh for every event, compiling every
statement again (about 10-20 ms an event; a one-day update writes some 800). Each use is still
one committed transaction under the storage's lock, and SQLite locks the file between
processes as before: another process (the UI, the daemon) sees each event once it is committed.

It also claims a pool's slot in one atomic statement (`_claim_concurrency_slot`): the stock
claim could give the writer pool's one slot to two runs at once on SQLite.

`make run` and `make dev` select it in `DAGSTER_HOME/dagster.yaml` (written by the Makefile).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dagster._core.events import ASSET_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    AssetKeyTable,
    ConcurrencySlotsTable,
    SqlEventLogStorageTable,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._utils.concurrency import ConcurrencySlotStatus
from sqlalchemy import and_, create_engine, false, select
from sqlalchemy import exc as db_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

_log = logging.getLogger(__name__)

# run shards whose connection stays open (the index's, the current run's, a few recent ones)
MAX_OPEN_SHARDS = 4
# ids per DELETE when a batch is taken back out of a run shard (SQLite before 3.32 binds at most 999)
_DELETE_CHUNK = 500


# what a batch may hold: a run's asset events, and the checks a run plans when it is created
# (Dagster hands those over in one batch with its planned materializations)
BATCHED_EVENTS = frozenset({*ASSET_EVENTS, DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED})


def _is_check_planned(event: EventLogEntry) -> bool:
    return event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED


def _insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert `event_logs` rows with one compiled statement; their ids, in order."""
    if conn.dialect.insert_executemany_returning_sort_by_parameter_order:
        returning = SqlEventLogStorageTable.insert().returning(
            SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
        )
        return [row[0] for row in conn.execute(returning, rows)]
    # SQLite before 3.35 has no RETURNING: one insert at a time, as store_event does
    insert = SqlEventLogStorageTable.insert()
    return [conn.execute(insert, row).inserted_primary_key[0] for row in rows]


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event storage that stores a batch of one run's asset events in one transaction."""

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # noqa: ANN001, ANN206 - Dagster's signature
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """The stock `_connect` (one transaction per use) on a connection kept open per shard."""
        with self._db_lock:
            engines: OrderedDict[str, Engine] = self.__dict__.setdefault("_engines", OrderedDict())
            if shard not in self._initialized_dbs and shard in engines:
                engines.pop(shard).dispose()  # after wipe(): its file was deleted under the connection
            if shard not in engines:
                engines[shard] = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=StaticPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
                )
                while len(engines) > MAX_OPEN_SHARDS:  # a webserver reads many runs: close the oldest
                    engines.popitem(last=False)[1].dispose()
            if shard not in self._initialized_dbs:  # once per shard, as the stock storage does
                self._initdb(engines[shard])
                self._initialized_dbs.add(shard)
            engines.move_to_end(shard)
            with engines[shard].connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """The stock check (a new engine and connection to the index), remembered once a table is found.

        The stock storage asks for every asset check result and every tagged asset event
        (whether the database was migrated to have the table), about 10 ms each. A table, once
        there, stays: only a present table is remembered, so a migration by another process is
        still seen. Not through `_connect`: it is called inside index transactions, under the lock.
        """
        present: set[str] = self.__dict__.setdefault("_present_tables", set())
        if table_name not in present and super().has_table(table_name):
            present.add(table_name)
        return table_name in present

    def dispose(self) -> None:
        with self._db_lock:
            for engine in self.__dict__.pop("_engines", {}).values():
                engine.dispose()
        super().dispose()

    def _claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str) -> ConcurrencySlotStatus:
        """Take a free slot of the pool for the step in one conditional UPDATE, which SQLite runs
        atomically: the step gets a slot only if that slot is still free when it is written.

        Dagster can assign a freed slot to two waiting steps at once (`has_unassigned_slots` and
        `assign_pending_steps` are separate transactions); the slot rows are then the only guard.
        The stock claim selects a free slot and then updates it by id. On SQLite the select runs
        before the write transaction (`FOR UPDATE SKIP LOCKED` is dropped), so two run workers
        claiming in the same instant both got the writer pool's one slot and both opened the
        warehouse. A step that finds no free slot stays blocked, and Dagster's claim loop asks
        again, as for any blocked step.
        """
        slots = ConcurrencySlotsTable.c
        free_slot = (
            select(slots.id)
            .where(and_(slots.concurrency_key == concurrency_key, slots.step_key.is_(None), slots.deleted == false()))
            .limit(1)
            .scalar_subquery()
        )
        with self.index_connection() as conn:
            claimed = conn.execute(
                ConcurrencySlotsTable.update()
                .values(run_id=run_id, step_key=step_key)
                .where(and_(slots.id == free_slot, slots.step_key.is_(None)))
            ).rowcount
        return ConcurrencySlotStatus.CLAIMED if claimed else ConcurrencySlotStatus.BLOCKED

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """A batch of one run's asset events in one transaction per database, with statements
        compiled once for the batch (an `executemany`), not once per event.

        The rows are those `store_event` writes event by event: each event in the run's shard
        and in the cross-run index (whose ids the tags and `asset_keys` refer to), its indexed
        tags, and each asset key's latest state, which is what the stock storage's succession of
        per-event overwrites leaves (`_asset_key_values`). A ten-year range run's 11,000 planned
        events and 11,000 materializations took 1.4 ms an event when written one by one.
        """
        batchable = (
            len(events) > 1
            and len({e.run_id for e in events}) == 1
            and all(e.is_dagster_event and e.dagster_event_type in BATCHED_EVENTS for e in events)
            and (self.supports_asset_checks or not any(_is_check_planned(e) for e in events))
        )
        if not batchable:
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(event) for event in events]
        run_id = events[0].run_id
        with self.run_connection(run_id) as conn:
            shard_ids = _insert_rows(conn, rows)
        try:
            # mirrored in the cross-run index, as store_event does for each asset and check event
            with self.index_transaction() as conn:
                event_ids = _insert_rows(conn, rows)
                asset_events = [(e, i) for e, i in zip(events, event_ids, strict=True) if not _is_check_planned(e)]
                if asset_events:
                    assets, asset_ids = [e for e, _ in asset_events], [i for _, i in asset_events]
                    self._store_asset_event_tags(conn, assets, asset_ids)
                    index_cols = self._has_asset_key_index_cols_on_connection(conn)
                    for asset_key, values in self._asset_key_values(assets, asset_ids, index_cols).items():
                        try:  # as the stock storage: insert, or update the row the key has
                            conn.execute(AssetKeyTable.insert().values(asset_key=asset_key, **values))
                        except db_exc.IntegrityError:
                            conn.execute(
                                AssetKeyTable.update().values(**values).where(AssetKeyTable.c.asset_key == asset_key)
                            )
                checks = self._planned_check_rows(events, rows, event_ids)
                if checks:
                    conn.execute(AssetCheckExecutionsTable.insert(), checks)
        except BaseException:
            # The shard and the index are two files, two transactions. The index's rolled back;
            # take the batch out of the shard too, so that Dagster's fallback (it stores each
            # event of a failed batch again, one by one) leaves every event there once.
            try:
                with self.run_connection(run_id) as conn:
                    for start in range(0, len(shard_ids), _DELETE_CHUNK):
                        chunk = shard_ids[start : start + _DELETE_CHUNK]
                        conn.execute(SqlEventLogStorageTable.delete().where(SqlEventLogStorageTable.c.id.in_(chunk)))
            except Exception as cleanup_error:  # noqa: BLE001 - the index's error is the one to raise
                _log.warning(
                    "could not take a failed batch of %d events out of run %s's event log (%s): "
                    "they may be listed twice there",
                    len(shard_ids),
                    run_id,
                    cleanup_error,
                )
            raise

    def _planned_check_rows(
        self, events: Sequence[EventLogEntry], rows: Sequence[dict[str, Any]], event_ids: Sequence[int]
    ) -> list[dict[str, Any]]:
        """The `asset_check_executions` rows of the batch's planned checks, as
        `_store_asset_check_evaluation_planned` writes them event by event: one per partition
        key (or one without), pointing at the event's id in the index. The serialized event is
        the one already made for the event's `event_logs` row."""
        found = []
        for event, row, event_id in zip(events, rows, event_ids, strict=True):
            if not _is_check_planned(event):
                continue
            planned = event.get_dagster_event().event_specific_data
            partition_keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
            found.extend(
                {
                    "asset_key": planned.asset_key.to_string(),
                    "check_name": planned.check_name,
                    "partition": partition_key,
                    "run_id": event.run_id,
                    "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                    "evaluation_event": row["event"],
                    "evaluation_event_timestamp": row["timestamp"],
                    "evaluation_event_storage_id": event_id,
                }
                for partition_key in partition_keys
            )
        return found

    def _asset_key_values(
        self, events: Sequence[EventLogEntry], event_ids: Sequence[int], index_cols: bool
    ) -> dict[str, dict[str, Any]]:
        """Each asset key's `asset_keys` columns after the batch, as `store_event` leaves them.

        `store_event` overwrites the columns an event sets (`_get_asset_entry_values`), one event
        after the other, so a column ends with the value of the last event that sets it. Walking
        the batch backwards, an event's values are computed only while it can still set a column
        no later event set: a materialization's serialized record is built once per key, not once
        per partition.
        """
        merged: dict[str, dict[str, Any]] = {}
        for event, event_id in zip(reversed(events), reversed(event_ids), strict=True):
            dagster_event = event.dagster_event
            if not (dagster_event and dagster_event.asset_key):
                continue
            values = merged.setdefault(dagster_event.asset_key.to_string(), {})
            if dagster_event.is_step_materialization:
                needed = "last_materialization" not in values
            else:
                needed = not {"last_run_id", "last_materialization_timestamp"} <= values.keys()
            if needed:
                for column, value in self._get_asset_entry_values(event, event_id, index_cols).items():
                    values.setdefault(column, value)
        # in the order the keys first appear, the order in which store_event would insert them
        first_seen = dict.fromkeys(
            e.dagster_event.asset_key.to_string() for e in events if e.dagster_event and e.dagster_event.asset_key
        )
        return {key: merged[key] for key in first_seen if merged[key]}
