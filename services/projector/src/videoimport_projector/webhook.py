"""The webhook of one job as its attempt events tell it (pure: no I/O).

The notifier records every attempt as ``WebhookDelivered`` or
``WebhookDeliveryFailed`` with a 1-based ``attempt`` that keeps counting across
redeliveries. The attempt with the highest number is the latest: it decides
``state``, ``last_status``, ``last_error`` and ``next_attempt_at``. An attempt
seen again, or one older than the latest, changes nothing (except that an older
success still counts for ``delivered_at`` if no later one is known), so the fold
gives the same result whatever the order or repetition of the events.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from videoimport_events import WebhookDelivered, WebhookDeliveryFailed, WebhookState


class WebhookStatus(msgspec.Struct, frozen=True, kw_only=True):
    delivery_id: str
    state: WebhookState
    attempts: int
    """The highest attempt number recorded."""
    last_status: int | None = None
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    """When the most recent successful attempt was recorded."""
    delivered_attempt: int = 0
    """The number of that attempt (0: none yet)."""


def _latest(event: WebhookDelivered | WebhookDeliveryFailed) -> dict[str, object]:
    if isinstance(event, WebhookDelivered):
        return {
            "state": "delivered",
            "last_status": event.status_code,
            "last_error": None,
            "next_attempt_at": None,
        }
    return {
        "state": "pending" if event.next_attempt_at is not None else "failed",
        "last_status": event.status_code,
        "last_error": event.error,
        "next_attempt_at": event.next_attempt_at,
    }


def fold(
    status: WebhookStatus | None,
    event: WebhookDelivered | WebhookDeliveryFailed,
    occurred_at: datetime,
) -> WebhookStatus:
    """The webhook status after one attempt event; ``status`` itself when nothing changed.

    A job has one delivery; an attempt of another delivery id is ignored.
    """
    if status is not None and event.delivery_id != status.delivery_id:
        return status
    if status is None:
        status = WebhookStatus(delivery_id=event.delivery_id, state="pending", attempts=0)
        changed = True
    else:
        changed = False
    updates: dict[str, object] = {}
    if isinstance(event, WebhookDelivered) and event.attempt > status.delivered_attempt:
        updates.update(delivered_at=occurred_at, delivered_attempt=event.attempt)
    if event.attempt > status.attempts:
        updates.update(attempts=event.attempt, **_latest(event))
    if not updates and not changed:
        return status
    return msgspec.structs.replace(status, **updates)
