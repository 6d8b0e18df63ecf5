"""The Kafka side of the ingester: queue each ``VideoImportRequested``, park the rest.

A queue row per request (``ingest_tasks``), so offsets commit at once and a rebalance
never waits for a download; the workers (``workers.Workers``) take it from there.
Requests that arrive together are queued with one insert (``GroupEnqueue``): a burst
is queued at the speed of the topic, not of one round trip per request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import asyncpg
import msgspec
import structlog
from videoimport_eventlog import deadletters
from videoimport_eventlog.consumer import Record, source_of
from videoimport_eventlog.faults import describe
from videoimport_eventlog.kafka import decode_message, header, unknown_type
from videoimport_events import VideoImportRequested

from videoimport_ingester.adapters.group_enqueue import GroupEnqueue
from videoimport_ingester.domain import CONSUMER

log = structlog.get_logger(__name__)

_REQUESTED = VideoImportRequested.type_name()


class Intake:
    """The Kafka consumer's handler: queue requests; park what cannot be queued."""

    def __init__(self, pool: asyncpg.Pool, queued: Callable[[], None]) -> None:
        self._pool = pool
        self._queued = queued
        self._group = GroupEnqueue(pool)

    async def on_record(self, record: Record) -> None:
        """Fast (a share of one insert), so offsets commit at once; raises only to be
        retried."""
        if record.value is None:
            return
        named = header(record.headers, "event-type")
        if named is not None and named != _REQUESTED:
            return  # most of the topic is results: not worth decoding
        newer = unknown_type(record.headers)
        if newer is not None:
            log.info("skipped an event type this version does not know", event_type=newer)
            return
        try:
            envelope = decode_message(record.value)
        except (msgspec.MsgspecError, ValueError) as exc:
            # Retrying cannot make it decodable: park it (with its bytes) at once.
            async with self._pool.acquire() as conn:
                await deadletters.park(
                    conn,
                    consumer=CONSUMER,
                    source=source_of(record),
                    error=f"undecodable message: {describe(exc)}",
                    attempts=1,
                    payload=record.value,
                )
            return
        if not isinstance(envelope.data, VideoImportRequested):
            return
        if await self._group.enqueue(envelope):
            self._queued()

    async def on_give_up(self, record: Record, exc: BaseException, attempts: int) -> None:
        """The consumer's ``on_give_up``: park the message, so the partition moves on."""
        event_id: uuid.UUID | None = None
        position: int | None = None
        try:
            envelope = decode_message(record.value or b"")
            event_id, position = uuid.UUID(envelope.id), envelope.position
        except (msgspec.MsgspecError, ValueError):
            pass
        async with self._pool.acquire() as conn:
            await deadletters.park(
                conn,
                consumer=CONSUMER,
                source=source_of(record),
                error=exc,
                attempts=attempts,
                event_id=event_id,
                position=position,
                payload=record.value,
            )
