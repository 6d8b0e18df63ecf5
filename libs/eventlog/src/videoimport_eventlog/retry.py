"""The one retry policy: bounded attempts, exponential backoff with jitter.

Every consumer (relay, projector, ingester, notifier) and every outbound call
(a video download, a webhook POST) retries through this, so "how long until we
give up" has one answer per setting. ``parse_retry_after`` reads the header a
peer uses to ask for a pause; it lives here so both fetchers read it alike.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime

import msgspec


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """``attempts`` tries in all; the wait after try n is ``base * factor**(n-1)``,
    capped at ``max_delay`` and spread by ±``jitter`` so that many failing
    together (an outage) do not come back together."""

    attempts: int = 5
    base: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base < 0 or self.factor < 1 or self.max_delay < 0 or not 0 <= self.jitter < 1:
            raise ValueError("base >= 0, factor >= 1, max_delay >= 0 and 0 <= jitter < 1")

    def nominal_delay(self, attempt: int) -> float:
        """Seconds after try ``attempt`` (1-based) before the next, without jitter."""
        return float(min(self.max_delay, self.base * self.factor ** (attempt - 1)))

    def delay(self, attempt: int, rand: float) -> float:
        """With jitter; ``rand`` is uniform in [0, 1)."""
        return self.nominal_delay(attempt) * (1.0 + self.jitter * (2.0 * rand - 1.0))

    def exhausted(self, attempt: int) -> bool:
        """True when try ``attempt`` was the last one allowed."""
        return attempt >= self.attempts

    def total_nominal(self) -> float:
        """Seconds from the first try to the last, without jitter."""
        return sum(self.nominal_delay(a) for a in range(1, self.attempts))


MAX_RETRY_AFTER_DIGITS = 10
"""More digits than this is not a pause anyone means (over 300 years)."""


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date).

    Anything else (non-ASCII digits such as ``²``, a negative number, garbage,
    a date without a zone) is None: the caller keeps its own schedule.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        if len(value) > MAX_RETRY_AFTER_DIGITS:
            return None
        return float(int(value))
    if not value.isascii():
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
