"""Builds the relay's clients from its settings; nothing connects at import time."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaProducer
from videoimport_eventlog import health, kafka, schema
from videoimport_eventlog.settings import topic
from videoimport_events import TOPICS

from videoimport_relay.settings import RelaySettings


def topics(settings: RelaySettings) -> list[str]:
    return [topic(name, settings.topic_prefix) for name in TOPICS.values()]


async def prepare(settings: RelaySettings) -> None:
    """Tables and topics exist before the first event is read or sent."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await schema.migrate(conn)
    finally:
        await conn.close()
    await kafka.ensure_topics(
        settings.kafka_bootstrap,
        partitions=settings.topic_partitions,
        replication=settings.topic_replication,
        topics=topics(settings),
    )


def producer(settings: RelaySettings) -> AIOKafkaProducer:
    return kafka.make_producer(settings.kafka_bootstrap, settings.client_id)


def health_probes(settings: RelaySettings) -> dict[str, health.Probe]:
    """What readiness checks: the relay needs both to publish (a standby is ready too)."""
    return {
        "postgres": health.PostgresProbe(settings.database_url),
        "kafka": health.KafkaProbe(settings.kafka_bootstrap, f"{settings.client_id}-health"),
    }
