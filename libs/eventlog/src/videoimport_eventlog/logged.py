"""The log's rows as stored, ``data`` undecoded.

For readers that pass events on rather than act on them: the relay publishes
them, the operator's CLI prints them. Both must handle events of types this
code does not know (a newer writer's), which ``store.read_after`` cannot: it
decodes every event as a known type.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

LOGGED_COLUMNS = (
    "position, event_id, stream_id, stream_version, event_type, schema_version, project,"
    " correlation_id, causation_id, occurred_at, recorded_at, data::text AS data"
)
"""The columns of ``events``, named as ``LoggedEvent``'s fields."""


@dataclass(frozen=True)
class LoggedEvent:
    """One row of ``events`` (a ``kafka.Logged``), ``data`` the stored JSON."""

    position: int
    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    event_type: str
    schema_version: int
    project: str
    correlation_id: str
    causation_id: str | None
    occurred_at: datetime
    recorded_at: datetime
    data: bytes


def logged_event(row: asyncpg.Record) -> LoggedEvent:
    """A row selected with ``LOGGED_COLUMNS``."""
    columns = dict(row.items())
    columns["data"] = columns["data"].encode()
    return LoggedEvent(**columns)


async def read_after(conn: asyncpg.Connection, position: int, limit: int) -> list[LoggedEvent]:
    """The events after ``position``, in log order (the log has no gaps to wait for)."""
    rows = await conn.fetch(
        f"SELECT {LOGGED_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2",
        position,
        limit,
    )
    return [logged_event(r) for r in rows]


async def read_event(conn: asyncpg.Connection, event_id: uuid.UUID) -> LoggedEvent | None:
    """One event by its id (a request to publish again, a dead letter to retry)."""
    row = await conn.fetchrow(f"SELECT {LOGGED_COLUMNS} FROM events WHERE event_id = $1", event_id)
    return None if row is None else logged_event(row)
