"""Webhook deliveries: what to send, and what to do after each attempt (pure: no I/O)."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import msgspec
from videoimport_eventlog.retry import RetryPolicy
from videoimport_events import (
    JobCompleted,
    JobState,
    Overview,
    WebhookDelivered,
    WebhookDeliveryFailed,
    WebhookState,
)

CONSUMER = "notifier"
"""The notifier's name in the inbox and on its dead letters."""

WEBHOOK_SCHEDULE = RetryPolicy(attempts=14, base=10.0, factor=3.0, max_delay=43_200.0, jitter=0.2)
"""10 s x 3^n, capped at 12 h, ±20 %: the last of 14 attempts about three days after the first."""

MAX_ERROR_CHARS = 300
"""Of a failure reason kept in a row and an event: enough to see what went wrong."""

NO_SECRET = "not sent: the project has no usable webhook secret"
"""The recorded error of an attempt that could not be signed (never sent unsigned)."""

DeliveryState = WebhookState
"""A delivery's state: the shared ``WebhookState`` (the status shows it too)."""


class WebhookPayload(msgspec.Struct, frozen=True, kw_only=True):
    """The body POSTed to the job's webhook: ``{id, state, overview, context}``."""

    id: str
    state: JobState
    overview: Overview
    context: dict[str, Any] | None


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One webhook notification of one finished job, across all its attempts."""

    delivery_id: str
    job_id: str
    project: str
    url: str
    body: bytes
    """Encoded once; every attempt sends exactly these bytes."""
    attempts: int = 0
    budget_from: int = 0
    """``attempts`` when the delivery was last re-armed by a redelivery request: the
    retry schedule counts the attempts after it (a fresh budget), while the attempt
    number keeps counting so its events stay gap-free in ``webhook-{delivery_id}``."""
    cause_event_id: str
    """The ``JobCompleted`` event id: the causation of every attempt's event."""


class AttemptResult(msgspec.Struct, frozen=True, kw_only=True):
    status: int | None = None
    """The HTTP status, None when no response came (refused, timeout, blocked)."""
    error: str | None = None
    retry_after: float | None = None
    permanent: bool = False
    """Retrying cannot help (a blocked address, an invalid URL, 410 Gone)."""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Step(msgspec.Struct, frozen=True, kw_only=True):
    state: DeliveryState
    next_attempt_at: datetime | None
    error: str | None


def delivery_id_for(event_id: str) -> str:
    """Deterministic, so a redelivered ``JobCompleted`` maps to the same delivery."""
    digest = hashlib.sha256(f"webhook-delivery:{event_id}".encode()).digest()
    return "whd_" + base64.b32encode(digest).decode().rstrip("=").lower()[:26]


def payload(event: JobCompleted) -> bytes:
    return msgspec.json.encode(
        WebhookPayload(
            id=event.job_id, state=event.state, overview=event.overview, context=event.context
        )
    )


def delivery_for(event: JobCompleted, event_id: str) -> Delivery | None:
    """The delivery a ``JobCompleted`` asks for; None when the job has no webhook."""
    if event.webhook is None:
        return None
    return Delivery(
        delivery_id=delivery_id_for(event_id),
        job_id=event.job_id,
        project=event.project,
        url=event.webhook,
        body=payload(event),
        cause_event_id=event_id,
    )


def in_budget(delivery: Delivery, attempt: int) -> int:
    """Attempt ``attempt`` (the delivery's running count) as the retry schedule
    counts it: 1 for the first attempt after the delivery was (re-)armed."""
    return attempt - delivery.budget_from


def http_error(status: int) -> str:
    return f"HTTP {status}"


def short_error(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """One line of printable text, at most ``limit`` characters.

    Error texts quote what a receiver sent (a bad status line, a header); they
    must not carry control characters (PostgreSQL refuses NUL) or grow unbounded.
    """
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def event_uuid(event_id: str) -> uuid.UUID | None:
    """The id as a UUID (how dead letters name events), None when it is not one."""
    try:
        return uuid.UUID(event_id)
    except ValueError:
        return None


def next_step(
    attempt: int, result: AttemptResult, now: datetime, policy: RetryPolicy, rand: float
) -> Step:
    """After attempt ``attempt`` (1-based): delivered, retry at some time, or give up."""
    if result.ok:
        return Step(state="delivered", next_attempt_at=None, error=None)
    error = result.error or (http_error(result.status) if result.status is not None else "error")
    if result.permanent or result.status == 410 or policy.exhausted(attempt):
        return Step(state="failed", next_attempt_at=None, error=error)
    wait = policy.delay(attempt, rand)
    if result.retry_after is not None:
        # The receiver knows best when it can take the request again, but it
        # cannot stretch the schedule beyond the longest step.
        wait = min(max(result.retry_after, 0.0), policy.max_delay)
    return Step(state="pending", next_attempt_at=now + timedelta(seconds=wait), error=error)


def unrecorded_step(
    attempt: int, error: str, now: datetime, policy: RetryPolicy, rand: float
) -> Step:
    """After attempt ``attempt`` was made but could not be recorded (not an outage).

    It counts like a failed attempt and backs off alike, so a delivery whose
    outcome cannot be stored is not sent again every second; after the
    policy's attempts it fails for good (and is parked for an operator).
    """
    if policy.exhausted(attempt):
        return Step(state="failed", next_attempt_at=None, error=error)
    wait = policy.delay(attempt, rand)
    return Step(state="pending", next_attempt_at=now + timedelta(seconds=wait), error=error)


class ProjectSlots:
    """Deliveries in flight per project, so that one project's slow or hanging
    receivers can hold at most ``limit`` of this instance's scheduler slots."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the per-project limit must be at least 1")
        self.limit = limit
        self._in_flight: Counter[str] = Counter()

    def full(self) -> list[str]:
        """Projects that may not start another delivery now."""
        return sorted(p for p, n in self._in_flight.items() if n >= self.limit)

    def in_flight(self, project: str) -> int:
        return self._in_flight[project]

    def take(self, project: str) -> None:
        self._in_flight[project] += 1

    def release(self, project: str) -> None:
        self._in_flight[project] -= 1
        if self._in_flight[project] <= 0:
            del self._in_flight[project]


def attempt_event(
    delivery: Delivery, attempt: int, result: AttemptResult, step: Step
) -> WebhookDelivered | WebhookDeliveryFailed:
    if step.state == "delivered" and result.status is not None:
        return WebhookDelivered(
            job_id=delivery.job_id,
            project=delivery.project,
            delivery_id=delivery.delivery_id,
            url=delivery.url,
            attempt=attempt,
            status_code=result.status,
        )
    return WebhookDeliveryFailed(
        job_id=delivery.job_id,
        project=delivery.project,
        delivery_id=delivery.delivery_id,
        url=delivery.url,
        attempt=attempt,
        error=step.error or "error",
        status_code=result.status,
        next_attempt_at=step.next_attempt_at,
    )
