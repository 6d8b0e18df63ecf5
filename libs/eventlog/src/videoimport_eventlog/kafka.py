"""Kafka plumbing shared by the publisher and the consumers (aiokafka)."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from videoimport_events import TOPICS, Envelope, decode_envelope

from videoimport_eventlog.store import RecordedEvent

Headers = list[tuple[str, bytes]]


def headers_of(event: RecordedEvent) -> Headers:
    return [
        ("event-id", str(event.event_id).encode()),
        ("event-type", event.event_type.encode()),
        ("event-version", str(event.schema_version).encode()),
        ("correlation-id", event.correlation_id.encode()),
    ]


def header(headers: Iterable[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode()
    return None


def decode_message(value: bytes) -> Envelope:
    return decode_envelope(value)


def make_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    """Idempotent, acks=all: a retried send never duplicates or reorders."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
    )


async def ensure_topics(
    bootstrap: str, partitions: int = 4, replication: int = 1, topics: Iterable[str] | None = None
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = list(topics if topics is not None else TOPICS.values())
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=n, num_partitions=partitions, replication_factor=replication)
            for n in names
            if n not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
