"""One step of the relay: read a batch from the log, publish it, save the position."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg
import structlog
from videoimport_eventlog import deadletters, logged, tracking
from videoimport_eventlog.faults import is_outage

from videoimport_relay.adapters import requests
from videoimport_relay.domain import (
    RECONCILE_CURSOR,
    TRACKING_NAME,
    Outgoing,
    acknowledged_through,
    due,
    finished_through,
    publishable,
)

log = structlog.get_logger(__name__)

MAX_PAGES = 20
"""Pages of open requests one reconciliation round reads at most."""


class Producer(Protocol):
    async def send(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[object]: ...


def messages_for(events: list[logged.LoggedEvent], topic_prefix: str) -> list[Outgoing]:
    return [publishable(ev, topic_prefix) for ev in events]


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
    conn: asyncpg.Connection,
    producer: Producer,
    topic_prefix: str,
    batch_size: int,
    current: int | None = None,
) -> tuple[int, int]:
    """Publish the batch after ``current`` (None: the saved position); returns
    (events published, saved position).

    Raises the first send error after every send was answered; the position then
    stays where it was and the next call sends the batch again. The leader, the
    position's only writer, passes the position it saved last.
    """
    if current is None:
        current = await tracking.position_of(conn, TRACKING_NAME)
    events = await logged.read_after(conn, current, batch_size)
    if not events:
        return 0, current
    messages = messages_for(events, topic_prefix)
    errors = await publish(producer, messages)
    saved = acknowledged_through(current, messages, [e is not None for e in errors])
    first_error = next((e for e in errors if e is not None), None)
    if first_error is not None:
        raise first_error
    await tracking.save_position(conn, TRACKING_NAME, saved)  # one statement, atomic
    return len(events), saved


async def tracked_position(conn: asyncpg.Connection) -> int:
    return await tracking.position_of(conn, TRACKING_NAME)


async def park_next(conn: asyncpg.Connection, error: BaseException, attempts: int) -> int | None:
    """Park the event after the relay's position as a dead letter and move past it."""
    return await deadletters.park_next_in_log(conn, TRACKING_NAME, error, attempts)


async def send_events(
    producer: Producer, topic_prefix: str, events: list[logged.LoggedEvent]
) -> None:
    """Publish ``events`` (out of the normal order); raises the first send error."""
    errors = await publish(producer, messages_for(events, topic_prefix))
    first_error = next((e for e in errors if e is not None), None)
    if first_error is not None:
        raise first_error


async def retry_dead_letters(
    conn: asyncpg.Connection, producer: Producer, topic_prefix: str
) -> int:
    """Publish the parked events an operator asked to retry; returns how many went out.

    Like ``deadletters.retry_requested``, but reads the event undecoded: a letter
    parked by an older relay for a type it did not know is published now.
    """
    resolved = 0
    async with conn.transaction():
        for letter in await deadletters.take_retries(conn, TRACKING_NAME):
            try:
                async with conn.transaction():
                    event = None
                    if letter.event_id is not None:
                        event = await logged.read_event(conn, letter.event_id)
                    if event is None:
                        raise LookupError(f"event {letter.event_id} is not in the log")
                    await send_events(producer, topic_prefix, [event])
                    await deadletters.resolve(conn, letter.id)
                resolved += 1
                log.info("dead letter resolved", consumer=TRACKING_NAME, dead_letter_id=letter.id)
            except Exception as exc:
                if is_outage(exc):
                    raise
                await deadletters.repark(conn, letter.id, exc)
    return resolved


async def reconcile(
    conn: asyncpg.Connection,
    producer: Producer,
    topic_prefix: str,
    *,
    after: timedelta,
    cap: timedelta,
    now: datetime,
) -> int:
    """Publish again the overdue, unfinished requests; returns how many were sent."""
    published = await tracking.position_of(conn, TRACKING_NAME)
    cursor = await tracking.position_of(conn, RECONCILE_CURSOR)
    start, sent = cursor, 0
    for _ in range(MAX_PAGES):
        page = await requests.open_requests(conn, start, published, after)
        if not page:
            break
        if cursor == start:
            cursor = finished_through(cursor, page)
        resend = [r for r in page if due(r, now, after, cap)]
        if resend:
            events = [e for r in resend if (e := await logged.read_event(conn, r.event_id))]
            await send_events(producer, topic_prefix, events)
            async with conn.transaction():
                await requests.mark_republished(conn, resend, now)
            sent += len(resend)
        start = page[-1].position
        if len(page) < requests.PAGE:
            break
    async with conn.transaction():
        await tracking.save_position(conn, RECONCILE_CURSOR, cursor)
        await requests.forget_finished(conn, cursor)
    return sent
