"""Append to and read from the event log in PostgreSQL.

Positions are handed out in commit order: every append takes one transaction-
scoped advisory lock before it reads the last position, and holds it until its
transaction ends. So a reader that reads ``position > last_seen`` in order can
never see position n+1 before n has committed, and never has to skip a gap.

Each row also carries ``hash = sha256(previous hash || this row's bytes)``, so
an auditor can verify the whole log is complete and unchanged (``verify_chain``;
the formula is in ``chain``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
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
from videoimport_eventlog.chain import CURRENT_CHAIN, ChainRow, ChainVerifier, row_hash
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


# The last row and the server's clock in one round trip (an empty log gives NULLs).
_HEAD = (
    "SELECT clock_timestamp() AS now, last.position, last.hash FROM (SELECT 1) AS one"
    " LEFT JOIN (SELECT position, hash FROM events ORDER BY position DESC LIMIT 1) AS last"
    " ON true"
)
_CHAIN_COLUMNS = (
    "position, event_id, stream_id, stream_version, event_type, schema_version, data::text,"
    " project, correlation_id, causation_id, occurred_at, recorded_at, chain_version, hash"
)


def _chain_row(row: asyncpg.Record) -> tuple[ChainRow, bytes]:
    # _CHAIN_COLUMNS are named as ChainRow's fields, plus the stored hash.
    columns = dict(row.items())
    stored_hash = bytes(columns.pop("hash"))
    return ChainRow(**columns), stored_hash


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
    await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
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
    head = await conn.fetchrow(_HEAD)
    position: int = head["position"] or 0
    previous: bytes = GENESIS_HASH if head["hash"] is None else bytes(head["hash"])
    # The writer sets recorded_at (the server's clock, read under the append lock)
    # instead of leaving it to the column default, so the hash can cover it.
    recorded_at: datetime = head["now"]
    rows: list[tuple[Any, ...]] = []
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
        rows.append((*row, previous))  # ChainRow is in the INSERT's column order
    try:
        await conn.executemany(
            "INSERT INTO events (position, event_id, stream_id, stream_version, event_type,"
            " schema_version, data, project, correlation_id, causation_id, occurred_at,"
            " recorded_at, chain_version, hash)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8, $9, $10, $11, $12, $13, $14)",
            rows,
        )
    except asyncpg.UniqueViolationError as exc:
        raise StreamConflict(str(exc)) from exc
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(position))
    return [r[0] for r in rows]


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


async def read_chain(
    conn: asyncpg.Connection, after: int, limit: int, up_to: int | None = None
) -> list[tuple[ChainRow, bytes]]:
    """Rows after ``after`` (at most up to ``up_to``) as the chain covers them, with
    their stored hash; nothing is decoded, so events of unknown types verify too."""
    rows = await conn.fetch(
        f"SELECT {_CHAIN_COLUMNS} FROM events WHERE position > $1"
        " AND ($2::bigint IS NULL OR position <= $2) ORDER BY position LIMIT $3",
        after,
        up_to,
        limit,
    )
    return [_chain_row(r) for r in rows]


async def check_chain(
    conn: asyncpg.Connection,
    *,
    batch: int = 1000,
    up_to: int | None = None,
    progress: Callable[[ChainVerifier], None] | None = None,
) -> ChainVerifier:
    """Recompute the hash chain from position 1 (to ``up_to``), ``batch`` rows at a
    time; ``progress`` sees the verifier after each batch. Returns it at the end
    (``checked``, ``head``); raises ``ChainBroken`` at the first gap or mismatch."""
    verifier = ChainVerifier()
    while rows := await read_chain(conn, verifier.checked, batch, up_to):
        for row, stored_hash in rows:
            verifier.check(row, stored_hash)
        if progress is not None:
            progress(verifier)
    return verifier


async def verify_chain(conn: asyncpg.Connection, batch: int = 1000) -> int:
    """Recompute the hash chain; returns the number of events checked.

    Raises ``ChainBroken`` (a ``ValueError``) naming the first position that is
    missing or altered.
    """
    return (await check_chain(conn, batch=batch)).checked


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
