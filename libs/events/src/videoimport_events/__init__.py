"""Public event contract of the video import service.

Schemas only: no I/O, no imports beyond msgspec, so that any subscriber can
install this package alone.
"""

from videoimport_events.base import Event
from videoimport_events.catalog import (
    EVENT_TYPES,
    TERMINAL_VIDEO_EVENTS,
    TOPICS,
    AnyEvent,
    Envelope,
    decode_envelope,
    decode_event,
    encode_envelope,
    encode_event,
    topic_for,
)
from videoimport_events.jobs import (
    ImportRequested,
    JobCompleted,
    JobState,
    Overview,
    RequestedBy,
    WebhookRedeliveryRequested,
)
from videoimport_events.limits import (
    FAILURE_CODES,
    MAX_EVENT_BYTES,
    MAX_REASON_BYTES,
    FailureCode,
    bounded_reason,
)
from videoimport_events.videos import (
    DeletionReason,
    MediaObjectDeleted,
    Outcome,
    VideoImported,
    VideoImportFailed,
    VideoImportRequested,
    VideoImportSkipped,
    video_key,
)
from videoimport_events.webhooks import WebhookDelivered, WebhookDeliveryFailed

__all__ = [
    "EVENT_TYPES",
    "FAILURE_CODES",
    "MAX_EVENT_BYTES",
    "MAX_REASON_BYTES",
    "TERMINAL_VIDEO_EVENTS",
    "TOPICS",
    "AnyEvent",
    "DeletionReason",
    "Envelope",
    "Event",
    "FailureCode",
    "ImportRequested",
    "JobCompleted",
    "JobState",
    "MediaObjectDeleted",
    "Outcome",
    "Overview",
    "RequestedBy",
    "VideoImportFailed",
    "VideoImportRequested",
    "VideoImportSkipped",
    "VideoImported",
    "WebhookDelivered",
    "WebhookDeliveryFailed",
    "WebhookRedeliveryRequested",
    "bounded_reason",
    "decode_envelope",
    "decode_event",
    "encode_envelope",
    "encode_event",
    "topic_for",
    "video_key",
]
