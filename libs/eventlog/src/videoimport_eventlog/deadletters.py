"""Dead letters: what a consumer gave up on, kept for an operator to replay.

A consumer parks a message after ``RetryPolicy.attempts`` counted failures and
moves on, so one poison message never stops the stream behind it. An operator
lists them (``videoimport deadletters list``) and, once the cause is fixed,
asks for a retry (``… retry ID``); the owning consumer then takes the letter,
handles the logged event again and resolves the letter, or parks it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
import msgspec
import structlog
from prometheus_client import Counter

from videoimport_eventlog import store, tracking
from videoimport_eventlog.faults import describe, is_outage

MAX_PAYLOAD_BYTES = 64 * 1024
"""Of an undecodable message, enough to see what it was."""

PARKED = Counter(
    "videoimport_dead_letters_total", "Messages a consumer gave up on, by consumer", ["consumer"]
)
log = structlog.get_logger(__name__)


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    consumer: str
    event_id: uuid.UUID | None
    position: int | None
    source: str
    error: str
    attempts: int
    state: str
    created_at: datetime
    updated_at: datetime


_COLUMNS = (
    "id, consumer, event_id, position, source, error, attempts, state, created_at, updated_at"
)


def _letter(row: asyncpg.Record) -> DeadLetter:
    return DeadLetter(**dict(row))


async def park(
    conn: asyncpg.Connection,
    *,
    consumer: str,
    source: str,
    error: BaseException | str,
    attempts: int,
    event_id: uuid.UUID | str | None = None,
    position: int | None = None,
    payload: bytes | None = None,
) -> int:
    """Record (or re-park) a letter; returns its id. Logs and counts it."""
    text = error if isinstance(error, str) else describe(error)
    text = text[:1000]
    eid = uuid.UUID(str(event_id)) if event_id is not None else None
    kept = payload[:MAX_PAYLOAD_BYTES] if payload is not None else None
    # A letter without an event id never conflicts (the unique index is partial).
    letter_id: int = await conn.fetchval(
        "INSERT INTO dead_letters (consumer, event_id, position, source, error, attempts,"
        " payload) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (consumer, event_id) WHERE event_id IS NOT NULL DO UPDATE SET"
        " state = 'parked', error = EXCLUDED.error,"
        " attempts = dead_letters.attempts + EXCLUDED.attempts, updated_at = now()"
        " RETURNING id",
        consumer,
        eid,
        position,
        source,
        text,
        attempts,
        kept,
    )
    PARKED.labels(consumer=consumer).inc()
    log.error(
        "message parked as a dead letter",
        consumer=consumer,
        dead_letter_id=letter_id,
        event_id=str(eid) if eid else None,
        position=position,
        source=source,
        error=text,
    )
    return letter_id


async def list_letters(
    conn: asyncpg.Connection, *, state: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM dead_letters WHERE ($1::text IS NULL OR state = $1)"
        " ORDER BY id LIMIT $2",
        state,
        limit,
    )
    return [_letter(r) for r in rows]


async def request_retry(conn: asyncpg.Connection, letter_id: int) -> DeadLetter | None:
    """Mark a parked letter for its consumer to handle again; None when there is none.

    Only letters that name a logged event can be retried: the log holds what
    is handled again.
    """
    row = await conn.fetchrow(
        f"UPDATE dead_letters SET state = 'retry', updated_at = now()"
        f" WHERE id = $1 AND state = 'parked' AND event_id IS NOT NULL RETURNING {_COLUMNS}",
        letter_id,
    )
    return None if row is None else _letter(row)


async def take_retries(
    conn: asyncpg.Connection, consumer: str, limit: int = 100
) -> list[DeadLetter]:
    """Letters of ``consumer`` an operator asked to retry (locked: call in a transaction)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM dead_letters WHERE consumer = $1 AND state = 'retry'"
        " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
        consumer,
        limit,
    )
    return [_letter(r) for r in rows]


async def repark(conn: asyncpg.Connection, letter_id: int, error: BaseException | str) -> None:
    """A retried letter failed again: back to ``parked`` with the new error."""
    text = error if isinstance(error, str) else describe(error)
    await conn.execute(
        "UPDATE dead_letters SET state = 'parked', error = $2, attempts = attempts + 1,"
        " updated_at = now() WHERE id = $1",
        letter_id,
        text[:1000],
    )


Redo = Callable[[asyncpg.Connection, store.RecordedEvent], Awaitable[None]]


async def retry_requested(conn: asyncpg.Connection, consumer: str, redo: Redo) -> int:
    """Handle again, from the log, every letter of ``consumer`` marked ``retry``.

    The letters stay locked while they are handled (one savepoint each): a
    letter whose ``redo`` succeeds is resolved, one that fails is parked again
    with the new error, and an outage raises, leaving them marked. Returns how
    many were resolved.
    """
    resolved = 0
    async with conn.transaction():
        for letter in await take_retries(conn, consumer):
            try:
                async with conn.transaction():
                    if letter.event_id is None:
                        raise LookupError("the letter names no logged event to handle again")
                    recorded = await store.read_event(conn, letter.event_id)
                    if recorded is None:
                        raise LookupError(f"event {letter.event_id} is not in the log")
                    await redo(conn, recorded)
                    await resolve(conn, letter.id)
                resolved += 1
                log.info("dead letter resolved", consumer=consumer, dead_letter_id=letter.id)
            except Exception as exc:
                if is_outage(exc):
                    raise
                await repark(conn, letter.id, exc)
    return resolved


async def park_next_in_log(
    conn: asyncpg.Connection, reader: str, error: BaseException, attempts: int
) -> int | None:
    """Park the event after log reader ``reader``'s tracking position and move past it.

    Reads the event undecoded (it may be of a type this code does not know).
    Returns the parked position, None when the log has nothing there.
    """
    async with conn.transaction():
        position = await tracking.lock_position(conn, reader)
        found = await store.next_after(conn, position)
        if found is None:
            return None
        parked, event_id = found
        await park(
            conn,
            consumer=reader,
            source=f"log:{parked}",
            error=error,
            attempts=attempts,
            event_id=event_id,
            position=parked,
        )
        await tracking.save_position(conn, reader, parked)
        return parked


async def resolve(conn: asyncpg.Connection, letter_id: int) -> None:
    await conn.execute(
        "UPDATE dead_letters SET state = 'resolved', updated_at = now() WHERE id = $1", letter_id
    )
