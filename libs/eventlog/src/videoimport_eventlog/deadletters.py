"""Dead letters: what a consumer gave up on, kept for an operator to replay.

A consumer parks a message after ``RetryPolicy.attempts`` counted failures and
moves on, so one poison message never stops the stream behind it. An operator
lists them (``videoimport deadletters list``) and, once the cause is fixed,
asks for a retry (``… retry ID``); the owning consumer then takes the letter,
handles the logged event again and resolves the letter, or parks it again.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec
import structlog
from prometheus_client import Counter

from videoimport_eventlog.faults import describe

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
    if eid is not None:
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
    else:
        letter_id = await conn.fetchval(
            "INSERT INTO dead_letters (consumer, event_id, position, source, error, attempts,"
            " payload) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
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


async def resolve(conn: asyncpg.Connection, letter_id: int) -> None:
    await conn.execute(
        "UPDATE dead_letters SET state = 'resolved', updated_at = now() WHERE id = $1", letter_id
    )
