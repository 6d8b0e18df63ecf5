"""The relay's reading of the event log: rows as stored, ``data`` not decoded.

The relay publishes what the log holds, including events of types this code
does not know (a newer writer's), so it reads the rows itself instead of through
``store.read_after``, which decodes every event as a known type.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

_COLUMNS = (
    "position, event_id, stream_id, stream_version, event_type, schema_version, data::text,"
    " project, correlation_id, causation_id, occurred_at"
)


@dataclass(frozen=True)
class LoggedEvent:
    """One row of ``events``; ``data`` is the stored JSON (a ``kafka.Logged``)."""

    position: int
    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    event_type: str
    schema_version: int
    data: bytes
    project: str
    correlation_id: str
    causation_id: str | None
    occurred_at: datetime


def _logged(row: asyncpg.Record) -> LoggedEvent:
    return LoggedEvent(
        position=row["position"],
        event_id=row["event_id"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        data=row["data"].encode(),
        project=row["project"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        occurred_at=row["occurred_at"],
    )


async def read_after(conn: asyncpg.Connection, position: int, limit: int) -> list[LoggedEvent]:
    """The events after ``position``, in log order (the log has no gaps to wait for)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2",
        position,
        limit,
    )
    return [_logged(r) for r in rows]


async def read_event(conn: asyncpg.Connection, event_id: uuid.UUID) -> LoggedEvent | None:
    """One event by its id (a request to publish again, a dead letter to retry)."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM events WHERE event_id = $1", event_id)
    return None if row is None else _logged(row)
