"""Dagster's SQLite event log, with a partition range's asset events written in one transaction.

A range run over ten years of daily partitions records, for each partitioned asset, one
"materialization planned" event and one materialization per day: about 11,000 events for
`make run` over 2015-2024. The stock SQLite storage writes each in its own pair of
transactions (the run's shard and the cross-run index), opening a new engine every time:
8-18 ms an event, about three minutes of a ten-year build spent in bookkeeping.

Dagster already hands such events over as one batch (`store_event_batch`) when
`DAGSTER_EVENT_BATCH_SIZE` is set (`settings.ensure_event_batching`, called by the
definitions); the stock SQLite storage then loops over `store_event`. This subclass writes a
batch of asset events in one transaction per database instead. The rows written are the same
as `store_event` writes, so the UI, partition status and asset queries read them as ever. Any
other batch falls back to the stock path.

Every other write (step events, asset check results, run status) is still one transaction per
event, but on a connection kept open per database file (the index and the few newest runs):
the stock storage creates an engine and opens SQLite afresh for every event, compiling every
statement again (about 10-20 ms an event; a one-day update writes some 800). Each use is still
one committed transaction under the storage's lock, and SQLite locks the file between
processes as before: another process (the UI, the daemon) sees each event once it is committed.

`make run` and `make dev` select it in `DAGSTER_HOME/dagster.yaml` (written by the Makefile).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

# run shards whose connection stays open (the index's, the current run's, a few recent ones)
MAX_OPEN_SHARDS = 4


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

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        batchable = (
            len(events) > 1
            and len({e.run_id for e in events}) == 1
            and all(e.is_dagster_event and e.dagster_event_type in ASSET_EVENTS for e in events)
        )
        if not batchable:
            super().store_event_batch(events)
            return
        statements = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        # mirrored in the cross-run index, as store_event does for each asset event
        with self.index_transaction() as conn:
            event_ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    event_ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, list(events), event_ids)
            for event, event_id in zip(events, event_ids, strict=True):
                self._store_asset_event(conn, event, event_id)
