"""Build the AsyncAPI 3.0 document that describes the topics to subscribers.

Pure: the caller supplies the examples and writes the result
(``scripts/gen_asyncapi.py``); a test checks the committed document is current.
"""

from __future__ import annotations

from typing import Any

import msgspec

from videoimport_events.catalog import EVENT_TYPES, TOPICS, Envelope

_HEADERS = {
    "type": "object",
    "properties": {
        "event-id": {"type": "string", "description": "Unique event id (UUID)."},
        "event-type": {"type": "string", "description": "Event type name, as in data.type."},
        "event-version": {"type": "string", "description": "Schema version of the type."},
        "correlation-id": {"type": "string", "description": "The import job id."},
    },
    "required": ["event-id", "event-type", "event-version", "correlation-id"],
}

_KEYS = {
    "jobs": "the job id",
    "videos": "'{project}/{systemName}/{externalId}': every event of one video is in order",
    "webhooks": "the job id",
}


def document(examples: dict[str, Any]) -> dict[str, Any]:
    (envelope_schema,), components = msgspec.json.schema_components([Envelope])
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for family, topic in TOPICS.items():
        names = sorted(n for n, cls in EVENT_TYPES.items() if cls.family == family)
        channel_messages: dict[str, Any] = {}
        for name in names:
            cls = EVENT_TYPES[name]
            message: dict[str, Any] = {
                "name": name,
                "title": name,
                "summary": (cls.__doc__ or "").strip().splitlines()[0],
                "contentType": "application/json",
                "headers": _HEADERS,
                "payload": envelope_schema,
                "x-event-schema": {"$ref": f"#/components/schemas/{name}"},
                "x-schema-version": cls.schema_version,
            }
            if name in examples:
                message["examples"] = [{"name": name, "payload": examples[name]}]
            messages[name] = message
            channel_messages[name] = {"$ref": f"#/components/messages/{name}"}
        channels[family] = {
            "address": topic,
            "description": f"Topic {topic}; message key: {_KEYS[family]}.",
            "messages": channel_messages,
        }
        operations[f"receive-{family}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{family}"},
        }
    schemas = {name: _rewrite_refs(schema) for name, schema in sorted(components.items())}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Video import events",
            "version": "1.0.0",
            "description": (
                "Events of the video import service, published from its PostgreSQL event log "
                "to Kafka at least once and in log order per key. Consumers deduplicate by "
                "event id. Changes are additive; an incompatible change gets a new type."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
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
