"""Retry policy for FHIR calls, after cumulus-fhir-support's: temporary vs fatal, Retry-After capped."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime

# 501 Not Implemented is not in the list: the server will not start implementing it on retry.
TEMPORARY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """`tries` counts the first attempt; delays grow base_delay, 2×, 4× … up to max_delay."""

    tries: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Delay after failed attempt number `attempt` (1-based)."""
        return float(min(self.base_delay * (2 ** (attempt - 1)), self.max_delay))

    def delay(self, attempt: int, retry_after: str | None, now: datetime | None = None) -> float:
        """The wait before the next try: the server's Retry-After if given, never above max_delay."""
        server = parse_retry_after(retry_after, now)
        if server is None:
            return self.backoff(attempt)
        return min(server, self.max_delay)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
