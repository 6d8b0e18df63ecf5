"""What the relay publishes for a logged event (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from videoimport_eventlog.settings import topic
from videoimport_events import Envelope, Event, encode_envelope, topic_for

TRACKING_NAME = "relay"

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
