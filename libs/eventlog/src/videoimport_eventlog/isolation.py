"""Find and isolate the one event a log reader cannot get past (pure).

A log reader (relay, projector) works in batches from its tracking position.
When a batch fails for a reason other than an outage, it narrows to one event
at a time from that position, so the events before the culprit still go
through; the single event that still fails ``policy.attempts`` times is parked
as a dead letter and the reader moves past it. Once past the narrowed stretch
it widens to full batches again. Outages neither count nor narrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from videoimport_eventlog.retry import RetryPolicy

Verdict = Literal["retry", "park"]


@dataclass
class PoisonGuard:
    policy: RetryPolicy
    batch_size: int
    narrow_until: int | None = None
    """While the position is below this, read one event at a time."""
    failing_at: int | None = None
    failures: int = 0

    def batch(self, position: int) -> int:
        """How many events to read after ``position``."""
        if self.narrow_until is not None and position < self.narrow_until:
            return 1
        self.narrow_until = None
        return self.batch_size

    def failed(self, position: int) -> Verdict:
        """A non-outage failure of the batch read after ``position``."""
        if self.batch(position) > 1:
            # Not yet known which event fails: go one by one from here.
            self.narrow_until = position + self.batch_size
            self.failing_at, self.failures = position, 0
            return "retry"
        if self.failing_at != position:
            self.failing_at, self.failures = position, 0
        self.failures += 1
        if self.policy.exhausted(self.failures):
            self.failing_at, self.failures = None, 0
            return "park"
        return "retry"

    def retry_delay(self, rand: float) -> float:
        return self.policy.delay(max(1, self.failures), rand)

    def succeeded(self) -> None:
        self.failing_at, self.failures = None, 0
