"""Append to and read from the event log in PostgreSQL.

Positions are handed out in commit order: every append takes one transaction-
scoped advisory lock before it reads the last position, and holds it until its
transaction ends. So a reader that reads ``position > last_seen`` in order can
never see position n+1 before n has committed, and never has to skip a gap.

Each row also carries ``hash = sha256(previous hash || this row's bytes)``, so
an auditor can verify the whole log is complete and unchanged
(``audit_trail.verify_chain``; the formula is in ``chain``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from videoimport_events import (
    MAX_EVENT_BYTES,
    AnyEvent,
    Envelope,
    Event,
    decode_event,
    encode_event,
)

# GENESIS_HASH, ChainBroken and chain_hash are re-exported: callers know them from here.
from videoimport_eventlog.chain import CURRENT_CHAIN, ChainRow, row_hash
from videoimport_eventlog.chain import GENESIS_HASH as GENESIS_HASH
from videoimport_eventlog.chain import ChainBroken as ChainBroken
from videoimport_eventlog.chain import chain_hash as chain_hash

APPEND_LOCK = 7_110_002
NOTIFY_CHANNEL = "videoimport_events"


class StreamConflict(Exception):
    """Another writer already appended at this stream version."""


class EventTooLarge(ValueError):
    """An event's JSON is over ``MAX_EVENT_BYTES``: it could not be published.

    Raised to the writer before anything is written, so the log never holds an
    event that would stop the relay.
    """


@dataclass(frozen=True)
class NewEvent:
    event: Event
    stream_id: str
    stream_version: int
    correlation_id: str
    project: str
    causation_id: str | None = None
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    event_type: str
    schema_version: int
    event: AnyEvent
    data: bytes
    project: str
    correlation_id: str
    causation_id: str | None
    occurred_at: datetime
    hash: bytes

    def envelope(self) -> Envelope:
        return Envelope(
            id=str(self.event_id),
            type=self.event_type,
            version=self.schema_version,
            position=self.position,
            stream=self.stream_id,
            stream_version=self.stream_version,
            occurred_at=self.occurred_at,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            project=self.project,
            data=self.event,
        )


_COLUMNS = (
    "position, event_id, stream_id, stream_version, event_type, schema_version, data::text,"
    " project, correlation_id, causation_id, occurred_at, hash"
)


# Takes the append lock, then reads the last row and the server's clock: one round
# trip (an empty log gives NULLs). A function so that the read sees the rows of the
# writer the lock waited for (migration 0011 says why).
_LOCK_AND_HEAD = "SELECT locked_at, head_position, head_hash FROM events_lock_head($1)"

# Every row and the notification in one statement, from one array per column:
# one round trip however many events (a data-modifying CTE always runs to the end).
_INSERT_AND_NOTIFY = (
    "WITH inserted AS (INSERT INTO events (position, event_id, stream_id, stream_version,"
    " event_type, schema_version, data, project, correlation_id, causation_id, occurred_at,"
    " recorded_at, chain_version, hash)"
    " SELECT position, event_id, stream_id, stream_version, event_type, schema_version,"
    " data::json, project, correlation_id, causation_id, occurred_at, $12, $13, hash"
    " FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::int[],"
    " $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $14::bytea[])"
    " AS r(position, event_id, stream_id, stream_version, event_type, schema_version, data,"
    " project, correlation_id, causation_id, occurred_at, hash))"
    " SELECT pg_notify($15, $16)"
)


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    data: bytes = row["data"].encode()
    return RecordedEvent(
        position=row["position"],
        event_id=row["event_id"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        event=decode_event(data, version=row["schema_version"]),
        data=data,
        project=row["project"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        occurred_at=row["occurred_at"],
        hash=bytes(row["hash"]),
    )


async def append(
    conn: asyncpg.Connection, events: Sequence[NewEvent], *, skip_existing: bool = False
) -> list[int]:
    """Append within the caller's transaction; returns the positions given.

    With ``skip_existing`` an event whose (stream, version) is already taken is
    left out instead of raising: the way to append "exactly once" when the
    decision to append may be made again (a projection rebuilt from zero).
    """
    if not conn.is_in_transaction():
        raise RuntimeError("append() must run inside the caller's transaction")
    if not events:
        return []
    encoded = [encode_event(e.event) for e in events]
    for new, data in zip(events, encoded, strict=True):
        if len(data) > MAX_EVENT_BYTES:
            raise EventTooLarge(
                f"{type(new.event).type_name()} for {new.stream_id} is {len(data)} bytes;"
                f" the limit is {MAX_EVENT_BYTES}"
            )
    head = await conn.fetchrow(_LOCK_AND_HEAD, APPEND_LOCK)
    if skip_existing:
        taken = await conn.fetch(
            "SELECT stream_id, stream_version FROM events"
            " WHERE (stream_id, stream_version) IN"
            " (SELECT * FROM unnest($1::text[], $2::int[]))",
            [e.stream_id for e in events],
            [e.stream_version for e in events],
        )
        taken_keys = {(r["stream_id"], r["stream_version"]) for r in taken}
        kept = [
            (e, d)
            for e, d in zip(events, encoded, strict=True)
            if (e.stream_id, e.stream_version) not in taken_keys
        ]
        if not kept:
            return []
        events = [e for e, _ in kept]
        encoded = [d for _, d in kept]
    position: int = head["head_position"] or 0
    previous: bytes = GENESIS_HASH if head["head_hash"] is None else bytes(head["head_hash"])
    # The writer sets recorded_at (the server's clock, read under the append lock)
    # instead of leaving it to the column default, so the hash can cover it.
    recorded_at: datetime = head["locked_at"]
    rows: list[ChainRow] = []
    hashes: list[bytes] = []
    for new, data in zip(events, encoded, strict=True):
        position += 1
        row = ChainRow(
            position=position,
            event_id=new.event_id,
            stream_id=new.stream_id,
            stream_version=new.stream_version,
            event_type=type(new.event).type_name(),
            schema_version=type(new.event).schema_version,
            data=data.decode(),
            project=new.project,
            correlation_id=new.correlation_id,
            causation_id=new.causation_id,
            occurred_at=new.occurred_at,
            recorded_at=recorded_at,
            chain_version=CURRENT_CHAIN,
        )
        previous = row_hash(previous, row)
        rows.append(row)
        hashes.append(previous)
    try:
        await conn.execute(
            _INSERT_AND_NOTIFY,
            *_columns(rows),
            recorded_at,
            CURRENT_CHAIN,
            hashes,
            NOTIFY_CHANNEL,
            str(position),
        )
    except asyncpg.UniqueViolationError as exc:
        raise StreamConflict(str(exc)) from exc
    return [r.position for r in rows]


def _columns(rows: list[ChainRow]) -> list[list[Any]]:
    """The varying columns of ``rows`` (all but recorded_at and chain_version), one
    list each, in ``_INSERT_AND_NOTIFY``'s parameter order."""
    return [
        [r.position for r in rows],
        [r.event_id for r in rows],
        [r.stream_id for r in rows],
        [r.stream_version for r in rows],
        [r.event_type for r in rows],
        [r.schema_version for r in rows],
        [r.data for r in rows],
        [r.project for r in rows],
        [r.correlation_id for r in rows],
        [r.causation_id for r in rows],
        [r.occurred_at for r in rows],
    ]


async def read_after(
    conn: asyncpg.Connection, position: int, limit: int = 500
) -> list[RecordedEvent]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2",
        position,
        limit,
    )
    return [_recorded(r) for r in rows]


async def read_stream(conn: asyncpg.Connection, stream_id: str) -> list[RecordedEvent]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version", stream_id
    )
    return [_recorded(r) for r in rows]


async def read_correlated(conn: asyncpg.Connection, correlation_id: str) -> list[RecordedEvent]:
    """Every event of one job, in log order (for audits)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE correlation_id = $1 ORDER BY position",
        correlation_id,
    )
    return [_recorded(r) for r in rows]


async def read_event(conn: asyncpg.Connection, event_id: uuid.UUID) -> RecordedEvent | None:
    """One event by its id (to handle a dead letter again)."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM events WHERE event_id = $1", event_id)
    return None if row is None else _recorded(row)


async def next_after(conn: asyncpg.Connection, position: int) -> tuple[int, uuid.UUID] | None:
    """Position and id of the first event after ``position``, without decoding it
    (to park an event that cannot be decoded)."""
    row = await conn.fetchrow(
        "SELECT position, event_id FROM events WHERE position > $1 ORDER BY position LIMIT 1",
        position,
    )
    return None if row is None else (row["position"], row["event_id"])
