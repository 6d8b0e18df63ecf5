"""The notifier's two steps: record a delivery for a JobCompleted, attempt a due delivery."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import asyncpg
import msgspec
import structlog
from videoimport_eventlog import kafka, store, tracking
from videoimport_events import JobCompleted

from videoimport_notifier import domain, signing
from videoimport_notifier.adapters import deliveries, metrics

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


class Sender(Protocol):
    async def post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> domain.AttemptResult: ...


async def record_delivery(pool: asyncpg.Pool, value: bytes, now: datetime) -> str | None:
    """Turn one message of the jobs topic into a pending delivery.

    Returns the delivery id when a new delivery was recorded. Other event types,
    jobs without a webhook and redeliveries change nothing.
    """
    try:
        envelope = kafka.decode_message(value)
    except msgspec.DecodeError:
        # Retrying cannot make it readable; a subscriber must not stall on it.
        log.error("undecodable message on the jobs topic skipped")
        return None
    event = envelope.data
    if not isinstance(event, JobCompleted):
        return None
    delivery = domain.delivery_for(event, envelope.id)
    if delivery is None:
        return None
    async with pool.acquire() as conn, conn.transaction():
        if not await tracking.claim_message(conn, domain.CONSUMER, envelope.id):
            return None
        if not await deliveries.insert(conn, delivery, now):
            return None
    metrics.DELIVERIES.inc()
    log.info("webhook delivery recorded", job_id=event.job_id, delivery_id=delivery.delivery_id)
    return delivery.delivery_id


async def attempt_due(
    pool: asyncpg.Pool,
    sender: Sender,
    key: bytes | None,
    policy: domain.RetryPolicy,
    clock: Clock,
    rand: Callable[[], float],
) -> bool:
    """Attempt the oldest due delivery; False when none is due.

    The row stays locked while the request runs, and the attempt's outcome and
    its event commit together: a crash in between sends it again later (the
    receiver dedupes by ``webhook-id``), but never records an attempt twice.
    """
    async with pool.acquire() as conn, conn.transaction():
        delivery = await deliveries.lock_next_due(conn, clock())
        if delivery is None:
            return False
        attempt = delivery.attempts + 1
        timestamp = int(clock().timestamp())
        headers = signing.headers(key, delivery.delivery_id, timestamp, delivery.body)
        result = await sender.post(delivery.url, delivery.body, headers)
        finished = clock()
        step = domain.next_step(attempt, result, finished, policy, rand())
        await deliveries.record_attempt(conn, delivery.delivery_id, attempt, result, step, finished)
        await store.append(
            conn,
            [
                store.NewEvent(
                    event=domain.attempt_event(delivery, attempt, result, step),
                    stream_id=f"webhook-{delivery.delivery_id}",
                    stream_version=attempt - 1,
                    correlation_id=delivery.job_id,
                    project=delivery.project,
                    causation_id=delivery.cause_event_id,
                    occurred_at=finished,
                )
            ],
        )
    metrics.ATTEMPTS.labels(step.state).inc()
    log.info(
        "webhook attempt",
        job_id=delivery.job_id,
        delivery_id=delivery.delivery_id,
        attempt=attempt,
        status=result.status,
        error=step.error,
        state=step.state,
    )
    return True
