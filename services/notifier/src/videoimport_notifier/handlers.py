"""The notifier's consumer side: record a delivery for a JobCompleted and re-arm it
for a WebhookRedeliveryRequested (from Kafka or from a dead letter an operator
retried); a message that cannot be handled is parked. Attempts of due deliveries
are in ``attempts``.

A redelivery request for a job without a delivery changes nothing (its inbox row
is still written). It cannot overtake the job's JobCompleted: the API and the CLI
record a request only once the JobCompleted is in the log, the relay publishes in
log order, both are keyed by the job id, and the consumer handles one key's
messages in order. So the JobCompleted was handled first: either it had no webhook
(the request is refused before it is recorded), or it was parked as a dead letter,
and retrying that letter records a new pending delivery, which is sent anyway.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec
import structlog
from videoimport_eventlog import deadletters, kafka, store, tracking
from videoimport_eventlog.consumer import Record, source_of
from videoimport_events import Envelope, JobCompleted, WebhookRedeliveryRequested

from videoimport_notifier import domain
from videoimport_notifier.adapters import deliveries, metrics

log = structlog.get_logger(__name__)

# --- JobCompleted → a pending delivery ----------------------------------------------


async def record(conn: asyncpg.Connection, envelope: Envelope, now: datetime) -> str | None:
    """Within the caller's transaction: the delivery a message asks for, once.

    Returns the delivery id when a new delivery was recorded (or one was re-armed
    by a redelivery request). Other event types, jobs without a webhook and
    messages handled before change nothing.
    """
    event = envelope.data
    if isinstance(event, WebhookRedeliveryRequested):
        return await redeliver(conn, envelope, event, now)
    if not isinstance(event, JobCompleted):
        return None
    delivery = domain.delivery_for(event, envelope.id)
    if delivery is None:
        return None
    if not await tracking.claim_message(conn, domain.CONSUMER, envelope.id):
        return None
    if not await deliveries.insert(conn, delivery, now):
        return None
    metrics.DELIVERIES.inc()
    log.info("webhook delivery recorded", job_id=event.job_id, delivery_id=delivery.delivery_id)
    return delivery.delivery_id


async def redeliver(
    conn: asyncpg.Connection, envelope: Envelope, event: WebhookRedeliveryRequested, now: datetime
) -> str | None:
    """Re-arm the job's delivery (same ``webhook-id`` and body, due now, a fresh
    attempt budget), once per request event."""
    if not await tracking.claim_message(conn, domain.CONSUMER, envelope.id):
        return None
    rearmed = await deliveries.rearm_for_redelivery(conn, event.job_id, now)
    if not rearmed:
        log.info(
            "webhook redelivery requested for a job without a delivery; nothing to re-arm",
            job_id=event.job_id,
            request_id=envelope.id,
        )
        return None
    log.info(
        "webhook delivery re-armed on request",
        job_id=event.job_id,
        delivery_ids=rearmed,
        requested_by=event.requested_by,
    )
    return rearmed[0]


async def record_delivery(pool: asyncpg.Pool, envelope: Envelope, now: datetime) -> str | None:
    async with pool.acquire() as conn, conn.transaction():
        return await record(conn, envelope, now)


async def handle_message(pool: asyncpg.Pool, message: Record, now: datetime) -> str | None:
    """One message of the jobs topic. An undecodable one is parked at once:
    retrying cannot make it readable. Raises when the delivery cannot be stored
    (the consumer retries per its policy, then calls ``give_up``)."""
    if message.value is None:
        return None
    newer = kafka.unknown_type(message.headers)
    if newer is not None:
        log.info("skipped an event type this version does not know", event_type=newer)
        return None
    try:
        envelope = kafka.decode_message(message.value)
    except (msgspec.DecodeError, ValueError) as exc:
        async with pool.acquire() as conn:
            await deadletters.park(
                conn,
                consumer=domain.CONSUMER,
                source=source_of(message),
                error=exc,
                attempts=1,
                payload=message.value,
            )
        return None
    event = envelope.data
    wanted = isinstance(event, WebhookRedeliveryRequested) or (
        isinstance(event, JobCompleted) and event.webhook is not None
    )
    if not wanted:
        return None  # nothing to deliver: no need for a connection
    return await record_delivery(pool, envelope, now)


async def give_up(pool: asyncpg.Pool, message: Record, exc: BaseException, attempts: int) -> None:
    """Park a message whose handling kept failing; the partition moves on."""
    event_id, position, payload = None, None, message.value
    try:
        envelope = kafka.decode_message(message.value or b"")
    except Exception:  # whatever it is, the letter keeps the bytes instead
        pass
    else:
        event_id = domain.event_uuid(envelope.id)
        if event_id is not None:
            position, payload = envelope.position, None
    async with pool.acquire() as conn:
        await deadletters.park(
            conn,
            consumer=domain.CONSUMER,
            source=source_of(message),
            error=exc,
            attempts=attempts,
            event_id=event_id,
            position=position,
            payload=payload,
        )


# --- dead letters an operator asked to retry ------------------------------------------


async def retry_dead_letters(pool: asyncpg.Pool, now: datetime) -> int:
    """Handle every letter of the notifier marked ``retry`` again, from the log.

    A letter whose event records (again) or whose failed delivery can be sent
    once more is resolved; one that fails again is parked again. Returns how
    many were resolved. An outage raises and leaves them marked.
    """

    async def redo(conn: asyncpg.Connection, recorded: store.RecordedEvent) -> None:
        await _redo(conn, recorded, now)

    async with pool.acquire() as conn:
        return await deadletters.retry_requested(conn, domain.CONSUMER, redo)


async def _redo(conn: asyncpg.Connection, recorded: store.RecordedEvent, now: datetime) -> None:
    await record(conn, recorded.envelope(), now)
    # Parked after its attempts could not be recorded: give it one more.
    delivery_id = domain.delivery_id_for(str(recorded.event_id))
    if await deliveries.rearm(conn, delivery_id, now):
        log.info("failed webhook delivery re-armed", delivery_id=delivery_id)
