"""Builds the notifier's clients from its settings; nothing connects at import time."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaConsumer
from videoimport_eventlog import health, kafka, schema
from videoimport_eventlog.retry import RetryPolicy
from videoimport_eventlog.runtime import skip_pool_reset
from videoimport_eventlog.settings import topic
from videoimport_events import TOPICS

from videoimport_notifier.adapters.webhook_http import WebhookSender
from videoimport_notifier.domain import ProjectSlots
from videoimport_notifier.settings import NotifierSettings


def jobs_topic(settings: NotifierSettings) -> str:
    return topic(TOPICS["jobs"], settings.topic_prefix)


def _policy(
    attempts: int, base: float, factor: float, max_delay: float, jitter: float
) -> RetryPolicy:
    try:
        return RetryPolicy(
            attempts=attempts, base=base, factor=factor, max_delay=max_delay, jitter=jitter
        )
    except ValueError as exc:
        raise SystemExit(f"configuration error: retry settings: {exc}") from exc


def retry_policy(settings: NotifierSettings) -> RetryPolicy:
    """The webhook schedule: 10 s x 3^n, capped at 12 h, ±20 %, 14 attempts ≈ 3 days."""
    return _policy(
        settings.webhook_max_attempts,
        settings.webhook_retry_base,
        settings.webhook_retry_factor,
        settings.webhook_retry_max_delay,
        settings.webhook_retry_jitter,
    )


def consumer_policy(settings: NotifierSettings) -> RetryPolicy:
    """How often a JobCompleted is handled again before it is parked."""
    return _policy(
        settings.consumer_attempts,
        settings.consumer_retry_base,
        settings.consumer_retry_factor,
        settings.consumer_retry_max_delay,
        settings.consumer_retry_jitter,
    )


def project_slots(settings: NotifierSettings) -> ProjectSlots:
    try:
        return ProjectSlots(settings.webhook_project_limit)
    except ValueError as exc:
        raise SystemExit(f"configuration error: VIDEOIMPORT_WEBHOOK_PROJECT_LIMIT: {exc}") from exc


async def prepare(settings: NotifierSettings) -> None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await schema.migrate(conn)
    finally:
        await conn.close()
    await kafka.ensure_topics(
        settings.kafka_bootstrap,
        partitions=settings.topic_partitions,
        replication=settings.topic_replication,
        topics=[jobs_topic(settings)],
    )


async def pool(settings: NotifierSettings) -> asyncpg.Pool:
    # Every scheduler holds a connection during its request, plus the consumer's
    # handlers, the dead-letter loop and the readiness probe (which must not wait
    # behind busy schedulers and say "down"). (A scheduler that must create a
    # project's missing webhook secret briefly takes a second one; handlers never
    # wait on schedulers, so that cannot starve.)
    size = settings.webhook_concurrency + settings.max_in_flight + 2
    created: asyncpg.Pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=1,
        max_size=size,
        reset=skip_pool_reset,  # the notifier keeps no session state: see skip_pool_reset
    )
    return created


def health_probes(
    settings: NotifierSettings, database: health.PostgresProbe
) -> dict[str, health.Probe]:
    """The notifier needs both: JobCompleted comes from Kafka, deliveries live in PostgreSQL."""
    return {
        "postgres": database,
        "kafka": health.KafkaProbe(settings.kafka_bootstrap, f"{settings.client_id}-health"),
    }


def group_id(settings: NotifierSettings) -> str:
    return topic("notifier", settings.topic_prefix)


def consumer(settings: NotifierSettings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id(settings),
        client_id=settings.client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


def sender(settings: NotifierSettings) -> WebhookSender:
    return WebhookSender(
        allow_private=settings.allow_private_urls, timeout=settings.webhook_timeout
    )
