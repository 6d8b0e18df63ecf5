"""Every event type, its topic, and the envelope published to Kafka."""

from __future__ import annotations

from datetime import datetime
from typing import Final, TypeAlias

import msgspec

from videoimport_events.base import Event
from videoimport_events.jobs import ImportRequested, JobCompleted, WebhookRedeliveryRequested
from videoimport_events.videos import (
    MediaObjectDeleted,
    VideoImported,
    VideoImportFailed,
    VideoImportRequested,
    VideoImportSkipped,
)
from videoimport_events.webhooks import WebhookDelivered, WebhookDeliveryFailed

AnyEvent: TypeAlias = (
    ImportRequested
    | JobCompleted
    | VideoImportRequested
    | VideoImported
    | VideoImportSkipped
    | VideoImportFailed
    | MediaObjectDeleted
    | WebhookDelivered
    | WebhookDeliveryFailed
    | WebhookRedeliveryRequested
)

EVENT_TYPES: Final[dict[str, type[Event]]] = {
    cls.type_name(): cls
    for cls in (
        ImportRequested,
        JobCompleted,
        VideoImportRequested,
        VideoImported,
        VideoImportSkipped,
        VideoImportFailed,
        MediaObjectDeleted,
        WebhookDelivered,
        WebhookDeliveryFailed,
        WebhookRedeliveryRequested,
    )
}

TOPICS: Final[dict[str, str]] = {
    "jobs": "videoimport.jobs",
    "videos": "videoimport.videos",
    "webhooks": "videoimport.webhooks",
}
"""Kafka topic per event family."""

TERMINAL_VIDEO_EVENTS: Final = (VideoImported, VideoImportSkipped, VideoImportFailed)


def topic_for(event_type: type[Event]) -> str:
    return TOPICS[event_type.family]


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """What a subscriber receives as the Kafka message value (JSON).

    ``id``, ``type`` and ``version`` are also sent as the headers ``event-id``,
    ``event-type`` and ``event-version``. ``position`` is the event's place in the
    global log, ``stream``/``stream_version`` its place in its own stream.
    """

    id: str
    type: str
    version: int
    position: int
    stream: str
    stream_version: int
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None
    project: str
    data: AnyEvent


_event_decoder: Final[msgspec.json.Decoder[AnyEvent]] = msgspec.json.Decoder(AnyEvent)
_envelope_decoder: Final[msgspec.json.Decoder[Envelope]] = msgspec.json.Decoder(Envelope)
_encoder: Final = msgspec.json.Encoder()


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> AnyEvent:
    return _event_decoder.decode(data)


def encode_envelope(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode_envelope(data: bytes | str) -> Envelope:
    return _envelope_decoder.decode(data)
