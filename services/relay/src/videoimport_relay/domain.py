"""What the relay publishes for a logged event, and what it publishes again (pure).

Every logged event is published, whether or not this code knows its type, so
readers need not be deployed before writers (see ``publishable``).

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

from videoimport_eventlog import kafka
from videoimport_eventlog.settings import topic
from videoimport_events import TOPICS, Envelope, Event, encode_envelope, route, topic_for

TRACKING_NAME = "relay"
RECONCILE_CURSOR = "reconciler"
"""Tracking row: every request at or below this position is finished."""

Headers = kafka.Headers


@dataclass(frozen=True)
class Outgoing:
    """One Kafka record, still tied to the log position it came from."""

    position: int
    topic: str
    key: bytes
    value: bytes
    headers: Headers


def outgoing(event: Event, envelope: Envelope, headers: Headers, topic_prefix: str) -> Outgoing:
    """The Kafka record of a decoded event: what ``publishable`` sends for it once
    logged (the same bytes, as long as writer and reader share its version)."""
    return Outgoing(
        position=envelope.position,
        topic=topic(topic_for(type(event)), topic_prefix),
        key=event.partition_key().encode(),
        value=encode_envelope(envelope),
        headers=headers,
    )


def publishable(logged: kafka.Logged, topic_prefix: str) -> Outgoing:
    """The Kafka record of a logged event, whatever its type: its envelope with
    ``data`` exactly as logged (``msgspec.Raw``), and its headers.

    No event is decoded as its type. ``videoimport_events.route`` gives the topic
    and key: the family from the stream name (``job-{id}/video-…`` and ``media-…``
    videos, ``webhook-…`` webhooks, any other ``job-{id}…`` jobs), the key from
    the family's identity fields in the data (a video's project, system name and
    external id; else the job id), which is where every known type's
    ``topic_for`` and ``partition_key`` send it (a unit test holds each example to
    it), and where a newer writer's type of the same stream goes. A stream of a
    kind this code does not know, or data without the identity fields, raises:
    the event is parked like any poison.
    """
    family, key = route(logged.stream_id, logged.data)
    return Outgoing(
        position=logged.position,
        topic=topic(TOPICS[family], topic_prefix),
        key=key.encode(),
        value=kafka.envelope_bytes(logged),
        headers=kafka.headers_of(logged),
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
