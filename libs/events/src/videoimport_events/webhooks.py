"""The ``webhooks`` family: each attempt to notify a job's webhook."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from videoimport_events.base import Event


class _WebhookEvent(Event, frozen=True, kw_only=True):
    family: ClassVar[str] = "webhooks"

    job_id: str
    project: str
    delivery_id: str
    """Stable across retries; sent as the ``webhook-id`` header."""
    url: str
    attempt: int

    def partition_key(self) -> str:
        return self.job_id


class WebhookDelivered(_WebhookEvent, frozen=True, kw_only=True):
    """The endpoint answered 2xx."""

    status_code: int


class WebhookDeliveryFailed(_WebhookEvent, frozen=True, kw_only=True):
    """One attempt failed; ``next_attempt_at`` is None when no retry follows."""

    error: str
    status_code: int | None = None
    next_attempt_at: datetime | None = None
