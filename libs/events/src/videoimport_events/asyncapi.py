"""Build the AsyncAPI 3.0 document that describes the topics to subscribers.

It describes the wire exactly as the relay writes it: one channel per family
(topic ``TOPICS[family]``), one message per event type whose payload is the
envelope with ``data`` being exactly that type, the Kafka key
(``Event.partition_key``) and the four headers of
``videoimport_eventlog.kafka.headers_of``. The operations are ``send``: this
application publishes, subscribers receive.

Pure: the caller supplies the examples (``libs/events/examples/<Type>/*.json``)
and writes the result (``scripts/gen_asyncapi.py``); tests check the committed
document is current and that the official AsyncAPI parser accepts it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from videoimport_events.base import Event
from videoimport_events.catalog import EVENT_TYPES, TOPICS, Envelope, decode_envelope
from videoimport_events.compatibility import schema_components

Examples = Mapping[str, Sequence[tuple[str, dict[str, Any]]]]
"""Per type name: (example name, the envelope as JSON) in document order."""

KAFKA_BINDING: Final = "0.5.0"

_KEYS: Final = {
    "jobs": "The job id (`job_id`): the events of one job stay in order.",
    "videos": (
        "`{project}/{system_name}/{external_id}` (`videoimport_events.video_key`): every "
        "event of one video, across jobs, stays in order."
    ),
    "webhooks": "The job id (`job_id`): the delivery attempts of one job stay in order.",
}

_ENVELOPE_FIELDS: Final = {
    "id": "The event id (a UUID), also the `event-id` header. Delivery is at least once: "
    "deduplicate by it.",
    "position": "The event's place in the global log: increases in publish order.",
    "stream": "The event's own stream, e.g. `job-{job_id}/video-{index}`.",
    "stream_version": "The event's place in its stream, from 0.",
    "occurred_at": "When the event was recorded (UTC).",
    "correlation_id": "The job id (the media id for events that belong to no job); also "
    "the `correlation-id` header.",
    "causation_id": "The id of the event that caused this one, if any.",
    "project": "The project the event belongs to.",
}


def document(examples: Examples) -> dict[str, Any]:
    """The AsyncAPI document; every type needs at least one example."""
    _, schemas = schema_components([Envelope])
    envelope = schemas.pop("Envelope")
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for family, topic in TOPICS.items():
        names = sorted(n for n, cls in EVENT_TYPES.items() if cls.family == family)
        for name in names:
            cls = EVENT_TYPES[name]
            schemas[f"{name}Envelope"] = _envelope_of(envelope, name, cls.schema_version)
            messages[name] = _message(name, cls, examples.get(name, ()))
        channels[family] = {
            "address": topic,
            "title": f"{family} events",
            "description": (
                f"Every event of the `{family}` family, as JSON. Message key: {_KEYS[family]} "
                "A deployment may prefix the topic name (the relay's "
                "`VIDEOIMPORT_TOPIC_PREFIX`, empty by default)."
            ),
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
            "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING}},
        }
        operations[f"send-{family}"] = {
            "action": "send",
            "title": f"Publish the {family} events",
            "summary": "The relay publishes every event of the log, in log order per key.",
            "channel": {"$ref": f"#/channels/{family}"},
            "messages": [{"$ref": f"#/channels/{family}/messages/{n}"} for n in names],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Video import events",
            "version": "1.0.0",
            "description": (
                "Events of the video import service, published from its PostgreSQL event log "
                "to Kafka at least once and in log order per key: consumers deduplicate by "
                "the event id. Changes are additive; an incompatible change gets a new type "
                "or a new schema version with an upcaster (`videoimport_events.upcasting`). "
                "A guide for subscribers is docs/subscribers.md in the repository."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {name: _rewrite_refs(schema) for name, schema in sorted(schemas.items())},
        },
    }


def _envelope_of(envelope: dict[str, Any], name: str, version: int) -> dict[str, Any]:
    """The envelope of one type: ``data`` is exactly that type."""
    props = {k: {**v, "description": _ENVELOPE_FIELDS[k]} if k in _ENVELOPE_FIELDS else v
             for k, v in envelope["properties"].items()}  # fmt: skip
    props["id"]["format"] = "uuid"
    props["type"] = {"type": "string", "const": name, "description": "The event type."}
    props["version"] = {
        "type": "integer",
        "minimum": 1,
        "description": (
            f"Schema version of `data` as recorded; the current one is {version}. "
            "`decode_envelope` upcasts an older one."
        ),
    }
    props["data"] = {"$ref": f"#/$defs/{name}"}
    return {**envelope, "title": f"{name}Envelope", "properties": props}


def _message(name: str, cls: type[Event], examples: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    doc = inspect.cleandoc(cls.__doc__ or name)
    return {
        "name": name,
        "title": name,
        "summary": doc.splitlines()[0],
        "description": doc,
        "contentType": "application/json",
        "headers": _headers(name),
        "payload": {"$ref": f"#/components/schemas/{name}Envelope"},
        "correlationId": {
            "description": "The job id (the media id for events that belong to no job).",
            "location": "$message.header#/correlation-id",
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": _KEYS[cls.family]},
                "bindingVersion": KAFKA_BINDING,
            }
        },
        "examples": [_example(name, example, payload) for example, payload in examples],
        "x-schema-version": cls.schema_version,
    }


def _headers(name: str) -> dict[str, Any]:
    """Kafka headers as the relay sets them; values are UTF-8 strings."""
    return {
        "type": "object",
        "properties": {
            "event-id": {
                "type": "string",
                "format": "uuid",
                "description": "The event id, as `id`: deduplicate by it.",
            },
            "event-type": {"type": "string", "const": name, "description": "As `type`."},
            "event-version": {
                "type": "string",
                "pattern": "^[1-9][0-9]*$",
                "description": "The schema version in decimal, as `version`.",
            },
            "correlation-id": {"type": "string", "description": "As `correlation_id`."},
        },
        "required": ["event-id", "event-type", "event-version", "correlation-id"],
    }


def _example(name: str, example: str, payload: dict[str, Any]) -> dict[str, Any]:
    envelope = decode_envelope(msgspec.json.encode(payload))
    if envelope.type != name:
        raise ValueError(f"example {example!r} of {name} is a {envelope.type}")
    return {
        "name": example,
        "summary": example.replace("-", " ").replace("_", " ").capitalize() + ".",
        "headers": {
            "event-id": envelope.id,
            "event-type": envelope.type,
            "event-version": str(envelope.version),
            "correlation-id": envelope.correlation_id,
        },
        "payload": payload,
    }


def _rewrite_refs(node: Any) -> Any:
    """msgspec points at ``#/$defs``; AsyncAPI keeps schemas under components."""
    if isinstance(node, dict):
        return {
            k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _rewrite_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node
