"""One step of the relay: read a batch from the log, publish it, save the position."""

from __future__ import annotations

import asyncio
from typing import Protocol

import asyncpg
from videoimport_eventlog import kafka, store, tracking

from videoimport_relay.domain import TRACKING_NAME, Outgoing, acknowledged_through, outgoing


class Producer(Protocol):
    async def send(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[object]: ...


def messages_for(events: list[store.RecordedEvent], topic_prefix: str) -> list[Outgoing]:
    return [outgoing(ev.event, ev.envelope(), kafka.headers_of(ev), topic_prefix) for ev in events]


async def publish(producer: Producer, messages: list[Outgoing]) -> list[BaseException | None]:
    """Send every message, then wait for every acknowledgement, in order.

    All sends are queued first so the producer can batch them; the idempotent
    producer keeps their order per partition.
    """
    futures = [
        await producer.send(m.topic, m.value, key=m.key, headers=m.headers) for m in messages
    ]
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    return [o if isinstance(o, BaseException) else None for o in outcomes]


async def relay_batch(
    conn: asyncpg.Connection, producer: Producer, topic_prefix: str, batch_size: int
) -> tuple[int, int]:
    """Publish the next batch; returns (events published, saved position).

    Raises the first send error after every send was answered; the position then
    stays where it was and the next call sends the batch again.
    """
    current = await tracking.position_of(conn, TRACKING_NAME)
    events = await store.read_after(conn, current, batch_size)
    if not events:
        return 0, current
    messages = messages_for(events, topic_prefix)
    errors = await publish(producer, messages)
    saved = acknowledged_through(current, messages, [e is not None for e in errors])
    first_error = next((e for e in errors if e is not None), None)
    if first_error is not None:
        raise first_error
    async with conn.transaction():
        await tracking.save_position(conn, TRACKING_NAME, saved)
    return len(events), saved


async def log_head(conn: asyncpg.Connection) -> int:
    head: int = await conn.fetchval("SELECT COALESCE(max(position), 0) FROM events")
    return head
