"""Webhook deliveries: what to send, and what to do after each attempt (pure: no I/O)."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import msgspec
from videoimport_events import JobCompleted, Overview, WebhookDelivered, WebhookDeliveryFailed

CONSUMER = "notifier"

DeliveryState = Literal["pending", "delivered", "failed"]


class WebhookPayload(msgspec.Struct, frozen=True, kw_only=True):
    """The body POSTed to the job's webhook: ``{id, state, overview, context}``."""

    id: str
    state: str
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
    cause_event_id: str
    """The ``JobCompleted`` event id: the causation of every attempt's event."""


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    base: float = 10.0
    factor: float = 3.0
    max_delay: float = 43_200.0
    jitter: float = 0.2
    max_attempts: int = 14

    def nominal_delay(self, attempt: int) -> float:
        """Seconds between attempt ``attempt`` (1-based) and the next, before jitter."""
        return float(min(self.max_delay, self.base * self.factor ** (attempt - 1)))

    def delay(self, attempt: int, rand: float) -> float:
        """With jitter: ``rand`` in [0, 1) spreads it by ±``jitter``, so that many
        deliveries failing together (an endpoint outage) do not return together."""
        return self.nominal_delay(attempt) * (1.0 + self.jitter * (2.0 * rand - 1.0))

    def total_nominal(self) -> float:
        """Seconds from the first attempt to the last, before jitter."""
        return sum(self.nominal_delay(a) for a in range(1, self.max_attempts))


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


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def http_error(status: int) -> str:
    return f"HTTP {status}"


def next_step(
    attempt: int, result: AttemptResult, now: datetime, policy: RetryPolicy, rand: float
) -> Step:
    """After attempt ``attempt`` (1-based): delivered, retry at some time, or give up."""
    if result.ok:
        return Step(state="delivered", next_attempt_at=None, error=None)
    error = result.error or (http_error(result.status) if result.status is not None else "error")
    if result.permanent or result.status == 410 or attempt >= policy.max_attempts:
        return Step(state="failed", next_attempt_at=None, error=error)
    wait = policy.delay(attempt, rand)
    if result.retry_after is not None:
        # The receiver knows best when it can take the request again, but it
        # cannot stretch the schedule beyond the longest step.
        wait = min(max(result.retry_after, 0.0), policy.max_delay)
    return Step(state="pending", next_attempt_at=now + timedelta(seconds=wait), error=error)


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
