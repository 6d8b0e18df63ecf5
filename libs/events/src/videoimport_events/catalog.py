"""Every event type, its topic, and the envelope published to Kafka.

Decoding upcasts: an event recorded under an older schema version of its type is
read as the current version (``upcasting``), so readers only know current shapes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, TypeAlias

import msgspec

from videoimport_events.base import Event
from videoimport_events.jobs import (
    ImportRequested,
    JobCancelled,
    JobCompleted,
    WebhookRedeliveryRequested,
)
from videoimport_events.upcasting import UPCASTERS, Upcasters
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
    | JobCancelled
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
        JobCancelled,
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


class _Head(msgspec.Struct):
    """The part of an envelope that decides whether its data must be upcast."""

    type: str
    version: int


class _Tag(msgspec.Struct):
    type: str


_event_decoder: Final[msgspec.json.Decoder[AnyEvent]] = msgspec.json.Decoder(AnyEvent)
_envelope_decoder: Final[msgspec.json.Decoder[Envelope]] = msgspec.json.Decoder(Envelope)
_head_decoder: Final = msgspec.json.Decoder(_Head)
_tag_decoder: Final = msgspec.json.Decoder(_Tag)
_encoder: Final = msgspec.json.Encoder()


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event(
    data: bytes | str, *, version: int | None = None, upcasters: Upcasters = UPCASTERS
) -> AnyEvent:
    """The event in ``data``; ``version`` is the schema version it was recorded with
    (the log's ``schema_version``): an older one is upcast to the current version."""
    if version is not None and len(upcasters):
        name = _tag_decoder.decode(data).type
        current = _current_version(name)
        if current is not None and version < current:
            raw = msgspec.json.decode(data)
            if isinstance(raw, dict):
                data = _encoder.encode(upcasters.upcast(name, raw, version, current))
    return _event_decoder.decode(data)


def encode_envelope(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode_envelope(data: bytes | str, *, upcasters: Upcasters = UPCASTERS) -> Envelope:
    """The envelope in ``data`` (a Kafka message value).

    When its ``version`` is older than its type's current ``schema_version``, its
    ``data`` is upcast first and the result carries the current version.
    """
    if len(upcasters):  # nothing is registered while every type is at v1: one decode
        head = _head_decoder.decode(data)
        current = _current_version(head.type)
        if current is not None and head.version < current:
            data = _upcast_envelope(data, head, current, upcasters)
    return _envelope_decoder.decode(data)


def _current_version(type_name: str) -> int | None:
    cls = EVENT_TYPES.get(type_name)
    return None if cls is None else cls.schema_version


def _upcast_envelope(data: bytes | str, head: _Head, current: int, upcasters: Upcasters) -> bytes:
    raw: Any = msgspec.json.decode(data)
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
        return data.encode() if isinstance(data, str) else data  # the decoder names the problem
    upcast = upcasters.upcast(head.type, raw["data"], head.version, current)
    return _encoder.encode({**raw, "version": current, "data": upcast})
