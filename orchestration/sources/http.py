"""HTTP with a retry budget: exponential backoff with jitter, honoring Retry-After.

Retried: connection errors, timeouts, HTTP 429 and 5xx, and bodies that are not complete JSON
(a truncated page). Anything else (4xx, a final failure) raises `SourceError` naming the URL,
the number of attempts and the last problem.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class SourceError(RuntimeError):
    """A source could not be read within the retry budget, or answered something unusable."""


class RetriesExhausted(SourceError):
    """Every attempt of the retry budget failed; `last` is the last attempt's problem."""

    def __init__(self, message: str, last: str):
        super().__init__(message)
        self.last = last


class RetryableError(Exception):
    """A problem worth another attempt (carries an optional server-requested delay)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    backoff_base: float = 1.0  # seconds before the 2nd attempt, doubling each time
    backoff_max: float = 60.0
    retry_after_max: float = 300.0  # never wait longer than this for a server's Retry-After
    jitter: float = 0.5  # +- share of the delay drawn at random

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_max)
        base = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return max(0.0, base * (1 + rng.uniform(-self.jitter, self.jitter)))


def with_retries(
    what: str,
    attempt_once: Callable[[], Any],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Any:
    """`attempt_once()` until it returns, retrying on `RetryableError` within `policy`'s budget.

    `what` names the request in the log and in the `RetriesExhausted` raised when the budget runs
    out; any other exception (e.g. `SourceError` for a 4xx) ends the attempts at once.
    """
    rng = rng or random.Random()
    last = "no attempt made"
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return attempt_once()
        except RetryableError as exc:
            last = str(exc)
            if attempt == policy.max_attempts:
                break
            wait = policy.delay(attempt, exc.retry_after, rng)
            log.warning(
                "%s failed (%s); attempt %d of %d, retrying in %.2fs", what, exc, attempt, policy.max_attempts, wait
            )
            sleep(wait)
    raise RetriesExhausted(f"{what} failed after {policy.max_attempts} attempts: {last}", last)


@dataclass
class JsonHttp:
    """GET JSON with retries. `sleep` is injectable so tests can observe the waits."""

    timeout: tuple[float, float] = (10.0, 60.0)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    session: requests.Session = field(default_factory=requests.Session)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    # called with the parsed body and the URL; may raise RetryableError or SourceError (ArcGIS error objects)
    inspect: Callable[[Any, str], None] | None = None

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        return self._with_retries(url, lambda: self._attempt(url, params))

    def get_bytes(self, url: str) -> bytes:
        """A file's bytes, with the same retry budget (no JSON expected)."""
        return self._with_retries(url, lambda: self._response(url, None).content)

    def _with_retries(self, url: str, attempt_once: Callable[[], Any]) -> Any:
        return with_retries(f"GET {url}", attempt_once, self.policy, self.sleep, self.rng)

    def _attempt(self, url: str, params: dict[str, Any] | None) -> Any:
        response = self._response(url, params)
        try:
            body = json.loads(response.content)
        except ValueError as exc:
            raise RetryableError(f"body is not complete JSON ({len(response.content)} bytes): {exc}") from exc
        if self.inspect is not None:
            self.inspect(body, url)
        return body

    def _response(self, url: str, params: dict[str, Any] | None) -> requests.Response:
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in RETRY_STATUS:
            raise RetryableError(f"HTTP {response.status_code}", parse_retry_after(response.headers.get("Retry-After")))
        if response.status_code >= 400:
            raise SourceError(f"GET {response.url} answered HTTP {response.status_code}: {response.text[:200]}")
        return response
