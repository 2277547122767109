"""Spike notifications: an `alerts` table and an optional JSON webhook.

A notification goes out when a spike (a cluster below the spike threshold) first appears, and again only
when an ongoing spike gains cases. Each (cluster, observed cases) state is written once to
the alerts table (`ALERTS_DB`, default `data/alerts.duckdb`, a file of its own so the sensor
never competes with runs for the warehouse's write lock); a state already in the table is
never sent again, even if the sensor's cursor is lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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


def record(notification: Notification, path: Path) -> bool:
    """Insert the alert into the alerts DuckDB at `path`; False when this state was already recorded
    (then nothing is sent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as conn:
        conn.execute("""create table if not exists alerts (alert_id varchar primary key, cluster_id varchar,
            kind varchar, analysis_date date, observed integer, payload json, created_at timestamptz,
            webhook_status varchar)""")
        inserted = conn.execute(
            "insert into alerts values (?, ?, ?, ?, ?, ?, ?, null) on conflict do nothing returning alert_id",
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


def mark_sent(notification: Notification, status: str, path: Path) -> None:
    with duckdb.connect(str(path)) as conn:
        conn.execute("update alerts set webhook_status = ? where alert_id = ?", [status, notification.alert_id])


WEBHOOK_RETRIES = RetryPolicy(max_attempts=3, backoff_base=1.0, backoff_max=10.0, retry_after_max=30.0)


def post_webhook(url: str, payload: dict, policy: RetryPolicy = WEBHOOK_RETRIES, timeout: float = 10.0) -> str:
    """POST the JSON payload with the sources' retry budget (connection errors, 429, 5xx, Retry-After).

    Never raises: returns a status for the alerts table, so an unreachable webhook cannot stop
    the sensor from recording the alert.
    """

    def attempt_once() -> str:
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
        return f"sent ({response.status_code})"

    try:
        return with_retries(f"POST {url}", attempt_once, policy)
    except RetriesExhausted as exc:
        return f"failed ({exc.last})"
    except SourceError as exc:
        return f"failed ({exc})"
