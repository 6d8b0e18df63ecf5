"""What the relay publishes for a logged event, and what it publishes again (pure).

Reconciliation: Kafka is transport, the log is the truth. If Kafka loses a
message (a topic recreated, retention expired, the relay reset past it), its
video would stay unfinished forever. So the relay looks for
``VideoImportRequested`` events older than a deadline with no terminal event and
publishes them again (same event id: consumers dedupe), backing off per request
(deadline, 2x, 4x, … up to a cap). A cursor remembers the position below which
every request is finished, so each round reads only the open tail of the log.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from videoimport_eventlog.settings import topic
from videoimport_events import Envelope, Event, encode_envelope, topic_for

TRACKING_NAME = "relay"
RECONCILE_CURSOR = "reconciler"
"""Tracking row: every request at or below this position is finished."""

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Outgoing:
    """One Kafka record, still tied to the log position it came from."""

    position: int
    topic: str
    key: bytes
    value: bytes
    headers: Headers


def outgoing(event: Event, envelope: Envelope, headers: Headers, topic_prefix: str) -> Outgoing:
    return Outgoing(
        position=envelope.position,
        topic=topic(topic_for(type(event)), topic_prefix),
        key=event.partition_key().encode(),
        value=encode_envelope(envelope),
        headers=headers,
    )


def acknowledged_through(current: int, batch: Sequence[Outgoing], failures: Sequence[bool]) -> int:
    """The tracking position to save once every send of ``batch`` has been answered.

    Any failure keeps the old position: the whole batch is sent again, and since
    consumers dedupe by event id a re-publish is harmless while a skipped event
    would be lost for good.
    """
    if len(batch) != len(failures):
        raise ValueError("one outcome per message")
    if not batch or any(failures):
        return current
    return batch[-1].position


def lag(head: int, position: int) -> int:
    """Events in the log that Kafka has not acknowledged yet."""
    return max(0, head - position)


@dataclass(frozen=True)
class Open:
    """A requested video as reconciliation sees it: published, overdue, maybe finished."""

    position: int
    event_id: uuid.UUID
    terminal: bool
    times: int
    last_at: datetime | None


def finished_through(cursor: int, page: Sequence[Open]) -> int:
    """The new cursor: past the leading run of finished requests (pure)."""
    for row in page:
        if not row.terminal:
            return cursor
        cursor = row.position
    return cursor


def due(row: Open, now: datetime, after: timedelta, cap: timedelta) -> bool:
    """Whether to publish an unfinished request again now (pure)."""
    if row.terminal:
        return False
    if row.last_at is None:
        return True
    factor: int = 2 ** min(row.times, 30)
    wait = min(cap, after * factor)
    return row.last_at + wait <= now
