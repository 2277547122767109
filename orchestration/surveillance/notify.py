"""Spike notifications: an `alerts` table and an optional JSON webhook.

A notification goes out when a spike (a cluster below the spike threshold) first appears, and again only
when an ongoing spike gains cases. Each (cluster, observed cases) state is written once to
the alerts table (`ALERTS_DB`, default `data/alerts.duckdb`, a file of its own so the sensor
never competes with runs for the warehouse's write lock); a state already in the table is
never sent again, even if the sensor's cursor is lost.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import requests

from orchestration.sources.http import (
    RETRY_STATUS,
    RetriesExhausted,
    RetryableError,
    RetryPolicy,
    SourceError,
    parse_retry_after,
    with_retries,
)


@dataclass
class Notification:
    alert_id: str
    cluster_id: str
    kind: str  # "new_spike" or "spike_grew"
    analysis_date: str
    spike: dict

    def payload(self) -> dict:
        return {"alert_id": self.alert_id, "kind": self.kind, "analysis_date": self.analysis_date, **self.spike}


def notifications_for(spikes: list[dict], notified: dict[str, int], analysis_date: str) -> list[Notification]:
    """What to announce given the spikes of an analysis and the observed count last announced per cluster."""
    out = []
    for spike in spikes:
        cluster_id, observed = spike["cluster_id"], int(spike["observed"])
        previous = notified.get(cluster_id)
        if previous is None:
            kind = "new_spike"
        elif observed > previous:
            kind = "spike_grew"
        else:
            continue
        out.append(Notification(f"{cluster_id}:{observed}", cluster_id, kind, analysis_date, spike))
    return out


MAX_DELIVERY_ATTEMPTS = 20  # ticks (about a minute apart) a notification is tried before it is given up
TICK_BUDGET_SECONDS = 40.0  # sending per sensor tick, well under Dagster's 60 s sensor timeout
WEBHOOK_RETRIES = RetryPolicy(max_attempts=2, backoff_base=1.0, backoff_max=2.0, retry_after_max=2.0)
WEBHOOK_TIMEOUT = 5.0
# the longest one delivery attempt can take: a new POST starts only if this much budget is left
ATTEMPT_WORST_SECONDS = WEBHOOK_RETRIES.max_attempts * WEBHOOK_TIMEOUT + WEBHOOK_RETRIES.backoff_max

_TABLE = """create table if not exists alerts (alert_id varchar primary key, cluster_id varchar,
    kind varchar, analysis_date date, observed integer, payload json, created_at timestamptz,
    webhook_status varchar)"""
# columns added after the first version of the table (added to an older table in place)
_ADDED = (("delivered", "boolean default false"), ("attempts", "integer default 0"), ("last_attempt_at", "timestamptz"))


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path))
    conn.execute(_TABLE)
    for column, definition in _ADDED:
        conn.execute(f"alter table alerts add column if not exists {column} {definition}")
    return conn


def record(notification: Notification, path: Path) -> bool:
    """Insert the alert into the alerts DuckDB at `path`, undelivered; False when this state was
    already recorded (then it is not sent again)."""
    with _connect(path) as conn:
        inserted = conn.execute(
            "insert into alerts (alert_id, cluster_id, kind, analysis_date, observed, payload, created_at) "
            "values (?, ?, ?, ?, ?, ?, ?) on conflict do nothing returning alert_id",
            [
                notification.alert_id,
                notification.cluster_id,
                notification.kind,
                notification.analysis_date,
                int(notification.spike["observed"]),
                json.dumps(notification.payload()),
                datetime.now(UTC),
            ],
        ).fetchall()
    return bool(inserted)


def redact(url: str) -> str:
    """A webhook URL as it may be logged: scheme and host only (path and query carry tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}/..."


def post_webhook(
    url: str, payload: dict, policy: RetryPolicy | None = None, timeout: float = WEBHOOK_TIMEOUT
) -> tuple[bool, str]:
    """POST the JSON payload with the sources' retry budget (connection errors, 429, 5xx, Retry-After).

    Never raises: returns (delivered, status) for the alerts table, so an unreachable webhook cannot
    stop the sensor from recording the alert. Neither the status nor the log names the URL's path.
    """

    def attempt_once() -> tuple[bool, str]:
        try:
            response = requests.post(url, json=payload, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RetryableError(type(exc).__name__) from exc
        except requests.RequestException as exc:
            raise SourceError(type(exc).__name__) from exc
        if response.status_code in RETRY_STATUS:
            raise RetryableError(f"HTTP {response.status_code}", parse_retry_after(response.headers.get("Retry-After")))
        if response.status_code >= 300:
            raise SourceError(f"HTTP {response.status_code}")
        return True, f"sent ({response.status_code})"

    try:
        return with_retries(f"POST {redact(url)}", attempt_once, policy or WEBHOOK_RETRIES)
    except RetriesExhausted as exc:
        return False, f"failed ({exc.last})"
    except SourceError as exc:
        return False, f"failed ({exc})"


def deliver_pending(
    path: Path,
    url: str | None,
    budget_seconds: float = TICK_BUDGET_SECONDS,
    max_attempts: int = MAX_DELIVERY_ATTEMPTS,
    post=None,
    clock=time.monotonic,
    attempt_seconds: float = ATTEMPT_WORST_SECONDS,
) -> list[str]:
    """Send every recorded, undelivered alert (oldest first) within this tick's time budget.

    At least once: an alert whose POST failed stays undelivered and is tried again on later ticks,
    up to `max_attempts`, then it is marked given up (and reported). Returns what happened, as lines
    for the sensor's log.
    """
    if not path.exists():
        return []
    with _connect(path) as conn:
        if not url:
            conn.execute(
                "update alerts set webhook_status = 'no webhook configured' "
                "where not delivered and webhook_status is null"
            )
            return []
        waiting = conn.execute(
            "select alert_id, payload, attempts from alerts where not delivered and attempts < ? order by created_at",
            [max_attempts],
        ).fetchall()
    started, lines = clock(), []
    for alert_id, payload, attempts in waiting:
        if clock() - started + attempt_seconds > budget_seconds:
            lines.append(f"{len(waiting) - len(lines)} alert(s) wait for the next tick (time budget)")
            break
        delivered, status = (post or post_webhook)(url, json.loads(payload))
        attempts += 1
        if not delivered and attempts >= max_attempts:
            status = f"gave up after {attempts} attempts: {status}"
        with _connect(path) as conn:
            conn.execute(
                "update alerts set delivered = ?, attempts = ?, webhook_status = ?, last_attempt_at = ? "
                "where alert_id = ?",
                [delivered, attempts, status, datetime.now(UTC), alert_id],
            )
        lines.append(f"{alert_id}: {status}")
    return lines
