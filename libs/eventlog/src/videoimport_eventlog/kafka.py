"""Kafka plumbing shared by the publisher and the consumers (aiokafka)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Final, Protocol

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from videoimport_events import EVENT_TYPES, TOPICS, Envelope, decode_envelope

Headers = list[tuple[str, bytes]]

LEAVE_TIMEOUT: Final = 5.0
"""How long a stopping consumer may take to leave its group."""


class Logged(Protocol):
    """A row of the event log as published: its metadata and its ``data`` as stored
    (``store.RecordedEvent`` is one; so is a row read without decoding ``data``)."""

    @property
    def position(self) -> int: ...
    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def stream_id(self) -> str: ...
    @property
    def stream_version(self) -> int: ...
    @property
    def event_type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def data(self) -> bytes: ...
    @property
    def project(self) -> str: ...
    @property
    def correlation_id(self) -> str: ...
    @property
    def causation_id(self) -> str | None: ...
    @property
    def occurred_at(self) -> datetime: ...


def headers_of(event: Logged) -> Headers:
    return [
        ("event-id", str(event.event_id).encode()),
        ("event-type", event.event_type.encode()),
        ("event-version", str(event.schema_version).encode()),
        ("correlation-id", event.correlation_id.encode()),
    ]


class RawEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """``Envelope`` with ``data`` as the log stores it, passed through byte for byte.

    The same fields in the same order as ``Envelope``: for a type this code knows,
    the same bytes as encoding the decoded event; for one it does not know (a newer
    writer's), the writer's JSON, which no typed decode could have kept.
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
    data: msgspec.Raw


_encoder: Final = msgspec.json.Encoder()


def envelope_bytes(event: Logged) -> bytes:
    """The message value of a logged event: its envelope, ``data`` as logged."""
    return _encoder.encode(
        RawEnvelope(
            id=str(event.event_id),
            type=event.event_type,
            version=event.schema_version,
            position=event.position,
            stream=event.stream_id,
            stream_version=event.stream_version,
            occurred_at=event.occurred_at,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            project=event.project,
            data=msgspec.Raw(event.data),
        )
    )


def header(headers: Iterable[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode()
    return None


def unknown_type(headers: Iterable[tuple[str, bytes]]) -> str | None:
    """The ``event-type`` of a message whose type this code does not know (a newer
    writer's, published raw by the relay), else None. Readers skip such a message
    rather than park it: a type they do not know is not one they act on."""
    name = header(headers, "event-type")
    return name if name is not None and name not in EVENT_TYPES else None


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


async def leave_group(consumer: AIOKafkaConsumer, timeout: float = LEAVE_TIMEOUT) -> None:  # noqa: ASYNC109
    """Stop ``consumer`` and leave its group, giving up after ``timeout`` seconds.

    aiokafka's ``stop`` first waits for a JoinGroup in flight, which the broker only
    answers when the rebalance ends: while a member killed without leaving holds the
    group for the rest of its session (or a rebalance timeout, minutes), that is
    long past any shutdown grace.
    """
    with contextlib.suppress(Exception):
        await asyncio.wait_for(consumer.stop(), timeout)
